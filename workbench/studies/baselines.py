"""A zoo of task vectors under one evaluator: same split, same filter, same layer-choice rule.

Every vector acts on the zero-shot prompt's LAST token (so each is a last-token variant of one
prefix run per prompt), is built from the run's own prompt sets, and where it lives at one layer
``L``, ``L`` is chosen by the same rule: best top-1 on the valid zero-shot prompts (first layer
on ties).  Reported on the test zero-shot prompts, every test query and filtered to those
clean ICL answers right (the paper's filter), with the binomial standard error.

=====================  ====================================================================================
``fv``                 the run's FV (top-k heads' mean outputs), added after ``L``
``fv_centered``        each head's term minus its mean output on zero-shot train prompts, added after ``L``
``task_vector``        Hendel et al.: the last state after ``L`` replaced by a clean ICL prompt's (train
                       queries, one donor per prompt)
``mean_icl``           the mean clean last-token state after ``L``, added
``icl_minus_zero``     mean clean ICL state minus mean zero-shot state after ``L``, added
``icv``                Liu et al. 2023's in-context vector: per layer, the top principal direction of
                       ``h(y_i) - h(x_i)`` over train pairs (last-token states of the output and input
                       strings alone), signed and scaled by the mean projection, added after EVERY layer
                       times ``lam`` (``lam`` chosen on valid: the "layer" rule's analogue)
``state_vector``       Li et al. 2024 (simplified): the clean prompts' last-token states at each
                       demonstration's separator (``A:``), averaged over demonstrations (inner) with
                       momentum over the running averages (``m <- beta m + (s_i - s_{i-1})``), written
                       over the last state after ``L``
``soft``               the soft task vector (``workbench.beyond.soft``), when ``soft_steps > 0``: one
                       learned blend weight per head at the last token, every layer (no layer choice)
=====================  ====================================================================================

The ICV is added at the last token only here (Liu et al. add it at every position): one evaluator.
The state vector follows Li et al.'s inner and momentum averaging in spirit, on the residual
stream instead of their attention-output vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ..core.heads import last_token_states
from ..core.hooks import add_vector, replace_last_state
from ..core.model import hook_name, model_info
from ..data.prompts import EncodedPrompt
from ..method.evaluate import Accuracy, accuracies
from ..method.pipeline import zero_shot_head_means
from ..method.result import TaskResult
from ..method.vectors import FunctionVector
from .cache import cached_study
from .study import Param, Study, StudyContext, StudyRecord

__all__ = [
    "Zoo",
    "STUDY",
    "baseline_zoo",
    "soft_row",
    "with_soft",
    "icv_directions",
    "separator_states",
    "momentum_average",
    "ZOO",
]

ZOO = ("fv", "fv_centered", "task_vector", "mean_icl", "icl_minus_zero", "icv", "state_vector", "soft")
ICV_SCALES = (0.1, 0.25, 0.5, 1.0)


def _encode_texts(model, texts: Sequence[str]) -> list[EncodedPrompt]:
    bos = model_info(model).bos_id
    out = []
    for text in texts:
        ids = ([bos] if bos is not None else []) + model.tokenizer(text, add_special_tokens=False)[
            "input_ids"
        ]
        out.append(EncodedPrompt(tuple(ids), 0, None))
    return out


def icv_directions(model, pairs, layers: Sequence[int]) -> Float[Tensor, "layer d_model"]:
    """Liu et al.'s in-context vector per layer: the top principal direction of ``h(y) - h(x)``
    (last-token states of the output and input strings), oriented and scaled so that it equals
    the mean difference's projection on it."""
    hx = last_token_states(model, _encode_texts(model, [p.input for p in pairs]), layers)
    hy = last_token_states(model, _encode_texts(model, [p.output for p in pairs]), layers)
    diffs = hy - hx  # [layer, pair, d]
    out = []
    for d in diffs:
        centered = d - d.mean(0)
        u = torch.linalg.svd(centered, full_matrices=False).Vh[0]
        proj = float(d.mean(0) @ u)
        out.append(u * proj)  # sign and length from the mean difference
    return torch.stack(out)


