"""The figure of the ``diagnose`` study: where and how strongly an FV acts, one figure per run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...studies.diagnose import Diagnosis
from ..style import COLORS, CONDITION_LABELS, STYLE, integer_axis
from . import records, study_figure

__all__ = ["diagnose_figure", "injection_figure"]


@study_figure("diagnose")
def diagnose_figure(by_task: Any) -> dict[str, go.Figure]:
    """:func:`injection_figure` of each run, written as ``<model>_diagnose_<task>``."""
    return {f"_{task}": injection_figure(record) for task, record in records(by_task, Diagnosis).items()}


def injection_figure(diag: Diagnosis | Mapping[str, Any], title: str | None = None) -> go.Figure:
    """Zero-shot accuracy by layer and scale of the FV (and, if measured, by its number of heads),
    beside the two baselines and the FV's size relative to the residual stream (from
    :func:`workbench.studies.injection_diagnostics` and :func:`~workbench.studies.head_count_grid`)."""
    if not isinstance(diag, Diagnosis):
        diag = Diagnosis.from_dict(diag)
    layers, alphas = diag.layers, diag.alphas
    grid = diag.head_counts
    panels = ["alpha x FV added after a layer"]
    if grid:
        panels.append("FV of the top k heads (alpha 1)")
    panels.append("task-vector ceiling and FV size")
    n = len(panels)
    specs = [[{}] * (n - 1) + [{"secondary_y": True}]]
    fig = make_subplots(rows=1, cols=n, horizontal_spacing=0.08, subplot_titles=panels, specs=specs)
    heat = dict(
        colorscale="Viridis",
        zmin=0,
        zmax=1,
        colorbar=dict(title="zero-shot top-1", orientation="h", x=0.15, y=-0.42, len=0.3, thickness=12),
    )
    fig.add_trace(
        go.Heatmap(
            z=diag.zero_shot,
            x=layers,
            y=[str(a) for a in alphas],
            **heat,
            hovertemplate="layer %{x}, alpha %{y}<br>top-1 %{z:.0%}<extra></extra>",
        ),
        1,
        1,
    )
    fig.update_yaxes(title_text="alpha", type="category", row=1, col=1)
    if grid:
        centered = diag.head_counts_centered
        rows = [str(k) for k in grid["counts"]]
        z = list(grid["zero_shot"])
        if centered:
            rows += [f"{k} centred" for k in centered["counts"]]
            z += centered["zero_shot"]
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=grid["layers"],
                y=rows,
                **heat,
                showscale=False,
                hovertemplate="layer %{x}, top %{y} heads<br>top-1 %{z:.0%}<extra></extra>",
            ),
            1,
            2,
        )
        fig.update_xaxes(range=[min(layers) - 0.5, max(layers) + 0.5], row=1, col=2)
        fig.update_yaxes(type="category", row=1, col=2)  # tick labels say "k" or "k centred" heads
    for key, name, color in (
        ("task_vector", CONDITION_LABELS["task_vector"], COLORS["task_vector"]),
        ("mean_state", CONDITION_LABELS["mean_state"], COLORS["mean_state"]),
    ):
        fig.add_trace(
            go.Scatter(x=layers, y=getattr(diag, key), name=name, mode="lines+markers", line_color=color),
            1,
            n,
        )
    tests = diag.state_tests
    if tests:
        for key, name, color in (
            ("replace_mean_icl", "zero-shot, state replaced by mean ICL state", "#64B5CD"),
            ("add_icl_minus_zero", "zero-shot + (mean ICL - mean zero-shot state)", "#937860"),
        ):
            fig.add_trace(
                go.Scatter(
                    x=tests["layers"],
                    y=tests[key],
                    name=name,
                    mode="lines+markers",
                    line=dict(color=color, dash="dash"),
                ),
                1,
                n,
            )
    best_fv = [max(col) for col in zip(*diag.zero_shot)]
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=best_fv,
            name="zero-shot + FV (best alpha)",
            mode="lines+markers",
            line_color=COLORS["zero_shot_fv"],
        ),
        1,
        n,
    )
    fig.add_trace(
        go.Scatter(
            x=layers,
            y=diag.norm_ratio,
            name="|FV| / |residual| (right axis, log)",
            mode="lines",
            line=dict(color="#999999", dash="dot"),
        ),
        1,
        n,
        secondary_y=True,
    )
    fig.update_yaxes(title_text="top-1 accuracy", range=[0, 1.02], row=1, col=n, secondary_y=False)
    fig.update_yaxes(title_text="|FV| / |residual|", type="log", dtick=1, row=1, col=n, secondary_y=True)
    fig.update_xaxes(title_text="layer", **integer_axis(layers))
    fig.update_layout(
        title=title
        or f"{diag.model} / {diag.task}: where, how strongly and with how many heads "
        f"the FV acts (n={diag.n_prompts} zero-shot test prompts)",
        width=430 * n + 420,
        height=480,
        legend=dict(x=1.06, y=1, font=dict(size=11)),
        margin=dict(b=150),
        **STYLE,
    )
    return fig
