"""Paper-style figures for a set of tasks on one model: ``workbench figures`` and the figures notebook;
the studies of finished runs with their JSON and figures: ``workbench study`` (:func:`run_study`).

:func:`paper_figures` runs (or, with the stage cache, reloads) :func:`run_task` for each task,
then draws every figure through :mod:`workbench.figures` and writes it to ``out_dir`` as HTML,
PNG and PDF.  The first task is the featured one (heatmap, sweeps, head counts, decoding,
attention).  The composition figure (``composition_tasks``, on by default) runs the built-in composed
tasks and their parts too (:data:`COMPOSED_TASKS`), whichever of them were not given; it says which
before it starts.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..base.files import write_json
from ..base.stage_cache import StageCache
from ..core.model import model_id, model_info
from ..data.tasks import Task, load_task
from ..method.pipeline import run_task
from ..method.protocol import Protocol
from ..method.result import TaskResult
from ..studies.agreement import attribution_vs_exact
from ..studies.cache import cached_study, int_keys, tensor_digest
from ..studies.paper import ablation, baseline_sweeps, composition, head_count_curves
from ..studies.registry import StudyResult, compute_study, get_study, load_runs, study_params
from . import figures
from .attention import attention_view
from .formats import check_formats
from .study_figures import figure_of

__all__ = ["paper_figures", "run_study", "draw_study", "COMPOSED_TASKS"]

# composed task -> the simple tasks whose FVs should add up to it
COMPOSED_TASKS = {
    "first-item-capitalize": ("choose-first-of-3", "capitalize"),
    "last-item-uppercase": ("choose-last-of-3", "uppercase"),
}


class _Writer:
    """Exports figures as ``out_dir/<model>_<key>.<format>`` and remembers what it wrote."""

    def __init__(self, model, out_dir: str | Path, formats: Sequence[str]):
        self.name, self.out_dir, self.formats = model_info(model).name, Path(out_dir), formats
        self.written: dict[str, list[Path]] = {}

    def __call__(self, fig, key: str) -> None:
        self.written[key] = figures.export(fig, f"{self.name}_{key}", self.out_dir, self.formats)


def paper_figures(
    model,
    tasks: Sequence[str | Task],
    out_dir: str | Path = "figures",
    protocol: Protocol = Protocol(),
    formats: Sequence[str] = ("html", "png", "pdf"),
    composition_tasks: bool = True,
    fresh: bool = False,
    progress: bool = True,
) -> dict[str, list[Path]]:
    """Make every figure for ``tasks`` on ``model``; returns figure name -> files written.

    Stages come from the stage cache when they were computed before; ``fresh=True`` recomputes
    everything (and does not write to the cache).  The first task is the featured one.
    """
    formats = check_formats(formats)
    cache = StageCache(enabled=not fresh).check_writable()

    def run(task, proto=protocol):
        return run_task(model, task, proto, cache=cache, progress=progress)

    tasks = [t if isinstance(t, Task) else load_task(t) for t in tasks]  # fail on a bad task before any work
    featured_protocol = Protocol(**{**protocol.to_dict(), "sweep_layers": True})
    results = {t.name: run(t, featured_protocol if i == 0 else protocol) for i, t in enumerate(tasks)}
    featured = results[tasks[0].name]
    save = _Writer(model, out_dir, formats)
    summary: dict = {
        "model": save.name,
        "tasks": list(results),
        "featured": featured.task.name,
        "seed": protocol.seed,
    }

    overview_figures(save, results)
    summary.update(featured_figures(save, model, featured, progress, cache))
    summary["attribution"] = attribution_figure(save, model, featured, progress, cache)
    if composition_tasks:
        extra = composition_extra_tasks(results)
        if extra and progress:
            print(
                f"composition figure: running {len(extra)} more tasks ({', '.join(extra)}); "
                "pass composition_tasks=False (CLI: --no-composition) to skip it",
                file=sys.stderr,
            )
        summary["composition"] = composition_figure(save, model, results, run, cache)
    save.written["attention"] = [
        attention_page(model, featured, save.out_dir / f"{save.name}_attention.html")
    ]
    write_json(save.out_dir / f"{save.name}_summary.json", summary)
    return save.written


def overview_figures(save: _Writer, results: dict[str, TaskResult]) -> None:
    """The featured task's AIE heatmap, the grid of all tasks' heatmaps, the accuracy comparisons."""
    featured = next(iter(results.values()))
    k = len(featured.fv.heads)
    save(figures.aie_heatmap(featured), f"aie_{featured.task.name}")  # the FV's own heads outlined
    if len(results) > 1:
        save(figures.aie_grid({t: r.scan for t, r in results.items()}, top_k=k), "aie_grid")
    save(figures.accuracy_comparison(list(results.values())), "accuracy")
    save(
        figures.accuracy_comparison(list(results.values()), key="accuracy_unfiltered"), "accuracy_unfiltered"
    )
    if all(r.answer_accuracy_unfiltered is not None for r in results.values()):
        save(
            figures.accuracy_comparison(list(results.values()), key="answer_accuracy"),
            "accuracy_whole_answer",
        )


def featured_figures(
    save: _Writer, model, featured: TaskResult, progress: bool, cache: StageCache | None = None
) -> dict:
    """Layer sweep beside the baselines, head-count curve, decoded FV, ablation; returns their numbers.
    The studies are stages of ``cache`` (:func:`~workbench.studies.cache.cached_study`)."""
    title = featured.task.name

    def study(name, compute):
        return cached_study(cache, name, model, featured, {}, compute)

    baselines = study("baseline_sweeps", lambda: baseline_sweeps(model, featured, progress=progress))
    sweep_title = f"{title}: accuracy by the layer of intervention (test split)"
    save(figures.layer_sweep_figure(featured.test_sweep, baselines, title=sweep_title), "layer_sweep")
    curves = int_keys(
        study("head_count_curves", lambda: head_count_curves(model, featured, progress=progress))
    )
    save(
        figures.head_count_figure(curves, title=f"{title}: accuracy by the number of FV heads"), "head_count"
    )
    decoded = featured.fv.decode(model, k=15)
    save(figures.decoded_figure(decoded, title=f"{title} FV through the unembedding"), "decoded")
    abl = study("ablation", lambda: ablation(model, featured))
    save(figures.grouped_bars({title: abl}, title=f"{title}: clean ICL accuracy under ablation"), "ablation")
    return {
        "head_count": curves,
        "decoded": decoded,
        "ablation": abl,
        "baseline_sweeps": {k: v.to_dict() for k, v in baselines.items()},
    }


def attribution_figure(
    save: _Writer, model, featured: TaskResult, progress: bool, cache: StageCache | None = None
) -> dict:
    """Attribution patching against the exact scan, on the same prompts; returns the agreement.
    The attribution scan's AIE and the agreement are a stage of ``cache`` (``study_attribution``)."""

    def compute() -> dict:
        approx, agreement = attribution_vs_exact(model, featured, progress=progress)
        return {"aie": approx.aie.flatten().tolist(), "agreement": agreement}

    stored = cached_study(cache, "attribution", model, featured, {}, compute)
    approx_aie, agreement = stored["aie"], stored["agreement"]
    H = model_info(model).n_heads
    labels = [f"L{i // H}H{i % H}" for i in range(featured.scan.aie.numel())]
    title = (
        f"{featured.task.name}: attribution patching vs the exact scan<br><sup>Spearman "
        f"{agreement['spearman']:.2f}, top-10 overlap {agreement['top_k_overlap']:.0%}</sup>"
    )
    save(
        figures.scatter_figure(
            featured.scan.aie.flatten().tolist(),
            approx_aie,
            labels,
            "exact AIE (activation patching)",
            "attribution estimate",
            title,
        ),
        "attribution",
    )
    return agreement


