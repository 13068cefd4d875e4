"""Batched forward passes that read only the last position.

Every evaluation, mean-activation pass and intervention in the workbench runs prompts through
:func:`last_token_logits` (or the variants of :func:`workbench.core.variants.variant_scores`),
and the model computes logits for the last position only (``logits_to_keep=1``).

Prompts of unequal length share a forward, left-padded with each row's own positions and a 4-D
mask (:mod:`workbench.core.padding`, which says why that is exact), so the last position is
``-1`` for every row and a hook can write ``act[:, -1]``.  Padding is used where nothing can be
misplaced: a forward without hooks, or one whose caller says its hooks touch only the last
position (``pad=True``).  Hooks acting on other positions (``from_position``) get batches of one
token length, as does everything inside :func:`plain_forwards` and models that cannot be padded
exactly (:func:`workbench.core.padding.can_pad`).  A hook factory may also be given a batch's
prompt indices, for per-prompt values (e.g. a task vector per query).

Answers scored on more than one token (:data:`~workbench.data.prompts.ANSWER_RULE`, and the
whole-answer metric) run under teacher forcing (:func:`teacher_forced_ranks`): the prompt and the
answer's tokens but its last, the logits of the last ``m`` positions.  Inside that forward
:func:`answer_positions` says ``m``, and the interventions of :mod:`workbench.core.hooks` act on
those ``m`` positions (the prompt's last token and every answer token fed in), as in steered
generation.
"""

from __future__ import annotations

import contextvars
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from ..data.prompts import EncodedPrompt
from . import padding
from .model import input_device

__all__ = [
    "Hooks",
    "HookFactory",
    "length_batches",
    "pads_here",
    "last_token_logits",
    "answer_ranks",
    "plain_forwards",
    "use_plain",
    "variant_batch",
    "chosen_variant_batch",
    "answer_positions",
    "n_answer_positions",
    "teacher_forced_ranks",
    "score_spans",
]

Hooks = list[tuple[str, Callable]]
HookFactory = Callable[[Sequence[int]], Hooks]  # prompt indices of a batch -> hooks for it


_PLAIN: contextvars.ContextVar[bool] = contextvars.ContextVar("workbench_plain_forwards", default=False)


@contextmanager
def plain_forwards() -> Iterator[None]:
    """Inside this block every stage runs the path before the prefix-once variants: one plain forward
    per intervention (:func:`workbench.core.variants.variant_scores`), the scan without layer skipping,
    and prompts of one token length per forward (no padding): the reference path."""
    token = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(token)


def use_plain() -> bool:
    """Whether the caller is inside :func:`plain_forwards`."""
    return _PLAIN.get()


_VARIANT_BATCH: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "workbench_variant_batch", default=None
)


@contextmanager
def variant_batch(n: int | None) -> Iterator[None]:
    """Inside this block at most ``n`` last-token variants go in one forward, in every stage: the head
    scan (heads per forward), layer sweeps, evaluation, grids and studies
    (:func:`workbench.core.variants.variant_scores`).  ``None`` restores the automatic choice from free
    memory (:func:`workbench.core.scan.auto_variant_batch`).  Only memory and speed change, never a
    number, so stage-cache keys ignore it.

    >>> with variant_batch(8):
    ...     chosen_variant_batch()
    8
    """
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"variant_batch must be a whole number >= 1 (or None for automatic), not {n!r}")
    token = _VARIANT_BATCH.set(n)
    try:
        yield
    finally:
        _VARIANT_BATCH.reset(token)


def chosen_variant_batch() -> int | None:
    """The variants-per-forward limit of the enclosing :func:`variant_batch` block (``None``: automatic)."""
    return _VARIANT_BATCH.get()


_ANSWER_POSITIONS: contextvars.ContextVar[int] = contextvars.ContextVar(
    "workbench_answer_positions", default=1
)


@contextmanager
def answer_positions(m: int) -> Iterator[None]:
    """Inside this block a forward's last ``m`` positions predict answer tokens: the interventions of
    :mod:`workbench.core.hooks` built for "the last position" act on all ``m`` of them.

    >>> with answer_positions(3):
    ...     n_answer_positions()
    3
    >>> n_answer_positions()
    1
    """
    token = _ANSWER_POSITIONS.set(int(m))
    try:
        yield
    finally:
        _ANSWER_POSITIONS.reset(token)


def n_answer_positions() -> int:
    """The ``m`` of the enclosing :func:`answer_positions` block (1 outside any)."""
    return _ANSWER_POSITIONS.get()


def length_batches(
    prompts: Sequence[EncodedPrompt], batch_size: int
) -> Iterator[tuple[list[int], Int[Tensor, "batch pos"]]]:
    """Yield ``(indices, tokens)`` for batches of prompts that share one token length (no padding)."""
    for batch in padding.batches(prompts, batch_size, pad=False):
        yield batch.idx, batch.tokens


