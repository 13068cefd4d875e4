"""Checks for the course chapter (``notebooks/05_course``): from the task state to a steering vector.

Each ``check_*`` runs the student's function on the tiny random model of
:mod:`workbench.teach.exercises` first (milliseconds), against the workbench's own implementation, and
names the typical mistake in a student's words: a shape, a position, a sign, a layer off by
one, summing instead of averaging, the wrong token.  Checks whose science depends on a real
architecture (the residual stream's hook sites) also run on ``model=`` when one is given (one
or two prompts, cheap).  A check returns a :class:`~workbench.teach.exercises.Check` and never raises
on a wrong answer.

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

import torch

from ..core.heads import last_token_states, mean_head_activations
from ..core.hooks import add_vector, mean_ablate_heads
from ..core.model import hook_name, input_device, model_info
from ..data.prompts import EncodedPrompt
from .exercises import (
    Check,
    _call,
    _verdict,
    check_function_vector,
    check_indirect_effect,
    check_mean_head_activations,
    exercise_model,
    exercise_prompts,
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


def _tensor(name: str, got, shape: tuple[int, ...]) -> tuple[torch.Tensor | None, Check | None]:
    """The student's value as a float tensor of ``shape``, or the failed check saying why not."""
    if not isinstance(got, torch.Tensor):
        return None, _verdict(
            name, False, f"return a tensor of shape {shape}; you returned {type(got).__name__}."
        )
    got = got.detach().float().cpu()
    if tuple(got.shape) != shape:
        hint = ""
        if got.ndim == len(shape) + 1 and got.shape[0] == 1 and tuple(got.shape[1:]) == shape:
            hint = " You kept the batch axis: index [0] (one prompt) or squeeze it."
        elif got.ndim == len(shape) + 1 and tuple(got.shape[-len(shape) :]) == shape:
            hint = " You kept the position axis: take the last position only ([-1])."
        return None, _verdict(name, False, f"expected shape {shape}, got {tuple(got.shape)}.{hint}")
    return got, None


@torch.inference_mode()
def _states(model, prompt: EncodedPrompt, site: str) -> torch.Tensor:
    """``[layer, pos, d_model]`` of ``blocks.L.hook_{site}`` for one prompt."""
    info = model_info(model)
    tokens = torch.tensor([prompt.ids], device=input_device(model))
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith(f"hook_{site}"))
    return torch.stack([cache[hook_name(site, l)][0].float().cpu() for l in range(info.n_layers)])


