"""Studies built on finished runs: composition, ablation, seed stability, head-count curves.

Each takes :class:`~workbench.pipeline.TaskResult` objects (from :func:`run_task`) and the model,
measures on the test split of the task in question, and returns plain dicts that the figures
module draws.  Composition follows the paper's section 3.3 (sum the FVs of simple tasks to
trigger a composed one); the ablation checks that the FV heads matter for ICL itself.
"""

from __future__ import annotations

import random
from typing import Sequence

from .evaluate import LayerSweep, accuracy, head_count_sweep, layer_sweep, sweep_layers
from .intervene import add_vector, mean_ablate_heads, project_out, replace_last_state
from .models import model_info
from .activations import last_token_states
from .pipeline import TaskResult, encode, extraction_queries, scan_prompts, task_vector_donors, zero_shot_head_means
from .prompts import sample_prompts
from .scan import HeadScan, attribution_scan
from .stats import spearman
from tqdm.auto import tqdm

from .tasks import Task, load_task

__all__ = ["composition", "ablation", "top_k_overlap", "compare_scans", "attribution_vs_exact", "head_count_curves",
           "baseline_sweeps", "injection_diagnostics", "head_count_grid", "state_tests"]


def composition(model, composed: TaskResult, parts: Sequence[TaskResult], n_shot: int = 10, seed: int = 0) -> dict[str, float]:
    """Top-1 accuracy on the composed task's test queries, triggered in different ways.

    icl: clean ``n_shot`` prompts; zero_shot: nothing; own_fv: the composed task's own FV;
    sum_of_parts: the sum of the parts' FVs (e.g. choose-first + capitalize), all added at the
    composed task's FV layer; ``part i only``: each part's FV alone, for reference.
    """
    split = load_task(composed.task).split(seed)
    layer = composed.fv_layer
    zero = encode(model, sample_prompts(split, None, 0, "zero_shot", "test"))
    total = parts[0].fv
    for p in parts[1:]:
        total = total + p.fv
    out = {
        "icl": accuracy(model, encode(model, sample_prompts(split, None, n_shot, "icl", "test", seed=seed + 5))).top1,
        "zero_shot": accuracy(model, zero).top1,
        "own_fv": accuracy(model, zero, add_vector(model, layer, composed.fv.vector)).top1,
        "sum_of_parts": accuracy(model, zero, add_vector(model, layer, total.vector)).top1,
    }
    for i, p in enumerate(parts, 1):
        out[f"part {i} only"] = accuracy(model, zero, add_vector(model, layer, p.fv.vector)).top1
    return out


def ablation(model, result: TaskResult, n_random: int = 5, n_shot: int = 10, seed: int = 0) -> dict[str, float]:
    """Clean ICL accuracy on the test split with the FV heads knocked out, against controls.

    top_heads: the FV's heads mean-ablated at the last token; random_heads: as many random heads
    (mean over ``n_random`` draws, excluding the FV heads); fv_projected_out: the FV direction
    removed from the last-token residual after every layer.
    """
    split = load_task(result.task).split(seed)
    icl = encode(model, sample_prompts(split, None, n_shot, "icl", "test", seed=seed + 5))
    mean_z = result.means.mean_z
    info = model_info(model)
    heads = list(result.fv.heads)
    others = [(l, h) for l in range(info.n_layers) for h in range(info.n_heads) if (l, h) not in heads]
    rng = random.Random(seed)
    random_acc = [accuracy(model, icl, mean_ablate_heads(model, rng.sample(others, len(heads)), mean_z)).top1
                  for _ in range(n_random)]
    return {
        "none": accuracy(model, icl).top1,
        "top_heads": accuracy(model, icl, mean_ablate_heads(model, heads, mean_z)).top1,
        "random_heads": sum(random_acc) / len(random_acc),
        "random_heads_min": min(random_acc),
        "fv_projected_out": accuracy(model, icl, project_out(model, result.fv.vector)).top1,
    }


def top_k_overlap(a: HeadScan, b: HeadScan, k: int = 10) -> float:
    """Fraction of the top-``k`` heads two scans share (e.g. two seeds)."""
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
    return {"spearman": spearman(a, b), "top_k_overlap": top_k_overlap(exact, approx, k), "k": k,
            "max_abs_diff": float((a[ok] - b[ok]).abs().max())}