def pads_here(model, prompts: Sequence[EncodedPrompt], n_variants: int = 0) -> bool:
    """Whether ``prompts`` may be padded into shared forwards of ``model`` here: not inside
    :func:`plain_forwards`, and a model that pads exactly (:func:`workbench.core.padding.can_pad`)."""
    if use_plain() or not prompts:
        return False
    return padding.can_pad(model, max(len(p.ids) for p in prompts), n_variants)


@torch.inference_mode()
def last_token_logits(
    model,
    prompts: Sequence[EncodedPrompt],
    hooks: Hooks | HookFactory | None = None,
    batch_size: int = 16,
    progress: bool | str = False,
    pad: bool | None = None,
) -> Float[Tensor, "prompt d_vocab"]:
    """Logits at the last position of every prompt, in the prompts' order.

    ``hooks`` is a list of ``(hook_name, fn)`` used for every batch, or a factory called with
    each batch's prompt indices.  ``pad``: whether prompts of unequal length may share a forward
    (default: only without hooks).  Pass ``True`` only for hooks that touch the last position
    alone (``act[:, -1]``); the model and :func:`plain_forwards` may still refuse (:func:`pads_here`).
    """
    pad = (hooks is None if pad is None else pad) and pads_here(model, prompts)
    out: Tensor | None = None
    batches = padding.batches(prompts, batch_size, pad=pad)
    bar = tqdm(
        batches, desc=progress if isinstance(progress, str) else "forward", disable=not progress, leave=False
    )
    for batch in bar:
        fwd = hooks(batch.idx) if callable(hooks) else (hooks or [])
        logits = padding.run(model, batch, fwd, logits_to_keep=1)[:, -1]
        if out is None:
            out = torch.empty(len(prompts), logits.shape[-1], dtype=torch.float32)
        out[batch.idx] = logits.float().cpu()
    if out is None:
        return torch.empty(0, 0)
    return out


def answer_ranks(
    logits: Float[Tensor, "prompt d_vocab"], prompts: Sequence[EncodedPrompt]
) -> Int[Tensor, " prompt"]:
    """Rank of each prompt's answer token among the logits (0 = top-1)."""
    answers = torch.tensor([p.answer_id for p in prompts])
    answer_logit = logits.gather(1, answers[:, None])
    return (logits > answer_logit).sum(-1)


@torch.inference_mode()
def teacher_forced_ranks(
    model,
    prompts: Sequence[EncodedPrompt],
    hooks: Hooks | HookFactory | None = None,
    whole: bool = False,
    which: Sequence[int] | None = None,
    batch_size: int = 16,
) -> Int[Tensor, " which"]:
    """The rank of each prompt's answer under teacher forcing: the WORST rank (max) over its tokens.

    Each prompt runs with its answer's tokens but the last appended; the logits of the last ``m``
    positions score the ``m`` tokens (``m = n_scored`` for the first-token metric, every answer
    token with ``whole``), and rank 0 means every token was the top-1 given the ones before.
    ``hooks`` run inside :func:`answer_positions` ``(m)``, so an added vector reaches every answer
    position; a factory is given indices into ``prompts``.  ``which``: the prompts to score (default
    all), in that order.
    """
    which = list(range(len(prompts))) if which is None else list(which)
    device = input_device(model)
    out = torch.zeros(len(which), dtype=torch.long)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)  # (prompt length, m) -> rows of `which`
    for row, i in enumerate(which):
        m = len(prompts[i].answer_tokens) if whole else prompts[i].n_scored
        groups[(len(prompts[i].ids), m)].append(row)
    for (_, m), rows in sorted(groups.items()):
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            idx = [which[r] for r in chunk]
            answers = torch.tensor([prompts[i].answer_tokens[:m] for i in idx], dtype=torch.long)
            tokens = torch.tensor(
                [list(prompts[i].ids) + list(prompts[i].answer_tokens[: m - 1]) for i in idx]
            )
            fwd = hooks(idx) if callable(hooks) else (hooks or [])
            with answer_positions(m):
                logits = model.run_with_hooks(tokens.to(device), fwd_hooks=fwd, logits_to_keep=m)[:, -m:]
            logits = logits.float().cpu()  # [batch, m, d_vocab]
            ranks = (logits > logits.gather(2, answers[..., None])).sum(-1)  # [batch, m]
            out[chunk] = ranks.max(-1).values
    return out


def score_spans(
    model,
    prompts: Sequence[EncodedPrompt],
    ranks: Int[Tensor, " prompt"],
    hooks: Hooks | HookFactory | None = None,
) -> Int[Tensor, " prompt"]:
    """``ranks`` of the first answer token, with the prompts whose first character takes several
    tokens (``n_scored > 1``) scored on all of them (:func:`teacher_forced_ranks`)."""
    spans = [i for i, p in enumerate(prompts) if p.n_scored > 1]
    if not spans:
        return ranks
    ranks = ranks.clone()
    ranks[spans] = teacher_forced_ranks(model, prompts, hooks, which=spans)
    return ranks
