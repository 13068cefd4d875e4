"""One task end to end, following the paper's protocol, with every expensive stage cached.

    filter valid queries -> mean head activations -> head scan -> FV (top-k heads)
        -> choose the layer (sweep on valid) -> evaluate on test -> TaskResult

Every condition is scored twice on the test queries: the paper's first-token top-1, and the whole
answer under teacher forcing (:func:`~workbench.method.evaluate.answer_accuracy`).  Which pairs
can be scored is decided once per task, before any prompt set is drawn
(:class:`~workbench.method.protocol.PromptSets`), and :func:`evaluate_conditions` checks that its
paired sets hold the same queries in the same order.

:func:`run_task` reads top to bottom: one small function per stage, and one cache helper
(:class:`Stages`) that keys every stage by the model's identity (weights fingerprint and dtype),
the task's content and the protocol.  The prompts of every stage come from the run's
:class:`~workbench.method.protocol.PromptSets`.  The CLI, the notebooks, the figures and the
benchmarks call :func:`run_task`; nothing else strings these stages together.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import torch
from tqdm.auto import tqdm

from ..base.stage_cache import StageCache, stage_key
from ..core.forward import chosen_variant_batch
from ..core.heads import HeadMeans, last_token_states, mean_head_activations
from ..core.hooks import add_vector, replace_last_state
from ..core.model import model_id, model_info
from ..core.plan import plan_for_model
from ..core.scan import HeadScan, attribution_scan, hybrid_candidates, scan_heads
from ..core.selfcheck import check_record, verify_model
from ..data.prompts import (
    ANSWER_RULE,
    NATURAL_TEMPLATES,
    PAPER_FORMAT,
    AnswerTokenReport,
    answer_token_report,
)
from ..data.tasks import Pair, Task, load_task
from .evaluate import (
    Accuracy,
    LayerSweep,
    accuracies,
    accuracy,
    answer_accuracy,
    head_count_grid_accuracy,
    layer_sweep,
    natural_text_accuracy,
    portability_accuracy,
)
from .preflight import data_notes, preflight
from .protocol import PromptSets, Protocol, ProtocolError
from .result import TaskResult
from .vectors import FunctionVector, default_top_k, vector_provenance

__all__ = [
    "run_task",
    "Stages",
    "evaluate_conditions",
    "evaluate_whole_answers",
    "condition_interventions",
    "check_aligned",
    "zero_shot_head_means",
    "CONDITIONS",
]

CONDITIONS = ("icl", "zero_shot", "zero_shot_fv", "shuffled", "shuffled_fv", "mean_state", "task_vector")
# stages whose prompts come from the test split: their keys carry the cap on test queries
TEST_STAGES = frozenset(
    {"evaluation", "evaluation_answer", "donor_states", "test_sweep", "generation_extras"}
)
SCORING_VERSION = 2  # stage keys of tasks whose prompts ANSWER_RULE or the split by input changed


class Stages:
    """The one cache helper: a stage's tensors under a key of everything it depends on."""

    def __init__(
        self,
        model,
        task: Task,
        protocol: Protocol,
        cache: StageCache,
        progress: bool,
        answers: AnswerTokenReport | None = None,
    ):
        self.model = model
        self.task = task
        self.protocol = protocol
        self.cache = cache
        self.progress = progress
        self.key = {
            "model": model_id(model),
            "task": task.digest,
            "seed": protocol.seed,
            "n_shot": protocol.n_shot,
            "filter": protocol.filter_correct,
        }
        answers = answers or answer_token_report(model.tokenizer, task.pairs)
        if (
            task.repeated_inputs
            or answers.n_whitespace_first
            or answers.n_multi_token
            or answers.n_unscorable
        ):
            # scored by ANSWER_RULE (and split by input) since SCORING_VERSION: never reuse older stages
            self.key["scoring"] = SCORING_VERSION
        self._memo: dict[str, dict[str, torch.Tensor]] = {}

    def parts(self, stage: str, parts: dict[str, Any]) -> dict[str, Any]:
        """The whole key of ``stage``: the run's key, ``parts``, and for a stage on the test split
        (:data:`TEST_STAGES`) the cap on test queries, when there is one (a capped run's rows are
        not an uncapped run's)."""
        cap = self.protocol.max_eval_queries
        test = {"max_eval_queries": cap} if stage in TEST_STAGES and cap is not None else {}
        return {**self.key, **parts, **test}

    def cached(self, stage: str, parts: dict[str, Any], compute: Callable[[], dict[str, torch.Tensor]]):
        """The stored tensors of ``stage`` for the run's key plus ``parts``; computed and stored if absent.
        A stage asked for twice in one run is computed once, even with the cache turned off."""
        every = self.parts(stage, parts)
        key = stage_key(stage, **every)
        if key not in self._memo:
            self._memo[key] = self.cache.get_or_compute(stage, every, compute)
        return self._memo[key]

    def cached_json(self, stage: str, parts: dict[str, Any], compute: Callable[[], Any]) -> Any:
        """:meth:`cached` for a JSON-able result (:meth:`StageCache.get_or_compute_json`)."""
        return self.cache.get_or_compute_json(stage, self.parts(stage, parts), compute)

    def chunked(self, stage: str, parts: dict[str, Any], chunks, compute_chunk, combine):
        """:meth:`cached` for a long stage done in ``chunks``; each finished chunk is kept, so an
        interrupted run resumes where it stopped (:meth:`StageCache.get_or_compute_chunks`)."""
        every = self.parts(stage, parts)
        return self.cache.get_or_compute_chunks(stage, every, chunks, compute_chunk, combine)


