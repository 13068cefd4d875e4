"""How far head scans and runs agree: seed stability, attribution against exact, many runs merged.

- :func:`compare_scans` / :func:`top_k_overlap`: rank correlation and shared top heads of two scans.
- :func:`attribution_vs_exact`: attribution patching on the very prompts of a run's exact scan.
- :func:`compare_runs`: two runs (e.g. two seeds) side by side.
- :func:`merge_results`: many runs of one model in one table, with the universal AIE map.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..base.checks import check_count
from ..base.stats import spearman
from ..core.scan import HeadScan, attribution_scan, universal_map
from ..method.pipeline import CONDITIONS
from ..method.result import ResultMismatch, TaskResult

__all__ = [
    "top_k_overlap",
    "compare_scans",
    "attribution_vs_exact",
    "compare_runs",
    "describe_comparison",
    "merge_results",
    "accuracy_key",
    "MergedRuns",
]


def top_k_overlap(a: HeadScan, b: HeadScan, k: int = 10) -> float:
    """Fraction of the top-``k`` heads two scans share (e.g. two seeds)."""
    check_count(k, a.aie.numel(), of=f"heads of the scan{f' of {a.model}' if a.model else ''}")
    ta = {(l, h) for l, h, _ in a.top_heads(k)}
    tb = {(l, h) for l, h, _ in b.top_heads(k)}
    return len(ta & tb) / k


def compare_scans(exact: HeadScan, approx: HeadScan, k: int = 10) -> dict[str, float]:
    """How far an approximate scan (e.g. attribution patching) agrees with the exact one.

    spearman: rank correlation of the two AIE maps over all heads; top_k_overlap: shared
    fraction of the top ``k``; max_abs_diff: the largest AIE difference.
    """
    a, b = exact.aie.flatten(), approx.aie.flatten()
    ok = ~(a.isnan() | b.isnan())
    return {
        "spearman": spearman(a, b),
        "top_k_overlap": top_k_overlap(exact, approx, k),
        "k": k,
        "max_abs_diff": float((a[ok] - b[ok]).abs().max()),
    }


def attribution_vs_exact(
    model, result: TaskResult, k: int | None = None, progress: bool = True
) -> tuple[HeadScan, dict[str, float]]:
    """Attribution patching on the very prompts of ``result``'s exact scan, and how well it agrees.

    Returns the attribution scan and :func:`compare_scans` of the two (rank correlation, top-``k``
    overlap, largest difference), plus ``exact_top_k_in_approx_top_2k``: how many of the exact
    top ``k`` a user would still catch by re-scanning the attribution's top ``2k`` exactly.
    ``k``: 10, or half the heads of a model with fewer than 20 (so the top ``2k`` is not all of them).
    """
    k = max(1, min(10, result.scan.aie.numel() // 2)) if k is None else k
    prompts = result.prompt_sets(model)["scan"]
    approx = attribution_scan(model, prompts, result.means.mean_z, progress=progress, task=result.task.name)
    stats = compare_scans(result.scan, approx, k)
    exact_top = {(l, h) for l, h, _ in result.scan.top_heads(k)}
    approx_top = {(l, h) for l, h, _ in approx.top_heads(2 * k)}
    stats["exact_top_k_in_approx_top_2k"] = len(exact_top & approx_top) / k
    return approx, stats


def compare_runs(a: TaskResult, b: TaskResult, k: int | None = None) -> dict[str, Any]:
    """Two runs of one model side by side: top-``k`` overlap and Spearman of their AIE maps, their
    layers and zero-shot + FV accuracies (filtered).  ``k``: 10 by default, or every head of a
    model with fewer."""
    if a.model_id != b.model_id:
        raise ResultMismatch(
            f"the two runs come from different models ({a.model} {a.model_id}, {b.model} {b.model_id})"
        )
    k = min(10, a.scan.aie.numel()) if k is None else k
    stats = compare_scans(a.scan, b.scan, k)
    return {
        **stats,
        "tasks": [a.task.name, b.task.name],
        "seeds": [a.protocol.seed, b.protocol.seed],
        "fv_layers": [a.fv_layer, b.fv_layer],
        "zero_shot_fv": [a.accuracy["zero_shot_fv"].top1, b.accuracy["zero_shot_fv"].top1],
    }


def describe_comparison(s: dict[str, Any]) -> str:
    """One line for :func:`compare_runs`'s numbers; a number that does not exist says why.

    >>> s = {"tasks": ["antonym", "antonym"], "seeds": [0, 1], "k": 8, "top_k_overlap": 0.75,
    ...      "spearman": 0.9, "fv_layers": [12, 12], "zero_shot_fv": [0.5, float("nan")]}
    >>> print(describe_comparison(s))  # doctest: +ELLIPSIS
    antonym (seed 0) vs antonym (seed 1): top-8 overlap 75%, ... 50% / n/a (no test query that clean ICL ...)
    """

    def pct(x: float) -> str:
        return "n/a (no test query that clean ICL answers right)" if x != x else f"{x:.0%}"

    rho = "n/a (a constant AIE map)" if s["spearman"] != s["spearman"] else f"{s['spearman']:.2f}"
    (ta, tb), (sa, sb), (la, lb) = s["tasks"], s["seeds"], s["fv_layers"]
    return (
        f"{ta} (seed {sa}) vs {tb} (seed {sb}): top-{s['k']} overlap {s['top_k_overlap']:.0%}, Spearman of "
        f"the AIE maps {rho}, FV layers {la} / {lb}, zero-shot + FV {pct(s['zero_shot_fv'][0])} / "
        f"{pct(s['zero_shot_fv'][1])}"
    )


@dataclass
class MergedRuns:
    """Many runs of one model: a markdown table (filtered or not), the mean row, the universal map."""

    model: str
    tasks: list[str]
    key: str  # "accuracy" (filtered) or "accuracy_unfiltered"; "answer_" before either: whole answers
    rows: list[dict[str, Any]]
    mean: dict[str, float]
    universal_aie: torch.Tensor

    def markdown(self) -> list[str]:
        """Top-1 (%) per condition, beside each task's majority-label and chance baselines."""
        head = "| task | layer | " + " | ".join(CONDITIONS) + " | majority | chance |"
        lines = [head, "|" + "---|" * (len(CONDITIONS) + 4)]
        for r in self.rows:
            lines.append(
                f"| {r['task']} | {r['layer']} | "
                + " | ".join(f"{100 * r[c]:.0f}" for c in (*CONDITIONS, "majority", "chance"))
                + " |"
            )
        lines.append(
            "| **mean** | | "
            + " | ".join(f"**{100 * self.mean[c]:.0f}**" for c in (*CONDITIONS, "majority", "chance"))
            + " |"
        )
        return lines

    def __repr__(self) -> str:
        return "\n".join(self.markdown())

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tasks": self.tasks,
            "mean": self.mean,
            "key": self.key,
            "universal_aie": self.universal_aie.tolist(),
            "table": self.markdown(),
        }


