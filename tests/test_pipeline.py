import json

import pytest
import torch

from workbench.cli import main
from workbench.pipeline import Protocol, run_task

SMALL = Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=3)


def test_pipeline_on_tiny_model(tiny, toy_task, tmp_path):
    result = run_task(tiny["llama"], toy_task, SMALL, progress=False)
    assert result.scan.effects.shape == (3, 2, 4)
    assert result.fv_layer in (0, 1) and len(result.fv.heads) == 4
    for key in ("icl", "zero_shot", "zero_shot_fv", "shuffled", "shuffled_fv", "mean_state", "task_vector"):
        assert key in result.accuracy and key in result.accuracy_unfiltered
    result.save(tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["n_layers"] == 2 and len(data["aie"]) == 2 and len(data["aie"][0]) == 4
    assert (tmp_path / "function_vector.safetensors").exists()


def test_natural_text_and_portability(tiny, toy_task):
    from dataclasses import replace

    result = run_task(tiny["llama"], toy_task, replace(SMALL, natural_text=True, portability=True, n_extra_queries=3,
                                                      filter_correct=False), progress=False)
    nat, port = result.notes["natural_text"], result.notes["portability"]
    assert set(nat["plain"]) == set(nat["fv"]) and len(nat["fv"]) == 5  # the five word templates
    assert len(port) == 20 and all(set(v) == {"plain", "fv"} for v in port.values())
    assert all(0 <= v["fv"] <= 1 for v in port.values())


def test_cached_stages_are_reused(tiny, toy_task, monkeypatch):
    run_task(tiny["gpt2"], toy_task, SMALL, progress=False)
    import workbench.pipeline as pipeline

    monkeypatch.setattr(pipeline, "scan_heads", lambda *a, **k: 1 / 0)  # must not be called again
    monkeypatch.setattr(pipeline, "mean_head_activations", lambda *a, **k: 1 / 0)
    monkeypatch.setattr(pipeline, "layer_sweep", lambda *a, **k: 1 / 0)
    monkeypatch.setattr(pipeline, "evaluate_conditions", lambda *a, **k: 1 / 0)
    again = run_task(tiny["gpt2"], toy_task, SMALL, progress=False)
    assert again.valid_sweep is not None and again.accuracy["icl"].n >= 0


def test_cli_contract_on_tiny_model(tmp_path, toy_task, capsys):
    task_file = tmp_path / "toy.json"
    task_file.write_text(json.dumps([{"input": p.input, "output": p.output} for p in toy_task.pairs]))
    out = tmp_path / "run"
    rc = main(["run", "--model", "tiny-llama", "--task", str(task_file), "--out", str(out), "--layer", "1",
               "--top-k", "3", "--sweep-layers", "--n-mean-prompts", "5", "--n-scan-prompts", "2"])
    assert rc == 0
    data = json.loads((out / "result.json").read_text())
    for key in ("model", "task", "n_layers", "n_heads", "aie", "top_heads", "fv_layer", "accuracy",
                "accuracy_unfiltered", "layer_sweep"):
        assert key in data, key
    assert data["fv_layer"] == 1 and len(data["top_heads"]) == 3 and data["task"] == "toy"
    assert set(data["accuracy"]) >= {"icl", "zero_shot", "zero_shot_fv", "shuffled", "shuffled_fv"}


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["run", "--model", "tiny-llama", "--task", "nope", "--out", str(tmp_path)]) == 2
    assert "Unknown task 'nope'" in capsys.readouterr().err
    assert main(["run", "--model", "tiny-llama", "--task", "antonym", "--out", str(tmp_path), "--layer", "9"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "not-a-run")]) == 2
    assert "no result.json in" in capsys.readouterr().err


@pytest.mark.real_model
def test_icl_beats_zero_shot_and_fv_lifts_zero_shot(real_model):
    """The science on real weights, small counts: capitalize on the embedded model."""
    result = run_task(real_model, "capitalize", Protocol(n_mean_prompts=20, n_scan_prompts=4, layer=17), progress=False)
    acc = result.accuracy_unfiltered
    assert acc["icl"].top1 > acc["zero_shot"].top1 + 0.5
    assert acc["zero_shot_fv"].top1 > acc["zero_shot"].top1 + 0.15
    assert acc["shuffled_fv"].top1 > acc["shuffled"].top1 + 0.2


