"""Figures of vectors: a vector decoded through the unembedding, a steering vector's effect, and a
soft task vector against the scan (where and how strongly an FV acts is the ``diagnose`` study's
figure, :mod:`workbench.show.study_figures.diagnose`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..style import HOVER_NUMBER, STYLE, aie_of, integer_axis, outline_heads, top_pairs, visible

__all__ = ["decoded_figure", "steering_figure", "soft_alpha_figure"]


def decoded_figure(
    tokens: Sequence[tuple[str, float]], title: str = "FV decoded through the unembedding"
) -> go.Figure:
    """Horizontal bars of the top tokens of a decoded vector and their logits, the first on top.

    Tokens are shown with visible whitespace (``␣`` a space, ``↵`` a newline), one bar each even
    where two tokens look alike."""
    tokens = list(tokens)[::-1]
    rows = list(range(len(tokens)))
    labels = [visible(t) for t, _ in tokens]
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in tokens],
            y=rows,
            orientation="h",
            marker_color="#DD8452",
            text=[repr(t) for t, _ in tokens],
            textposition="none",
            hovertemplate="%{text}: logit %{x:.3~g}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="logit",
        yaxis=dict(tickmode="array", tickvals=rows, ticktext=labels, tickfont=dict(family="monospace")),
        width=520,
        height=120 + 26 * len(tokens),
        **STYLE,
    )
    return fig


def steering_figure(result: Mapping[str, Any], title: str | None = None) -> go.Figure:
    """A steering vector's effect against its scale alpha, one line per layer it is added after.

    ``result``: ``layers``, ``alphas``, ``score`` (``[layer][alpha]``), optional ``projected``
    (the score with the direction projected out, drawn as a dashed line), ``metric`` (axis label)
    and ``label``; e.g. one entry of ``runs/<model>/steering.json`` (``bench/steering_effect.py``).
    """
    fig = go.Figure()
    for layer, row in zip(result["layers"], result["score"]):
        fig.add_trace(
            go.Scatter(x=list(result["alphas"]), y=list(row), mode="lines+markers", name=f"layer {layer}")
        )
    if result.get("projected") is not None:
        a = result["alphas"]
        fig.add_trace(
            go.Scatter(
                x=[min(a), max(a)],
                y=[result["projected"]] * 2,
                mode="lines",
                name="direction projected out",
                line=dict(color="#333", dash="dash", width=1),
            )
        )
    fig.add_vline(x=0, line=dict(color="#BBBBBB", width=1))
    fig.update_layout(
        title=title or f"Steering with {result.get('label', 'a contrastive vector')}",
        xaxis_title="alpha (multiple of the mean difference, added after the layer)",
        yaxis_title=result.get("metric", "score"),
        width=760,
        height=440,
        **STYLE,
    )
    return fig


def soft_alpha_figure(soft, scan, top_k: int = 8, title: str | None = None) -> go.Figure:
    """Learned soft task vector against the head scan: alpha vs AIE per head, and alpha as a heatmap.

    ``soft``: a :class:`workbench.soft.SoftTaskVector` (or an ``[layer, head]`` tensor of alphas);
    ``scan``: a HeadScan (or its AIE).  The ``top_k`` heads by AIE are drawn in orange on the
    left and outlined on the right.
    """
    alpha = torch.as_tensor(getattr(soft, "alpha", soft)).detach().float()
    aie = aie_of(scan).float()
    L, H = alpha.shape
    top = set(top_pairs(aie, top_k))
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        horizontal_spacing=0.12,
        subplot_titles=["alpha against AIE (one point per head)", "alpha per head"],
    )
    for is_top, name, color in [(False, "other heads", "#4C72B0"), (True, f"top {top_k} by AIE", "#DD8452")]:
        pts = [(l, h) for l in range(L) for h in range(H) if ((l, h) in top) == is_top]
        fig.add_trace(
            go.Scatter(
                x=[float(aie[l, h]) for l, h in pts],
                y=[float(alpha[l, h]) for l, h in pts],
                mode="markers",
                name=name,
                text=[f"L{l}H{h}" for l, h in pts],
                marker=dict(color=color, size=7, opacity=0.8),
                hovertemplate=f"%{{text}}<br>AIE %{{x:{HOVER_NUMBER}}}<br>alpha %{{y:.3f}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Heatmap(
            z=alpha.numpy(),
            x=list(range(H)),
            y=list(range(L)),
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar=dict(title="alpha", x=1.02),
            hovertemplate="layer %{y}, head %{x}<br>alpha %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    outline_heads(fig, top, color="#D9480F", width=3, row=1, col=2)
    fig.update_xaxes(title_text="AIE", row=1, col=1)
    fig.update_yaxes(title_text="alpha", range=[-0.03, 1.03], row=1, col=1)
    fig.update_xaxes(title_text="head", row=1, col=2, **integer_axis(range(H)))
    fig.update_yaxes(title_text="layer", row=1, col=2, **integer_axis(range(L)))
    task = getattr(soft, "task", "") or getattr(scan, "task", "")
    n_on = int((alpha > 0.5).sum())
    fig.update_layout(
        title=title
        or f"Soft task vector{': ' + task if task else ''} ({n_on} of {L * H} heads with alpha > 0.5)",
        width=1000,
        height=max(460, 300 + 12 * L),
        legend=dict(orientation="h", x=0.0, y=-0.15),
        **STYLE,
    )
    return fig
