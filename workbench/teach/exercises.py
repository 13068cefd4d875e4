"""Checks for the teaching notebook: run a learner's function on a tiny model against the reference.

Each ``check_*`` calls the learner's function on a tiny random model (milliseconds, no
download), compares with the workbench's own implementation, and says in plain words what is
wrong: a shape, a token position, a sign, a layer off by one.  It returns a :class:`Check`
(``.passed``, ``.message``; shown as a verdict in a notebook), and never raises on a wrong answer.

    check_icl_prompt(my_icl_prompt)
    check_mean_head_activations(my_mean_z)
    check_indirect_effect(my_indirect_effect)
    check_function_vector(my_function_vector)
    check_add_vector(my_add_fv)
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch

from ..core.heads import mean_head_activations
from ..core.hooks import add_vector
from ..core.model import hook_name, model_info
from ..core.scan import scan_heads
from ..data.prompts import EncodedPrompt, encode_prompts, icl_prompt, sample_prompts
from ..data.tasks import Pair, Task
from ..method.vectors import FunctionVector

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


@dataclass
class Check:
    """The verdict of one check."""

    name: str
    passed: bool
    message: str

    def __repr__(self) -> str:
        return f"{'✅' if self.passed else '❌'} {self.name}: {self.message}"

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.passed else "#c62828"
        return (
            f"<div style='color:{color}'><b>{'✅' if self.passed else '❌'} {self.name}</b>: "
            f"{self.message}</div>"
        )


def _verdict(name: str, passed: bool, message: str) -> Check:
    return Check(name, passed, message)


def _call(name: str, fn: Callable, *args):
    """Run the learner's function; turn an exception into a readable failed check."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, _verdict(
            name, False, "not implemented yet: replace the `raise NotImplementedError` with your code."
        )
    except Exception as e:  # noqa: BLE001 - shown to the learner
        where = traceback.extract_tb(e.__traceback__)[-1]
        return None, _verdict(
            name,
            False,
            f"your function raised {type(e).__name__}: {e} (line {where.lineno}: {where.line!r}).",
        )


@lru_cache(maxsize=1)
def exercise_model():
    """The tiny random Llama-style model every check runs on (2 layers x 4 heads)."""
    from ..core.tiny import tiny_model

    return tiny_model("llama", seed=0)


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


# --- 1. prompts -------------------------------------------------------------------------------
def check_icl_prompt(fn: Callable[[list[Pair], Pair], str]) -> Check:
    """``fn(demos, query) -> str`` must write the paper's format: ``Q: x\\nA: y\\n\\n ... Q: xq\\nA:``."""
    name = "ICL prompt"
    demos, query = [Pair("hot", "cold"), Pair("big", "small")], Pair("fast", "slow")
    got, failed = _call(name, fn, demos, query)
    if failed:
        return failed
    want = icl_prompt(demos, query).text
    if not isinstance(got, str):
        return _verdict(name, False, f"return the prompt as one string; you returned a {type(got).__name__}.")
    if got == want:
        return _verdict(name, True, "the prompt matches the paper's format exactly.")
    if "slow" in got:
        return _verdict(
            name,
            False,
            "the query's answer ('slow') is in the prompt: the model must produce it, so stop at 'A:'.",
        )
    if got.rstrip() == want and got != want:
        return _verdict(
            name,
            False,
            "there is whitespace after the final 'A:'. The answer token starts with a space, so the prompt "
            "must end exactly at 'A:'.",
        )
    if "Q:hot" in got or "A:cold" in got:
        return _verdict(name, False, "put a space between the prefix and the word ('Q: hot', 'A: cold').")
    if got.replace("\n\n", "\n") == want.replace("\n\n", "\n"):
        return _verdict(
            name,
            False,
            "separate demonstrations with a blank line ('\\n\\n') and input from output with one '\\n'.",
        )
    if got.startswith("Q: fast"):
        return _verdict(name, False, "the demonstrations come first and the query last.")
    return _verdict(name, False, f"expected {want!r}, got {got!r}.")


