"""The course chapter's checks: right solutions pass, each typical mistake gets the message meant for it."""

import pytest
import torch

from workbench import course as c


# --- right solutions (as in notebooks/05_course_solutions.ipynb), with a switch per mistake ----------
def task_state(model, prompt, layer, site="hook_resid_post", shift=0, pos=-1, keep_batch=False):
    _, cache = model.run_with_cache(torch.tensor([prompt.ids]))
    x = cache[f"blocks.{layer + shift}.{site}"]
    if keep_batch:
        return x[:, -1]
    return x[0].mean(0) if pos == "mean" else x[0, pos]


def layer_sweep(
    model, states, prompts, reduce="mean", site="hook_resid_post", shift=0, where=-1, logits=False
):
    out = []
    for layer in range(model.cfg.n_layers):
        v = states[layer]

        def hook(x, hook):
            x[:, where] += v
            return x

        vals = []
        for p in prompts:
            lg = model.run_with_hooks(
                torch.tensor([p.ids]), fwd_hooks=[(f"blocks.{layer + shift}.{site}", hook)]
            )
            lg = lg[0, -1]
            vals.append(float(lg[p.answer_id] if logits else lg.softmax(-1)[p.answer_id]))
        out.append(sum(vals) if reduce == "sum" else sum(vals) / len(vals))
    return out


def generate_with_fv(model, ids, vector, layer, n_new, mode="every", with_prompt=False, shift=0):
    tokens = torch.tensor([ids])
    start = len(ids) - 1
    new = []
    for step in range(n_new):

        def hook(x, hook):
            if mode == "every":
                x[:, start:] += vector
            elif mode == "all":
                x[:, :] += vector
            elif mode == "first_step" and step == 0:
                x[:, -1] += vector
            elif mode == "prompt_last":
                x[:, start] += vector
            elif mode == "newest":
                x[:, -1] += vector
            return x

        nxt = int(
            model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer + shift}.hook_resid_post", hook)])[
                0, -1
            ].argmax()
        )
        new.append(nxt)
        tokens = torch.cat([tokens, torch.tensor([[nxt]])], 1)
    return list(ids) + new if with_prompt else new


def cosine(u, v, how="both"):
    dot = float(u @ v)
    return {"both": dot / float(u.norm() * v.norm()), "none": dot, "one": dot / float(u.norm())}[how]


def project_out(resid, direction, normalise=True, keep="rest", sign=-1):
    u = direction / direction.norm() if normalise else direction
    along = (resid @ u)[..., None] * u
    return along if keep == "along" else resid + sign * along


def mean_ablate(model, tokens, heads, mean_z, value="mean", where=-1, shift=0):
    def hook(z, hook):
        for l, h in heads:
            if l + shift == hook.layer():
                z[:, where, h] = 0 if value == "zero" else mean_z[l, h]
        return z

    return model.run_with_hooks(
        tokens, fwd_hooks=[(f"blocks.{l}.attn.hook_z", hook) for l in range(model.cfg.n_layers)]
    )


def minimal_prefix(accuracy_of, ranked, target, extra=0, strict=False, shuffle=False):
    for k in range(1, len(ranked) + 1):
        acc = accuracy_of(ranked[:k])
        if acc > target if strict else acc >= target:
            out = ranked[: min(k + extra, len(ranked))] if extra >= 0 else ranked[: k + extra]
            return list(reversed(out)) if shuffle else out
    return ranked


def steering_vector(model, positive, negative, layer, sign=1, reduce="mean", shift=0, pos=-1):
    def mean_state(prompts):
        xs = []
        for p in prompts:
            _, cache = model.run_with_cache(torch.tensor([p.ids]))
            xs.append(cache[f"blocks.{layer + shift}.hook_resid_post"][0, pos])
        x = torch.stack(xs)
        return x.sum(0) if reduce == "sum" else x.mean(0)

    return sign * (mean_state(positive) - mean_state(negative))


def test_right_solutions_pass():
    for check, fn in [
        (c.check_task_state, task_state),
        (c.check_layer_sweep, layer_sweep),
        (c.check_generate_with_fv, generate_with_fv),
        (c.check_cosine, cosine),
        (c.check_project_out, project_out),
        (c.check_mean_ablate, mean_ablate),
        (c.check_minimal_prefix, minimal_prefix),
        (c.check_steering_vector, steering_vector),
    ]:
        result = check(fn)
        assert result.passed, result


def not_done(*args):
    raise NotImplementedError


