"""The figures of the ``signed`` study."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ...studies.signed import SignedHeads
from ..style import STYLE, heatmap_trace, outline_heads
from . import records, study_figure

__all__ = ["signed_figure"]


@study_figure("signed")
def signed_figure(by_task: Any) -> dict[str, go.Figure]:
    """Signed heads (:func:`~workbench.studies.signed.signed_heads_study`): the usual AIE heatmap of
    the first task (FV heads outlined black) next to its ``AIE / s.e.`` map (the ``k`` most negative
    heads outlined green), and bars of ablations and FV variants per task."""
    by_task = records(by_task, SignedHeads)
    first = next(iter(by_task))
    s = by_task[first]
    aie, t = torch.tensor(s.aie), torch.tensor(s.t)
    heat = make_subplots(
        rows=1, cols=2, subplot_titles=["AIE (FV heads outlined)", "AIE / s.e. (negative heads outlined)"]
    )
    heat.add_trace(heatmap_trace(aie, showscale=False), row=1, col=1)
    tmax = float(t.abs().max()) or 1.0
    heat.add_trace(
        go.Heatmap(z=t.numpy(), colorscale="RdBu_r", zmid=0, zmin=-tmax, zmax=tmax, colorbar=dict(title="t")),
        row=1,
        col=2,
    )
    for col, heads, color in ((1, s.top, "black"), (2, s.negative, "#2ca02c")):
        outline_heads(heat, heads, color=color, row=1, col=col)
    heat.update_layout(title=f"Signed heads: {first}", width=900, height=260 + 14 * aie.shape[0], **STYLE)
    tasks = list(by_task)
    bars = make_subplots(
        rows=1, cols=3, subplot_titles=["clean ICL, heads ablated", "zero-shot + vector", "shuffled + vector"]
    )
    panels = (
        (
            1,
            "ablation",
            "icl",
            {"none": "none", "top": "FV heads", "negative": "negative heads", "random": "random"},
        ),
        (
            2,
            "vectors",
            "zero_shot",
            {
                "none": "none",
                "fv": "FV",
                "fv_by_abs": "top |AIE|",
                "fv_minus_negative": "FV - negative",
                "negative_only": "negative only",
            },
        ),
        (
            3,
            "vectors",
            "shuffled",
            {
                "none": "none",
                "fv": "FV",
                "fv_by_abs": "top |AIE|",
                "fv_minus_negative": "FV - negative",
                "negative_only": "negative only",
            },
        ),
    )
    palette = ["#BBBBBB", "#DD8452", "#4C72B0", "#55A868", "#8172B3"]
    for col, part, name, ways in panels:
        for i, (key, label) in enumerate(ways.items()):
            ys = [getattr(by_task[task], part)[name].get(key) for task in tasks]
            bars.add_bar(x=tasks, y=ys, name=label, marker_color=palette[i], showlegend=True, row=1, col=col)
    bars.update_layout(
        barmode="group",
        title="Negative-AIE heads: ablated, left in, subtracted",
        width=1300,
        height=420,
        yaxis_title="top-1 accuracy (all test queries)",
        **STYLE,
    )
    return {"_heatmaps": heat, "_bars": bars}
