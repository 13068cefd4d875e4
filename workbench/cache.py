"""Atomic writes and a small content-addressed cache for computed stages.

Everything the workbench writes to disk goes through here, so nothing already computed is lost
to an interrupted run: a file is written to a temporary name in the same folder and then moved
over the target with ``os.replace`` (atomic on POSIX and Windows).

A *stage cache* stores one result per key, where the key is a hash of everything the result
depends on (model, task, protocol counts, seed, code version).  Rerunning with the same
arguments finds the stored result; changing any argument gives a new key.

>>> key = stage_key("mean_z", model="m", task="antonym", n_prompts=100)
>>> len(key)
16
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "atomic_path",
    "write_json",
    "read_json",
    "write_tensors",
    "read_tensors",
    "stage_key",
    "StageCache",
    "default_cache_dir",
]

CACHE_VERSION = 1  # bump when a cached stage's meaning changes


def default_cache_dir() -> Path:
    """The user cache folder: ``$WORKBENCH_CACHE`` or ``~/.cache/fv-workbench``."""
    root = os.environ.get("WORKBENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "fv-workbench"


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it over ``target`` only on success.

    Works for files and folders: whatever the body creates at the yielded path replaces
    ``target`` in one step.  On an exception the temporary is removed and ``target`` is left
    as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    inner = tmp / (target.name + suffix)
    try:
        yield inner
        if target.is_dir() and inner.is_dir():
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            old = tmp / ".old"
            os.replace(target, old)
        os.replace(inner, target)
    finally:
        _remove_tree(tmp)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None
) -> Path:
    """Save tensors as safetensors, atomically; ``metadata`` is stored as one JSON string."""
    header = {"json": json.dumps(metadata or {}, ensure_ascii=False)}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return Path(path)


def read_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a file written by :func:`write_tensors`: ``(tensors, metadata)``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw = f.metadata() or {}
    metadata = json.loads(raw.get("json", "{}"))
    return load_file(str(path)), metadata


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

    def get_or_compute(self, stage: str, parts: dict[str, Any], compute) -> dict[str, torch.Tensor]:
        """Return the stored tensors for ``(stage, parts)``, computing and storing them if absent."""
        path = self.path(stage, parts)
        if self.enabled and path.exists():
            return read_tensors(path)[0]
        tensors = compute()
        if self.enabled:
            write_tensors(path, tensors, {"stage": stage, **parts})
        return tensors
