"""Figures of a suite (:class:`~workbench.method.suite.SuiteResult`): the universal AIE map and the
per-task accuracies with and without each FV, beside the majority and chance baselines."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from ..method.suite import SuiteResult
from .baseline_marks import add_label_baselines
from .figures import aie_heatmap, export
from .style import STYLE

__all__ = ["universal_heatmap", "suite_bars", "suite_figures"]

BARS = (  # (accuracy key, condition, label, colour)
    ("accuracy", "zero_shot", "zero-shot", "#BBBBBB"),
    ("accuracy", "zero_shot_fv", "zero-shot + FV", "#DD8452"),
    ("accuracy_universal", "zero_shot_fv", "zero-shot + universal FV", "#C44E52"),
    ("accuracy", "shuffled", "shuffled", "#8C8C8C"),
    ("accuracy", "shuffled_fv", "shuffled + FV", "#4C72B0"),
    ("accuracy_universal", "shuffled_fv", "shuffled + universal FV", "#2A3F7A"),
)


def universal_heatmap(suite: SuiteResult) -> go.Figure | None:
    """The mean AIE over the suite's source tasks, the universal heads outlined (None: no sources)."""
    if suite.universal_aie is None:
        return None
    title = f"{suite.model}: universal AIE (mean over {len(suite.sources)} tasks)"
    return aie_heatmap(suite.universal_aie, top_k=len(suite.universal_heads), title=title)


def suite_bars(suite: SuiteResult) -> go.Figure:
    """Per task: zero-shot and shuffled top-1, without and with the per-task and the universal FV
    (filtered to the queries clean ICL gets right, with standard errors), and the baselines."""
    rows = [r for r in suite.ordered_rows() if r.status == "ran"]
    names = [r.name for r in rows]
    fig = go.Figure()
    for key, cond, label, color in BARS:
        values = [getattr(r, key).get(cond) for r in rows]
        errors = [getattr(r, key + "_sem").get(cond) for r in rows]
        fig.add_trace(
            go.Bar(name=label, x=names, y=values, marker_color=color, error_y=dict(type="data", array=errors))
        )
    add_label_baselines(fig, names, [r.majority for r in rows], [r.chance for r in rows])
    fig.update_layout(
        barmode="group",
        title=f"{suite.model}: per-task FV and universal FV (top-1, queries clean ICL gets right)",
        yaxis_title="top-1 accuracy",
        yaxis_range=[0, 1.02],
        width=max(800, 130 * len(names)),
        height=460,
        **STYLE,
    )
    return fig


def suite_figures(
    suite: SuiteResult, out_dir: str | os.PathLike, formats: Sequence[str] = ("html",)
) -> list[Path]:
    """Write the suite's figures (``universal_aie``, ``suite_accuracy``) into ``out_dir``."""
    written = export(suite_bars(suite), "suite_accuracy", out_dir, formats)
    heatmap = universal_heatmap(suite)
    if heatmap is not None:
        written += export(heatmap, "universal_aie", out_dir, formats)
    return written
