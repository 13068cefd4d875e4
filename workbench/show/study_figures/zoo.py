"""The figure of the ``zoo`` study."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go

from ..style import STYLE

__all__ = ["zoo_figure"]


def zoo_figure(by_task: Mapping[str, Mapping[str, Any]], filtered: bool = True) -> go.Figure:
    """The baseline zoo (:func:`~workbench.studies.baselines.baseline_zoo`): zero-shot test accuracy of
    every vector per task, with binomial standard errors."""
    tasks = list(by_task)
    names = [n for n in by_task[tasks[0]]["test"] if n != "none"]
    key, err = ("filtered", "filtered_stderr") if filtered else ("top1", "stderr")
    z = [[by_task[t]["test"][n][key] if n in by_task[t]["test"] else None for t in tasks] for n in names]
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
                    f"{by_task[t]['test'][n][key]:.0%} ±{by_task[t]['test'][n][err]:.0%}"
                    if n in by_task[t]["test"]
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
