"""Vectors that leave the workbench: llama.cpp control vectors (GGUF), written and read back.

A llama.cpp control vector is a GGUF file with ``general.architecture = "controlvector"``,
``controlvector.model_hint`` (the model's llama.cpp architecture name, e.g. ``llama``),
``controlvector.layer_count`` and one F32 tensor ``direction.{K}`` of width ``n_embd`` per layer
(what llama.cpp's ``cvector-generator`` and other steering tools write).

**Layer convention (checked in llama.cpp's source).** ``common_control_vector_load_one``
(``common/common.cpp``) rejects ``direction.0`` and stores ``direction.K`` at offset
``n_embd * (K - 1)``; ``llama_adapter_cvec::apply`` (``src/llama-adapter.cpp``) copies offset
``n_embd * (il - 1)`` into ``tensors[il]`` for ``il = 1 .. n_layer - 1``; the graph adds
``tensors[il]`` to the output of decoder layer ``il`` (0-based, ``build_cvec(cur, il)`` at the
end of the layer).  So ``direction.K`` is added **after block K** (0-based), which is the
workbench's own convention (``blocks.K.hook_resid_post``): a vector at our layer ``L`` is written
as ``direction.L``, unchanged.  Layer 0's output cannot be steered by llama.cpp (:func:`export_control_vector`
refuses it).

**Positions.** llama.cpp adds the vector to *every* position of the layer's output (the
prompt's tokens, BOS included, and every generated token), with a strength chosen at load
(``--control-vector-scaled FILE S``).  The workbench adds an FV at the last position only.
:meth:`ControlVector.hooks` reproduces llama.cpp (``from_position=0``); the ``positions`` study
measures what the difference does to an FV (docs: ``docs/vectors.md``, "Export").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from ..base.checks import check_finite, check_layer
from ..base.files import atomic_path
from ..core.forward import Hooks
from ..core.hooks import add_vector
from ..core.model import model_info
from ..method.vectors import FunctionVector

__all__ = ["ControlVector", "ExportError", "export_control_vector", "import_control_vector", "llama_cpp_arch"]

ARCH = "controlvector"
_LLAMA_CPP_ARCH = {"gemma3_text": "gemma3", "gemma3": "gemma3", "llama": "llama", "gpt2": "gpt2"}


class ExportError(ValueError):
    """A vector that cannot be written as a llama.cpp control vector as asked (layer, scale, width)."""


def llama_cpp_arch(model) -> str:
    """The llama.cpp architecture name of a bridge's model (the control vector's ``model_hint``)."""
    model_type = str(getattr(model.original_model.config, "model_type", "") or "")
    return _LLAMA_CPP_ARCH.get(model_type, model_type)


@dataclass
class ControlVector:
    """Directions per layer, in the workbench's convention: ``directions[L]`` is added after block ``L``."""

    directions: dict[int, Float[Tensor, " d_model"]]
    model_hint: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        return sorted(self.directions)

    @property
    def d_model(self) -> int:
        return int(next(iter(self.directions.values())).numel())

    def __repr__(self) -> str:
        norms = ", ".join(f"{L}: {float(self.directions[L].norm()):.2f}" for L in self.layers[:6])
        more = " ..." if len(self.layers) > 6 else ""
        return (
            f"ControlVector({self.model_hint or '?'}, {len(self.layers)} layers x d_model {self.d_model}; "
            f"|v| by layer {{{norms}{more}}})"
        )

    def hooks(self, model, strength: float = 1.0, from_position: int | None = 0) -> Hooks:
        """``strength * directions[L]`` added after each block ``L``: at every position from
        ``from_position`` on (llama.cpp's semantics: ``0``), or the last only (``None``)."""
        info = model_info(model)
        if self.d_model != info.d_model:
            raise ValueError(
                f"this control vector has width {self.d_model}; {info.name} has d_model {info.d_model}"
            )
        out: Hooks = []
        for layer in self.layers:
            out += add_vector(model, layer, self.directions[layer], strength, from_position=from_position)
        return out


def _as_directions(vector, layer: int | None) -> dict[int, Tensor]:
    """``{layer: direction}``, every layer checked (:func:`~workbench.base.checks.check_layer`;
    against the vector's own model where it records one)."""
    if isinstance(vector, FunctionVector):
        where = vector.layer if layer is None else vector.check_layer(layer)
        if where is None:
            raise ValueError("this FunctionVector has no layer: pass layer=L (the block it is added after)")
        return {int(where): vector.vector}
    if hasattr(vector, "directions") and isinstance(vector.directions, Tensor):  # SteeringVector
        dirs = vector.directions
        if layer is not None:
            layer = vector.check_layer(layer)
            return {layer: dirs[layer]}
        return {L: dirs[L] for L in range(dirs.shape[0])}
    if isinstance(vector, Mapping):
        return {check_layer(k): v for k, v in vector.items()}
    if isinstance(vector, Tensor):
        if layer is None:
            raise ValueError("a bare tensor needs layer=L (the block it is added after)")
        return {check_layer(layer): vector}
    raise TypeError(f"cannot export a {type(vector).__name__}: give a FunctionVector, SteeringVector or dict")


