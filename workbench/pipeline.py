"""One task end to end, following the paper's protocol, with every expensive stage cached.

    split -> filter valid queries -> mean head activations -> head scan -> FV (top-k heads)
          -> choose the layer (sweep on valid) -> evaluate on test -> TaskResult

The CLI, the notebooks, the figures and the benchmarks call :func:`run_task`; nothing else
strings these stages together.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .activations import HeadMeans, last_token_states, mean_head_activations
from .cache import StageCache, write_json
from .evaluate import (Accuracy, LayerSweep, accuracy, layer_sweep, natural_text_accuracy,
                       portability_accuracy)
from .intervene import add_vector, replace_last_state
from .models import model_info
from .prompts import NATURAL_TEMPLATES, EncodedPrompt, encode_prompts, sample_prompts
from .scan import HeadScan, scan_heads
from .tasks import Pair, Task, load_task
from .vectors import FunctionVector, default_top_k, package_versions

__all__ = ["Protocol", "TaskResult", "run_task", "encode", "evaluate_conditions", "extraction_queries", "scan_prompts",
           "task_vector_donors", "zero_shot_head_means"]


@dataclass(frozen=True)
class Protocol:
    """The counts and choices of one run (defaults: the paper's)."""

    n_shot: int = 10
    n_mean_prompts: int = 100
    n_scan_prompts: int = 25
    top_k: int | None = None  # None: default_top_k(model)
    layer: int | None = None  # None: chosen by `layer_rule`
    layer_rule: str = "sweep"  # "sweep": best on valid; "third": the paper's n_layers // 3
    sweep_layers: bool = False  # also report the full test-split layer sweep
    natural_text: bool = False  # also score greedy generations from natural-text templates
    portability: bool = False  # also score zero-shot prompts in other formats
    n_extra_queries: int = 20  # test queries used by the two evaluations above
    alpha: float = 1.0
    center: bool = False  # subtract each head's mean output on zero-shot prompts from the FV's terms
    filter_correct: bool = True  # use only queries clean ICL answers right (paper)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskResult:
    """Everything one run produced; ``to_json()`` is the CLI's ``result.json``."""

    model: str
    task: str
    protocol: Protocol
    means: HeadMeans
    scan: HeadScan
    fv: FunctionVector
    fv_layer: int
    accuracy: dict[str, Accuracy]  # filtered test queries
    accuracy_unfiltered: dict[str, Accuracy]
    valid_sweep: LayerSweep | None = None
    test_sweep: LayerSweep | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        info_aie = self.scan.aie
        out = {
            "model": self.model,
            "task": self.task,
            "n_layers": int(info_aie.shape[0]),
            "n_heads": int(info_aie.shape[1]),
            "aie": torch.nan_to_num(info_aie).tolist(),
            "aie_sem": torch.nan_to_num(self.scan.sem).tolist(),
            "top_heads": [[l, h, v] for l, h, v in self.scan.top_heads(len(self.fv.heads))],
            "fv_layer": self.fv_layer,
            "fv_norm": self.fv.norm,
            "accuracy": {k: v.top1 for k, v in self.accuracy.items()},
            "accuracy_unfiltered": {k: v.top1 for k, v in self.accuracy_unfiltered.items()},
            "accuracy_detail": {k: v.to_dict() for k, v in self.accuracy.items()},
            "accuracy_unfiltered_detail": {k: v.to_dict() for k, v in self.accuracy_unfiltered.items()},
            "protocol": self.protocol.to_dict(),
            "notes": self.notes,
            "versions": package_versions(),
        }
        if self.valid_sweep is not None:
            out["valid_layer_sweep"] = self.valid_sweep.to_dict()
        if self.test_sweep is not None:
            out["layer_sweep"] = self.test_sweep.to_dict()
        return out

    def table(self) -> str:
        rows = [f"{'condition':<14}{'filtered':>10}{'unfiltered':>12}"]
        for k in self.accuracy:
            rows.append(f"{k:<14}{self.accuracy[k].top1:>10.1%}{self.accuracy_unfiltered[k].top1:>12.1%}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        return f"TaskResult({self.model} / {self.task}, FV at layer {self.fv_layer}, {len(self.fv.heads)} heads)\n{self.table()}"

    def save(self, out_dir: str | Path) -> Path:
        """Write ``result.json`` and ``function_vector.safetensors`` into ``out_dir`` (atomically)."""
        out_dir = Path(out_dir)
        self.fv.save(out_dir / "function_vector.safetensors")
        write_json(out_dir / "result.json", self.to_json())
        return out_dir


def encode(model, prompts) -> list[EncodedPrompt]:
    """Encode prompts for ``model``, warning about (and dropping) answers that cannot be scored."""
    enc, skipped = encode_prompts(model.tokenizer, prompts, model_info(model).bos_id)
    if skipped:
        warnings.warn(f"{len(skipped)} of {len(prompts)} prompts dropped: {skipped[0][1]}", stacklevel=2)
    return enc


def _task_digest(task: Task) -> str:
    blob = json.dumps([[p.input, p.output] for p in task.pairs]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def run_task(model, task: Task | str, protocol: Protocol = Protocol(), cache: StageCache | None = None,
             progress: bool = True) -> TaskResult:
    """Run the function-vector protocol for one task on one model."""
    task = load_task(task) if not isinstance(task, Task) else task
    info = model_info(model)
    cache = cache or StageCache()
    p = protocol
    if p.layer is not None:
        info.check_layer(p.layer)  # fail before any expensive stage
    key = {"model": info.name, "task": _task_digest(task), "seed": p.seed, "n_shot": p.n_shot,
           "filter": p.filter_correct}
    split = task.split(seed=p.seed)
    notes: dict[str, Any] = {"n_pairs": len(task), "split": [len(split.train), len(split.valid), len(split.test)]}

    # 1. Which valid queries does clean ICL answer right?  (used for extraction)
    pool, valid_top1 = extraction_queries(model, task, p, cache)
    notes["valid_icl_top1"] = valid_top1
    notes["extraction_queries"] = len(pool)

    # 2. Mean head activations over clean prompts.
    def compute_means():
        clean = encode(model, sample_prompts(split, p.n_mean_prompts, p.n_shot, "icl", seed=p.seed + 1, query_pairs=pool))
        return mean_head_activations(model, clean, progress=progress).to_tensors()

    means = HeadMeans.from_tensors(cache.get_or_compute("means", {**key, "n": p.n_mean_prompts}, compute_means))

    # 3. Causal indirect effect of every head on shuffled-label prompts.
    def compute_scan():
        return scan_heads(model, scan_prompts(model, split, pool, p), means.mean_z, progress=progress,
                          task=task.name).to_tensors()

    scan = HeadScan.from_tensors(cache.get_or_compute("scan", {**key, "n": p.n_scan_prompts, "n_means": p.n_mean_prompts}, compute_scan),
                                 model=info.name, task=task.name)

    # 4. The function vector (optionally centred on the heads' zero-shot outputs).
    k = p.top_k or default_top_k(info.n_total_heads)
    heads = [(l, h) for l, h, _ in scan.top_heads(k)]
    fv_means = means
    if p.center:
        zero = HeadMeans.from_tensors(cache.get_or_compute(
            "zero_shot_means", {**key, "filter": None}, lambda: zero_shot_head_means(model, split, progress).to_tensors()))
        fv_means = means.centered(zero)
    fv = FunctionVector.from_heads(fv_means, heads, info.name, task.name,
                                   meta={"protocol": p.to_dict(), "n_mean_prompts": means.n_prompts, "n_scan_prompts": scan.n_prompts})

    fv_key = {**key, "n_means": p.n_mean_prompts, "n_scan": p.n_scan_prompts, "heads": heads}
    if p.center:
        fv_key["center"] = True

    # 5. The layer: given, the paper's third of the depth, or the best on the valid split.
    valid_sweep = None
    if p.layer is not None:
        fv_layer = info.check_layer(p.layer)
    elif p.layer_rule == "third":
        fv_layer = info.n_layers // 3
    else:
        def compute_valid_sweep():
            sets = {"zero_shot": encode(model, sample_prompts(split, None, 0, "zero_shot", "valid")),
                    "shuffled": encode(model, sample_prompts(split, None, p.n_shot, "shuffled", "valid", seed=p.seed + 3))}
            return layer_sweep(model, fv.vector, sets, alpha=p.alpha, progress=progress).to_tensors()

        valid_sweep = LayerSweep.from_tensors(cache.get_or_compute("valid_sweep", {**fv_key, "alpha": p.alpha}, compute_valid_sweep))
        fv_layer = valid_sweep.best_layer()
    fv.layer = fv_layer

    # 6. Evaluate on the test split, filtered (clean ICL right) and unfiltered.
    def compute_eval():
        accs = evaluate_conditions(model, split, fv, fv_layer, means, p, progress)
        return {name: a.ranks for name, a in accs.items()}

    acc_all = {name: Accuracy(r) for name, r in
               cache.get_or_compute("evaluation", {**fv_key, "layer": fv_layer, "alpha": p.alpha}, compute_eval).items()}
    icl_right = acc_all["icl"].correct
    acc_filtered = {name: Accuracy(a.ranks[icl_right]) for name, a in acc_all.items()}
    notes["test_queries"] = int(icl_right.numel())
    notes["test_queries_filtered"] = int(icl_right.sum())

    test_sweep = None
    if p.sweep_layers:
        def compute_test_sweep():
            sets = {"zero_shot": encode(model, sample_prompts(split, None, 0, "zero_shot", "test")),
                    "shuffled": encode(model, sample_prompts(split, None, p.n_shot, "shuffled", "test", seed=p.seed + 4))}
            return layer_sweep(model, fv.vector, sets, alpha=p.alpha, progress=progress).to_tensors()

        test_sweep = LayerSweep.from_tensors(cache.get_or_compute("test_sweep", {**fv_key, "alpha": p.alpha}, compute_test_sweep))
    # Test queries for the two optional evaluations: those clean ICL gets right (unless filter_correct=False).
    zero = zero_shot_prompts(model, split)
    extra = [e.prompt for e, ok in zip(zero, icl_right) if ok or not p.filter_correct][: p.n_extra_queries]
    extra_pairs = [prompt.query for prompt in extra]
    if p.natural_text:
        kind = "place" if task.name.startswith(("country-", "landmark-")) else "word"
        templates = NATURAL_TEMPLATES[kind]
        notes["natural_text"] = {
            "queries": len(extra_pairs),
            "plain": natural_text_accuracy(model, extra_pairs, templates, None, None, progress=progress),
            "fv": natural_text_accuracy(model, extra_pairs, templates, fv.vector, fv_layer, p.alpha, progress=progress),
        }
    if p.portability:
        notes["portability"] = portability_accuracy(model, extra, fv.vector, fv_layer, seed=p.seed, alpha=p.alpha,
                                                    progress=progress)
    return TaskResult(info.name, task.name, p, means, scan, fv, fv_layer, acc_filtered, acc_all,
                      valid_sweep, test_sweep, notes)


def extraction_queries(model, task: Task, p: Protocol, cache: StageCache | None = None) -> tuple[list[Pair], float]:
    """The valid queries used for extraction, and clean ICL's top-1 on all valid queries.

    With ``p.filter_correct`` (the paper's choice) only queries clean ``n_shot`` ICL answers
    right are kept; if it answers none, all are used, with a warning.  The ICL ranks are cached.
    """
    split = task.split(seed=p.seed)
    valid_icl = encode(model, sample_prompts(split, None, p.n_shot, "icl", "valid", seed=p.seed))
    key = {"model": model_info(model).name, "task": _task_digest(task), "seed": p.seed, "n_shot": p.n_shot}
    ranks = (cache or StageCache()).get_or_compute("valid_filter", key, lambda: {"ranks": accuracy(model, valid_icl).ranks})["ranks"]
    valid_ok = Accuracy(ranks).correct
    good = [e.prompt.query for e, ok in zip(valid_icl, valid_ok) if ok]
    if p.filter_correct and not good:
        warnings.warn(f"clean ICL answers none of the {len(valid_icl)} valid queries of {task.name}; "
                      "using all of them unfiltered", stacklevel=2)
    pool = good if (p.filter_correct and good) else [e.prompt.query for e in valid_icl]
    return pool, float(valid_ok.float().mean())


def scan_prompts(model, split, pool: list[Pair], p: Protocol) -> list[EncodedPrompt]:
    """The corrupted prompts of the head scan: ``n_shot`` shuffled-label demos, queries from ``pool``."""
    return encode(model, sample_prompts(split, p.n_scan_prompts, p.n_shot, "shuffled", seed=p.seed + 2, query_pairs=pool))


def zero_shot_head_means(model, split, progress: bool = True) -> HeadMeans:
    """Each head's mean last-token output over the zero-shot prompts of the train queries: the
    baseline that ``Protocol(center=True)`` subtracts from the FV's terms."""
    return mean_head_activations(model, encode(model, sample_prompts(split, None, 0, "zero_shot", "train")),
                                 progress=progress)


def zero_shot_prompts(model, split) -> list[EncodedPrompt]:
    """The zero-shot prompt of every test query, in the split's order."""
    return encode(model, sample_prompts(split, None, 0, "zero_shot", "test"))


def task_vector_donors(model, split, n: int, p: Protocol) -> list[EncodedPrompt]:
    """Clean ICL prompts about train queries, whose last states serve as Hendel task vectors."""
    return encode(model, sample_prompts(split, n, p.n_shot, "icl", "train", seed=p.seed + 7))


def evaluate_conditions(model, split, fv: FunctionVector, layer: int, means: HeadMeans, p: Protocol,
                        progress: bool = True) -> dict[str, Accuracy]:
    """Every test query under each condition (unfiltered; rows align with the test split).

    icl: clean 10-shot.  zero_shot(+fv), shuffled(+fv): without/with the FV added after ``layer``.
    mean_state: zero-shot + the mean last-token residual of clean prompts at ``layer``.
    task_vector: zero-shot with its last state at ``layer`` replaced by that of a clean ICL
    prompt (Hendel et al.); the ICL prompt's query is a train pair, not the test query.
    """
    icl = encode(model, sample_prompts(split, None, p.n_shot, "icl", "test", seed=p.seed + 5))
    zero = zero_shot_prompts(model, split)
    shuffled = encode(model, sample_prompts(split, None, p.n_shot, "shuffled", "test", seed=p.seed + 6))
    if not (len(icl) == len(zero) == len(shuffled)):
        raise RuntimeError("test prompts dropped unevenly; check the task's answers tokenize")
    fv_hooks = add_vector(model, layer, fv.vector, p.alpha)

    # Hendel et al.: last-token states at `layer` of clean ICL prompts about train queries.
    states = last_token_states(model, task_vector_donors(model, split, len(zero), p), [layer])[0]
    conditions = {
        "icl": (icl, None),
        "zero_shot": (zero, None),
        "zero_shot_fv": (zero, fv_hooks),
        "shuffled": (shuffled, None),
        "shuffled_fv": (shuffled, fv_hooks),
        "mean_state": (zero, add_vector(model, layer, means.mean_resid[layer], 1.0)),
        "task_vector": (zero, replace_last_state(model, layer, states)),
    }
    return {name: accuracy(model, prompts, hooks)
            for name, (prompts, hooks) in tqdm(conditions.items(), desc="evaluate", disable=not progress, leave=False)}
