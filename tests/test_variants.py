"""The prefix-once variant path (workbench.core.variants) against plain forwards: probabilities within
1e-5 in float32 and the same top-1 decisions, for every intervention of the vocabulary, on tiny
models of three families, the trained tiny model (whole protocol, both ways) and the embedded model.
Where it matters, against an independent computation: the HF model's own forward with a torch hook
on the real decoder layer, no TransformerLens hook point involved."""

import pytest
import torch

from workbench.base.stage_cache import StageCache
from workbench.core.hooks import (
    add_vector,
    blend_heads,
    generate,
    mean_ablate_heads,
    project_out,
    replace_last_state,
)
from workbench.core.model import model_info
from workbench.core.variants import plain_forwards, variant_scores
from workbench.data.tasks import load_task
from workbench.method.pipeline import run_task
from workbench.method.protocol import PromptSets, Protocol


def every_intervention(model, n_prompts, seed=0):
    info = model_info(model)
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(info.d_model, generator=g) * 3
    mean_z = torch.randn(info.n_layers, info.n_heads, info.d_head, generator=g)
    states = torch.randn(n_prompts, info.d_model, generator=g)
    out = {"none": None}
    for l in range(info.n_layers):
        out[("add", l)] = add_vector(model, l, v, alpha=1.5)
        out[("replace", l)] = replace_last_state(model, l, states)
    out["ablate"] = mean_ablate_heads(model, [(0, 1), (info.n_layers - 1, 0)], mean_z)
    out["project"] = project_out(model, v, center=v * 0.3)
    out["blend"] = blend_heads(model, torch.rand(info.n_layers, info.n_heads, generator=g), mean_z)
    return out


def top3(ranks):
    """Ranks as the accuracies see them (0, 1, 2, or 3 = below the top 3): a rank in the thousands may
    move by one between two exact paths when two far-down logits are equal to float rounding."""
    return ranks.clamp(max=3)


def assert_same(fast, plain, tol=1e-5):
    for name in plain:
        pf, pp = fast[name].logits.softmax(-1), plain[name].logits.softmax(-1)
        assert (pf - pp).abs().max() <= tol, name
        assert torch.equal(top3(fast[name].ranks), top3(plain[name].ranks)), name  # top-1/2/3 decisions
        assert torch.equal(fast[name].top1, plain[name].top1), name


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_variants_equal_plain_forwards_for_every_intervention(tiny, toy_task, arch):
    model = tiny[arch]
    sets = PromptSets(toy_task, Protocol(n_shot=3), model)
    prompts = sets["test_shuffled"][:10] + sets["test_zero_shot"][:10]  # two lengths at least
    assert len({len(p.ids) for p in prompts}) > 1
    ivs = every_intervention(model, len(prompts))
    # small batches and variant chunks: several prompts per forward, prefixes re-used across chunks
    fast = variant_scores(model, prompts, ivs, batch_size=3, variant_batch=4, keep_logits=True)
    plain = variant_scores(model, prompts, ivs, plain=True, keep_logits=True)
    assert_same(fast, plain)
    moved = [n for n in ivs if (fast[n].logits - fast["none"].logits).abs().max() > 1e-3]
    assert len(moved) == len(ivs) - 1, "every intervention must change the logits, or the test proves nothing"
    with plain_forwards():  # the context switch reaches the same plain path
        again = variant_scores(model, prompts, {"ablate": ivs["ablate"]}, keep_logits=True)
    assert torch.equal(again["ablate"].logits, plain["ablate"].logits)


def test_variant_hooks_on_unknown_or_unsliceable_points_are_an_error(tiny, toy_task):
    model = tiny["llama"]
    prompts = PromptSets(toy_task, Protocol(n_shot=2), model)["test_zero_shot"][:2]
    with pytest.raises((RuntimeError, KeyError)):  # the bridge refuses unknown names; we refuse silent ones
        variant_scores(model, prompts, {"x": [("blocks.99.hook_resid_post", lambda a, hook: a)]})
    with pytest.raises(ValueError, match="position axis"):
        variant_scores(model, prompts, {"x": [("blocks.0.attn.hook_pattern", lambda a, hook: a)]})


