"""Prompts of unequal length in one forward: left padding, each row's own positions, one 4-D mask.

Every batched forward of the workbench (:func:`workbench.core.forward.last_token_logits`, the
variants of :func:`workbench.core.variants.variant_scores`, :func:`workbench.core.heads.last_token_states`)
gets its batches from :func:`batches` and runs them through :func:`run`; nothing else pads.

**Left padding.**  A batch of prompts of lengths ``len_b`` is ``n = max len_b`` columns wide;
row ``b`` starts with ``p_b = n - len_b`` pad columns.  Every prompt's last token then sits in
the last column, so every hook that acts on ``act[:, -1]`` (the whole vocabulary of
:mod:`workbench.core.hooks`, the means' grabs) and the variant columns appended after it
(``n .. n + V - 1``) act on each prompt's own last token, unchanged.  Right padding would leave
the last tokens in ``B`` different columns, and every hook would have to carry a per-row index.

**Positions.**  ``position_ids`` are passed for every row: real tokens get ``0 .. len_b - 1``
(the unpadded positions exactly: rotary angles, per layer type on Gemma 3, and GPT-2's learned
absolute positions alike; rotary attention would only be shift-invariant up to rounding, learned
positions not at all), the variants ``len_b - 1``, pad columns ``0``.

**The mask** (:func:`attention_mask`, additive ``[B, 1, n + V, n + V]``): a real query sees the
real keys at or before it (within its layer's sliding window: in columns, distances between
real tokens are those of the unpadded prompt, so transformers' rule ``q - w < k <= q`` carries
over); a variant sees its row's real keys ``p_b .. n - 2`` and itself; a pad query sees itself
only (a fully masked row is NaN under some kernels, and a NaN value times a zero weight would
poison the real rows a layer later).  Sliding-window layers get their own mask through a
pre-hook on the attention (:func:`install_window_masks`), as in the head scan.  Masked keys get
weight ``exp(min - max) = 0`` exactly (Gemma 2's soft-capping comes before the mask), so a row
computes the sums of its unpadded forward, in a wider matmul: equal to float rounding.

**Who is not padded.**  Models the appended-variant mask cannot serve (ALiBi biases built from a
2-D padding mask, OpenAI-GPT; :func:`slow_path_reason`) and GPT-Neo's
in-module local window when a batch outgrows it keep batches of equal length
(:func:`can_pad`), as does everything inside :func:`workbench.core.forward.plain_forwards` (the
reference path).  Every other model proves it once, on first use (:func:`padding_verified`: a
padded batch against each prompt's own forward); one that fails keeps equal lengths, with a
warning, so a family whose attention mishandles the mask or the positions is slower, never
wrong.  A batch whose rows share one length runs without a mask, as before.  Hooks that act
beyond the last position (``from_position``) are never padded
(:func:`workbench.core.forward.last_token_logits`).  The head scan runs each prompt alone
(:mod:`workbench.core.scan`, :mod:`workbench.core.layer_skip`): its hundreds of variant rows
already fill a forward; padding would speed up only each prompt's own run (about two fifths of
the scan's token-layers, by the 1.2-1.3x of ``bench/batch_rate.py``): under a tenth of the scan.

>>> [b.pads for b in batches([[5, 6, 7], [5, 6], [5, 6, 7]], batch_size=2, pad=True)]
[[1, 0], [0]]
>>> positions([1, 0], n=3, v=1).tolist()
[[0, 0, 1, 1], [0, 1, 2, 2]]
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from .model import input_device, layer_windows, model_dtype, model_info

__all__ = [
    "PatchDidNothing",
    "slow_path_reason",
    "internal_window",
    "Batch",
    "batches",
    "can_pad",
    "padding_verified",
    "attention_mask",
    "positions",
    "install_window_masks",
    "run",
    "MAX_PAD_FRACTION",
    "MAX_BATCH_TOKENS",
]

MAX_PAD_FRACTION = 0.25  # a batch closes before its pad columns exceed this share of its tokens
# a padded batch closes before rows x (columns + variants) passes this: bench/batch_rate.py measured
# 8 prompts of 97 tokens per forward faster than 16 (token-layers per second)
MAX_BATCH_TOKENS = 1024


class PatchDidNothing(RuntimeError):
    """A patching hook never fired or left its target unchanged (or a layer's mask could not be
    set): the numbers would be silently wrong."""


def slow_path_reason(model) -> str | None:
    """Why no custom 4-D mask can be exact for ``model`` at all (no appended variants, no padding:
    the head scan then patches each head in its own full forward), or ``None``."""
    cfg = model.original_model.config
    if getattr(cfg, "alibi", False) or getattr(cfg, "model_type", "") in ("bloom", "mpt"):
        return "ALiBi biases are built from a 2-D padding mask, which the variant mask replaces"
    if getattr(cfg, "model_type", "") == "openai-gpt":
        return "OpenAI-GPT reads any attention mask as a padding mask"
    return None


def internal_window(model) -> int | None:
    """The window of layers that mask by absolute index INSIDE the module (GPT-Neo's local
    layers), which a custom mask cannot override; ``None`` if none do."""
    if getattr(model.original_model.config, "model_type", "") != "gpt_neo":
        return None
    local = [w for w in layer_windows(model) if w is not None]
    return min(local) if local else None


@dataclass
class Batch:
    """Prompts ``idx`` (indices into the caller's list), left-padded to one width.

    tokens: ``[batch, pos]`` token ids (pad columns repeat the row's first token).
    pads:   pad columns at the start of each row (all 0 for a batch of equal lengths).
    """

    idx: list[int]
    tokens: Int[Tensor, "batch pos"]
    pads: list[int]

    @property
    def padded(self) -> bool:
        return any(self.pads)


def _ids(prompt) -> list[int]:
    return list(getattr(prompt, "ids", prompt))


def batches(
    prompts: Sequence, batch_size: int, pad: bool, extra: int = 0, max_tokens: int | None = MAX_BATCH_TOKENS
) -> list[Batch]:
    """Prompts (``EncodedPrompt`` or lists of ids) in batches of at most ``batch_size``.

    ``pad``: sorted by length and cut in order, each batch left-padded to its longest prompt, a
    new batch started before the pad columns would exceed :data:`MAX_PAD_FRACTION` of a batch's
    tokens, or its rows x (width + ``extra`` appended columns) ``max_tokens`` (``None``: no cap).
    Otherwise prompts of one token length per batch (shortest lengths first), no padding.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
    ids = [_ids(p) for p in prompts]
    if not pad:
        by_len: dict[int, list[int]] = defaultdict(list)
        for i, x in enumerate(ids):
            by_len[len(x)].append(i)
        groups = [
            idx[s : s + batch_size]
            for _, idx in sorted(by_len.items())
            for s in range(0, len(idx), batch_size)
        ]
    else:
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), i))
        groups, group = [], []
        for i in order:
            if group:
                widest = len(ids[i])  # sorted: the newcomer is the longest
                total = widest * (len(group) + 1)
                real = sum(len(ids[j]) for j in group) + widest
                wide = max_tokens is not None and (len(group) + 1) * (widest + extra) > max_tokens
                full = len(group) == batch_size or wide
                if full or total - real > MAX_PAD_FRACTION * total:
                    groups.append(group)
                    group = []
            group.append(i)
        if group:
            groups.append(group)
    out = []
    for idx in groups:
        n = max(len(ids[i]) for i in idx)
        pads = [n - len(ids[i]) for i in idx]
        rows = [[ids[i][0]] * p + ids[i] for i, p in zip(idx, pads)]
        out.append(Batch(list(idx), torch.tensor(rows, dtype=torch.long), pads))
    return out


