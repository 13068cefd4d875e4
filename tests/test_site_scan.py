"""The attention-layer / MLP scan: its sites are exactly what enters the residual, and its effects equal
plain patching through hooks on the HF modules."""

import pytest
import torch

from workbench.core.model import model_info
from workbench.core.site_scan import SITES, scan_sites, site_hook, site_means
from workbench.data.prompts import encode_prompts, sample_prompts
from workbench.show import figures


def _prompts(model, toy_task, kind, n, seed):
    split = toy_task.split(seed=0)
    prompts = sample_prompts(split, n, 2, kind, "valid", seed=seed)
    return encode_prompts(model.tokenizer, prompts, model_info(model).bos_id)[0]


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_sites_add_up_to_the_residual(tiny, toy_task, arch):
    model = tiny[arch]
    ids = torch.tensor([_prompts(model, toy_task, "icl", 1, 0)[0].ids])
    _, cache = model.run_with_cache(ids)
    for layer in range(model_info(model).n_layers):
        attn = cache[site_hook(model, "attn", layer)]
        mlp = cache[site_hook(model, "mlp", layer)]
        pre, mid = cache[f"blocks.{layer}.hook_resid_pre"], cache[f"blocks.{layer}.hook_resid_mid"]
        post = cache[f"blocks.{layer}.hook_resid_post"]
        assert torch.allclose(pre + attn, mid, atol=1e-5) and torch.allclose(mid + mlp, post, atol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gemma3"])
def test_site_scan_against_hf_module_hooks(tiny, toy_task, arch):
    model = tiny[arch]
    clean = _prompts(model, toy_task, "icl", 6, 1)
    corrupt = _prompts(model, toy_task, "shuffled", 4, 2)
    means = site_means(model, clean)
    scan = scan_sites(model, corrupt, means)
    hf = model.original_model
    post = model_info(model).post_attn_norm

    def module(site, layer):
        block = hf.model.layers[layer]
        if site == "attn":
            return block.post_attention_layernorm if post else block.self_attn
        return block.post_feedforward_layernorm if post else block.mlp

    def prob(p, handle=None):
        with torch.no_grad():
            logits = hf(torch.tensor([p.ids])).logits[0, -1].float()
        return float(logits.softmax(-1)[p.answer_id])

    for s, site in enumerate(SITES):
        for layer in range(model_info(model).n_layers):

            def replace(m, a, o, mean=means[s, layer]):
                out = o[0] if isinstance(o, tuple) else o
                out[:, -1] = mean
                return o

            for i, p in enumerate(corrupt):
                base = prob(p)
                h = module(site, layer).register_forward_hook(replace)
                try:
                    patched = prob(p)
                finally:
                    h.remove()
                assert float(scan.effects[i, s, layer]) == pytest.approx(patched - base, abs=1e-5)
    fig = figures.sites_figure({"toy": scan.to_dict()})
    assert len(fig.data) == 2


def test_state_split_is_exact(tiny, toy_task):
    from workbench.studies.sites import state_split

    model = tiny["gemma3"]
    icl = _prompts(model, toy_task, "icl", 5, 3)
    zero = _prompts(model, toy_task, "zero_shot", 5, 4)
    out = state_split(model, icl, zero)
    assert out["max_reconstruction_error"] < 1e-4
    for L in range(model_info(model).n_layers):
        assert sum(out["shares"][k][L] for k in ("embed", "attn", "mlp")) == pytest.approx(1.0, abs=1e-4)
