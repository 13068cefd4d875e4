"""Studies of the paper on finished runs: composition, ablation, head-count curves, baselines.

Each takes :class:`~workbench.method.result.TaskResult` objects (from :func:`run_task`) and the
model they were made on, draws its prompts from the run's own prompt sets (so its split, seed
and queries are the run's), and returns plain dicts that the figures module draws.  Composition
follows the paper's section 3.3 (sum the FVs of simple tasks to trigger a composed one); the
ablation checks that the FV heads matter for ICL itself.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from ..core.heads import last_token_states
from ..core.hooks import add_vector, mean_ablate_heads, project_out, replace_last_state
from ..core.model import model_info
from ..method.evaluate import Accuracy, LayerSweep, accuracies, accuracy, head_count_sweep, sweep_layers
from ..method.result import TaskResult
from ..method.vectors import FunctionVector

__all__ = [
    "composition",
    "ablation",
    "head_count_curves",
    "baseline_sweeps",
    "find_minimal_heads",
    "MinimalHeads",
    "HEAD_COUNTS",
]

HEAD_COUNTS = (0, 1, 2, 3, 5, 8, 10, 15, 20, 30, 40)


def composition(model, composed: TaskResult, parts: Sequence[TaskResult]) -> dict[str, float]:
    """Top-1 accuracy on the composed task's test queries, triggered in different ways.

    icl: clean prompts; zero_shot: nothing; own_fv: the composed task's own FV; sum_of_parts: the
    sum of the parts' FVs (e.g. choose-first + capitalize), all added at the composed task's FV
    layer; ``part i only``: each part's FV alone, for reference.
    """
    sets = composed.prompt_sets(model)
    for part in parts:
        part.check_model(model)
    layer, zero = composed.fv_layer, sets["test_zero_shot"]
    total = parts[0].fv
    for p in parts[1:]:
        total = total + p.fv
    triggers = {
        "zero_shot": None,
        "own_fv": add_vector(model, layer, composed.fv.vector),
        "sum_of_parts": add_vector(model, layer, total.vector),
    }
    for i, p in enumerate(parts, 1):
        triggers[f"part {i} only"] = add_vector(model, layer, p.fv.vector)
    accs = accuracies(model, zero, triggers)  # the zero-shot prefixes once, each trigger a variant
    return {"icl": accuracy(model, sets["test_icl"]).top1, **{name: a.top1 for name, a in accs.items()}}


def ablation(model, result: TaskResult, n_random: int = 5) -> dict[str, float]:
    """Clean ICL accuracy on the test split with the FV heads knocked out, against controls.

    top_heads: the FV's heads mean-ablated at the last token; random_heads: as many random heads
    (mean over ``n_random`` draws seeded by the run's seed, excluding the FV heads);
    fv_projected_out: the FV direction removed from the last-token residual after every layer.
    """
    icl = result.prompt_sets(model)["test_icl"]
    mean_z = result.means.mean_z
    info = model_info(model)
    heads = list(result.fv.heads)
    others = [(l, h) for l in range(info.n_layers) for h in range(info.n_heads) if (l, h) not in heads]
    rng = random.Random(result.protocol.seed)
    knockouts = {
        "none": None,
        "top_heads": mean_ablate_heads(model, heads, mean_z),
        **{
            ("random", i): mean_ablate_heads(model, rng.sample(others, len(heads)), mean_z)
            for i in range(n_random)
        },
        "fv_projected_out": project_out(model, result.fv.vector),
    }
    accs = accuracies(model, icl, knockouts)  # the ICL prefixes once, each knockout a variant
    random_acc = [accs[("random", i)].top1 for i in range(n_random)]
    return {
        "none": accs["none"].top1,
        "top_heads": accs["top_heads"].top1,
        "random_heads": sum(random_acc) / len(random_acc),
        "random_heads_min": min(random_acc),
        "fv_projected_out": accs["fv_projected_out"].top1,
    }


def head_count_curves(
    model, result: TaskResult, counts: Sequence[int] = HEAD_COUNTS, progress: bool = True
) -> dict[str, dict[int, float]]:
    """Zero-shot and shuffled test accuracy (unfiltered) as the FV sums more top heads, at the run's
    layer.  At ``k = len(result.fv.heads)`` it reproduces the run's own ``zero_shot_fv`` and
    ``shuffled_fv`` (for an uncentred FV)."""
    sets = result.prompt_sets(model)
    counts = [k for k in counts if k <= model_info(model).n_total_heads]
    return {
        name: {
            k: a.top1
            for k, a in head_count_sweep(
                model,
                result.means,
                result.scan,
                result.fv_layer,
                sets[f"test_{name}"],
                counts,
                result.protocol.alpha,
                progress=progress,
            ).items()
        }
        for name in ("zero_shot", "shuffled")
    }


def baseline_sweeps(model, result: TaskResult, progress: bool = True) -> dict[str, LayerSweep]:
    """The two baselines at every layer, on the zero-shot test prompts.

    mean state: the mean clean last-token residual of that layer, added there.
    task vector (Hendel et al.): the last-token residual of a clean ICL prompt about a train
    query, written over the zero-shot prompt's last state at that layer.
    """
    sets = result.prompt_sets(model)
    states = last_token_states(model, sets["donors"], list(range(model_info(model).n_layers)))
    prompt_sets = {"zero_shot": sets["test_zero_shot"]}
    return {
        "mean state": sweep_layers(
            model,
            prompt_sets,
            lambda l: add_vector(model, l, result.means.mean_resid[l]),
            progress=progress and "mean-state sweep",
        ),
        "task vector": sweep_layers(
            model,
            prompt_sets,
            lambda l: replace_last_state(model, l, states[l]),
            progress=progress and "task-vector sweep",
        ),
    }


@dataclass
class MinimalHeads:
    """The smallest head set found whose FV keeps ``share`` of a reference accuracy.

    heads: the set (in AIE order); valid: its zero-shot top-1 on the validation queries (where
    it was chosen); test: on the test queries clean ICL gets right (reported, never used to
    choose); reference: the accuracy the share is of; target = share * reference; reached: whether
    any set of up to ``max_heads`` heads got there; curve: valid accuracy of each AIE prefix tried.
    """

    heads: list[tuple[int, int]]
    valid: float
    test: float
    reference: float
    share: float
    reached: bool
    curve: dict[int, float] = field(default_factory=dict)

    @property
    def target(self) -> float:
        return self.share * self.reference

    def __repr__(self) -> str:
        heads = ", ".join(f"L{l}H{h}" for l, h in self.heads)
        state = "reached" if self.reached else "NOT reached (best prefix shown)"
        return (
            f"MinimalHeads({len(self.heads)} heads [{heads}]: valid zero-shot {self.valid:.0%} against "
            f"the target {self.share:.0%} x {self.reference:.0%} = {self.target:.0%}, {state}; "
            f"test {self.test:.0%})"
        )


def find_minimal_heads(
    model,
    result: TaskResult,
    share: float = 0.8,
    of: str = "icl",
    max_heads: int = 40,
    prune: bool = True,
    progress: bool = True,
) -> MinimalHeads:
    """The fewest heads whose FV (added at the run's layer) keeps ``share`` of the task's accuracy.

    Chosen on the validation split: the reference is clean 10-shot ICL on the valid queries
    (``of="icl"``) or the run's own FV zero-shot there (``of="fv"``).  First the shortest prefix
    of the AIE ranking that reaches ``share * reference``; then (``prune``) heads are dropped, the
    weakest first and in repeated passes, while the rest still reach the target, so that no single
    head of the result can go.  The chosen set's test accuracy
    (filtered to queries clean ICL gets right, as ``result.accuracy``) is reported alongside.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    if of not in ("icl", "fv"):
        raise ValueError(f"of must be 'icl' or 'fv', got {of!r}")
    sets = result.prompt_sets(model)
    valid = sets["valid_zero_shot"]
    layer, alpha = result.fv_layer, result.protocol.alpha

    def acc(heads, prompts=valid) -> Accuracy:
        fv = FunctionVector.from_heads(result.means, heads, model)
        return accuracy(model, prompts, add_vector(model, layer, fv.vector, alpha) if heads else None)

    reference = (accuracy(model, sets["valid_icl"]) if of == "icl" else acc(result.fv.heads)).top1
    target = share * reference
    ranked = [(l, h) for l, h, _ in result.scan.top_heads(min(max_heads, model_info(model).n_total_heads))]
    curve: dict[int, float] = {}
    chosen = ranked
    for k in tqdm(range(1, len(ranked) + 1), desc="minimal heads", disable=not progress, leave=False):
        curve[k] = acc(ranked[:k]).top1
        if curve[k] >= target:
            chosen = ranked[:k]
            break
    reached = bool(curve) and max(curve.values()) >= target
    if not reached:
        best = max(curve, key=lambda k: (curve[k], -k))
        chosen = ranked[:best]
    elif prune:  # drop heads, the weakest first, until none can go without missing the target
        dropped = True
        while dropped:
            dropped = False
            for head in reversed(list(chosen)):
                rest = [x for x in chosen if x != head]
                if rest and acc(rest).top1 >= target:
                    chosen, dropped = rest, True
    test = acc(chosen, sets["test_zero_shot"])
    right = result.icl_correct
    test_ranks = test.ranks[right] if right.numel() == test.ranks.numel() else test.ranks
    return MinimalHeads(
        list(chosen),
        acc(chosen).top1,
        Accuracy(test_ranks).top1 if test_ranks.numel() else float("nan"),
        reference,
        share,
        reached,
        curve,
    )
