"""Values from users, checked in one place per kind: layers, finite numbers, seeds, JSON forms.

Every entry point (the CLI, the ``wb.`` functions, the vector methods) calls these, so a value is
refused the same way, with the same sentence, wherever it comes in.  A wrong number with no error
is the worst outcome, so nothing here guesses: a negative layer is not counted from the end, and a
NaN scale is not passed on.

>>> check_layer(1, 2)
1
>>> check_layer(-1, 30)
Traceback (most recent call last):
...
workbench.base.checks.OutOfRange: layer -1 is negative: layers count from 0 (after the first block); ...
>>> check_finite([0.5, float("nan")], "alphas")
Traceback (most recent call last):
...
workbench.base.checks.NotFinite: alphas must be finite numbers, got nan
>>> json_form({"heads": ((1, 2),), 3: None})
{'heads': [[1, 2]], '3': None}
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any

__all__ = [
    "OutOfRange",
    "NotFinite",
    "BadSeed",
    "check_layer",
    "check_count",
    "check_finite",
    "check_seed",
    "json_form",
    "SEED_LIMIT",
]

SEED_LIMIT = 2**64  # torch.manual_seed and numpy take seeds below this


class OutOfRange(IndexError):
    """A layer or head number the model (or the vector's model) does not have."""


class NotFinite(ValueError):
    """A NaN or infinite number where a real number is needed (a scale, a vector's values)."""


class BadSeed(ValueError):
    """A seed that is not a whole number from 0 to 2**64 - 1."""


def check_layer(
    layer: Any, n_layers: int | None = None, owner: str = "the model", what: str = "layer"
) -> int:
    """``layer`` as an int if it is a layer of a model with ``n_layers`` layers (unknown: any
    ``layer >= 0``); else :class:`OutOfRange` naming the valid range.  Negative layers are refused,
    not counted from the end: a ``-1`` typed by mistake must not become the last layer."""
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        if isinstance(layer, float) and layer.is_integer():
            layer = int(layer)
        else:
            raise OutOfRange(f"{what} must be a whole number, got {type(layer).__name__} {layer!r}.")
    layer = int(layer)
    span = f"0..{n_layers - 1}" if n_layers else "0 or more"
    if layer < 0:
        raise OutOfRange(
            f"{what} {layer} is negative: layers count from 0 (after the first block); "
            f"{owner} takes {span}. Negative layers are not counted from the end."
        )
    if n_layers is not None and layer >= n_layers:
        raise OutOfRange(f"{what} {layer} is out of range: {owner} has {n_layers} layers ({span}).")
    return layer


def check_count(k: Any, most: int, what: str = "k", of: str = "heads") -> int:
    """``k`` if it is a whole number from 1 to ``most`` (say, heads in a set of a model's heads),
    else :class:`OutOfRange`: a top-500 of 8 heads is not an overlap of anything.

    >>> check_count(500, 8, of="heads of tiny-llama")
    Traceback (most recent call last):
    ...
    workbench.base.checks.OutOfRange: k 500 is more than the 8 heads of tiny-llama; choose 1..8
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise OutOfRange(f"{what} must be a whole number of at least 1, got {k!r}")
    if k > most:
        raise OutOfRange(f"{what} {k} is more than the {most} {of}; choose 1..{most}")
    return int(k)


def check_finite(value: Any, what: str = "the value") -> Any:
    """``value`` (a number, a sequence of numbers, or a tensor) if every number in it is finite;
    else :class:`NotFinite` naming ``what``."""
    if hasattr(value, "isfinite") and hasattr(value, "all"):  # a tensor
        if not bool(value.isfinite().all()):
            raise NotFinite(f"{what} holds NaN or infinite values; it cannot be used.")
        return value
    numbers_ = list(value) if isinstance(value, list | tuple) else [value]
    for x in numbers_:
        try:
            ok = math.isfinite(float(x))
        except (TypeError, ValueError):
            raise NotFinite(f"{what} must be numbers, got {type(x).__name__} {x!r}") from None
        if not ok:
            raise NotFinite(f"{what} must be finite numbers, got {x!r}")
    return value


def check_seed(seed: Any) -> int:
    """``seed`` if it is a whole number from 0 to 2**64 - 1 (what the random generators take)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < SEED_LIMIT:
        raise BadSeed(f"seed must be a whole number from 0 to 2**64 - 1, got {seed!r}")
    return int(seed)


def json_form(value: Any) -> Any:
    """``value`` as it reads back from JSON: tuples become lists, dict keys strings.

    The one normalisation of saved values: an in-memory value and its saved copy compare equal
    after it (and only after it).  Anything JSON cannot hold is a ``TypeError``.
    """
    return json.loads(json.dumps(value, allow_nan=True))
