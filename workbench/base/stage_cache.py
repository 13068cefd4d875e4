"""A small content-addressed cache for computed stages.

A *stage cache* stores one result per key, where the key is a hash of everything the result
depends on (the model's identity, the task's content, protocol counts, seed, code version).
Rerunning with the same arguments finds the stored result; changing any argument gives a new key.
A model enters a key by its identity (:func:`workbench.core.model.model_id`: a fingerprint of its
config and weights, and its dtype), never by its name.

>>> key = stage_key("mean_z", model="m", task="antonym", n_prompts=100)
>>> len(key)
16
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .files import default_cache_dir, read_tensors, write_tensors

__all__ = ["stage_key", "StageCache", "CACHE_VERSION"]

CACHE_VERSION = 2  # bump when a cached stage's meaning changes (2: models keyed by content, not name)


def stage_key(stage: str, **parts: Any) -> str:
    """A short stable hash of a stage name and the JSON of everything it depends on."""
    blob = json.dumps({"stage": stage, "v": CACHE_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class StageCache:
    """Results of expensive stages, one safetensors file per key, under ``root``.

    >>> import tempfile, torch
    >>> cache = StageCache(tempfile.mkdtemp())
    >>> t = cache.get_or_compute("demo", {"x": 1}, lambda: {"a": torch.ones(2)})
    >>> cache.get_or_compute("demo", {"x": 1}, lambda: 1 / 0)["a"].tolist()  # cached: no call
    [1.0, 1.0]
    """

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        if root is None:
            root = os.environ.get("WORKBENCH_STAGE_CACHE") or default_cache_dir() / "stages"
        self.root = Path(root)
        self.enabled = enabled

    def path(self, stage: str, parts: dict[str, Any]) -> Path:
        return self.root / stage / f"{stage_key(stage, **parts)}.safetensors"

    def get_or_compute(
        self, stage: str, parts: dict[str, Any], compute: Callable[[], dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Return the stored tensors for ``(stage, parts)``, computing and storing them if absent."""
        path = self.path(stage, parts)
        if self.enabled and path.exists():
            return read_tensors(path)[0]
        tensors = compute()
        if self.enabled:
            write_tensors(path, tensors, {"stage": stage, **parts})
        return tensors
