"""Learned soft task vectors (workbench.soft) on tiny random models."""

from dataclasses import replace

import pytest
import torch
from reference import hf_ranks, spearman_by_hand, top1

from workbench.base.stats import spearman
from workbench.beyond.soft import SoftTaskVector, fit_soft_task_vector, soft_hooks, soft_loss, soft_vs_fv
from workbench.core.forward import last_token_logits
from workbench.core.heads import mean_head_activations
from workbench.core.hooks import mean_ablate_heads
from workbench.core.scan import HeadScan
from workbench.data.prompts import encode_prompts, sample_prompts
from workbench.method.pipeline import run_task
from workbench.method.protocol import Protocol
from workbench.method.vectors import VectorMismatch
from workbench.show import figures


@pytest.fixture(scope="module")
def setup(tiny, toy_task):
    """The tiny llama, zero-shot train prompts and task means from a few clean ICL prompts."""
    model = tiny["llama"]
    split = toy_task.split(0)
    train, _ = encode_prompts(model.tokenizer, sample_prompts(split, 24, 0, "zero_shot", "train"), 0)
    clean, _ = encode_prompts(model.tokenizer, sample_prompts(split, 6, 3, "icl", "valid", seed=1), 0)
    means = mean_head_activations(model, clean, progress=False)
    return model, train, means.mean_z


def test_alpha_zero_is_identity_and_one_is_the_mean_patch(setup):
    model, prompts, mean_z = setup
    prompts = prompts[:6]
    base = last_token_logits(model, prompts)
    zeros = torch.zeros(2, 4)
    torch.testing.assert_close(last_token_logits(model, prompts, soft_hooks(model, zeros, mean_z)), base)
    heads = [(0, 1), (1, 2), (1, 3)]
    alpha = torch.zeros(2, 4)
    for l, h in heads:
        alpha[l, h] = 1.0
    soft = last_token_logits(model, prompts, soft_hooks(model, alpha, mean_z))
    hard = last_token_logits(model, prompts, mean_ablate_heads(model, heads, mean_z))
    assert (soft - base).abs().max() > 1e-3  # the patch does something ...
    torch.testing.assert_close(soft, hard, atol=1e-5, rtol=1e-5)  # ... and exactly the mean patch
    # alpha = 0.5 sits strictly between (the blend, not a switch)
    half = last_token_logits(model, prompts, soft_hooks(model, alpha * 0.5, mean_z))
    assert (half - base).abs().max() > 1e-4 and (half - hard).abs().max() > 1e-4


def test_blend_acts_only_at_the_last_position(setup):
    model, prompts, mean_z = setup
    tokens = torch.tensor([prompts[0].ids])
    seen = {}

    def grab(act, hook):
        seen["resid"] = act.clone()
        return act

    model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_resid_post", grab)])
    clean = seen.pop("resid")
    model.run_with_hooks(
        tokens, fwd_hooks=soft_hooks(model, torch.ones(2, 4), mean_z) + [("blocks.1.hook_resid_post", grab)]
    )
    patched = seen["resid"]
    assert (patched[0, :-1] - clean[0, :-1]).abs().max() == 0
    assert (patched[0, -1] - clean[0, -1]).abs().max() > 1e-3


@pytest.fixture(scope="module")
def planted(toy_task):
    """A task whose answer is always " Yes", and means where only head L1H2 writes that answer.

    The model has larger random weights (initializer_range 0.3) so logits are far from uniform.
    """
    from workbench.core.tiny import tiny_model
    from workbench.data.tasks import Task

    model = tiny_model("llama", initializer_range=0.3)
    task = Task.from_pairs("yes", [(p.input, "Yes") for p in toy_task.pairs])
    split = task.split(0)
    train, _ = encode_prompts(model.tokenizer, sample_prompts(split, 24, 0, "zero_shot", "train"), 0)
    clean, _ = encode_prompts(model.tokenizer, sample_prompts(split, 6, 3, "icl", "valid", seed=1), 0)
    mean_z = mean_head_activations(model, clean, progress=False).mean_z.clone()
    z = (
        model.W_O[1, 2].detach() @ model.W_U[:, train[0].answer_id].detach()
    )  # z @ W_O has a positive dot with the answer
    mean_z[1, 2] = 30 * z / z.norm()
    return model, train, mean_z


