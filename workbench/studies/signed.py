"""Signed heads: heads whose patch LOWERS the answer's probability (negative AIE).

The scan's AIE is signed: ``AIE[l, h] = mean_prompts (P_patched - P_corrupted)``.  The FV takes
the top-k by AIE, so negative heads never enter it; this study asks what they do.

- :func:`negative_heads`: the ``k`` most negative heads, and the heads whose AIE is below zero
  by more than 2 standard errors (``t = AIE / sem < -2``).
- :func:`signed_heads_study`: on the run's test split,
  (1) clean ICL and shuffled-label accuracy with the top-``k`` (FV) heads, the ``k`` most negative
  heads, or ``k`` random heads mean-ablated at the last token;
  (2) zero-shot and shuffled accuracy at the run's layer with: the FV (top-``k`` by AIE, negatives
  left out), the FV of the top-``k`` by ``|AIE|`` (negatives left in, their mean outputs added),
  the FV minus the ``k`` negative heads' mean outputs (negatives subtracted), and the negative
  heads' sum alone.
All interventions are last-token variants of one prefix run per prompt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ..base.checks import check_count
from ..core.hooks import add_vector, mean_ablate_heads
from ..core.model import model_info
from ..method.evaluate import accuracies
from ..method.result import TaskResult
from ..method.vectors import FunctionVector, default_top_k
from .study import Param, Study, StudyContext, StudyRecord

__all__ = ["negative_heads", "signed_heads_study", "t_map", "SignedHeads", "STUDY"]


def t_map(scan) -> torch.Tensor:
    """``[layer, head]`` AIE over its standard error (NaN-safe: 0 where the s.e. is 0)."""
    sem = scan.sem
    return torch.where(sem > 0, scan.aie / sem.clamp_min(1e-12), torch.zeros_like(sem))


def negative_heads(scan, k: int) -> dict:
    """The ``k`` most negative heads ``[(layer, head, aie)]`` and those significantly negative (t < -2)."""
    aie = scan.aie
    H = aie.shape[1]
    order = torch.argsort(aie.flatten())[:k].tolist()
    bottom = [(i // H, i % H, float(aie.flatten()[i])) for i in order if float(aie.flatten()[i]) < 0]
    t = t_map(scan)
    sig = [(int(l), int(h), float(aie[l, h])) for l, h in (t < -2).nonzero().tolist()]
    return {"bottom": bottom, "significant": sorted(sig, key=lambda x: x[2])}


def signed_heads_study(model, result: TaskResult, k: int | None = None, n_random: int = 5) -> dict:
    """Ablations and FV variants around the negative heads (module docstring); top-1 accuracy,
    every test query (unfiltered), plus the head lists and AIE sums.

    ``k``: heads per set (default: :func:`~workbench.method.vectors.default_top_k` of the model, 8
    on SmolLM2).  The random control draws its ``k`` heads among those in neither the top nor the
    negative set; where fewer are left it draws them all (``random_k`` records how many), and with
    none left it has no row (``None``).
    """
    sets = result.prompt_sets(model)
    info = model_info(model)
    k = default_top_k(info.n_total_heads) if k is None else k
    check_count(k, info.n_total_heads, of=f"heads of {info.name}")
    aie, means, layer = result.scan.aie, result.means, result.fv_layer
    top = [(l, h) for l, h, _ in result.scan.top_heads(k)]
    neg = negative_heads(result.scan, k)
    bottom = [(l, h) for l, h, _ in neg["bottom"]]
    flat = aie.flatten()
    by_abs = torch.argsort(flat.abs(), descending=True)[:k].tolist()
    abs_heads = [(i // info.n_heads, i % info.n_heads) for i in by_abs]
    rng = random.Random(result.protocol.seed)
    others = [(l, h) for l in range(info.n_layers) for h in range(info.n_heads) if (l, h) not in top + bottom]
    mean_z = means.mean_z

    ablations = {"none": None, "top": mean_ablate_heads(model, top, mean_z)}
    if bottom:
        ablations["negative"] = mean_ablate_heads(model, bottom, mean_z)
    random_k = min(k, len(others))
    n_random = n_random if random_k else 0
    for i in range(n_random):
        ablations[("random", i)] = mean_ablate_heads(model, rng.sample(others, random_k), mean_z)

    def fv(heads):
        return FunctionVector.from_heads(means, heads, model).vector

    vectors = {"fv": fv(top), "fv_by_abs": fv(abs_heads)}
    if bottom:
        vectors["fv_minus_negative"] = fv(top) - fv(bottom)
        vectors["negative_only"] = fv(bottom)
    alpha = result.protocol.alpha
    adds = {"none": None, **{name: add_vector(model, layer, v, alpha) for name, v in vectors.items()}}

    out: dict = {
        "k": k,
        "random_k": random_k,
        "layer": layer,
        "top": [list(h) for h in top],
        "negative": [list(h) for h in bottom],
        "by_abs": [list(h) for h in abs_heads],
        "n_negative_in_by_abs": sum(1 for h in abs_heads if float(aie[h]) < 0),
        "significant_negative": [list(x) for x in neg["significant"]],
        "significant_positive": int((t_map(result.scan) > 2).sum()),
        "aie_sum_top": float(sum(float(aie[h]) for h in top)),
        "aie_sum_negative": float(sum(float(aie[h]) for h in bottom)),
        "aie": aie.tolist(),
        "t": t_map(result.scan).tolist(),
        "ablation": {},
        "vectors": {},
        "n": {},
    }
    for name in ("icl", "shuffled"):
        prompts = sets[f"test_{name}"]
        accs = accuracies(model, prompts, ablations)
        rand = [accs[("random", i)].top1 for i in range(n_random)]
        row = {key: accs[key].top1 for key in ablations if not isinstance(key, tuple)}
        row["random"] = sum(rand) / len(rand) if rand else None
        out["ablation"][name] = row
        out["n"][name] = len(prompts)
    for name in ("zero_shot", "shuffled"):
        prompts = sets[f"test_{name}"]
        accs = accuracies(model, prompts, adds)
        out["vectors"][name] = {key: a.top1 for key, a in accs.items()}
        out["n"][name] = len(prompts)
    return out


@dataclass(repr=False)
class SignedHeads(StudyRecord):
    """:func:`signed_heads_study` of one run.  Heads are ``[layer, head]``; ``aie`` and ``t`` are
    ``[layer][head]`` maps; ``ablation[prompts][condition]`` (prompts ``icl`` | ``shuffled``;
    conditions ``none``, ``top``, ``negative``, ``random``) and ``vectors[prompts][vector]`` (prompts
    ``zero_shot`` | ``shuffled``; vectors ``none``, ``fv``, ``fv_by_abs``, ``fv_minus_negative``,
    ``negative_only``) are top-1 accuracies on every test query, ``n[prompts]`` their counts;
    ``random_k``: heads in the random control."""

    k: int
    layer: int
    top: list
    negative: list
    by_abs: list
    n_negative_in_by_abs: int
    significant_negative: list
    significant_positive: int
    aie_sum_top: float
    aie_sum_negative: float
    aie: list
    t: list
    ablation: dict
    vectors: dict
    n: dict
    random_k: int = 0  # heads in the random control (fewer than k where fewer are left; 0: no row)


def _compute(ctx: StudyContext, run: TaskResult) -> SignedHeads:
    return SignedHeads.from_dict(signed_heads_study(ctx.model, run, k=ctx.params["k"]))


STUDY = Study(
    name="signed",
    summary="heads with negative AIE: ablated, left in, subtracted",
    record=SignedHeads,
    compute=_compute,
    params=(Param("k", int, 8, "heads per set", low=1),),
)
