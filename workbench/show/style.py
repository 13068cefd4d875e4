"""The one look of every figure: the plotly template, colours and labels per condition, the AIE
heatmap trace that the scan, study and explorer figures share, and how numbers, tokens, integer
axes and missing data are shown.

>>> number(0.0000031), number(-0.00000004), number(0.1234), number(float("nan"))
('3.1e-06', '-4e-08', '0.12', 'n/a')
>>> visible(" \\n"), visible("\\n"), visible(" cold")
('␣↵', '↵', '␣cold')
>>> integer_axis(range(3))["tickvals"]
[0, 1, 2]
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch

from ..core.scan import top_heads

__all__ = [
    "STYLE",
    "COLORS",
    "CONDITION_LABELS",
    "aie_of",
    "top_pairs",
    "heatmap_trace",
    "number",
    "signed",
    "visible",
    "integer_axis",
    "note",
    "HOVER_NUMBER",
]

# plotly's hover format for a small effect: 3 significant digits, not 4 decimals that read 0.0000
HOVER_NUMBER = ".3~g"

STYLE = dict(template="simple_white", font=dict(family="Helvetica, Arial, sans-serif", size=13))
COLORS = {
    "icl": "#4C72B0",
    "zero_shot": "#BBBBBB",
    "zero_shot_fv": "#DD8452",
    "shuffled": "#8C8C8C",
    "shuffled_fv": "#C44E52",
    "mean_state": "#55A868",
    "task_vector": "#8172B3",
}
CONDITION_LABELS = {
    "icl": "10-shot ICL",
    "zero_shot": "zero-shot",
    "zero_shot_fv": "zero-shot + FV",
    "shuffled": "shuffled",
    "shuffled_fv": "shuffled + FV",
    "mean_state": "zero-shot + mean state",
    "task_vector": "zero-shot + task vector (Hendel)",
}


def aie_of(scan) -> torch.Tensor:
    """The ``[layer, head]`` AIE of a HeadScan (or an AIE tensor itself)."""
    return scan.aie if hasattr(scan, "aie") else torch.as_tensor(scan)


def top_pairs(aie: torch.Tensor, k: int) -> list[tuple[int, int]]:
    return [(l, h) for l, h, _ in top_heads(aie, k)]


def heatmap_trace(aie: torch.Tensor, sem: torch.Tensor | None = None, showscale: bool = True, zmax=None):
    L, H = aie.shape
    zmax = zmax or float(torch.nan_to_num(aie).abs().max()) or 1.0
    custom = sem.numpy() if sem is not None else None
    hover = (
        f"layer %{{y}}, head %{{x}}<br>AIE %{{z:{HOVER_NUMBER}}}"
        + (f"<br>s.e. %{{customdata:{HOVER_NUMBER}}}" if custom is not None else "")
        + "<extra></extra>"
    )
    return go.Heatmap(
        z=aie.numpy(),
        x=list(range(H)),
        y=list(range(L)),
        colorscale="RdBu_r",
        zmid=0,
        zmin=-zmax,
        zmax=zmax,
        customdata=custom,
        hovertemplate=hover,
        showscale=showscale,
        colorbar=dict(title="AIE"),
    )


def number(x: float, digits: int = 2) -> str:
    """``x`` with ``digits`` significant digits (never ``0.0000`` for a small effect, never ``-0``);
    ``n/a`` for NaN or ``None``."""
    if x is None or x != x:
        return "n/a"
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.{digits}g}"


def signed(x: float, digits: int = 2) -> str:
    """:func:`number` with its sign always written (``+3.1e-06``, ``-0.12``, ``0``)."""
    text = number(x, digits)
    return text if text in ("0", "n/a") or text.startswith("-") else "+" + text


_WHITESPACE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def visible(token: str) -> str:
    """A token with its whitespace made visible (``␣`` space, ``↵`` newline, ``⇥`` tab) and other control
    characters escaped, so that `` \\n`` and ``\\n`` read differently on an axis."""
    out = []
    for ch in token:
        if ch in _WHITESPACE:
            out.append(_WHITESPACE[ch])
        elif not ch.isprintable():
            out.append(repr(ch)[1:-1])
        else:
            out.append(ch)
    return "".join(out) or "∅"


def integer_axis(values, max_ticks: int = 16) -> dict:
    """Axis settings that put ticks on integers only (layers, heads, counts), at most ``max_ticks``."""
    values = sorted({int(v) for v in values})
    if not values:
        return dict(tickmode="array", tickvals=[])
    step = max(1, -(-(values[-1] - values[0] + 1) // max_ticks))
    ticks = [v for v in values if (v - values[0]) % step == 0]
    return dict(tickmode="array", tickvals=ticks, ticktext=[str(v) for v in ticks])


def note(fig: go.Figure, text: str) -> go.Figure:
    """Write ``text`` across the middle of ``fig`` (a sentence saying why there is nothing to draw)."""
    fig.add_annotation(
        text=text,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font=dict(size=14, color="#555"),
        bgcolor="rgba(255,255,255,0.85)",
        name="missing data",
    )
    return fig


def outline_heads(fig, heads, color: str = "black", width: float = 2, **where) -> None:
    """Outline each ``(layer, head)`` cell of a ``[layer, head]`` heatmap in ``fig`` (``where``: the
    subplot's ``row=``/``col=``)."""
    for l, h in heads:
        fig.add_shape(
            type="rect",
            x0=h - 0.5,
            x1=h + 0.5,
            y0=l - 0.5,
            y1=l + 0.5,
            line=dict(color=color, width=width),
            fillcolor="rgba(0,0,0,0)",
            **where,
        )
