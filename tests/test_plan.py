"""The memory planner: shapes against real parameter counts, its verdicts and advice, the CLI, and a
run that will not fit refused before its first stage."""

from __future__ import annotations

import pytest
import torch

from workbench.cli import main
from workbench.core import plan as planmod
from workbench.core.plan import (
    PlanError,
    known_shape,
    parse_bytes,
    plan_for_model,
    plan_run,
    shape_of,
    shape_of_model,
    variant_rows,
)
from workbench.core.scan import auto_variant_batch

GiB = 2**30


def test_weights_match_the_memory_a_loaded_model_holds(tiny):
    for arch, model in tiny.items():
        storages = {p.untyped_storage().data_ptr(): p for p in model.original_model.parameters()}
        held = sum(p.untyped_storage().nbytes() for p in storages.values()) // 4  # float32 elements
        assert shape_of_model(model).n_params == held, arch
        if arch != "gpt2":  # the bridge may hold split copies of GPT-2's fused attention weights
            assert shape_of(f"tiny-{arch}").n_params == held, arch  # from the config alone, on meta


def test_known_shapes_are_the_published_sizes():
    # parameter counts as the models' cards state them (billions, rounded)
    published = [("gptj-6b", 6.05), ("llama-2-7b", 6.74), ("llama-2-70b", 68.98), ("llama-3-8b", 8.03)]
    for name, billions in published:
        assert round(known_shape(name).n_params / 1e9, 2) == billions, name
    g = known_shape("gemma-2-9b")
    assert (g.d_head, g.n_kv_heads, g.min_window) == (256, 8, 4096)


def test_gptj_bf16_plan_prints_a_peak_in_gib_per_stage(capsys):
    args = ["plan", "--model", "gptj-6b", "--dtype", "bfloat16", "--device", "cpu", "--gpu-memory", "80GiB"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for stage in ("weights", "filter", "means", "scan", "layer sweep (valid)", "evaluation"):
        line = next(l for l in out.splitlines() if l.strip().startswith(stage))
        assert float(line.split()[len(stage.split())]) > 11.0  # GiB: 6.05 B parameters x 2 bytes = 11.3
    assert "fits" in out


def test_a_run_that_cannot_fit_is_refused_with_what_to_change(capsys):
    rc = main(["plan", "--model", "llama-2-70b", "--device", "cuda", "--gpu-memory", "80GiB"])
    out = capsys.readouterr().out
    assert rc == 3 and "DOES NOT FIT" in out and "--dtype bfloat16" in out and "--device-map auto" in out
    p = plan_run(known_shape("llama-2-70b"), "bfloat16", "cuda", device_bytes=80 * GiB, n_devices=2)
    assert p.fits and p.weights_bytes == known_shape("llama-2-70b").n_params  # 2 bytes / 2 GPUs
    s = known_shape("llama-2-7b")  # bf16 weights 12.55 GiB on a 13 GiB card: room for some variants only
    assert plan_run(s, "bfloat16", "cuda", device_bytes=13 * GiB).fits
    forced = plan_run(s, "bfloat16", "cuda", device_bytes=13 * GiB, variant_batch=1024)
    with pytest.raises(PlanError, match="use --variant-batch"):
        forced.check()
    suggested = int(forced.problems[0].split("use --variant-batch ")[1].split()[0])
    assert plan_run(s, "bfloat16", "cuda", device_bytes=13 * GiB, variant_batch=suggested).fits
    assert not plan_run(s, "bfloat16", "cuda", device_bytes=13 * GiB, variant_batch=suggested + 1).fits


def test_more_memory_never_means_fewer_variants():
    s = known_shape("smollm2-135m")
    counts = [variant_rows(s, 4, 100, b, 270) for b in (0, 2**24, 2**26, 2**28, 2**30)]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] == 270


def test_the_scan_chooses_its_batch_by_the_plan(tiny):
    model = tiny["llama"]
    for budget in (10**5, 10**6, 10**9):
        expected = variant_rows(shape_of_model(model), 4, 40, budget, 8)
        assert auto_variant_batch(model, 40, budget) == expected


def test_run_task_fails_up_front_when_memory_is_short(tiny, toy_task, monkeypatch):
    from workbench.method import pipeline
    from workbench.method.protocol import Protocol

    model = tiny["llama"]
    assert plan_for_model(model, Protocol(n_shot=2), toy_task).fits
    monkeypatch.setattr(planmod, "device_memory", lambda device: (8 * GiB, 1024))  # 1 KiB free
    ran = []
    monkeypatch.setattr(pipeline, "filter_extraction_queries", lambda *a: ran.append(1))
    with pytest.raises(PlanError, match="will not fit"):
        protocol = Protocol(n_shot=2, n_mean_prompts=2, n_scan_prompts=1)
        pipeline.run_task(model, toy_task, protocol, progress=False)
    assert not ran


def test_config_json_and_bad_input(tmp_path):
    from transformers import LlamaConfig

    LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                vocab_size=300).save_pretrained(tmp_path)  # fmt: skip
    s = shape_of(tmp_path)
    assert (s.n_layers, s.d_model, s.d_vocab) == (2, 64, 300)
    assert shape_of(tmp_path / "config.json") == s
    with pytest.raises(PlanError, match="config.json"):
        shape_of("no-such-model")
    assert parse_bytes("80GiB") == 80 * GiB and parse_bytes("512MiB") == 2**29
    with pytest.raises(PlanError):
        parse_bytes("lots")


def test_the_head_map_reads_one_layer_of_W_O(tiny):
    from workbench.core.heads import layer_W_O

    for arch, model in tiny.items():
        stacked = model.W_O  # every layer, a new tensor (what the head map must not build per call)
        for l in range(stacked.shape[0]):
            assert torch.equal(layer_W_O(model, l), stacked[l]), arch
