"""The figures of the ``sites`` study."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...studies.sites import Sites
from ..style import STYLE
from . import records, study_figure

__all__ = ["sites_figure", "state_split_figure", "sites_study_figure"]


@study_figure("sites")
def sites_study_figure(by_task: Any) -> dict[str, go.Figure]:
    """:func:`sites_figure` of the site scans and :func:`state_split_figure`, written as
    ``<model>_sites`` and ``<model>_sites_split``."""
    by_task = records(by_task, Sites)
    return {"": sites_figure({t: r.scan for t, r in by_task.items()}), "_split": state_split_figure(by_task)}


def sites_figure(by_name: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Indirect effect of each layer's attention output and MLP output at the last token
    (:class:`~workbench.core.site_scan.SiteScan` ``.to_dict()``), one panel per run, error bars s.e."""
    names = list(by_name)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names)
    colors = {"attn": "#4C72B0", "mlp": "#DD8452"}
    for col, name in enumerate(names, 1):
        d = by_name[name]
        for s, site in enumerate(d["sites"]):
            fig.add_scatter(
                x=list(range(len(d["aie"][s]))),
                y=d["aie"][s],
                error_y=dict(type="data", array=d["sem"][s]),
                name="attention layer" if site == "attn" else "MLP",
                marker_color=colors[site],
                showlegend=col == 1,
                row=1,
                col=col,
            )
    fig.update_layout(
        title="Indirect effect by layer (last token)",
        xaxis_title="layer",
        yaxis_title="AIE",
        width=max(700, 520 * len(names)),
        height=420,
        **STYLE,
    )
    return fig


def state_split_figure(by_task: Any) -> go.Figure:
    """Who writes the ICL - zero-shot state difference ``D_L`` after each layer ``L``
    (:func:`~workbench.studies.sites.task_sites`'s ``split``): the share of ``|D_L|^2`` written by
    the embedding and by all attention layers and all MLPs up to ``L`` (the shares sum to 1), one
    panel per task."""
    by_task = records(by_task, Sites)
    tasks = list(by_task)
    fig = make_subplots(rows=1, cols=len(tasks), subplot_titles=tasks, shared_yaxes=True)
    colors = {"attn": "#4C72B0", "mlp": "#DD8452", "embed": "#999999"}
    labels = {"attn": "attention layers up to L", "mlp": "MLPs up to L", "embed": "embedding"}
    for col, task in enumerate(tasks, 1):
        split = by_task[task].split
        for part in ("attn", "mlp", "embed"):
            fig.add_scatter(
                x=list(range(len(split[part]))),
                y=split[part],
                mode="lines+markers",
                name=labels[part],
                marker_color=colors[part],
                showlegend=col == 1,
                row=1,
                col=col,
            )
    fig.add_hline(y=0, line_color="#888888", line_width=1)
    fig.update_layout(
        title="Who writes the ICL − zero-shot state after layer L (share of |D_L|², sums to 1)",
        xaxis_title="layer L",
        yaxis_title="share of |D_L|²",
        width=max(700, 520 * len(tasks)),
        height=420,
        **STYLE,
    )
    return fig
