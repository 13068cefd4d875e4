"""The figure of the ``head_count`` study."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ...studies.head_count import HeadCountChoice
from ..style import CONDITION_LABELS, STYLE
from . import records, study_figure

__all__ = ["head_count_choice_figure", "head_count_study_figure"]


@study_figure("head_count")
def head_count_study_figure(by_task: Any) -> dict[str, go.Figure]:
    """:func:`head_count_choice_figure`, written as ``<model>_head_count_choice``."""
    return {"_choice": head_count_choice_figure(by_task)}


def head_count_choice_figure(by_task: Any) -> go.Figure:
    """The paper's fixed head count against the count chosen on valid (with its layer): zero-shot and
    shuffled test accuracy (ICL-correct queries) per task, the chosen count in the hover text."""
    by_task = records(by_task, HeadCountChoice)
    tasks = list(by_task)
    fig = go.Figure()
    for rule, color in (("fixed", "#BBBBBB"), ("valid", "#DD8452")):
        for cond, pattern in (("zero_shot_fv", ""), ("shuffled_fv", "/")):
            fig.add_bar(
                x=tasks,
                y=[by_task[t].rule(rule)[cond] for t in tasks],
                name=f"{CONDITION_LABELS[cond]}, {'fixed k' if rule == 'fixed' else 'k chosen on valid'}",
                marker_color=color,
                marker_pattern_shape=pattern,
                text=[f"k={by_task[t].rule(rule)['k']}, L{by_task[t].rule(rule)['layer']}" for t in tasks],
                textposition="outside",
            )
    fig.update_layout(
        barmode="group",
        title="FV heads: fixed count vs count chosen on valid",
        yaxis_title="top-1 accuracy (ICL-correct test queries)",
        yaxis_range=[0, 1.1],
        width=max(900, 500 + 150 * len(tasks)),
        height=460,
        **STYLE,
    )
    return fig