def in_chunks(n: int, size: int) -> list[range]:
    """``range(n)`` cut into consecutive pieces of at most ``size``: the resumable units of a stage.

    >>> in_chunks(7, 3)
    [range(0, 3), range(3, 6), range(6, 7)]
    """
    return [range(i, min(i + size, n)) for i in range(0, n, size)]


PROMPTS_PER_CHUNK = 5  # a resumed head scan loses at most this many prompts' work
SWEEP_PROMPTS_PER_CHUNK = 32  # a resumed layer sweep loses at most this many prompts' work


def run_task(
    model,
    task: Task | str,
    protocol: Protocol = Protocol(),
    cache: StageCache | None = None,
    progress: bool = True,
    unverified: bool = False,
) -> TaskResult:
    """Run the function-vector protocol for one task on one model.

    The model is self-checked first (once per model, cached): a model that fails is refused
    unless ``unverified`` (see :func:`workbench.core.selfcheck.verify_model`).
    """
    task = task if isinstance(task, Task) else load_task(task)
    verify_model(model, unverified=unverified)
    info = model_info(model)
    if protocol.layer is not None:
        info.check_layer(protocol.layer)  # fail before any expensive stage
    top_k = protocol.top_k or default_top_k(info.n_total_heads)
    if top_k > info.n_total_heads:
        raise ProtocolError(f"top_k {top_k} is more than the {info.n_total_heads} heads of {info.name}")
    answer_tokens = preflight(model, task, protocol)  # a second's checks before minutes of work
    plan_for_model(model, protocol, task, chosen_variant_batch()).check()  # memory, before an hour of work
    stages = Stages(model, task, protocol, cache or StageCache(), progress, answer_tokens)

    extraction, valid_top1 = filter_extraction_queries(stages)
    sets = PromptSets(task, protocol, model, extraction)
    means = mean_activations(stages, sets)
    scan = head_scan(stages, sets, means)
    count_choice = None
    if protocol.head_count_rule == "valid":  # the count chosen on valid, with the layer
        top_k, count_choice = choose_head_count(stages, sets, means, scan)
    fv = function_vector(stages, sets, means, scan, top_k)
    fv.layer, valid_sweep = choose_layer(stages, sets, fv)
    ranks = evaluation(stages, sets, fv, means)
    answer_ranks = whole_answer_evaluation(stages, sets, fv, means, ranks)
    test_sweep = test_layer_sweep(stages, sets, fv) if protocol.sweep_layers else None

    split = sets.split
    icl_right = ranks["icl"].correct
    notes: dict[str, Any] = {
        "n_pairs": len(task),
        "top_k": top_k,
        "dtype": info.dtype,
        "answer_tokens": answer_tokens.to_dict(),
        "split": [len(split.train), len(split.valid), len(split.test)],
        "valid_icl_top1": valid_top1,
        "extraction_queries": len(extraction),
        "test_queries": int(icl_right.numel()),
        "test_queries_filtered": int(icl_right.sum()),
        "answer_rule": ANSWER_RULE,
        **data_notes(task, sets.dropped),
    }
    if count_choice is not None:
        notes["head_count"] = count_choice
    notes.update(generation_extras(stages, sets, fv, icl_right))
    return TaskResult(
        info.name,
        model_id(model),
        task,
        protocol,
        extraction,
        means,
        scan,
        fv,
        fv.layer,
        ranks,
        valid_sweep,
        test_sweep,
        notes,
        self_check=check_record(model),
        answer_accuracy_unfiltered=answer_ranks,
    )


