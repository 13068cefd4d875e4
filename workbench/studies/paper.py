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

from ..core.heads import last_token_states
from ..core.hooks import add_vector, mean_ablate_heads, project_out, replace_last_state
from ..core.model import model_info
from ..method.evaluate import LayerSweep, accuracies, accuracy, head_count_sweep, sweep_layers
from ..method.result import TaskResult

__all__ = ["composition", "ablation", "head_count_curves", "baseline_sweeps", "HEAD_COUNTS"]

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
