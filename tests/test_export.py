"""llama.cpp control vectors: the GGUF written as llama.cpp reads it, read back, applied like llama.cpp."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench.beyond.export import ControlVector, export_control_vector, import_control_vector
from workbench.core.model import model_info
from workbench.method.vectors import FunctionVector


def _fv(model, layer, seed=0):
    d = model_info(model).d_model
    v = torch.randn(d, generator=torch.Generator().manual_seed(seed))
    return FunctionVector(v, model_info(model).name, task="t", layer=layer)


def test_export_is_what_llama_cpp_reads(tiny, tmp_path):
    """Checked with gguf's own reader, independently of import_control_vector."""
    import gguf

    model = tiny["llama"]
    fv = _fv(model, 1)
    path = export_control_vector(fv, tmp_path / "fv.gguf", model=model, scale=2.0)
    reader = gguf.GGUFReader(str(path))
    assert reader.fields["general.architecture"].contents() == "controlvector"
    assert reader.fields["controlvector.model_hint"].contents() == "llama"
    assert reader.fields["controlvector.layer_count"].contents() == 1
    (t,) = reader.tensors
    assert t.name == "direction.1"  # our "after block 1" is llama.cpp's direction.1
    assert t.data.dtype == np.float32 and t.data.shape == (model_info(model).d_model,)
    assert np.allclose(t.data, 2.0 * fv.vector.numpy())


def test_round_trip_of_a_multi_layer_vector(tiny, tmp_path):
    model = tiny["gemma3"]
    n, d = model_info(model).n_layers, model_info(model).d_model
    dirs = {L: torch.randn(d, generator=torch.Generator().manual_seed(L)) for L in range(1, n)}
    path = export_control_vector(dirs, tmp_path / "cv.gguf", model=model)
    back = import_control_vector(path)
    assert back.layers == list(range(1, n)) and back.model_hint == "gemma3"
    assert all(torch.equal(back.directions[L], dirs[L]) for L in dirs)
    assert "ControlVector(gemma3" in repr(back)


def test_layer_zero_and_foreign_files_are_refused(tiny, tmp_path):
    import gguf

    model = tiny["llama"]
    with pytest.raises(ValueError, match="after block 0"):
        export_control_vector(_fv(model, 0), tmp_path / "zero.gguf", model=model)
    w = gguf.GGUFWriter(str(tmp_path / "model.gguf"), "llama")
    w.add_tensor("token_embd.weight", np.zeros(4, dtype=np.float32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    with pytest.raises(ValueError, match="not a control vector"):
        import_control_vector(tmp_path / "model.gguf")
    with pytest.raises(ValueError, match="d_model"):
        export_control_vector({1: torch.ones(3)}, tmp_path / "w.gguf", model=model)


def test_applied_like_llama_cpp_equals_a_torch_hook_on_the_hf_layer(trained, tmp_path):
    """Imported and applied at every position (llama.cpp's semantics) = HF's forward with torch
    hooks adding direction.K to the output of decoder layer K (0-based) at every position.
    (The tiny models have 2 layers; layer 0 cannot be exported, so it is added to the imported
    vector by hand, to show that every position, not only the last, is steered.)"""
    from workbench.core.forward import last_token_logits
    from workbench.method.protocol import PromptSets, Protocol

    model, task = trained
    prompts = PromptSets(task, Protocol(n_shot=2), model)["test_icl"][:4]
    fv = _fv(model, 1, seed=5)
    cv = import_control_vector(export_control_vector(fv, tmp_path / "fv.gguf", model=model))
    v0 = 3 * _fv(model, 0, seed=6).vector
    cv.directions[0] = v0
    ours = last_token_logits(model, prompts, cv.hooks(model, strength=0.5), batch_size=1)
    last_only = last_token_logits(model, prompts, cv.hooks(model, 0.5, from_position=None), batch_size=1)
    hf = model.original_model

    def adder(v):
        def add(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            hidden += 0.5 * v
            return output

        return add

    handles = [hf.model.layers[L].register_forward_hook(adder(v)) for L, v in ((0, v0), (1, fv.vector))]
    try:
        with torch.no_grad():
            for i, p in enumerate(prompts):
                ref = hf(torch.tensor([p.ids])).logits[0, -1].float()
                assert (ours[i].float() - ref).abs().max() <= 1e-4
    finally:
        for h in handles:
            h.remove()
    assert (ours - last_only).abs().max() > 1e-3  # every position is not the last position


def test_control_vector_checks_width(tiny):
    cv = ControlVector({1: torch.ones(3)})
    with pytest.raises(ValueError, match="width"):
        cv.hooks(tiny["llama"])


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory, toy_task):
    """A finished run of the tiny Llama (2 layers) with its FV after block 0."""
    from test_pipeline import write_task

    from workbench.cli import main

    root = tmp_path_factory.mktemp("export")
    args = ["--model", "tiny-llama", "--task", str(write_task(root / "toy.json", toy_task)), "--layer", "0"]
    args += ["--top-k", "2", "--n-mean-prompts", "4", "--n-scan-prompts", "2", "--out", str(root / "run")]
    assert main(["run", *args]) == 0
    return root / "run"


def test_export_command_writes_what_llama_cpp_reads(toy_run, tmp_path, capsys):
    """`workbench export RUN --out F.gguf --layer L --scale S`, read back with gguf's own reader."""
    import gguf

    from workbench.cli import main
    from workbench.core.loading import load_model
    from workbench.method.result import TaskResult

    out = tmp_path / "fv.gguf"
    assert main(["export", str(toy_run), "--out", str(out), "--layer", "1", "--scale", "0.5"]) == 0
    assert "direction.1" in capsys.readouterr().out
    reader = gguf.GGUFReader(str(out))
    assert reader.fields["general.architecture"].contents() == "controlvector"
    assert reader.fields["controlvector.model_hint"].contents() == "llama"
    assert reader.fields["controlvector.layer_count"].contents() == 1
    (t,) = reader.tensors
    d_model = model_info(load_model("tiny-llama", verbose=False)).d_model
    assert t.name == "direction.1" and t.data.dtype == np.float32 and t.data.shape == (d_model,)
    fv = TaskResult.load(toy_run).fv.vector
    assert np.allclose(t.data, 0.5 * fv.numpy())
    # a negative layer is refused, not counted from the end (a typo must not pick the last layer)
    assert main(["export", str(toy_run), "--out", str(tmp_path / "last.gguf"), "--layer", "-1"]) == 2
    assert not (tmp_path / "last.gguf").exists()


def test_export_command_refuses_a_layer_or_scale_llama_cpp_cannot_use(toy_run, tmp_path, capsys):
    from workbench.cli import main

    out = str(tmp_path / "fv.gguf")
    cases = {
        (): "this run's FV sits there; give --layer L with L >= 1",  # the run's own layer is 0
        ("--layer", "0"): "cannot add a control vector after block 0",
        ("--layer", "2"): "layer 2 is out of range: this function vector's model 'tiny-llama' has 2 layers",
        ("--layer", "1", "--scale", "0"): "scale must be a finite number other than 0",
        ("--layer", "1", "--scale", "nan"): "the scale must be finite numbers, got nan",
    }
    for extra, message in cases.items():
        assert main(["export", str(toy_run), "--out", out, *extra]) == 2, extra
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err
    assert main(["export", str(toy_run), "--out", str(tmp_path / "fv.bin"), "--layer", "1"]) == 2
    assert "name a .gguf file" in capsys.readouterr().err
    assert not (tmp_path / "fv.gguf").exists()
