"""Many last-token interventions against ONE run of each prompt's prefix: the scan's insight, for every stage.

An intervention at the last token (an FV added after layer L, a state replaced, a head patched or
ablated, a direction projected out) changes nothing at earlier positions.  So for a batch of
prompts, left-padded to ``n`` columns (:mod:`workbench.core.padding`: prompts of unequal length
share a forward, each row with its own positions), the forward runs the prompt tokens once,
followed by ``V`` *variant* copies of each row's last token, all at that token's position (same
rotary angle / absolute position) and each seeing its row's prefix and itself only (one 4-D
mask, :func:`workbench.core.padding.attention_mask`).  Variant ``i`` gets its own intervention:
its hooks are called on the one-position slice ``act[:, n + i : n + i + 1]``, so every hook of
:mod:`workbench.core.hooks` (which act on the LAST position, ``[:, -1]``) applies unchanged to
that variant and to no other row.  An intervention of ``None`` is the prompt's own last token.
One forward of ``B x (n + V)`` tokens equals ``B x V`` separate full forwards, to float rounding.

Rules for an intervention here: its hooks must touch only the last position (``from_position``
left ``None``) and sit on a hook point whose axis 1 is the position (``hook_z``,
``hook_resid_*``, ``hook_out``, ...; not ``hook_pattern``).  ``V`` is chunked to bound memory
(:func:`workbench.core.scan.auto_variant_batch`, or ``variant_batch``, or an enclosing
:func:`workbench.core.forward.variant_batch` block).

:func:`variant_scores` is the one entry point; with ``plain=True`` (or inside
:func:`plain_forwards`) it runs one ordinary forward per intervention instead (the path the
tests and ``bench/pipeline_speed.py`` compare against).

**Why these variants still run through the layers below their site.**  Below its site a
variant's row equals the prompt's own last token, so it could start from that token's cached
residual.  TransformerLens 4's bridge cannot save that work: its ``start_at_layer``
(``TransformerBridge.forward``) feeds the residual in as ``inputs_embeds`` and still executes
blocks ``0 .. k-1`` (block ``k`` then swaps the residual back in, discarding their output:
``BlockBridge._maybe_inject_start_residual``), and a hook cannot drop rows mid-forward (the
mask, rotary angles and position ids are fixed for the whole sequence).  The head scan, where
it matters most (270 variants against a ~100-token prompt), does skip them on Llama-style families
by driving the decoder layers itself (:mod:`workbench.core.layer_skip`).  Here it would save
little: a layer sweep's 30 variants beside a 10-shot prompt are under a quarter of the forward,
and the skip would save half of that.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm

from ..data.prompts import EncodedPrompt
from . import padding
from .forward import (
    HookFactory,
    Hooks,
    chosen_variant_batch,
    last_token_logits,
    pads_here,
    plain_forwards,
    use_plain,
)

__all__ = ["Intervention", "AnswerScores", "variant_scores", "plain_forwards", "use_plain", "variant_mask"]

Intervention = Hooks | HookFactory | None  # hooks, a factory of them (prompt indices -> hooks), or nothing

# hook points whose activation is [batch, pos, ...]: a variant's row can be sliced out on axis 1
_POSITION_AXIS_1 = ("hook_z", "hook_q", "hook_k", "hook_v", "hook_out", "hook_resid_pre", "hook_resid_mid")
_POSITION_AXIS_1 += ("hook_resid_post", "hook_attn_out", "hook_mlp_out", "hook_embed", "hook_result")


def variant_mask(model, n: int, v: int, dtype: torch.dtype, device) -> Float[Tensor, "1 1 pos pos"]:
    """The additive mask of ``n`` prompt tokens + ``v`` variants of one unpadded row
    (:func:`workbench.core.padding.attention_mask`, the one place masks are built)."""
    return padding.attention_mask([0], n, v, dtype, device)


def _needs_plain(model, longest: int, n_variants: int) -> bool:
    """Whether appended variants cannot be exact for this model and these prompts: ALiBi or
    OpenAI-GPT (:func:`~workbench.core.padding.slow_path_reason`), or a layer that windows by absolute
    index inside the module (GPT-Neo) narrower than prompt plus variants."""
    window = padding.internal_window(model)
    return padding.slow_path_reason(model) is not None or (
        window is not None and longest + n_variants > window
    )


@dataclass
class AnswerScores:
    """Per prompt, under one intervention: the answer's rank (0 = top-1), its probability, the top token.

    ``logits`` (``[prompt, d_vocab]``, float32) only when asked for (``keep_logits``).
    """

    ranks: Int[Tensor, " prompt"]
    probs: Float[Tensor, " prompt"]
    top1: Int[Tensor, " prompt"]
    logits: Float[Tensor, "prompt d_vocab"] | None = None


def _check_site(name: str) -> None:
    if not name.endswith(_POSITION_AXIS_1):
        raise ValueError(
            f"hook point {name!r} has no position axis 1; a last-token variant cannot be sliced out of it. "
            "Use plain_forwards() for interventions there."
        )


def _per_variant_hooks(per_variant: Sequence[Hooks], first: int, fired: set[tuple[int, str]]) -> Hooks:
    """One hook per hook point, applying variant ``i``'s hooks to the row ``first + i`` only."""
    by_name: dict[str, list[tuple[int, Callable]]] = {}
    for i, hooks in enumerate(per_variant):
        for name, fn in hooks:
            _check_site(name)
            by_name.setdefault(name, []).append((i, fn))

    def make(name: str, items: list[tuple[int, Callable]]) -> Callable:
        def hook(act, hook):
            for i, fn in items:
                row = slice(first + i, first + i + 1)
                out = fn(act[:, row], hook)
                if out is not None:
                    act[:, row] = out
                fired.add((i, name))
            return act

        return hook

    return [(name, make(name, items)) for name, items in by_name.items()]


