"""Plotly figures of the workbench's results, one look for all, and their export.

Every function takes result objects (a HeadScan, LayerSweep, TaskResult, or the dict a study
returns) and never runs a model.
:func:`export` writes offline HTML (plotly.js inlined) and, when a browser is available for
kaleido, PNG and PDF for papers.

>>> import torch
>>> fig = aie_heatmap(torch.rand(4, 3), top_k=2, title="toy")
>>> len(fig.layout.shapes)
2
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..base.files import atomic_path
from ..core.scan import top_heads, universal_map
from .baseline_marks import add_label_baselines

__all__ = [
    "aie_heatmap",
    "aie_grid",
    "layer_sweep_figure",
    "head_count_figure",
    "accuracy_comparison",
    "decoded_figure",
    "grouped_bars",
    "scatter_figure",
    "soft_alpha_figure",
    "injection_figure",
    "steering_figure",
    "export",
    "CONDITION_LABELS",
    "STYLE",
]

STYLE = dict(template="simple_white", font=dict(family="Helvetica, Arial, sans-serif", size=13))
COLORS = {
    "icl": "#4C72B0",
    "zero_shot": "#BBBBBB",
    "zero_shot_fv": "#DD8452",
    "shuffled": "#8C8C8C",
    "shuffled_fv": "#C44E52",
    "mean_state": "#55A868",
    "task_vector": "#8172B3",
}
CONDITION_LABELS = {
    "icl": "10-shot ICL",
    "zero_shot": "zero-shot",
    "zero_shot_fv": "zero-shot + FV",
    "shuffled": "shuffled",
    "shuffled_fv": "shuffled + FV",
    "mean_state": "zero-shot + mean state",
    "task_vector": "zero-shot + task vector (Hendel)",
}


def _aie(scan) -> torch.Tensor:
    """The ``[layer, head]`` AIE of a HeadScan (or an AIE tensor itself)."""
    return scan.aie if hasattr(scan, "aie") else torch.as_tensor(scan)


def _top(aie: torch.Tensor, k: int) -> list[tuple[int, int]]:
    return [(l, h) for l, h, _ in top_heads(aie, k)]


def _heatmap_trace(aie: torch.Tensor, sem: torch.Tensor | None = None, showscale: bool = True, zmax=None):
    L, H = aie.shape
    zmax = zmax or float(torch.nan_to_num(aie).abs().max()) or 1.0
    custom = sem.numpy() if sem is not None else None
    hover = (
        "layer %{y}, head %{x}<br>AIE %{z:.4f}"
        + ("<br>s.e. %{customdata:.4f}" if custom is not None else "")
        + "<extra></extra>"
    )
    return go.Heatmap(
        z=aie.numpy(),
        x=list(range(H)),
        y=list(range(L)),
        colorscale="RdBu_r",
        zmid=0,
        zmin=-zmax,
        zmax=zmax,
        customdata=custom,
        hovertemplate=hover,
        showscale=showscale,
        colorbar=dict(title="AIE"),
    )


def aie_heatmap(scan, top_k: int = 10, title: str | None = None) -> go.Figure:
    """Layers x heads heatmap of the AIE, the top-``k`` heads outlined, values on hover."""
    aie = _aie(scan).float()
    sem = scan.sem if hasattr(scan, "sem") else None
    fig = go.Figure(_heatmap_trace(aie, sem))
    for l, h in _top(aie, top_k):
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
    items = [(name, _aie(s).float()) for name, s in scans.items()]
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
        fig.add_trace(_heatmap_trace(aie, showscale=(i == 0), zmax=zmax), row=r, col=c)
        for l, h in _top(aie, top_k):
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


def layer_sweep_figure(
    sweep, baselines: Mapping[str, Any] | None = None, title: str = "Where to add the FV"
) -> go.Figure:
    """Accuracy against the layer of intervention, with binomial error bars.

    ``sweep``: the FV's LayerSweep; ``baselines``: name -> LayerSweep of other interventions (e.g.
    the mean state, the task vector) on the same prompts.
    """
    fig = go.Figure()
    colors = {
        "FV": {"zero_shot": COLORS["zero_shot_fv"], "shuffled": COLORS["shuffled_fv"]},
        "mean state": COLORS["mean_state"],
        "task vector": COLORS["task_vector"],
    }
    for label, sw in [("FV", sweep), *((baselines or {}).items())]:
        d = sw.to_dict()
        for name in [k for k in d if k not in ("layers", "baseline", "n")]:
            y = d[name]
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
        xaxis=dict(dtick=1 if len(sweep.layers) <= 12 else 2),
        width=820,
        height=440,
        **STYLE,
    )
    return fig


def head_count_figure(curves: Mapping[str, Mapping[int, Any]], title: str = "Heads in the FV") -> go.Figure:
    """Accuracy against the number of top heads summed into the FV, one line per prompt set."""
    fig = go.Figure()
    for name, by_k in curves.items():
        ks = sorted(int(k) for k in by_k)
        acc = [by_k[k].top1 if hasattr(by_k[k], "top1") else by_k[k] for k in ks]
        fig.add_trace(
            go.Scatter(x=ks, y=acc, mode="lines+markers", name=name, line=dict(color=COLORS.get(name)))
        )
    fig.update_layout(
        title=title,
        xaxis_title="number of heads (by AIE)",
        yaxis_title="top-1 accuracy",
        yaxis_range=[0, 1.02],
        width=640,
        height=400,
        **STYLE,
    )
    return fig


def accuracy_comparison(
    results: Sequence[Any],
    key: str = "accuracy",
    conditions: Sequence[str] = tuple(CONDITION_LABELS),
    title: str | None = None,
) -> go.Figure:
    """Grouped bars per task (TaskResults): ICL, zero-shot, + FV, shuffled, + FV and the baselines.

    ``key``: ``"accuracy"`` (test queries clean ICL gets right) or ``"accuracy_unfiltered"``.
    """
    tasks = [r.task.name for r in results] + ["mean"]
    fig = go.Figure()
    for c in conditions:
        vals = [getattr(r, key)[c].top1 for r in results]
        vals.append(sum(vals) / len(vals))
        fig.add_trace(go.Bar(name=CONDITION_LABELS.get(c, c), x=tasks, y=vals, marker_color=COLORS.get(c)))
    if results and all(hasattr(r, "baselines") for r in results):  # each task's majority and chance
        base = [r.baselines for r in results]
        add_label_baselines(fig, tasks[:-1], [b.majority for b in base], [b.chance for b in base])
    model = results[0].model if results else ""
    label = "filtered to queries ICL gets right" if key == "accuracy" else "all test queries"
    fig.update_layout(
        barmode="group",
        title=title or f"{model}: top-1 accuracy ({label})",
        yaxis_title="top-1 accuracy",
        yaxis_range=[0, 1.02],
        width=max(700, 110 * len(tasks)),
        height=440,
        **STYLE,
    )
    return fig


def decoded_figure(
    tokens: Sequence[tuple[str, float]], title: str = "FV decoded through the unembedding"
) -> go.Figure:
    """Horizontal bars of the top tokens of a decoded vector and their logits."""
    labels = [repr(t)[1:-1] for t, _ in tokens][::-1]
    fig = go.Figure(go.Bar(x=[v for _, v in tokens][::-1], y=labels, orientation="h", marker_color="#DD8452"))
    fig.update_layout(title=title, xaxis_title="logit", width=520, height=120 + 26 * len(tokens), **STYLE)
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
            hovertemplate="%{text}<br>x %{x:.4f}<br>y %{y:.4f}<extra></extra>",
        )
    )
    lo, hi = min(min(x), min(y)), max(max(x), max(y))
    fig.add_shape(type="line", x0=lo, y0=lo, x1=hi, y1=hi, line=dict(color="#999", dash="dash"))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, width=560, height=480, **STYLE)
    return fig


def injection_figure(diag: Mapping[str, Any], title: str | None = None) -> go.Figure:
    """Zero-shot accuracy by layer and scale of the FV (and, if measured, by its number of heads),
    beside the two baselines and the FV's size relative to the residual stream (from
    :func:`workbench.studies.injection_diagnostics` and :func:`~workbench.studies.head_count_grid`)."""
    layers, alphas = diag["layers"], diag["alphas"]
    grid = diag.get("head_counts")
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
            z=diag["zero_shot"],
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
        centered = diag.get("head_counts_centered")
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
            go.Scatter(x=layers, y=diag[key], name=name, mode="lines+markers", line_color=color), 1, n
        )
    tests = diag.get("state_tests")
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
    best_fv = [max(col) for col in zip(*diag["zero_shot"])]
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
            y=diag["norm_ratio"],
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
    fig.update_xaxes(title_text="layer")
    fig.update_layout(
        title=title
        or f"{diag['model']} / {diag['task']}: where, how strongly and with how many heads "
        f"the FV acts (n={diag['n_prompts']} zero-shot test prompts)",
        width=430 * n + 420,
        height=480,
        legend=dict(x=1.06, y=1, font=dict(size=11)),
        margin=dict(b=150),
        **STYLE,
    )
    return fig


def steering_figure(result: Mapping[str, Any], title: str | None = None) -> go.Figure:
    """A steering vector's effect against its scale alpha, one line per layer it is added after.

    ``result``: ``layers``, ``alphas``, ``score`` (``[layer][alpha]``), optional ``projected``
    (the score with the direction projected out, drawn as a dashed line), ``metric`` (axis label)
    and ``label``; e.g. one entry of ``runs/<model>/steering.json`` (``bench/steering_effect.py``).
    """
    fig = go.Figure()
    for layer, row in zip(result["layers"], result["score"]):
        fig.add_trace(
            go.Scatter(x=list(result["alphas"]), y=list(row), mode="lines+markers", name=f"layer {layer}")
        )
    if result.get("projected") is not None:
        a = result["alphas"]
        fig.add_trace(
            go.Scatter(
                x=[min(a), max(a)],
                y=[result["projected"]] * 2,
                mode="lines",
                name="direction projected out",
                line=dict(color="#333", dash="dash", width=1),
            )
        )
    fig.add_vline(x=0, line=dict(color="#BBBBBB", width=1))
    fig.update_layout(
        title=title or f"Steering with {result.get('label', 'a contrastive vector')}",
        xaxis_title="alpha (multiple of the mean difference, added after the layer)",
        yaxis_title=result.get("metric", "score"),
        width=760,
        height=440,
        **STYLE,
    )
    return fig


def _browser() -> str | None:
    if os.environ.get("BROWSER_PATH"):
        return os.environ["BROWSER_PATH"]
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def export(
    fig: go.Figure,
    name: str,
    out_dir: str | os.PathLike = "figures",
    formats: Sequence[str] = ("html", "png", "pdf"),
) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.{html,png,pdf}``; returns the files written.

    HTML inlines plotly.js, so it opens offline.  PNG/PDF need kaleido and a Chromium; without
    one, a message says so and the HTML is still written.
    """
    out = Path(out_dir)
    written = []
    if "html" in formats:
        path = out / f"{name}.html"
        with atomic_path(path) as tmp:
            fig.write_html(str(tmp), include_plotlyjs=True, full_html=True)
        written.append(path)
    static = [f for f in formats if f in ("png", "pdf", "svg")]
    if static:
        browser = _browser()
        if browser is None:
            print(
                f"note: no Chromium found, so {name} was written as HTML only. Install one (Debian: "
                "apt-get install chromium) or set BROWSER_PATH for PNG/PDF.",
                file=sys.stderr,
            )
            return written
        os.environ.setdefault("BROWSER_PATH", browser)
        for fmt in static:
            path = out / f"{name}.{fmt}"
            try:
                with atomic_path(path, suffix=f".{fmt}") as tmp:
                    fig.write_image(str(tmp), format=fmt, scale=2 if fmt == "png" else 1)
            except Exception as e:  # noqa: BLE001 - static export is optional
                print(
                    f"note: static export of {name}.{fmt} failed ({type(e).__name__}: {e}); the HTML is "
                    "written.",
                    file=sys.stderr,
                )
                break
            written.append(path)
    return written


