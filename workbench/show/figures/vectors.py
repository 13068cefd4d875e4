"""Figures of vectors: a vector decoded through the unembedding, where and how strongly an FV acts,
a steering vector's effect, and a soft task vector against the scan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..style import COLORS, CONDITION_LABELS, STYLE, aie_of, top_pairs

__all__ = ["decoded_figure", "injection_figure", "steering_figure", "soft_alpha_figure"]


def decoded_figure(
    tokens: Sequence[tuple[str, float]], title: str = "FV decoded through the unembedding"
) -> go.Figure:
    """Horizontal bars of the top tokens of a decoded vector and their logits."""
    labels = [repr(t)[1:-1] for t, _ in tokens][::-1]
    fig = go.Figure(go.Bar(x=[v for _, v in tokens][::-1], y=labels, orientation="h", marker_color="#DD8452"))
    fig.update_layout(title=title, xaxis_title="logit", width=520, height=120 + 26 * len(tokens), **STYLE)
    return fig


def injection_figure(diag: Mapping[str, Any], title: str | None = None) -> go.Figure:
    """Zero-shot accuracy by layer and scale of the FV (and, if measured, by its number of heads),
    beside the two baselines and the FV's size relative to the residual stream (from
    :func:`workbench.studies.injection_diagnostics` and :func:`~workbench.studies.head_count_grid`)."""
    layers, alphas = diag["layers"], diag["alphas"]
    grid = diag.get("head_counts")
    panels = ["alpha x FV added after a layer"]
    if grid:
        panels.append("FV of the top k heads (alpha 1)")
    panels.append("task-vector ceiling and FV size")
    n = len(panels)
    specs = [[{}] * (n - 1) + [{"secondary_y": True}]]
    fig = make_subplots(rows=1, cols=n, horizontal_spacing=0.08, subplot_titles=panels, specs=specs)
    heat = dict(
        colorscale="Viridis",
        zmin=0,
        zmax=1,
        colorbar=dict(title="zero-shot top-1", orientation="h", x=0.15, y=-0.42, len=0.3, thickness=12),
    )
    fig.add_trace(
        go.Heatmap(
            z=diag["zero_shot"],
            x=layers,
            y=[str(a) for a in alphas],
            **heat,
            hovertemplate="layer %{x}, alpha %{y}<br>top-1 %{z:.0%}<extra></extra>",
        ),
        1,
        1,
    )
    fig.update_yaxes(title_text="alpha", type="category", row=1, col=1)
    if grid:
        centered = diag.get("head_counts_centered")
        rows = [str(k) for k in grid["counts"]]
        z = list(grid["zero_shot"])
        if centered:
            rows += [f"{k} centred" for k in centered["counts"]]
            z += centered["zero_shot"]
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=grid["layers"],
                y=rows,
                **heat,
                showscale=False,
                hovertemplate="layer %{x}, top %{y} heads<br>top-1 %{z:.0%}<extra></extra>",
            ),
            1,
            2,
        )
        fig.update_xaxes(range=[min(layers) - 0.5, max(layers) + 0.5], row=1, col=2)
        fig.update_yaxes(type="category", row=1, col=2)  # tick labels say "k" or "k centred" heads
    for key, name, color in (
        ("task_vector", CONDITION_LABELS["task_vector"], COLORS["task_vector"]),
        ("mean_state", CONDITION_LABELS["mean_state"], COLORS["mean_state"]),
    ):
        fig.add_trace(
            go.Scatter(x=layers, y=diag[key], name=name, mode="lines+markers", line_color=color), 1, n
        )
    tests = diag.get("state_tests")
    if tests:
        for key, name, color in (
            ("replace_mean_icl", "zero-shot, state replaced by mean ICL state", "#64B5CD"),
            ("add_icl_minus_zero", "zero-shot + (mean ICL - mean zero-shot state)", "#937860"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=tests["layers"],
                    y=tests[key],
                    name=name,
                    mode="lines+markers",
                    line=dict(color=color, dash="dash"),
                ),
                1,
                n,
            )
    best_fv = [max(col) for col in zip(*diag["zero_shot"])]
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=best_fv,
            name="zero-shot + FV (best alpha)",
            mode="lines+markers",
            line_color=COLORS["zero_shot_fv"],
        ),
        1,
        n,
    )
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=diag["norm_ratio"],
            name="|FV| / |residual| (right axis, log)",
            mode="lines",
            line=dict(color="#999999", dash="dot"),
        ),
        1,
        n,
        secondary_y=True,
    )
    fig.update_yaxes(title_text="top-1 accuracy", range=[0, 1.02], row=1, col=n, secondary_y=False)
    fig.update_yaxes(title_text="|FV| / |residual|", type="log", dtick=1, row=1, col=n, secondary_y=True)
    fig.update_xaxes(title_text="layer")
    fig.update_layout(
        title=title
        or f"{diag['model']} / {diag['task']}: where, how strongly and with how many heads "
        f"the FV acts (n={diag['n_prompts']} zero-shot test prompts)",
        width=430 * n + 420,
        height=480,
        legend=dict(x=1.06, y=1, font=dict(size=11)),
        margin=dict(b=150),
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
                hovertemplate="%{text}<br>AIE %{x:.4f}<br>alpha %{y:.3f}<extra></extra>",
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
    for l, h in top:
        fig.add_shape(
            type="rect",
            x0=h - 0.5,
            x1=h + 0.5,
            y0=l - 0.5,
            y1=l + 0.5,
            line=dict(color="#D9480F", width=3),
            opacity=1,
            fillcolor="rgba(0,0,0,0)",
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="AIE", row=1, col=1)
    fig.update_yaxes(title_text="alpha", range=[-0.03, 1.03], row=1, col=1)
    fig.update_xaxes(title_text="head", row=1, col=2)
    fig.update_yaxes(title_text="layer", row=1, col=2)
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
