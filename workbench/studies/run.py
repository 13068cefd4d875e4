"""The studies of finished runs by name: which runs they read, what they compute, how they are cached.

``workbench study NAME --runs DIR --tasks T ...`` (:func:`workbench.show.report.run_study`, which
also writes the JSON and draws the figures) calls :func:`compute_study` here:

==============  ==========================================================================  ===========
``positions``   the FV added at the last position vs every position (a llama.cpp control     ``alphas``
                vector; :mod:`.positions`)
``signed``      heads with negative AIE: ablated, left in, subtracted (:mod:`.signed`)        ``k``
``induction``   FV heads against induction heads: scores and ablation curves                  --
                (:mod:`.induction`)
``head_count``  the run redone with the head count chosen on valid (``Protocol(               --
                head_count_rule="valid")``); when computed (not read back), the new run is
                saved in ``OUT/head_count/TASK``
``zoo``         baseline vectors under one evaluator (:mod:`.baselines`); with soft steps,    ``soft_steps``
                the zoo without them plus the soft row, each its own cached stage
``sites``       attention-layer and MLP indirect effects, and the split of the ICL - zero-    --
                shot state (:mod:`.sites`); needs no head scan, so ``runs`` may be omitted
                (then ``tasks`` are task names or JSON files, with the default protocol)
==============  ==========================================================================  ===========

Each study of a run is a stage (:func:`workbench.studies.cache.cached_study`; ``sites`` caches
its own stages): a rerun with the same run, model and arguments reads the numbers back.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..base.checks import check_finite
from ..base.stage_cache import StageCache
from ..core.model import model_id
from ..data.tasks import load_task
from ..method.protocol import Protocol
from ..method.result import TaskResult
from .cache import cached_study

__all__ = [
    "STUDIES",
    "StudyError",
    "check_study",
    "load_runs",
    "runs_model",
    "compute_study",
    "study_params",
    "STUDY_ARGUMENTS",
]

STUDIES = ("positions", "signed", "induction", "head_count", "zoo", "sites")


class StudyError(ValueError):
    """An unknown study, or a run it needs is missing."""


def check_study(name: str) -> None:
    if name not in STUDIES:
        raise StudyError(f"unknown study {name!r}; choose one of: {', '.join(STUDIES)}")


def load_runs(runs_dir: str | Path | None, tasks: Sequence[str], name: str) -> dict[str, TaskResult] | None:
    """``{task: TaskResult}`` from ``runs_dir/<task>/`` (``None`` for ``sites`` without ``runs_dir``).

    Raises :class:`StudyError` naming the missing folder and the command that makes it."""
    check_study(name)
    if not tasks:
        raise StudyError("no tasks given: name at least one with --tasks")
    if runs_dir is None:
        if name == "sites":
            for task in tasks:  # fail on a bad task name or file before any work
                load_task(task)
            return None
        raise StudyError(
            f"study {name!r} reads finished runs: give --runs DIR, the folder with one "
            "`workbench run --out DIR/<task>` result per task"
        )
    runs = {}
    for task in tasks:
        folder = Path(runs_dir) / task
        if not (folder / "result.json").is_file():
            raise StudyError(
                f"no finished run of {task!r}: {folder} has no result.json. Make it with "
                f"`workbench run --task {task} --out {folder}`, or point --runs at the folder that holds "
                "one run per task"
            )
        runs[task] = TaskResult.load(folder)
    return runs


def runs_model(runs: dict[str, TaskResult] | None) -> str | None:
    """The name of the model the runs were made on (``None`` without runs); several is an error."""
    names = sorted({r.model for r in (runs or {}).values()})
    if len(names) > 1:
        raise StudyError(f"the runs are of several models ({', '.join(names)}): study one model at a time")
    return names[0] if names else None


STUDY_ARGUMENTS = {"positions": ("alphas",), "signed": ("k",), "zoo": ("soft_steps",)}


def study_params(name: str, **given: Any) -> dict[str, Any]:
    """The arguments study ``name`` depends on (``given`` ones, else the defaults): part of its cache
    key and of its JSON.  An argument the study does not take is a :class:`StudyError`.

    >>> study_params("positions", alphas=[1, 4])
    {'alphas': [1.0, 4.0]}
    >>> study_params("signed", alphas=[1])
    Traceback (most recent call last):
    ...
    workbench.studies.run.StudyError: --alphas does not apply to study 'signed' (it takes --k)
    """
    check_study(name)
    takes = STUDY_ARGUMENTS.get(name, ())
    for key in given:
        if key not in takes:
            flag = "--" + key.replace("_", "-")
            raise StudyError(
                f"{flag} does not apply to study {name!r}"
                + (f" (it takes {', '.join('--' + t.replace('_', '-') for t in takes)})" if takes else "")
            )
    from .induction import PERCENTS

    alphas, k, soft_steps = (
        given.get("alphas", (0.5, 1.0, 2.0)),
        given.get("k"),
        given.get("soft_steps", 0),
    )
    check_finite(alphas, "alphas")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise StudyError(f"k must be a whole number of at least 1, got {k!r}")
    return {
        "positions": {"alphas": [float(a) for a in alphas]},
        "signed": {"k": None if k is None else int(k)},  # None: the model's default FV size
        "induction": {"percents": list(PERCENTS), "n_random": 3},
        "head_count": {"rule": "valid"},
        "zoo": {"soft_steps": int(soft_steps)},
        "sites": {},
    }[name]


def compute_study(
    name: str,
    model,
    tasks: Sequence[str],
    runs: dict[str, TaskResult] | None,
    params: dict[str, Any],
    out: str | Path = "runs/studies",
    cache: StageCache | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """``{task: numbers}`` of study ``name`` (module table) on each task's run, cached per run."""
    check_study(name)
    cache = cache if cache is not None else StageCache()
    results: dict[str, Any] = {}
    if name == "sites":
        from .sites import task_sites

        for task in tasks:
            t0 = time.time()
            if runs is None:
                results[task] = task_sites(model, load_task(task), Protocol(), cache=cache)
            else:
                runs[task].check_model(model)
                results[task] = task_sites(model, runs[task].task, runs[task].protocol, cache=cache)
            _report(progress, task, t0)
        return results
    assert runs is not None  # load_runs refuses a study of runs without them
    for result in runs.values():  # before any work: every run must be of this model
        result.check_model(model)
    compute = _study_function(name, model, params, Path(out), cache)
    for task in tasks:
        t0 = time.time()
        result = runs[task]
        results[task] = cached_study(cache, name, model, result, params, lambda r=result: compute(r))
        _report(progress, task, t0)
    return results


