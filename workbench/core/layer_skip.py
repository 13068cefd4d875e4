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
still fire) with the arguments of the Llama-style decoder layer (rotary ``position_embeddings``,
per layer type on Gemma 3, a 4-D mask, the cache), then the model's final norm, ``lm_head`` and
any logit soft-capping / scaling.  :func:`supports_layer_skip` allows the families whose decoder
layers take those arguments (:data:`SKIP_FAMILIES`, each checked against transformers in
``tests/test_support.py``), on one device, for prompts shorter than every sliding window
(then every layer attends to the whole prefix).  Other models and longer prompts use the scan's
one-forward path, which gives the same numbers.

**Checked on every prompt.**  The pass carries one control row: the prompt's own last token, joining
at layer 0 and never patched.  Its logits must equal the bridge forward's (relative difference
:data:`CONTROL_TOLERANCE`); if they do not, the pass raises :class:`SkipMismatch` and the scan
redoes the prompt on the one-forward path (and stops skipping on that model), with a warning.
It costs one row of ``L`` layers beside ``sum_l H_l (L - l)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ..data.prompts import EncodedPrompt
from .model import hook_name, input_device, layer_windows, model_dtype, model_info

__all__ = ["supports_layer_skip", "skip_mask", "skip_scan_prompt", "SkipMismatch", "SKIP_FAMILIES"]

# transformers model types whose decoder layers the pass may drive (the matrix test checks each)
SKIP_FAMILIES = frozenset(
    """llama mistral mixtral qwen2 qwen2_moe qwen3 qwen3_moe phi3 gemma gemma2 gemma3_text olmo olmo2 olmo3
    olmoe flex_olmo exaone4 glm glm4 granite granitemoe stablelm starcoder2 smollm3 nemotron hunyuan_v1_dense
    ernie4_5 seed_oss apertus arcee gpt_oss afmoe cohere cohere2""".split()
)
CONTROL_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8}  # else (16-bit) 2e-2; of the largest logit


class SkipMismatch(RuntimeError):
    """The layer-skip pass's control row disagrees with the bridge's own forward."""


def supports_layer_skip(model, n_tokens: int | None = None) -> bool:
    """Whether :func:`skip_scan_prompt` may drive this model's layers (a family of :data:`SKIP_FAMILIES`,
    one device, not turned off by a failed control row) for a prompt of ``n_tokens`` tokens (shorter
    than every sliding window of the model)."""
    hf = getattr(model, "original_model", None)
    inner = getattr(hf, "model", None)
    if model.__dict__.get("_workbench_no_skip") or hf is None or inner is None:
        return False
    if not all(hasattr(inner, a) for a in ("rotary_emb", "layers", "norm")) or not hasattr(hf, "lm_head"):
        return False
    if hf.config.model_type not in SKIP_FAMILIES:
        return False
    windows = [w for w in layer_windows(model) if w is not None]
    if n_tokens is not None and windows and n_tokens >= min(windows):
        return False
    return len({p.device for p in hf.parameters()}) == 1