def test_fitting_lowers_the_loss_and_sparsity_turns_heads_off(planted):
    model, prompts, mean_z = planted
    kw = dict(steps=20, lr=0.3, batch_size=8, init=0.3, progress=False)
    free = fit_soft_task_vector(model, prompts, mean_z, sparsity=0.0, **kw)
    before = soft_loss(model, prompts, torch.full((2, 4), 0.3), mean_z)
    after = soft_loss(model, prompts, free.alpha, mean_z)
    assert after < before - 1.0, (before, after)
    assert len(free.history["ce"]) == 20 and free.n_params == 8
    assert free.history["ce"][-1] < free.history["ce"][0]
    sparse = fit_soft_task_vector(model, prompts, mean_z, sparsity=1.0, **kw)
    assert sparse.alpha.sum() < free.alpha.sum() - 1.0 and sparse.n_on() < free.n_on()
    assert sparse.n_on() == 1 and sparse.top_heads(1)[0][:2] == (1, 2)  # the planted head, alone
    assert soft_loss(model, prompts, sparse.alpha, mean_z) < before - 1.0
    a = fit_soft_task_vector(model, prompts, mean_z, sparsity=0.1, **{**kw, "steps": 4})
    b = fit_soft_task_vector(model, prompts, mean_z, sparsity=0.1, **{**kw, "steps": 4})
    assert torch.equal(a.alpha, b.alpha) and a.history == b.history  # seeded and deterministic


def test_save_load_round_trip_and_mismatch(setup, tiny, tmp_path):
    model, prompts, mean_z = setup
    g = torch.Generator().manual_seed(0)
    soft = SoftTaskVector(
        torch.rand(2, 4, generator=g),
        mean_z.clone(),
        "tiny-llama",
        "toy",
        {"steps": 3, "sparsity": 0.1},
        {"ce": [2.0, 1.5], "penalty": [0.1, 0.1], "n_on": [1, 2]},
    )
    path = soft.save(tmp_path / "soft.safetensors")
    back = SoftTaskVector.load(path, model=model)
    assert torch.equal(back.alpha, soft.alpha) and torch.equal(back.mean_z, soft.mean_z)
    assert (back.model, back.task, back.hparams, back.history) == (
        soft.model,
        soft.task,
        soft.hparams,
        soft.history,
    )
    torch.testing.assert_close(
        last_token_logits(model, prompts[:4], back.hooks(model)),
        last_token_logits(model, prompts[:4], soft.hooks(model)),
    )
    assert f"{soft.n_on()} of 8 heads" in repr(back) and "<table>" in back._repr_html_()
    with pytest.raises(VectorMismatch, match="gemma3"):
        SoftTaskVector.load(path, model=tiny["gemma3"])
    renamed = SoftTaskVector(soft.alpha, soft.mean_z, "another-model")
    with pytest.raises(VectorMismatch, match="another-model"):
        renamed.hooks(model)


def test_top_heads_and_spearman():
    alpha = torch.tensor([[0.1, 0.9], [0.5, 0.0]])
    soft = SoftTaskVector(alpha, torch.zeros(2, 2, 3), "m")
    assert [(l, h) for l, h, _ in soft.top_heads(3)] == [(0, 1), (1, 0), (0, 0)]
    assert soft.n_on() == 1 and soft.binarized().alpha.tolist() == [[0.0, 1.0], [0.0, 0.0]]
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    # ties share their mean rank: ranks (0.5, 0.5, 2) against (0, 1, 2) -> 0.866
    assert spearman(torch.tensor([1.0, 1.0, 2.0]), torch.tensor([1.0, 2.0, 3.0])) == pytest.approx(0.75**0.5)


