"""Checks for the course chapter (``notebooks/05_course``): from the task state to a steering vector.

Each ``check_*`` runs the student's function on the tiny random model of
:mod:`workbench.teach.exercises` first (milliseconds), against the workbench's own implementation, and
names the typical mistake in a student's words: a shape, a position, a sign, a layer off by
one, summing instead of averaging, the wrong token.  Checks whose science depends on a real
architecture (the residual stream's hook sites) also run on ``model=`` when one is given (one
or two prompts, cheap).  A check returns a :class:`~workbench.teach.checking.Check` and never raises,
whatever the student's function returns or raises (:func:`workbench.teach.checking.check`).

    1  check_task_state(fn)          the last-token residual h of an ICL prompt after a layer
    2  check_layer_sweep(fn)         P(answer) with each layer's h added after that layer
    3  (exercises) check_mean_head_activations, check_indirect_effect
    4  check_function_vector (exercises), check_generate_with_fv(fn)   the FV kept on while generating
    5  check_cosine(fn)              how alike two FVs are
    6  check_project_out(fn), check_mean_ablate(fn)
    7  check_minimal_prefix(fn)      the shortest AIE prefix that reaches a target
    8  check_steering_vector(fn)     mean positive minus mean negative last-token residual
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import torch

from ..core.heads import last_token_states, mean_head_activations
from ..core.hooks import mean_ablate_heads
from ..core.model import hook_name, input_device, model_info
from ..data.prompts import EncodedPrompt
from ..method.vectors import FunctionVector
from .checking import Check, check, describe, failed, passed, stop
from .exercises import (
    check_function_vector,
    check_indirect_effect,
    check_mean_head_activations,
    exercise_model,
    exercise_prompts,
    number,
)

__all__ = [
    "Check",
    "exercise_model",
    "exercise_prompts",
    "check_task_state",
    "check_layer_sweep",
    "check_mean_head_activations",
    "check_indirect_effect",
    "check_function_vector",
    "check_generate_with_fv",
    "check_cosine",
    "check_project_out",
    "check_mean_ablate",
    "check_minimal_prefix",
    "check_steering_vector",
    "answer_probability",
]


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-4) -> bool:
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol, rtol=1e-3)


def _tensor(got, shape: tuple[int, ...]) -> torch.Tensor:
    """The learner's value as a float tensor of ``shape``, or the check stops saying why not."""
    if not isinstance(got, torch.Tensor):
        stop(f"return a tensor of shape {shape}; you returned {describe(got)}.")
    got = got.detach().float().cpu()
    if tuple(got.shape) != shape:
        hint = ""
        if got.ndim == len(shape) + 1 and got.shape[0] == 1 and tuple(got.shape[1:]) == shape:
            hint = " You kept the batch axis: index [0] (one prompt) or squeeze it."
        elif got.ndim == len(shape) + 1 and tuple(got.shape[-len(shape) :]) == shape:
            hint = " You kept the position axis: take the last position only ([-1])."
        stop(f"expected shape {shape}, got {tuple(got.shape)}.{hint}")
    return got


@torch.inference_mode()
def _states(model, prompt: EncodedPrompt, site: str) -> torch.Tensor:
    """``[layer, pos, d_model]`` of ``blocks.L.hook_{site}`` for one prompt."""
    info = model_info(model)
    tokens = torch.tensor([prompt.ids], device=input_device(model))
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith(f"hook_{site}"))
    return torch.stack([cache[hook_name(site, l)][0].float().cpu() for l in range(info.n_layers)])