def skip_mask(n_prefix: int, rows: int, dtype: torch.dtype, device) -> Float[Tensor, "1 1 rows keys"]:
    """Additive mask of ``rows`` variant rows against ``n_prefix`` cached keys and themselves:
    every row sees the whole prefix and its own key only (keys: ``n_prefix + rows``).

    >>> (skip_mask(2, 2, torch.float32, "cpu")[0, 0] == 0).int().tolist()  # 1: the key is seen
    [[1, 1, 1, 0], [1, 1, 0, 1]]
    """
    allowed = torch.zeros(rows, n_prefix + rows, dtype=torch.bool, device=device)
    allowed[:, :n_prefix] = True
    allowed[:, n_prefix:] = torch.eye(rows, dtype=torch.bool, device=device)
    mask = torch.zeros(rows, n_prefix + rows, dtype=dtype, device=device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[None, None]


def _rotary(hf):
    """``(hidden, positions, layer) -> position_embeddings``: one rotary embedding, or Gemma 3's per
    layer type (local and global layers rotate with different bases)."""
    rotary, cfg = hf.model.rotary_emb, hf.config
    kinds = getattr(cfg, "layer_types", None)
    if isinstance(getattr(rotary, "rope_type", None), dict) and kinds:  # keyed by layer type
        return lambda hidden, positions, j: rotary(hidden, positions, kinds[j])
    return lambda hidden, positions, j: rotary(hidden, positions)


def _final_logits(hf, hidden: Tensor) -> Tensor:
    """The final norm, the unembedding and what the causal-LM head does after it (Gemma 2/3's
    soft-capping, Granite's and Cohere's scaling), as ``*ForCausalLM.forward`` does."""
    logits = hf.lm_head(hf.model.norm(hidden))
    cfg = hf.config
    if getattr(cfg, "logits_scaling", None):  # Granite
        logits = logits / cfg.logits_scaling
    if getattr(cfg, "logit_scale", None):  # Cohere
        logits = logits * cfg.logit_scale
    cap = getattr(cfg, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


@torch.inference_mode()
def skip_scan_prompt(
    model,
    prompt: EncodedPrompt,
    mean_z: Float[Tensor, "layer head d_head"],
    heads: Sequence[tuple[int, int]],
) -> tuple[Float[Tensor, ""], Float[Tensor, " variant"], list[float]]:
    """``(P(answer | corrupted), P(answer | head i patched) for each of heads, |patch change| per layer)``.

    ``heads`` in any order; the returned probabilities follow it.  Raises :class:`SkipMismatch` if the
    control row (the unpatched last token, run through every layer by this pass) disagrees with the
    bridge's forward.
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

    grabs = [(hook_name("resid_pre", l), grab) for l in sorted({0, *by_layer})]
    logits, cache = model.run_with_hooks(
        torch.tensor([prompt.ids], device=device),
        fwd_hooks=grabs,
        return_type="logits_and_cache",
        use_cache=True,
        logits_to_keep=1,
    )
    bridge_logits = logits[0, -1].float()
    base = bridge_logits.softmax(-1)[prompt.answer_id].cpu()
    if cache is None or len(resid) != len(grabs):
        raise SkipMismatch("the bridge returned no key/value cache or skipped a resid_pre hook")
    cache.crop(-1)  # drop the last token's keys/values
    if cache.get_seq_length() != n - 1:
        raise SkipMismatch(f"cache holds {cache.get_seq_length()} tokens after cropping, expected {n - 1}")

    order: list[int] = []  # row r + 1 of the pass is variant order[r]; row 0 is the control row
    fired: list[float] = []
    mean_z = mean_z.to(device=device, dtype=dtype)
    rotary = _rotary(hf)

    def patch(z, hook):
        layer = hook.layer()
        idx = by_layer[layer]
        rows = torch.arange(z.shape[1] - len(idx), z.shape[1], device=z.device)
        hs = torch.tensor([heads[i][1] for i in idx], device=z.device)
        target = mean_z[layer, hs]
        fired.append(float((z[0, rows, hs] - target).abs().amax()))
        z[0, rows, hs] = target
        return z

    hidden = resid[0].to(dtype)  # the control row
    with model.hooks(fwd_hooks=[(hook_name("z", l), patch) for l in by_layer]):
        for j in range(L):
            if j in by_layer:
                order += by_layer[j]
                hidden = torch.cat([hidden, resid[j].to(dtype).expand(1, len(by_layer[j]), -1)], 1)
            rows = hidden.shape[1]
            positions = torch.full((1, rows), n - 1, device=device)
            try:
                out = hf.model.layers[j](
                    hidden,
                    attention_mask=skip_mask(n - 1, rows, dtype, device),
                    position_embeddings=rotary(hidden, positions, j),
                    position_ids=positions,
                    past_key_values=cache,
                    use_cache=True,
                )
            except (TypeError, ValueError) as e:  # the layer takes other arguments than this pass gives
                raise SkipMismatch(
                    f"decoder layer {j} of {info.name} refused the layer-skip pass: {e}"
                ) from e
            hidden = out[0] if isinstance(out, tuple) else out
        final = _final_logits(hf, hidden)[0].float()  # [rows, d_vocab]
    if len(fired) != len(by_layer):
        raise SkipMismatch(f"only {len(fired)} of {len(by_layer)} patching hooks fired in the skip pass")
    scale = float(bridge_logits.abs().max()) or 1.0
    error = float((final[0] - bridge_logits).abs().max()) / scale
    if not error <= CONTROL_TOLERANCE.get(dtype, 2e-2):
        raise SkipMismatch(
            f"the layer-skip pass's control row differs from the bridge's forward by {error:.2e} of the "
            f"largest logit on {info.name}"
        )
    probs = final[1:].softmax(-1)[:, prompt.answer_id].cpu()
    out_probs = torch.empty(len(heads))
    out_probs[torch.tensor(order)] = probs
    return base, out_probs, fired
