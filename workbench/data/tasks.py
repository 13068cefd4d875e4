"""Task datasets: load, validate, split.

A task is a JSON list of ``{"input": ..., "output": ...}`` pairs, the format of the paper's
public dataset files, so those files can be used as they are.  Built-in tasks ship inside the
package, in ``workbench/data/tasks_builtin/`` (or ``$WORKBENCH_TASKS`` replaces that folder);
any other path works too.

The split follows the paper: 70 % train (demonstrations), 9 % valid (queries for extraction),
21 % test (evaluation queries), shuffled with a fixed seed.

>>> task = Task.from_pairs("toy", [(f"w{i}", f"W{i}") for i in range(100)])
>>> split = task.split(seed=0)
>>> len(split.train), len(split.valid), len(split.test)
(70, 9, 21)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..base.files import read_json_document

__all__ = [
    "Pair",
    "Task",
    "TaskSplit",
    "TaskError",
    "load_task",
    "list_tasks",
    "tasks_dir",
    "SPLIT_FRACTIONS",
    "task_text_problem",
]

SPLIT_FRACTIONS = (0.70, 0.09, 0.21)  # train, valid, test


class TaskError(ValueError):
    """A task dataset is missing or malformed; the message names the file and entry."""


@dataclass(frozen=True)
class Pair:
    """One example of a task: the model sees ``input`` and should answer ``output``."""

    input: str
    output: str


@dataclass(frozen=True)
class TaskSplit:
    """Disjoint train / valid / test pairs of one task."""

    train: tuple[Pair, ...]
    valid: tuple[Pair, ...]
    test: tuple[Pair, ...]

    def __repr__(self) -> str:
        return f"TaskSplit(train={len(self.train)}, valid={len(self.valid)}, test={len(self.test)})"


@dataclass(frozen=True)
class Task:
    """A named list of input/output pairs, validated on construction."""

    name: str
    pairs: tuple[Pair, ...]
    source: str = "<memory>"
    description: str = field(default="", compare=False)

    @classmethod
    def from_pairs(cls, name: str, pairs: Iterable[tuple[str, str] | Pair], source: str = "<memory>"):
        items = [p if isinstance(p, Pair) else Pair(*p) for p in pairs]
        return cls(name=name, pairs=tuple(_validate([vars(p) for p in items], source)), source=source)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def digest(self) -> str:
        """A hash of the pairs (not the name): the task's identity in caches and results."""
        blob = json.dumps([[p.input, p.output] for p in self.pairs]).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_json(self) -> dict:
        """``{"name", "source", "pairs": [{"input", "output"}, ...]}``: what :meth:`from_json` reads."""
        return {
            "name": self.name,
            "source": self.source,
            "pairs": [{"input": p.input, "output": p.output} for p in self.pairs],
        }

    @classmethod
    def from_json(cls, data: dict) -> Task:
        """The task :meth:`to_json` wrote (validated again)."""
        return cls(
            name=data["name"],
            pairs=tuple(_validate(data["pairs"], data.get("source", "<saved>"))),
            source=data.get("source", "<saved>"),
        )

    def __repr__(self) -> str:
        ex = ", ".join(f"{p.input!r}->{p.output!r}" for p in self.pairs[:3])
        return f"Task({self.name!r}, {len(self)} pairs: {ex}, ...)"

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{html.escape(p.input)}</td><td>{html.escape(p.output)}</td></tr>"
            for p in self.pairs[:8]
        )
        return (
            f"<b>Task {html.escape(self.name)}</b> — {len(self)} pairs from "
            f"<code>{html.escape(self.source)}</code><table><tr><th>input</th><th>output</th></tr>"
            f"{rows}</table>"
        )

    def split(self, seed: int = 0, fractions: Sequence[float] = SPLIT_FRACTIONS) -> TaskSplit:
        """Shuffle with ``seed`` and cut into train/valid/test by ``fractions``.

        Deterministic: the same task and seed always give the same split.
        """
        if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(f"fractions must be three numbers summing to 1, got {fractions}")
        order = list(range(len(self.pairs)))
        random.Random(seed).shuffle(order)
        n = len(order)
        n_train = round(fractions[0] * n)
        n_valid = round(fractions[1] * n)
        pick = lambda idx: tuple(self.pairs[i] for i in idx)  # noqa: E731
        return TaskSplit(
            train=pick(order[:n_train]),
            valid=pick(order[n_train : n_train + n_valid]),
            test=pick(order[n_train + n_valid :]),
        )


