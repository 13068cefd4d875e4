"""Mean head activations over clean prompts, and the one map from a head to the residual stream.

For head ``h`` of layer ``l`` with output ``z_h`` (the input of the attention output
projection, ``blocks.l.attn.hook_z``), let ``o = sum_h z_h @ W_O[l, h] (+ b_O)`` be the
projection's output (``blocks.l.attn.hook_out``).  What the attention block adds to the
residual stream is ``post_l(o)``, and the head's share of it is

- most models (GPT-2, GPT-J, Llama, SmolLM2):  ``post_l = identity``, the share ``z_h @ W_O[l, h]``.
  An output bias ``b_O`` is not a head's: it is added once per layer whatever the heads do;
- a post-attention RMSNorm, whatever the model calls it (Gemma 2/3 ``post_attention_layernorm``,
  OLMo-2/3 and EXAONE-4 ``post_attention_layernorm`` with no pre-norm, GLM-4
  ``post_self_attn_layernorm``), read per layer from the bridge's own block structure
  (``blocks.l.ln1_post``): ``(z_h @ W_O[l, h]) * g / rms(o)``, with ``g`` the norm's gain and
  ``rms(o)`` taken from the SAME forward pass;
- a residual multiplier ``m`` (Granite's ``residual_multiplier``, the bridge's
  ``residual_contribution_scale``): the share times ``m``.

So the heads' shares plus :func:`bias_to_residual` add up exactly to what enters the residual
(the self-check, :mod:`workbench.core.selfcheck`, verifies this against transformers on every
model).  :func:`head_to_residual` is that map; every other module calls it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import einops
import torch
from jaxtyping import Float
from torch import Tensor

from ..data.prompts import EncodedPrompt
from . import padding
from .forward import last_token_logits, pads_here
from .model import hook_name, model_info

__all__ = [
    "HeadMeans",
    "head_to_residual",
    "layer_W_O",
    "bias_to_residual",
    "post_attn_norm_module",
    "residual_scale",
    "post_norm_gain",
    "mean_head_activations",
    "last_token_states",
]


def post_attn_norm_module(model, layer: int):
    """The norm between layer ``layer``'s attention output and the residual stream, or ``None``.

    Read from the bridge's block structure (its ``ln1_post`` component), whatever the
    transformers module is called; the pre-MLP norm (``ln2``) is never taken for it.
    """
    post = getattr(model.blocks[layer], "ln1_post", None)
    return None if post is None else getattr(post, "original_component", post)


def residual_scale(model, layer: int) -> float:
    """The factor on layer ``layer``'s attention output as it joins the residual (Granite's
    ``residual_multiplier``; 1 for most models)."""
    return float(getattr(model.blocks[layer], "residual_contribution_scale", 1.0))


def post_norm_gain(model, layer: int) -> tuple[Float[Tensor, " d_model"], float]:
    """``(g, eps)`` of the post-attention RMSNorm of ``layer`` (see :func:`post_attn_norm_module`).

    Read by applying the norm to a vector of ones: ``norm(1) = g / sqrt(1 + eps)``, which holds
    whether the module stores ``g`` or ``g - 1`` (Gemma's offset convention).
    """
    cache = model.__dict__.setdefault("_workbench_post_norm", {})
    if layer not in cache:
        norm = post_attn_norm_module(model, layer)
        if norm is None:
            raise ValueError(f"layer {layer} of {model_info(model).name} has no post-attention norm")
        eps = getattr(norm, "eps", None)
        eps = float(eps if eps is not None else getattr(norm, "variance_epsilon", 1e-6))
        ones = torch.ones(1, model_info(model).d_model, device=next(norm.parameters()).device)
        with torch.no_grad():
            gain = norm(ones)[0].float() * (1.0 + eps) ** 0.5
        cache[layer] = (gain, eps)
    return cache[layer]


def _post_map(
    model, layer: int, x: Float[Tensor, "... d_model"], attn_out: Tensor | None, per_head: bool
) -> Tensor:
    """Apply layer ``layer``'s linearised post-processing ``post_l`` (module docstring) to ``x``."""
    scale = residual_scale(model, layer)
    if scale != 1.0:
        x = x * scale
    if post_attn_norm_module(model, layer) is None:
        return x
    if attn_out is None:
        raise ValueError(
            f"{model_info(model).name} normalises the attention output before the residual stream: "
            "pass attn_out (blocks.L.attn.hook_out from the same forward pass) to map heads exactly."
        )
    gain, eps = post_norm_gain(model, layer)
    inv_rms = torch.rsqrt(attn_out.float().pow(2).mean(-1, keepdim=True) + eps).to(x.dtype)
    factor = inv_rms * gain.to(device=x.device, dtype=x.dtype)
    return x * (factor.unsqueeze(-2) if per_head else factor)


def layer_W_O(model, layer: int) -> Float[Tensor, "head d_head d_model"]:
    """Layer ``layer``'s output projection per head, read from that block alone.

    Not ``model.W_O[layer]``: the bridge's ``W_O`` stacks every layer's weight into a new tensor on
    each access (``n_layers x d_model^2`` elements: 1.8 GiB for GPT-J in float32, 10.7 GiB for
    Llama-2-70B in bfloat16, per call), which ``bench/full_width.py`` caught as a memory peak.
    """
    info = model_info(model)
    want = (info.n_heads, info.d_head, info.d_model)
    W_O = getattr(model.blocks[layer].attn, "W_O", None)
    if W_O is None or tuple(W_O.shape) != want:  # a layout the block does not reshape: the stack
        W_O = model.W_O[layer]
    return W_O


def head_to_residual(
    model,
    layer: int,
    z: Float[Tensor, "... head d_head"],
    attn_out: Float[Tensor, "... d_model"] | None = None,
) -> Float[Tensor, "... head d_model"]:
    """Each head's contribution to the residual stream, from its ``hook_z`` output.

    ``attn_out`` (``blocks.l.attn.hook_out``, the projection's output before any norm, from
    the same forward pass) is needed for models with a post-attention norm.
    """
    W_O = layer_W_O(model, layer).to(device=z.device, dtype=z.dtype)  # [head, d_head, d_model]
    out = einops.einsum(z, W_O, "... head d_head, head d_head d_model -> ... head d_model")
    return _post_map(model, layer, out, attn_out, per_head=True)


def bias_to_residual(
    model, layer: int, attn_out: Float[Tensor, "... d_model"] | None = None
) -> Float[Tensor, "... d_model"] | Float[Tensor, " d_model"]:
    """The output bias's share of what layer ``layer``'s attention adds to the residual (0 without
    a bias): the part of it no head writes.  ``attn_out`` as in :func:`head_to_residual`."""
    proj = model.blocks[layer].attn.o
    proj = getattr(proj, "original_component", proj)
    bias = getattr(proj, "bias", None)
    d_model = model_info(model).d_model
    if bias is None:
        like = attn_out if attn_out is not None else torch.zeros(d_model)
        return torch.zeros_like(like, dtype=torch.float32)
    b = bias.detach().float()
    if attn_out is not None:
        b = b.to(attn_out.device).expand_as(attn_out)
    return _post_map(model, layer, b, None if attn_out is None else attn_out.float(), per_head=False)


@dataclass
class HeadMeans:
    """Last-token means over clean prompts.

    mean_z:     ``[layer, head, d_head]`` each head's mean ``hook_z`` (used to patch heads).
    mean_out:   ``[layer, head, d_model]`` each head's mean residual contribution (FV terms).
    mean_resid: ``[layer, d_model]`` mean ``hook_resid_post`` (the mean-state baseline).
    """

    mean_z: Float[Tensor, "layer head d_head"]
    mean_out: Float[Tensor, "layer head d_model"]
    mean_resid: Float[Tensor, "layer d_model"]
    n_prompts: int

    def __repr__(self) -> str:
        L, H, dh = self.mean_z.shape
        return f"HeadMeans({L} layers x {H} heads, d_head {dh}, over {self.n_prompts} prompts)"

    def centered(self, baseline: HeadMeans) -> HeadMeans:
        """These means with ``baseline``'s head outputs subtracted (``mean_out - baseline.mean_out``):
        what these prompts change in each head's output, without what it writes on any prompt."""
        return HeadMeans(self.mean_z, self.mean_out - baseline.mean_out, self.mean_resid, self.n_prompts)

    def to_tensors(self) -> dict[str, Tensor]:
        return {
            "mean_z": self.mean_z,
            "mean_out": self.mean_out,
            "mean_resid": self.mean_resid,
            "n_prompts": torch.tensor(self.n_prompts),
        }

    @classmethod
    def from_tensors(cls, t: dict[str, Tensor]) -> HeadMeans:
        return cls(t["mean_z"], t["mean_out"], t["mean_resid"], int(t["n_prompts"]))


def mean_head_activations(
    model, prompts: Sequence[EncodedPrompt], batch_size: int = 8, progress: bool = True
) -> HeadMeans:
    """Average every head's last-token ``z`` (and its residual contribution) over ``prompts``.

    Uses running sums: memory does not grow with the number of prompts.
    """
    info = model_info(model)
    L, H = info.n_layers, info.n_heads
    sum_z = torch.zeros(L, H, info.d_head)
    sum_out = torch.zeros(L, H, info.d_model)
    sum_resid = torch.zeros(L, info.d_model)
    z_last: dict[int, Tensor] = {}

    def grab_z(act, hook):
        z_last[hook.layer()] = act[:, -1]  # [batch, head, d_head]

    def grab_attn_out(act, hook):  # fires after hook_z in the same layer
        layer = hook.layer()
        z = z_last.pop(layer)
        sum_z[layer] += z.float().sum(0).cpu()
        # the map in float32 (W_O cast up), whatever the model's dtype: the FV's terms are scores
        sum_out[layer] += head_to_residual(model, layer, z.float(), act[:, -1].float()).sum(0).cpu()

    def grab_resid(act, hook):
        sum_resid[hook.layer()] += act[:, -1].float().sum(0).cpu()

    hooks = []
    for layer in range(L):
        hooks += [
            (hook_name("z", layer), grab_z),
            (hook_name("attn_out", layer), grab_attn_out),
            (hook_name("resid_post", layer), grab_resid),
        ]
    last_token_logits(  # the hooks read the last position only: prompts of unequal length may share a forward
        model, prompts, hooks, batch_size=batch_size, progress=progress and "mean activations", pad=True
    )
    n = len(prompts)
    if n == 0:
        raise ValueError("mean_head_activations needs at least one prompt")
    return HeadMeans(sum_z / n, sum_out / n, sum_resid / n, n)


def last_token_states(
    model, prompts: Sequence[EncodedPrompt], layers: Sequence[int], batch_size: int = 8
) -> Float[Tensor, "layer prompt d_model"]:
    """Each prompt's last-token ``hook_resid_post`` after each of ``layers`` (in that order).

    The forward stops after the deepest of ``layers`` (the bridge's ``stop_at_layer``): the blocks
    above it and the unembedding would change nothing read here.
    """
    info = model_info(model)
    row = {layer: i for i, layer in enumerate(layers)}
    states = torch.zeros(len(layers), len(prompts), info.d_model)
    stop = max(layers, default=info.n_layers - 1) + 1

    for batch in padding.batches(prompts, batch_size, pad=pads_here(model, prompts)):

        def store(resid, hook, idx=batch.idx):
            states[row[hook.layer()], idx] = resid[:, -1].float().cpu()
            return resid

        with torch.inference_mode():
            padding.run(
                model,
                batch,
                [(hook_name("resid_post", layer), store) for layer in layers],
                stop_at_layer=stop if stop < info.n_layers else None,
                logits_to_keep=1,
            )
    return states
