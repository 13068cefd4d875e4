"""The model as plain transformers computes it: the independent reference of the self-check.

A ``TransformerBridge`` rewires the Hugging Face model it wraps (its submodules become bridge
components).  :func:`plain_twin` builds a second, untouched instance of the same transformers
class that SHARES the bridge's weight tensors (no copy), so the reference quantities below are
computed by transformers' own code with plain ``torch`` hooks on its real modules, never through
TransformerLens hooks or the workbench's maps:

- :func:`plain_logits`: logits at every position, optionally with a vector added to one decoder
  layer's output at the last position (``resid_post[L][-1] += v``);
- :func:`plain_attn_contributions`: what each layer's attention block adds to the residual
  stream, ``layer_out - layer_in`` with every MLP's output zeroed (``[layer, pos, d_model]``);
- :func:`plain_patched_prob`: the answer's probability with head ``h`` of layer ``l`` replaced
  at the last position, written into the input of the attention output projection (the slice
  ``h * d_head : (h + 1) * d_head``, transformers' own head layout);
- :func:`plain_head_inputs`: that projection input, per head, at the last position.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = [
    "mlp_write",
    "plain_twin",
    "plain_logits",
    "plain_attn_contributions",
    "plain_patched_prob",
    "plain_head_inputs",
    "bridge_submodule",
]

_WRAP = "._original_component"


def _plain_name(name: str) -> str:
    return name.replace(_WRAP, "").replace("_original_component.", "")


def plain_twin(model):
    """An unwrapped transformers model sharing ``model``'s weights (built once, cached on it)."""
    cached = model.__dict__.get("_workbench_plain_twin")
    if cached is not None:
        return cached
    from transformers import AutoModelForCausalLM

    hf = model.original_model
    config = hf.config
    with torch.device("meta"):
        twin = AutoModelForCausalLM.from_config(config, attn_implementation=config._attn_implementation)
    tensors = {_plain_name(n): t for n, t in hf.named_parameters(remove_duplicate=False)}
    tensors.update({_plain_name(n): t for n, t in hf.named_buffers(remove_duplicate=False)})
    missing = []
    for name, _ in list(twin.named_parameters(remove_duplicate=False)) + list(
        twin.named_buffers(remove_duplicate=False)
    ):
        owner, _, leaf = name.rpartition(".")
        module = twin.get_submodule(owner) if owner else twin
        if name in tensors:
            value = tensors[name]
            if isinstance(module._parameters.get(leaf), torch.nn.Parameter):
                module._parameters[leaf] = torch.nn.Parameter(value.detach(), requires_grad=False)
            else:
                module._buffers[leaf] = value
        else:
            missing.append(name)
    if missing:
        twin.tie_weights()
        still = [n for n, p in twin.named_parameters() if p.device.type == "meta"]
        still += [n for n, b in twin.named_buffers() if b.device.type == "meta"]
        if still:
            raise RuntimeError(
                f"the plain reference model lacks weights the bridge holds no copy of: {still[:5]}"
            )
    if getattr(hf, "hf_device_map", None):
        _share_dispatch(hf, twin)
    twin.eval()
    model.__dict__["_workbench_plain_twin"] = twin
    return twin


def _share_dispatch(hf, twin) -> None:
    """Give the twin's modules the accelerate hooks of the wrapped model's (a ``device_map`` load:
    weights offloaded to CPU or disk are brought in per module, as in the wrapped model)."""
    from accelerate.hooks import add_hook_to_module

    for name, module in hf.named_modules(remove_duplicate=False):
        hook = getattr(module, "_hf_hook", None)
        if hook is None:
            continue
        try:
            target = twin.get_submodule(_plain_name(name))
        except AttributeError:
            continue
        if getattr(target, "_hf_hook", None) is None:
            add_hook_to_module(target, hook)


def bridge_submodule(model, bridge_module, twin=None):
    """The module of ``twin`` (default: :func:`plain_twin`) that a bridge component wraps."""
    twin = twin if twin is not None else plain_twin(model)
    target = getattr(bridge_module, "original_component", bridge_module)
    for name, module in model.original_model.named_modules(remove_duplicate=False):
        if module is target:
            try:
                return twin.get_submodule(_plain_name(name))
            except AttributeError:
                continue  # a name the bridge added (e.g. ``attn.o`` for ``attn.c_proj``)
    raise LookupError(f"cannot find {type(target).__name__} in the plain transformers model")


def _out_tensor(output):
    return output[0] if isinstance(output, (tuple, list)) else output


def _with_tensor(output, tensor):
    if isinstance(output, tuple):
        return (tensor, *output[1:])
    if isinstance(output, list):
        return [tensor, *output[1:]]
    return tensor


@contextmanager
def _hooks(pairs):
    handles = []
    try:
        for module, kind, fn in pairs:
            if kind == "pre":
                handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
            else:
                handles.append(module.register_forward_hook(fn))
        yield
    finally:
        for h in handles:
            h.remove()


