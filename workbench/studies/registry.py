"""Every study of finished runs, by name: :data:`STUDIES` collects each study module's ``STUDY`` record.

>>> from workbench.studies.registry import STUDIES
>>> list(STUDIES)
['positions', 'signed', 'induction', 'head_count', 'zoo', 'sites', 'diagnose']
>>> STUDIES["signed"].arguments(k=4)
{'k': 4}
>>> STUDIES["signed"].params[0].help
'heads per set'

From this table come:

- the ``workbench study NAME`` command: its help and its flags, generated from each record's
  :class:`~workbench.studies.study.Param` s (:mod:`workbench.cli`);
- the cached stage: each run's record is stored under the run's key and the study's arguments
  (:func:`compute_study`, :func:`~workbench.studies.cache.cached_study`);
- the figure: :func:`workbench.show.study_figures.figure_of` finds the function registered for
  the study's name, and :func:`workbench.show.report.run_study` draws and writes it;
- the documentation: one page ``docs/`` + :attr:`Study.page <workbench.studies.study.Study.page>`
  (``docs/studies/<name>.md``) per study.

The records are collected from the modules of this package: a module that defines ``STUDY`` is a
study, with no list to edit.

**Why the figure is declared on the show side.**  Studies sit below ``show`` in the layers
(``tests/test_layers.py``), so a record cannot hold its figure function.  A dotted-path string in
the record would name the figure in two places and break silently on a rename; instead each module
of :mod:`workbench.show.study_figures` registers its figure with ``@study_figure("name")``, next to
the code, and ``tests/test_registry.py`` checks that every study here has one (and a docs page and a
CLI entry).  Adding a study is three files (and its docs page): the study module with its
``STUDY``, its figure module, and its test.
"""

from __future__ import annotations

import html
import importlib
import pkgutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.stage_cache import StageCache
from ..data.tasks import load_task
from ..method.result import TaskResult
from .cache import cached_study, study_key
from .study import Study, StudyContext, StudyError, StudyRecord, StudyRecordMismatch

__all__ = [
    "STUDIES",
    "StudyError",
    "get_study",
    "load_runs",
    "runs_model",
    "study_params",
    "compute_study",
    "StudyResult",
]

# the order of the listings (help, docs); a study not named here follows them, by name
_LISTING = ("positions", "signed", "induction", "head_count", "zoo", "sites", "diagnose")


def _collect() -> dict[str, Study]:
    """Every ``STUDY`` record of this package's modules, in listing order."""
    found: dict[str, Study] = {}
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name in ("registry", "study"):
            continue
        study = getattr(importlib.import_module(f"{__package__}.{module.name}"), "STUDY", None)
        if isinstance(study, Study):
            if study.name in found:
                raise RuntimeError(f"two studies are named {study.name!r}: {module.name} and another module")
            found[study.name] = study

    def rank(name: str) -> tuple[int, str]:
        return (_LISTING.index(name) if name in _LISTING else len(_LISTING), name)

    return {name: found[name] for name in sorted(found, key=rank)}


STUDIES: dict[str, Study] = _collect()


def get_study(name: str) -> Study:
    """The record of study ``name``, or :class:`StudyError` listing the names."""
    if name not in STUDIES:
        raise StudyError(f"unknown study {name!r}; choose one of: {', '.join(STUDIES)}")
    return STUDIES[name]


def load_runs(runs_dir: str | Path | None, tasks: Sequence[str], name: str) -> dict[str, TaskResult] | None:
    """``{task: TaskResult}`` from ``runs_dir/<task>/`` (``None`` for a study that needs no head scan,
    like ``sites``, without ``runs_dir``: then ``tasks`` are task names or JSON files).

    Raises :class:`StudyError` naming the missing folder and the command that makes it."""
    study = get_study(name)
    if not tasks:
        raise StudyError("no tasks given: name at least one with --tasks")
    if runs_dir is None:
        if not study.needs_scan:
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


