"""The headline numbers against computations that share no code with the workbench.

On the trained tiny Llama (``trained_tiny.py``: clean ICL answers some test queries right and some
wrong), each number is recomputed in plain transformers: forward hooks on the Hugging Face
modules (the output projection's input for head outputs, a decoder layer's output for added
vectors), one unbatched forward per prompt, ranks counted by hand.  Only the prompts' token ids
come from the workbench (their text has its own tests in test_prompts.py).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from workbench.core.scan import HeadScan


def hf_of(model):
    return model.original_model


def ranks_by_hand(model, prompts, *, add=None, add_from=None, z_patch=None) -> torch.Tensor:
    """Per prompt, how many logits beat the answer's, in plain transformers.

    add: ``(layer, vector)`` added to decoder layer ``layer``'s output at the last position (or,
    with ``add_from=i``, at positions ``i`` and later); z_patch: ``{layer: fn(z_last) -> z_last}``
    applied to the output projection's input at the last position (``z`` as ``[heads, d_head]``).
    """
    hf = hf_of(model)
    cfg = hf.config
    d_head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    handles = []
    if add is not None:
        layer, vector = add

        def add_hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            where = slice(-1, None) if add_from is None else slice(add_from, None)
            hidden[:, where] += vector.to(hidden.dtype)
            return output

        handles.append(hf.model.layers[layer].register_forward_hook(add_hook))
    for layer, fn in (z_patch or {}).items():

        def pre_hook(module, args, fn=fn):
            (x,) = args
            x = x.clone()
            last = x[:, -1].reshape(x.shape[0], -1, d_head)
            x[:, -1] = fn(last).reshape(x.shape[0], -1)
            return (x,)

        handles.append(hf.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(pre_hook))
    try:
        out = []
        with torch.no_grad():
            for p in prompts:
                logits = hf(torch.tensor([p.ids])).logits[0, -1]
                out.append(int((logits > logits[p.answer_id]).sum()))
    finally:
        for h in handles:
            h.remove()
    return torch.tensor(out)


def top1(ranks: torch.Tensor) -> float:
    return float((ranks == 0).float().mean())


def mean_head_outputs_by_hand(model, prompts) -> torch.Tensor:
    """``[layer, head, d_model]``: each head's last-position output through its slice of W_O, averaged."""
    hf = hf_of(model)
    cfg = hf.config
    n_heads = cfg.num_attention_heads
    d_head = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    sums = torch.zeros(cfg.num_hidden_layers, n_heads, cfg.hidden_size)
    handles = []
    for layer, block in enumerate(hf.model.layers):
        w = block.self_attn.o_proj.weight  # [d_model, heads * d_head]

        def grab(module, args, layer=layer, w=w):
            z = args[0][0, -1].reshape(n_heads, d_head)
            for h in range(n_heads):
                sums[layer, h] += (w[:, h * d_head : (h + 1) * d_head] @ z[h]).float()

        handles.append(block.self_attn.o_proj.register_forward_pre_hook(grab))
    try:
        with torch.no_grad():
            for p in prompts:
                hf(torch.tensor([p.ids]))
    finally:
        for h in handles:
            h.remove()
    return sums / len(prompts)


# --- the run's headline numbers -------------------------------------------------------------------


def test_function_vector_and_headline_accuracies_against_plain_transformers(trained, trained_run):
    model, run = trained[0], trained_run
    sets = run.prompt_sets(model)
    mean_out = mean_head_outputs_by_hand(model, sets["means"])
    fv = sum(mean_out[l, h] for l, h in run.fv.heads)
    torch.testing.assert_close(run.fv.vector, fv, atol=1e-4, rtol=1e-4)
    assert run.fv.heads == [(l, h) for l, h, _ in run.scan.top_heads(len(run.fv.heads))]
    layer = run.fv_layer
    conditions = {
        "icl": ranks_by_hand(model, sets["test_icl"]),
        "zero_shot": ranks_by_hand(model, sets["test_zero_shot"]),
        "zero_shot_fv": ranks_by_hand(model, sets["test_zero_shot"], add=(layer, fv)),
        "shuffled": ranks_by_hand(model, sets["test_shuffled"]),
        "shuffled_fv": ranks_by_hand(model, sets["test_shuffled"], add=(layer, fv)),
    }
    right = conditions["icl"] == 0
    assert 0 < int(right.sum()) < len(right)  # a model that answers some queries right, not all
    for name, ranks in conditions.items():
        assert torch.equal(run.accuracy_unfiltered[name].ranks, ranks), name
        assert run.accuracy_unfiltered[name].top1 == pytest.approx(top1(ranks)), name
        assert run.accuracy[name].top1 == pytest.approx(top1(ranks[right])), name  # the paper's filter
    assert run.accuracy["icl"].top1 == 1.0


# --- where the FV is added (studies/positions.py) ----------------------------------------------------


