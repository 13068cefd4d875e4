"""One module per study's figure; each takes that study's result and never runs a model.

Each module registers its drawing function under the study's name with ``@study_figure("name")``
(:mod:`workbench.studies.registry` says why the figure is declared here and not in the study's
record).  A drawing function takes the study's records by task (``{task: record}``, or a
:class:`~workbench.studies.registry.StudyResult`; plain dicts as the study functions return them
are read through the record) and returns one figure or ``{file suffix: figure}``.

>>> from workbench.show.study_figures import figure_of
>>> figure_of("signed").__name__
'signed_figure'
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["study_figure", "figure_of", "all_figures", "records"]

_FIGURES: dict[str, Callable[..., Any]] = {}
R = TypeVar("R")


def study_figure(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the figure of study ``name``."""

    def register(draw: Callable[..., Any]) -> Callable[..., Any]:
        if name in _FIGURES and _FIGURES[name] is not draw:
            raise ValueError(f"study {name!r} has two figures: {_FIGURES[name].__name__} and {draw.__name__}")
        _FIGURES[name] = draw
        return draw

    return register


def all_figures() -> dict[str, Callable[..., Any]]:
    """Every registered figure by study name (every module of this package imported first)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return dict(_FIGURES)


def figure_of(name: str) -> Callable[..., Any]:
    """The figure function of study ``name``."""
    found = all_figures()
    if name not in found:
        raise KeyError(f"study {name!r} has no figure: register one with @study_figure({name!r})")
    return found[name]


def records(by_task: Any, record: type[R]) -> dict[str, R]:
    """``{task: record}`` from a StudyResult, a dict of records, or a dict of plain dicts."""
    tasks = getattr(by_task, "tasks", by_task)
    if not isinstance(tasks, Mapping):
        raise TypeError(f"expected the study's records by task, got {type(by_task).__name__}")
    return {t: r if isinstance(r, record) else record.from_dict(r) for t, r in tasks.items()}
