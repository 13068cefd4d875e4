"""How every check of the exercises and the course answers: one wrapper, so that a check always
returns a :class:`Check` with a message and never raises, whatever the learner's function does.

A check's body receives the learner's function wrapped in a :class:`Student`.  Calling it runs the
function; if the function raises, or returns ``None``, the check stops there with a message saying
so (a ``raise NotImplementedError`` reads as "not implemented yet").  The body names the mistake
with :func:`passed` / :func:`failed`, or stops early with :func:`stop`.  Anything else that goes
wrong while the body reads the learner's value (a list where a tensor was due, a count where the
heads were due) becomes a failed check that says what to return and what came back.

>>> @check("double", returns="twice the number")
... def check_double(fn):
...     got = fn(2)
...     return passed("2 -> 4.") if got == 4 else failed(f"2 -> {got}, expected 4.")
>>> check_double(lambda x: 2 * x)
✅ double: 2 -> 4.
>>> check_double(lambda x: None)
❌ double: your function returned None: return twice the number (is a `return` missing?).
>>> check_double(lambda x: 1 / 0).message.split(" (line")[0]
'your function raised ZeroDivisionError: division by zero'
"""

from __future__ import annotations

import functools
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import torch

__all__ = ["Check", "check", "passed", "failed", "stop", "Student", "describe"]


@dataclass
class Check:
    """The verdict of one check."""

    name: str
    passed: bool
    message: str

    def __repr__(self) -> str:
        return f"{'✅' if self.passed else '❌'} {self.name}: {self.message}"

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.passed else "#c62828"
        return (
            f"<div style='color:{color}'><b>{'✅' if self.passed else '❌'} {self.name}</b>: "
            f"{self.message}</div>"
        )


def passed(message: str) -> Check:
    """A passing verdict (the wrapper of :func:`check` fills in the name)."""
    return Check("", True, message)


def failed(message: str) -> Check:
    """A failing verdict (the wrapper of :func:`check` fills in the name)."""
    return Check("", False, message)


class _Stop(Exception):
    def __init__(self, verdict: Check):
        super().__init__(verdict.message)
        self.verdict = verdict


def stop(message: str) -> NoReturn:
    """End the check now with a failing verdict (from a helper deep inside a check)."""
    raise _Stop(failed(message))


_NOTHING = object()
_PACKAGE = str(Path(__file__).resolve().parent.parent)  # frames in the workbench are not the learner's


def describe(value) -> str:
    """A short description of what a function returned, for a message."""
    if value is _NOTHING:
        return "nothing yet"
    if value is None:
        return "None"
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, bool | int | float):
        return f"the {type(value).__name__} {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, list | tuple | dict | set):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _raised(e: Exception) -> str:
    """What the learner's function raised, where, and a hint for a hook that does not exist."""
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if "site-packages" not in f.filename and not f.filename.startswith(_PACKAGE)]
    where = (mine or frames)[-1]
    text = f"your function raised {type(e).__name__}: {e} (line {where.lineno}: {where.line!r})."
    hook = re.search(r"Hook name '(blocks\.(-?\d+)\.[\w.]+)' does not exist", str(e))
    if hook:
        text += f" {hook.group(1)} is not a layer of this model: is the layer off by one?"
    return text


class Student:
    """The learner's function as a check calls it; remembers what it returned last."""

    def __init__(self, fn: Callable, returns: str):
        self.fn, self.returns, self.returned = fn, returns, _NOTHING

    def __call__(self, *args):
        """The function's value; stops the check if the function raises or returns ``None``."""
        verdict, value = self.attempt(*args)
        if verdict is not None:
            raise _Stop(verdict)
        return value

    def attempt(self, *args) -> tuple[Check | None, object]:
        """``(None, value)``, or ``(failed verdict, None)`` if the function raised or returned ``None``:
        for checks that look at several calls before naming the mistake."""
        try:
            value = self.fn(*args)
        except NotImplementedError:
            return failed(
                "not implemented yet: replace the `raise NotImplementedError` with your code."
            ), None
        except Exception as e:  # noqa: BLE001 - shown to the learner
            return failed(_raised(e)), None
        self.returned = value
        if value is None:
            return failed(
                f"your function returned None: return {self.returns} (is a `return` missing?)."
            ), None
        return None, value


def check(name: str, returns: str):
    """Make ``body(student, *args)`` a check named ``name`` that answers whatever the learner's function
    does; ``returns`` says what the function should return (used in the messages)."""

    def wrap(body: Callable[..., Check]) -> Callable[..., Check]:
        @functools.wraps(body)
        def run(fn, *args, **kwargs) -> Check:
            if not callable(fn):
                verdict = failed(f"pass your function itself, e.g. check(my_function), not {describe(fn)}.")
            else:
                student = Student(fn, returns)
                try:
                    verdict = body(student, *args, **kwargs)
                except _Stop as s:
                    verdict = s.verdict
                except Exception as e:  # noqa: BLE001 - the learner's value did not fit: say what was due
                    verdict = failed(
                        f"return {returns}; your function returned {describe(student.returned)}, which the "
                        f"check could not use ({type(e).__name__}: {e})."
                    )
            return Check(name, verdict.passed, verdict.message)

        run.check_name = name
        return run

    return wrap
