"""Vectors as artifacts: one base for saving, loading, provenance and compatibility, and FunctionVector.

Every vector the workbench makes (:class:`FunctionVector`, :class:`~workbench.beyond.soft.SoftTaskVector`,
:class:`~workbench.beyond.steering.SteeringVector`) is a :class:`VectorArtifact`: it saves as
safetensors with one JSON header, and it records, in ``provenance``, what someone needs to apply
it correctly elsewhere (see :func:`vector_provenance`): the hook site and the layer convention,
the operation, positions and scale, the model's name, weights fingerprint, dtype and weight
processing, and the prompt format, seed and protocol it came from.  ``check_compatible`` refuses a
model of another shape always, and a model with other weights unless ``allow_other_model`` (kept as
state, so a vector loaded with it stays usable).

    FV = sum_{(l, h) in top-k heads} mean_out[l, h]

where ``mean_out`` is each head's mean contribution to the residual stream
(:func:`workbench.core.heads.head_to_residual`, averaged over clean prompts).  FVs add, subtract
and scale like tensors; the result remembers where it came from.

>>> import torch
>>> a = FunctionVector(torch.ones(4), model="m", task="antonym")
>>> b = FunctionVector(2 * torch.ones(4), model="m", task="capitalize")
>>> (a + 0.5 * b).task, (a + 0.5 * b).vector.tolist()
('antonym + 0.5*capitalize', [2.0, 2.0, 2.0, 2.0])
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, ClassVar

import torch
from jaxtyping import Float
from torch import Tensor

from ..base.checks import NotFinite, check_finite, check_layer, json_form
from ..base.files import read_tensors, write_tensors
from ..core.heads import HeadMeans
from ..core.model import (
    HOOK_SITES,
    ModelInfo,
    VectorMismatch,
    input_device,
    model_dtype,
    model_fingerprint,
    model_info,
    weight_processing,
)
from ..core.selfcheck import check_record

__all__ = [
    "VectorArtifact",
    "FunctionVector",
    "VectorMismatch",
    "vector_provenance",
    "default_top_k",
    "package_versions",
    "LAYER_CONVENTION",
]

LAYER_CONVENTION = (
    "layer L means after block L: the output of decoder layer L (0-based), "
    "TransformerLens' blocks.L.hook_resid_post, Hugging Face's hidden_states[L + 1]"
)


def default_top_k(n_total_heads: int) -> int:
    """Heads in an FV for a model of this many heads.

    The paper used 10 of GPT-J's 448 heads (2.2 %).  Small models spread a task over a larger
    share of their heads, so we keep the paper's 10 down to 200 heads and never go below 4:
    ``clip(round(10 * sqrt(n / 448)), 4, 10)``.

    >>> default_top_k(448), default_top_k(270), default_top_k(72)
    (10, 8, 4)
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


def vector_provenance(
    model, site: str, operation: str, positions: str, scale: Any = None, **context: Any
) -> dict[str, Any]:
    """What a saved vector must record to be applied correctly elsewhere.

    ``site``: a key of :data:`~workbench.core.model.HOOK_SITES` (stored as its template, e.g.
    ``blocks.{layer}.hook_resid_post``); ``operation``: add / replace / blend / project out;
    ``positions``: where it acts; ``scale``: its multiplier; ``context``: the prompt format,
    seed, protocol and anything else it came from.
    """
    info = model_info(model)
    return {
        "model": info.name,
        "model_fingerprint": model_fingerprint(model),
        "n_layers": info.n_layers,
        "dtype": info.dtype,
        "weight_processing": weight_processing(model),
        "self_check": check_record(model) or {"status": "not checked"},
        "hook_site": HOOK_SITES[site],
        "layer_convention": LAYER_CONVENTION,
        "operation": operation,
        "positions": positions,
        "scale": scale,
        **context,
        "versions": package_versions(),
    }