def filter_extraction_queries(stages: Stages) -> tuple[list[Pair], float]:
    """The valid queries used for extraction, and clean ICL's top-1 on all valid queries.

    With ``protocol.filter_correct`` (the paper's choice) only queries clean ``n_shot`` ICL
    answers right are kept; if it answers none, all are used, with a warning.
    """
    sets = PromptSets(stages.task, stages.protocol, stages.model)
    valid_icl = sets["valid_icl"]
    ranks = stages.cached(
        "valid_filter", {"filter": None}, lambda: {"ranks": accuracy(stages.model, valid_icl).ranks}
    )["ranks"]
    valid_ok = Accuracy(ranks).correct
    good = [e.prompt.query for e, ok in zip(valid_icl, valid_ok) if ok]
    if stages.protocol.filter_correct and not good:
        warnings.warn(
            f"clean ICL answers none of the {len(valid_icl)} valid queries of {stages.task.name}; "
            "using all of them unfiltered",
            stacklevel=3,
        )
    pool = good if (stages.protocol.filter_correct and good) else [e.prompt.query for e in valid_icl]
    return pool, float(valid_ok.float().mean())


def mean_activations(stages: Stages, sets: PromptSets) -> HeadMeans:
    """Each head's mean last-token output over the clean ``means`` prompts."""
    p = stages.protocol
    return HeadMeans.from_tensors(
        stages.cached(
            "means",
            {"n": p.n_mean_prompts},
            lambda: mean_head_activations(stages.model, sets["means"], progress=stages.progress).to_tensors(),
        )
    )


def head_scan(stages: Stages, sets: PromptSets, means: HeadMeans) -> HeadScan:
    """The causal indirect effect of every head on the corrupted ``scan`` prompts (with
    ``scan_method="hybrid"``: of the heads attribution patching ranks highest over all of them)."""
    p = stages.protocol
    prompts = sets["scan"]
    key: dict[str, Any] = {"n": p.n_scan_prompts, "n_means": p.n_mean_prompts}
    heads = None
    if p.scan_method == "hybrid":
        approx = stages.cached(
            "scan_attribution",
            key,
            lambda: attribution_scan(
                stages.model, prompts, means.mean_z, progress=stages.progress
            ).to_tensors(),
        )
        heads = hybrid_candidates(HeadScan.from_tensors(approx), p.scan_candidates)
        key = {**key, "method": "hybrid", "candidates": len(heads)}
    tensors = stages.chunked(
        "scan",
        key,
        in_chunks(len(prompts), PROMPTS_PER_CHUNK),
        lambda chunk: scan_heads(
            stages.model, [prompts[i] for i in chunk], means.mean_z, heads=heads, progress=stages.progress
        ).to_tensors(),
        lambda parts: {"effects": torch.cat([t["effects"] for t in parts])},
    )
    meta = {} if heads is None else {"method": "hybrid", "candidates": heads}
    return HeadScan.from_tensors(
        tensors, model=model_info(stages.model).name, task=stages.task.name, meta=meta
    )