def _scores(logits: Float[Tensor, "batch d_vocab"], answers: Int[Tensor, " batch"]):
    logits = logits.float()
    answer_logit = logits.gather(1, answers[:, None])
    ranks = (logits > answer_logit).sum(-1)
    probs = logits.softmax(-1).gather(1, answers[:, None])[:, 0]
    return ranks.cpu(), probs.cpu(), logits.argmax(-1).cpu()


def _plan(model, prompts, n_variants, batch_size, variant_batch) -> list[tuple[padding.Batch, int]]:
    """``(batch, variants per forward)``: prompts left-padded into shared forwards where the model
    allows (:func:`~workbench.core.forward.pads_here`), else of one length at a time.

    All variants go in one forward when memory allows (the prefix then runs once), and the prompts
    per forward shrink to fit: ``rows * variants <= auto_variant_batch`` (the scan's estimate of
    how many extra last-token rows fit, at the longest prompt).  ``variant_batch`` overrides the
    variants per forward.
    """
    from .scan import auto_variant_batch

    variant_batch = variant_batch or chosen_variant_batch()
    budget = auto_variant_batch(model, max(len(p.ids) for p in prompts))
    v = variant_batch or max(1, min(n_variants, budget))
    rows = batch_size if variant_batch else max(1, min(batch_size, budget // max(1, v)))
    pad = pads_here(model, prompts, min(v, n_variants))
    extra = min(v, max(1, n_variants))
    return [(batch, v) for batch in padding.batches(prompts, rows, pad=pad, extra=extra)]


@torch.inference_mode()
def variant_scores(
    model,
    prompts: Sequence[EncodedPrompt],
    interventions: Mapping[Hashable, Intervention],
    batch_size: int = 16,
    variant_batch: int | None = None,
    plain: bool | None = None,
    keep_logits: bool = False,
    progress: bool | str = False,
) -> dict[Hashable, AnswerScores]:
    """Every prompt under every intervention, scored on its answer token.

    Args:
        interventions: name -> hooks / hook factory / ``None`` (no intervention).
        batch_size: prompts per forward (left-padded to one width where the model allows).
        variant_batch: variants per forward, which bounds memory (default: the enclosing
            :func:`~workbench.core.forward.variant_batch` block's, else
            :func:`~workbench.core.scan.auto_variant_batch` divided by the prompts in the batch).
        plain: one ordinary forward per intervention (default: inside :func:`plain_forwards`).
        keep_logits: also return every prompt's full last-token logits (memory ``I x P x d_vocab``).
    """
    plain = use_plain() if plain is None else plain
    names = list(interventions)
    P = len(prompts)
    n_hooked = sum(iv is not None for iv in interventions.values())
    if not plain and P and _needs_plain(model, max(len(p) for p in prompts), n_hooked):
        plain = True
    answers_all = torch.tensor([p.answer_id for p in prompts], dtype=torch.long)
    if P == 0:
        empty = (torch.empty(0, dtype=torch.long), torch.empty(0), torch.empty(0, dtype=torch.long))
        return {name: AnswerScores(*empty) for name in names}
    if plain:
        out = {}
        desc = progress if isinstance(progress, str) else "interventions"
        for name in tqdm(names, desc=desc, disable=not progress, leave=False):
            logits = last_token_logits(model, prompts, interventions[name], batch_size=batch_size, pad=False)
            r, pr, t = _scores(logits, answers_all)
            out[name] = AnswerScores(r, pr, t, logits if keep_logits else None)
        return out

    ranks = torch.zeros(len(names), P, dtype=torch.long)
    probs = torch.zeros(len(names), P)
    top1 = torch.zeros(len(names), P, dtype=torch.long)
    kept = [None] * len(names)
    hooked = [i for i, name in enumerate(names) if interventions[name] is not None]
    bare = [i for i, name in enumerate(names) if interventions[name] is None]
    batches = _plan(model, prompts, len(hooked), batch_size, variant_batch)
    bar = tqdm(
        total=P * max(1, len(hooked)),
        desc=progress if isinstance(progress, str) else "variants",
        disable=not progress,
        leave=False,
    )
    for batch, v_max in batches:
        idx = batch.idx
        B, n = batch.tokens.shape
        answers = answers_all[idx]
        chunks = [hooked[s : s + v_max] for s in range(0, len(hooked), v_max)] or [[]]
        for c_idx, chunk in enumerate(chunks):
            v = len(chunk)
            per_variant = []
            for i in chunk:
                iv = interventions[names[i]]
                per_variant.append(iv(idx) if callable(iv) else list(iv))
            fired: set[tuple[int, str]] = set()
            hooks = _per_variant_hooks(per_variant, n, fired)
            logits = padding.run(model, batch, hooks, v=v, logits_to_keep=v + 1)
            # [B, v + 1, d_vocab]: the prompt's own last token, then the variants
            want = {(j, name) for j, hs in enumerate(per_variant) for name, _ in hs}
            if want - fired:
                missing = sorted(want - fired)
                raise RuntimeError(
                    f"{len(missing)} intervention hooks never fired (e.g. {missing[0][1]!r}): the hook "
                    "names do not match this model's hook points."
                )
            rows = [(i, 1 + j) for j, i in enumerate(chunk)] + ([(i, 0) for i in bare] if c_idx == 0 else [])
            for i, col in rows:
                r, pr, t = _scores(logits[:, col], answers.to(logits.device))
                ranks[i, idx], probs[i, idx], top1[i, idx] = r, pr, t
                if keep_logits:
                    if kept[i] is None:
                        kept[i] = torch.empty(P, logits.shape[-1])
                    kept[i][idx] = logits[:, col].float().cpu()
            bar.update(B * v)
    bar.close()
    return {name: AnswerScores(ranks[i], probs[i], top1[i], kept[i]) for i, name in enumerate(names)}
