"""Right solutions pass every check; each typical mistake fails with the message meant for it."""

import pytest
import torch

from workbench import exercises as ex


# --- right solutions (the same as in notebooks/02_exercises_solutions.ipynb) ------------------
def icl_prompt(demos, query):
    blocks = [f"Q: {d.input}\nA: {d.output}" for d in demos] + [f"Q: {query.input}\nA:"]
    return "\n\n".join(blocks)


def mean_z(model, prompts, position=-1, reduce="mean", layer_shift=0):
    n_layers = model.cfg.n_layers
    total = 0
    for p in prompts:
        _, cache = model.run_with_cache(torch.tensor([p.ids]))
        zs = [cache[f"blocks.{(l + layer_shift) % n_layers}.attn.hook_z"][0] for l in range(n_layers)]
        z = torch.stack([x[position] if position != "all" else x.mean(0) for x in zs])
        total = total + z
    return total if reduce == "sum" else total / len(prompts)


def indirect_effect(model, prompt, mz, layer, head, sign=1, where=-1, use_logits=False, hook_shift=0):
    tokens = torch.tensor([prompt.ids])

    def patch(z, hook):
        z[:, where, head] = mz[layer, head]
        return z

    clean = model(tokens)[0, -1]
    site = f"blocks.{layer + hook_shift}.attn.hook_z"
    patched = model.run_with_hooks(tokens, fwd_hooks=[(site, patch)])[0, -1]
    if not use_logits:
        clean, patched = clean.softmax(-1), patched.softmax(-1)
    return float(sign * (patched[prompt.answer_id] - clean[prompt.answer_id]))


def function_vector(model, mz, heads, reduce="sum", map_out=True):
    terms = [mz[l, h] @ model.W_O[l, h] if map_out else mz[l, h] for l, h in heads]
    out = torch.stack(terms).sum(0)
    return out / len(heads) if reduce == "mean" else out


def add_fv(model, tokens, vector, layer, hook_name="hook_resid_post", where=-1, shift=0, sign=1):
    def hook(resid, hook):
        resid[:, where] += sign * vector
        return resid

    return model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer + shift}.{hook_name}", hook)])


def test_right_solutions_pass():
    assert ex.check_icl_prompt(icl_prompt).passed
    assert ex.check_mean_head_activations(mean_z).passed
    assert ex.check_indirect_effect(indirect_effect).passed
    assert ex.check_function_vector(function_vector).passed
    assert ex.check_add_vector(add_fv).passed


def not_done(*args):
    raise NotImplementedError


@pytest.mark.parametrize(
    "check,wrong,message",
    [
        (ex.check_icl_prompt, not_done, "not implemented yet"),
        (ex.check_icl_prompt, lambda d, q: icl_prompt(d, q) + " " + q.output, "query's answer"),
        (ex.check_icl_prompt, lambda d, q: icl_prompt(d, q) + " ", "whitespace after the final 'A:'"),
        (ex.check_icl_prompt, lambda d, q: icl_prompt(d, q).replace(": ", ":"), "put a space"),
        (ex.check_icl_prompt, lambda d, q: icl_prompt(d, q).replace("\n\n", "\n"), "blank line"),
        (ex.check_mean_head_activations, lambda m, p: mean_z(m, p, position=0), "FIRST token"),
        (ex.check_mean_head_activations, lambda m, p: mean_z(m, p, position="all"), "all positions"),
        (ex.check_mean_head_activations, lambda m, p: mean_z(m, p, reduce="sum"), "summed over prompts"),
        (ex.check_mean_head_activations, lambda m, p: mean_z(m, p, layer_shift=1), "shifted by one"),
        (ex.check_mean_head_activations, lambda m, p: mean_z(m, p)[None], "batch or position axis"),
        (ex.check_mean_head_activations, lambda m, p: 1 / 0, "ZeroDivisionError"),
        (ex.check_indirect_effect, lambda *a: indirect_effect(*a, sign=-1), "sign is flipped"),
        (
            ex.check_indirect_effect,
            lambda m, p, z, l, h: indirect_effect(m, p, z, max(l - 1, 0), h),
            "you patched the layer below: blocks.0.attn.hook_z with mean_z[0, 2]",
        ),
        (
            ex.check_indirect_effect,
            lambda *a: indirect_effect(*a, hook_shift=-1),
            "you hooked blocks.0.attn.hook_z, the layer below, while writing mean_z[1, 2]",
        ),
        (
            ex.check_indirect_effect,
            lambda *a: indirect_effect(*a, hook_shift=1),
            "you hooked blocks.1.attn.hook_z, the layer above, while writing mean_z[0, 1]",
        ),
        (ex.check_indirect_effect, lambda *a: indirect_effect(*a, where=slice(None)), "every position"),
        (ex.check_indirect_effect, lambda *a: indirect_effect(*a, use_logits=True), "probabilities"),
        (ex.check_function_vector, lambda *a: function_vector(*a, map_out=False), "W_O"),
        (ex.check_function_vector, lambda *a: function_vector(*a, reduce="mean"), "SUM"),
        (ex.check_add_vector, lambda *a: add_fv(*a, hook_name="hook_resid_pre"), "BEFORE block"),
        (ex.check_add_vector, lambda *a: add_fv(*a, shift=1), "one layer too late (blocks.1): use blocks.0"),
        (ex.check_add_vector, lambda *a: add_fv(*a, sign=-1), "you subtracted the vector"),
        (
            ex.check_add_vector,
            lambda *a: add_fv(*a, hook_name="hook_resid_pre"),
            "at blocks.0.hook_resid_post",
        ),
        (ex.check_add_vector, lambda *a: add_fv(*a, where=slice(None)), "every position"),
        (ex.check_add_vector, lambda *a: add_fv(*a, where=0), "first token"),
    ],
)
def test_wrong_solutions_get_the_intended_message(check, wrong, message):
    result = check(wrong)
    assert not result.passed
    assert message in result.message, result.message
    assert "{" not in result.message, result.message  # no unfilled f-string placeholder


def raises(*args):
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    "check",
    [
        ex.check_icl_prompt,
        ex.check_mean_head_activations,
        ex.check_indirect_effect,
        ex.check_function_vector,
        ex.check_add_vector,
    ],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize(
    "student,message",
    [
        (lambda *a: None, "returned None: return"),
        (lambda *a: object(), "return|expected"),
        (lambda *a: [1, 2], "return|expected"),
        (lambda *a: torch.zeros(3, 5, 7), "return|expected"),
        (raises, "your function raised RuntimeError: boom"),
    ],
)
def test_every_check_answers_whatever_the_function_does(check, student, message):
    result = check(student)
    assert isinstance(result, ex.Check) and not result.passed
    assert result.name and any(m in result.message for m in message.split("|")), result.message