def _layers(model, twin) -> list:
    return [bridge_submodule(model, b, twin) for b in model.blocks]


def mlp_write(block):
    """The bridge module whose output is the MLP's write: its output projection where the bridge
    names one (``mlp.out``: OPT's ``fc2``, Bloom's ``dense_4h_to_h`` before its residual add),
    else the whole MLP (mixtures of experts)."""
    out = getattr(block.mlp, "out", None)
    return out if isinstance(out, torch.nn.Module) else block.mlp


def _mlps(model, twin) -> list:
    return [bridge_submodule(model, mlp_write(b), twin) for b in model.blocks]


def _o_projs(model, twin) -> list:
    return [bridge_submodule(model, b.attn.o, twin) for b in model.blocks]


def _run(twin, ids: Tensor, last_only: bool = False) -> Tensor:
    if last_only and "logits_to_keep" in inspect.signature(twin.forward).parameters:
        return twin(input_ids=ids, use_cache=False, logits_to_keep=1).logits
    logits = twin(input_ids=ids, use_cache=False).logits
    return logits[:, -1:] if last_only else logits


@torch.inference_mode()
def plain_logits(
    model,
    ids: Tensor,
    add: tuple[int, Tensor] | None = None,
    from_position: int = -1,
    last_only: bool = False,
) -> Float[Tensor, "batch pos d_vocab"]:
    """Transformers' logits (at the last position only if ``last_only``); ``add=(L, v)`` adds
    ``v`` to decoder layer ``L``'s output at positions ``from_position:`` (the last by default)."""
    twin = plain_twin(model)
    pairs = []
    if add is not None:
        layer, vec = add

        def add_hook(module, args, output):
            out = _out_tensor(output).clone()
            out[:, from_position:] += vec.to(out.dtype)
            return _with_tensor(output, out)

        pairs.append((_layers(model, twin)[layer], "post", add_hook))
    with _hooks(pairs):
        return _run(twin, ids, last_only)


@torch.inference_mode()
def plain_attn_contributions(model, ids: Tensor) -> Float[Tensor, "layer pos d_model"]:
    """``layer_out - layer_in`` of every decoder layer with every MLP's output zeroed: what the
    attention block adds to the residual stream (batch of one)."""
    twin = plain_twin(model)
    ins: dict[int, Tensor] = {}
    outs: dict[int, Tensor] = {}
    pairs = []

    def zero(module, args, output):
        return _with_tensor(output, torch.zeros_like(_out_tensor(output)))

    for layer, (block, mlp) in enumerate(zip(_layers(model, twin), _mlps(model, twin), strict=True)):

        def grab_in(module, args, kwargs, layer=layer):
            x = args[0] if args else kwargs.get("hidden_states")
            ins[layer] = x[0].float().clone()

        def grab_out(module, args, output, layer=layer):
            outs[layer] = _out_tensor(output)[0].float().clone()

        pairs += [(mlp, "post", zero), (block, "pre", grab_in), (block, "post", grab_out)]
    with _hooks(pairs):
        _run(twin, ids)
    return torch.stack([outs[l] - ins[l] for l in range(len(model.blocks))])


@torch.inference_mode()
def plain_head_inputs(model, ids: Tensor, n_heads: int) -> Float[Tensor, "layer head d_head"]:
    """The input of each layer's attention output projection at the last position, split per head."""
    twin = plain_twin(model)
    got: dict[int, Tensor] = {}
    pairs = []
    for layer, proj in enumerate(_o_projs(model, twin)):

        def grab(module, args, kwargs, layer=layer):
            x = args[0] if args else kwargs["input"]
            got[layer] = x[0, -1].float().reshape(n_heads, -1).clone()

        pairs.append((proj, "pre", grab))
    with _hooks(pairs):
        _run(twin, ids, last_only=True)
    return torch.stack([got[l] for l in range(len(got))])


@torch.inference_mode()
def plain_patched_prob(
    model, ids: Tensor, answer_id: int, layer: int, head: int, z: Float[Tensor, " d_head"] | None
) -> float:
    """``P(answer)`` at the last position with head ``(layer, head)``'s last-position output set
    to ``z`` (``None``: no patch), written into transformers' output-projection input."""
    twin = plain_twin(model)
    pairs = []
    if z is not None:
        d = z.shape[-1]

        def patch(module, args, kwargs):
            x = (args[0] if args else kwargs["input"]).clone()
            x[:, -1, head * d : (head + 1) * d] = z.to(x.dtype)
            return ((x, *args[1:]), kwargs) if args else (args, {**kwargs, "input": x})

        pairs.append((_o_projs(model, twin)[layer], "pre", patch))
    with _hooks(pairs):
        logits = _run(twin, ids, last_only=True)
    return float(logits[0, -1].float().softmax(-1)[answer_id])
