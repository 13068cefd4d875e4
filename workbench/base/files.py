"""Atomic writes: everything the workbench writes to disk goes through here.

Nothing already computed is lost to an interrupted run: a file is written to a temporary name in
the same folder and then moved over the target with ``os.replace`` (atomic on POSIX and Windows).

>>> import tempfile
>>> path = write_json(Path(tempfile.mkdtemp()) / "a.json", {"x": 1})
>>> read_json(path)
{'x': 1}
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "atomic_path",
    "write_json",
    "read_json",
    "read_json_document",
    "write_tensors",
    "read_tensors",
    "default_cache_dir",
]


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
    """Read a JSON file the workbench wrote (see :func:`read_json_document` for user files)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_json_document(path: str | os.PathLike, error: type[Exception] = ValueError) -> Any:
    """Read a user's JSON file; every way it can be unreadable raises ``error`` naming the file.

    >>> read_json_document("/no/such/file.json")
    Traceback (most recent call last):
    ...
    ValueError: /no/such/file.json does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise error(f"{path} is a folder; pass a JSON file.")
    if not path.exists():
        raise error(f"{path} does not exist.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}).") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text ({e}).") from None


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