def can_pad(model, longest: int, n_variants: int = 0) -> bool:
    """Whether prompts of unequal length may share a forward of ``model``: not ALiBi or OpenAI-GPT
    (:func:`~workbench.core.scan.slow_path_reason`), not wider than an in-module local window
    (GPT-Neo).  Callers also keep equal lengths inside :func:`~workbench.core.forward.plain_forwards`."""
    if slow_path_reason(model) is not None:
        return False
    window = internal_window(model)
    return (window is None or longest + n_variants <= window) and padding_verified(model)


def padding_verified(model) -> bool:
    """Whether a padded forward of this model equals its unpadded ones: checked once per model (two
    random prompts of 13 and 21 tokens in one batch, each with one appended variant column, against
    each prompt's own forward; relative to the largest logit, 1e-4 in float32, else 3e-2).  A model
    that fails keeps batches of equal length, with a warning: slower, same numbers.  ``False``
    without a probe where no custom mask can be exact (:func:`slow_path_reason`)."""
    if slow_path_reason(model) is not None:
        return False
    cached = model.__dict__.get("_workbench_padding_ok")
    if cached is None:
        error = _padding_error(model)
        tol = 1e-4 if model_dtype(model) in (torch.float32, torch.float64) else 3e-2
        cached = bool(error <= tol)
        if not cached:
            warnings.warn(
                f"a left-padded forward of {model_info(model).name} differs from its unpadded ones by "
                f"{error:.2e} of the largest logit; prompts of unequal length will not share a forward "
                "on it (same numbers, slower)",
                stacklevel=3,
            )
        model.__dict__["_workbench_padding_ok"] = cached
    return cached


