"""Checks a run can pass or fail in a second, before any expensive stage.

:func:`preflight` is the first thing :func:`~workbench.method.pipeline.run_task` does:

- the task is large enough for the protocol's split and shots (and says how many pairs it needs);
- the first-token rule can tell the task's answers apart on this model's tokenizer
  (:func:`~workbench.data.prompts.answer_token_report`).  A task is refused when always giving
  one first token would score half of it, or when many answers share a first token that is only
  a byte of a character (emoji, CJK): such a task scores near 100 % with shuffled labels.

Prompts longer than the model's context are refused where they are encoded
(:func:`~workbench.method.protocol.encode`).
"""

from __future__ import annotations

import warnings

from ..data.prompts import AnswerTokenReport, answer_token_report
from ..data.tasks import SPLIT_FRACTIONS, Task, TaskError
from .protocol import Protocol

__all__ = ["preflight", "min_pairs", "MAJORITY_LIMIT", "PARTIAL_LIMIT", "SHARING_WARNING"]

MAJORITY_LIMIT = 0.5  # refuse if always answering one first token scores this share
PARTIAL_LIMIT = 0.1  # refuse if this share of answers share a first token that is a partial character
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
    return its :class:`~workbench.data.prompts.AnswerTokenReport` for the result's notes."""
    if not _fits(len(task), protocol.n_shot):
        train, valid, test = _split_sizes(len(task))
        raise TaskError(
            f"task {task.name!r} has {len(task)} pairs: too few for {protocol.n_shot}-shot prompts "
            f"(its split is {train} train / {valid} valid / {test} test). It needs at least "
            f"{min_pairs(protocol.n_shot)} pairs, or fewer shots."
        )
    report = answer_token_report(model.tokenizer, task.pairs)
    if report.n_unscorable == report.n_answers:
        raise TaskError(
            f"no answer of task {task.name!r} can be scored on this tokenizer: the first token of "
            "' ' + answer is only whitespace for every answer. Change the answers' format."
        )
    if report.majority_share >= MAJORITY_LIMIT:
        raise TaskError(
            f"task {task.name!r} cannot be scored by first tokens on this model: always answering "
            f"{report.majority_token!r} would be right on {report.majority_share:.0%} of its pairs "
            f"({report.n_answers} answers share {report.n_first_tokens} first tokens; e.g. "
            f"{report.examples}). Make the answers start differently."
        )
    if report.n_partial_shared > PARTIAL_LIMIT * report.n_answers:
        raise TaskError(
            f"task {task.name!r}: {report.n_partial_shared} of {report.n_answers} answers start with a token "
            f"that is only part of a character (an emoji or CJK byte) shared with other answers, so the "
            f"first token does not tell them apart (e.g. {report.examples}). Score such answers otherwise."
        )
    if report.n_sharing > SHARING_WARNING * report.n_answers:
        warnings.warn(
            f"{report.n_sharing} of {report.n_answers} distinct answers of {task.name!r} share their first "
            "token with another answer; the first-token rule counts any of them as right.",
            stacklevel=3,
        )
    return report
