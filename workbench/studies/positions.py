"""Where the FV is added: the last position (the workbench, the paper) or every position (llama.cpp).

A llama.cpp control vector is added to every position of a layer's output
(:mod:`workbench.beyond.export`).  :func:`every_position_effect` measures what that does to a
run's FV: test accuracy (zero-shot and shuffled labels, every test query, unfiltered) with the FV
added after the run's layer at the last position only, at every position (BOS included, as
llama.cpp does), and at every position after BOS, for a few scales.  Every-position
interventions change the prefix, so they run as plain forwards (one per condition), not as
last-token variants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..base.checks import check_finite
from ..core.hooks import add_vector
from ..method.evaluate import accuracies, accuracy
from ..method.result import TaskResult
from .study import Param, Study, StudyContext, StudyRecord

__all__ = ["every_position_effect", "PositionEffect", "STUDY", "WHERE"]

WHERE = ("last", "every", "every_after_bos")


def every_position_effect(
    model, result: TaskResult, alphas: Sequence[float] = (0.5, 1.0, 2.0), progress: bool = False
) -> dict:
    """``{set: {"none": acc, "last": {alpha: acc}, "every": {...}, "every_after_bos": {...}}}``
    (top-1, every test query) for set in ``zero_shot`` and ``shuffled``, plus ``n`` per set."""
    check_finite(alphas, "alphas")
    sets = result.prompt_sets(model)
    layer, v = result.fv_layer, result.fv.vector
    out: dict = {"layer": layer, "alphas": list(alphas)}
    for name in ("zero_shot", "shuffled"):
        prompts = sets[f"test_{name}"]
        has_bos = all(p.ids and p.ids[0] == model.tokenizer.bos_token_id for p in prompts)
        last = accuracies(
            model, prompts, {"none": None, **{a: add_vector(model, layer, v, a) for a in alphas}}
        )
        row: dict = {
            "n": len(prompts),
            "none": last["none"].top1,
            "last": {},
            "every": {},
            "every_after_bos": {},
        }
        for a in alphas:
            row["last"][str(a)] = last[a].top1
            row["every"][str(a)] = accuracy(
                model, prompts, add_vector(model, layer, v, a, from_position=0)
            ).top1
            start = 1 if has_bos else 0
            row["every_after_bos"][str(a)] = accuracy(
                model, prompts, add_vector(model, layer, v, a, from_position=start)
            ).top1
        out[name] = row
    return out


@dataclass(repr=False)
class PositionEffect(StudyRecord):
    """:func:`every_position_effect` of one run: ``zero_shot`` and ``shuffled`` are
    ``{"n", "none": acc, "last" | "every" | "every_after_bos": {str(alpha): acc}}`` (top-1)."""

    layer: int
    alphas: list[float]
    zero_shot: dict
    shuffled: dict

    def accuracy(self, prompts: str, where: str, alpha: float | None = None) -> float | None:
        """Top-1 on ``prompts`` (``zero_shot`` | ``shuffled``) with the FV added ``where`` (one of
        :data:`WHERE`, or ``none``) at ``alpha`` (``None`` where that scale was not measured)."""
        row = getattr(self, prompts)
        return row["none"] if where == "none" else row[where].get(str(alpha))


def _compute(ctx: StudyContext, run: TaskResult) -> PositionEffect:
    return PositionEffect.from_dict(every_position_effect(ctx.model, run, ctx.params["alphas"]))


STUDY = Study(
    name="positions",
    summary="the FV added at the last position against every position (as a llama.cpp control vector)",
    record=PositionEffect,
    compute=_compute,
    params=(Param("alphas", float, (0.5, 1.0, 2.0), "the FV's scales", many="+", metavar="A"),),
)
