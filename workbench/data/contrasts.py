"""Contrast files: two prompt sets to contrast for a steering vector (text only, no model).

A contrast file (``workbench/data/tasks_builtin/steering/*.json``)::

    {"name": "sentiment", "description": "...", "chat": false,
     "positive_label": "positive", "negative_label": "negative",
     "positive": ["I loved every minute of", ...], "negative": ["I hated every minute of", ...],
     "test": ["The weather today is", ...],
     "score_words": {"positive": [" great", ...], "negative": [" awful", ...]}}

``test`` holds held-out prompts for generation; ``score_words`` (optional) the words whose
presence in a generation, and whose first tokens' logits at the next position, score it.

>>> sorted(list_contrasts())
['sentiment', 'sycophancy']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..base.files import read_json_document
from .tasks import tasks_dir

__all__ = ["ContrastSet", "ContrastFileError", "load_contrast", "list_contrasts", "steering_dir"]


class ContrastFileError(ValueError):
    """A contrast file is missing a field or has one of the wrong type."""


@dataclass
class ContrastSet:
    """Two prompt sets to contrast, held-out test prompts and (optionally) words to score with."""

    name: str
    positive: list[str]
    negative: list[str]
    test: list[str] = field(default_factory=list)
    chat: bool = False
    positive_label: str = "positive"
    negative_label: str = "negative"
    description: str = ""
    score_words: dict[str, list[str]] = field(default_factory=dict)

    def __repr__(self) -> str:
        fmt = "chat" if self.chat else "text"
        return (
            f"ContrastSet({self.name!r}: {len(self.positive)} {self.positive_label} vs {len(self.negative)} "
            f"{self.negative_label} prompts, {len(self.test)} test, {fmt} format)"
        )


def steering_dir() -> Path:
    """Folder of the built-in contrast files: ``steering/`` in :func:`~workbench.data.tasks.tasks_dir`."""
    return tasks_dir() / "steering"


def list_contrasts() -> list[str]:
    return sorted(p.stem for p in steering_dir().glob("*.json"))


def _str_list(data: dict, key: str, path: str, required: bool = True, min_len: int = 1) -> list[str]:
    if key not in data:
        if required:
            raise ContrastFileError(f"{path}: missing the list {key!r} (a JSON list of prompt strings)")
        return []
    val = data[key]
    if not isinstance(val, list) or not all(isinstance(s, str) and s.strip() for s in val):
        bad = (
            val
            if not isinstance(val, list)
            else next(s for s in val if not (isinstance(s, str) and s.strip()))
        )
        raise ContrastFileError(f"{path}: {key!r} must be a list of non-empty strings; found {bad!r}")
    if len(val) < min_len:
        raise ContrastFileError(f"{path}: {key!r} needs at least {min_len} prompt(s), has {len(val)}")
    return list(val)


def load_contrast(name_or_path: str | Path) -> ContrastSet:
    """Read a contrast file: a built-in name (``"sentiment"``) or a path to a JSON file.

    Raises :class:`ContrastFileError` naming the file and the field for a malformed one.
    """
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = steering_dir() / f"{name_or_path}.json"
    if not path.exists():
        raise FileNotFoundError(f"no contrast file {name_or_path!r}; built-in ones: {list_contrasts()}")
    data = read_json_document(path, ContrastFileError)
    if not isinstance(data, dict):
        raise ContrastFileError(
            f"{path}: expected a JSON object with 'positive' and 'negative' lists, "
            f"got a {type(data).__name__}"
        )
    positive = _str_list(data, "positive", str(path))
    negative = _str_list(data, "negative", str(path))
    test = _str_list(data, "test", str(path), required=False)
    chat = data.get("chat", False)
    if not isinstance(chat, bool):
        raise ContrastFileError(f"{path}: 'chat' must be true or false, got {chat!r}")
    words = data.get("score_words", {})
    if not isinstance(words, dict) or set(words) - {"positive", "negative"}:
        raise ContrastFileError(
            f"{path}: 'score_words' must be an object with 'positive' and 'negative' word lists"
        )
    words = {k: _str_list(words, k, f"{path} score_words") for k in words}
    labels = {k: data.get(k, d) for k, d in (("positive_label", "positive"), ("negative_label", "negative"))}
    for k, v in labels.items():
        if not isinstance(v, str):
            raise ContrastFileError(f"{path}: {k!r} must be a string, got {v!r}")
    return ContrastSet(
        name=str(data.get("name", path.stem)),
        positive=positive,
        negative=negative,
        test=test,
        chat=chat,
        description=str(data.get("description", "")),
        score_words=words,
        **labels,
    )