# --- 2. mean head activations -------------------------------------------------------------------
def check_mean_head_activations(fn: Callable[[object, list[EncodedPrompt]], torch.Tensor]) -> Check:
    """``fn(model, prompts) -> [layer, head, d_head]``: each head's ``hook_z`` at the LAST token, averaged."""
    name = "mean head activations"
    model, prompts = exercise_model(), exercise_prompts(5)
    got, failed = _call(name, fn, model, prompts)
    if failed:
        return failed
    info = model_info(model)
    want = mean_head_activations(model, prompts, progress=False).mean_z
    shape = (info.n_layers, info.n_heads, info.d_head)
    if not isinstance(got, torch.Tensor):
        return _verdict(
            name, False, f"return a tensor of shape {shape}; you returned a {type(got).__name__}."
        )
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
        return _verdict(
            name, False, f"expected shape {shape} (layer, head, d_head), got {tuple(got.shape)}.{hint}"
        )
    if torch.allclose(got, want, atol=1e-4, rtol=1e-3):
        return _verdict(name, True, "matches the reference: last-token hook_z, averaged over prompts.")
    z = _all_z(model, prompts)  # [prompt, layer, pos(last..)]
    if torch.allclose(got, want * len(prompts), atol=1e-3, rtol=1e-3):
        return _verdict(
            name, False, "you summed over prompts: divide by the number of prompts to get the mean."
        )
    if torch.allclose(got, z["first"], atol=1e-4, rtol=1e-3):
        return _verdict(
            name,
            False,
            "you used the FIRST token. The task lives at the last token (position -1), where the model "
            "predicts the answer.",
        )
    if torch.allclose(got, z["all"], atol=1e-4, rtol=1e-3):
        return _verdict(
            name, False, "you averaged over all positions. Take only the last position of each prompt."
        )
    if torch.allclose(got, want.roll(1, 0), atol=1e-4, rtol=1e-3) or torch.allclose(
        got, want.roll(-1, 0), atol=1e-4, rtol=1e-3
    ):
        return _verdict(name, False, "the layers are shifted by one: row l must hold blocks.l.attn.hook_z.")
    return _verdict(
        name,
        False,
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
def check_indirect_effect(fn: Callable[[object, EncodedPrompt, torch.Tensor, int, int], float]) -> Check:
    """``fn(model, prompt, mean_z, layer, head) -> float``:
    ``P(answer | head's last-token z := mean_z[layer, head]) - P(answer | prompt as it is)``."""
    name = "indirect effect of one head"
    model = exercise_model()
    clean, corrupt = exercise_prompts(6), exercise_prompts(1, kind="shuffled", seed=3)[0]
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    failures = []
    for layer, head in [(1, 2), (0, 1)]:
        got, failed = _call(name, fn, model, corrupt, mean_z, layer, head)
        if failed:
            return failed
        try:
            got = float(got)
        except (TypeError, ValueError):
            return _verdict(
                name,
                False,
                f"return one number (a probability difference); you returned {type(got).__name__}.",
            )
        want = float(
            scan_heads(model, [corrupt], mean_z, heads=[(layer, head)], progress=False).effects[
                0, layer, head
            ]
        )
        if abs(got - want) <= 1e-6 + 1e-3 * abs(want):
            continue
        if abs(got + want) <= 1e-6 + 1e-3 * abs(want):
            return _verdict(
                name,
                False,
                "the sign is flipped: compute P(patched) - P(corrupted), not the other way round.",
            )
        if layer == 1 and abs(got - _effect(model, corrupt, mean_z, 0, head)) < 1e-6 + 1e-3 * abs(want):
            return _verdict(
                name,
                False,
                "you patched the layer below: use blocks.{layer}.attn.hook_z with the given layer.",
            )
        if abs(got - _effect(model, corrupt, mean_z, layer, head, all_positions=True)) < 1e-6 + 1e-3 * abs(
            want
        ):
            return _verdict(
                name,
                False,
                "you patched the head at every position. Patch only the last token (position -1).",
            )
        if abs(got - _effect(model, corrupt, mean_z, layer, head, logits=True)) < 1e-5 + 1e-3 * abs(want):
            return _verdict(
                name,
                False,
                "you compared logits; the paper's effect is a difference of probabilities (softmax first).",
            )
        failures.append(f"L{layer}H{head}: expected {want:.3g}, got {got:.3g}")
    if failures:
        return _verdict(
            name, False, "; ".join(failures) + ". Check the position, the answer token and the softmax."
        )
    return _verdict(name, True, "matches the reference for two heads.")


@torch.inference_mode()
def _effect(model, prompt, mean_z, layer, head, all_positions=False, logits=False) -> float:
    tokens = torch.tensor([prompt.ids])

    def patch(z, hook):
        if all_positions:
            z[:, :, head] = mean_z[layer, head]
        else:
            z[:, -1, head] = mean_z[layer, head]
        return z

    base = model(tokens)[0, -1].float()
    out = model.run_with_hooks(tokens, fwd_hooks=[(hook_name("z", layer), patch)])[0, -1].float()
    if logits:
        return float(out[prompt.answer_id] - base[prompt.answer_id])
    return float(out.softmax(-1)[prompt.answer_id] - base.softmax(-1)[prompt.answer_id])


# --- 4. the function vector --------------------------------------------------------------------
def check_function_vector(fn: Callable[[object, torch.Tensor, list[tuple[int, int]]], torch.Tensor]) -> Check:
    """``fn(model, mean_z, heads) -> [d_model]``: the sum over heads of ``mean_z[l, h] @ W_O[l, h]``."""
    name = "function vector"
    model = exercise_model()
    means = mean_head_activations(model, exercise_prompts(6), progress=False)
    heads = [(1, 2), (0, 1), (1, 0)]
    got, failed = _call(name, fn, model, means.mean_z, heads)
    if failed:
        return failed
    info = model_info(model)
    want = FunctionVector.from_heads(means, heads, info.name).vector
    if not isinstance(got, torch.Tensor):
        return _verdict(
            name, False, f"return a tensor of shape ({info.d_model},); you returned a {type(got).__name__}."
        )
    got = got.detach().float().cpu()
    if got.shape[-1] == info.d_head:
        return _verdict(
            name,
            False,
            f"your vector has size d_head ({info.d_head}): map each head's mean z into the residual stream "
            "with W_O[layer, head] first.",
        )
    if tuple(got.shape) != (info.d_model,):
        return _verdict(name, False, f"expected shape ({info.d_model},) (d_model), got {tuple(got.shape)}.")
    if torch.allclose(got, want, atol=1e-4, rtol=1e-3):
        return _verdict(name, True, "matches the sum of the heads' mean outputs.")
    if torch.allclose(got, want / len(heads), atol=1e-4, rtol=1e-3):
        return _verdict(
            name, False, "you averaged over heads: the FV is the SUM of the heads' contributions."
        )
    swapped = sum(means.mean_z[l, h] @ model.W_O[l, (h + 1) % info.n_heads].detach() for l, h in heads)
    if torch.allclose(got, swapped, atol=1e-4, rtol=1e-3):
        return _verdict(
            name,
            False,
            "the W_O rows belong to other heads: index W_O[layer, head] with the same head as mean_z.",
        )
    return _verdict(
        name,
        False,
        f"values differ from the reference (max difference {float((got - want).abs().max()):.3g}).",
    )


# --- 5. adding it to a zero-shot prompt ----------------------------------------------------------
def check_add_vector(fn: Callable[[object, torch.Tensor, torch.Tensor, int], torch.Tensor]) -> Check:
    """``fn(model, tokens, vector, layer) -> logits [batch, pos, vocab]`` with ``vector`` added to
    ``blocks.{layer}.hook_resid_post`` at the last position only."""
    name = "add the FV"
    model = exercise_model()
    tokens = torch.tensor([exercise_prompts(1, kind="zero_shot")[0].ids])
    vector = model.W_U[:, 200].detach() * 3
    got, failed = _call(name, fn, model, tokens, vector, 0)
    if failed:
        return failed
    want = model.run_with_hooks(tokens, fwd_hooks=add_vector(model, 0, vector))
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        return _verdict(name, False, f"return the model's logits, shape {tuple(want.shape)}.")
    if torch.allclose(got, want, atol=1e-4, rtol=1e-3):
        return _verdict(name, True, "the vector lands after block 0, at the last token.")

    def variant(layer_hook, where):
        def hook(resid, hook):
            if where == "all":
                resid[:, :] += vector
            elif where == "first":
                resid[:, 0] += vector
            else:
                resid[:, -1] += vector
            return resid

        return model.run_with_hooks(tokens, fwd_hooks=[(layer_hook, hook)])

    if torch.allclose(got, variant(hook_name("resid_pre", 0), "last"), atol=1e-4, rtol=1e-3):
        return _verdict(
            name,
            False,
            "you added it BEFORE block 0 (hook_resid_pre): add it after the block, at "
            "blocks.0.hook_resid_post.",
        )
    if torch.allclose(got, variant(hook_name("resid_post", 1), "last"), atol=1e-4, rtol=1e-3):
        return _verdict(
            name,
            False,
            "you added it one layer too late: use blocks.{layer}.hook_resid_post with the given layer.",
        )
    if torch.allclose(got, variant(hook_name("resid_post", 0), "all"), atol=1e-4, rtol=1e-3):
        return _verdict(
            name, False, "you added it at every position: add it at the last token only (resid[:, -1])."
        )
    if torch.allclose(got, variant(hook_name("resid_post", 0), "first"), atol=1e-4, rtol=1e-3):
        return _verdict(
            name,
            False,
            "you added it at the first token: the last token (index -1) is where the answer is predicted.",
        )
    return _verdict(
        name, False, "the logits differ from adding the vector after the given block at the last token."
    )
