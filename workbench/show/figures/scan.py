"""Figures of a head scan: the AIE heatmap of one task, and a grid over tasks with their
universal mean.

>>> import torch
>>> fig = aie_heatmap(torch.rand(4, 3), top_k=2, title="toy")
>>> len(fig.layout.shapes)
2
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ...core.scan import universal_map
from ..style import STYLE, aie_of, heatmap_trace, integer_axis, outline_heads, top_pairs

__all__ = ["aie_heatmap", "aie_grid"]


def _outline_key(label: str, color: str = "black") -> go.Scatter:
    """A legend entry (no data) saying what the outlined cells are."""
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        name=label,
        marker=dict(symbol="square-open", size=14, color=color, line=dict(width=2)),
        hoverinfo="skip",
        showlegend=True,
    )


def _heads_of(heads) -> list[tuple[int, int]]:
    """A FunctionVector's heads, or a list of ``(layer, head)`` pairs, as pairs."""
    return [(int(l), int(h)) for l, h in getattr(heads, "heads", heads)]


def aie_heatmap(scan, top_k: int = 10, title: str | None = None, heads=None) -> go.Figure:
    """Layers x heads heatmap of the AIE, values on hover, with outlined heads: ``heads`` (a
    FunctionVector or its ``(layer, head)`` pairs) if given, else the top-``k`` by AIE.  The legend says
    which.  ``scan``: a HeadScan, an ``[layer, head]`` AIE tensor, or a TaskResult (its scan, with its
    FV's heads outlined)."""
    if heads is None and hasattr(scan, "fv") and hasattr(scan, "scan"):
        scan, heads = scan.scan, scan.fv
    aie = aie_of(scan).float()
    sem = scan.sem if hasattr(scan, "sem") else None
    fig = go.Figure(heatmap_trace(aie, sem))
    if heads is not None:
        outlined = _heads_of(heads)
        fig.add_trace(_outline_key(f"outlined: the FV's {len(outlined)} heads"))
    else:
        outlined = top_pairs(aie, top_k)
        fig.add_trace(_outline_key(f"outlined: the top {len(outlined)} heads by AIE"))
    outline_heads(fig, outlined)
    name = title or f"Average indirect effect per head{': ' + scan.task if getattr(scan, 'task', '') else ''}"
    fig.update_layout(
        title=name,
        xaxis=dict(title="head", **integer_axis(range(aie.shape[1]))),
        yaxis=dict(title="layer", **integer_axis(range(aie.shape[0]))),
        legend=dict(orientation="h", x=0, y=-0.12, xanchor="left", yanchor="top"),
        width=420 + 12 * aie.shape[1],
        height=300 + 14 * aie.shape[0],
        **STYLE,
    )
    return fig


def aie_grid(scans: Mapping[str, Any], top_k: int = 10, cols: int = 4, universal: bool = True) -> go.Figure:
    """One AIE heatmap per task (shared colour scale), plus the cross-task mean if ``universal``."""
    items = [(name, aie_of(s).float()) for name, s in scans.items()]
    if universal and len(items) > 1:
        items.append(("universal (mean over tasks)", universal_map([a for _, a in items])))
    rows = -(-len(items) // cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[n for n, _ in items],
        horizontal_spacing=0.04,
        vertical_spacing=0.08,
    )
    zmax = max(float(torch.nan_to_num(a).abs().max()) for _, a in items) or 1.0
    for i, (_, aie) in enumerate(items):
        r, c = i // cols + 1, i % cols + 1
        fig.add_trace(heatmap_trace(aie, showscale=(i == 0), zmax=zmax), row=r, col=c)
        outline_heads(fig, top_pairs(aie, top_k), width=1.5, row=r, col=c)
    fig.add_trace(_outline_key(f"outlined: each task's top {top_k} heads by AIE"))
    L, H = items[0][1].shape
    fig.update_xaxes(**integer_axis(range(H)))
    fig.update_yaxes(**integer_axis(range(L)))
    fig.update_layout(
        title="AIE per task",
        height=330 * rows + 40,
        width=260 * cols + 120,
        legend=dict(orientation="h", x=0, y=-0.06, xanchor="left", yanchor="top"),
        **STYLE,
    )
    return fig