def zero_shot_head_means(model, sets: PromptSets, progress: bool = True) -> HeadMeans:
    """Each head's mean last-token output over the zero-shot train prompts: the baseline that
    ``Protocol(center=True)`` subtracts from the FV's terms."""
    return mean_head_activations(model, sets["train_zero_shot"], progress=progress)


def function_vector(
    stages: Stages, sets: PromptSets, means: HeadMeans, scan: HeadScan, top_k: int
) -> FunctionVector:
    """The sum of the top-``top_k`` heads' mean outputs (centred on their zero-shot outputs if asked)."""
    heads = [(l, h) for l, h, _ in scan.top_heads(top_k)]
    return heads_function_vector(stages, sets, means, heads, {"n_scan_prompts": scan.n_prompts})


def heads_function_vector(
    stages: Stages, sets: PromptSets, means: HeadMeans, heads: list[tuple[int, int]], meta: dict[str, Any]
) -> FunctionVector:
    """The sum of the given heads' mean outputs on this task (centred if the protocol asks), with the
    run's provenance: the per-task FV (its top-AIE heads) and the universal FV (the suite's heads)."""
    p = stages.protocol
    if p.center:
        zero = HeadMeans.from_tensors(
            stages.cached(
                "zero_shot_means",
                {"filter": None},
                lambda: zero_shot_head_means(stages.model, sets, stages.progress).to_tensors(),
            )
        )
        means = means.centered(zero)
    provenance = vector_provenance(
        stages.model,
        "resid_post",
        "add",
        "last token of the prompt, and every generated token",
        p.alpha,
        prompt_format=asdict(PAPER_FORMAT),
        seed=p.seed,
        protocol=p.to_dict(),
        task=stages.task.name,
        task_digest=stages.task.digest,
    )
    return FunctionVector.from_heads(
        means,
        heads,
        stages.model,
        stages.task.name,
        provenance=provenance,
        meta={"protocol": p.to_dict(), "n_mean_prompts": means.n_prompts, **meta},
    )


def choose_head_count(
    stages: Stages, sets: PromptSets, means: HeadMeans, scan: HeadScan
) -> tuple[int, dict[str, Any]]:
    """``Protocol(head_count_rule="valid")``: the number of top-AIE heads whose FV scores best on the
    validation split at its best layer (the layer rule's score: zero-shot + shuffled top-1 on valid),
    i.e. the joint layer x count argmax (ties: fewer heads).  :func:`choose_layer` then picks that
    count's best layer from the same numbers.  Every layer x count is a last-token variant."""
    p, model = stages.protocol, stages.model
    counts = sorted({k for k in p.head_counts if k <= model_info(model).n_total_heads})

    def compute():
        out = {}
        for name in ("valid_zero_shot", "valid_shuffled"):
            grid = head_count_grid_accuracy(
                model,
                means,
                scan,
                range(model_info(model).n_layers),
                sets[name],
                counts,
                p.alpha,
                stages.progress,
            )
            out[name] = torch.stack([torch.tensor([grid[L][k].top1 for L in sorted(grid)]) for k in counts])
        return out

    key = {"n_means": p.n_mean_prompts, "n_scan": p.n_scan_prompts, "counts": counts, "alpha": p.alpha}
    grids = stages.cached("valid_head_counts", key, compute)  # [count, layer] top-1 per prompt set
    score = grids["valid_zero_shot"] + grids["valid_shuffled"]
    best = score.max(1).values  # per count, at its best layer
    i = max(range(len(counts)), key=lambda j: (float(best[j]), -j))
    choice = {
        "rule": "valid",
        "counts": counts,
        "chosen": counts[i],
        "layer": int(score[i].argmax()),
        "valid_score_by_count": best.tolist(),
    }
    return counts[i], choice


