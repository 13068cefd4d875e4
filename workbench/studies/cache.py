"""Studies cached as stages: a study's numbers stored once, under a key of everything they depend on.

The key is the model's identity (weights fingerprint and dtype), the run's task content,
protocol, FV heads and layer, the study's name and its own arguments (and
:data:`STUDY_VERSION`).  Redrawing figures (``workbench figures``) or a notebook cell then reads
the stored numbers instead of re-measuring.  A study's output is either JSON-able (dicts of
numbers) or a dict of :class:`~workbench.method.evaluate.LayerSweep`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import torch

from ..base.stage_cache import StageCache
from ..core.model import model_id
from ..method.evaluate import LayerSweep
from ..method.result import TaskResult

__all__ = ["cached_study", "study_key", "int_keys", "tensor_digest", "STUDY_VERSION"]

STUDY_VERSION = 1  # bump when a study's meaning changes


def _encode(value: Any) -> dict[str, torch.Tensor]:
    if isinstance(value, dict) and value and all(isinstance(v, LayerSweep) for v in value.values()):
        out = {"kind/sweeps": torch.tensor(1)}
        for name, sweep in value.items():
            out.update({f"{name}|{k}": t for k, t in sweep.to_tensors().items()})
        return out
    blob = json.dumps(value).encode()
    return {"kind/json": torch.tensor(1), "json": torch.frombuffer(bytearray(blob), dtype=torch.uint8)}


def _decode(tensors: dict[str, torch.Tensor]) -> Any:
    if "kind/json" in tensors:
        return json.loads(bytes(tensors["json"].tolist()).decode())
    names = {k.split("|", 1)[0] for k in tensors if "|" in k}
    return {
        name: LayerSweep.from_tensors(
            {k.split("|", 1)[1]: t for k, t in tensors.items() if k.startswith(f"{name}|")}
        )
        for name in sorted(names)
    }


def cached_study(
    cache: StageCache | None,
    name: str,
    model,
    result: TaskResult,
    params: dict[str, Any],
    compute: Callable[[], Any],
) -> Any:
    """``compute()`` (study ``name`` of ``result`` with ``params``), from ``cache`` when stored there.

    JSON turns integer dict keys into strings (:func:`int_keys` turns the head counts back).
    """
    if cache is None:
        return compute()
    return _decode(
        cache.get_or_compute(f"study_{name}", study_key(model, result, params), lambda: _encode(compute()))
    )


def study_key(model, result: TaskResult, params: dict[str, Any]) -> dict[str, Any]:
    """The cache key of a study of ``result`` on ``model`` with ``params``: everything it depends on."""
    return {
        "model": model_id(model),
        "task": result.task.digest,
        "protocol": result.protocol.to_dict(),
        "heads": [list(h) for h in result.fv.heads],
        "fv_layer": result.fv_layer,
        "fv": tensor_digest(result.fv.vector),
        "study_version": STUDY_VERSION,
        **params,
    }


def tensor_digest(t: torch.Tensor) -> str:
    """A short hash of a tensor's values (float32), for keys that depend on a vector."""
    return hashlib.sha256(t.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def int_keys(curves: dict[str, dict]) -> dict[str, dict[int, float]]:
    """``{name: {k: v}}`` with the counts ``k`` as integers again (JSON stores them as strings).

    >>> int_keys({"top": {"4": 0.5, "8": 0.75}})
    {'top': {4: 0.5, 8: 0.75}}
    """
    return {name: {int(k): v for k, v in by_k.items()} for name, by_k in curves.items()}
