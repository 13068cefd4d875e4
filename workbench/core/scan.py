"""Causal indirect effect (CIE) of every attention head, and the result object.

For a corrupted prompt (10 shuffled-label demonstrations and a query whose answer is ``a``),
head ``(l, h)`` gets

    CIE(l, h) = P(a | z_{l,h}[last] := mean_z[l, h]) - P(a | corrupted)

and the average over prompts is the head's AIE (Todd et al., section 2.2).

**How the scan is fast and still exact.**  Patching a head at the last token changes nothing at
earlier positions.  So each prompt's tokens run ONCE, followed by V *variant* copies of its last
token, all at the last position's index (same rotary angle) and each seeing the prefix and
itself only (a 4-D attention mask).  Variant ``i`` has head ``(l_i, h_i)`` patched at
``blocks.l_i.attn.hook_z``.  One forward of ``n + V`` tokens gives V patched runs that equal V
separate full forwards (to float rounding), and logits are computed for the last ``V + 1``
positions only (the unpatched last token gives ``P(a | corrupted)``).  V is chunked to bound
memory.  ``tests/reference.py`` holds the plain one-forward-per-head oracle the tests compare to.

Sliding-window (local) layers get their own variant mask (:func:`layer_windows`, installed per
layer by a pre-hook on the attention), so a variant sees exactly the keys the real last token
sees in that layer.  Models whose masking the variant mask cannot express (ALiBi built from a
padding mask, OpenAI-GPT; GPT-Neo's in-module local window once prompt + variants outgrow it)
take the exact slow path: one full forward per head (:func:`slow_path_reason`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..data.prompts import EncodedPrompt
from .forward import chosen_variant_batch, use_plain
from .layer_skip import SkipMismatch, skip_scan_prompt, supports_layer_skip
from .model import OutOfRange, hook_name, input_device, layer_windows, model_dtype, model_info
from .padding import PatchDidNothing, attention_mask, install_window_masks, internal_window, slow_path_reason

_internal_window = internal_window  # the name the scan's callers know

__all__ = [
    "HeadScan",
    "scan_heads",
    "attribution_scan",
    "hybrid_candidates",
    "default_candidates",
    "top_heads",
    "universal_map",
    "auto_variant_batch",
    "PatchDidNothing",
    "layer_windows",
    "slow_path_reason",
]


def top_heads(scores: Float[Tensor, "layer head"], k: int = 10) -> list[tuple[int, int, float]]:
    """The ``k`` heads with the largest score (NaN never chosen), as ``(layer, head, score)``.

    >>> top_heads(torch.tensor([[0.1, 0.5], [float("nan"), 0.3]]), 2)
    [(0, 1, 0.5), (1, 1, 0.3...)]
    """
    if k < 0:
        raise ValueError(f"k must be 0 or more, got {k}")
    flat = torch.nan_to_num(scores.float(), nan=-float("inf")).flatten()
    order = flat.argsort(descending=True, stable=True)[:k]
    H = scores.shape[1]
    return [(int(i) // H, int(i) % H, float(flat[i])) for i in order]


def universal_map(aies: Sequence[Float[Tensor, "layer head"]]) -> Float[Tensor, "layer head"]:
    """The AIE averaged over tasks, each task weighted equally: the paper's universal FV heads.

    >>> universal_map([torch.ones(2, 2), torch.zeros(2, 2)]).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    aies = list(aies)
    if not aies:
        raise ValueError("universal_map needs at least one AIE map")
    if len({tuple(a.shape) for a in aies}) > 1:
        raise ValueError(
            f"AIE maps of different shapes {sorted({tuple(a.shape) for a in aies})}: one model at a time"
        )
    return torch.stack([a.float() for a in aies]).mean(0)


