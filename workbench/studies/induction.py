"""FV heads against induction heads (after Yin & Steinhardt 2025, arXiv 2502.14010).

:func:`induction_scores` scores every head on ``n_seq`` sequences ``[BOS] r r`` (``r``: ``seq_len``
random tokens, seeded).  At a query position ``q`` in the second copy, whose token first
occurred at ``q - seq_len``, the token after that occurrence sits at ``k = q - seq_len + 1``:

- ``prefix_matching[l, h]``: the attention weight from ``q`` to ``k``, averaged over ``q``
  (the pattern of an induction head, Olsson et al. 2022);
- ``copying[l, h]``: the head's direct logit contribution to the copied token ``tokens[k]`` at
  ``q``, ``head_out[q] * g / rms(resid_final[q]) . (W_U[:, target] - mean_v W_U[:, v])``, with
  ``head_out`` the head's residual contribution (:func:`~workbench.core.heads.head_to_residual`)
  and the final RMSNorm's scale frozen at its value in the same forward (exact for RMSNorm
  models; for LayerNorm models the centring is ignored).

:func:`ablation_curves` mean-ablates (at the last token, each head's clean mean output) the top
``n`` % of FV heads (by the run's AIE) minus the top ``n`` % of induction heads (by prefix
matching), the reverse, and ``n`` % random heads, and measures clean ICL accuracy on the run's
test split.  All conditions are last-token variants of one prefix run per prompt.  This is a
last-token ablation: what an induction head writes at earlier positions is left alone.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ..core.heads import head_to_residual
from ..core.hooks import mean_ablate_heads
from ..core.model import hook_name, input_device, model_id, model_info
from ..method.evaluate import accuracies
from ..method.result import TaskResult
from .study import Study, StudyContext, StudyRecord

__all__ = ["induction_scores", "ablation_curves", "head_sets", "PERCENTS", "InductionHeads", "STUDY"]

PERCENTS = (1, 2, 3, 5, 10, 20)


def _final_norm_gain(model) -> Tensor:
    hf = model.original_model
    norm = getattr(getattr(hf, "model", None), "norm", None) or hf.transformer.ln_f
    d = model_info(model).d_model
    eps = float(getattr(norm, "eps", None) or getattr(norm, "variance_epsilon", 1e-6))
    with torch.no_grad():
        ones = torch.ones(1, d, device=next(norm.parameters()).device)
        return norm(ones)[0].float().cpu() * (1.0 + eps) ** 0.5, eps


@torch.inference_mode()
def induction_scores(
    model, n_seq: int = 20, seq_len: int = 25, seed: int = 0, batch_size: int = 10
) -> dict[str, Float[Tensor, "layer head"]]:
    """``{"prefix_matching": [layer, head], "copying": [layer, head]}`` (module docstring)."""
    info = model_info(model)
    L, H = info.n_layers, info.n_heads
    gen = torch.Generator().manual_seed(seed)
    low = 1000 if info.d_vocab > 4000 else 4  # skip special / byte tokens on real vocabularies
    rand = torch.randint(low, info.d_vocab - 1, (n_seq, seq_len), generator=gen)
    bos = [] if info.bos_id is None else [info.bos_id]
    tokens = torch.cat([torch.tensor(bos, dtype=torch.long).expand(n_seq, len(bos)), rand, rand], 1)
    off = len(bos)
    queries = torch.arange(off + seq_len, off + 2 * seq_len - 1)  # second copy, each with a next token
    keys = queries - seq_len + 1
    targets = tokens[:, keys]  # [seq, q]: the token the head should copy
    gain, eps = _final_norm_gain(model)
    W_U = model.W_U.float().cpu()  # [d_model, d_vocab]
    u_mean = W_U.mean(1)
    prefix = torch.zeros(L, H)
    copying = torch.zeros(L, H)
    for s in range(0, n_seq, batch_size):
        ids = tokens[s : s + batch_size]
        store: dict = {}

        def grab(name):
            def hook(act, hook):
                store[(name, hook.layer())] = act.detach().float().cpu()
                return act

            return hook

        fwd = []
        for layer in range(L):
            fwd += [(hook_name("pattern", layer), grab("pattern")), (hook_name("z", layer), grab("z"))]
            if info.post_attn_norm:
                fwd.append((hook_name("attn_out", layer), grab("attn_out")))
        fwd.append((hook_name("resid_post", L - 1), grab("resid")))
        model.run_with_hooks(ids.to(input_device(model)), fwd_hooks=fwd, logits_to_keep=1)
        resid = store[("resid", L - 1)][:, queries]  # [b, q, d]
        scale = gain / torch.sqrt(resid.pow(2).mean(-1, keepdim=True) + eps)  # [b, q, d]
        t = targets[s : s + batch_size]  # [b, q]
        direction = W_U[:, t].permute(1, 2, 0) - u_mean  # [b, q, d]
        for layer in range(L):
            pattern = store[("pattern", layer)]  # [b, head, query, key]
            prefix[layer] += pattern[:, :, queries, keys].sum((0, 2))
            z = store[("z", layer)][:, queries]  # [b, q, head, d_head]
            attn_out = store.get(("attn_out", layer))
            out = head_to_residual(model, layer, z, None if attn_out is None else attn_out[:, queries])
            copying[layer] += torch.einsum("bqhd,bqd->h", out.float(), scale * direction)
    count = n_seq * len(queries)
    return {"prefix_matching": prefix / count, "copying": copying / count}


def _top(scores: Tensor, n: int) -> list[tuple[int, int]]:
    H = scores.shape[1]
    order = torch.argsort(torch.nan_to_num(scores, nan=-1e9).flatten(), descending=True)[:n].tolist()
    return [(i // H, i % H) for i in order]


def head_sets(aie: Tensor, induction: Tensor, percent: float) -> dict[str, list[tuple[int, int]]]:
    """The heads ablated at ``percent`` %: ``fv_not_induction`` (top FV heads minus the top
    induction heads, both the top ``n = round(percent % of all heads)``), ``induction_not_fv``
    (the reverse), ``fv`` and ``induction`` (each alone)."""
    n = max(1, round(percent / 100 * aie.numel()))
    fv, ind = _top(aie, n), _top(induction, n)
    return {
        "fv": fv,
        "induction": ind,
        "fv_not_induction": [h for h in fv if h not in ind],
        "induction_not_fv": [h for h in ind if h not in fv],
    }


def ablation_curves(
    model,
    result: TaskResult,
    induction: Tensor,
    percents: Sequence[float] = PERCENTS,
    n_random: int = 3,
    progress: bool = False,
) -> dict:
    """Clean ICL test accuracy (every test query) with head sets mean-ablated at the last token,
    per percent (:func:`head_sets`), with ``n_random`` random sets of the same size as
    ``fv_not_induction`` (seeded by the run's seed)."""
    info = model_info(model)
    icl = result.prompt_sets(model)["test_icl"]
    mean_z = result.means.mean_z
    everyone = [(l, h) for l in range(info.n_layers) for h in range(info.n_heads)]
    rng = random.Random(result.protocol.seed)
    conditions: dict = {"none": None}
    sizes: dict = {}
    for p in percents:
        sets = head_sets(result.scan.aie, induction, p)
        sizes[str(p)] = {k: len(v) for k, v in sets.items()}
        for name, heads in sets.items():
            conditions[(p, name)] = mean_ablate_heads(model, heads, mean_z) if heads else None
        for i in range(n_random):
            conditions[(p, "random", i)] = mean_ablate_heads(
                model, rng.sample(everyone, max(1, len(sets["fv_not_induction"]))), mean_z
            )
    accs = accuracies(model, icl, conditions, progress=progress and "ablations")
    out: dict = {"percents": list(percents), "none": accs["none"].top1, "n": len(icl), "sizes": sizes}
    for name in ("fv", "induction", "fv_not_induction", "induction_not_fv"):
        out[name] = [accs[(p, name)].top1 for p in percents]
    out["random"] = [sum(accs[(p, "random", i)].top1 for i in range(n_random)) / n_random for p in percents]
    return out


@dataclass(repr=False)
class InductionHeads(StudyRecord):
    """FV heads against induction heads on one run: :func:`ablation_curves` (``none`` and, per
    percent of :attr:`percents`, ``fv``, ``induction``, ``fv_not_induction``, ``induction_not_fv``,
    ``random``: clean ICL top-1; ``sizes[str(percent)][set]``: heads ablated), the model's
    :func:`induction_scores` (``prefix_matching``, ``copying``: ``[layer][head]``; ``top_induction``:
    the 10 best ``[layer, head, score]``) and the run's ``aie`` map."""

    percents: list
    none: float
    n: int
    sizes: dict
    fv: list
    induction: list
    fv_not_induction: list
    induction_not_fv: list
    random: list
    top_induction: list
    prefix_matching: list
    copying: list
    aie: list

    def curve(self, heads: str) -> list[float]:
        """The accuracy per percent with ``heads`` ablated (a field name above)."""
        return list(getattr(self, heads))


def _compute(ctx: StudyContext, run: TaskResult) -> InductionHeads:
    model, scores = ctx.model, ctx.memo
    if not scores:  # once per model, cached as a stage of its own
        key = {"model": model_id(model), "n_seq": 20, "seq_len": 25, "seed": 0}
        scores.update(ctx.cache.get_or_compute("induction_scores", key, lambda: induction_scores(model)))
    prefix = scores["prefix_matching"]
    out = ablation_curves(
        model, run, prefix, percents=ctx.params["percents"], n_random=ctx.params["n_random"]
    )
    n_heads = prefix.shape[1]
    top = sorted(((float(v), i) for i, v in enumerate(prefix.flatten())), reverse=True)[:10]
    out["top_induction"] = [[i // n_heads, i % n_heads, v] for v, i in top]
    out["prefix_matching"] = prefix.tolist()
    out["copying"] = scores["copying"].tolist()
    out["aie"] = run.scan.aie.tolist()
    return InductionHeads.from_dict(out)


STUDY = Study(
    name="induction",
    summary="FV heads against induction heads: scores and ablation curves",
    record=InductionHeads,
    compute=_compute,
    constants={"percents": list(PERCENTS), "n_random": 3},
)
