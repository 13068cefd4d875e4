"""Studies against independent computations: plain per-prompt forwards and hooks written here, not the
workbench's batched forwards or intervention vocabulary.  On the trained tiny model, whose accuracies
are neither 0 nor 1, so a wrong study gives a different number."""

import random

import pytest
import torch
from reference import add_after, patch_heads, plain_top1

from workbench.method.pipeline import run_task
from workbench.method.protocol import Protocol
from workbench.studies.paper import ablation, baseline_sweeps, composition

PROTOCOL = Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=3, seed=2)


@pytest.fixture(scope="module")
def run(trained):
    result = run_task(trained[0], trained[1], PROTOCOL, progress=False)
    assert 0 < result.accuracy_unfiltered["icl"].top1 < 1  # the equalities below are not trivial
    return result


def test_ablation_against_plain_hooks(trained, run):
    model = trained[0]
    icl = run.prompt_sets(model)["test_icl"]
    mean_z = run.means.mean_z

    def patch(heads):
        return patch_heads(mean_z, heads)

    def project(act, hook):
        u = run.fv.vector / run.fv.vector.norm()
        act[:, -1] = act[:, -1] - (act[:, -1] @ u)[:, None] * u
        return act

    out = ablation(model, run, n_random=2)
    heads = list(run.fv.heads)
    assert out["none"] == pytest.approx(plain_top1(model, icl))
    assert out["top_heads"] == pytest.approx(plain_top1(model, icl, lambda i: patch(heads)))
    others = [(l, h) for l in range(2) for h in range(4) if (l, h) not in heads]
    rng = random.Random(PROTOCOL.seed)
    draws = [plain_top1(model, icl, lambda i, s=rng.sample(others, len(heads)): patch(s)) for _ in range(2)]
    assert out["random_heads"] == pytest.approx(sum(draws) / 2) and out["random_heads_min"] == pytest.approx(
        min(draws)
    )
    every_layer = [(f"blocks.{l}.hook_resid_post", project) for l in range(2)]
    assert out["fv_projected_out"] == pytest.approx(plain_top1(model, icl, lambda i: every_layer))


def test_baseline_sweeps_against_plain_hooks(trained, run):
    model = trained[0]
    sets = run.prompt_sets(model)
    zero, donors = sets["test_zero_shot"], sets["donors"]
    sweeps = baseline_sweeps(model, run, progress=False)
    for layer in range(2):
        states = []
        with torch.no_grad():
            for p in donors:
                _, cache = model.run_with_cache(torch.tensor([p.ids]))
                states.append(cache[f"blocks.{layer}.hook_resid_post"][0, -1])

        def replace(i, layer=layer, states=states):
            def hook(act, hook):
                act[:, -1] = states[i]
                return act

            return [(f"blocks.{layer}.hook_resid_post", hook)]

        task_vector = sweeps["task vector"].results["zero_shot"][layer].top1
        assert task_vector == pytest.approx(plain_top1(model, zero, replace))
        mean_state = sweeps["mean state"].results["zero_shot"][layer].top1
        assert mean_state == pytest.approx(
            plain_top1(model, zero, lambda i: add_after(layer, run.means.mean_resid[layer]))
        )
    assert sweeps["mean state"].baseline["zero_shot"].top1 == pytest.approx(plain_top1(model, zero))


def test_composition_against_plain_hooks(tiny, trained, run):
    from workbench.data.tasks import Task

    model = trained[0]
    lower = Task.from_pairs("copy", [(p.input, p.input.lower()) for p in trained[1].pairs])
    part = run_task(model, lower, PROTOCOL, progress=False)
    out = composition(model, run, [run, part])
    zero = run.prompt_sets(model)["test_zero_shot"]
    layer = run.fv_layer
    assert out["own_fv"] == pytest.approx(plain_top1(model, zero, lambda i: add_after(layer, run.fv.vector)))
    total = run.fv.vector + part.fv.vector
    assert out["sum_of_parts"] == pytest.approx(plain_top1(model, zero, lambda i: add_after(layer, total)))
    assert out["part 2 only"] == pytest.approx(
        plain_top1(model, zero, lambda i: add_after(layer, part.fv.vector))
    )
    assert out["zero_shot"] == pytest.approx(plain_top1(model, zero))
    other = run_task(tiny["gpt2"], lower, PROTOCOL, progress=False)
    from workbench.method.result import ResultMismatch

    with pytest.raises(ResultMismatch):
        composition(model, run, [run, other])  # a part from another model


