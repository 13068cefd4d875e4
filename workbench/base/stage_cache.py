"""A small content-addressed cache for computed stages.

A *stage cache* stores one result per key, where the key is a hash of everything the result
depends on (the model's identity, the task's content, protocol counts, seed, code version).
Rerunning with the same arguments finds the stored result; changing any argument gives a new key.
A model enters a key by its identity (:func:`workbench.core.model.model_id`: a fingerprint of its
config and weights, and its dtype), never by its name.

Faults it survives:

- a damaged entry (truncated, bit-flipped: each file carries a SHA-256) is recomputed, with a
  warning that names the file;
- two runs sharing the cache: a file lock per entry makes the second wait for the first and
  reuse its result instead of computing it again;
- an interrupt inside a long stage: :meth:`StageCache.get_or_compute_chunks` stores each finished
  chunk, so a rerun resumes from the last one.

>>> key = stage_key("mean_z", model="m", task="antonym", n_prompts=100)
>>> len(key)
16
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from .files import CorruptFileError, check_writable_folder, default_cache_dir, read_tensors, write_tensors

__all__ = ["stage_key", "StageCache", "CACHE_VERSION", "CacheUnwritable"]

# bump when a cached stage's meaning changes (2: models keyed by content, not name; 3: checksums)
CACHE_VERSION = 3
Tensors = dict[str, torch.Tensor]


def _in_saved_order(tensors: Tensors) -> Tensors:
    """Tensors by name, the one order of a stage whether computed now or read back (a file keeps
    its own order), so a rerun from the cache builds its results, and writes its files, alike."""
    return dict(sorted(tensors.items()))


class CacheUnwritable(OSError):
    """The stage cache folder cannot be written (read-only, full, or a file); the message names the
    setting that moves it."""


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
        self._checked = False

    def check_writable(self) -> StageCache:
        """Raise :class:`CacheUnwritable` now, before any work, unless the cache folder can be written."""
        if self.enabled and not self._checked:
            try:
                check_writable_folder(self.root)
            except OSError as e:
                raise self._unwritable(e) from None
            self._checked = True
        return self

    def _unwritable(self, e: OSError) -> CacheUnwritable:
        reason = e.strerror if e.strerror else str(e)
        return CacheUnwritable(
            f"the stage cache {self.root} cannot be written ({reason}). Point WORKBENCH_STAGE_CACHE "
            "(or WORKBENCH_CACHE, which holds it as stages/) at a writable folder with free space, or "
            "free some space there; nothing already stored in the cache was lost."
        )

    def path(self, stage: str, parts: dict[str, Any]) -> Path:
        return self.root / stage / f"{stage_key(stage, **parts)}.safetensors"

    def get_or_compute(self, stage: str, parts: dict[str, Any], compute: Callable[[], Tensors]) -> Tensors:
        """Return the stored tensors for ``(stage, parts)``, computing and storing them if absent."""
        if not self.enabled:
            return compute()
        path = self.path(stage, parts)
        with self._locked(path):
            stored = self._read(path)
            if stored is not None:
                return stored
            tensors = _in_saved_order(compute())
            self._write(path, tensors, {"stage": stage, **parts})
        return tensors

    def _write(self, path: Path, tensors: Tensors, meta: dict[str, Any]) -> None:
        try:
            write_tensors(path, tensors, meta)
        except OSError as e:
            raise self._unwritable(e) from None

    def get_or_compute_json(self, stage: str, parts: dict[str, Any], compute: Callable[[], Any]) -> Any:
        """:meth:`get_or_compute` for a JSON-able result (numbers, lists, dicts), stored as its UTF-8
        bytes; the value returned is the JSON form either way (computed now or read back).

        >>> import tempfile
        >>> cache = StageCache(tempfile.mkdtemp())
        >>> cache.get_or_compute_json("demo", {}, lambda: {"n": (1, 2)})
        {'n': [1, 2]}
        >>> cache.get_or_compute_json("demo", {}, lambda: 1 / 0)  # read back: no call
        {'n': [1, 2]}
        """

        def encoded() -> Tensors:
            blob = json.dumps(compute()).encode()
            return {"json": torch.frombuffer(bytearray(blob), dtype=torch.uint8)}

        stored = self.get_or_compute(stage, parts, encoded)
        return json.loads(bytes(stored["json"].tolist()).decode())

    def get_or_compute_chunks(
        self,
        stage: str,
        parts: dict[str, Any],
        chunks: Sequence[Any],
        compute_chunk: Callable[[Any], Tensors],
        combine: Callable[[list[Tensors]], Tensors],
    ) -> Tensors:
        """Like :meth:`get_or_compute` for a stage done in ``chunks`` (say, groups of layers or of
        prompts): each finished chunk is stored at once, so an interrupted run resumes from the
        last finished chunk.  ``combine`` joins the chunks' tensors (in order) into the result.

        >>> import tempfile, torch
        >>> cache = StageCache(tempfile.mkdtemp())
        >>> out = cache.get_or_compute_chunks(
        ...     "demo", {}, [0, 1, 2], lambda i: {"x": torch.tensor([i])},
        ...     lambda ts: {"x": torch.cat([t["x"] for t in ts])})
        >>> out["x"].tolist()
        [0, 1, 2]
        """
        if not self.enabled:
            return combine([compute_chunk(c) for c in chunks])
        path = self.path(stage, parts)
        with self._locked(path):
            stored = self._read(path)
            if stored is not None:
                return stored
            folder = path.with_suffix(".chunks")
            done = []
            for i, chunk in enumerate(chunks):
                part = folder / f"{i:05d}-of-{len(chunks):05d}.safetensors"
                tensors = self._read(part)
                if tensors is None:
                    tensors = compute_chunk(chunk)
                    self._write(part, tensors, {"stage": stage, "chunk": i, **parts})
                done.append(tensors)
            result = _in_saved_order(combine(done))
            self._write(path, result, {"stage": stage, **parts})
            shutil.rmtree(folder, ignore_errors=True)
        return result

    def _read(self, path: Path) -> Tensors | None:
        """The stored tensors, or None if absent; a damaged file is reported and removed."""
        if not path.exists():
            return None
        try:
            return _in_saved_order(read_tensors(path, require_digest=True)[0])
        except CorruptFileError as e:
            warnings.warn(f"cached stage file damaged, recomputing it: {e}", stacklevel=3)
            path.unlink(missing_ok=True)
            return None

    @contextmanager
    def _locked(self, path: Path):
        """Hold ``<entry>.lock`` while an entry is looked up, computed and written."""
        self.check_writable()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path) + ".lock")
            lock.acquire(timeout=0.5)
        except Timeout:
            print(
                f"waiting for another run computing the same stage ({path.parent.name}); "
                f"its result will be reused (lock: {lock.lock_file})",
                file=sys.stderr,
                flush=True,
            )
            lock.acquire()
        except OSError as e:
            raise self._unwritable(e) from None
        try:
            yield
        finally:
            lock.release()
