"""The accuracies a task gives away for free: the majority-label and chance baselines of its answers.

A classification task (few distinct answers, e.g. positive / negative) can be scored right half the
time or more by a model that ignores the query, so every accuracy of a run is reported beside them:

    majority = (count of the most common answer) / n
    chance   = 1 / (number of distinct answers)

both over the answers of the queries a run evaluates (its test queries, after any cap).  ``chance``
is the expected accuracy of a guess drawn uniformly from the task's answers; ``majority`` that of
always giving the most common one.  An open-ended task (antonyms, translations) has both near 0.

>>> b = label_baselines(["positive", "negative", "positive", "positive"])
>>> b.majority, b.chance, b.majority_label
(0.75, 0.5, 'positive')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LabelBaselines", "label_baselines"]


@dataclass(frozen=True)
class LabelBaselines:
    """The majority-label and chance accuracies of ``n`` answers with ``n_distinct`` distinct values."""

    majority: float
    chance: float
    majority_label: str
    n: int
    n_distinct: int

    def beaten_by(self, accuracy: float, margin: float = 0.0) -> bool:
        """Whether ``accuracy`` is above the majority baseline by more than ``margin``."""
        return accuracy > self.majority + margin

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabelBaselines:
        return cls(**{k: data[k] for k in ("majority", "chance", "majority_label", "n", "n_distinct")})

    def __repr__(self) -> str:
        return (
            f"LabelBaselines(majority {self.majority:.1%} ({self.majority_label!r}), "
            f"chance {self.chance:.1%}, "
            f"{self.n_distinct} distinct answers of {self.n})"
        )


def label_baselines(answers: Sequence[str]) -> LabelBaselines:
    """The majority and chance baselines of a list of answers (see the module docstring).

    Ties for the most common answer take the one seen first.
    """
    answers = list(answers)
    if not answers:
        raise ValueError("label_baselines needs at least one answer")
    counts = Counter(answers)
    label, top = counts.most_common(1)[0]
    return LabelBaselines(
        majority=top / len(answers),
        chance=1 / len(counts),
        majority_label=label,
        n=len(answers),
        n_distinct=len(counts),
    )
