"""What a study is: one :class:`Study` record per study module, its :class:`Param` s, its typed results.

A study module (``positions.py``, ``signed.py``, ...) measures something on finished runs and
declares, at its end, ``STUDY = Study(...)``: the name, a one-line summary, the parameters (type,
default, help, bounds), the typed per-run result (a :class:`StudyRecord` dataclass) and
``compute(ctx, run) -> record``.  :mod:`.registry` collects the records; the CLI's flags, the cached
stage, the figure lookup and the docs' page list all come from there.

A :class:`StudyRecord` is a dataclass whose fields are the keys of the study's JSON: ``to_dict()``
writes exactly those, ``from_dict()`` refuses numbers with a missing or unknown key (stored by
another version of the workbench) with :class:`StudyRecordMismatch` instead of misreading them.

>>> from dataclasses import dataclass
>>> @dataclass(repr=False)
... class Toy(StudyRecord):
...     layer: int
...     accuracy: dict
>>> toy = Toy.from_dict({"layer": 3, "accuracy": {"none": 0.5}})
>>> toy.layer, toy.to_dict() == {"layer": 3, "accuracy": {"none": 0.5}}
(3, True)
>>> toy
Toy(layer=3, accuracy={1 entries})
>>> Param("k", int, 8, "heads per set", low=1).check(0, "signed")
Traceback (most recent call last):
...
workbench.studies.study.StudyError: --k of study 'signed' must be at least 1, got 0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Param",
    "Study",
    "StudyContext",
    "StudyError",
    "StudyRecord",
    "StudyRecordMismatch",
]


class StudyError(ValueError):
    """An unknown study, a flag it does not take, a bad value, or a run it needs is missing."""


class StudyRecordMismatch(StudyError):
    """Stored numbers whose keys are not the study's (written by another version of the workbench)."""


@dataclass(frozen=True)
class Param:
    """One argument of a study: ``--name`` on the command line, ``name=`` in Python.

        ``type``: ``int``, ``float`` or ``bool`` (a flag); ``many``: ``"+"`` (one or more values) or
        ``"*"`` (zero or more), else one value; ``low``: the smallest value allowed; ``metavar``: the
    value's name in the command's help.  A default of
        ``None`` means "not asked for" (the study's docstring says what that does).
    """

    name: str
    type: type
    default: Any
    help: str
    many: str | None = None
    low: float | None = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any, study: str) -> Any:
        """``value`` as this parameter stores it (a list for ``many``), or :class:`StudyError`."""
        if value is None:
            return None
        if self.many:
            if isinstance(value, str | bytes) or not isinstance(value, Sequence):
                value = [value]
            if self.many == "+" and not value:
                raise StudyError(f"{self.flag} of study {study!r} needs at least one value")
            return [self._one(v, study) for v in value]
        return self._one(value, study)

    def _one(self, value: Any, study: str) -> Any:
        if self.type is bool:
            return bool(value)
        try:
            number = self.type(value)
        except (TypeError, ValueError):
            raise StudyError(
                f"{self.flag} of study {study!r} takes {self.type.__name__}s, got {value!r}"
            ) from None
        if self.type is int and number != value and not isinstance(value, str):
            raise StudyError(f"{self.flag} of study {study!r} takes whole numbers, got {value!r}")
        if isinstance(number, float) and not math.isfinite(number):
            raise StudyError(f"{self.flag} of study {study!r} must be a finite number, got {value!r}")
        if self.low is not None and number < self.low:
            raise StudyError(f"{self.flag} of study {study!r} must be at least {self.low:g}, got {number:g}")
        return number


@dataclass
class StudyContext:
    """What a study's ``compute`` gets besides the run: the model, the study's checked arguments,
    the stage cache (for parts cached on their own), the output folder, and ``memo`` (work shared by
    the runs of one call, e.g. scores that depend on the model only)."""

    model: Any
    params: dict[str, Any]
    cache: Any
    out: Path
    progress: bool = False
    memo: dict[str, Any] = field(default_factory=dict)


class StudyRecord:
    """Base of a study's typed result for one run (module docstring).  Subclasses are dataclasses;
    a field whose default is ``None`` is optional and left out of :meth:`to_dict` when unset."""

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StudyRecord:
        fields = dataclasses.fields(cls)
        names = {f.name for f in fields}
        required = {f.name for f in fields if f.default is dataclasses.MISSING}
        missing, unknown = sorted(required - set(data)), sorted(set(data) - names)
        if missing or unknown:
            what = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"unknown {', '.join(unknown)}" if unknown else "",
                )
                if part
            )
            raise StudyRecordMismatch(
                f"these {cls.__name__} numbers do not have the keys this workbench writes ({what}): "
                "they were stored by another version; run the study again to recompute them"
            )
        return cls(**{k: data[k] for k in names if k in data})

    def save(self, path: str | Path) -> Path:
        from ..base.files import write_json

        return write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> StudyRecord:
        from ..base.files import read_json

        return cls.from_dict(read_json(Path(path)))

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            parts.append(f"{f.name}={_short(value)}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return f"{{{len(value)} entries}}"
    if isinstance(value, list | tuple):
        return (
            repr(value)
            if len(value) <= 6 and all(isinstance(v, int | float) for v in value)
            else f"[{len(value)} items]"
        )
    return repr(value)


@dataclass(frozen=True)
class Study:
    """One study: everything the CLI, the cache, the figures and the docs need to know about it.

    ``compute(ctx, run)``: the study's numbers on one run, as a ``record``; ``run`` is a
    :class:`~workbench.method.result.TaskResult`, or for a study with ``needs_scan=False`` also a
    :class:`~workbench.data.tasks.Task` (measured with the default protocol).  ``constants``: fixed
    arguments, part of the cache key and the JSON like the ``params``.  ``cached``: the record is a
    stage of the run's key (:func:`~workbench.studies.cache.cached_study`); a study that caches its
    parts itself says ``False``.
    """

    name: str
    summary: str
    record: type[StudyRecord]
    compute: Callable[[StudyContext, Any], StudyRecord]
    params: tuple[Param, ...] = ()
    constants: Mapping[str, Any] = field(default_factory=dict)
    needs_scan: bool = True
    cached: bool = True

    @property
    def page(self) -> str:
        """The study's documentation page, relative to ``docs/``."""
        return f"studies/{self.name}.md"

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def arguments(self, **given: Any) -> dict[str, Any]:
        """The arguments the study depends on (``given`` ones checked, else the defaults, then the
        constants): its cache key and the ``params`` of its JSON.  A flag the study does not take is
        a :class:`StudyError`."""
        takes = {p.name: p for p in self.params}
        for key in given:
            if key not in takes:
                flag = "--" + key.replace("_", "-")
                have = f" (it takes {', '.join(p.flag for p in self.params)})" if self.params else ""
                raise StudyError(f"{flag} does not apply to study {self.name!r}{have}")
        out = {}
        for p in self.params:
            out[p.name] = p.check(given[p.name] if given.get(p.name) is not None else p.default, self.name)
        return {**out, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in self.constants.items()}}
