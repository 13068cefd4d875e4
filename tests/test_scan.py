import pytest
import torch
from reference import reference_scan

from workbench.core.heads import mean_head_activations
from workbench.core.model import model_info
from workbench.core.scan import PatchDidNothing, scan_heads, universal_map
from workbench.data.prompts import encode_prompts, sample_prompts


def prompts_for(model, task, n_clean=6, n_corrupt=3, n_shot=3):
    split = task.split(0)
    bos = model_info(model).bos_id
    clean, _ = encode_prompts(model.tokenizer, sample_prompts(split, n_clean, n_shot, "icl"), bos)
    corrupt, _ = encode_prompts(
        model.tokenizer, sample_prompts(split, n_corrupt, n_shot, "shuffled", seed=1), bos
    )
    return clean, corrupt


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_fast_scan_matches_reference(tiny, toy_task, arch):
    model = tiny[arch]
    clean, corrupt = prompts_for(model, toy_task)
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    ref = reference_scan(model, corrupt, mean_z)
    assert ref.abs().max() > 0  # the patches do something
    for batch in (None, 3, 1):  # all heads in one forward; chunked; one at a time
        fast = scan_heads(model, corrupt, mean_z, batch_size=batch, progress=False)
        torch.testing.assert_close(fast.effects, ref, atol=1e-5, rtol=0)
        # Llama and Gemma 3 (prompts inside its window): all heads at once starts each variant at its
        # own layer (core/layer_skip.py); chunks, and GPT-2, take the one-forward path
        expect = len(corrupt) if arch in ("llama", "gemma3") and batch is None else 0
        assert fast.meta["layer_skip"] == expect


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_layer_skip_control_row_catches_a_wrong_pass(tiny, toy_task, arch, monkeypatch):
    """If the layer-skip pass computes anything other than the model (here: its final logits scaled),
    its control row disagrees with the bridge's forward: the scan warns, redoes the prompt on the
    one-forward path, stops skipping on that model, and its numbers stay exact."""
    import workbench.core.layer_skip as layer_skip

    model = tiny[arch]
    clean, corrupt = prompts_for(model, toy_task)
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    ref = reference_scan(model, corrupt, mean_z)
    real = layer_skip._final_logits
    monkeypatch.setattr(layer_skip, "_final_logits", lambda hf, hidden: real(hf, hidden) * 1.01)
    try:
        with pytest.warns(UserWarning, match="control row differs"):
            fast = scan_heads(model, corrupt, mean_z, progress=False)
        assert fast.meta["layer_skip"] == 0 and model.__dict__.get("_workbench_no_skip")
        torch.testing.assert_close(fast.effects, ref, atol=1e-5, rtol=0)
    finally:
        model.__dict__.pop("_workbench_no_skip", None)  # the fixture's model is shared
    monkeypatch.undo()
    again = scan_heads(model, corrupt, mean_z, progress=False)
    assert again.meta["layer_skip"] == len(corrupt)  # the pass itself is right: the check was the catch


def test_subset_and_result_object(tiny, toy_task):
    model = tiny["llama"]
    clean, corrupt = prompts_for(model, toy_task)
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    scan = scan_heads(model, corrupt, mean_z, heads=[(1, 2), (0, 0)], progress=False)
    assert torch.isnan(scan.effects[:, 0, 1]).all() and not torch.isnan(scan.effects[:, 1, 2]).any()
    assert {(l, h) for l, h, _ in scan.top_heads(2)} == {(1, 2), (0, 0)}
    full = scan_heads(model, corrupt, mean_z, progress=False)
    assert full.aie.shape == (2, 4) and full.sem.shape == (2, 4)
    torch.testing.assert_close(full.sem, full.effects.std(0) / 3**0.5)
    assert "HeadScan" in repr(full) and "<table>" in full._repr_html_()
    torch.testing.assert_close(universal_map([full.aie, full.aie]), full.aie)
    assert full.meta["min_patch_change"] > 0


def test_a_hook_that_never_fires_is_an_error(tiny, toy_task, monkeypatch):
    model = tiny["llama"]
    clean, corrupt = prompts_for(model, toy_task)
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    original = model.run_with_hooks

    def drop_hooks(*args, fwd_hooks=(), **kw):  # as if the hook names matched nothing
        return original(*args, fwd_hooks=[], **kw)

    monkeypatch.setattr(model, "run_with_hooks", drop_hooks)
    try:
        with pytest.raises(PatchDidNothing), pytest.warns(UserWarning, match="without skipping"):
            scan_heads(model, corrupt, mean_z, progress=False)
    finally:
        model.__dict__.pop("_workbench_no_skip", None)  # the fixture's model is shared


def test_bad_inputs(tiny, toy_task):
    model = tiny["llama"]
    _, corrupt = prompts_for(model, toy_task)
    with pytest.raises(ValueError, match="mean_z has shape"):
        scan_heads(model, corrupt, torch.zeros(3, 4, 16), progress=False)
    with pytest.raises(IndexError, match="layers"):
        scan_heads(model, corrupt, torch.zeros(2, 4, 16), heads=[(7, 0)], progress=False)


@pytest.mark.real_model
def test_fast_scan_matches_reference_on_embedded_model(real_model):
    from workbench.data.tasks import load_task

    task = load_task("antonym")
    clean, corrupt = prompts_for(real_model, task, n_clean=8, n_corrupt=2, n_shot=10)
    mean_z = mean_head_activations(real_model, clean, progress=False).mean_z
    heads = [(0, 0), (7, 3), (14, 1), (17, 3), (20, 5), (29, 8)]
    ref = reference_scan(real_model, corrupt, mean_z, heads=heads)
    fast = scan_heads(real_model, corrupt, mean_z, progress=False)  # all 270 heads at once
    assert fast.meta["layer_skip"]  # SmolLM2 is a Llama: the variants skip the layers below their patch
    picked = torch.stack([fast.effects[:, l, h] for l, h in heads], 1)
    expected = torch.stack([ref[:, l, h] for l, h in heads], 1)
    torch.testing.assert_close(picked, expected, atol=1e-5, rtol=0)
    assert expected.abs().max() > 1e-4


def test_attribution_patching_is_the_first_order_estimate(tiny, toy_task):
    """With a tiny patch (mean_z close to z), the linear estimate approaches the exact effect."""
    from workbench.studies import compare_scans

    model = tiny["llama"]
    clean, corrupt = prompts_for(model, toy_task)
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    # z at the last token of the first corrupted prompt, nudged 5% towards the mean
    _, cache = model.run_with_cache(torch.tensor([corrupt[0].ids]))
    z_last = torch.stack([cache[f"blocks.{l}.attn.hook_z"][0, -1] for l in range(2)])
    near = z_last + 0.05 * (mean_z - z_last)
    exact = scan_heads(model, corrupt[:1], near, progress=False)
    approx = scan_heads(model, corrupt[:1], near, method="attribution", progress=False)
    torch.testing.assert_close(approx.effects, exact.effects, atol=2e-8, rtol=0.1)
    cmp = compare_scans(exact, approx, k=3)
    assert cmp["spearman"] > 0.9 and cmp["top_k_overlap"] >= 2 / 3
    with pytest.raises(ValueError, match="unknown method"):
        scan_heads(model, corrupt, mean_z, method="magic")