def tasks_dir() -> Path:
    """Folder of the built-in tasks: ``$WORKBENCH_TASKS``, or the package's ``data/tasks_builtin/``.

    The JSON files are package data, so the folder is the same in a clone and in an installed wheel.
    """
    env = os.environ.get("WORKBENCH_TASKS")
    return Path(env) if env else Path(__file__).resolve().parent / "tasks_builtin"


def list_tasks() -> list[str]:
    """Names of the built-in tasks (file stems in :func:`tasks_dir`)."""
    return sorted(p.stem for p in tasks_dir().glob("*.json"))


def load_task(name_or_path: str | os.PathLike) -> Task:
    """Load a built-in task by name (``"antonym"``) or any JSON file in the dataset format.

    Raises :class:`TaskError` naming the file and the offending entry when the data is
    malformed: bad JSON, not a list, missing keys, non-string or empty values, an input given
    two different outputs.
    """
    path = Path(name_or_path)
    if not (path.suffix == ".json" or path.exists()):
        path = tasks_dir() / f"{name_or_path}.json"
        if not path.exists():
            known = ", ".join(list_tasks()) or "(none found)"
            raise TaskError(
                f"Unknown task {str(name_or_path)!r}: no built-in task by that name in "
                f"{tasks_dir()} and no such file. Built-in tasks: {known}. "
                'Or pass the path of a JSON file holding a list of {"input": ..., "output": ...}.'
            )
    raw = read_json_document(path, TaskError)
    pairs = _validate(raw, str(path))
    return Task(name=path.stem, pairs=tuple(pairs), source=str(path))


_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def task_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a task's input or output (``None``: it can).

    Refused: a line break (the prompt format separates questions, answers and demonstrations by
    line breaks, so the model would see other demonstrations than the protocol claims), another
    control character such as NUL, and a lone UTF-16 surrogate (not text: no tokenizer reads it).

    >>> task_text_problem("hot"), task_text_problem("hot\\nA: cold")[:24]
    (None, 'it holds a line break at')
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return (
            f"it holds a lone UTF-16 surrogate ({text[e.start]!r} at position {e.start}), which is not text "
            "a tokenizer can read; the file was written with a broken encoding: fix that character"
        )
    for i, ch in enumerate(text):
        if ch in _LINE_BREAKS:
            return (
                f"it holds a line break at position {i} ({ch!r}): the prompt format writes "
                "'Q: x\\nA: y\\n\\n' and separates demonstrations by line breaks, so the model would see "
                "a different number of demonstrations than the protocol claims. Keep each input and "
                "output on one line"
            )
        if unicodedata.category(ch) == "Cc" and ch != "\t":
            return (
                f"it holds the control character {ch!r} at position {i}, which no prompt should carry "
                "(the file may be binary or damaged): remove it"
            )
    return None


def _validate(raw: object, source: str) -> list[Pair]:
    """Check the dataset format; return the pairs, exact duplicates dropped."""
    if isinstance(raw, dict) and "data" in raw:  # tolerate {"data": [...]} wrappers
        raw = raw["data"]
    if not isinstance(raw, list):
        raise TaskError(
            f'{source}: expected a JSON list of {{"input", "output"}} objects, got {type(raw).__name__}.'
        )
    if not raw:
        raise TaskError(f"{source}: the dataset is empty; a task needs at least a few pairs.")
    pairs: list[Pair] = []
    seen: dict[str, tuple[int, str]] = {}
    for i, entry in enumerate(raw):
        where = f"{source}, entry {i}"
        if not isinstance(entry, dict):
            raise TaskError(f"{where}: expected an object with keys 'input' and 'output', got {entry!r}.")
        missing = [k for k in ("input", "output") if k not in entry]
        if missing:
            raise TaskError(f"{where}: missing key {' and '.join(map(repr, missing))} in {entry!r}.")
        for key in ("input", "output"):
            value = entry[key]
            if not isinstance(value, str):
                raise TaskError(f"{where}: {key!r} must be a string, got {type(value).__name__} {value!r}.")
            if not value.strip():
                raise TaskError(f"{where}: {key!r} is empty or only whitespace.")
            problem = task_text_problem(value.strip())
            if problem:
                raise TaskError(f"{where}: {key!r} {value!r} cannot be used: {problem}.")
        x, y = entry["input"].strip(), entry["output"].strip()
        if x in seen:
            j, y0 = seen[x]
            if y0 != y:
                raise TaskError(
                    f"{where}: input {x!r} appears again with a different output "
                    f"({y!r} here, {y0!r} at entry {j}). Keep one of them."
                )
            continue  # exact duplicate: keep the first
        seen[x] = (i, y)
        pairs.append(Pair(x, y))
    return pairs
