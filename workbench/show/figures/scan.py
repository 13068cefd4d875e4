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
from ..style import STYLE, aie_of, heatmap_trace, top_pairs

__all__ = ["aie_heatmap", "aie_grid"]


def aie_heatmap(scan, top_k: int = 10, title: str | None = None) -> go.Figure:
    """Layers x heads heatmap of the AIE, the top-``k`` heads outlined, values on hover."""
    aie = aie_of(scan).float()
    sem = scan.sem if hasattr(scan, "sem") else None
    fig = go.Figure(heatmap_trace(aie, sem))
    for l, h in top_pairs(aie, top_k):
        fig.add_shape(
            type="rect",
            x0=h - 0.5,
            x1=h + 0.5,
            y0=l - 0.5,
            y1=l + 0.5,
            line=dict(color="black", width=2),
            fillcolor="rgba(0,0,0,0)",
        )
    name = title or f"Average indirect effect per head{': ' + scan.task if getattr(scan, 'task', '') else ''}"
    fig.update_layout(
        title=name,
        xaxis_title="head",
        yaxis_title="layer",
        width=420 + 12 * aie.shape[1],
        height=260 + 14 * aie.shape[0],
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
        for l, h in top_pairs(aie, top_k):
            fig.add_shape(
                type="rect",
                x0=h - 0.5,
                x1=h + 0.5,
                y0=l - 0.5,
                y1=l + 0.5,
                line=dict(color="black", width=1.5),
                fillcolor="rgba(0,0,0,0)",
                row=r,
                col=c,
            )
    fig.update_layout(title="AIE per task", height=330 * rows, width=260 * cols + 120, **STYLE)
    return fig