def test_attribution_study_uses_the_exact_scans_prompts(tiny, toy_task):
    """The comparison must score the very prompts of the run's scan: rescanning them exactly
    reproduces the run's per-prompt effects."""
    from workbench.pipeline import extraction_queries, scan_prompts
    from workbench.scan import scan_heads
    from workbench.studies import attribution_vs_exact

    model = tiny["llama"]
    result = run_task(model, toy_task, SMALL, progress=False)
    pool, _ = extraction_queries(model, toy_task, SMALL)
    again = scan_heads(model, scan_prompts(model, toy_task.split(seed=0), pool, SMALL), result.means.mean_z, progress=False)
    assert torch.allclose(again.effects, result.scan.effects, atol=1e-6)
    approx, stats = attribution_vs_exact(model, result, k=3, progress=False, task=toy_task)
    assert approx.effects.shape == result.scan.effects.shape and approx.meta["method"] == "attribution"
    assert -1 <= stats["spearman"] <= 1 and 0 <= stats["exact_top_k_in_approx_top_2k"] <= 1


def test_diagnose_command_grid_matches_a_direct_evaluation(tmp_path, capsys):
    """`workbench diagnose` writes the layer x alpha grid; one cell re-measured directly agrees."""
    from workbench.evaluate import accuracy
    from workbench.intervene import add_vector
    from workbench.models import load_model
    from workbench.pipeline import encode
    from workbench.prompts import sample_prompts
    from workbench.tasks import load_task
    from workbench.vectors import FunctionVector

    rc = main(["diagnose", "--model", "tiny-llama", "--task", "capitalize", "--alphas", "1", "4", "--counts", "2", "8", "--state-tests", "1", "--centered",
               "--n-mean-prompts", "4", "--n-scan-prompts", "2", "--out", str(tmp_path), "--formats", "html"])
    assert rc == 0 and "task-vector ceiling" in capsys.readouterr().out
    diag = json.loads((tmp_path / "tiny-llama_injection_capitalize.json").read_text())
    assert len(diag["zero_shot"]) == 2 and len(diag["zero_shot"][0]) == 2 == len(diag["task_vector"])
    assert all(r > 0 for r in diag["norm_ratio"]) and (tmp_path / "tiny-llama_injection_capitalize.html").exists()
    assert diag["head_counts"]["counts"] == [2, 8] and len(diag["head_counts"]["zero_shot"][0]) == 2
    assert diag["state_tests"]["layers"] == [1] and 0 <= diag["state_tests"]["replace_mean_icl"][0] <= 1
    assert diag["head_counts_centered"]["centered"] and diag["head_counts_centered"]["counts"] == [2, 8]
    # re-measure alpha 4 at layer 1 from the saved FV of the same (cached) run
    model = load_model("tiny-llama", verbose=False)
    from workbench.pipeline import Protocol, run_task
    fv = run_task(model, "capitalize", Protocol(n_mean_prompts=4, n_scan_prompts=2), progress=False).fv
    zero = encode(model, sample_prompts(load_task("capitalize").split(0), None, 0, "zero_shot", "test"))
    assert isinstance(fv, FunctionVector)
    assert accuracy(model, zero, add_vector(model, 1, fv.vector, 4.0)).top1 == diag["zero_shot"][1][1]


def test_compare_two_runs(tmp_path, toy_task, capsys):
    task_file = tmp_path / "toy.json"
    task_file.write_text(json.dumps([{"input": p.input, "output": p.output} for p in toy_task.pairs]))
    common = ["--model", "tiny-llama", "--task", str(task_file), "--layer", "1", "--n-mean-prompts", "4",
              "--n-scan-prompts", "2"]
    for seed in (0, 1):
        assert main(["run", *common, "--seed", str(seed), "--out", str(tmp_path / f"s{seed}")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "s0"), "--k", "3"]) == 0
    assert "top-3 overlap 100%, Spearman of the AIE maps 1.00" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "s1"), "--k", "3"]) == 0
    assert "seed 0) vs toy (seed 1)" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "nope")]) == 2


def test_centered_fv_subtracts_each_heads_zero_shot_output(tiny, toy_task):
    from dataclasses import replace

    from workbench.pipeline import zero_shot_head_means

    model = tiny["llama"]
    plain = run_task(model, toy_task, replace(SMALL, layer=1), progress=False)
    centered = run_task(model, toy_task, replace(SMALL, layer=1, center=True), progress=False)
    zero = zero_shot_head_means(model, toy_task.split(seed=0), progress=False)
    assert centered.fv.heads == plain.fv.heads
    expected = plain.fv.vector - sum(zero.mean_out[l, h] for l, h in plain.fv.heads)
    torch.testing.assert_close(centered.fv.vector, expected, atol=1e-5, rtol=0)
    assert (centered.fv.vector - plain.fv.vector).norm() > 1e-3