def test_soft_vs_fv_end_to_end(tiny, toy_task):
    model = tiny["llama"]
    result = run_task(model, toy_task, Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=2), progress=False)
    out = soft_vs_fv(model, result, steps=3, n_train=16, batch_size=8, progress=False)
    assert set(out["accuracy"]) == {
        "zero_shot",
        "zero_shot_soft",
        "zero_shot_soft_binary",
        "zero_shot_fv",
        "zero_shot_topk_mask",
        "zero_shot_aie_mask_matched",
        "icl",
    }
    assert out["accuracy_unfiltered"]["zero_shot"] == pytest.approx(
        result.accuracy_unfiltered["zero_shot"].top1
    )
    assert out["accuracy_unfiltered"]["zero_shot_fv"] == pytest.approx(
        result.accuracy_unfiltered["zero_shot_fv"].top1
    )
    from workbench.base.stats import spearman

    aie = torch.nan_to_num(result.scan.aie.float(), nan=0.0)
    assert out["n_params"] == 8 and out["spearman_alpha_aie"] == pytest.approx(
        spearman(out["soft"].alpha, aie)
    )
    assert isinstance(out["soft"], SoftTaskVector) and out["top_k"] == len(result.fv.heads)
    again = soft_vs_fv(model, result, n_train=16, batch_size=8, soft=out["soft"], progress=False)
    assert again["accuracy_unfiltered"] == out["accuracy_unfiltered"] and again["soft"] is out["soft"]


def test_soft_alpha_figure():
    g = torch.Generator().manual_seed(0)
    scan = HeadScan(torch.randn(5, 4, 3, generator=g), model="m", task="t")
    alpha = torch.rand(4, 3, generator=g)
    soft = SoftTaskVector(alpha, torch.zeros(4, 3, 2), "m", "t")
    fig = figures.soft_alpha_figure(soft, scan, top_k=3)
    others, top, heat = fig.data
    assert len(others.x) + len(top.x) == 12 and len(top.x) == 3
    assert set(top.text) == {f"L{l}H{h}" for l, h, _ in scan.top_heads(3)}
    assert sorted(top.y) == pytest.approx(sorted(float(alpha[l, h]) for l, h, _ in scan.top_heads(3)))
    assert torch.tensor(heat.z).tolist() == alpha.tolist() and len(fig.layout.shapes) == 3
    outlined = {(int((r.y0 + r.y1) / 2), int((r.x0 + r.x1) / 2)) for r in fig.layout.shapes}
    assert outlined == {(l, h) for l, h, _ in scan.top_heads(3)}
    assert "alpha > 0.5" in fig.layout.title.text


def test_soft_vs_fv_against_plain_transformers(trained, trained_run):
    model, run = trained[0], replace(trained_run, fv_layer=0)
    out = soft_vs_fv(model, run, steps=3, n_train=16, batch_size=8, progress=False)
    sets = run.prompt_sets(model)
    zero = sets["test_zero_shot"]
    mean_z = run.means.mean_z.float()
    alpha = out["soft"].alpha.detach().float()
    k = out["top_k"]
    top = [(l, h) for l, h, _ in run.scan.top_heads(k)]

    def blend(layer, weights):  # z + w * (mean_z - z) per head, at the last position
        return lambda z: z + weights[:, None].to(z.dtype) * (mean_z[layer].to(z.dtype) - z)

    def mask(heads):
        w = torch.zeros_like(alpha)
        for l, h in heads:
            w[l, h] = 1.0
        return {l: blend(l, w[l]) for l in range(w.shape[0])}

    want = {
        "zero_shot": hf_ranks(model, zero),
        "zero_shot_fv": hf_ranks(model, zero, add=(0, run.fv.vector)),
        "zero_shot_soft": hf_ranks(
            model, zero, z_patch={l: blend(l, alpha[l]) for l in range(alpha.shape[0])}
        ),
        "zero_shot_topk_mask": hf_ranks(model, zero, z_patch=mask(top)),
    }
    icl_right = hf_ranks(model, sets["test_icl"]) == 0
    for name, ranks in want.items():
        assert out["accuracy_unfiltered"][name] == pytest.approx(top1(ranks)), name
        assert out["accuracy"][name] == pytest.approx(top1(ranks[icl_right])), name
    flat_aie = torch.nan_to_num(run.scan.aie.float(), nan=0.0).flatten().tolist()
    assert out["spearman_alpha_aie"] == pytest.approx(spearman_by_hand(alpha.flatten().tolist(), flat_aie))
