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
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from ..data.prompts import EncodedPrompt
from . import padding

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