def _report(progress: bool, task: str, t0: float) -> None:
    if progress:
        print(f"{task}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)


def _study_function(
    name: str, model, params: dict[str, Any], out: Path, cache: StageCache
) -> Callable[[TaskResult], Any]:
    """``compute(result)`` for study ``name`` with ``params``."""
    if name == "positions":
        from .positions import every_position_effect

        return lambda r: every_position_effect(model, r, params["alphas"])
    if name == "signed":
        from .signed import signed_heads_study

        return lambda r: signed_heads_study(model, r, k=params["k"])
    if name == "zoo":
        return _zoo(model, params, cache)
    if name == "induction":
        return _induction(model, params, cache)
    if name == "head_count":
        return lambda r: _head_count(model, r, out)
    raise AssertionError(name)  # check_study guards the names


def _zoo(model, params: dict[str, Any], cache: StageCache) -> Callable[[TaskResult], dict]:
    """The zoo; with soft steps, the zoo without them (its own cached stage, so a zoo already
    measured is reused) plus the soft row, cached as ``zoo_soft``."""
    from .baselines import baseline_zoo, soft_row, with_soft

    steps = params["soft_steps"]

    def compute(r: TaskResult) -> dict:
        if steps == 0:
            return baseline_zoo(model, r)
        zoo = cached_study(cache, "zoo", model, r, {"soft_steps": 0}, lambda: baseline_zoo(model, r))
        soft = cached_study(cache, "zoo_soft", model, r, params, lambda: soft_row(model, r, steps))
        return with_soft(zoo, soft)

    return compute


def _induction(model, params: dict[str, Any], cache: StageCache) -> Callable[[TaskResult], dict]:
    from .induction import ablation_curves, induction_scores

    scores: dict = {}

    def compute(r: TaskResult) -> dict:
        if not scores:  # once per model, cached as a stage of its own
            key = {"model": model_id(model), "n_seq": 20, "seq_len": 25, "seed": 0}
            scores.update(cache.get_or_compute("induction_scores", key, lambda: induction_scores(model)))
        prefix = scores["prefix_matching"]
        out = ablation_curves(model, r, prefix, percents=params["percents"], n_random=params["n_random"])
        n_heads = prefix.shape[1]
        top = sorted(((float(v), i) for i, v in enumerate(prefix.flatten())), reverse=True)[:10]
        out["top_induction"] = [[i // n_heads, i % n_heads, v] for v, i in top]
        out["prefix_matching"] = prefix.tolist()
        out["copying"] = scores["copying"].tolist()
        out["aie"] = r.scan.aie.tolist()
        return out

    return compute


def _head_count(model, r: TaskResult, out: Path) -> dict:
    """The run redone with the count chosen on valid (saved in ``out/head_count/<task>``), against
    its fixed count: test accuracies on the ICL-correct queries."""
    from ..method.pipeline import run_task

    chosen = run_task(model, r.task, dataclasses.replace(r.protocol, head_count_rule="valid"), progress=False)
    chosen.save(out / "head_count" / r.task.name)
    fixed, acc = r.accuracy, chosen.accuracy
    return {
        "fixed": {"k": len(r.fv.heads), "layer": r.fv_layer, **{c: fixed[c].top1 for c in fixed}},
        "valid": {"k": len(chosen.fv.heads), "layer": chosen.fv_layer, **{c: acc[c].top1 for c in acc}},
        "choice": chosen.notes["head_count"],
        "n_filtered": int(r.icl_correct.sum()),
    }
