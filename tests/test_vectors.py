import pytest
import torch

from workbench.core.heads import HeadMeans
from workbench.method.vectors import FunctionVector, VectorMismatch, default_top_k


def means(L=2, H=4, d_head=16, d_model=64):
    g = torch.Generator().manual_seed(0)
    return HeadMeans(
        torch.randn(L, H, d_head, generator=g),
        torch.randn(L, H, d_model, generator=g),
        torch.randn(L, d_model, generator=g),
        5,
    )


def test_from_heads_sums_the_mean_outputs():
    m = means()
    fv = FunctionVector.from_heads(m, [(0, 1), (1, 3)], model="tiny-llama", task="t")
    torch.testing.assert_close(fv.vector, m.mean_out[0, 1] + m.mean_out[1, 3])
    assert fv.heads == [(0, 1), (1, 3)]


def test_algebra():
    a = FunctionVector(torch.tensor([1.0, 2.0]), "m", "a")
    b = FunctionVector(torch.tensor([3.0, -1.0]), "m", "b")
    assert (a + b).vector.tolist() == [4.0, 1.0]
    assert (a - b).vector.tolist() == [-2.0, 3.0]
    assert (2 * a).vector.tolist() == [2.0, 4.0] and (a * 2).vector.tolist() == [2.0, 4.0]
    assert (-a).vector.tolist() == [-1.0, -2.0] and (a / 2).vector.tolist() == [0.5, 1.0]
    assert (a + b).task == "a + b"
    with pytest.raises(VectorMismatch, match="same model"):
        a + FunctionVector(torch.ones(2), "other", "c")


def test_default_top_k():
    assert (default_top_k(448), default_top_k(270), default_top_k(72), default_top_k(8)) == (10, 8, 4, 4)


def test_save_load_roundtrip_and_mismatch(tmp_path, tiny):
    model = tiny["llama"]
    fv = FunctionVector(torch.randn(64), "tiny-llama", "toy", [(0, 1)], layer=1, meta={"seed": 3})
    path = fv.save(tmp_path / "fv.safetensors")
    back = FunctionVector.load(path, model=model)
    torch.testing.assert_close(back.vector, fv.vector)
    assert back.heads == [(0, 1)] and back.layer == 1 and back.meta["seed"] == 3
    assert "torch" in back.provenance["versions"]
    with pytest.raises(VectorMismatch, match="tiny-gemma3"):
        FunctionVector.load(path, model=tiny["gemma3"])  # same d_model, another model
    wide = FunctionVector(torch.randn(32), "tiny-llama", "toy").save(tmp_path / "wide.safetensors")
    with pytest.raises(VectorMismatch, match="d_model 32"):
        FunctionVector.load(wide, model=model)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind


def test_decode_returns_tokens(tiny):
    model = tiny["llama"]
    fv = FunctionVector(model.W_U[:, 100].detach() * 50, "tiny-llama", "toy")
    tokens = fv.decode(model, k=5)
    assert len(tokens) == 5 and tokens[0][1] >= tokens[-1][1]


def test_artifact_refuses_nan_and_a_layer_beyond_the_model(tmp_path, tiny):
    model = tiny["llama"]
    bad = FunctionVector(torch.full((64,), float("nan")), "tiny-llama", "toy").save(
        tmp_path / "nan.safetensors"
    )
    with pytest.raises(VectorMismatch, match="NaN"):
        FunctionVector.load(bad)
    deep = FunctionVector(torch.ones(64), "tiny-llama", "toy", layer=7).save(tmp_path / "deep.safetensors")
    with pytest.raises(VectorMismatch, match="after layer 7"):
        FunctionVector.load(deep, model=model)


def test_vectors_saved_before_the_provenance_header_still_load(tmp_path, tiny):
    from workbench.base.files import write_tensors

    old = {
        "model": "tiny-llama",
        "task": "toy",
        "heads": [[0, 1]],
        "layer": 1,
        "d_model": 64,
        "seed": 4,
        "versions": {"torch": "2.13.0"},
    }
    path = write_tensors(tmp_path / "old.safetensors", {"function_vector": torch.ones(64)}, old)
    fv = FunctionVector.load(path, model=tiny["llama"])
    assert (fv.model, fv.task, fv.heads, fv.layer, fv.meta["seed"]) == ("tiny-llama", "toy", [(0, 1)], 1, 4)


def test_provenance_records_how_to_apply_the_vector(tmp_path, tiny):
    from workbench.core.model import model_fingerprint

    model = tiny["gemma3"]
    fv = FunctionVector.from_heads(means(d_model=64), [(0, 1)], model, "toy", layer=1)
    back = FunctionVector.load(fv.save(tmp_path / "fv.safetensors"), model=model)
    prov = back.provenance
    assert prov["hook_site"] == "blocks.{layer}.hook_resid_post" and prov["operation"] == "add"
    assert prov["model"] == "tiny-gemma3" and prov["model_fingerprint"] == model_fingerprint(model)
    assert (
        prov["dtype"] == "float32"
        and prov["weight_processing"] == "none"
        and "after block L" in prov["layer_convention"]
    )