@torch.inference_mode()
def _padding_error(model) -> float:
    info = model_info(model)
    gen = torch.Generator().manual_seed(7)
    low = min(8, info.d_vocab - 1)
    window = internal_window(model)  # GPT-Neo: prompt and variant inside its in-module window
    lengths = (13, 21) if window is None or window > 22 else (max(2, window // 2), max(3, window - 1))
    prompts = [torch.randint(low, info.d_vocab, (n,), generator=gen).tolist() for n in lengths]
    if info.bos_id is not None:
        prompts = [[info.bos_id] + p[1:] for p in prompts]
    (batch,) = batches(prompts, 2, pad=True, max_tokens=None)
    device = input_device(model)
    try:
        padded = run(model, batch, [], v=1, logits_to_keep=2).float()  # [2, last + variant, d_vocab]
    except Exception as e:  # noqa: BLE001 - a model that refuses the mask is one that cannot be padded
        warnings.warn(f"a left-padded forward of {info.name} raised {type(e).__name__}: {e}", stacklevel=4)
        return float("inf")
    error, scale = 0.0, 0.0
    for row, i in enumerate(batch.idx):
        alone = model(torch.tensor([prompts[i]], device=device), logits_to_keep=1)[0, -1].float()
        scale = max(scale, float(alone.abs().max()))
        error = max(error, float((padded[row] - alone).abs().max()))
    return error / max(scale, 1e-12) if error == error else float("inf")


def attention_mask(
    pads: Sequence[int], n: int, v: int, dtype: torch.dtype, device, window: int | None = None
) -> Float[Tensor, "batch 1 pos pos"]:
    """Additive mask of rows with ``pads[b]`` left pad columns, ``n`` prompt columns and ``v`` variants.

    Row ``b``, query ``q < n``: keys ``max(p_b, q - w + 1) .. q`` (a pad query: itself only);
    variant ``i`` (column ``n + i``, at the last token's position): keys ``max(p_b, n - w) .. n - 2``
    and itself.  ``window`` is a sliding-window layer's ``w`` (``None``: no window).

    >>> (attention_mask([1], 3, 1, torch.float32, "cpu")[0, 0] == 0).int().tolist()
    [[1, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]]
    """
    B, T = len(pads), n + v
    q = torch.arange(T, device=device)[:, None]
    k = torch.arange(T, device=device)[None, :]
    p = torch.tensor(list(pads), device=device)[:, None, None]  # [B, 1, 1]
    prompt = (q < n) & (k <= q) & (k >= p)
    variant = (q >= n) & (k < n - 1) & (k >= p)
    if window is not None:
        lowest = torch.where(q < n, q - window + 1, torch.full_like(q, n - window))
        prompt, variant = prompt & (k >= lowest), variant & (k >= lowest)
    allowed = prompt | variant | (q == k).expand(B, T, T)
    mask = torch.zeros(B, T, T, dtype=dtype, device=device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def positions(pads: Sequence[int], n: int, v: int = 0, device=None) -> Int[Tensor, "batch pos"]:
    """``position_ids`` of a left-padded batch: each row's real tokens ``0 .. len_b - 1``, its variants
    ``len_b - 1``, its pad columns 0."""
    p = torch.tensor(list(pads), device=device)[:, None]
    cols = torch.cat([torch.arange(n, device=device), torch.full((v,), n - 1, device=device)])
    return (cols[None] - p).clamp(min=0)


def install_window_masks(model, pads: Sequence[int], n: int, v: int, dtype, device) -> list:
    """Forward pre-hooks giving every sliding-window layer narrower than ``n`` its own mask (handles)."""
    windows = layer_windows(model)
    handles = []
    for block, w in zip(model.blocks, windows, strict=True):
        if w is None or w >= n:
            continue
        mask = attention_mask(pads, n, v, dtype, device, window=w)

        def swap(module, args, kwargs, mask=mask):
            if "attention_mask" not in kwargs:
                raise PatchDidNothing(
                    f"{type(module).__name__} got no attention_mask keyword: the sliding-window layer's "
                    "mask cannot be set, and its rows would see beyond the window."
                )
            return args, {**kwargs, "attention_mask": mask}

        handles.append(block.attn.register_forward_pre_hook(swap, with_kwargs=True))
    return handles


@contextmanager
def _window_masks(model, pads, n, v, dtype, device):
    handles = install_window_masks(model, pads, n, v, dtype, device)
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def run(model, batch: Batch, hooks, v: int = 0, **kwargs) -> Tensor:
    """``model.run_with_hooks`` on ``batch`` with ``v`` copies of each row's last token appended
    (the variants of :mod:`workbench.core.variants`), the mask and positions above; ``kwargs``
    (``logits_to_keep``, ``stop_at_layer`` ...) passed on.  A batch of equal lengths with no
    variants runs exactly as an unpadded forward (no mask)."""
    device = input_device(model)
    tokens = batch.tokens
    B, n = tokens.shape
    if v:
        tokens = torch.cat([tokens, tokens[:, -1:].expand(B, v)], 1)
    tokens = tokens.to(device)
    if not v and not batch.padded:
        return model.run_with_hooks(tokens, fwd_hooks=hooks, **kwargs)
    dtype = model_dtype(model)
    pads = batch.pads
    if not batch.padded:
        pads = [0]  # one mask row broadcasts over the batch
    mask = attention_mask(pads, n, v, dtype, device)
    pos = positions(pads, n, v, device).expand(B, -1)
    with _window_masks(model, pads, n, v, dtype, device):
        return model.run_with_hooks(tokens, fwd_hooks=hooks, attention_mask=mask, position_ids=pos, **kwargs)