def attribution_vs_exact(model, result: TaskResult, k: int = 10, progress: bool = True,
                         task: Task | None = None) -> tuple[HeadScan, dict[str, float]]:
    """Attribution patching on the very prompts of ``result``'s exact scan, and how well it agrees.

    Returns the attribution scan and :func:`compare_scans` of the two (rank correlation, top-``k``
    overlap, largest difference), plus ``exact_top_k_in_approx_top_2k``: how many of the exact
    top ``k`` a user would still catch by re-scanning the attribution's top ``2k`` exactly.
    ``task`` is needed only when the run's task is not a built-in one.
    """
    task = task or load_task(result.task)
    p = result.protocol
    pool, _ = extraction_queries(model, task, p)
    prompts = scan_prompts(model, task.split(seed=p.seed), pool, p)
    approx = attribution_scan(model, prompts, result.means.mean_z, progress=progress, task=task.name)
    stats = compare_scans(result.scan, approx, k)
    exact_top = {(l, h) for l, h, _ in result.scan.top_heads(k)}
    approx_top = {(l, h) for l, h, _ in approx.top_heads(2 * k)}
    stats["exact_top_k_in_approx_top_2k"] = len(exact_top & approx_top) / k
    return approx, stats


def head_count_curves(model, result: TaskResult, counts: Sequence[int] = (0, 1, 2, 3, 5, 8, 10, 15, 20, 30, 40),
                      seed: int = 0, progress: bool = True) -> dict[str, dict[int, float]]:
    """Zero-shot and shuffled test accuracy as the FV sums more top heads (at the run's layer)."""
    split = load_task(result.task).split(seed)
    sets = {"zero_shot": encode(model, sample_prompts(split, None, 0, "zero_shot", "test")),
            "shuffled": encode(model, sample_prompts(split, None, 10, "shuffled", "test", seed=seed + 6))}
    counts = [k for k in counts if k <= model_info(model).n_total_heads]
    return {name: {k: a.top1 for k, a in head_count_sweep(model, result.means, result.scan, result.fv_layer, prompts,
                                                          counts, progress=progress).items()}
            for name, prompts in sets.items()}


def baseline_sweeps(model, result: TaskResult, seed: int = 0,
                    progress: bool = True) -> dict[str, LayerSweep]:
    """The two baselines at every layer, on the zero-shot test prompts.

    mean state: the mean clean last-token residual of that layer, added there.
    task vector (Hendel et al.): the last-token residual of a clean ICL prompt about a train
    query, written over the zero-shot prompt's last state at that layer.
    """
    split = load_task(result.task).split(seed)
    zero = encode(model, sample_prompts(split, None, 0, "zero_shot", "test"))
    donors = task_vector_donors(model, split, len(zero), result.protocol)
    states = last_token_states(model, donors, list(range(model_info(model).n_layers)))
    sets = {"zero_shot": zero}
    return {
        "mean state": sweep_layers(model, sets, lambda l: add_vector(model, l, result.means.mean_resid[l]),
                                   progress=progress and "mean-state sweep"),
        "task vector": sweep_layers(model, sets, lambda l: replace_last_state(model, l, states[l]),
                                    progress=progress and "task-vector sweep"),
    }


