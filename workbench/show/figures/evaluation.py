"""Figures of evaluations: accuracy by layer, by head count, per task and condition; grouped bars
and labelled scatters for comparisons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from ..baseline_marks import add_label_baselines
from ..style import COLORS, CONDITION_LABELS, HOVER_NUMBER, STYLE, integer_axis, note

__all__ = ["layer_sweep_figure", "head_count_figure", "accuracy_comparison", "grouped_bars", "scatter_figure"]


def layer_sweep_figure(
    sweep, baselines: Mapping[str, Any] | None = None, title: str = "Where to add the FV"
) -> go.Figure:
    """Accuracy against the layer of intervention, with binomial error bars.

    ``sweep``: the FV's LayerSweep; ``baselines``: name -> LayerSweep of other interventions (e.g.
    the mean state, the task vector) on the same prompts.
    """
    fig = go.Figure()
    values = []
    colors = {
        "FV": {"zero_shot": COLORS["zero_shot_fv"], "shuffled": COLORS["shuffled_fv"]},
        "mean state": COLORS["mean_state"],
        "task vector": COLORS["task_vector"],
    }
    for label, sw in [("FV", sweep), *((baselines or {}).items())]:
        d = sw.to_dict()
        for name in [k for k in d if k not in ("layers", "baseline", "n")]:
            y = d[name]
            values += y
            n = d.get("n", {}).get(name, 0)
            err = [((p * (1 - p) / n) ** 0.5 if n else 0) for p in y]
            color = colors.get(label, "#333")
            color = color.get(name, "#333") if isinstance(color, dict) else color
            fig.add_trace(
                go.Scatter(
                    x=d["layers"],
                    y=y,
                    mode="lines+markers",
                    name=f"{name} + {label}",
                    error_y=dict(type="data", array=err, visible=True, thickness=1),
                    line=dict(dash="solid" if label == "FV" else "dot", color=color),
                )
            )
        if label == "FV":
            for name, base in d.get("baseline", {}).items():
                fig.add_trace(
                    go.Scatter(
                        x=[d["layers"][0], d["layers"][-1]],
                        y=[base, base],
                        mode="lines",
                        name=f"{name}, no intervention",
                        line=dict(color=COLORS.get(name, "#999"), dash="dash", width=1),
                    )
                )
    fig.update_layout(
        title=title,
        xaxis_title="layer L (added after block L)",
        yaxis_title="top-1 accuracy",
        yaxis_range=[0, 1.02],
        xaxis=integer_axis(sweep.layers),
        width=820,
        height=440,
        **STYLE,
    )
    if not any(v == v for v in values):
        note(fig, "no prompts to evaluate: every point is missing")
    elif not any(v for v in values if v == v):
        note(fig, "every point is 0: no test query is answered right at any layer")
    return fig


def head_count_figure(curves: Mapping[str, Mapping[int, Any]], title: str = "Heads in the FV") -> go.Figure:
    """Accuracy against the number of top heads summed into the FV, one line per prompt set."""
    fig = go.Figure()
    values, counts = [], set()
    for name, by_k in curves.items():
        ks = sorted(int(k) for k in by_k)
        acc = [by_k[k].top1 if hasattr(by_k[k], "top1") else by_k[k] for k in ks]
        values += acc
        counts.update(ks)
        fig.add_trace(
            go.Scatter(x=ks, y=acc, mode="lines+markers", name=name, line=dict(color=COLORS.get(name)))
        )
    fig.update_layout(
        title=title,
        xaxis=dict(title="number of heads (by AIE)", **integer_axis(counts)),
        yaxis_title="top-1 accuracy",
        yaxis_range=[0, 1.02],
        width=640,
        height=400,
        **STYLE,
    )
    if not any(v == v for v in values):
        note(fig, "no prompts to evaluate: every point is missing")
    elif not any(v for v in values if v == v):
        note(fig, "every point is 0: no prompt is answered right with any number of heads")
    return fig


def accuracy_comparison(
    results: Sequence[Any],
    key: str = "accuracy",
    conditions: Sequence[str] = tuple(CONDITION_LABELS),
    title: str | None = None,
) -> go.Figure:
    """Grouped bars per task (TaskResults): ICL, zero-shot, + FV, shuffled, + FV and the baselines.

    ``key``: ``"accuracy"`` (test queries clean ICL gets right) or ``"accuracy_unfiltered"``, each
    first-token top-1 (the paper's metric); ``"answer_accuracy"`` or ``"answer_accuracy_unfiltered"``
    score the whole answer (every token top-1 under teacher forcing).  With more than one task, a last
    group is their mean; a task with no query to show says so on the figure.
    """
    known = ("accuracy", "accuracy_unfiltered", "answer_accuracy", "answer_accuracy_unfiltered")
    if key not in known:
        raise ValueError(f"key must be one of {', '.join(known)}, not {key!r}")
    lacking = [r.task.name for r in results if getattr(r, key) is None]
    if lacking:
        raise ValueError(
            f"the runs of {', '.join(lacking)} hold no whole-answer scores (saved before the workbench "
            "scored whole answers): run them again, or use key='accuracy'"
        )
    names = [r.task.name for r in results]
    tasks = names + (["mean"] if len(results) > 1 else [])
    fig = go.Figure()
    for c in conditions:
        vals = [getattr(r, key)[c].top1 for r in results]
        if len(results) > 1:
            vals.append(sum(vals) / len(vals))
        fig.add_trace(go.Bar(name=CONDITION_LABELS.get(c, c), x=tasks, y=vals, marker_color=COLORS.get(c)))
    if results and all(hasattr(r, "baselines") for r in results):  # each task's majority and chance
        base = [r.baselines for r in results]
        add_label_baselines(fig, names, [b.majority for b in base], [b.chance for b in base])
    empty = [
        r.task.name for r in results if all(getattr(getattr(r, key)[c], "n", 1) == 0 for c in conditions)
    ]
    if empty:
        filtered = not key.endswith("unfiltered")
        why = (
            "no test query that clean ICL answers right: nothing to filter on (see the unfiltered figure)"
            if filtered
            else "no test query"
        )
        note(fig, f"{', '.join(empty)}: {why}" if len(results) > 1 else why)
    model = results[0].model if results else ""
    label = "filtered to queries ICL gets right" if not key.endswith("unfiltered") else "all test queries"
    metric = "whole-answer accuracy" if key.startswith("answer_") else "top-1 accuracy"
    fig.update_layout(
        barmode="group",
        title=title or f"{model}: {metric} ({label})",
        yaxis_title=metric,
        yaxis_range=[0, 1.02],
        width=max(700, 110 * len(tasks)),
        height=440,
        **STYLE,
    )
    return fig


def grouped_bars(
    rows: Mapping[str, Mapping[str, float]], title: str = "Composing function vectors"
) -> go.Figure:
    """Grouped bars: one group per row (e.g. a composed task), one bar per way of triggering it."""
    ways = list(dict.fromkeys(w for r in rows.values() for w in r))
    fig = go.Figure([go.Bar(name=w, x=list(rows), y=[rows[t].get(w) for t in rows]) for w in ways])
    fig.update_layout(
        barmode="group",
        title=title,
        yaxis_title="top-1 accuracy",
        yaxis_range=[0, 1.02],
        width=700,
        height=420,
        **STYLE,
    )
    return fig


def scatter_figure(
    x: Sequence[float], y: Sequence[float], labels: Sequence[str], xlabel: str, ylabel: str, title: str
) -> go.Figure:
    """A labelled scatter (e.g. one point per head), with the y = x line."""
    fig = go.Figure(
        go.Scatter(
            x=list(x),
            y=list(y),
            mode="markers",
            text=list(labels),
            hovertemplate=f"%{{text}}<br>x %{{x:{HOVER_NUMBER}}}<br>y %{{y:{HOVER_NUMBER}}}<extra></extra>",
        )
    )
    lo, hi = min(min(x), min(y)), max(max(x), max(y))
    fig.add_shape(type="line", x0=lo, y0=lo, x1=hi, y1=hi, line=dict(color="#999", dash="dash"))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, width=560, height=480, **STYLE)
    return fig