def _fv_key(stages: Stages, fv: FunctionVector) -> dict[str, Any]:
    p = stages.protocol
    key = {"n_means": p.n_mean_prompts, "n_scan": p.n_scan_prompts, "heads": fv.heads, "alpha": p.alpha}
    return {**key, "center": True} if p.center else key


def choose_layer(stages: Stages, sets: PromptSets, fv: FunctionVector) -> tuple[int, LayerSweep | None]:
    """The layer to add the FV after: given, the paper's third of the depth, or the best on valid."""
    p = stages.protocol
    info = model_info(stages.model)
    if p.layer is not None:
        return info.check_layer(p.layer), None
    if p.layer_rule == "third":
        return info.n_layers // 3, None
    sweep = resumable_layer_sweep(
        stages, "valid_sweep", fv, {"zero_shot": sets["valid_zero_shot"], "shuffled": sets["valid_shuffled"]}
    )
    return sweep.best_layer(), sweep


def resumable_layer_sweep(
    stages: Stages, stage: str, fv: FunctionVector, prompt_sets: dict, key: dict | None = None
) -> LayerSweep:
    """:func:`~workbench.method.evaluate.layer_sweep` of the FV over every layer, cached, and stored
    every :data:`SWEEP_PROMPTS_PER_CHUNK` prompts of each set (each chunk runs every layer as a
    last-token variant of its prompts, so chunking repeats no prefix)."""
    longest = max(len(prompts) for prompts in prompt_sets.values())

    def compute(chunk: range) -> dict[str, torch.Tensor]:
        part = {name: prompts[chunk.start : chunk.stop] for name, prompts in prompt_sets.items()}
        part = {name: prompts for name, prompts in part.items() if prompts}
        sweep = layer_sweep(
            stages.model, fv.vector, part, alpha=stages.protocol.alpha, progress=stages.progress
        )
        return sweep.to_tensors()

    tensors = stages.chunked(
        stage,
        {**_fv_key(stages, fv), **(key or {})},
        in_chunks(longest, SWEEP_PROMPTS_PER_CHUNK),
        compute,
        lambda parts: LayerSweep.concat_prompts([LayerSweep.from_tensors(t) for t in parts]).to_tensors(),
    )
    return LayerSweep.from_tensors(tensors)


def evaluation(
    stages: Stages,
    sets: PromptSets,
    fv: FunctionVector,
    means: HeadMeans,
    conditions: tuple[str, ...] = CONDITIONS,
) -> dict[str, Accuracy]:
    """Every test query under each of ``conditions`` (:func:`evaluate_conditions`), cached."""

    def compute():
        states = donor_states(stages, sets, fv.layer) if "task_vector" in conditions else None
        accs = evaluate_conditions(
            stages.model,
            sets,
            fv,
            fv.layer,
            means,
            stages.protocol.alpha,
            stages.progress,
            conditions,
            states=states,
        )
        return {name: a.ranks for name, a in accs.items()}

    key = {**_fv_key(stages, fv), "layer": fv.layer}
    if set(conditions) != set(CONDITIONS):  # a subset has its own entry; the whole set keeps its old key
        key["conditions"] = [c for c in CONDITIONS if c in conditions]  # one key whatever the order
    ranks = stages.cached("evaluation", key, compute)
    return {name: Accuracy(ranks[name]) for name in conditions}


def donor_states(stages: Stages, sets: PromptSets, layer: int) -> torch.Tensor:
    """``[prompt, d_model]``: each donor prompt's last-token residual after ``layer``, the states the
    task-vector condition puts into the zero-shot prompts; cached, so both metrics share one pass."""
    return stages.cached(
        "donor_states",
        {"layer": layer},
        lambda: {"states": last_token_states(stages.model, sets["donors"], [layer])[0]},
    )["states"]


