"""Checks for the teaching notebook: run a learner's function on a tiny model against the reference.

Each ``check_*`` calls the learner's function on a tiny random model (milliseconds, no
download), compares with the workbench's own implementation, and says in plain words what is
wrong: a shape, a token position, a sign, a layer off by one.  It returns a :class:`Check`
(``.passed``, ``.message``; shown as a verdict in a notebook), and never raises, whatever the
learner's function returns or raises (:mod:`workbench.teach.checking`).

    check_icl_prompt(my_icl_prompt)
    check_mean_head_activations(my_mean_z)
    check_indirect_effect(my_indirect_effect)
    check_function_vector(my_function_vector)
    check_add_vector(my_add_fv)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch

from ..core.heads import mean_head_activations
from ..core.hooks import add_vector
from ..core.model import hook_name, model_info
from ..core.scan import scan_heads
from ..data.prompts import EncodedPrompt, encode_prompts, icl_prompt, sample_prompts
from ..data.tasks import Pair, Task
from ..method.vectors import FunctionVector
from .checking import Check, check, describe, failed, passed, stop

__all__ = [
    "Check",
    "exercise_model",
    "exercise_prompts",
    "check_icl_prompt",
    "check_mean_head_activations",
    "check_indirect_effect",
    "check_function_vector",
    "check_add_vector",
]


@lru_cache(maxsize=1)
def exercise_model():
    """The tiny random Llama-style model every check runs on (2 layers x 4 heads), its weights frozen
    (no gradients: a learner's ``float(logits[...])`` gives a number, no autograd warning)."""
    from ..core.tiny import tiny_model

    return tiny_model("llama", seed=0).requires_grad_(False)


@lru_cache(maxsize=1)
def _task() -> Task:
    words = ["apple", "river", "green", "stone", "cloud", "table", "music", "horse", "light", "paper"]
    return Task.from_pairs(
        "exercise-capitalize", [(w + str(i), w.capitalize() + str(i)) for i in range(6) for w in words]
    )


def exercise_prompts(n: int = 4, kind: str = "icl", n_shot: int = 3, seed: int = 0) -> list[EncodedPrompt]:
    """Encoded prompts of a small capitalize task, for the tiny model."""
    model = exercise_model()
    prompts = sample_prompts(_task().split(0), n, n_shot, kind, seed=seed)
    return encode_prompts(model.tokenizer, prompts, model_info(model).bos_id)[0]


def number(got, what: str = "one number") -> float:
    """The learner's value as a float, or the check stops saying what was due."""
    try:
        return float(got)
    except (TypeError, ValueError, RuntimeError):
        stop(f"return {what}; you returned {describe(got)}.")


# --- 1. prompts -------------------------------------------------------------------------------
@check("ICL prompt", returns="the prompt as one string")
def check_icl_prompt(fn: Callable[[list[Pair], Pair], str]) -> Check:
    """``fn(demos, query) -> str`` must write the paper's format: ``Q: x\\nA: y\\n\\n ... Q: xq\\nA:``."""
    demos, query = [Pair("hot", "cold"), Pair("big", "small")], Pair("fast", "slow")
    got = fn(demos, query)
    want = icl_prompt(demos, query).text
    if not isinstance(got, str):
        return failed(f"return the prompt as one string; you returned a {type(got).__name__}.")
    if got == want:
        return passed("the prompt matches the paper's format exactly.")
    if "slow" in got:
        return failed(
            "the query's answer ('slow') is in the prompt: the model must produce it, so stop at 'A:'.",
        )
    if got.rstrip() == want and got != want:
        return failed(
            "there is whitespace after the final 'A:'. The answer token starts with a space, so the prompt "
            "must end exactly at 'A:'.",
        )
    if "Q:hot" in got or "A:cold" in got:
        return failed("put a space between the prefix and the word ('Q: hot', 'A: cold').")
    if got.replace("\n\n", "\n") == want.replace("\n\n", "\n"):
        return failed(
            "separate demonstrations with a blank line ('\\n\\n') and input from output with one '\\n'.",
        )
    if got.startswith("Q: fast"):
        return failed("the demonstrations come first and the query last.")
    return failed(f"expected {want!r}, got {got!r}.")


# --- 2. mean head activations -------------------------------------------------------------------
@check("mean head activations", returns="a tensor [layer, head, d_head]")
def check_mean_head_activations(fn: Callable[[object, list[EncodedPrompt]], torch.Tensor]) -> Check:
    """``fn(model, prompts) -> [layer, head, d_head]``: each head's ``hook_z`` at the LAST token, averaged."""
    model, prompts = exercise_model(), exercise_prompts(5)
    got = fn(model, prompts)
    info = model_info(model)
    want = mean_head_activations(model, prompts, progress=False).mean_z
    shape = (info.n_layers, info.n_heads, info.d_head)
    if not isinstance(got, torch.Tensor):
        return failed(f"return a tensor of shape {shape}; you returned a {type(got).__name__}.")
    got = got.detach().float().cpu()
    if tuple(got.shape) != shape:
        hint = ""
        if got.ndim == 4:
            hint = (
                " It looks like you kept a batch or position axis: average over prompts and take only "
                "the last position."
            )
        elif got.shape[-1] == info.d_model:
            hint = (
                " The last axis has size d_model: use hook_z (per head, d_head), not the residual stream "
                "or hook_result."
            )
        return failed(f"expected shape {shape} (layer, head, d_head), got {tuple(got.shape)}.{hint}")
    if torch.allclose(got, want, atol=1e-4, rtol=1e-3):
        return passed("matches the reference: last-token hook_z, averaged over prompts.")
    z = _all_z(model, prompts)  # [prompt, layer, pos(last..)]
    if torch.allclose(got, want * len(prompts), atol=1e-3, rtol=1e-3):
        return failed("you summed over prompts: divide by the number of prompts to get the mean.")
    if torch.allclose(got, z["first"], atol=1e-4, rtol=1e-3):
        return failed(
            "you used the FIRST token. The task lives at the last token (position -1), where the model "
            "predicts the answer.",
        )
    if torch.allclose(got, z["all"], atol=1e-4, rtol=1e-3):
        return failed("you averaged over all positions. Take only the last position of each prompt.")
    if torch.allclose(got, want.roll(1, 0), atol=1e-4, rtol=1e-3) or torch.allclose(
        got, want.roll(-1, 0), atol=1e-4, rtol=1e-3
    ):
        return failed("the layers are shifted by one: row l must hold blocks.l.attn.hook_z.")
    return failed(
        f"values differ from the reference (max difference {float((got - want).abs().max()):.3g}).",
    )


def _all_z(model, prompts):
    info = model_info(model)
    first, every = (
        torch.zeros(info.n_layers, info.n_heads, info.d_head),
        torch.zeros(info.n_layers, info.n_heads, info.d_head),
    )
    for p in prompts:
        _, cache = model.run_with_cache(torch.tensor([p.ids]), names_filter=lambda n: n.endswith("hook_z"))
        for l in range(info.n_layers):
            z = cache[hook_name("z", l)][0].float()
            first[l] += z[0] / len(prompts)
            every[l] += z.mean(0) / len(prompts)
    return {"first": first, "all": every}


# --- 3. one head's indirect effect -------------------------------------------------------------
@check("indirect effect of one head", returns="one number, P(answer) patched minus P(answer) as it is")
def check_indirect_effect(fn: Callable[[object, EncodedPrompt, torch.Tensor, int, int], float]) -> Check:
    """``fn(model, prompt, mean_z, layer, head) -> float``:
    ``P(answer | head's last-token z := mean_z[layer, head]) - P(answer | prompt as it is)``.

    Two heads, one per layer of the tiny model, so that a hook one layer off (either way) lands on
    a layer that exists for one of them and is named."""
    model = exercise_model()
    n_layers = model_info(model).n_layers
    clean, corrupt = exercise_prompts(6), exercise_prompts(1, kind="shuffled", seed=3)[0]
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    heads = [(1, 2), (0, 1)]
    calls = [(layer, head, *fn.attempt(model, corrupt, mean_z, layer, head)) for layer, head in heads]
    failures = []
    for layer, head, raised, got in calls:
        if raised:
            continue
        got = number(got, "one number (a probability difference)")
        want = float(
            scan_heads(model, [corrupt], mean_z, heads=[(layer, head)], progress=False).effects[
                0, layer, head
            ]
        )

        def near(x: float, tol: float = 1e-6) -> bool:
            return abs(got - x) <= tol + 1e-3 * abs(x)

        if near(want):
            continue
        if near(-want):
            return failed("the sign is flipped: compute P(patched) - P(corrupted), not the other way round.")
        for other in (layer - 1, layer + 1):
            if not 0 <= other < n_layers:
                continue
            side = "below" if other < layer else "above"
            if near(_effect(model, corrupt, mean_z, layer, head, hooked=other)):
                return failed(
                    f"you hooked blocks.{other}.attn.hook_z, the layer {side}, while writing "
                    f"mean_z[{layer}, {head}]: for layer {layer}, hook blocks.{layer}.attn.hook_z."
                )
            if near(_effect(model, corrupt, mean_z, other, head)):
                return failed(
                    f"you patched the layer {side}: blocks.{other}.attn.hook_z with mean_z[{other}, {head}]. "
                    f"Use the given layer {layer}: blocks.{layer}.attn.hook_z and mean_z[{layer}, {head}]."
                )
        if near(_effect(model, corrupt, mean_z, layer, head, all_positions=True)):
            return failed("you patched the head at every position. Patch only the last token (position -1).")
        if near(_effect(model, corrupt, mean_z, layer, head, logits=True), 1e-5):
            return failed(
                "you compared logits; the paper's effect is a difference of probabilities (softmax first)."
            )
        failures.append(f"L{layer}H{head}: expected {want:.3g}, got {got:.3g}")
    if failures:
        return failed("; ".join(failures) + ". Check the position, the answer token and the softmax.")
    raised = [r for _, _, r, _ in calls if r]
    if raised:
        return raised[0]
    return passed("matches the reference for two heads.")


@torch.inference_mode()
def _effect(model, prompt, mean_z, layer, head, all_positions=False, logits=False, hooked=None) -> float:
    """The indirect effect of writing ``mean_z[layer, head]`` into head ``head`` of ``blocks.{hooked}``
    (default: ``layer``), at the last position or at all of them."""
    tokens = torch.tensor([prompt.ids])

    def patch(z, hook):
        z[:, slice(None) if all_positions else -1, head] = mean_z[layer, head]
        return z

    base = model(tokens)[0, -1].float()
    site = hook_name("z", layer if hooked is None else hooked)
    out = model.run_with_hooks(tokens, fwd_hooks=[(site, patch)])[0, -1].float()
    if logits:
        return float(out[prompt.answer_id] - base[prompt.answer_id])
    return float(out.softmax(-1)[prompt.answer_id] - base.softmax(-1)[prompt.answer_id])


# --- 4. the function vector --------------------------------------------------------------------
@check("function vector", returns="a tensor [d_model]")
def check_function_vector(fn: Callable[[object, torch.Tensor, list[tuple[int, int]]], torch.Tensor]) -> Check:
    """``fn(model, mean_z, heads) -> [d_model]``: the sum over heads of ``mean_z[l, h] @ W_O[l, h]``."""
    model = exercise_model()
    means = mean_head_activations(model, exercise_prompts(6), progress=False)
    heads = [(1, 2), (0, 1), (1, 0)]
    got = fn(model, means.mean_z, heads)
    info = model_info(model)
    want = FunctionVector.from_heads(means, heads, info.name).vector
    if not isinstance(got, torch.Tensor):
        return failed(f"return a tensor of shape ({info.d_model},); you returned a {type(got).__name__}.")
    got = got.detach().float().cpu()
    if got.shape[-1] == info.d_head:
        return failed(
            f"your vector has size d_head ({info.d_head}): map each head's mean z into the residual stream "
            "with W_O[layer, head] first.",
        )
    if tuple(got.shape) != (info.d_model,):
        return failed(f"expected shape ({info.d_model},) (d_model), got {tuple(got.shape)}.")
    if torch.allclose(got, want, atol=1e-4, rtol=1e-3):
        return passed("matches the sum of the heads' mean outputs.")
    if torch.allclose(got, want / len(heads), atol=1e-4, rtol=1e-3):
        return failed("you averaged over heads: the FV is the SUM of the heads' contributions.")
    swapped = sum(means.mean_z[l, h] @ model.W_O[l, (h + 1) % info.n_heads].detach() for l, h in heads)
    if torch.allclose(got, swapped, atol=1e-4, rtol=1e-3):
        return failed(
            "the W_O rows belong to other heads: index W_O[layer, head] with the same head as mean_z.",
        )
    return failed(
        f"values differ from the reference (max difference {float((got - want).abs().max()):.3g}).",
    )


# --- 5. adding it to a zero-shot prompt ----------------------------------------------------------
@check("add the FV", returns="the model's logits, a tensor [batch, pos, d_vocab]")
def check_add_vector(fn: Callable[[object, torch.Tensor, torch.Tensor, int], torch.Tensor]) -> Check:
    """``fn(model, tokens, vector, layer) -> logits [batch, pos, vocab]`` with ``vector`` added to
    ``blocks.{layer}.hook_resid_post`` at the last position only."""
    model = exercise_model()
    tokens = torch.tensor([exercise_prompts(1, kind="zero_shot")[0].ids])
    vector = model.W_U[:, 200].detach() * 3
    layer = 0
    got = fn(model, tokens, vector, layer)
    want = model.run_with_hooks(tokens, fwd_hooks=add_vector(model, layer, vector))
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return failed(f"return the model's logits, shape {tuple(want.shape)}; you returned {describe(got)}.")
    got = got.detach().float()

    def variant(site: str, where="last", sign: int = 1) -> torch.Tensor:
        def hook(resid, hook):
            resid[:, {"all": slice(None), "first": 0, "last": -1}[where]] += sign * vector
            return resid

        return model.run_with_hooks(tokens, fwd_hooks=[(site, hook)]).float()

    def same(x: torch.Tensor) -> bool:
        return torch.allclose(got, x, atol=1e-4, rtol=1e-3)

    post, pre = hook_name("resid_post", layer), hook_name("resid_pre", layer)
    if same(want):
        return passed(f"the vector lands after block {layer}, at the last token.")
    if same(variant(post, sign=-1)):
        return failed("the sign is flipped: you subtracted the vector; add it (resid[:, -1] += vector).")
    if same(variant(pre)):
        return failed(
            f"you added it BEFORE block {layer} (hook_resid_pre): add it after the block, at {post}."
        )
    if same(variant(hook_name("resid_post", layer + 1))):
        return failed(
            f"you added it one layer too late (blocks.{layer + 1}): use {post}, with the given layer {layer}."
        )
    if same(variant(post, "all")):
        return failed("you added it at every position: add it at the last token only (resid[:, -1]).")
    if same(variant(post, "first")):
        return failed(
            "you added it at the first token: the last token (index -1) is where the answer is predicted."
        )
    return failed(f"the logits differ from adding the vector to {post} at the last token.")