class VectorArtifact:
    """Save, load, provenance and the compatibility check, shared by every vector class.

    A subclass is a dataclass with the fields ``model`` (display name), ``meta``, ``provenance``
    and ``allow_other_model``, and says what it stores (:meth:`tensors`, :meth:`fields`), how it
    is rebuilt (:meth:`from_saved`) and what shape it needs (:meth:`shape_problem`).
    """

    KIND: ClassVar[str] = "vector"  # stored in the file; also names the vector in messages
    model: str
    meta: dict[str, Any]
    provenance: dict[str, Any]
    allow_other_model: bool

    # --- what a subclass says -------------------------------------------------------------------
    def tensors(self) -> dict[str, Tensor]:
        raise NotImplementedError

    def fields(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_saved(
        cls,
        tensors: dict[str, Tensor],
        fields: dict[str, Any],
        provenance: dict[str, Any],
        meta: dict[str, Any],
    ) -> VectorArtifact:
        raise NotImplementedError

    def shape_problem(self, info: ModelInfo) -> str | None:
        """Why this vector cannot fit a model of ``info``'s shape (None: it fits)."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------
    @property
    def what(self) -> str:
        return self.KIND.replace("_", " ")

    def check_compatible(self, model) -> None:
        """Raise :class:`VectorMismatch` unless this vector fits ``model``: its shape always; its
        weights (fingerprint, or the name for vectors saved without one) unless ``allow_other_model``."""
        info = model_info(model)
        problem = self.shape_problem(info)
        if problem:
            raise VectorMismatch(
                f"this {self.what} {problem} (made on {self.model!r}), but {info.name} "
                f"{self._model_shape(info)}. Make one on {info.name} instead."
            )
        if self.allow_other_model:
            return
        made_on = self.provenance.get("model_fingerprint")
        if made_on is not None and made_on != model_fingerprint(model):
            raise VectorMismatch(
                f"this {self.what} was made on {self.model!r} (weights fingerprint {made_on}), not on "
                f"{info.name!r} (fingerprint {model_fingerprint(model)}): residual streams of different "
                "weights "
                f"do not share directions. Make one on {info.name}, or pass allow_other_model=True if you "
                "know better."
            )
        if made_on is None and not self.model:
            raise VectorMismatch(
                f"this {self.what} carries no record of the model it was made on (no metadata), so "
                f"nothing says it fits {info.name!r}. Make it again with the workbench, or pass "
                "allow_other_model=True if you know which model it comes from."
            )
        if made_on is None and self.model and self.model != info.name:
            raise VectorMismatch(
                f"this {self.what} was made on {self.model!r}, not on {info.name!r}; residual streams of "
                f"different models do not share directions. Make one on {info.name}, or pass "
                "allow_other_model=True if you know the two are the same weights under another name."
            )

    def n_model_layers(self) -> int | None:
        """The layer count of the model the vector was made on (``provenance["n_layers"]``; ``None``
        for vectors saved without it)."""
        n = self.provenance.get("n_layers")
        return None if n is None else int(n)

    def check_layer(self, layer: int) -> int:
        """``layer`` if the vector's model has it, else
        :class:`~workbench.base.checks.OutOfRange` (:func:`~workbench.base.checks.check_layer`)."""
        owner = f"this {self.what}'s model {self.model or '(unrecorded)'!r}"
        return check_layer(layer, self.n_model_layers(), owner=owner)

    def _normalise_records(self) -> None:
        """Hold ``meta`` and ``provenance`` as saved (:func:`~workbench.base.checks.json_form`), so
        a vector and its saved copy compare equal."""
        self.meta = json_form(self.meta)
        self.provenance = json_form(self.provenance)

    def _model_shape(self, info: ModelInfo) -> str:
        return (
            f"has {info.n_layers} layers x {info.n_heads} heads, d_head {info.d_head}, d_model {info.d_model}"
        )

    def save(self, path: str | Path) -> Path:
        """Write the tensors as safetensors, fields, provenance and meta as one JSON header (atomically)."""
        provenance = {**self.provenance, "versions": self.provenance.get("versions") or package_versions()}
        header = {"kind": self.KIND, "fields": self.fields(), "provenance": provenance, "meta": self.meta}
        return write_tensors(path, {k: v.detach().float() for k, v in self.tensors().items()}, header)

    @classmethod
    def load(cls, path: str | Path, model=None, allow_other_model: bool = False):
        """Read a saved vector; with ``model``, check that it fits (see :meth:`check_compatible`).

        Files from before the provenance header (a flat JSON header) load too.
        """
        tensors, header = read_tensors(path)  # CorruptFileError if damaged or edited after saving
        missing = [name for name in cls.TENSOR_NAMES if name not in tensors]
        if missing:
            raise ValueError(
                f"{path} holds no {missing[0]!r} tensor; was it written by {cls.__name__}.save? "
                f"(it holds {sorted(tensors)})"
            )
        bad = [name for name, t in tensors.items() if not torch.isfinite(t).all()]
        if bad:
            raise VectorMismatch(
                f"{path}: the tensor {bad[0]!r} holds NaN or infinite values; it cannot be used."
            )
        if "fields" in header:
            fields, provenance, meta = header["fields"], header.get("provenance", {}), header.get("meta", {})
        else:  # the flat header of earlier versions
            fields, provenance = (
                header,
                {"model": header.get("model", ""), "versions": header.get("versions", {})},
            )
            meta = {k: v for k, v in header.items() if k not in cls.LEGACY_FIELDS}
        vector = cls.from_saved(tensors, fields, provenance, meta)
        vector.allow_other_model = allow_other_model
        if model is not None:
            vector.check_compatible(model)
        return vector

    TENSOR_NAMES: ClassVar[tuple[str, ...]] = ()
    LEGACY_FIELDS: ClassVar[frozenset[str]] = frozenset()


@dataclass
class FunctionVector(VectorArtifact):
    """A task vector in the residual stream of one model.

    vector: ``[d_model]``.  heads: the ``(layer, head)`` pairs summed.  layer: the layer to add it
    after (``blocks.{layer}.hook_resid_post``), if one was chosen.
    """

    vector: Float[Tensor, " d_model"]
    model: str
    task: str = ""
    heads: list[tuple[int, int]] = field(default_factory=list)
    layer: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    allow_other_model: bool = field(default=False, compare=False)

    KIND: ClassVar[str] = "function_vector"
    TENSOR_NAMES: ClassVar[tuple[str, ...]] = ("function_vector",)
    LEGACY_FIELDS: ClassVar[frozenset[str]] = frozenset({"model", "task", "heads", "layer", "d_model"})

    def __post_init__(self) -> None:
        self._normalise_records()
        self.heads = [(int(l), int(h)) for l, h in self.heads]
        if self.layer is not None:
            self.layer = self.check_layer(self.layer)

    @classmethod
    def from_heads(
        cls,
        means: HeadMeans,
        heads: Sequence[tuple[int, int]],
        model,
        task: str = "",
        layer: int | None = None,
        meta: dict[str, Any] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> FunctionVector:
        """Sum the mean residual contributions of ``heads`` (``means.mean_out[l, h]``).

        ``model``: the model itself (its name and identity are recorded) or its name.
        """
        heads = [(int(l), int(h)) for l, h in heads]
        vec = torch.zeros(means.mean_out.shape[-1])
        for l, h in heads:
            vec += means.mean_out[l, h].float()
        if not isinstance(model, str):
            provenance = provenance or vector_provenance(model, "resid_post", "add", "last token")
            model = model_info(model).name
        return cls(
            vec,
            model=model,
            task=task,
            heads=heads,
            layer=layer,
            meta=dict(meta or {}),
            provenance=dict(provenance or {}),
        )

    # --- algebra -------------------------------------------------------------------------
    def _same_model(self, other: FunctionVector) -> bool:
        a, b = self.provenance.get("model_fingerprint"), other.provenance.get("model_fingerprint")
        return (a == b) if (a and b) else other.model == self.model

    def _combine(self, other: FunctionVector, sign: str) -> FunctionVector:
        if not isinstance(other, FunctionVector):
            return NotImplemented
        if not self._same_model(other) or other.vector.shape != self.vector.shape:
            raise VectorMismatch(
                f"cannot combine a vector of {self.model!r} (d_model {self.vector.shape[0]}) with one of "
                f"{other.model!r} (d_model {other.vector.shape[0]}): both must come from the same model."
            )
        vec = self.vector + other.vector if sign == "+" else self.vector - other.vector
        return FunctionVector(
            vec,
            self.model,
            f"{self.task} {sign} {other.task}",
            sorted(set(self.heads) | set(other.heads)),
            self.layer,
            {"composed_of": [self.task, other.task], "op": sign},
            dict(self.provenance),
            self.allow_other_model,
        )

    def __add__(self, other):
        return self._combine(other, "+")

    def __sub__(self, other):
        return self._combine(other, "-")

    def __mul__(self, scale: float) -> FunctionVector:
        check_finite(scale, "the scale of a function vector")
        return replace(
            self,
            vector=self.vector * float(scale),
            task=f"{float(scale):g}*{self.task}",
            meta=dict(self.meta),
        )

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __truediv__(self, scale: float):
        if float(scale) == 0:
            raise NotFinite("cannot divide a function vector by 0: its values would be infinite")
        return self * (1.0 / float(scale))

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    def __repr__(self) -> str:
        heads = ", ".join(f"L{l}H{h}" for l, h in self.heads[:6]) + ("..." if len(self.heads) > 6 else "")
        where = f", layer {self.layer}" if self.layer is not None else ""
        return (
            f"FunctionVector({self.task!r} on {self.model}, |v|={self.norm:.2f}, {len(self.heads)} heads "
            f"[{heads}]{where})"
        )

    # --- the artifact ---------------------------------------------------------------------------
    def tensors(self) -> dict[str, Tensor]:
        return {"function_vector": self.vector}

    def fields(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "task": self.task,
            "heads": self.heads,
            "layer": self.layer,
            "d_model": int(self.vector.shape[0]),
        }

    @classmethod
    def from_saved(cls, tensors, fields, provenance, meta) -> FunctionVector:
        return cls(
            tensors["function_vector"],
            model=fields.get("model", ""),
            task=fields.get("task", ""),
            heads=[tuple(h) for h in fields.get("heads", [])],
            layer=fields.get("layer"),
            meta=meta,
            provenance=provenance,
        )

    def shape_problem(self, info: ModelInfo) -> str | None:
        if self.vector.shape[0] != info.d_model:
            return f"has d_model {self.vector.shape[0]}"
        if self.layer is not None and not 0 <= self.layer < info.n_layers:
            return f"belongs after layer {self.layer}"
        return None

    # --- use with a model -------------------------------------------------------------------
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