def export_control_vector(
    vector,
    path: str | Path,
    model=None,
    layer: int | None = None,
    scale: float = 1.0,
    model_hint: str | None = None,
    skip_layer_zero: bool = False,
) -> Path:
    """Write ``vector`` as a llama.cpp control vector (GGUF) and return the path.

    ``vector``: a :class:`FunctionVector` (at its ``layer``, or ``layer``), a
    :class:`~workbench.beyond.steering.SteeringVector` (every layer, or only ``layer``), a dict
    ``{layer: tensor}`` or a tensor with ``layer``.  Our layer ``L`` becomes ``direction.L`` (see the
    module docstring); ``scale`` multiplies the stored values.  llama.cpp cannot steer after block
    0: a direction there raises, or is dropped with ``skip_layer_zero``.  ``model`` fills in the
    ``model_hint`` and checks the width; the workbench's provenance goes in ``workbench.*`` keys,
    which llama.cpp ignores.
    """
    import gguf

    check_finite(scale, "the scale")
    if scale == 0:
        raise ExportError(f"scale must be a finite number other than 0, got {scale}")
    directions = _as_directions(vector, layer)  # every layer checked (negative ones refused)
    if model is not None:
        info = model_info(model)
        directions = {info.check_layer(L): v for L, v in directions.items()}
    for L, v in directions.items():
        check_finite(torch.as_tensor(v), f"the direction of layer {L}")
    if 0 in directions:
        if not skip_layer_zero:
            raise ExportError(
                "llama.cpp cannot add a control vector after block 0 (direction.0 is rejected by its "
                "loader); choose another layer or pass skip_layer_zero=True"
            )
        directions.pop(0)
    if not directions:
        raise ExportError("nothing to export: no direction left")
    widths = {int(v.numel()) for v in directions.values()}
    if len(widths) != 1:
        raise ExportError(f"directions of different widths {sorted(widths)}")
    hint = model_hint or (llama_cpp_arch(model) if model is not None else "")
    if model is not None and widths != {info.d_model}:
        raise ExportError(f"vector width {widths.pop()} is not {info.name}'s d_model {info.d_model}")
    provenance = dict(getattr(vector, "provenance", {}) or {})
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = gguf.GGUFWriter(str(tmp), ARCH)
        writer.add_string(f"{ARCH}.model_hint", hint)
        writer.add_int32(f"{ARCH}.layer_count", len(directions))
        writer.add_string("workbench.layer_convention", "direction.K is added after block K (0-based)")
        writer.add_string("workbench.provenance", json.dumps(provenance, default=str))
        for L in sorted(directions):
            data = (scale * directions[L].detach().float().cpu()).numpy().astype(np.float32)
            writer.add_tensor(f"direction.{L}", data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return path


def _field_value(reader, key: str):
    f = reader.fields.get(key)
    if f is None:
        return None
    return f.contents()


def import_control_vector(path: str | Path) -> ControlVector:
    """Read a llama.cpp control vector (any tool's): ``direction.K`` becomes ``directions[K]``
    (after block ``K``, 0-based; see the module docstring)."""
    import gguf

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no control vector at {path}")
    reader = gguf.GGUFReader(str(path))
    arch = _field_value(reader, "general.architecture")
    if arch != ARCH:
        raise ValueError(f"{path} is not a control vector (general.architecture is {arch!r}, not {ARCH!r})")
    directions: dict[int, Tensor] = {}
    for t in reader.tensors:
        prefix, _, index = t.name.partition(".")
        if prefix != "direction" or not index.isdigit() or int(index) == 0:
            raise ValueError(
                f"{path}: tensor {t.name!r} is not direction.K with K >= 1 (llama.cpp rejects it)"
            )
        if t.data.ndim != 1 or t.data.dtype != np.float32:
            raise ValueError(
                f"{path}: {t.name} must be a 1-D float32 tensor, got {t.data.dtype} {t.data.shape}"
            )
        directions[int(index)] = directions.get(int(index), 0) + torch.from_numpy(np.array(t.data))
    if not directions:
        raise ValueError(f"{path} holds no direction tensors")
    meta: dict[str, Any] = {}
    for key in reader.fields:
        if key.startswith((f"{ARCH}.", "workbench.")):
            meta[key] = _field_value(reader, key)
    if "workbench.provenance" in meta:
        meta["workbench.provenance"] = json.loads(meta["workbench.provenance"])
    return ControlVector(directions, str(meta.get(f"{ARCH}.model_hint") or ""), meta)
