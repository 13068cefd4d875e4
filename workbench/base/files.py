"""Atomic, checked writes: everything the workbench writes to disk goes through here.

Nothing already computed is lost to an interrupted run: a file is written to a temporary name in
the same folder and then moved over the target with ``os.replace`` (atomic on POSIX and Windows).
Written files get the permissions the umask allows (a shared cache stays readable by a group),
temporaries left by a killed process are removed on the next write beside them, and tensor files
carry a SHA-256 of their content, checked on every read (:class:`CorruptFileError`).

>>> import tempfile
>>> path = write_json(Path(tempfile.mkdtemp()) / "a.json", {"x": 1})
>>> read_json(path)
{'x': 1}
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "atomic_path",
    "temporary_folder_beside",
    "write_json",
    "read_json",
    "read_json_document",
    "write_tensors",
    "read_tensors",
    "content_digest",
    "file_sha256",
    "default_cache_dir",
    "CorruptFileError",
    "check_writable_folder",
    "check_writable_file",
]


class CorruptFileError(OSError):
    """A file the workbench wrote cannot be read back as written (truncated, edited, bit-flipped)."""


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
    with temporary_folder_beside(target) as tmp:
        inner = tmp / (target.name + suffix)
        yield inner
        _apply_umask(inner)
        if target.is_dir() and inner.is_dir():
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            os.replace(target, tmp / ".old")
        os.replace(inner, target)


@contextmanager
def temporary_folder_beside(target: str | os.PathLike) -> Iterator[Path]:
    """A fresh folder ``.<name>.<host>.<pid>.XXXX.tmp`` beside ``target`` (same file system, so a
    rename from it is atomic), removed on exit; ones left by killed writers are removed first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    prefix = f".{target.name}.{socket.gethostname()}.{os.getpid()}."
    tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    finally:
        _remove_tree(tmp)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _apply_umask(path: Path) -> None:
    """Give ``path`` (and, for a folder, its content) the modes a plain ``open`` would: temporary
    files are created private (0600), which would lock other users out of a shared cache."""
    if not path.exists():
        return
    mask = _umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)


STALE_AFTER_S = 24 * 3600  # a temporary of another machine is only removed after this long


def _remove_stale_temporaries(target: Path) -> None:
    """Remove ``.<name>.<host>.<pid>.XXXX.tmp`` folders beside ``target`` left by a killed writer:
    its process is gone (same machine), or it is older than :data:`STALE_AFTER_S`."""
    host = socket.gethostname()
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        parts = tmp.name[len(target.name) + 2 :].split(".")
        try:
            alive = parts[0] == host and _pid_alive(int(parts[1]))
            stale = not alive if parts[0] == host else time.time() - tmp.stat().st_mtime > STALE_AFTER_S
        except (IndexError, ValueError, OSError):  # an older name format: go by age
            stale = time.time() - tmp.stat().st_mtime > STALE_AFTER_S if tmp.exists() else False
        if stale:
            _remove_tree(tmp)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def check_writable_folder(path: str | os.PathLike) -> Path:
    """Fail now, before any work, if a folder cannot be created or written at ``path``.

    >>> import tempfile
    >>> a_file = tempfile.NamedTemporaryFile()
    >>> check_writable_folder(a_file.name)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    NotADirectoryError: cannot write /...: it is a file; pass a folder for the output.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"cannot write {path}: it is a file; pass a folder for the output.")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {parent} is a file, not a folder.")
    try:  # a real probe: os.access says yes to root on a read-only file system
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as e:
        raise PermissionError(f"cannot write {path}: {parent} is not writable ({e.strerror}).") from None
    return path


def check_writable_file(path: str | os.PathLike) -> Path:
    """Fail now, before any work, if a file cannot be written at ``path`` (a folder there, or a
    folder above it that cannot be written).

    >>> import tempfile
    >>> check_writable_file(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    IsADirectoryError: cannot write /...: it is a folder; pass the name of a file to write (inside it, say).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"cannot write {path}: it is a folder; pass the name of a file to write (inside it, say)."
        )
    check_writable_folder(path.parent)
    return path


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


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_digest(tensors: dict[str, torch.Tensor], metadata_json: str) -> str:
    """SHA-256 of the metadata JSON and every tensor's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256(metadata_json.encode())
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def write_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None
) -> Path:
    """Save tensors as safetensors, atomically; ``metadata`` is stored as one JSON string, and a
    SHA-256 of metadata and tensors (:func:`content_digest`) is stored beside it."""
    # by name: the same tensors give the same bytes, whatever order they were gathered in
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in sorted(tensors.items())}
    meta_json = json.dumps(metadata or {}, ensure_ascii=False)
    header = {"json": meta_json, "sha256": content_digest(tensors, meta_json)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return Path(path)


def read_tensors(
    path: str | os.PathLike, require_digest: bool = False
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a file written by :func:`write_tensors`: ``(tensors, metadata)``.

    Raises :class:`CorruptFileError` naming the file if it cannot be parsed or its content does not
    match the stored SHA-256 (files written before the digest existed load unchecked, unless
    ``require_digest``).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
        tensors = load_file(str(path))
        meta_json = raw.get("json", "{}")
        metadata = json.loads(meta_json)
    except (SafetensorError, OSError, json.JSONDecodeError, UnicodeDecodeError, RuntimeError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise CorruptFileError(f"{path} is damaged and cannot be read ({type(e).__name__}: {e}).") from None
    stored = raw.get("sha256")
    if stored is None and require_digest:
        raise CorruptFileError(f"{path} carries no content checksum, so it cannot be verified.")
    if stored is not None and stored != content_digest(tensors, meta_json):
        raise CorruptFileError(
            f"{path} does not match its checksum: its tensors or metadata were changed after it was written."
        )
    return tensors, metadata