def whole_answer_evaluation(
    stages: Stages, sets: PromptSets, fv: FunctionVector, means: HeadMeans, first: dict[str, Accuracy]
) -> dict[str, Accuracy]:
    """Every test query under each condition, scored on the whole answer (:func:`evaluate_whole_answers`),
    cached beside the first-token evaluation."""

    def compute():
        states = donor_states(stages, sets, fv.layer)
        accs = evaluate_whole_answers(
            stages.model, sets, fv, fv.layer, means, stages.protocol.alpha, first, stages.progress, states
        )
        return {name: a.ranks for name, a in accs.items()}

    ranks = stages.cached("evaluation_answer", {**_fv_key(stages, fv), "layer": fv.layer}, compute)
    return {name: Accuracy(ranks[name]) for name in CONDITIONS}


def test_layer_sweep(stages: Stages, sets: PromptSets, fv: FunctionVector) -> LayerSweep:
    """The FV added after every layer, on the test split (reported, never used to choose)."""
    prompt_sets = {"zero_shot": sets["test_zero_shot"], "shuffled": sets["test_sweep_shuffled"]}
    return resumable_layer_sweep(stages, "test_sweep", fv, prompt_sets)


def check_aligned(sets: dict[str, list]) -> None:
    """Raise unless the named encoded prompt sets ask the same queries in the same order (the
    donors, whose queries are train pairs, need only the same count)."""
    names = list(sets)
    base = [e.prompt.query for e in sets[names[0]]]
    for name in names[1:]:
        queries = [e.prompt.query for e in sets[name]]
        if len(queries) != len(base) or (name != "donors" and queries != base):
            raise RuntimeError(
                f"prompt sets {names[0]!r} and {name!r} are not paired query for query "
                f"({len(base)} and {len(queries)} prompts): their scores cannot be compared"
            )


def condition_interventions(
    model,
    sets: PromptSets,
    fv: FunctionVector,
    layer: int,
    means: HeadMeans,
    alpha: float = 1.0,
    conditions: tuple[str, ...] = CONDITIONS,
    states: torch.Tensor | None = None,
) -> list[tuple[str, list, dict]]:
    """The test conditions as ``(prompt set name, encoded prompts, {condition: intervention})``,
    after checking that the paired sets are aligned (:func:`check_aligned`); only ``conditions``
    (a prompt set none of them reads is left out, and the donors run only for ``task_vector``).
    ``states``: the donors' last-token states after ``layer`` (:func:`donor_states`), if known.

    icl: clean prompts.  zero_shot(+fv), shuffled(+fv): without/with the FV added after ``layer``.
    mean_state: zero-shot + the mean last-token residual of clean prompts at ``layer``.
    task_vector: zero-shot with its last state at ``layer`` replaced by that of a clean ICL
    prompt (Hendel et al.); the ICL prompt's query is a train pair, not the test query.
    """
    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown conditions {sorted(unknown)}: choose from {', '.join(CONDITIONS)}")
    names = ("test_icl", "test_zero_shot", "test_shuffled", "donors")
    check_aligned({name: sets[name] for name in names})
    fv_hooks = add_vector(model, layer, fv.vector, alpha)
    built: dict[str, Callable[[], Any]] = {
        "icl": lambda: None,
        "zero_shot": lambda: None,
        "zero_shot_fv": lambda: fv_hooks,
        "mean_state": lambda: add_vector(model, layer, means.mean_resid[layer], 1.0),
        "task_vector": lambda: replace_last_state(
            model, layer, last_token_states(model, sets["donors"], [layer])[0] if states is None else states
        ),
        "shuffled": lambda: None,
        "shuffled_fv": lambda: fv_hooks,
    }
    groups = {
        "test_icl": ("icl",),
        "test_zero_shot": ("zero_shot", "zero_shot_fv", "mean_state", "task_vector"),
        "test_shuffled": ("shuffled", "shuffled_fv"),
    }
    out = []
    for name, members in groups.items():
        chosen = {c: built[c]() for c in members if c in conditions}
        if chosen:
            out.append((name, sets[name], chosen))
    return out