# --- 1. the task state h --------------------------------------------------------------------------
def check_task_state(fn: Callable[[object, EncodedPrompt, int], torch.Tensor], model=None) -> Check:
    """``fn(model, prompt, layer) -> [d_model]``: ``blocks.{layer}.hook_resid_post`` at the LAST token."""
    name = "task state h"
    models = [("tiny model", exercise_model(), exercise_prompts(1)[0])]
    if model is not None:
        models.append((model_info(model).name, model, _real_prompt(model)))
    for where, m, prompt in models:
        info = model_info(m)
        for layer in sorted({0, info.n_layers // 2}):
            got, failed = _call(name, fn, m, prompt, layer)
            if failed:
                return failed
            got, failed = _tensor(name, got, (info.d_model,))
            if failed:
                return failed
            post, pre = _states(m, prompt, "resid_post"), _states(m, prompt, "resid_pre")
            if _close(got, post[layer, -1]):
                continue
            if _close(got, pre[layer, -1]):
                return _verdict(
                    name,
                    False,
                    "that is the residual BEFORE the block (hook_resid_pre): take hook_resid_post.",
                )
            if layer + 1 < info.n_layers and _close(got, post[layer + 1, -1]):
                return _verdict(
                    name, False, "the layer is off by one (you took layer + 1): use blocks.{layer}."
                )
            if layer > 0 and _close(got, post[layer - 1, -1]):
                return _verdict(
                    name, False, "the layer is off by one (you took layer - 1): use blocks.{layer}."
                )
            if _close(got, post[layer, 0]):
                return _verdict(
                    name, False, "you took the FIRST token; the task state is at the LAST one ([-1])."
                )
            if _close(got, post[layer].mean(0)):
                return _verdict(name, False, "you averaged over positions; take the last position only.")
            return _verdict(
                name, False, f"on the {where}, the values differ from blocks.{layer}.hook_resid_post[-1]."
            )
    on = " and ".join(w for w, _, _ in models)
    return _verdict(name, True, f"the last-token residual after the block, on the {on}.")


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


def check_layer_sweep(
    fn: Callable[[object, torch.Tensor, list[EncodedPrompt]], Sequence[float]],
) -> Check:
    """``fn(model, states [layer, d_model], prompts) -> [P(answer) per layer]``: for each layer l, add
    ``states[l]`` after block l at the last token, and average the answer's probability over prompts."""
    name = "layer sweep"
    model = exercise_model()
    info = model_info(model)
    prompts = exercise_prompts(3, kind="zero_shot", seed=4)
    states = last_token_states(model, exercise_prompts(2, seed=5), list(range(info.n_layers))).mean(1) * 4
    got, failed = _call(name, fn, model, states, prompts)
    if failed:
        return failed
    try:
        got = [float(x) for x in got]
    except (TypeError, ValueError):
        return _verdict(name, False, "return one number per layer (a list of floats).")
    if len(got) != info.n_layers:
        return _verdict(
            name, False, f"return one number per layer: {info.n_layers} numbers, you gave {len(got)}."
        )

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
        return _verdict(name, True, "P(answer) per layer matches adding h_l after block l.")
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
            return _verdict(name, False, message)
    return _verdict(name, False, f"expected {[round(x, 4) for x in want]}, got {[round(x, 4) for x in got]}.")


# --- 4. the FV during generation -------------------------------------------------------------------
class _Watched:
    """The model, passed to a student's function, recording which positions each of its hooks changed
    in every ``run_with_hooks`` call: ``calls[i] = (sequence length, {hook name: changed positions})``."""

    def __init__(self, model):
        self._model = model
        self.calls: list[tuple[int, dict[str, list[int]]]] = []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def __call__(self, tokens, *args, **kwargs):
        self.calls.append((int(torch.as_tensor(tokens).shape[-1]), {}))
        return self._model(tokens, *args, **kwargs)

    def run_with_hooks(self, tokens, *args, fwd_hooks=(), **kwargs):
        seen: dict[str, list[int]] = {}

        def watch(name, fn):
            def hook(act, hook):
                before = act.detach().clone()
                out = fn(act, hook)
                after = (act if out is None else out).detach()
                changed = (after - before).abs().flatten(2).amax(-1).amax(0) > 0  # [pos]
                seen[name] = changed.nonzero().flatten().tolist()
                return out

            return hook

        out = self._model.run_with_hooks(
            tokens, *args, fwd_hooks=[(n, watch(n, f)) for n, f in fwd_hooks], **kwargs
        )
        self.calls.append((int(torch.as_tensor(tokens).shape[-1]), seen))
        return out


def check_generate_with_fv(fn: Callable[[object, list[int], torch.Tensor, int, int], list[int]]) -> Check:
    """``fn(model, ids, vector, layer, n_new) -> [new token ids]``: greedy generation with ``vector``
    added after ``layer`` at the prompt's last position AND at every generated position."""
    name = "generation with the FV"
    model = exercise_model()
    ids = exercise_prompts(1, kind="zero_shot", seed=2)[0].ids
    vector = (model.W_U[:, 300] - model.W_U[:, 120]).detach() * 2
    n_new, layer = 6, 0
    watched = _Watched(model)
    got, failed = _call(name, fn, watched, list(ids), vector, layer, n_new)
    if failed:
        return failed
    if isinstance(got, torch.Tensor):
        got = got.flatten().tolist()
    if isinstance(got, str):
        return _verdict(name, False, "return the new token ids (a list of ints), not the decoded text.")
    got = [int(x) for x in got]
    want = _greedy(model, ids, vector, layer, n_new)
    if got[: len(ids)] == list(ids):
        return _verdict(name, False, "you returned the prompt too: return only the NEW token ids.")
    if len(got) != n_new:
        return _verdict(name, False, f"generate exactly n_new = {n_new} tokens; you returned {len(got)}.")
    site, start = hook_name("resid_post", layer), len(ids) - 1
    steered = [(n, seen.get(site)) for n, seen in watched.calls]
    if any(pos and min(pos) < start for _, pos in steered):
        return _verdict(
            name, False, "you added the FV at every position of the prompt too: from its last token on only."
        )
    if steered and steered[0][1] and any(not pos for _, pos in steered[1:]):
        return _verdict(
            name,
            False,
            "the FV is only there for the first new token: keep it on at every generated position "
            "(the steering must not be dropped at new tokens).",
        )
    if got == want:
        return _verdict(name, True, "the FV stays on at the prompt's last token and every new one.")
    if got == _greedy(model, ids, None, layer, n_new):
        return _verdict(name, False, "the FV had no effect: did your hook return the edited activation?")
    return _verdict(name, False, f"expected the tokens {want}, got {got}.")


@torch.inference_mode()
def _greedy(model, ids, vector, layer, n_new) -> list[int]:
    """Greedy tokens with ``vector`` added from the prompt's last position on (no early stop)."""
    tokens = torch.tensor([list(ids)])
    hooks = [] if vector is None else add_vector(model, layer, vector, from_position=len(ids) - 1)
    new = []
    for _ in range(n_new):
        nxt = int(model.run_with_hooks(tokens, fwd_hooks=hooks)[0, -1].argmax())
        new.append(nxt)
        tokens = torch.cat([tokens, torch.tensor([[nxt]])], 1)
    return new


# --- 5. FV arithmetic --------------------------------------------------------------------------------
def check_cosine(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> Check:
    """``fn(u, v) -> float``: the cosine similarity ``u . v / (|u| |v|)`` of two vectors."""
    name = "cosine similarity"
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(64, generator=g) * 3, torch.randn(64, generator=g) * 0.5 + 0.4
    got, failed = _call(name, fn, u, v)
    if failed:
        return failed
    try:
        got = float(got)
    except (TypeError, ValueError):
        return _verdict(name, False, f"return one number; you returned {type(got).__name__}.")
    want = float(u @ v / (u.norm() * v.norm()))
    if abs(got - want) < 1e-5:
        return _verdict(name, True, "matches u.v / (|u| |v|).")
    if abs(got - float(u @ v)) < 1e-4:
        return _verdict(name, False, "that is the plain dot product: divide by both norms.")
    if abs(got - float(u @ v / u.norm())) < 1e-4 or abs(got - float(u @ v / v.norm())) < 1e-4:
        return _verdict(name, False, "you divided by one norm only: divide by |u| AND |v|.")
    if abs(got + want) < 1e-5:
        return _verdict(name, False, "the sign is flipped.")
    return _verdict(name, False, f"expected {want:.4f}, got {got:.4f}.")


# --- 6. ablation ------------------------------------------------------------------------------------
def check_project_out(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Check:
    """``fn(resid [batch, pos, d_model], direction [d_model]) -> [batch, pos, d_model]``:
    ``x - (x . u) u`` with ``u = direction / |direction|``."""
    name = "project out a direction"
    g = torch.Generator().manual_seed(1)
    resid, direction = torch.randn(2, 3, 16, generator=g), torch.randn(16, generator=g) * 5
    got, failed = _call(name, fn, resid.clone(), direction.clone())
    if failed:
        return failed
    got, failed = _tensor(name, got, tuple(resid.shape))
    if failed:
        return failed
    u = direction / direction.norm()
    along = (resid @ u)[..., None] * u
    want = resid - along
    if _close(got, want, 1e-5):
        return _verdict(name, True, "the component along the direction is gone, the rest untouched.")
    if _close(got, along, 1e-5):
        return _verdict(
            name, False, "you returned the component ALONG the direction: subtract it from x instead."
        )
    if _close(got, resid + along, 1e-5):
        return _verdict(name, False, "the sign is flipped: x - (x.u) u, not x + (x.u) u.")
    if _close(got, resid - (resid @ direction)[..., None] * direction, 1e-4):
        return _verdict(
            name, False, "normalise the direction first (u = d / |d|), or you remove it many times over."
        )
    if (got @ u).abs().max() < 1e-4:
        return _verdict(name, False, "the direction is gone, but other components changed too.")
    return _verdict(name, False, "the result still has a component along the direction.")


def check_mean_ablate(
    fn: Callable[[object, torch.Tensor, list[tuple[int, int]], torch.Tensor], torch.Tensor],
) -> Check:
    """``fn(model, tokens, heads, mean_z) -> logits``: each listed head's ``hook_z`` at the LAST
    token replaced by its mean ``mean_z[layer, head]``."""
    name = "mean-ablate heads"
    model = exercise_model()
    tokens = torch.tensor([exercise_prompts(1, seed=6)[0].ids])
    mean_z = mean_head_activations(model, exercise_prompts(4, seed=7), progress=False).mean_z
    heads = [(1, 2), (0, 1)]
    got, failed = _call(name, fn, model, tokens, heads, mean_z)
    if failed:
        return failed
    with torch.inference_mode():
        want = model.run_with_hooks(tokens, fwd_hooks=mean_ablate_heads(model, heads, mean_z)).float()
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
        return _verdict(name, False, f"return the model's logits, shape {tuple(want.shape)}.")
    got = got.detach().float()
    if _close(got, want):
        return _verdict(name, True, "the heads' last-token outputs are their clean means.")

    def variant(value="mean", where=-1, shift=0):
        def hook(z, hook):
            for l, h in heads:
                if (l + shift) % 2 == hook.layer():
                    z[:, where, h] = 0 if value == "zero" else mean_z[l, h]
            return z

        with torch.inference_mode():
            return model.run_with_hooks(
                tokens, fwd_hooks=[(hook_name("z", l), hook) for l in range(model_info(model).n_layers)]
            ).float()

    if _close(got, variant(value="zero")):
        return _verdict(
            name, False, "you zeroed the heads; mean-ablation writes their MEAN output (mean_z) instead."
        )
    if _close(got, variant(where=slice(None))):
        return _verdict(name, False, "you ablated every position: replace the last token's z only.")
    if _close(got, variant(shift=1)):
        return _verdict(name, False, "the layer is off by one: head (l, h) lives in blocks.l.attn.hook_z.")
    return _verdict(name, False, "the logits differ from replacing the heads' last-token z by mean_z.")


# --- 7. the minimal head set --------------------------------------------------------------------------
def check_minimal_prefix(
    fn: Callable[[Callable[[list[tuple[int, int]]], float], list[tuple[int, int]], float], list],
) -> Check:
    """``fn(accuracy_of, ranked_heads, target) -> heads``: the SHORTEST prefix of ``ranked_heads``
    whose ``accuracy_of(prefix) >= target`` (all of them if none reaches it)."""
    name = "minimal prefix"
    ranked = [(3, 1), (2, 0), (5, 4), (1, 1), (4, 2), (0, 3)]
    table = {1: 0.2, 2: 0.5, 3: 0.8, 4: 0.7, 5: 0.9, 6: 0.95}

    def accuracy_of(heads):
        heads = list(heads)
        if heads != ranked[: len(heads)]:
            raise ValueError("accuracy_of was asked about heads that are not a prefix of the ranking")
        return table.get(len(heads), 0.0)

    for target, want in ((0.8, 3), (0.75, 3), (0.96, 6), (0.1, 1)):
        got, failed = _call(name, fn, accuracy_of, list(ranked), target)
        if failed:
            return failed
        got = [tuple(x) for x in got]
        if got == ranked[:want]:
            continue
        if got == ranked[: want + 1]:
            return _verdict(
                name, False, "one head too many: stop at the FIRST prefix that reaches the target."
            )
        if want > 1 and got == ranked[: want - 1]:
            return _verdict(
                name, False, "one head too few: the prefix must REACH the target (>=), check your off-by-one."
            )
        if target == 0.8 and got == ranked[:5]:
            return _verdict(name, False, "the target is reached when accuracy >= target, not > target.")
        if sorted(got) == sorted(ranked[:want]):
            return _verdict(name, False, "keep the heads in the ranking's order.")
        return _verdict(name, False, f"for target {target}: expected the first {want} heads, got {got}.")
    return _verdict(name, True, "the shortest prefix reaching the target, in every case.")


# --- 8. capstone: a contrastive steering vector --------------------------------------------------------
def check_steering_vector(
    fn: Callable[[object, list[EncodedPrompt], list[EncodedPrompt], int], torch.Tensor], model=None
) -> Check:
    """``fn(model, positive, negative, layer) -> [d_model]``: mean last-token ``hook_resid_post`` after
    ``layer`` over the positive prompts, minus the same over the negative ones."""
    name = "steering vector"
    cases = [
        ("tiny model", exercise_model(), exercise_prompts(3, seed=8), exercise_prompts(2, kind="zero_shot"))
    ]
    if model is not None:
        from .beyond.steering import encode_texts

        pos = encode_texts(model, ["I loved every minute of it", "What a wonderful day"])
        neg = encode_texts(model, ["I hated every minute of it", "What a terrible day"])
        cases.append((model_info(model).name, model, pos, neg))
    for where, m, pos, neg in cases:
        info = model_info(m)
        layer = info.n_layers // 2
        got, failed = _call(name, fn, m, pos, neg, layer)
        if failed:
            return failed
        got, failed = _tensor(name, got, (info.d_model,))
        if failed:
            return failed
        p_post = torch.stack([_states(m, p, "resid_post")[:, -1] for p in pos])  # [n, layer, d_model]
        n_post = torch.stack([_states(m, p, "resid_post")[:, -1] for p in neg])
        want = p_post[:, layer].mean(0) - n_post[:, layer].mean(0)
        if _close(got, want, 1e-3):
            continue
        if _close(got, -want, 1e-3):
            return _verdict(name, False, "the sign is flipped: positive minus negative.")
        if _close(got, p_post[:, layer].sum(0) - n_post[:, layer].sum(0), 1e-3):
            return _verdict(
                name, False, "you summed over prompts: take each set's MEAN, then the difference."
            )
        if layer + 1 < info.n_layers and _close(
            got, p_post[:, layer + 1].mean(0) - n_post[:, layer + 1].mean(0), 1e-3
        ):
            return _verdict(name, False, "the layer is off by one: use blocks.{layer}.hook_resid_post.")
        if _close(got, p_post[:, layer - 1].mean(0) - n_post[:, layer - 1].mean(0), 1e-3):
            return _verdict(
                name,
                False,
                "the layer is off by one (layer - 1, or hook_resid_pre): use resid_post of layer.",
            )
        first = torch.stack([_states(m, p, "resid_post")[layer, 0] for p in pos]).mean(0) - torch.stack(
            [_states(m, p, "resid_post")[layer, 0] for p in neg]
        ).mean(0)
        if _close(got, first, 1e-3):
            return _verdict(name, False, "you took the FIRST token (BOS): the last token carries the prompt.")
        return _verdict(
            name, False, f"on the {where}, the vector differs from mean(positive) - mean(negative)."
        )
    on = " and ".join(c[0] for c in cases)
    return _verdict(name, True, f"mean positive minus mean negative last-token state, on the {on}.")
