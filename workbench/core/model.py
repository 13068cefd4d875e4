"""The facts about a loaded model that the rest of the workbench relies on, read in one place.

- :func:`model_info`: layers, heads, ``d_head``, whether a post-attention norm sits between a
  head and the residual stream, the BOS token to prepend, the dtype.
- :func:`hook_name`: the one builder of TransformerLens hook names the workbench uses.
- :func:`model_id`: the model's identity for caches and saved vectors, made of its CONTENT (a
  fingerprint of its config and weights) and dtype, never of its display name.
- :func:`bridge_from_hf`: wrap an in-memory Hugging Face model in a ``TransformerBridge``.

>>> hook_name("z", 3), hook_name("resid_post", 3)
('blocks.3.attn.hook_z', 'blocks.3.hook_resid_post')
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..base.checks import OutOfRange, check_layer

__all__ = [
    "NotAModel",
    "require_model",
    "ModelInfo",
    "ModelLoadError",
    "ModelUnsupported",
    "unsupported_reason",
    "VectorMismatch",
    "OutOfRange",
    "model_info",
    "layer_windows",
    "hook_name",
    "HOOK_SITES",
    "input_device",
    "model_dtype",
    "model_fingerprint",
    "model_id",
    "weight_processing",
    "bridge_from_hf",
    "decoder_layers",
    "context_length",
]


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says what to install or pass instead."""


class NotAModel(TypeError):
    """Something other than a loaded model (a name, a path, a Hugging Face model) where one is needed."""


def require_model(model) -> None:
    """Raise :class:`NotAModel`, saying how to get one, unless ``model`` is a loaded bridge."""
    if hasattr(model, "cfg") and hasattr(model, "original_model") and hasattr(model, "blocks"):
        return
    if isinstance(model, str | bytes) or hasattr(model, "__fspath__"):
        raise NotAModel(
            f"expected a loaded model, got the name {str(model)!r}: load it first, "
            f"model = wb.load_model({str(model)!r}), and pass the model."
        )
    raise NotAModel(
        f"expected a model loaded with wb.load_model (a TransformerBridge), got a {type(model).__name__}; "
        "a Hugging Face model goes through workbench.core.model.bridge_from_hf(model, tokenizer, name)."
    )


class ModelUnsupported(ModelLoadError):
    """An architecture the workbench cannot analyse exactly; the message says why."""


class VectorMismatch(ValueError):
    """A vector (or head tensor) was made on another model, or has another shape, than the one it meets."""


# The hook points the workbench reads and writes, by short name (as TransformerLens' get_act_name).
HOOK_SITES = {
    "z": "blocks.{layer}.attn.hook_z",  # [batch pos head d_head]: input of the output projection
    "attn_out": "blocks.{layer}.attn.hook_out",  # [batch pos d_model]: the projection's output
    "pattern": "blocks.{layer}.attn.hook_pattern",  # [batch head query key]
    "resid_pre": "blocks.{layer}.hook_resid_pre",  # [batch pos d_model]: before block L
    "resid_post": "blocks.{layer}.hook_resid_post",  # [batch pos d_model]: after block L
}


def hook_name(site: str, layer: int) -> str:
    """The TransformerLens hook name of ``site`` (a key of :data:`HOOK_SITES`) in block ``layer``."""
    try:
        return HOOK_SITES[site].format(layer=int(layer))
    except KeyError:
        raise ValueError(f"unknown hook site {site!r}; use one of {sorted(HOOK_SITES)}") from None


