"""The one vocabulary of interventions: add, replace, blend, mean-ablate, project out, generate.

Every intervention is a list of TransformerLens ``(hook_name, fn)`` pairs (or, where each prompt
gets its own values, a factory of them) acting on the positions :func:`positions` names: the
LAST position of every row (``from_position=None``), or position ``from_position`` and every
later one (generation, where each new token must be steered too).  Sites are named by
:func:`workbench.core.model.hook_name`.

======================  =========================================================================
:func:`add_vector`      ``resid_post[L][pos] += alpha * v``  (function vectors, the mean state)
:func:`replace_last_state`  ``resid_post[L][i, -1] = states[i]``  (Hendel et al.'s task vector)
:func:`blend_heads`     ``z[l][pos, h] += alpha[l, h] * (mean_z[l, h] - z)``  (soft task vectors)
:func:`mean_ablate_heads`   ``z[l][pos, h] = mean_z[l, h]``  (the scan's patch; ablations)
:func:`project_out`     ``x -= ((x - c) . u) u`` at ``resid_post[L][pos]``  (directional ablation)
:func:`generate`        greedy generation (KV cache), the vector added at the last and every new token
======================  =========================================================================

>>> positions(None), positions(7)
(slice(-1, None, None), slice(7, None, None))
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from ..base.checks import check_finite
from .forward import HookFactory, Hooks
from .model import OutOfRange, VectorMismatch, hook_name, input_device, model_info

__all__ = [
    "positions",
    "add_vector",
    "replace_last_state",
    "blend_heads",
    "mean_ablate_heads",
    "project_out",
    "generate",
]


def positions(from_position: int | None) -> slice:
    """The positions an intervention acts on: the last (``None``), or ``from_position`` onwards."""
    return slice(-1, None) if from_position is None else slice(from_position, None)


def add_vector(
    model, layer: int, vector: Float[Tensor, " d_model"], alpha: float = 1.0, from_position: int | None = None
) -> Hooks:
    """Hooks adding ``alpha * vector`` after block ``layer`` (``blocks.L.hook_resid_post``)."""
    info = model_info(model)
    layer = info.check_layer(layer)
    if vector.shape[-1] != info.d_model:
        raise VectorMismatch(f"vector has width {vector.shape[-1]}, the model's d_model is {info.d_model}")
    check_finite(alpha, "the scale alpha")
    v = check_finite(vector.float(), "the vector to add")
    where = positions(from_position)

    def hook(resid, hook):
        resid[:, where] += (alpha * v).to(device=resid.device, dtype=resid.dtype)
        return resid

    return [(hook_name("resid_post", layer), hook)]


def replace_last_state(model, layer: int, states: Float[Tensor, "prompt d_model"]) -> HookFactory:
    """A hook factory writing ``states[i]`` over prompt ``i``'s last-position state after ``layer``."""
    layer = model_info(model).check_layer(layer)

    def factory(indices: Sequence[int]) -> Hooks:
        batch_states = states[list(indices)]

        def hook(resid, hook):
            resid[:, -1] = batch_states.to(device=resid.device, dtype=resid.dtype)
            return resid

        return [(hook_name("resid_post", layer), hook)]

    return factory


def blend_heads(
    model,
    alpha: Float[Tensor, "layer head"],
    mean_z: Float[Tensor, "layer head d_head"],
    from_position: int | None = None,
) -> Hooks:
    """Hooks blending each head's ``hook_z`` toward its mean: ``z + alpha * (mean_z - z)``.

    ``alpha = 1`` on a head is :func:`mean_ablate_heads` of it; ``alpha = 0`` leaves it alone.  Out
    of place, so gradients reach ``alpha`` when it requires them.
    """
    info = model_info(model)
    shape = (info.n_layers, info.n_heads)
    if tuple(alpha.shape) != shape or tuple(mean_z.shape) != (*shape, info.d_head):
        raise VectorMismatch(
            f"alpha {tuple(alpha.shape)} / mean_z {tuple(mean_z.shape)} do not fit {info.name}, which needs "
            f"{shape} / {(*shape, info.d_head)} (layer, head[, d_head])."
        )
    start = -1 if from_position is None else from_position

    def hook(z, hook):
        layer = hook.layer()
        a = alpha[layer].to(device=z.device, dtype=z.dtype)[:, None]  # [head, 1]
        m = mean_z[layer].to(device=z.device, dtype=z.dtype)  # [head, d_head]
        tail = z[:, start:]
        blended = tail + a * (m - tail)
        return torch.cat([z[:, :start], blended], dim=1) if start != 0 else blended

    return [(hook_name("z", layer), hook) for layer in range(info.n_layers)]