def separator_states(model, prompts: Sequence[EncodedPrompt], layers: Sequence[int]) -> Tensor:
    """``[layer, demo, d_model]``: the residual after each layer at every demonstration's separator
    (the earlier occurrences of the prompt's last two tokens), averaged over ``prompts``.  Prompts
    of one length share a batch, so the separator positions are found per prompt."""
    info = model_info(model)
    sums: Tensor | None = None
    count = 0
    for p in prompts:
        ids = list(p.ids)
        tail = ids[-2:]
        pos = [i + 1 for i in range(len(ids) - 2) if ids[i : i + 2] == tail]  # demo separators
        if not pos:
            continue
        store = {}

        def grab(resid, hook, pos=pos):
            store[hook.layer()] = resid[0, pos].float().cpu()
            return resid

        with torch.inference_mode():
            model.run_with_hooks(
                torch.tensor([ids]),
                fwd_hooks=[(hook_name("resid_post", L), grab) for L in layers],
                logits_to_keep=1,
            )
        states = torch.stack([store[L] for L in layers])  # [layer, demo, d]
        if sums is None:
            sums = torch.zeros_like(states)
        if states.shape != sums.shape:
            continue  # a prompt whose separator pattern occurs elsewhere too
        sums += states
        count += 1
    if sums is None or count == 0:
        raise ValueError(f"no separators found in the {len(prompts)} prompts ({info.name})")
    return sums / count


def momentum_average(states: Float[Tensor, "... demo d_model"], beta: float = 0.5) -> Tensor:
    """Inner averaging (running mean over demonstrations) with momentum on its increments:
    ``a_i = mean(s_1..s_i)``, ``m_i = beta m_{i-1} + (a_i - a_{i-1})``, result ``a_n + m_n``."""
    n = states.shape[-2]
    running = states.cumsum(-2) / torch.arange(1, n + 1, dtype=states.dtype)[:, None]
    m = torch.zeros_like(running[..., 0, :])
    for i in range(1, n):
        m = beta * m + (running[..., i, :] - running[..., i - 1, :])
    return running[..., -1, :] + m


def _filtered(acc: Accuracy, right: Tensor) -> dict:
    f = Accuracy(acc.ranks[right])
    return {
        "top1": acc.top1,
        "stderr": acc.stderr,
        "filtered": f.top1,
        "filtered_stderr": f.stderr,
        "n_f": f.n,
    }


def baseline_zoo(
    model, result: TaskResult, n_icv_pairs: int = 32, soft_steps: int = 0, progress: bool = False
) -> dict:
    """Every vector of the module docstring: its chosen layer (or scale) on valid, and its test
    accuracy ``{"top1", "stderr", "filtered", "filtered_stderr", "n_f"}``."""
    sets = result.prompt_sets(model)
    info = model_info(model)
    layers = list(range(info.n_layers))
    valid, test = sets["valid_zero_shot"], sets["test_zero_shot"]
    donors = sets["donors"]
    right = result.icl_correct
    means = result.means
    zero_means = zero_shot_head_means(model, sets, progress=False)
    heads = list(result.fv.heads)
    fv_c = FunctionVector.from_heads(means.centered(zero_means), heads, model).vector
    zero_state = zero_means.mean_resid  # [layer, d]: mean zero-shot (train) last-token state
    donor_states = last_token_states(model, donors, layers)  # [layer, donor, d]
    sep = separator_states(model, sets["means"][:20], layers)  # [layer, demo, d]
    state_vec = momentum_average(sep)  # [layer, d]
    icv = icv_directions(model, sets.split.train[:n_icv_pairs], layers)

    def cycle(states, n):  # donor states for n prompts (valid has its own count)
        return states[torch.arange(n) % states.shape[0]]

    def per_layer(prompts):
        n = len(prompts)
        iv: dict = {"none": None}
        for L in layers:
            iv[("fv", L)] = add_vector(model, L, result.fv.vector)
            iv[("fv_centered", L)] = add_vector(model, L, fv_c)
            iv[("task_vector", L)] = replace_last_state(model, L, cycle(donor_states[L], n))
            iv[("mean_icl", L)] = add_vector(model, L, means.mean_resid[L])
            iv[("icl_minus_zero", L)] = add_vector(model, L, means.mean_resid[L] - zero_state[L])
            iv[("state_vector", L)] = replace_last_state(model, L, state_vec[L].expand(n, -1))
        for lam in ICV_SCALES:
            iv[("icv", lam)] = [h for L in layers for h in add_vector(model, L, icv[L], lam)]
        return iv

    v_acc = accuracies(model, valid, per_layer(valid), progress=progress and "zoo (valid)")
    chosen = {}
    for name in ("fv", "fv_centered", "task_vector", "mean_icl", "icl_minus_zero", "state_vector"):
        chosen[name] = max(layers, key=lambda L: (v_acc[(name, L)].top1, -L))
    chosen["icv"] = max(ICV_SCALES, key=lambda s: (v_acc[("icv", s)].top1, -s))
    t_iv = per_layer(test)
    keep = {"none": None, **{name: t_iv[(name, at)] for name, at in chosen.items()}}
    t_acc = accuracies(model, test, keep, progress=progress and "zoo (test)")
    out = {
        "n_valid": len(valid),
        "n_test": len(test),
        "fv_heads": len(heads),
        "run_fv_layer": result.fv_layer,
        "chosen": chosen,
        "valid": {name: v_acc[(name, at)].top1 for name, at in chosen.items()},
        "test": {name: _filtered(a, right) for name, a in t_acc.items()},
    }
    return with_soft(out, soft_row(model, result, soft_steps, progress)) if soft_steps > 0 else out