@dataclass
class HeadScan:
    """Per-prompt causal indirect effects of every head.

    effects: ``[prompt, layer, head]`` = ``P_patched(answer) - P_corrupted(answer)``;
    heads that were not scanned are NaN.
    """

    effects: Float[Tensor, "prompt layer head"]
    model: str = ""
    task: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def aie(self) -> Float[Tensor, "layer head"]:
        """Average indirect effect: the mean over prompts."""
        return self.effects.mean(0)

    @property
    def sem(self) -> Float[Tensor, "layer head"]:
        """Standard error of the AIE over prompts."""
        n = self.effects.shape[0]
        if n < 2:
            return torch.full_like(self.aie, float("nan"))
        return self.effects.std(0, unbiased=True) / math.sqrt(n)

    @property
    def n_prompts(self) -> int:
        return self.effects.shape[0]

    def top_heads(self, k: int = 10) -> list[tuple[int, int, float]]:
        """The ``k`` heads with the largest AIE, as ``(layer, head, aie)`` (:func:`top_heads`)."""
        return top_heads(self.aie, k)

    def __repr__(self) -> str:
        P, L, H = self.effects.shape
        top = ", ".join(f"L{l}H{h} {v:+.3f}" for l, h, v in self.top_heads(5))
        return (
            f"HeadScan({self.model or 'model'} on {self.task or 'task'}: {P} prompts x {L} layers x {H} "
            f"heads; top AIE: {top})"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>L{l}H{h}</td><td>{v:+.4f}</td><td>±{float(self.sem[l, h]):.4f}</td></tr>"
            for l, h, v in self.top_heads(10)
        )
        P, L, H = self.effects.shape
        return (
            f"<b>HeadScan</b> {self.model} / {self.task}: {P} prompts, {L}x{H} heads"
            f"<table><tr><th>head</th><th>AIE</th><th>s.e.</th></tr>{rows}</table>"
        )

    def to_tensors(self) -> dict[str, Tensor]:
        return {"effects": self.effects}

    @classmethod
    def from_tensors(cls, t: dict[str, Tensor], **kw) -> HeadScan:
        return cls(t["effects"], **kw)


def auto_variant_batch(model, n_tokens: int, budget_bytes: int | None = None) -> int:
    """How many patched variants fit in one forward beside an ``n_tokens`` prompt: the memory plan's
    rule (:func:`workbench.core.plan.variant_rows`), against a share of the memory free now
    (:func:`~workbench.core.plan.activation_budget`) unless ``budget_bytes`` is given."""
    from .plan import activation_budget, device_memory, shape_of_model, variant_rows

    info = model_info(model)
    if budget_bytes is None:
        device = input_device(model)
        budget_bytes = activation_budget(device_memory(device)[1], device.type)
    itemsize = torch.empty(0, dtype=model_dtype(model)).element_size()
    return variant_rows(shape_of_model(model), itemsize, n_tokens, budget_bytes, info.n_total_heads)


def _variant_mask(n: int, v: int, dtype: torch.dtype, device, window: int | None = None) -> Tensor:
    """Additive ``[1, 1, n+v, n+v]`` mask: causal over the prompt; variant i sees 0..n-2 and itself
    (within a sliding-window layer's ``window``): :func:`workbench.core.padding.attention_mask` of
    one unpadded row."""
    return attention_mask([0], n, v, dtype, device, window=window)


def _max_variants(model, n: int, v_max: int) -> int:
    """Variants per forward that keep an internally windowed model exact (0: none fit)."""
    w = _internal_window(model)
    return v_max if w is None else max(0, min(v_max, w - n))


def _install_layer_masks(model, n: int, v: int, dtype, device) -> list:
    """Forward pre-hooks giving every sliding-window layer its own variant mask (handles)."""
    return install_window_masks(model, [0], n, v, dtype, device)