def accuracy_key(unfiltered: bool = False, whole_answer: bool = False) -> str:
    """The :class:`~workbench.method.result.TaskResult` attribute holding one metric's accuracies.

    >>> accuracy_key(), accuracy_key(unfiltered=True, whole_answer=True)
    ('accuracy', 'answer_accuracy_unfiltered')
    """
    return ("answer_" if whole_answer else "") + ("accuracy_unfiltered" if unfiltered else "accuracy")


def merge_results(
    results: Sequence[TaskResult], unfiltered: bool = False, whole_answer: bool = False
) -> MergedRuns:
    """One table of many runs of one model (each task once), and the universal AIE map.

    ``whole_answer``: each condition scored on the whole answer under teacher forcing (right when
    every answer token is the top-1), not on its first token (the paper's metric)."""
    if not results:
        raise ResultMismatch("no results to merge")
    attr = accuracy_key(unfiltered, whole_answer)
    missing = [r.task.name for r in results if getattr(r, attr) is None]
    if missing:
        raise ResultMismatch(
            f"the runs of {', '.join(missing)} hold no whole-answer scores (saved before the workbench "
            "scored whole answers); run them again, or merge without the whole-answer metric"
        )
    models = {r.model_id for r in results}
    if len(models) > 1:
        raise ResultMismatch(
            f"results come from different models {sorted({r.model for r in results})} "
            f"({len(models)} identities); merge one model at a time"
        )
    seen: dict[tuple[str, int], int] = {}
    for i, r in enumerate(results):
        key = (r.task.digest, r.protocol.seed)
        if key in seen:
            raise ResultMismatch(
                f"results {seen[key]} and {i} are the same task ({r.task.name}, seed "
                f"{r.protocol.seed}); each run may be merged once"
            )
        seen[key] = i
    rows = [
        {
            "task": r.task.name,
            "layer": r.fv_layer,
            **{c: getattr(r, attr)[c].top1 for c in CONDITIONS},
            "majority": r.baselines.majority,
            "chance": r.baselines.chance,
        }
        for r in results
    ]
    mean = {c: sum(row[c] for row in rows) / len(rows) for c in (*CONDITIONS, "majority", "chance")}
    return MergedRuns(
        results[0].model,
        [r.task.name for r in results],
        attr,
        rows,
        mean,
        universal_map([r.scan.aie for r in results]),
    )