def evaluate_conditions(
    model,
    sets: PromptSets,
    fv: FunctionVector,
    layer: int,
    means: HeadMeans,
    alpha: float = 1.0,
    progress: bool = True,
    conditions: tuple[str, ...] = CONDITIONS,
    states: torch.Tensor | None = None,
) -> dict[str, Accuracy]:
    """Every test query under each of ``conditions`` (:func:`condition_interventions`), first-token
    top-k (unfiltered; rows align with the test split): each prompt's prefix runs once
    (:func:`accuracies`)."""
    out: dict[str, Accuracy] = {}
    by_set = condition_interventions(model, sets, fv, layer, means, alpha, conditions, states)
    for _, prompts, interventions in tqdm(by_set, desc="evaluate", disable=not progress, leave=False):
        out.update(accuracies(model, prompts, interventions))
    return {name: out[name] for name in CONDITIONS if name in conditions}


def evaluate_whole_answers(
    model,
    sets: PromptSets,
    fv: FunctionVector,
    layer: int,
    means: HeadMeans,
    alpha: float = 1.0,
    first: dict[str, Accuracy] | None = None,
    progress: bool = True,
    states: torch.Tensor | None = None,
) -> dict[str, Accuracy]:
    """Every test query under each condition, scored on its whole answer under teacher forcing
    (:func:`~workbench.method.evaluate.answer_accuracy`: right when every answer token is the top-1;
    the FV and the mean state are added at every answer position, the task vector replaces the
    prompt's last state).  ``first``: the first-token ranks of the same conditions, reused for
    answers that metric already scores whole."""
    out: dict[str, Accuracy] = {}
    by_set = condition_interventions(model, sets, fv, layer, means, alpha, states=states)
    jobs = [(prompts, name, iv) for _, prompts, conditions in by_set for name, iv in conditions.items()]
    for prompts, name, iv in tqdm(jobs, desc="evaluate whole answers", disable=not progress, leave=False):
        out[name] = answer_accuracy(model, prompts, iv, first=None if first is None else first[name])
    return {name: out[name] for name in CONDITIONS}


def generation_extras(stages: Stages, sets: PromptSets, fv: FunctionVector, icl_right: torch.Tensor) -> dict:
    """The optional natural-text and portability evaluations, on test queries clean ICL gets right
    (all of them with ``filter_correct=False``), at most ``n_extra_queries``; a cached stage (greedy
    generation is the slowest evaluation), so a rerun reads it back."""
    p = stages.protocol
    if not (p.natural_text or p.portability):
        return {}
    key = {
        **_fv_key(stages, fv),
        "layer": fv.layer,
        "natural_text": p.natural_text,
        "portability": p.portability,
        "n_extra_queries": p.n_extra_queries,
    }
    return stages.cached_json(
        "generation_extras", key, lambda: _generation_extras(stages, sets, fv, icl_right)
    )


def _generation_extras(stages: Stages, sets: PromptSets, fv: FunctionVector, icl_right: torch.Tensor) -> dict:
    p, model = stages.protocol, stages.model
    extra = [e.prompt for e, ok in zip(sets["test_zero_shot"], icl_right) if ok or not p.filter_correct]
    extra = extra[: p.n_extra_queries]
    pairs = [prompt.query for prompt in extra]
    notes: dict[str, Any] = {}
    if p.natural_text:
        kind = "place" if stages.task.name.startswith(("country-", "landmark-")) else "word"
        templates = NATURAL_TEMPLATES[kind]
        notes["natural_text"] = {
            "queries": len(pairs),
            "plain": natural_text_accuracy(model, pairs, templates, None, None, progress=stages.progress),
            "fv": natural_text_accuracy(
                model, pairs, templates, fv.vector, fv.layer, p.alpha, progress=stages.progress
            ),
        }
    if p.portability:
        notes["portability"] = portability_accuracy(
            model, extra, fv.vector, fv.layer, seed=p.seed, alpha=p.alpha, progress=stages.progress
        )
    return notes