def composition_extra_tasks(given) -> list[str]:
    """The tasks the composition figure runs beyond ``given`` (task names): the composed tasks and their
    parts."""
    needed = dict.fromkeys(t for composed, parts in COMPOSED_TASKS.items() for t in (*parts, composed))
    return [t for t in needed if t not in given]


def composition_figure(
    save: _Writer, model, results: dict[str, TaskResult], run, cache: StageCache | None = None
) -> dict:
    """Each built-in composed task: its own FV against the sum of its parts' FVs (cached as a stage)."""
    comp = {}
    for composed, parts in COMPOSED_TASKS.items():
        part_results = [results.get(p) or run(p) for p in parts]
        whole = run(composed)
        key = {"parts": [[tensor_digest(r.fv.vector), r.fv_layer] for r in part_results]}
        comp[f"{composed} = {' + '.join(parts)}"] = cached_study(
            cache,
            "composition",
            model,
            whole,
            key,
            lambda w=whole, ps=part_results: composition(model, w, ps),
        )
    save(
        figures.grouped_bars(comp, title="Composing function vectors (zero-shot test accuracy)"),
        "composition",
    )
    return comp


def attention_page(model, featured: TaskResult, path: Path) -> Path:
    """Attention of the top FV heads against as many random heads, on the run's example ICL prompt."""
    prompt = featured.prompt_sets(model)["attention_example"][0]
    info = model_info(model)
    top = featured.fv.heads[:4]
    heads = [
        (l, h) for l in range(info.n_layers) for h in range(info.n_heads) if (l, h) not in featured.fv.heads
    ]
    others = random.Random(featured.protocol.seed).sample(heads, len(top))
    page = attention_view(model, prompt, top, f"top FV heads for {featured.task.name}")
    attention_view(model, prompt, others, "random heads, for comparison", page=page)
    return page.save(path)