# --- 1. the task state h --------------------------------------------------------------------------
@check("task state h", returns="a tensor [d_model]")
def check_task_state(fn: Callable[[object, EncodedPrompt, int], torch.Tensor], model=None) -> Check:
    """``fn(model, prompt, layer) -> [d_model]``: ``blocks.{layer}.hook_resid_post`` at the LAST token."""
    models = [("tiny model", exercise_model(), exercise_prompts(1)[0])]
    if model is not None:
        models.append((model_info(model).name, model, _real_prompt(model)))
    for where, m, prompt in models:
        info = model_info(m)
        for layer in sorted({0, info.n_layers // 2}):
            got = _tensor(fn(m, prompt, layer), (info.d_model,))
            post, pre = _states(m, prompt, "resid_post"), _states(m, prompt, "resid_pre")
            if _close(got, post[layer, -1]):
                continue
            if _close(got, pre[layer, -1]):
                same = f", the same as blocks.{layer - 1}.hook_resid_post: layer - 1" if layer else ""
                return failed(
                    f"that is the residual BEFORE the block (blocks.{layer}.hook_resid_pre{same}): take "
                    f"blocks.{layer}.hook_resid_post."
                )
            if layer + 1 < info.n_layers and _close(got, post[layer + 1, -1]):
                return failed(
                    f"the layer is off by one (you took blocks.{layer + 1}, layer + 1): for layer {layer}, "
                    f"use blocks.{layer}.hook_resid_post."
                )
            if _close(got, post[layer, 0]):
                return failed("you took the FIRST token; the task state is at the LAST one ([-1]).")
            if _close(got, post[layer].mean(0)):
                return failed("you averaged over positions; take the last position only.")
            return failed(f"on the {where}, the values differ from blocks.{layer}.hook_resid_post[-1].")
    on = " and ".join(w for w, _, _ in models)
    return passed(f"the last-token residual after the block, on the {on}.")


def _real_prompt(model) -> EncodedPrompt:
    from ..data.prompts import encode_prompts, sample_prompts
    from ..data.tasks import load_task

    prompts = sample_prompts(load_task("capitalize").split(0), 1, 3, "icl", seed=0)
    return encode_prompts(model.tokenizer, prompts, model_info(model).bos_id)[0][0]


# --- 2. which layer encodes the task --------------------------------------------------------------
@torch.inference_mode()
def answer_probability(model, prompts: Sequence[EncodedPrompt], hooks=None) -> float:
    """Mean probability of each prompt's answer token at its last position (under ``hooks``)."""
    total = 0.0
    for p in prompts:
        tokens = torch.tensor([p.ids], device=input_device(model))
        logits = model.run_with_hooks(tokens, fwd_hooks=list(hooks or []))[0, -1].float()
        total += float(logits.softmax(-1)[p.answer_id])
    return total / len(prompts)


@check("layer sweep", returns="one float per layer (a list)")
def check_layer_sweep(
    fn: Callable[[object, torch.Tensor, list[EncodedPrompt]], Sequence[float]],
) -> Check:
    """``fn(model, states [layer, d_model], prompts) -> [P(answer) per layer]``: for each layer l, add
    ``states[l]`` after block l at the last token, and average the answer's probability over prompts."""
    model = exercise_model()
    info = model_info(model)
    prompts = exercise_prompts(3, kind="zero_shot", seed=4)
    states = last_token_states(model, exercise_prompts(2, seed=5), list(range(info.n_layers))).mean(1) * 4
    got = fn(model, states, prompts)
    try:
        got = [float(x) for x in got]
    except (TypeError, ValueError):
        return failed("return one number per layer (a list of floats).")
    if len(got) != info.n_layers:
        return failed(f"return one number per layer: {info.n_layers} numbers, you gave {len(got)}.")

    def sweep(site="resid_post", shift=0, where=-1, reduce="mean", logits=False, vec_shift=0):
        out = []
        for l in range(info.n_layers):
            target = l + shift
            if not 0 <= target < info.n_layers:
                out.append(float("nan"))
                continue
            v = states[(l + vec_shift) % info.n_layers]

            def hook(x, hook):
                x[:, where] += v
                return x

            vals = []
            for p in prompts:
                tokens = torch.tensor([p.ids])
                with torch.inference_mode():
                    lg = model.run_with_hooks(tokens, fwd_hooks=[(hook_name(site, target), hook)])[0, -1]
                vals.append(float(lg[p.answer_id]) if logits else float(lg.softmax(-1)[p.answer_id]))
            out.append(sum(vals) if reduce == "sum" else sum(vals) / len(vals))
        return out

    def same(a, b):  # probabilities near 1/vocab on a random model: compare relatively
        return all(abs(x - y) <= 1e-9 + 1e-4 * abs(y) for x, y in zip(a, b) if y == y)

    want = sweep()
    if same(got, want):
        return passed("P(answer) per layer matches adding h_l after block l.")
    diagnoses = [
        (
            sweep(reduce="sum"),
            "you summed the probabilities over prompts: average them (divide by the count).",
        ),
        (sweep(logits=True), "you averaged logits; the sweep asks for probabilities (softmax first)."),
        (
            sweep(site="resid_pre"),
            "you added h_l BEFORE block l (hook_resid_pre): add it after (hook_resid_post).",
        ),
        (sweep(shift=1), "the layer is off by one: h_l belongs after block l, not l + 1."),
        (sweep(vec_shift=1), "you added the state of another layer: at layer l, add states[l]."),
        (sweep(where=slice(None)), "you added h at every position: add it at the last token only."),
    ]
    for variant, message in diagnoses:
        if same(got, variant):
            return failed(message)
    return failed(f"expected {[round(x, 4) for x in want]}, got {[round(x, 4) for x in got]}.")


# --- 4. the FV during generation -------------------------------------------------------------------
class _Recorded:
    """The model, passed to a learner's function, recording the last position's logits of every forward
    it runs (``run_with_hooks``, a call, ``forward``): ``logits[sequence length] = [d_vocab, ...]``."""

    def __init__(self, model):
        self._model = model
        self.logits: dict[int, list[torch.Tensor]] = {}

    def __getattr__(self, name):
        return getattr(self._model, name)

    def _keep(self, out):
        if isinstance(out, torch.Tensor) and out.ndim == 3 and out.shape[0] == 1:
            self.logits.setdefault(out.shape[1], []).append(out[0, -1].detach().float().clone())
        return out

    def __call__(self, *args, **kwargs):
        return self._keep(self._model(*args, **kwargs))

    def forward(self, *args, **kwargs):
        return self._keep(self._model.forward(*args, **kwargs))

    def run_with_hooks(self, *args, **kwargs):
        return self._keep(self._model.run_with_hooks(*args, **kwargs))


# The ways of keeping the FV on while generating: (where it goes, the message naming it).  ``at(step,
# length, start)`` gives the positions it is added at in the step's forward (``start``: the prompt's
# last position); ``shift`` moves the hook to another block; ``site`` is the hook after or before it.
_GENERATION_WAYS = {
    "right": (dict(at=lambda step, n, start: range(start, n)), ""),
    "prompt_last": (
        dict(at=lambda step, n, start: [start]),
        "you added the FV at the prompt's last position only, on every step: the generated positions need "
        "it too (x[:, start:] += vector, from the prompt's last position to the newest token).",
    ),
    "newest": (
        dict(at=lambda step, n, start: [n - 1]),
        "you added the FV only at the newest position of each step: the whole sequence is rerun, so the "
        "prompt's last position and the earlier new tokens must keep it too (x[:, start:] += vector).",
    ),
    "layer_above": (
        dict(at=lambda step, n, start: range(start, n), shift=1),
        "you hooked blocks.{hooked}.hook_resid_post, one layer too late: the FV goes after block {layer}, "
        "blocks.{layer}.hook_resid_post.",
    ),
    "before": (
        dict(at=lambda step, n, start: range(start, n), site="resid_pre"),
        "you added the FV BEFORE block {layer} (blocks.{layer}.hook_resid_pre): add it after the block, at "
        "blocks.{layer}.hook_resid_post.",
    ),
    "every_position": (
        dict(at=lambda step, n, start: range(n)),
        "you added the FV at every position of the prompt too: from its last token on only.",
    ),
    "first_step": (
        dict(at=lambda step, n, start: [n - 1] if step == 0 else []),
        "the FV is only there for the first new token: keep it on at every generated position (the "
        "steering must not be dropped at new tokens).",
    ),
    "none": (
        dict(at=lambda step, n, start: []),
        "the FV had no effect: did your hook return the edited activation, and is it in fwd_hooks?",
    ),
}


@torch.inference_mode()
def _step_logits(model, tokens: list[int], vector, layer: int, step: int, start: int, way: str):
    """``[d_vocab]`` last-position logits of ``tokens`` with the FV placed the ``way`` way at ``step``."""
    spec = _GENERATION_WAYS[way][0]
    positions = list(spec["at"](step, len(tokens), start))

    def hook(x, hook):
        x[:, positions] += vector
        return x

    site = hook_name(spec.get("site", "resid_post"), layer + spec.get("shift", 0))
    hooks = [(site, hook)] if positions else []
    return model.run_with_hooks(torch.tensor([tokens]), fwd_hooks=hooks)[0, -1].float()


def _generate(model, ids: list[int], vector, layer: int, n_new: int, way: str = "right") -> list[int]:
    """Greedy tokens with the FV placed the ``way`` way (rerunning the whole sequence each step)."""
    tokens, start = list(ids), len(ids) - 1
    for step in range(n_new):
        tokens.append(int(_step_logits(model, tokens, vector, layer, step, start, way).argmax()))
    return tokens[len(ids) :]


@lru_cache(maxsize=1)
def _generation_case():
    """The check's prompt and vector: a scaled FV of the tiny model's heads, strong enough to change the
    greedy tokens and weak enough not to fix them, so that each way of placing it generates its own
    text (tests/test_course.py checks that they all differ)."""
    model = exercise_model()
    ids = exercise_prompts(1, kind="zero_shot", seed=2)[0].ids
    means = mean_head_activations(model, exercise_prompts(6), progress=False)
    vector = FunctionVector.from_heads(means, [(0, 1), (0, 3), (1, 2)], model_info(model).name).vector
    return list(ids), vector * _GENERATION_SCALE, 0, 6


_GENERATION_SCALE = 8.0


def _token_ids(got) -> list[int]:
    """The learner's generated ids as a list of ints, or the check stops saying what was due."""
    if isinstance(got, str):
        stop("return the new token ids (a list of ints), not the decoded text.")
    if isinstance(got, torch.Tensor):
        got = got.flatten().tolist()
    try:
        return [int(x) for x in got]
    except (TypeError, ValueError):
        stop(f"return the new token ids, a list of ints; you returned {describe(got)}.")


@check("generation with the FV", returns="the new token ids, a list of n_new ints")
def check_generate_with_fv(fn: Callable[[object, list[int], torch.Tensor, int, int], list[int]]) -> Check:
    """``fn(model, ids, vector, layer, n_new) -> [new token ids]``: greedy generation with ``vector``
    added after ``layer`` at the prompt's last position AND at every generated position.

    The check compares the logits of the forwards the function runs, step by step on its own tokens,
    with those of each known way of placing the FV, and names the way they match: on the tiny random
    model the greedy tokens alone cannot tell the ways apart, their logits can."""
    model = exercise_model()
    ids, vector, layer, n_new = _generation_case()
    recorded = _Recorded(model)
    got = _token_ids(fn(recorded, list(ids), vector.clone(), layer, n_new))
    if len(got) == len(ids) + n_new and got[: len(ids)] == ids:
        return failed("you returned the prompt too: return only the NEW token ids.")
    if len(got) != n_new:
        return failed(f"generate exactly n_new = {n_new} tokens; you returned {len(got)}.")
    start, lengths = len(ids) - 1, [len(ids) + k for k in range(n_new)]

    missing = [k for k, n in enumerate(lengths) if n not in recorded.logits]
    if missing:
        return failed(
            f"the check saw no forward pass of the model you were given for new token {missing[0] + 1}: run "
            "model.run_with_hooks(tokens, fwd_hooks=...) on the whole sequence once per new token."
        )

    def matches(way: str) -> list[torch.Tensor] | None:
        """The way's logits at each step, on the learner's tokens, if the learner's forwards match them."""
        refs = []
        for k, n in enumerate(lengths):
            refs.append(_step_logits(model, ids + got[:k], vector, layer, k, start, way))
            if not any(_close(seen, refs[-1], 1e-4) for seen in recorded.logits[n]):
                return None
        return refs

    for way, (_, message) in _GENERATION_WAYS.items():
        refs = matches(way)
        if refs is None:
            continue
        if way != "right":
            return failed(message.format(layer=layer, hooked=layer + 1))
        if got != [int(r.argmax()) for r in refs]:
            return failed(
                "the logits are right, but the tokens are not their argmax: append logits[0, -1].argmax() "
                "at each step."
            )
        return passed("the FV stays on at the prompt's last token and every new one.")
    want = _generate(model, ids, vector, layer, n_new)
    return failed(
        f"expected the tokens {want}, got {got}; the logits differ from adding the vector to "
        f"blocks.{layer}.hook_resid_post from the prompt's last position on."
    )


# --- 5. FV arithmetic --------------------------------------------------------------------------------
@check("cosine similarity", returns="one number")
def check_cosine(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> Check:
    """``fn(u, v) -> float``: the cosine similarity ``u . v / (|u| |v|)`` of two vectors."""
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(64, generator=g) * 3, torch.randn(64, generator=g) * 0.5 + 0.4
    got = number(fn(u, v))
    want = float(u @ v / (u.norm() * v.norm()))
    if abs(got - want) < 1e-5:
        return passed("matches u.v / (|u| |v|).")
    if abs(got - float(u @ v)) < 1e-4:
        return failed("that is the plain dot product: divide by both norms.")
    if abs(got - float(u @ v / u.norm())) < 1e-4 or abs(got - float(u @ v / v.norm())) < 1e-4:
        return failed("you divided by one norm only: divide by |u| AND |v|.")
    if abs(got + want) < 1e-5:
        return failed("the sign is flipped.")
    return failed(f"expected {want:.4f}, got {got:.4f}.")


# --- 6. ablation ------------------------------------------------------------------------------------
@check("project out a direction", returns="a tensor of the same shape as resid")
def check_project_out(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Check:
    """``fn(resid [batch, pos, d_model], direction [d_model]) -> [batch, pos, d_model]``:
    ``x - (x . u) u`` with ``u = direction / |direction|``."""
    g = torch.Generator().manual_seed(1)
    resid, direction = torch.randn(2, 3, 16, generator=g), torch.randn(16, generator=g) * 5
    got = _tensor(fn(resid.clone(), direction.clone()), tuple(resid.shape))
    u = direction / direction.norm()
    along = (resid @ u)[..., None] * u
    want = resid - along
    if _close(got, want, 1e-5):
        return passed("the component along the direction is gone, the rest untouched.")
    if _close(got, along, 1e-5):
        return failed("you returned the component ALONG the direction: subtract it from x instead.")
    if _close(got, resid + along, 1e-5):
        return failed("the sign is flipped: x - (x.u) u, not x + (x.u) u.")
    if _close(got, resid - (resid @ direction)[..., None] * direction, 1e-4):
        return failed("normalise the direction first (u = d / |d|), or you remove it many times over.")
    if (got @ u).abs().max() < 1e-4:
        return failed("the direction is gone, but other components changed too.")
    return failed("the result still has a component along the direction.")


@check("mean-ablate heads", returns="the model's logits, a tensor [batch, pos, d_vocab]")
def check_mean_ablate(
    fn: Callable[[object, torch.Tensor, list[tuple[int, int]], torch.Tensor], torch.Tensor],
) -> Check:
    """``fn(model, tokens, heads, mean_z) -> logits``: each listed head's ``hook_z`` at the LAST
    token replaced by its mean ``mean_z[layer, head]``."""
    model = exercise_model()
    tokens = torch.tensor([exercise_prompts(1, seed=6)[0].ids])
    mean_z = mean_head_activations(model, exercise_prompts(4, seed=7), progress=False).mean_z
    heads = [(1, 2), (0, 1)]
    got = fn(model, tokens, heads, mean_z)
    with torch.inference_mode():
        want = model.run_with_hooks(tokens, fwd_hooks=mean_ablate_heads(model, heads, mean_z)).float()
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
        return failed(f"return the model's logits, shape {tuple(want.shape)}; you returned {describe(got)}.")
    got = got.detach().float()
    if _close(got, want):
        return passed("the heads' last-token outputs are their clean means.")
    n_layers = model_info(model).n_layers

    def variant(value="mean", where=-1, shift=0):
        """Each head (l, h) written at ``blocks.{l + shift}`` (dropped if that layer does not exist)."""

        def hook(z, hook):
            for l, h in heads:
                if l + shift == hook.layer():
                    z[:, where, h] = 0 if value == "zero" else mean_z[l, h]
            return z

        with torch.inference_mode():
            return model.run_with_hooks(
                tokens, fwd_hooks=[(hook_name("z", l), hook) for l in range(n_layers)]
            ).float()

    if _close(got, variant(value="zero")):
        return failed("you zeroed the heads; mean-ablation writes their MEAN output (mean_z) instead.")
    if _close(got, variant(where=slice(None))):
        return failed("you ablated every position: replace the last token's z only.")
    for shift in (1, -1):
        if _close(got, variant(shift=shift)):
            l, h = next((l, h) for l, h in heads if 0 <= l + shift < n_layers)
            return failed(
                f"the layer is off by one (layer {shift:+d}): you wrote head ({l}, {h})'s mean into "
                f"blocks.{l + shift}.attn.hook_z. Head (l, h) lives in blocks.l.attn.hook_z: for ({l}, {h}), "
                f"blocks.{l}.attn.hook_z."
            )
    return failed("the logits differ from replacing the heads' last-token z by mean_z.")


# --- 7. the minimal head set --------------------------------------------------------------------------
@check("minimal prefix", returns="the heads themselves, a list of (layer, head) pairs")
def check_minimal_prefix(
    fn: Callable[[Callable[[list[tuple[int, int]]], float], list[tuple[int, int]], float], list],
) -> Check:
    """``fn(accuracy_of, ranked_heads, target) -> heads``: the SHORTEST prefix of ``ranked_heads``
    whose ``accuracy_of(prefix) >= target`` (all of them if none reaches it)."""
    ranked = [(3, 1), (2, 0), (5, 4), (1, 1), (4, 2), (0, 3)]
    table = {1: 0.2, 2: 0.5, 3: 0.8, 4: 0.7, 5: 0.9, 6: 0.95}

    def accuracy_of(heads):
        heads = list(heads)
        if heads != ranked[: len(heads)]:
            raise ValueError("accuracy_of was asked about heads that are not a prefix of the ranking")
        return table.get(len(heads), 0.0)

    for target, want in ((0.8, 3), (0.75, 3), (0.96, 6), (0.1, 1)):
        got = fn(accuracy_of, list(ranked), target)
        if isinstance(got, int | float):
            return failed(f"you returned the count k = {got}: return the heads themselves, ranked_heads[:k].")
        if not isinstance(got, list | tuple) or not all(
            isinstance(x, list | tuple) and len(x) == 2 for x in got
        ):
            return failed(f"return the heads, a list of (layer, head) pairs; you returned {describe(got)}.")
        got = [tuple(x) for x in got]
        if got == ranked[:want]:
            continue
        if got == ranked[: want + 1]:
            return failed("one head too many: stop at the FIRST prefix that reaches the target.")
        if want > 1 and got == ranked[: want - 1]:
            return failed("one head too few: the prefix must REACH the target (>=), check your off-by-one.")
        if target == 0.8 and got == ranked[:5]:
            return failed("the target is reached when accuracy >= target, not > target.")
        if sorted(got) == sorted(ranked[:want]):
            return failed("keep the heads in the ranking's order.")
        return failed(f"for target {target}: expected the first {want} heads, got {got}.")
    return passed("the shortest prefix reaching the target, in every case.")


# --- 8. capstone: a contrastive steering vector --------------------------------------------------------
@check("steering vector", returns="a tensor [d_model]")
def check_steering_vector(
    fn: Callable[[object, list[EncodedPrompt], list[EncodedPrompt], int], torch.Tensor], model=None
) -> Check:
    """``fn(model, positive, negative, layer) -> [d_model]``: mean last-token ``hook_resid_post`` after
    ``layer`` over the positive prompts, minus the same over the negative ones."""
    cases = [
        ("tiny model", exercise_model(), exercise_prompts(3, seed=8), exercise_prompts(2, kind="zero_shot"))
    ]
    if model is not None:
        from ..beyond.steering import encode_texts

        pos = encode_texts(model, ["I loved every minute of it", "What a wonderful day"])
        neg = encode_texts(model, ["I hated every minute of it", "What a terrible day"])
        cases.append((model_info(model).name, model, pos, neg))
    for where, m, pos, neg in cases:
        info = model_info(m)
        layer = info.n_layers // 2
        got = _tensor(fn(m, pos, neg, layer), (info.d_model,))
        p_post = torch.stack([_states(m, p, "resid_post")[:, -1] for p in pos])  # [n, layer, d_model]
        n_post = torch.stack([_states(m, p, "resid_post")[:, -1] for p in neg])
        want = p_post[:, layer].mean(0) - n_post[:, layer].mean(0)
        if _close(got, want, 1e-3):
            continue
        if _close(got, -want, 1e-3):
            return failed("the sign is flipped: positive minus negative.")
        if _close(got, p_post[:, layer].sum(0) - n_post[:, layer].sum(0), 1e-3):
            return failed("you summed over prompts: take each set's MEAN, then the difference.")
        if layer + 1 < info.n_layers and _close(
            got, p_post[:, layer + 1].mean(0) - n_post[:, layer + 1].mean(0), 1e-3
        ):
            return failed(
                f"the layer is off by one (you took blocks.{layer + 1}): use blocks.{layer}.hook_resid_post."
            )
        if _close(got, p_post[:, layer - 1].mean(0) - n_post[:, layer - 1].mean(0), 1e-3):
            return failed(
                f"the layer is off by one (you took blocks.{layer - 1}.hook_resid_post, or "
                f"blocks.{layer}.hook_resid_pre): use blocks.{layer}.hook_resid_post."
            )
        first = torch.stack([_states(m, p, "resid_post")[layer, 0] for p in pos]).mean(0) - torch.stack(
            [_states(m, p, "resid_post")[layer, 0] for p in neg]
        ).mean(0)
        if _close(got, first, 1e-3):
            return failed("you took the FIRST token (BOS): the last token carries the prompt.")
        return failed(f"on the {where}, the vector differs from mean(positive) - mean(negative).")
    on = " and ".join(c[0] for c in cases)
    return passed(f"mean positive minus mean negative last-token state, on the {on}.")