def mean_ablate_heads(
    model,
    heads: Sequence[tuple[int, int]],
    mean_z: Float[Tensor, "layer head d_head"],
    from_position: int | None = None,
) -> Hooks:
    """Replace each listed head's output (``hook_z``) by its mean over clean prompts."""
    info = model_info(model)
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        if not 0 <= head < info.n_heads:
            raise OutOfRange(f"head {head} is out of range: {info.name} has {info.n_heads} heads per layer")
        by_layer.setdefault(info.check_layer(layer), []).append(head)
    where = positions(from_position)

    def hook(z, hook):
        hs = by_layer[hook.layer()]
        z[:, where, hs] = mean_z[hook.layer(), hs].to(device=z.device, dtype=z.dtype)
        return z

    return [(hook_name("z", layer), hook) for layer in by_layer]


def project_out(
    model,
    direction: Float[Tensor, " d_model"],
    layers: Sequence[int] | None = None,
    center: Float[Tensor, " d_model"] | None = None,
    from_position: int | None = None,
) -> Hooks:
    """Remove the component along ``direction`` from the residual after each of ``layers`` (all by default).

    With ``u = direction / |direction|``: ``x -> x - ((x - c) . u) u``, so the component along ``u``
    becomes that of ``center`` (0 without one: Arditi et al.'s directional ablation).
    """
    u = check_finite(direction.float(), "the direction to project out")
    if not float(u.norm()) > 0:
        raise ValueError("the direction to project out is zero: it has no direction")
    u = u / u.norm()
    offset = float(center.float() @ u) if center is not None else 0.0
    layers = range(model_info(model).n_layers) if layers is None else layers
    where = positions(from_position)

    def hook(resid, hook):
        uu = u.to(device=resid.device, dtype=resid.dtype)
        x = resid[:, where]
        resid[:, where] = x - ((x @ uu) - offset)[..., None] * uu
        return resid

    return [(hook_name("resid_post", model_info(model).check_layer(layer)), hook) for layer in layers]


@torch.inference_mode()
def generate(
    model,
    ids: Sequence[int],
    max_new_tokens: int = 16,
    vector: Tensor | None = None,
    layer: int | None = None,
    alpha: float = 1.0,
    stop_at_newline: bool = False,
    hooks: Hooks | None = None,
    kv_cache: bool = True,
) -> str:
    """Greedy generation from token ``ids``; returns the new text.

    ``vector`` is added (times ``alpha``) after ``layer`` at the prompt's last position and at
    every generated one; ``hooks`` (built with ``from_position=len(ids) - 1``) are used as given.

    With ``kv_cache`` (the default) the prompt runs once and each step feeds only the new token
    with the HuggingFace cache the bridge hands back (``return_type="logits_and_cache"``); the
    hooks are rebuilt for that one-token step with ``from_position=0``, so the vector is added to
    every new token exactly as in the uncached path (``kv_cache=False``: every step reruns the
    whole sequence).  Hooks passed in ``hooks`` cannot be rebuilt, so they use the uncached path.
    """
    device = input_device(model)
    tokens = torch.tensor([list(ids)], device=device)
    if vector is not None and layer is None:
        raise ValueError("generate: a vector needs the layer to add it after")

    def steering(from_position: int) -> Hooks:
        return [] if vector is None else add_vector(model, layer, vector, alpha, from_position=from_position)

    eos = model.tokenizer.eos_token_id
    new: list[int] = []
    cached = kv_cache and not hooks
    past = None
    for step in range(max_new_tokens):
        if cached:
            # step 0: the whole prompt, steered at its last token; later: the new token alone
            fwd = steering(len(ids) - 1) if step == 0 else steering(0)
            inputs = tokens if step == 0 else tokens[:, -1:]
            logits, past = model.run_with_hooks(
                inputs, fwd_hooks=fwd, past_key_values=past, use_cache=True, return_type="logits_and_cache"
            )
            logits = logits[0, -1]
            if past is None or past.get_seq_length() != tokens.shape[1]:  # the cache did not fill
                warnings.warn(
                    "the bridge's key/value cache holds "
                    f"{0 if past is None else past.get_seq_length()} of {tokens.shape[1]} tokens (a "
                    "transformers / TransformerLens version mismatch); generating without it: same "
                    "tokens, slower",
                    stacklevel=2,
                )
                cached = False
        if not cached:
            fwd = list(hooks or []) + steering(len(ids) - 1)
            logits = model.run_with_hooks(tokens, fwd_hooks=fwd, logits_to_keep=1)[0, -1]
        nxt = int(logits.argmax())
        if nxt == eos:
            break
        new.append(nxt)
        if stop_at_newline and "\n" in model.tokenizer.decode([nxt]):
            break
        tokens = torch.cat([tokens, torch.tensor([[nxt]], device=device)], 1)
    return model.tokenizer.decode(new)