def test_every_position_effect_against_plain_transformers(trained, trained_run):
    from workbench.studies.positions import every_position_effect

    model, run = trained[0], dataclasses.replace(trained_run, fv_layer=0)  # a layer with one after it
    alphas = [1.0, 4.0]
    out = every_position_effect(model, run, alphas)
    sets, v = run.prompt_sets(model), run.fv.vector
    assert out["layer"] == 0 and out["alphas"] == alphas
    moved = False
    for name in ("zero_shot", "shuffled"):
        prompts = sets[f"test_{name}"]
        row = out[name]
        assert row["n"] == len(prompts)
        assert row["none"] == pytest.approx(top1(ranks_by_hand(model, prompts)))
        for a in alphas:
            last = top1(ranks_by_hand(model, prompts, add=(0, a * v)))
            every = top1(ranks_by_hand(model, prompts, add=(0, a * v), add_from=0))
            after_bos = top1(ranks_by_hand(model, prompts, add=(0, a * v), add_from=1))
            assert row["last"][str(a)] == pytest.approx(last)
            assert row["every"][str(a)] == pytest.approx(every)
            assert row["every_after_bos"][str(a)] == pytest.approx(after_bos)
            moved |= every != last
    assert moved  # the positions make a difference here, so the three conditions are told apart


# --- agreement of scans and runs (studies/agreement.py) ------------------------------------------------


def ranks_with_ties(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def spearman_by_hand(a: list[float], b: list[float]) -> float:
    ra, rb = ranks_with_ties(a), ranks_with_ties(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def top_by_hand(aie: torch.Tensor, k: int) -> set[tuple[int, int]]:
    cells = [(float(aie[l, h]), l, h) for l in range(aie.shape[0]) for h in range(aie.shape[1])]
    return {(l, h) for _, l, h in sorted(cells, key=lambda c: -c[0])[:k]}


def test_compare_scans_and_runs_against_hand_computations(trained, trained_run):
    from workbench.studies.agreement import compare_runs, compare_scans, merge_results

    exact = trained_run.scan
    g = torch.Generator().manual_seed(3)
    other = HeadScan(exact.effects + 0.05 * torch.randn(exact.effects.shape, generator=g), model=exact.model)
    a, b = exact.aie.flatten().tolist(), other.aie.flatten().tolist()
    for k in (1, 3, 8):
        got = compare_scans(exact, other, k)
        assert got["spearman"] == pytest.approx(spearman_by_hand(a, b))
        assert got["top_k_overlap"] == pytest.approx(
            len(top_by_hand(exact.aie, k) & top_by_hand(other.aie, k)) / k
        )
        assert got["max_abs_diff"] == pytest.approx(max(abs(x - y) for x, y in zip(a, b)))
    assert compare_scans(exact, exact, 3)["spearman"] == pytest.approx(1.0)

    model = trained[0]
    second = dataclasses.replace(
        trained_run, scan=other, protocol=dataclasses.replace(trained_run.protocol, seed=9)
    )
    s = compare_runs(trained_run, second, k=3)
    zero = ranks_by_hand(
        model,
        trained_run.prompt_sets(model)["test_zero_shot"],
        add=(trained_run.fv_layer, trained_run.fv.vector),
    )
    right = ranks_by_hand(model, trained_run.prompt_sets(model)["test_icl"]) == 0
    assert s["zero_shot_fv"][0] == pytest.approx(top1(zero[right]))
    assert s["seeds"] == [2, 9] and s["spearman"] == pytest.approx(spearman_by_hand(a, b))

    merged = merge_results([trained_run, second])
    torch.testing.assert_close(merged.universal_aie, (exact.aie + other.aie) / 2)
    assert merged.mean["zero_shot_fv"] == pytest.approx(top1(zero[right]))  # both rows share the test ranks


# --- soft task vectors against the FV (beyond/soft.py) -----------------------------------------------


def test_soft_vs_fv_against_plain_transformers(trained, trained_run):
    from workbench.beyond.soft import soft_vs_fv

    model, run = trained[0], dataclasses.replace(trained_run, fv_layer=0)
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
        "zero_shot": ranks_by_hand(model, zero),
        "zero_shot_fv": ranks_by_hand(model, zero, add=(0, run.fv.vector)),
        "zero_shot_soft": ranks_by_hand(
            model, zero, z_patch={l: blend(l, alpha[l]) for l in range(alpha.shape[0])}
        ),
        "zero_shot_topk_mask": ranks_by_hand(model, zero, z_patch=mask(top)),
    }
    icl_right = ranks_by_hand(model, sets["test_icl"]) == 0
    for name, ranks in want.items():
        assert out["accuracy_unfiltered"][name] == pytest.approx(top1(ranks)), name
        assert out["accuracy"][name] == pytest.approx(top1(ranks[icl_right])), name
    flat_aie = torch.nan_to_num(run.scan.aie.float(), nan=0.0).flatten().tolist()
    assert out["spearman_alpha_aie"] == pytest.approx(spearman_by_hand(alpha.flatten().tolist(), flat_aie))