def test_minimal_heads_against_plain_hooks(trained, run):
    from workbench.studies.paper import find_minimal_heads

    model = trained[0]
    sets = run.prompt_sets(model)
    valid = sets["valid_zero_shot"]
    ranked = [(l, h) for l, h, _ in run.scan.top_heads(8)]

    def fv_of(heads):
        return sum((run.means.mean_out[l, h] for l, h in heads), torch.zeros(run.means.mean_out.shape[-1]))

    def plain_valid(heads):
        return plain_top1(model, valid, lambda i: add_after(run.fv_layer, fv_of(heads)) if heads else [])

    reference = plain_top1(model, sets["valid_icl"])
    for share in (0.5,):
        found = find_minimal_heads(model, run, share=share, max_heads=8, progress=False)
        target = share * reference
        assert found.reference == pytest.approx(reference) and found.target == pytest.approx(target)
        # the prefix search: every shorter prefix misses the target, by plain hooks
        k = len(found.curve)
        for j in range(1, k + 1):
            assert found.curve[j] == pytest.approx(plain_valid(ranked[:j]))
        assert all(found.curve[j] < target for j in range(1, k))
        assert found.valid == pytest.approx(plain_valid(found.heads))
        assert found.reached  # the trained model reaches half its ICL accuracy: the search is checked
        assert found.valid >= target and set(found.heads) <= set(ranked[:k])
        # pruned: no single remaining head can go without missing the target
        for head in found.heads:
            rest = [x for x in found.heads if x != head]
            assert not rest or plain_valid(rest) < target
        right = run.icl_correct
        test_ranks = []
        with torch.no_grad():
            for p in sets["test_zero_shot"]:
                logits = model.run_with_hooks(
                    torch.tensor([p.ids]), fwd_hooks=add_after(run.fv_layer, fv_of(found.heads))
                )[0, -1]
                test_ranks.append(int((logits > logits[p.answer_id]).sum()))
        kept = [r for r, ok in zip(test_ranks, right.tolist()) if ok]
        assert found.test == pytest.approx(sum(r == 0 for r in kept) / len(kept))


def test_studies_are_cached_as_stages(trained, run, tmp_path):
    from workbench.base.stage_cache import StageCache
    from workbench.studies.cache import cached_study, int_keys
    from workbench.studies.paper import head_count_curves

    model, cache, calls, firsts = trained[0], StageCache(tmp_path), [], {}

    def counted(fn):
        def compute():
            calls.append(fn)
            return fn()

        return compute

    studies = {
        "ablation": lambda: ablation(model, run, n_random=1),
        "baseline_sweeps": lambda: baseline_sweeps(model, run, progress=False),
        "head_count_curves": lambda: head_count_curves(model, run, counts=(0, 1, 2), progress=False),
    }
    for name, fn in studies.items():
        first = firsts[name] = cached_study(cache, name, model, run, {}, counted(fn))
        again = cached_study(cache, name, model, run, {}, counted(fn))
        fresh = fn()
        if name == "baseline_sweeps":
            for k in fresh:
                a, b = again[k].to_tensors(), fresh[k].to_tensors()
                assert all(torch.equal(a[t], b[t]) for t in b)
        elif name == "head_count_curves":
            assert int_keys(again) == fresh == int_keys(first)
        else:
            assert again == fresh == first
    assert len(calls) == len(studies)  # each computed once; the second call read the stage
    other = cached_study(cache, "ablation", model, run, {"n_random": 2}, counted(studies["ablation"]))
    assert len(calls) == len(studies) + 1 and other == firsts["ablation"]  # other arguments: another key