def _one_forward_per_head(model, prompt: EncodedPrompt, mean_z: Tensor, chunk) -> tuple[Tensor, float]:
    """The exact slow path: ``[1 + len(chunk)]`` answer probabilities, unpatched then each head
    patched at the last position in its own full forward; and the smallest change a patch made."""
    device = input_device(model)
    tokens = torch.tensor([list(prompt.ids)], device=device)
    probs = [model(tokens, logits_to_keep=1)[0, -1].float().softmax(-1)[prompt.answer_id]]
    changes: list[float] = []
    for l, h in chunk:
        fired = []

        def patch(z, hook, l=l, h=h, fired=fired):
            fired.append(float((z[0, -1, h] - mean_z[l, h]).abs().amax()))
            z[:, -1, h] = mean_z[l, h].to(z.dtype)
            return z

        logits = model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", l), patch)], logits_to_keep=1)
        if not fired:
            raise PatchDidNothing(f"the patching hook of layer {l} never fired")
        probs.append(logits[0, -1].float().softmax(-1)[prompt.answer_id])
        changes.append(fired[0])
    return torch.stack(probs).cpu(), min(changes, default=float("inf"))


def scan_heads(
    model,
    prompts: Sequence[EncodedPrompt],
    mean_z: Float[Tensor, "layer head d_head"],
    heads: Sequence[tuple[int, int]] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    task: str = "",
    method: str = "exact",
    candidates: int | None = None,
) -> HeadScan:
    """Causal indirect effect of each head (all heads by default) on each corrupted prompt.

    Args:
        prompts: corrupted (shuffled-label) prompts, encoded.
        mean_z: each head's mean last-token ``hook_z`` over clean prompts.
        heads: ``(layer, head)`` pairs to scan; others stay NaN in the result.
        batch_size: patched variants per forward (default: the enclosing
            :func:`~workbench.core.forward.variant_batch` block's, else from free memory).
        method: ``"exact"`` (the default: real patched forwards), ``"attribution"`` (a first-order
            estimate from one forward and one backward per prompt), or ``"hybrid"``: attribution
            ranks every head, then the exact scan runs on the top ``candidates``
            (:func:`hybrid_candidates`); the other heads stay NaN.  For models too large for an
            exact scan of every head; its top heads are exact whenever the true top heads are
            among the candidates (``bench/hybrid_scan.py`` measures how often).
        candidates: heads the hybrid scan scans exactly (default :func:`default_candidates`).
    """
    if method == "attribution":
        return attribution_scan(model, prompts, mean_z, heads=heads, progress=progress, task=task)
    if method not in ("exact", "hybrid"):
        raise ValueError(f"unknown method {method!r}; use 'exact', 'attribution' or 'hybrid'")
    batch_size = batch_size or chosen_variant_batch()
    meta = {}
    if method == "hybrid":
        approx = attribution_scan(model, prompts, mean_z, heads=heads, progress=progress, task=task)
        heads = hybrid_candidates(approx, candidates)
        meta = {"method": "hybrid", "candidates": len(heads)}
    scan = _exact_scan(model, prompts, mean_z, heads, batch_size, progress, task)
    scan.meta.update(meta)
    return scan


