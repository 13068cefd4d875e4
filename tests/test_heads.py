import pytest
import torch

from workbench.core.heads import head_to_residual, mean_head_activations
from workbench.core.model import model_info
from workbench.data.prompts import encode_prompts, sample_prompts


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_heads_add_up_to_what_enters_the_residual(tiny, arch):
    """sum_h head_to_residual(z)_h == resid_mid - resid_pre (minus b_O, a layer's not a head's)."""
    model = tiny[arch]
    ids = torch.randint(3, 300, (2, 11))
    _, cache = model.run_with_cache(ids)
    for layer in range(model_info(model).n_layers):
        per_head = head_to_residual(
            model, layer, cache[f"blocks.{layer}.attn.hook_z"], cache[f"blocks.{layer}.attn.hook_out"]
        )
        entered = cache[f"blocks.{layer}.hook_resid_mid"] - cache[f"blocks.{layer}.hook_resid_pre"]
        if model_info(model).attn_out_bias:
            entered = entered - model.b_O[layer]
        torch.testing.assert_close(per_head.sum(-2), entered, atol=2e-5, rtol=1e-4)


def test_post_norm_models_require_the_attention_output(tiny):
    z = torch.zeros(1, 4, 32)
    with pytest.raises(ValueError, match="attn_out"):
        head_to_residual(tiny["gemma3"], 0, z)


def test_means_match_a_direct_average(tiny, toy_task):
    model = tiny["llama"]
    prompts, _ = encode_prompts(
        model.tokenizer, sample_prompts(toy_task.split(0), 7, 3), model_info(model).bos_id
    )
    means = mean_head_activations(model, prompts, batch_size=3, progress=False)
    zs = []
    for p in prompts:
        _, cache = model.run_with_cache(torch.tensor([p.ids]))
        zs.append(torch.stack([cache[f"blocks.{l}.attn.hook_z"][0, -1] for l in range(2)]))
    torch.testing.assert_close(means.mean_z, torch.stack(zs).mean(0), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(
        means.mean_out, torch.einsum("lhd,lhdm->lhm", means.mean_z, model.W_O.detach()), atol=1e-5, rtol=1e-4
    )
    assert means.n_prompts == 7


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_last_token_states_stop_after_the_deepest_layer_asked(tiny, arch):
    """`last_token_states` equals transformers' own hidden states (output_hidden_states), and its
    forward stops after the deepest layer asked for: no block above it runs."""
    from workbench.core.heads import last_token_states
    from workbench.core.padding import padding_verified
    from workbench.data.prompts import EncodedPrompt

    model = tiny[arch]
    g = torch.Generator().manual_seed(0)
    prompts = [
        EncodedPrompt(tuple(torch.randint(5, 200, (n,), generator=g).tolist()), 1, None) for n in (7, 7, 9)
    ]
    padding_verified(model)  # the one-time padding probe runs whole forwards: not part of this call
    ran = []
    hf = model.original_model
    blocks = hf.transformer.h if hasattr(hf, "transformer") else hf.model.layers
    handle = blocks[-1].register_forward_hook(lambda *args: ran.append(1))
    try:
        states = last_token_states(model, prompts, [0])
    finally:
        handle.remove()
    assert not ran, "the block above the deepest layer asked for ran"
    with torch.inference_mode():
        for i, p in enumerate(prompts):
            hidden = model.original_model(torch.tensor([p.ids]), output_hidden_states=True).hidden_states
            torch.testing.assert_close(states[0, i], hidden[1][0, -1], atol=1e-5, rtol=0)
    full = last_token_states(model, prompts, [0, 1])  # the last layer: the whole forward
    torch.testing.assert_close(full[0], states[0])
