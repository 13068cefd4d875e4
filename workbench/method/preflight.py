"""Checks a run can pass or fail in a second, before any expensive stage.

:func:`preflight` is the first thing :func:`~workbench.method.pipeline.run_task` does:

- the task is large enough for the protocol's split and shots (and says how many pairs it needs);
- the first-token rule (:data:`~workbench.data.prompts.ANSWER_RULE`) can tell the task's answers
  apart on this model's tokenizer (:func:`~workbench.data.prompts.answer_token_report`).  Only a
  task it truly cannot score is refused: no answer can be scored, or all its distinct answers
  share their scored tokens.  A classification task (few distinct answers, a large majority) is
  scored; its accuracies are read against its majority-label and chance baselines.

It also says, in one warning each, what the run will do with the data as it is: pairs set aside
because their answer cannot be scored, and inputs listed with several outputs (kept, each pair
scored against its own output: :data:`~workbench.data.tasks.SCORING_RULE_REPEATED`).

Prompts longer than the model's context are refused where they are encoded
(:func:`~workbench.method.protocol.encode`).
"""

from __future__ import annotations

import warnings

from ..data.prompts import AnswerTokenReport, answer_token_report, scorable_pairs
from ..data.tasks import SPLIT_FRACTIONS, Task, TaskError
from .protocol import Protocol

__all__ = ["preflight", "min_pairs", "SHARING_WARNING", "data_notes"]

SHARING_WARNING = 0.25  # warn if this share of answers share their first token with another answer


def _split_sizes(n: int) -> tuple[int, int, int]:
    n_train = round(SPLIT_FRACTIONS[0] * n)
    n_valid = round(SPLIT_FRACTIONS[1] * n)
    return n_train, n_valid, n - n_train - n_valid


def min_pairs(n_shot: int) -> int:
    """The fewest pairs whose split gives ``n_shot + 1`` train pairs (demonstrations that never
    repeat a train query) and at least one valid and one test query.

    >>> min_pairs(10)
    16
    """
    n = 3
    while not _fits(n, n_shot):
        n += 1
    return n


def _fits(n: int, n_shot: int) -> bool:
    train, valid, test = _split_sizes(n)
    return train >= n_shot + 1 and valid >= 1 and test >= 1


def preflight(model, task: Task, protocol: Protocol) -> AnswerTokenReport:
    """Refuse (:class:`~workbench.data.tasks.TaskError`) a task this run cannot score honestly;
    return its :class:`~workbench.data.prompts.AnswerTokenReport` for the result's notes.  Warns
    once about unscorable pairs set aside and once about repeated inputs (:func:`data_notes`)."""
    kept, dropped = scorable_pairs(model.tokenizer, task.pairs)
    if not kept:
        raise TaskError(
            f"no answer of task {task.name!r} can be scored on this tokenizer ({dropped[0][1]}). "
            "Change the answers' format."
        )
    scorable = Task(task.name, tuple(kept), task.source) if dropped else task
    if not _fits(len(scorable), protocol.n_shot):
        train, valid, test = _split_sizes(len(scorable))
        left = f" ({len(dropped)} unscorable pairs set aside)" if dropped else ""
        raise TaskError(
            f"task {task.name!r} has {len(scorable)} pairs{left}: too few for {protocol.n_shot}-shot prompts "
            f"(its split is {train} train / {valid} valid / {test} test). It needs at least "
            f"{min_pairs(protocol.n_shot)} pairs, or fewer shots."
        )
    report = answer_token_report(model.tokenizer, task.pairs)
    if report.n_answers - report.n_unscorable > 1 and report.n_first_tokens == 1:
        raise TaskError(
            f"task {task.name!r} cannot be scored by first tokens on this model: all its "
            f"{report.n_answers - report.n_unscorable} scorable answers start with the same token(s) "
            f"{report.majority_token!r}, so no token tells them apart. Make the answers start differently."
        )
    notes = data_notes(task, dropped)
    if "unscorable" in notes:
        u = notes["unscorable"]
        warnings.warn(
            f"{u['pairs']} of {len(task)} pairs of {task.name!r} are set aside: their answer cannot be "
            f"scored on this tokenizer (e.g. {u['examples'][:3]}: {u['reason']})",
            stacklevel=3,
        )
    if "repeated_inputs" in notes:
        r = notes["repeated_inputs"]
        warnings.warn(
            f"{r['inputs']} inputs of {task.name!r} are listed with several outputs ({r['pairs']} pairs, "
            f"e.g. {r['examples']}); all are kept: {r['rule']}.",
            stacklevel=3,
        )
    if report.n_sharing > SHARING_WARNING * report.n_answers:
        warnings.warn(
            f"{report.n_sharing} of {report.n_answers} distinct answers of {task.name!r} share their first "
            "token with another answer; the first-token rule counts any of them as right.",
            stacklevel=3,
        )
    return report


def data_notes(task: Task, dropped) -> dict:
    """What a result records about its data as loaded: ``unscorable`` (how many pairs were set
    aside, a few examples, the first reason, and all of them in ``set_aside``) and
    ``repeated_inputs`` (:meth:`~workbench.data.tasks.Task.repeated_inputs_note`)."""
    notes: dict = {}
    if dropped:
        notes["unscorable"] = {
            "pairs": len(dropped),
            "examples": [[p.input, p.output] for p, _ in dropped[:5]],
            "reason": dropped[0][1],
            "set_aside": [[p.input, p.output] for p, _ in dropped],
        }
    repeated = task.repeated_inputs_note()
    if repeated is not None:
        notes["repeated_inputs"] = repeated
    return notes
