"""Write into the residual stream: add a vector, replace a state, ablate heads, generate steered.

All interventions are TransformerLens hooks at ``blocks.L.hook_resid_post`` (the residual
stream after block ``L``) or ``blocks.L.attn.hook_z``, acting on the LAST position of each row
(and, in :func:`generate`, on every generated position too).

- :func:`add_vector`: ``resid[L][:, -1] += alpha * v`` (the function vector; the mean-state baseline).
- :func:`replace_last_state`: ``resid[L][i, -1] = states[i]`` (Hendel et al.'s task vector).
- :func:`mean_ablate_heads`: ``z[l][:, -1, h] = mean_z[l, h]`` for the given heads.
- :func:`project_out`: remove the component along ``v`` from ``resid[L][:, -1]`` for all L.
"""

from __future__ import annotations

from typing import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from .forward import HookFactory, Hooks
from .models import input_device, model_info

__all__ = ["add_vector", "replace_last_state", "mean_ablate_heads", "project_out", "generate"]


def _resid(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_post"


def add_vector(model, layer: int, vector: Float[Tensor, " d_model"], alpha: float = 1.0,
               from_position: int | None = None) -> Hooks:
    """Hooks adding ``alpha * vector`` after block ``layer`` at the last position.

    ``from_position`` (used in generation) adds it at that position and every later one.
    """
    layer = model_info(model).check_layer(layer)
    if vector.shape[-1] != model_info(model).d_model:
        raise ValueError(f"vector has width {vector.shape[-1]}, the model's d_model is {model_info(model).d_model}")
    v = vector.float()

    def hook(resid, hook):
        delta = (alpha * v).to(device=resid.device, dtype=resid.dtype)
        if from_position is None:
            resid[:, -1] += delta
        else:
            resid[:, from_position:] += delta
        return resid

    return [(_resid(layer), hook)]


def replace_last_state(model, layer: int, states: Float[Tensor, "prompt d_model"]) -> HookFactory:
    """A hook factory writing ``states[i]`` over prompt ``i``'s last-position state after ``layer``."""
    layer = model_info(model).check_layer(layer)

    def factory(indices: Sequence[int]) -> Hooks:
        batch_states = states[list(indices)]

        def hook(resid, hook):
            resid[:, -1] = batch_states.to(device=resid.device, dtype=resid.dtype)
            return resid

        return [(_resid(layer), hook)]

    return factory


def mean_ablate_heads(model, heads: Sequence[tuple[int, int]], mean_z: Float[Tensor, "layer head d_head"]) -> Hooks:
    """Replace each listed head's last-position output by its mean over clean prompts."""
    by_layer: dict[int, list[int]] = {}
    for l, h in heads:
        by_layer.setdefault(model_info(model).check_layer(l), []).append(h)

    def hook(z, hook):
        hs = by_layer[hook.layer()]
        z[:, -1, hs] = mean_z[hook.layer(), hs].to(device=z.device, dtype=z.dtype)
        return z

    return [(f"blocks.{l}.attn.hook_z", hook) for l in by_layer]


def project_out(model, direction: Float[Tensor, " d_model"], layers: Sequence[int] | None = None) -> Hooks:
    """Remove the component along ``direction`` from the last-position residual after each layer."""
    u = direction.float() / direction.float().norm()
    layers = range(model_info(model).n_layers) if layers is None else layers

    def hook(resid, hook):
        uu = u.to(device=resid.device, dtype=resid.dtype)
        last = resid[:, -1]
        resid[:, -1] = last - (last @ uu)[:, None] * uu
        return resid

    return [(_resid(l), hook) for l in layers]


@torch.inference_mode()
def generate(model, ids: Sequence[int], max_new_tokens: int = 16, vector: Tensor | None = None,
             layer: int | None = None, alpha: float = 1.0, stop_at_newline: bool = False) -> str:
    """Greedy generation from token ``ids``, optionally adding ``alpha * vector`` after ``layer``
    at the prompt's last position and at every generated position (no KV cache, so the
    steering can never be dropped at new tokens).  Returns the new text."""
    device = input_device(model)
    tokens = torch.tensor([list(ids)], device=device)
    first = len(ids) - 1
    hooks = add_vector(model, layer, vector, alpha, from_position=first) if vector is not None else []
    eos = model.tokenizer.eos_token_id
    new: list[int] = []
    for _ in range(max_new_tokens):
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks, logits_to_keep=1)[0, -1]
        nxt = int(logits.argmax())
        if nxt == eos:
            break
        new.append(nxt)
        if stop_at_newline and "\n" in model.tokenizer.decode([nxt]):
            break
        tokens = torch.cat([tokens, torch.tensor([[nxt]], device=device)], 1)
    return model.tokenizer.decode(new)