@pytest.mark.parametrize(
    "check,wrong,message",
    [
        (c.check_task_state, not_done, "not implemented yet"),
        (c.check_task_state, lambda *a: task_state(*a, site="hook_resid_pre"), "BEFORE the block"),
        (
            c.check_task_state,
            lambda m, p, l: task_state(m, p, l, shift=1 if l == 0 else 0),
            "you took blocks.1, layer + 1): for layer 0, use blocks.0.hook_resid_post",
        ),
        (
            c.check_task_state,
            lambda m, p, l: task_state(m, p, l, shift=-1 if l == 1 else 0),
            "the same as blocks.0.hook_resid_post: layer - 1): take blocks.1.hook_resid_post",
        ),
        (c.check_layer_sweep, lambda *a: layer_sweep(*a, shift=1), "blocks.2.hook_resid_post is not a layer"),
        (c.check_task_state, lambda *a: task_state(*a, pos=0), "FIRST token"),
        (c.check_task_state, lambda *a: task_state(*a, pos="mean"), "averaged over positions"),
        (c.check_task_state, lambda *a: task_state(*a, keep_batch=True), "batch axis"),
        (c.check_layer_sweep, lambda *a: layer_sweep(*a, reduce="sum"), "summed the probabilities"),
        (c.check_layer_sweep, lambda *a: layer_sweep(*a, logits=True), "averaged logits"),
        (c.check_layer_sweep, lambda *a: layer_sweep(*a, site="hook_resid_pre"), "BEFORE block l"),
        (c.check_layer_sweep, lambda *a: layer_sweep(*a, where=slice(None)), "every position"),
        (c.check_layer_sweep, lambda m, s, p: layer_sweep(m, s, p)[:-1], "one number per layer"),
        (c.check_generate_with_fv, lambda *a: generate_with_fv(*a, mode="first_step"), "every generated"),
        (
            c.check_generate_with_fv,
            lambda *a: generate_with_fv(*a, mode="all"),
            "every position of the prompt",
        ),
        (c.check_generate_with_fv, lambda *a: generate_with_fv(*a, with_prompt=True), "only the NEW"),
        (c.check_generate_with_fv, lambda *a: generate_with_fv(*a, mode="none"), "no effect"),
        (
            c.check_generate_with_fv,
            lambda *a: generate_with_fv(*a, mode="prompt_last"),
            "at the prompt's last position only, on every step",
        ),
        (
            c.check_generate_with_fv,
            lambda *a: generate_with_fv(*a, mode="newest"),
            "only at the newest position of each step",
        ),
        (
            c.check_generate_with_fv,
            lambda *a: generate_with_fv(*a, shift=1),
            "you hooked blocks.1.hook_resid_post, one layer too late",
        ),
        (c.check_generate_with_fv, lambda m, i, v, l, n: [1] * n, "saw no forward pass"),
        (c.check_generate_with_fv, lambda m, i, v, l, n: "Cold", "not the decoded text"),
        (c.check_cosine, lambda u, v: cosine(u, v, "none"), "plain dot product"),
        (c.check_cosine, lambda u, v: cosine(u, v, "one"), "one norm only"),
        (c.check_cosine, lambda u, v: -cosine(u, v), "sign"),
        (c.check_project_out, lambda r, d: project_out(r, d, keep="along"), "ALONG the direction"),
        (c.check_project_out, lambda r, d: project_out(r, d, sign=1), "sign is flipped"),
        (c.check_project_out, lambda r, d: project_out(r, d, normalise=False), "normalise the direction"),
        (c.check_project_out, lambda r, d: project_out(r, d)[0], "expected shape"),
        (c.check_mean_ablate, lambda *a: mean_ablate(*a, value="zero"), "you zeroed the heads"),
        (c.check_mean_ablate, lambda *a: mean_ablate(*a, where=slice(None)), "every position"),
        (
            c.check_mean_ablate,
            lambda *a: mean_ablate(*a, shift=1),
            "off by one (layer +1): you wrote head (0, 1)'s mean into blocks.1.attn.hook_z",
        ),
        (
            c.check_mean_ablate,
            lambda *a: mean_ablate(*a, shift=-1),
            "off by one (layer -1): you wrote head (1, 2)'s mean into blocks.0.attn.hook_z",
        ),
        (c.check_minimal_prefix, lambda *a: minimal_prefix(*a, extra=1), "one head too many"),
        (c.check_minimal_prefix, lambda *a: minimal_prefix(*a, extra=-1), "one head too few"),
        (c.check_minimal_prefix, lambda *a: minimal_prefix(*a, strict=True), ">= target"),
        (c.check_minimal_prefix, lambda *a: minimal_prefix(*a, shuffle=True), "ranking's order"),
        (c.check_minimal_prefix, lambda *a: len(minimal_prefix(*a)), "you returned the count k = 3"),
        (c.check_minimal_prefix, lambda *a: None, "returned None"),
        (c.check_steering_vector, lambda *a: steering_vector(*a, sign=-1), "sign is flipped"),
        (c.check_steering_vector, lambda *a: steering_vector(*a, reduce="sum"), "summed over prompts"),
        (
            c.check_steering_vector,
            lambda *a: steering_vector(*a, shift=-1),
            "off by one (you took blocks.0.hook_resid_post, or blocks.1.hook_resid_pre)",
        ),
        (c.check_steering_vector, lambda *a: steering_vector(*a, pos=0), "FIRST token"),
        (c.check_steering_vector, lambda *a: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_wrong_solutions_get_the_intended_message(check, wrong, message):
    result = check(wrong)
    assert not result.passed
    assert message in result.message, result.message
    assert "{" not in result.message, result.message  # no unfilled f-string placeholder


CHECKS = [
    c.check_task_state,
    c.check_layer_sweep,
    c.check_mean_head_activations,
    c.check_indirect_effect,
    c.check_function_vector,
    c.check_generate_with_fv,
    c.check_cosine,
    c.check_project_out,
    c.check_mean_ablate,
    c.check_minimal_prefix,
    c.check_steering_vector,
]


def raises(*args):
    raise RuntimeError("boom")


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    "student,message",
    [
        (lambda *a: None, "returned None: return"),
        (lambda *a: object(), "return|expected"),
        (lambda *a: {"a": 1}, "return|expected"),
        (lambda *a: "text", "return|expected"),
        (lambda *a: torch.zeros(3, 5, 7), "return|expected"),
        (raises, "your function raised RuntimeError: boom"),
        (not_done, "not implemented yet"),
    ],
)
def test_every_check_answers_whatever_the_function_does(check, student, message):
    result = check(student)
    assert isinstance(result, c.Check) and not result.passed
    assert result.name and any(m in result.message for m in message.split("|")), result.message


def test_a_check_given_no_function_answers():
    result = c.check_cosine(None)
    assert not result.passed and "pass your function itself" in result.message


def test_the_generation_check_tells_the_ways_of_placing_the_fv_apart():
    """The check's case makes each known way of keeping the FV on give its own logits at every step
    (so a mistake cannot pass because the vector fixes the tokens), and its reference is the workbench's
    own steered generation."""
    from workbench.core.hooks import add_vector
    from workbench.teach import course as module

    model = c.exercise_model()
    ids, vector, layer, n_new = module._generation_case()
    want = module._generate(model, ids, vector, layer, n_new)
    tokens = torch.tensor([ids])
    hooks = add_vector(model, layer, vector, from_position=len(ids) - 1)
    for _ in range(n_new):  # the workbench's add_vector, independently of the check's own placements
        nxt = model.run_with_hooks(tokens, fwd_hooks=hooks)[0, -1].argmax()
        tokens = torch.cat([tokens, nxt.view(1, 1)], 1)
    assert tokens[0, len(ids) :].tolist() == want
    start, ways = len(ids) - 1, list(module._GENERATION_WAYS)
    steps = [
        {w: module._step_logits(model, ids + want[:k], vector, layer, k, start, w) for w in ways}
        for k in range(n_new)
    ]
    for i, a in enumerate(ways):
        for b in ways[i + 1 :]:
            assert any((s[a] - s[b]).abs().max() > 1e-3 for s in steps), (a, b)


def test_the_exercise_model_needs_no_detach():
    """A learner's ``float(logits[...])`` on the exercise model is a plain number: its weights take no
    gradient, so torch has no ``requires_grad`` warning to print (torch prints that one once per process,
    so the weights are what the test can see)."""
    model = c.exercise_model()
    assert not any(p.requires_grad for p in model.parameters())
    prompt = c.exercise_prompts(1)[0]
    assert not model(torch.tensor([prompt.ids])).requires_grad


@pytest.mark.real_model
def test_checks_on_the_embedded_model(real_model):
    assert c.check_task_state(task_state, model=real_model).passed
    assert c.check_steering_vector(steering_vector, model=real_model).passed
    wrong = c.check_task_state(lambda *a: task_state(*a, site="hook_resid_pre"), model=real_model)
    assert not wrong.passed and "BEFORE the block" in wrong.message