def soft_row(model, result: TaskResult, steps: int, progress: bool = False) -> dict:
    """The zoo's soft task vector alone (fitted on the train zero-shot prompts, ``steps`` steps,
    the run's seed): ``{"test": {"soft": accuracy}, "soft": {"steps", "heads_on"}}``, to merge
    into a zoo with :func:`with_soft` (so a zoo already measured needs only this row)."""
    from ..beyond.soft import fit_soft_task_vector

    sets = result.prompt_sets(model)
    soft = fit_soft_task_vector(
        model,
        sets["train_zero_shot"],
        result.means.mean_z,
        steps=steps,
        seed=result.protocol.seed,
        progress=progress,
    )
    acc = accuracies(model, sets["test_zero_shot"], {"soft": soft.hooks(model)}, progress=False)["soft"]
    return {
        "test": {"soft": _filtered(acc, result.icl_correct)},
        "soft": {"steps": steps, "heads_on": soft.n_on()},
    }


def with_soft(zoo: dict, soft: dict) -> dict:
    """``zoo`` (of :func:`baseline_zoo` without soft steps) with :func:`soft_row`'s row added."""
    return {**zoo, "test": {**zoo["test"], **soft["test"]}, "soft": soft["soft"]}


@dataclass(repr=False)
class Zoo(StudyRecord):
    """:func:`baseline_zoo` of one run: ``chosen[vector]`` its layer (``icv``: its scale),
    ``valid[vector]`` its valid top-1 there, ``test[vector]`` ``{"top1", "stderr", "filtered",
    "filtered_stderr", "n_f"}`` (``none``: no vector); ``soft`` ``{"steps", "heads_on"}`` when a soft
    task vector was fitted."""

    n_valid: int
    n_test: int
    fv_heads: int
    run_fv_layer: int
    chosen: dict
    valid: dict
    test: dict
    soft: dict | None = None

    @property
    def vectors(self) -> list[str]:
        """The vectors measured, in the table's order (``none`` left out)."""
        return [name for name in self.test if name != "none"]


def _compute(ctx: StudyContext, run: TaskResult) -> Zoo:
    """The zoo; with soft steps, the zoo without them (its own cached stage, so a zoo already
    measured is reused) plus the soft row, cached as ``zoo_soft``."""
    model, steps, cache = ctx.model, ctx.params["soft_steps"], ctx.cache
    if steps == 0:
        return Zoo.from_dict(baseline_zoo(model, run))
    zoo = cached_study(cache, "zoo", model, run, {"soft_steps": 0}, lambda: baseline_zoo(model, run))
    soft = cached_study(cache, "zoo_soft", model, run, ctx.params, lambda: soft_row(model, run, steps))
    return Zoo.from_dict(with_soft(zoo, soft))


STUDY = Study(
    name="zoo",
    summary="task vectors of other papers beside the FV, under one evaluator",
    record=Zoo,
    compute=_compute,
    params=(Param("soft_steps", int, 0, "also fit a soft task vector this many steps", low=0, metavar="N"),),
)