@dataclass(frozen=True)
class ModelInfo:
    """The facts about a loaded model that the scan, vectors and evaluation rely on."""

    name: str
    architecture: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_model: int
    d_vocab: int
    post_attn_norm: bool  # a norm on the attention output before the residual (on some layer)
    attn_out_bias: bool  # the output projection has a bias (counted once per layer, not per head)
    bos_id: int | None  # prepended to every prompt (None: nothing prepended)
    dtype: str = "float32"  # of the weights, e.g. "bfloat16"

    @property
    def n_total_heads(self) -> int:
        return self.n_layers * self.n_heads

    def check_layer(self, layer: int) -> int:
        """Return ``layer`` if the model has it, else :class:`OutOfRange` (negative layers too:
        :func:`workbench.base.checks.check_layer`)."""
        return check_layer(layer, self.n_layers, owner=self.name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_info(model) -> ModelInfo:
    """Read (once, then cached on the model) the :class:`ModelInfo` of a bridge."""
    cached = getattr(model, "_workbench_info", None)
    if cached is not None:
        return cached
    require_model(model)
    cfg = model.cfg
    hf = model.original_model
    hf_cfg = hf.config
    reason = unsupported_reason(model)
    if reason is not None:
        raise ModelUnsupported(
            f"{type(hf).__name__} ({hf_cfg.model_type}) cannot be analysed exactly by the workbench: "
            f"{reason}."
        )
    blocks = list(model.blocks)
    post_norm = any(getattr(b, "ln1_post", None) is not None for b in blocks)
    bias = any(getattr(_plain(b.attn.o), "bias", None) is not None for b in blocks)
    prepend = getattr(model, "_workbench_prepend_bos", True)
    tok = model.tokenizer
    bos = tok.bos_token_id if (prepend and tok is not None) else None
    info = ModelInfo(
        name=str(getattr(model, "_workbench_name", None) or cfg.model_name),
        architecture=str((hf_cfg.architectures or [type(hf).__name__])[0]),
        n_layers=int(cfg.n_layers),
        n_heads=int(cfg.n_heads),
        n_kv_heads=int(getattr(cfg, "n_key_value_heads", None) or cfg.n_heads),
        d_head=int(cfg.d_head),
        d_model=int(cfg.d_model),
        d_vocab=int(cfg.d_vocab),
        post_attn_norm=bool(post_norm),
        attn_out_bias=bool(bias),
        bos_id=None if bos is None else int(bos),
        dtype=str(model_dtype(model)).replace("torch.", ""),
    )
    model._workbench_info = info
    return info


def input_device(model) -> torch.device:
    """Where a model's input ids go: the token embedding's device (differs from other weights
    when a ``device_map`` spreads the layers over several GPUs)."""
    return next(model.original_model.get_input_embeddings().parameters()).device


def model_dtype(model) -> torch.dtype:
    """The dtype of the model's weights (the embedding's)."""
    return next(model.original_model.get_input_embeddings().parameters()).dtype


_SAMPLE = 1 << 16  # elements hashed per weight tensor (evenly strided) in a fingerprint


def model_fingerprint(model) -> str:
    """A hash of the model's config and weights: two models share it only if they share content.

    The config enters without its file path, version and dtype fields; each weight tensor enters
    with its name and shape, and its values rounded to bfloat16 (all of them up to 65 536
    elements, an evenly strided sample of them beyond), so the same weights held in float32 or
    bfloat16 share a fingerprint (:func:`model_id` adds the dtype).  Weights on the ``meta``
    device (offloaded to disk by accelerate) enter by name and shape only.  Computed once per
    model object: change the weights in place afterwards and the fingerprint is stale.
    """
    require_model(model)
    cached = model.__dict__.get("_workbench_fingerprint")
    if cached is not None:
        return cached
    hf = model.original_model
    config = {
        k: v
        for k, v in hf.config.to_dict().items()
        if not k.startswith("_") and k not in ("transformers_version", "dtype", "torch_dtype")
    }
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, param in hf.named_parameters():
            digest.update(f"{name}{tuple(param.shape)}".encode())
            if param.device.type == "meta":
                continue
            flat = param.detach().reshape(-1)
            if flat.numel() > _SAMPLE:
                flat = flat[:: -(-flat.numel() // _SAMPLE)]
            digest.update(flat.to(torch.bfloat16).contiguous().cpu().view(torch.uint8).numpy().tobytes())
    model._workbench_fingerprint = digest.hexdigest()[:20]
    return model._workbench_fingerprint


def weight_processing(model) -> str:
    """What TransformerLens did to the weights: ``"none"``, or ``"processed"`` (``fold_ln`` and the
    like, via ``process_weights``/compatibility mode), which changes what a hook site holds."""
    return "processed" if getattr(model, "_weights_processed", False) else "none"


def model_id(model) -> str:
    """The model's identity in caches and saved vectors: ``<fingerprint>-<dtype>[-processed]``.

    >>> from workbench.core.tiny import tiny_model
    >>> a, b = tiny_model("llama", seed=0), tiny_model("llama", seed=1)
    >>> model_info(a).name == model_info(b).name, model_id(a) == model_id(b)
    (True, False)
    """
    processing = weight_processing(model)
    suffix = "" if processing == "none" else f"-{processing}"
    return f"{model_fingerprint(model)}-{model_info(model).dtype}{suffix}"


# Layer kinds (config ``layer_types`` and the like) the scan and the head map handle exactly.
_ATTENTION_KINDS = {
    "full_attention",
    "sliding_attention",
    "attention",
    "global",
    "local",
    "chunked_attention",
}
# Model types whose layers carry state along the sequence (recurrence, convolution, SSM).
_RECURRENT_TYPES = {
    "mamba",
    "mamba2",
    "falcon_mamba",
    "rwkv",
    "rwkv7",
    "recurrent_gemma",
    "falcon_h1",
    "jamba",
    "bamba",
    "zamba",
    "zamba2",
    "lfm2",
    "lfm2_moe",
    "qwen3_next",
    "granitemoehybrid",
    "nemotron_h",
    "olmo_hybrid",
    "hyenadna",
}


def _plain(module):
    return getattr(module, "original_component", None) or module


def unsupported_reason(model) -> str | None:
    """Why the workbench cannot analyse ``model`` exactly, or ``None`` if nothing stands in the way.

    Refused: layers that carry state along the sequence (a patched or appended token would leak
    through the recurrence), blocks without a multi-head attention output projection, and heads
    whose output width is not ``d_head`` (per-layer head sizes, multi-head latent attention).
    """
    hf_cfg = model.original_model.config
    model_type = str(getattr(hf_cfg, "model_type", ""))
    if model_type in _RECURRENT_TYPES:
        return (
            f"its layers are recurrent or hybrid ({model_type}: state-space, recurrent or convolution "
            "layers carry state along the sequence), so a head's causal effect cannot be isolated by "
            "patching one position and the appended-variant scan would leak between variants"
        )
    for attr in ("layer_types", "layers_block_type", "block_types", "layers_block_types"):
        kinds = getattr(hf_cfg, attr, None)
        if isinstance(kinds, (list, tuple)):
            other = sorted({str(k) for k in kinds} - _ATTENTION_KINDS)
            if other:
                return f"it has non-attention layers ({attr} = {other}): recurrent or hybrid layers"
    if model_type == "openai-gpt":
        return (
            "its blocks are post-LayerNorm (ln_1(x + attn), then ln_2(. + mlp)): the residual stream is "
            "renormalised after attention, so heads' outputs do not add up to what a block writes"
        )
    if getattr(hf_cfg, "kv_lora_rank", None):
        return (
            "it uses multi-head latent attention (kv_lora_rank): the bridge's d_head is not the heads' "
            "value width, so hook_z and W_O do not split per head"
        )
    cfg = model.cfg
    n_heads, d_head = int(cfg.n_heads), int(cfg.d_head)
    for i, block in enumerate(model.blocks):
        attn = getattr(block, "attn", None)
        proj = getattr(attn, "o", None) if attn is not None else None
        if proj is None:
            return f"block {i} has no attention output projection the bridge exposes"
        weight = getattr(_plain(proj), "weight", None)
        if weight is None or weight.ndim != 2:
            return f"block {i}'s attention output projection has no weight matrix"
        width = weight.shape[1] if isinstance(_plain(proj), torch.nn.Linear) else weight.shape[0]
        if int(width) != n_heads * d_head:
            return (
                f"the heads' output width ({int(width)} into the output projection of block {i}) is not "
                f"n_heads x d_head = {n_heads} x {d_head}: per-layer head sizes or multi-head latent "
                "attention, which the bridge does not expose per head"
            )
    return None


def decoder_layers(hf_model) -> list:
    """The decoder blocks of a Hugging Face causal LM, wherever its architecture keeps them."""
    for path in ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers"):
        obj = hf_model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return list(obj)
        except AttributeError:
            continue
    raise ModelLoadError(f"cannot find the decoder layers of {type(hf_model).__name__}")


def bridge_from_hf(hf_model, tokenizer, name: str, prepend_bos: bool = True):
    """Wrap an in-memory Hugging Face causal LM in a TransformerBridge (no network)."""
    from transformer_lens.model_bridge import TransformerBridge

    hf_model.eval()
    model_type = str(getattr(hf_model.config, "model_type", ""))
    if model_type in _RECURRENT_TYPES:
        raise ModelUnsupported(
            f"{type(hf_model).__name__} ({model_type}) cannot be analysed exactly by the workbench: its "
            "layers are recurrent or hybrid, so patching one position does not isolate a head's effect."
        )
    try:
        bridge = TransformerBridge.boot_transformers(name, hf_model=hf_model, tokenizer=tokenizer)
    except Exception as e:  # noqa: BLE001 - rethrown with the reason
        raise ModelLoadError(
            f"TransformerLens cannot wrap {type(hf_model).__name__} ({model_type}): {type(e).__name__}: {e}"
        ) from e
    bridge.eval()
    bridge._workbench_name = name
    bridge._workbench_prepend_bos = prepend_bos
    return bridge


_CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def context_length(model) -> int | None:
    """The longest input, in tokens, the model was built for (its config's position limit), or
    None if its config names none."""
    cfg = model.original_model.config
    cfg = getattr(cfg, "text_config", None) or cfg
    for name in _CONTEXT_FIELDS:
        value = getattr(cfg, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def layer_windows(model) -> list[int | None]:
    """Each layer's sliding window (``None``: global attention), as transformers' attention module
    holds it (``sliding_window``; GPT-Neo's ``attention_type == "local"`` with ``window_size``)."""
    cached = model.__dict__.get("_workbench_windows")
    if cached is not None:
        return cached
    cfg = model.original_model.config
    kinds = getattr(cfg, "layer_types", None)
    windows: list[int | None] = []
    for i, block in enumerate(model.blocks):
        attn = getattr(block.attn, "original_component", None) or block.attn
        if hasattr(attn, "sliding_window"):  # the module's own (None on its global layers)
            w = attn.sliding_window
        elif isinstance(kinds, (list, tuple)) and i < len(kinds):  # as the model builds its masks
            w = getattr(cfg, "sliding_window", None) if kinds[i] == "sliding_attention" else None
        else:  # one window for every layer (Mistral, Mixtral, Starcoder2)
            w = getattr(cfg, "sliding_window", None)
        if w is None and getattr(attn, "attention_type", None) == "local":
            w = getattr(cfg, "window_size", None)
        if w is None and getattr(attn, "attention", None) is not None:  # GPT-Neo nests its attention
            inner = attn.attention
            if getattr(inner, "attention_type", None) == "local":
                w = getattr(cfg, "window_size", None)
        windows.append(int(w) if isinstance(w, int) and w > 0 else None)
    model.__dict__["_workbench_windows"] = windows
    return windows
