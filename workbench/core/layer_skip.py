"""The head scan with each variant started at its own layer: the layers below a patch are skipped.

A variant that patches head ``(l, h)`` at the last token equals the prompt's own last token in
every layer below ``l``.  So, per prompt:

1. one bridge forward of the prompt with a key/value cache, reading the last token's residual
   entering every block (``blocks.j.hook_resid_pre``) and ``P(answer | corrupted)``; the cache
   is then cut to the first ``n - 1`` tokens (the variants see those and themselves);
2. one pass up the decoder layers on the variant rows only: at layer ``j`` the variants of the
   heads of layer ``j`` join, as copies of the cached residual entering ``j``; every row sits at
   position ``n - 1`` and attends to the cached prefix and itself (:func:`skip_mask`); the
   patch is written at ``blocks.j.attn.hook_z`` on the rows that joined there;
3. the final norm and unembedding on all rows.

Row-layers computed: ``sum_l H_l (L - l)`` instead of ``V L``: about half for a full scan.

**Where it runs.**  TransformerLens 4's bridge cannot start a forward at layer ``k`` without
running blocks ``0 .. k-1`` (its ``start_at_layer`` executes them and discards their output), so
step 2 drives the HF decoder layers directly (the bridge's block components, so its hook points
still fire) with the arguments of the Llama decoder layer (rotary ``position_embeddings``, a 4-D
mask, the cache).  :func:`supports_layer_skip` allows only that family without a sliding window
(Llama, SmolLM2); other models use the scan's one-forward path, which gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ..data.prompts import EncodedPrompt
from .model import hook_name, input_device, model_dtype, model_info

__all__ = ["supports_layer_skip", "skip_mask", "skip_scan_prompt"]


def supports_layer_skip(model) -> bool:
    """Whether :func:`skip_scan_prompt` may drive this model's layers (Llama decoder layers, one device,
    full attention in every layer)."""
    hf = getattr(model, "original_model", None)
    inner = getattr(hf, "model", None)
    if hf is None or inner is None or not hasattr(inner, "rotary_emb") or not hasattr(inner, "layers"):
        return False
    cfg = hf.config
    if cfg.model_type != "llama" or getattr(cfg, "sliding_window", None):
        return False
    devices = {p.device for p in hf.parameters()}
    return len(devices) == 1


def skip_mask(n_prefix: int, rows: int, dtype: torch.dtype, device) -> Float[Tensor, "1 1 rows keys"]:
    """Additive mask of ``rows`` variant rows against ``n_prefix`` cached keys and themselves:
    every row sees the whole prefix and its own key only (keys: ``n_prefix + rows``)."""
    allowed = torch.zeros(rows, n_prefix + rows, dtype=torch.bool, device=device)
    allowed[:, :n_prefix] = True
    allowed[:, n_prefix:] = torch.eye(rows, dtype=torch.bool, device=device)
    mask = torch.zeros(rows, n_prefix + rows, dtype=dtype, device=device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[None, None]


@torch.inference_mode()
def skip_scan_prompt(
    model,
    prompt: EncodedPrompt,
    mean_z: Float[Tensor, "layer head d_head"],
    heads: Sequence[tuple[int, int]],
) -> tuple[Float[Tensor, ""], Float[Tensor, " variant"], list[float]]:
    """``(P(answer | corrupted), P(answer | head i patched) for each of heads, |patch change| per layer)``.

    ``heads`` in any order; the returned probabilities follow it.
    """
    info = model_info(model)
    device, dtype = input_device(model), model_dtype(model)
    hf = model.original_model
    L, n = info.n_layers, len(prompt.ids)
    by_layer: dict[int, list[int]] = {}
    for i, (l, _) in enumerate(heads):
        by_layer.setdefault(l, []).append(i)

    resid: dict[int, Tensor] = {}

    def grab(act, hook):
        resid[hook.layer()] = act[:, -1:].clone()

    grabs = [(hook_name("resid_pre", l), grab) for l in sorted(by_layer)]
    logits, cache = model.run_with_hooks(
        torch.tensor([prompt.ids], device=device),
        fwd_hooks=grabs,
        return_type="logits_and_cache",
        use_cache=True,
        logits_to_keep=1,
    )
    base = logits[0, -1].float().softmax(-1)[prompt.answer_id].cpu()
    if cache is None or len(resid) != len(by_layer):
        raise RuntimeError(
            "the bridge returned no key/value cache or skipped a resid_pre hook: use the plain scan"
        )
    cache.crop(-1)  # drop the last token's keys/values
    if cache.get_seq_length() != n - 1:
        raise RuntimeError(f"cache holds {cache.get_seq_length()} tokens after cropping, expected {n - 1}")

    order: list[int] = []  # row r of the pass is variant order[r]
    fired: list[float] = []
    mean_z = mean_z.to(device=device, dtype=dtype)

    def patch(z, hook):
        layer = hook.layer()
        idx = by_layer[layer]
        rows = torch.arange(z.shape[1] - len(idx), z.shape[1], device=z.device)
        hs = torch.tensor([heads[i][1] for i in idx], device=z.device)
        target = mean_z[layer, hs]
        fired.append(float((z[0, rows, hs] - target).abs().amax()))
        z[0, rows, hs] = target
        return z

    hidden = torch.empty(1, 0, info.d_model, device=device, dtype=dtype)
    with model.hooks(fwd_hooks=[(hook_name("z", l), patch) for l in by_layer]):
        for j in range(min(by_layer), L):
            if j in by_layer:
                order += by_layer[j]
                hidden = torch.cat([hidden, resid[j].to(dtype).expand(1, len(by_layer[j]), -1)], 1)
            rows = hidden.shape[1]
            positions = torch.full((1, rows), n - 1, device=device)
            out = hf.model.layers[j](
                hidden,
                attention_mask=skip_mask(n - 1, rows, dtype, device),
                position_embeddings=hf.model.rotary_emb(hidden, positions),
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
            )
            hidden = out[0] if isinstance(out, tuple) else out
        final = hf.lm_head(hf.model.norm(hidden))[0]  # [rows, d_vocab]
    if len(fired) != len(by_layer):
        raise RuntimeError(
            f"only {len(fired)} of {len(by_layer)} patching hooks fired in the layer-skip pass"
        )
    probs = final.float().softmax(-1)[:, prompt.answer_id].cpu()
    out_probs = torch.empty(len(heads))
    out_probs[torch.tensor(order)] = probs
    return base, out_probs, fired