def soft_alpha_figure(soft, scan, top_k: int = 8, title: str | None = None) -> go.Figure:
    """Learned soft task vector against the head scan: alpha vs AIE per head, and alpha as a heatmap.

    ``soft``: a :class:`workbench.soft.SoftTaskVector` (or an ``[layer, head]`` tensor of alphas);
    ``scan``: a HeadScan (or its AIE).  The ``top_k`` heads by AIE are drawn in orange on the
    left and outlined on the right.
    """
    alpha = torch.as_tensor(getattr(soft, "alpha", soft)).detach().float()
    aie = _aie(scan).float()
    L, H = alpha.shape
    top = set(_top(aie, top_k))
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        horizontal_spacing=0.12,
        subplot_titles=["alpha against AIE (one point per head)", "alpha per head"],
    )
    for is_top, name, color in [(False, "other heads", "#4C72B0"), (True, f"top {top_k} by AIE", "#DD8452")]:
        pts = [(l, h) for l in range(L) for h in range(H) if ((l, h) in top) == is_top]
        fig.add_trace(
            go.Scatter(
                x=[float(aie[l, h]) for l, h in pts],
                y=[float(alpha[l, h]) for l, h in pts],
                mode="markers",
                name=name,
                text=[f"L{l}H{h}" for l, h in pts],
                marker=dict(color=color, size=7, opacity=0.8),
                hovertemplate="%{text}<br>AIE %{x:.4f}<br>alpha %{y:.3f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Heatmap(
            z=alpha.numpy(),
            x=list(range(H)),
            y=list(range(L)),
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar=dict(title="alpha", x=1.02),
            hovertemplate="layer %{y}, head %{x}<br>alpha %{z:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    for l, h in top:
        fig.add_shape(
            type="rect",
            x0=h - 0.5,
            x1=h + 0.5,
            y0=l - 0.5,
            y1=l + 0.5,
            line=dict(color="#D9480F", width=3),
            opacity=1,
            fillcolor="rgba(0,0,0,0)",
            row=1,
            col=2,
        )
    fig.update_xaxes(title_text="AIE", row=1, col=1)
    fig.update_yaxes(title_text="alpha", range=[-0.03, 1.03], row=1, col=1)
    fig.update_xaxes(title_text="head", row=1, col=2)
    fig.update_yaxes(title_text="layer", row=1, col=2)
    task = getattr(soft, "task", "") or getattr(scan, "task", "")
    n_on = int((alpha > 0.5).sum())
    fig.update_layout(
        title=title
        or f"Soft task vector{': ' + task if task else ''} ({n_on} of {L * H} heads with alpha > 0.5)",
        width=1000,
        height=max(460, 300 + 12 * L),
        legend=dict(orientation="h", x=0.0, y=-0.15),
        **STYLE,
    )
    return fig


# --- issue 14: which heads, which vector ---------------------------------------------------------
def positions_figure(by_task: Mapping[str, Mapping[str, Any]], alpha: float = 1.0) -> go.Figure:
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
    tasks = list(by_task)
    for col, s in enumerate(sets, 1):
        for way, label in ways.items():
            ys = [
                by_task[t][s]["none"] if way == "none" else by_task[t][s][way].get(str(alpha)) for t in tasks
            ]
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


def signed_figure(by_task: Mapping[str, Mapping[str, Any]]) -> dict[str, go.Figure]:
    """Signed heads (:func:`~workbench.studies.signed.signed_heads_study`): the usual AIE heatmap of
    the first task (FV heads outlined black) next to its ``AIE / s.e.`` map (the ``k`` most negative
    heads outlined green), and bars of ablations and FV variants per task."""
    first = next(iter(by_task))
    s = by_task[first]
    aie, t = torch.tensor(s["aie"]), torch.tensor(s["t"])
    heat = make_subplots(
        rows=1, cols=2, subplot_titles=["AIE (FV heads outlined)", "AIE / s.e. (negative heads outlined)"]
    )
    heat.add_trace(_heatmap_trace(aie, showscale=False), row=1, col=1)
    tmax = float(t.abs().max()) or 1.0
    heat.add_trace(
        go.Heatmap(z=t.numpy(), colorscale="RdBu_r", zmid=0, zmin=-tmax, zmax=tmax, colorbar=dict(title="t")),
        row=1,
        col=2,
    )
    for col, heads, color in ((1, s["top"], "black"), (2, s["negative"], "#2ca02c")):
        for l, h in heads:
            heat.add_shape(
                type="rect",
                x0=h - 0.5,
                x1=h + 0.5,
                y0=l - 0.5,
                y1=l + 0.5,
                line=dict(color=color, width=2),
                row=1,
                col=col,
            )
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
            ys = [by_task[task][part][name].get(key) for task in tasks]
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


def induction_figure(by_task: Mapping[str, Mapping[str, Any]]) -> dict[str, go.Figure]:
    """FV heads against induction heads (:mod:`workbench.studies.induction`): each head's prefix-matching
    score against its AIE averaged over the tasks, and clean ICL accuracy as the top n % of FV heads
    (sparing induction heads), of induction heads (sparing FV heads) or random heads are ablated
    (mean over tasks, error bars: standard error over tasks)."""
    tasks = list(by_task)
    aie = torch.stack([torch.tensor(by_task[t]["aie"]) for t in tasks]).mean(0)
    ind = torch.tensor(by_task[tasks[0]]["prefix_matching"])
    L, H = aie.shape
    labels = [f"L{l}H{h}" for l in range(L) for h in range(H)]
    scatter = go.Figure(
        go.Scatter(
            x=ind.flatten().tolist(),
            y=aie.flatten().tolist(),
            mode="markers",
            text=labels,
            hovertemplate="%{text}<br>prefix matching %{x:.3f}<br>AIE %{y:.4f}<extra></extra>",
        )
    )
    scatter.update_layout(
        title=f"Induction (prefix matching) against AIE (mean over {len(tasks)} tasks)",
        xaxis_title="prefix-matching score",
        yaxis_title="AIE",
        width=600,
        height=480,
        **STYLE,
    )
    percents = by_task[tasks[0]]["percents"]
    curves = go.Figure()
    names = {
        "fv_not_induction": "FV heads, induction spared",
        "induction_not_fv": "induction heads, FV spared",
        "random": "random heads",
    }
    for key, label in names.items():
        vals = torch.tensor([by_task[t][key] for t in tasks], dtype=torch.float)  # [task, percent]
        err = vals.std(0) / len(tasks) ** 0.5 if len(tasks) > 1 else torch.zeros(len(percents))
        curves.add_scatter(
            x=percents, y=vals.mean(0).tolist(), error_y=dict(type="data", array=err.tolist()), name=label
        )
    base = sum(by_task[t]["none"] for t in tasks) / len(tasks)
    curves.add_hline(y=base, line_dash="dash", line_color="#999", annotation_text="no ablation")
    curves.update_layout(
        title=f"Clean ICL accuracy under last-token mean ablation ({len(tasks)} tasks)",
        xaxis_title="heads ablated (% of all heads)",
        yaxis_title="10-shot top-1 accuracy",
        width=700,
        height=440,
        **STYLE,
    )
    return {"_scatter": scatter, "_ablation": curves}


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


def state_split_figure(by_task: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """Who writes the ICL - zero-shot state difference ``D_L`` after each layer ``L``
    (:func:`~workbench.studies.sites.task_sites`'s ``split``): the share of ``|D_L|^2`` written by
    the embedding and by all attention layers and all MLPs up to ``L`` (the shares sum to 1), one
    panel per task."""
    tasks = list(by_task)
    fig = make_subplots(rows=1, cols=len(tasks), subplot_titles=tasks, shared_yaxes=True)
    colors = {"attn": "#4C72B0", "mlp": "#DD8452", "embed": "#999999"}
    labels = {"attn": "attention layers up to L", "mlp": "MLPs up to L", "embed": "embedding"}
    for col, task in enumerate(tasks, 1):
        split = by_task[task]["split"]
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


def head_count_choice_figure(by_task: Mapping[str, Mapping[str, Any]]) -> go.Figure:
    """The paper's fixed head count against the count chosen on valid (with its layer): zero-shot and
    shuffled test accuracy (ICL-correct queries) per task, the chosen count in the hover text."""
    tasks = list(by_task)
    fig = go.Figure()
    for rule, color in (("fixed", "#BBBBBB"), ("valid", "#DD8452")):
        for cond, pattern in (("zero_shot_fv", ""), ("shuffled_fv", "/")):
            fig.add_bar(
                x=tasks,
                y=[by_task[t][rule][cond] for t in tasks],
                name=f"{CONDITION_LABELS[cond]}, {'fixed k' if rule == 'fixed' else 'k chosen on valid'}",
                marker_color=color,
                marker_pattern_shape=pattern,
                text=[f"k={by_task[t][rule]['k']}, L{by_task[t][rule]['layer']}" for t in tasks],
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