def default_candidates(n_total_heads: int) -> int:
    """Heads the hybrid scan checks exactly by default: a tenth of them, at least 50 (all if fewer).

    >>> default_candidates(270), default_candidates(5120)
    (50, 512)
    """
    return min(n_total_heads, max(50, n_total_heads // 10))


def hybrid_candidates(approx: HeadScan, candidates: int | None = None) -> list[tuple[int, int]]:
    """The ``candidates`` heads with the largest attribution AIE in ``approx`` (an
    :func:`attribution_scan`), in ``(layer, head)`` order: what the hybrid scan scans exactly."""
    L, H = approx.aie.shape
    n = default_candidates(L * H) if candidates is None else candidates
    if n < 1:
        raise ValueError(f"candidates must be at least 1, got {n}")
    return sorted((l, h) for l, h, v in top_heads(approx.aie, n) if v > -math.inf)  # scanned heads only


def attribution_scan(
    model,
    prompts: Sequence[EncodedPrompt],
    mean_z: Float[Tensor, "layer head d_head"],
    heads: Sequence[tuple[int, int]] | None = None,
    progress: bool = True,
    task: str = "",
) -> HeadScan:
    """Attribution patching: ``CIE(l, h) ~ dP(answer)/dz_{l,h} . (mean_z[l, h] - z_{l,h})`` at the last token.

    One forward and one backward per prompt give every head's estimate (a first-order Taylor
    expansion of the exact patch).  Good where the effect is small and smooth; compare with the
    exact scan before trusting a ranking (:func:`workbench.studies.agreement.compare_scans`).
    """
    info = model_info(model)
    device = input_device(model)
    dtype = model_dtype(model)
    mean_z = mean_z.to(device=device, dtype=dtype)
    effects = torch.full((len(prompts), info.n_layers, info.n_heads), float("nan"))
    keep = torch.zeros(info.n_layers, info.n_heads, dtype=torch.bool)
    for l, h in (
        heads if heads is not None else [(l, h) for l in range(info.n_layers) for h in range(info.n_heads)]
    ):
        keep[info.check_layer(l), h] = True
    for p_idx, prompt in enumerate(tqdm(prompts, desc="attribution", disable=not progress, leave=False)):
        zs: dict[int, Tensor] = {}

        def grab(z, hook):
            zs[hook.layer()] = z
            return z

        with torch.enable_grad():
            logits = model.run_with_hooks(
                torch.tensor([prompt.ids], device=device),
                fwd_hooks=[(hook_name("z", l), grab) for l in range(info.n_layers)],
                logits_to_keep=1,
            )
            metric = logits[0, -1].float().softmax(-1)[prompt.answer_id]
            layers = sorted(zs)
            grads = torch.autograd.grad(metric, [zs[l] for l in layers])
        for l, g in zip(layers, grads):
            z_last = zs[l][0, -1].detach()
            # in float32 whatever the model's dtype: a bfloat16 sum over d_head would round each estimate
            diff = mean_z[l].to(z_last.device).float() - z_last.float()
            est = (diff * g[0, -1].float()).sum(-1).cpu()  # [head]
            effects[p_idx, l] = torch.where(keep[l], est, torch.tensor(float("nan")))
    return HeadScan(
        effects, model=info.name, task=task, meta={"method": "attribution", "n_prompts": len(prompts)}
    )


@torch.inference_mode()
def _exact_scan(model, prompts, mean_z, heads, batch_size, progress, task) -> HeadScan:
    """The exact batched scan (see the module docstring)."""
    info = model_info(model)
    device = input_device(model)
    dtype = model_dtype(model)
    if tuple(mean_z.shape) != (info.n_layers, info.n_heads, info.d_head):
        raise ValueError(
            f"mean_z has shape {tuple(mean_z.shape)}, but {info.name} needs "
            f"{(info.n_layers, info.n_heads, info.d_head)} (layer, head, d_head)."
        )
    todo = (
        list(heads)
        if heads is not None
        else [(l, h) for l in range(info.n_layers) for h in range(info.n_heads)]
    )
    for l, h in todo:
        info.check_layer(l)
        if not 0 <= h < info.n_heads:
            raise OutOfRange(f"head {h} is out of range: {info.name} has {info.n_heads} heads per layer")
    mean_z = mean_z.to(device=device, dtype=dtype)
    effects = torch.full((len(prompts), info.n_layers, info.n_heads), float("nan"))
    n_fired = 0
    min_change = float("inf")

    bar = tqdm(
        total=len(prompts) * len(todo), desc="head scan", unit="head", disable=not progress, leave=False
    )
    slow = slow_path_reason(model)
    # the layers below each patch skipped (core/layer_skip.py), where the model allows and memory
    # does not ask for chunks; the one-forward path below inside plain_forwards()
    skip = not slow and not use_plain() and (batch_size is None or batch_size >= len(todo))
    n_skipped = 0
    for p_idx, prompt in enumerate(prompts):
        n = len(prompt.ids)
        if (
            skip
            and supports_layer_skip(model, n)
            and (batch_size or auto_variant_batch(model, n)) >= len(todo)
        ):
            try:
                base, patched, fired = skip_scan_prompt(model, prompt, mean_z, todo)
            except SkipMismatch as e:  # never a silent number: the exact one-forward path instead
                model.__dict__["_workbench_no_skip"] = str(e)
                warnings.warn(
                    f"{e}; the scan goes on without skipping layers on this model (same numbers, slower)",
                    stacklevel=3,
                )
            else:
                for i, (l, h) in enumerate(todo):
                    effects[p_idx, l, h] = patched[i] - base
                n_fired += len(fired)
                min_change = min(min_change, *fired)
                n_skipped += 1
                bar.update(len(todo))
                continue
        v_max = batch_size or auto_variant_batch(model, n)
        v_max = 0 if slow else _max_variants(model, n, v_max)
        if v_max == 0:  # the exact slow path: one full forward per head
            for start in range(0, len(todo), 16):
                chunk = todo[start : start + 16]
                probs, change = _one_forward_per_head(model, prompt, mean_z, chunk)
                min_change = min(min_change, change)
                for i, (l, h) in enumerate(chunk):
                    effects[p_idx, l, h] = probs[1 + i] - probs[0]
                n_fired += len(chunk)
                bar.update(len(chunk))
            continue
        for start in range(0, len(todo), v_max):
            chunk = todo[start : start + v_max]
            v = len(chunk)
            tokens = torch.tensor([list(prompt.ids) + [prompt.ids[-1]] * v], device=device)
            positions = torch.cat([torch.arange(n), torch.full((v,), n - 1)]).to(device)[None]
            mask = _variant_mask(n, v, dtype, device)
            layer_masks = _install_layer_masks(model, n, v, dtype, device)

            by_layer: dict[int, tuple[Tensor, Tensor]] = {}
            for i, (l, h) in enumerate(chunk):
                pos, hd = by_layer.get(l, ([], []))
                by_layer[l] = (pos + [n + i], hd + [h])
            fired: list[float] = []

            def patch(z, hook):
                pos, hd = by_layer[hook.layer()]
                pos_t = torch.tensor(pos, device=z.device)
                hd_t = torch.tensor(hd, device=z.device)
                target = mean_z[hook.layer(), hd_t].to(z.device)  # [n_patched, d_head]
                fired.append(float((z[0, pos_t, hd_t] - target).abs().amax()))
                z[0, pos_t, hd_t] = target
                return z

            hooks = [(hook_name("z", l), patch) for l in by_layer]
            try:
                logits = model.run_with_hooks(
                    tokens, fwd_hooks=hooks, attention_mask=mask, position_ids=positions, logits_to_keep=v + 1
                )[0]  # [v + 1, d_vocab]: the unpatched last token, then the variants
            finally:
                for handle in layer_masks:
                    handle.remove()
            if len(fired) != len(by_layer):
                raise PatchDidNothing(
                    f"only {len(fired)} of {len(by_layer)} patching hooks fired: the hook names do not "
                    "match this model's hook points, and the scan would silently measure nothing."
                )
            n_fired += len(fired)
            min_change = min(min_change, *fired)
            probs = logits.float().softmax(-1)[:, prompt.answer_id].cpu()
            for i, (l, h) in enumerate(chunk):
                effects[p_idx, l, h] = probs[1 + i] - probs[0]
            bar.update(v)
    bar.close()
    meta = {
        "n_prompts": len(prompts),
        "n_heads_scanned": len(todo),
        "hooks_fired": n_fired,
        "min_patch_change": min_change,
        "layer_skip": n_skipped,  # prompts scanned by the layer-skip pass
    }
    if slow:
        meta["slow_path"] = slow
    return HeadScan(effects, model=info.name, task=task, meta=meta)
