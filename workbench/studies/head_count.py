"""The head count chosen on valid against the paper's fixed count: the run redone and compared.

:func:`head_count_choice` reruns a finished run with ``Protocol(head_count_rule="valid")`` (the
number of FV heads chosen jointly with the layer on the validation split,
:mod:`workbench.method.pipeline`), saves the new run, and reports both runs' test accuracies on the
queries clean ICL answers right.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..method.result import TaskResult
from .study import Study, StudyContext, StudyRecord

__all__ = ["head_count_choice", "HeadCountChoice", "STUDY"]


def head_count_choice(model, run: TaskResult, out: str | Path | None = None) -> dict:
    """``{"fixed" | "valid": {"k", "layer", condition: top-1}, "choice", "n_filtered"}``; the new run
    is saved in ``out/head_count/<task>`` when ``out`` is given."""
    from ..method.pipeline import run_task

    protocol = dataclasses.replace(run.protocol, head_count_rule="valid")
    chosen = run_task(model, run.task, protocol, progress=False)
    if out is not None:
        chosen.save(Path(out) / "head_count" / run.task.name)
    fixed, acc = run.accuracy, chosen.accuracy
    return {
        "fixed": {"k": len(run.fv.heads), "layer": run.fv_layer, **{c: fixed[c].top1 for c in fixed}},
        "valid": {"k": len(chosen.fv.heads), "layer": chosen.fv_layer, **{c: acc[c].top1 for c in acc}},
        "choice": chosen.notes["head_count"],
        "n_filtered": int(run.icl_correct.sum()),
    }


@dataclass(repr=False)
class HeadCountChoice(StudyRecord):
    """:func:`head_count_choice` of one run: ``fixed`` and ``valid`` are ``{"k", "layer", condition:
    top-1}`` (conditions as in the run's table), ``choice`` the pipeline's note on the choice."""

    fixed: dict
    valid: dict
    choice: dict
    n_filtered: int

    def rule(self, name: str) -> dict:
        """``fixed`` or ``valid``."""
        return getattr(self, name)


def _compute(ctx: StudyContext, run: TaskResult) -> HeadCountChoice:
    return HeadCountChoice.from_dict(head_count_choice(ctx.model, run, ctx.out))


STUDY = Study(
    name="head_count",
    summary="the run redone with the head count chosen on valid, against its fixed count",
    record=HeadCountChoice,
    compute=_compute,
    constants={"rule": "valid"},
)
