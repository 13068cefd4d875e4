"""The figure of the ``positions`` study."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...studies.positions import PositionEffect
from ..style import CONDITION_LABELS, STYLE
from . import records, study_figure

__all__ = ["positions_figure"]


@study_figure("positions")
def positions_figure(by_task: Any, alpha: float = 1.0) -> go.Figure:
    """The FV added at the last position against every position (llama.cpp's control vectors), per
    task, zero-shot and shuffled (:func:`~workbench.studies.positions.every_position_effect`)."""
    sets = ("zero_shot", "shuffled")
    fig = make_subplots(rows=1, cols=2, subplot_titles=[CONDITION_LABELS[s] for s in sets], shared_yaxes=True)
    ways = {
        "none": "no FV",
        "last": "last position",
        "every": "every position",
        "every_after_bos": "every but BOS",
    }
    palette = {"none": "#BBBBBB", "last": "#DD8452", "every": "#4C72B0", "every_after_bos": "#55A868"}
    by_task = records(by_task, PositionEffect)
    tasks = list(by_task)
    for col, s in enumerate(sets, 1):
        for way, label in ways.items():
            ys = [by_task[t].accuracy(s, way, alpha) for t in tasks]
            fig.add_bar(
                x=tasks, y=ys, name=label, marker_color=palette[way], showlegend=col == 1, row=1, col=col
            )
    fig.update_layout(
        barmode="group",
        title=f"FV ({alpha:g}x) at the last position vs at every position",
        yaxis_title="top-1 accuracy (all test queries)",
        width=1000,
        height=420,
        **STYLE,
    )
    return fig