def test_layer_sweep_against_the_hf_forward_with_a_torch_hook(trained):
    """The sweep's probabilities against HF's own forward, the vector added by a torch forward hook
    on the decoder layer module (the residual after block L), one unbatched prompt at a time."""
    model, task = trained
    sets = PromptSets(task, Protocol(n_shot=3), model)
    prompts = sets["test_shuffled"][:6] + sets["test_zero_shot"][:6]
    v = torch.randn(model_info(model).d_model, generator=torch.Generator().manual_seed(3)) * 2
    layers = range(model_info(model).n_layers)
    fast = variant_scores(model, prompts, {l: add_vector(model, l, v) for l in layers}, keep_logits=True)
    hf = model.original_model
    for l in layers:

        def add(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            hidden[:, -1] += v
            return output

        handle = hf.model.layers[l].register_forward_hook(add)
        try:
            with torch.no_grad():
                for i, p in enumerate(prompts):
                    ref = hf(torch.tensor([p.ids])).logits[0, -1].float().softmax(-1)
                    assert (fast[l].logits[i].softmax(-1) - ref).abs().max() <= 1e-5
                    assert int(fast[l].top1[i]) == int(ref.argmax())
        finally:
            handle.remove()


def test_whole_protocol_fast_equals_plain(trained, tmp_path):
    """run_task both ways (the bench's comparison in small): every accuracy, sweep and scan identical."""
    model, task = trained
    protocol = Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=2, sweep_layers=True, seed=1)
    fast = run_task(model, task, protocol, cache=StageCache(tmp_path / "fast"), progress=False)
    with plain_forwards():
        plain = run_task(model, task, protocol, cache=StageCache(tmp_path / "plain"), progress=False)
    assert 0 < plain.accuracy_unfiltered["icl"].top1 < 1  # not a trivial equality
    for name, acc in plain.accuracy_unfiltered.items():
        assert torch.equal(top3(fast.accuracy_unfiltered[name].ranks), top3(acc.ranks)), name
    for sweep in ("valid_sweep", "test_sweep"):
        a, b = getattr(fast, sweep).to_tensors(), getattr(plain, sweep).to_tensors()
        assert all(torch.equal(top3(a[k]), top3(b[k])) for k in b), sweep
    assert fast.fv_layer == plain.fv_layer
    # the fast scan skips the layers below each patch (Llama), the plain one does not: rounding only
    torch.testing.assert_close(fast.scan.effects, plain.scan.effects, atol=1e-5, rtol=0)
    assert fast.fv.heads == plain.fv.heads


def test_generate_with_kv_cache_equals_the_uncached_path(trained):
    model, task = trained
    ids = PromptSets(task, Protocol(n_shot=2), model)["test_icl"][0].ids
    v = torch.randn(model_info(model).d_model, generator=torch.Generator().manual_seed(0)) * 3
    for vector, layer in ((None, None), (v, 0), (v, 1)):
        cached = generate(model, ids, 8, vector, layer, kv_cache=True)
        assert cached == generate(model, ids, 8, vector, layer, kv_cache=False)
    # the vector must act on the generated tokens too, not only on the prompt's last one
    first_only = generate(model, ids, 8, hooks=add_vector(model, 1, v, from_position=len(ids) - 1))
    assert first_only == generate(model, ids, 8, v, 1)


def test_generate_without_a_filled_cache_falls_back_to_the_uncached_path(trained, monkeypatch):
    """transformers 5.24 renamed the layers' cache argument and TransformerLens 4.3's attention no longer
    fills the cache it hands back: generation must notice (the cache's length) and go on uncached, not
    continue from single tokens with no context."""
    model, task = trained
    ids = PromptSets(task, Protocol(n_shot=2), model)["test_icl"][0].ids
    v = torch.randn(model_info(model).d_model, generator=torch.Generator().manual_seed(0)) * 3
    expected = generate(model, ids, 8, v, 1, kv_cache=False)
    real = model.run_with_hooks

    def empty_cache(*args, **kwargs):
        out = real(*args, **kwargs)
        if kwargs.get("return_type") == "logits_and_cache":
            out[1].crop(-out[1].get_seq_length())  # as if the attention never wrote to it
        return out

    monkeypatch.setattr(model, "run_with_hooks", empty_cache)
    with pytest.warns(UserWarning, match="key/value cache holds 0 of"):
        assert generate(model, ids, 8, v, 1, kv_cache=True) == expected