def study_params(name: str, **given: Any) -> dict[str, Any]:
    """The arguments study ``name`` depends on (``given`` ones checked, else the defaults): part of
    its cache key and of its JSON.  An argument the study does not take is a :class:`StudyError`."""
    return get_study(name).arguments(**given)


def compute_study(
    name: str,
    model,
    tasks: Sequence[str],
    runs: dict[str, TaskResult] | None,
    params: dict[str, Any],
    out: str | Path = "runs/studies",
    cache: StageCache | None = None,
    progress: bool = True,
) -> dict[str, StudyRecord]:
    """``{task: record}`` of study ``name`` on each task's run (or, for a study that needs no head
    scan and no ``runs``, on each task), each a cached stage of the run unless the study caches
    its own parts.  A record stored by another version of the workbench is measured again, with a
    warning, never misread."""
    study = get_study(name)
    cache = cache if cache is not None else StageCache()
    if runs is None and study.needs_scan:
        raise StudyError(f"study {name!r} reads finished runs: give the runs")
    for result in (runs or {}).values():  # before any work: every run must be of this model
        result.check_model(model)
    ctx = StudyContext(model, dict(params), cache, Path(out), progress=progress)
    results: dict[str, StudyRecord] = {}
    for task in tasks:
        t0 = time.time()
        run = load_task(task) if runs is None else runs[task]
        if study.cached:
            results[task] = _cached(study, ctx, run)
        else:
            results[task] = study.compute(ctx, run)
        if progress:
            print(f"{task}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return results


def _cached(study: Study, ctx: StudyContext, run: TaskResult) -> StudyRecord:
    def compute() -> dict:
        return study.compute(ctx, run).to_dict()

    stored = cached_study(ctx.cache, study.name, ctx.model, run, ctx.params, compute)
    try:
        return study.record.from_dict(stored)
    except StudyRecordMismatch as e:
        print(f"note: {e}; measuring again", file=sys.stderr, flush=True)
        path = ctx.cache.path(f"study_{study.name}", study_key(ctx.model, run, ctx.params))
        path.unlink(missing_ok=True)
        return study.record.from_dict(
            cached_study(ctx.cache, study.name, ctx.model, run, ctx.params, compute)
        )


@dataclass(repr=False)
class StudyResult:
    """A study over several runs: ``tasks`` maps each task to its typed record; what
    ``workbench study`` writes as ``<model>_<study>.json``."""

    study: str
    model: str
    model_id: str
    params: dict[str, Any]
    tasks: dict[str, StudyRecord]
    command: str | None = None
    written: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "model": self.model,
            "model_id": self.model_id,
            "params": self.params,
            "command": self.command,
            "tasks": {t: r.to_dict() for t, r in self.tasks.items()},
        }

    def save(self, path: str | Path) -> Path:
        from ..base.files import write_json

        return write_json(Path(path), self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyResult:
        study = get_study(data["study"])
        return cls(
            study=study.name,
            model=data["model"],
            model_id=data["model_id"],
            params=dict(data["params"]),
            tasks={t: study.record.from_dict(d) for t, d in data["tasks"].items()},
            command=data.get("command"),
        )

    @classmethod
    def load(cls, path: str | Path) -> StudyResult:
        from ..base.files import read_json

        return cls.from_dict(read_json(Path(path)))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        lines = [f"StudyResult({self.study} on {self.model}; {args or 'no arguments'})"]
        lines += [f"  {task}: {record!r}" for task, record in self.tasks.items()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items()) or "no arguments"
        rows = "".join(
            f"<tr><td>{html.escape(task)}</td><td><code>{html.escape(repr(record))}</code></td></tr>"
            for task, record in self.tasks.items()
        )
        head = f"<b>{html.escape(self.study)}</b> on {html.escape(self.model)} ({html.escape(args)})"
        return f"<p>{head}</p><table>{rows}</table>"
