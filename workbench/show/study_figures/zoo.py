"""The figure of the ``zoo`` study."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from ...studies.baselines import Zoo
from ..style import STYLE
from . import records, study_figure

__all__ = ["zoo_figure"]


@study_figure("zoo")
def zoo_figure(by_task: Any, filtered: bool = True) -> go.Figure:
    """The baseline zoo (:func:`~workbench.studies.baselines.baseline_zoo`): zero-shot test accuracy of
    every vector per task, with binomial standard errors."""
    by_task = records(by_task, Zoo)
    tasks = list(by_task)
    names = by_task[tasks[0]].vectors
    key, err = ("filtered", "filtered_stderr") if filtered else ("top1", "stderr")
    z = [[by_task[t].test[n][key] if n in by_task[t].test else None for t in tasks] for n in names]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=tasks,
            y=names,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=[
                [
                    f"{by_task[t].test[n][key]:.0%} ±{by_task[t].test[n][err]:.0%}"
                    if n in by_task[t].test
                    else ""
                    for t in tasks
                ]
                for n in names
            ],
            texttemplate="%{text}",
            colorbar=dict(title="top-1"),
        )
    )
    fig.update_layout(
        title="Task vectors under one evaluator (zero-shot test, "
        + ("ICL-correct queries)" if filtered else "all queries)"),
        width=max(900, 250 + 110 * len(tasks)),
        height=120 + 40 * len(names),
        **STYLE,
    )
    return fig