def injection_diagnostics(model, result: TaskResult, alphas: Sequence[float] = (0.5, 1, 2, 4, 8, 16),
                          seed: int = 0, progress: bool = True) -> dict:
    """Why does (or doesn't) the FV work zero-shot?  Size against the residual, scale, and a ceiling.

    On the zero-shot test prompts (all test queries, unfiltered), for every layer ``L``:

    - ``norm_ratio[L]``: ``|FV| / mean |resid_L|`` at the last token, how big the FV is beside
      the stream it is added to;
    - ``zero_shot[a][L]``: top-1 accuracy with ``alphas[a] * FV`` added after ``L``;
    - ``task_vector[L]`` / ``mean_state[L]``: the two baselines (:func:`baseline_sweeps`).  The
      task vector overwrites the whole last-token state with a clean ICL prompt's, so it is a
      ceiling for any single-position intervention at that layer.
    """
    split = load_task(result.task).split(seed)
    zero = encode(model, sample_prompts(split, None, 0, "zero_shot", "test"))
    n_layers = model_info(model).n_layers
    resid = last_token_states(model, zero, list(range(n_layers)))  # [layer, prompt, d_model]
    resid_norm = resid.norm(dim=-1).mean(-1)
    grid = [layer_sweep(model, result.fv.vector, {"zero_shot": zero}, alpha=a, progress=progress and f"alpha {a}")
            for a in alphas]
    base = baseline_sweeps(model, result, seed, progress)
    return {
        "model": model_info(model).name, "task": result.task, "n_prompts": len(zero), "fv_layer": result.fv_layer,
        "heads": [list(h) for h in result.fv.heads], "layers": list(range(n_layers)), "alphas": list(alphas),
        "fv_norm": result.fv.norm, "resid_norm": resid_norm.tolist(), "norm_ratio": (result.fv.norm / resid_norm).tolist(),
        "zero_shot": [[a.top1 for a in g.results["zero_shot"]] for g in grid],
        "baseline_zero_shot": grid[0].baseline["zero_shot"].top1,
        "task_vector": [a.top1 for a in base["task vector"].results["zero_shot"]],
        "mean_state": [a.top1 for a in base["mean state"].results["zero_shot"]],
    }


def head_count_grid(model, result: TaskResult, counts: Sequence[int], layers: Sequence[int] | None = None,
                    seed: int = 0, centered: bool = False, progress: bool = True) -> dict:
    """Zero-shot test accuracy (unfiltered) with the FV of the top ``k`` heads added after layer
    ``L``, for every ``k`` in ``counts`` and ``L`` in ``layers``: does the task need more heads?

    ``centered=True`` subtracts from each head's clean mean output its mean output on zero-shot
    prompts (train queries): ``FV_c = sum_h (mean_out_icl[h] - mean_out_zero[h])``, which keeps
    what ICL changes in a head's output and drops what the head writes on any prompt.
    """
    split = load_task(result.task).split(seed)
    zero = encode(model, sample_prompts(split, None, 0, "zero_shot", "test"))
    info = model_info(model)
    layers = list(range(info.n_layers)) if layers is None else list(layers)
    counts = [k for k in counts if 0 < k <= info.n_total_heads]
    means = result.means
    if centered:
        means = means.centered(zero_shot_head_means(model, split, progress=False))
    by_layer = [head_count_sweep(model, means, result.scan, layer, zero, counts, progress=False)
                for layer in tqdm(layers, desc="head counts x layers", disable=not progress, leave=False)]
    return {"counts": counts, "layers": layers, "centered": centered,
            "zero_shot": [[by_layer[i][k].top1 for i in range(len(layers))] for k in counts]}


def state_tests(model, result: TaskResult, layers: Sequence[int] | None = None, seed: int = 0,
                progress: bool = True) -> dict:
    """Add or replace?  Zero-shot test accuracy (unfiltered) at each layer with the last state

    - ``replace_mean_icl``: overwritten by the MEAN clean ICL last state (Hendel's task vector
      uses one ICL prompt's state per query; this uses their mean, the same for every query);
    - ``add_icl_minus_zero``: shifted by ``mean ICL state - mean zero-shot state`` (the two
      prompt sets' difference, i.e. a contrastive steering vector between ICL and zero-shot).

    If replacing works where adding the FV (or the mean state) does not, the zero-shot prompt's
    own state is what resists, not a lack of task information in the added vector.
    """
    split = load_task(result.task).split(seed)
    zero = encode(model, sample_prompts(split, None, 0, "zero_shot", "test"))
    layers = list(range(model_info(model).n_layers)) if layers is None else list(layers)
    donors = task_vector_donors(model, split, len(zero), result.protocol)
    icl_mean = last_token_states(model, donors, layers).mean(1)  # [layer, d_model]
    zero_mean = last_token_states(model, zero, layers).mean(1)
    out: dict = {"layers": layers, "replace_mean_icl": [], "add_icl_minus_zero": []}
    for i, layer in enumerate(tqdm(layers, desc="state tests", disable=not progress, leave=False)):
        same = icl_mean[i].expand(len(zero), -1)
        out["replace_mean_icl"].append(accuracy(model, zero, replace_last_state(model, layer, same)).top1)
        out["add_icl_minus_zero"].append(accuracy(model, zero, add_vector(model, layer, icl_mean[i] - zero_mean[i])).top1)
    return out