@pytest.mark.real_model
def test_variants_on_the_embedded_model(real_model):
    """SmolLM2-135M: an FV-sized vector at every fifth layer, and the task-vector replacement, on
    ten-shot shuffled and zero-shot antonym prompts; same probabilities and decisions as plain."""
    model = real_model
    sets = PromptSets(load_task("antonym"), Protocol(), model)
    prompts = sets["test_shuffled"][:2] + sets["test_zero_shot"][:2]
    info = model_info(model)
    donor_states = torch.randn(len(prompts), info.d_model, generator=torch.Generator().manual_seed(1)) * 5
    v = torch.randn(info.d_model, generator=torch.Generator().manual_seed(0)) * 2
    ivs = {"none": None}
    for l in range(0, info.n_layers, 5):
        ivs[("add", l)] = add_vector(model, l, v)
        ivs[("replace", l)] = replace_last_state(model, l, donor_states)
    fast = variant_scores(model, prompts, ivs, keep_logits=True)
    plain = variant_scores(model, prompts, ivs, plain=True, keep_logits=True)
    assert_same(fast, plain)
    assert any(int(fast[n].top1[i]) != int(fast["none"].top1[i]) for n in ivs for i in range(4))
    ids = prompts[-1].ids
    assert generate(model, ids, 6, v, 10) == generate(model, ids, 6, v, 10, kv_cache=False)


def test_variant_batch_block_bounds_every_forward_and_changes_no_number(tiny, toy_task, tmp_path, capsys):
    """`variant_batch(n)` (and `--variant-batch N`) caps the tokens of every forward of a whole run at
    prompt + n variants, in the scan as in the sweeps and the evaluation, and leaves every number as
    it was; a bad value is refused."""
    from workbench.cli import main
    from workbench.core.forward import chosen_variant_batch, variant_batch

    model = tiny["llama"]
    small = Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=3, n_extra_queries=2)
    import workbench.core.padding as padding
    import workbench.core.scan as scan

    widths: list[int] = []  # variants per forward: every variant forward builds its mask here
    real_mask, real_scan_mask = padding.attention_mask, scan._variant_mask

    def spy_mask(pads, n, v, *args, **kwargs):  # the variants of every stage (core/padding.run)
        widths.append(v)
        return real_mask(pads, n, v, *args, **kwargs)

    def spy_scan_mask(n, v, *args, **kwargs):  # the scan's one-forward path
        widths.append(v)
        return real_scan_mask(n, v, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(padding, "attention_mask", spy_mask)
        mp.setattr(scan, "_variant_mask", spy_scan_mask)
        skipped: list[int] = []  # layer-skip passes (all heads of a prompt at once)
        real_skip = scan.skip_scan_prompt
        mp.setattr(scan, "skip_scan_prompt", lambda *a: skipped.append(1) or real_skip(*a))
        free = run_task(model, toy_task, small, StageCache(enabled=False), progress=False)
        free_widest = max(widths)
        widths.clear()
        with variant_batch(2):
            capped = run_task(model, toy_task, small, StageCache(enabled=False), progress=False)
    assert free_widest > 2, "the automatic batch must exceed the cap, or the test proves nothing"
    assert widths and max(widths) <= 2
    assert skipped == [1] * free.protocol.n_scan_prompts  # the scan too: whole layer-skip passes only
    torch.testing.assert_close(capped.scan.effects, free.scan.effects, atol=1e-6, rtol=0)
    for name, acc in free.accuracy_unfiltered.items():
        assert torch.equal(capped.accuracy_unfiltered[name].ranks.clamp(max=3), acc.ranks.clamp(max=3)), name
    torch.testing.assert_close(capped.valid_sweep.to_tensors(), free.valid_sweep.to_tensors())
    with pytest.raises(ValueError, match="whole number"):
        with variant_batch(0):
            pass
    # the CLI flag reaches the stages, and nonsense is refused before any work
    import workbench.method.pipeline as pipeline

    seen = []

    def spy(*args, **kwargs):
        seen.append(chosen_variant_batch())
        raise KeyboardInterrupt  # stop here: only the setting in force matters

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "run_task", spy)
        args = ["run", "--model", "tiny-llama", "--task", "antonym", "--out", str(tmp_path / "r")]
        assert main([*args, "--variant-batch", "3"]) == 130 and seen == [3]
        assert main(args) == 130 and seen == [3, None]
    with pytest.raises(SystemExit):
        main([*args, "--variant-batch", "0"])
    assert "at least 1" in capsys.readouterr().err