def draw_study(result: StudyResult) -> dict[str, Any]:
    """The study's figure (:func:`~workbench.show.study_figures.figure_of`) as ``{file suffix: figure}``."""
    drawn = figure_of(result.study)(result)
    return drawn if isinstance(drawn, dict) else {"": drawn}


def run_study(
    name: str,
    model,
    tasks: Sequence[str],
    runs_dir: str | Path | None = None,
    out: str | Path = "runs/studies",
    figures_dir: str | Path = "figures",
    formats: Sequence[str] = ("html", "png"),
    command: str | None = None,
    progress: bool = True,
    runs: dict[str, TaskResult] | None = None,
    **params,
) -> StudyResult:
    """Study ``name`` (:data:`workbench.studies.registry.STUDIES`) of the finished runs
    ``runs_dir/<task>/`` (or of ``runs``, ``{task: TaskResult}``) on ``model``; writes
    ``out/<model>_<name>.json`` and ``figures_dir/<model>_<name>*.{formats}``.

    ``params``: the study's arguments (its record's ``params``, e.g. ``k=4`` for ``signed``).
    Returns the :class:`~workbench.studies.registry.StudyResult` written, with ``written`` the
    files.  Each run's numbers are a cached stage, so a rerun only redraws.
    """
    get_study(name)
    if runs is None:
        runs = load_runs(runs_dir, tasks, name)  # fail on a bad name or a missing run before any work
    keyed = study_params(name, **params)
    formats = check_formats(formats)
    records = compute_study(name, model, tasks, runs, keyed, out=out, progress=progress)
    info = model_info(model)
    result = StudyResult(name, info.name, model_id(model), keyed, records, command=command)
    written = [result.save(Path(out) / f"{info.name}_{name}.json")]
    for suffix, fig in draw_study(result).items():
        written += figures.export(fig, f"{info.name}_{name}{suffix}", figures_dir, formats)
    result.written = [str(p) for p in written]
    return result
