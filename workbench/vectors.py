"""FunctionVector: the sum of the top heads' mean residual contributions, with its provenance.

    FV = sum_{(l, h) in top-k heads} mean_out[l, h]

where ``mean_out`` is each head's mean contribution to the residual stream
(:func:`workbench.activations.head_to_residual`, averaged over clean prompts).  FVs add, subtract
and scale like tensors; the result remembers where it came from.  ``save``/``load`` use
safetensors plus JSON metadata, and loading checks that the vector fits the model.

>>> import torch
>>> a = FunctionVector(torch.ones(4), model="m", task="antonym")
>>> b = FunctionVector(2 * torch.ones(4), model="m", task="capitalize")
>>> (a + 0.5 * b).task, (a + 0.5 * b).vector.tolist()
('antonym + 0.5*capitalize', [2.0, 2.0, 2.0, 2.0])
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field, replace
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from .activations import HeadMeans
from .cache import read_tensors, write_tensors
from .models import input_device, model_dtype, model_info

__all__ = ["FunctionVector", "VectorMismatch", "default_top_k", "package_versions"]


class VectorMismatch(ValueError):
    """A vector was made on another model (or has another width) than the one it is used with."""


def default_top_k(n_total_heads: int) -> int:
    """Heads in an FV for a model of this many heads.

    The paper used 10 of GPT-J's 448 heads (2.2 %).  Small models spread a task over a larger
    share of their heads, so we keep the paper's 10 down to 200 heads and never go below 4:
    ``clip(round(10 * sqrt(n / 448)), 4, 10)`` gives 10 for GPT-J, 8 for SmolLM2's 270,
    4 for Gemma 3 270M's 72.
    """
    return int(min(10, max(4, round(10 * (n_total_heads / 448) ** 0.5))))


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformer-lens", "transformers", "fv-workbench"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


@dataclass
class FunctionVector:
    """A task vector in the residual stream of one model.

    vector: ``[d_model]``.  heads: the ``(layer, head)`` pairs summed.  layer: the default layer
    to add it after (``blocks.{layer}.hook_resid_post``), if one was chosen.
    """

    vector: Float[Tensor, " d_model"]
    model: str
    task: str = ""
    heads: list[tuple[int, int]] = field(default_factory=list)
    layer: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_heads(
        cls, means: HeadMeans, heads: Sequence[tuple[int, int]], model: str, task: str = "",
        layer: int | None = None, meta: dict[str, Any] | None = None,
    ) -> "FunctionVector":
        """Sum the mean residual contributions of ``heads`` (``means.mean_out[l, h]``)."""
        heads = [(int(l), int(h)) for l, h in heads]
        vec = torch.zeros(means.mean_out.shape[-1])
        for l, h in heads:
            vec += means.mean_out[l, h].float()
        return cls(vec, model=model, task=task, heads=heads, layer=layer, meta=dict(meta or {}))

    # --- algebra -------------------------------------------------------------------------
    def _combine(self, other: "FunctionVector", sign: str) -> "FunctionVector":
        if not isinstance(other, FunctionVector):
            return NotImplemented
        if other.model != self.model or other.vector.shape != self.vector.shape:
            raise VectorMismatch(
                f"cannot combine a vector of {self.model!r} (d_model {self.vector.shape[0]}) with one of "
                f"{other.model!r} (d_model {other.vector.shape[0]}): both must come from the same model."
            )
        vec = self.vector + other.vector if sign == "+" else self.vector - other.vector
        return FunctionVector(vec, self.model, f"{self.task} {sign} {other.task}",
                              sorted(set(self.heads) | set(other.heads)), self.layer,
                              {"composed_of": [self.task, other.task], "op": sign})

    def __add__(self, other):
        return self._combine(other, "+")

    def __sub__(self, other):
        return self._combine(other, "-")

    def __mul__(self, scale: float) -> "FunctionVector":
        return replace(self, vector=self.vector * float(scale), task=f"{float(scale):g}*{self.task}", meta=dict(self.meta))

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __truediv__(self, scale: float):
        return self * (1.0 / float(scale))

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    def __repr__(self) -> str:
        heads = ", ".join(f"L{l}H{h}" for l, h in self.heads[:6]) + ("..." if len(self.heads) > 6 else "")
        where = f", layer {self.layer}" if self.layer is not None else ""
        return f"FunctionVector({self.task!r} on {self.model}, |v|={self.norm:.2f}, {len(self.heads)} heads [{heads}]{where})"

    # --- use with a model -------------------------------------------------------------------
    def check_compatible(self, model) -> None:
        """Raise :class:`VectorMismatch` unless this vector was made on ``model``'s shape."""
        info = model_info(model)
        if self.vector.shape[0] != info.d_model:
            raise VectorMismatch(
                f"this function vector has d_model {self.vector.shape[0]} (made on {self.model!r}), "
                f"but {info.name} has d_model {info.d_model}. Extract a vector on {info.name} instead."
            )
        if self.model and self.model != info.name:
            raise VectorMismatch(
                f"this function vector was made on {self.model!r}, not on {info.name!r}; residual streams "
                f"of different models do not share directions. Extract one on {info.name}, or pass "
                "allow_other_model=True if you know the two are the same weights under another name."
            )

    @torch.inference_mode()
    def decode(self, model, k: int = 10) -> list[tuple[str, float]]:
        """Top-``k`` tokens of the vector read through the final norm and unembedding (logit lens)."""
        self.check_compatible(model)
        device = input_device(model)
        x = self.vector.to(device=device, dtype=model_dtype(model))[None, None]
        logits = model.unembed(model.ln_final(x))[0, 0].float()
        top = logits.topk(k)
        tok = model.tokenizer
        return [(tok.decode([int(i)]), float(v)) for v, i in zip(top.values, top.indices)]

    # --- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``vector`` as safetensors with the provenance as JSON metadata (atomically)."""
        meta = {"model": self.model, "task": self.task, "heads": self.heads, "layer": self.layer,
                "d_model": int(self.vector.shape[0]), "versions": package_versions(), **self.meta}
        return write_tensors(path, {"function_vector": self.vector.float()}, meta)

    @classmethod
    def load(cls, path: str | Path, model=None, allow_other_model: bool = False) -> "FunctionVector":
        """Read a saved vector; with ``model``, check that it fits that model."""
        tensors, meta = read_tensors(path)
        if "function_vector" not in tensors:
            raise ValueError(f"{path} holds no 'function_vector' tensor; was it written by FunctionVector.save?")
        known = {"model", "task", "heads", "layer", "d_model", "versions"}
        fv = cls(tensors["function_vector"], model=meta.get("model", ""), task=meta.get("task", ""),
                 heads=[tuple(h) for h in meta.get("heads", [])], layer=meta.get("layer"),
                 meta={k: v for k, v in meta.items() if k not in known} | {"versions": meta.get("versions", {})})
        if model is not None:
            if allow_other_model:
                if fv.vector.shape[0] != model_info(model).d_model:
                    fv.check_compatible(model)
            else:
                fv.check_compatible(model)
        return fv
