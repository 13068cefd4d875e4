"""The whole protocol on tiny models: results, their home (prompt sets, save/load), the CLI, and the
bugs of a run's data having no home (seeded studies, cache identity, task files, vector loading)."""

import json
from dataclasses import replace

import pytest
import torch
from reference import hf_mean_head_outputs, hf_ranks, top1

import workbench.method.pipeline as pipeline
from workbench.base.stage_cache import StageCache
from workbench.cli import main
from workbench.core.loading import load_model
from workbench.core.model import model_id
from workbench.core.tiny import random_model, tiny_tokenizer
from workbench.method.pipeline import evaluate_conditions, run_task
from workbench.method.protocol import PROMPT_SETS, PromptSets, Protocol, ProtocolError
from workbench.method.result import ResultMismatch, TaskResult

SMALL = Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=3)


def write_task(path, task):
    path.write_text(json.dumps([{"input": p.input, "output": p.output} for p in task.pairs]))
    return path


def test_pipeline_on_tiny_model_and_load_round_trip(tiny, toy_task, tmp_path):
    result = run_task(tiny["llama"], toy_task, SMALL, progress=False)
    assert result.scan.effects.shape == (3, 2, 4) and len(result.fv.heads) == 4
    assert result.fv_layer == result.valid_sweep.best_layer() and result.valid_sweep.layers == [0, 1]
    assert list(result.accuracy_unfiltered) == [
        "icl",
        "zero_shot",
        "zero_shot_fv",
        "shuffled",
        "shuffled_fv",
        "mean_state",
        "task_vector",
    ]
    assert result.accuracy_unfiltered["icl"].n == len(result.split.test)
    result.save(tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["n_layers"] == 2 and len(data["aie"]) == 2 and len(data["aie"][0]) == 4
    assert data["task"] == toy_task.name and data["model_id"] == model_id(tiny["llama"])
    assert data["self_check"]["status"] == "passed" and data["self_check"]["checks"]["scan"]["passed"]
    assert result.fv.provenance["self_check"]["status"] == "passed"
    back = TaskResult.load(tmp_path)
    assert back.task == toy_task and back.protocol == SMALL and back.fv_layer == result.fv_layer
    assert back.extraction_queries == result.extraction_queries and back.fv.heads == result.fv.heads
    torch.testing.assert_close(back.scan.effects, result.scan.effects)
    torch.testing.assert_close(back.means.mean_out, result.means.mean_out)
    torch.testing.assert_close(back.fv.vector, result.fv.vector)
    for name, acc in result.accuracy_unfiltered.items():
        assert torch.equal(back.accuracy_unfiltered[name].ranks, acc.ranks), name
    assert back.valid_sweep.to_dict() == result.valid_sweep.to_dict()
    # the loaded result hands out the run's very prompts
    a, b = result.prompt_sets(tiny["llama"]), back.prompt_sets(tiny["llama"])
    assert [p.ids for p in a["scan"]] == [p.ids for p in b["scan"]]


def test_a_subset_of_conditions_scores_as_the_whole_set_and_skips_the_rest(tiny, toy_task, monkeypatch):
    model = tiny["llama"]
    result = run_task(model, toy_task, SMALL, progress=False)
    sets = result.prompt_sets(model)
    args = (model, sets, result.fv, result.fv_layer, result.means)
    whole = evaluate_conditions(*args, progress=False)
    donors_run = []
    monkeypatch.setattr(pipeline, "last_token_states", lambda *a, **k: donors_run.append(a))
    part = evaluate_conditions(*args, progress=False, conditions=("shuffled_fv", "zero_shot_fv"))
    assert list(part) == ["zero_shot_fv", "shuffled_fv"] and not donors_run
    for name, acc in part.items():
        assert torch.equal(acc.ranks, whole[name].ranks), name
    with pytest.raises(ValueError, match="unknown conditions"):
        evaluate_conditions(*args, progress=False, conditions=("zero_shot_vf",))


def test_the_donors_run_once_for_both_metrics_even_without_a_cache(tiny, toy_task, monkeypatch):
    calls = []
    real = pipeline.last_token_states

    def counted(model, prompts, layers, *args, **kwargs):
        calls.append((len(prompts), list(layers)))
        return real(model, prompts, layers, *args, **kwargs)

    monkeypatch.setattr(pipeline, "last_token_states", counted)
    result = run_task(tiny["llama"], toy_task, SMALL, StageCache(enabled=False), progress=False)
    assert calls == [(len(result.split.test), [result.fv_layer])]
    assert result.answer_accuracy_unfiltered["task_vector"].n == len(result.split.test)


def test_prompt_sets_follow_one_seed_rule(toy_task):
    sets = PromptSets(toy_task, replace(SMALL, seed=5), extraction=toy_task.split(5).valid)
    for name, spec in PROMPT_SETS.items():
        assert sets.seed(name) == 5 + spec.offset
    shifted = PromptSets(toy_task, replace(SMALL, seed=6), extraction=toy_task.split(6).valid)
    assert [p.text for p in sets.text("test_icl")] != [p.text for p in shifted.text("test_icl")]
    assert {p.query for p in sets.text("test_zero_shot")} == set(toy_task.split(5).test)
    with pytest.raises(ValueError, match="extraction queries"):
        PromptSets(toy_task, SMALL).text("scan")


def test_protocol_refuses_settings_that_cannot_work(tiny, toy_task):
    for bad in (
        {"n_scan_prompts": 0},
        {"n_mean_prompts": 0},
        {"top_k": 0},
        {"top_k": -3},
        {"layer_rule": "x"},
    ):
        with pytest.raises(ProtocolError):
            Protocol(**bad)
    with pytest.raises(ProtocolError, match="more than the 8 heads"):
        run_task(tiny["llama"], toy_task, replace(SMALL, top_k=100), progress=False)


def test_natural_text_and_portability(tiny, toy_task):
    from workbench.data.prompts import PORTABILITY_FORMATS, with_format
    from workbench.method.evaluate import accuracy
    from workbench.method.protocol import encode

    model = tiny["llama"]
    result = run_task(
        model,
        toy_task,
        replace(SMALL, natural_text=True, portability=True, n_extra_queries=3, filter_correct=False),
        progress=False,
    )
    nat, port = result.notes["natural_text"], result.notes["portability"]
    assert nat["queries"] == 3 and set(nat["plain"]) == set(nat["fv"]) and len(nat["fv"]) == 5
    assert len(port) == 20 and all(set(v) == {"plain", "fv"} for v in port.values())
    # one format's plain accuracy, measured again directly on the same three queries
    fmt = next(
        f
        for f in PORTABILITY_FORMATS
        if repr((f.input_prefix, f.output_prefix, f.io_separator, f.example_separator)) in port
    )
    key = repr((fmt.input_prefix, fmt.output_prefix, fmt.io_separator, fmt.example_separator))
    queries = [e.prompt for e in result.prompt_sets(model)["test_zero_shot"][:3]]
    assert port[key]["plain"] == accuracy(model, encode(model, [with_format(q, fmt) for q in queries])).top1


def test_cached_stages_are_reused(tiny, toy_task, monkeypatch, tmp_path):
    cache = StageCache(tmp_path)
    first = run_task(tiny["gpt2"], toy_task, SMALL, cache=cache, progress=False)
    import workbench.method.pipeline as pipeline

    for name in ("scan_heads", "mean_head_activations", "layer_sweep", "evaluate_conditions"):
        monkeypatch.setattr(pipeline, name, lambda *a, **k: 1 / 0)  # must not be called again
    again = run_task(tiny["gpt2"], toy_task, SMALL, cache=cache, progress=False)
    torch.testing.assert_close(again.scan.effects, first.scan.effects)
    assert again.fv_layer == first.fv_layer and again.fv.heads == first.fv.heads
    for name, acc in first.accuracy_unfiltered.items():
        assert torch.equal(again.accuracy_unfiltered[name].ranks, acc.ranks), name


def test_filtered_path_on_a_model_that_does_icl_partly(trained):
    """The paper's filter, with a model whose clean ICL gets some valid queries right and some wrong:
    extraction uses exactly the right ones (found here with one unbatched forward each), and the
    filtered accuracies are over the test queries ICL gets right."""
    model, task = trained
    protocol = Protocol(n_mean_prompts=8, n_scan_prompts=3)
    result = run_task(model, task, protocol, progress=False)
    sets = result.prompt_sets(model)
    valid = sets["valid_icl"]
    with torch.no_grad():
        ranks = [
            int((l > l[e.answer_id]).sum()) for e in valid for l in [model(torch.tensor([e.ids]))[0, -1]]
        ]
    right = [e.prompt.query for e, r in zip(valid, ranks) if r == 0]
    assert 0 < len(right) < len(valid), "the trained model should get some valid queries right, not all"
    assert result.extraction_queries == right and result.notes["extraction_queries"] == len(right)
    assert {p.query for p in sets.text("means")} <= set(right) and {
        p.query for p in sets.text("scan")
    } <= set(right)
    icl_all, icl_right = result.accuracy_unfiltered["icl"], result.accuracy["icl"]
    assert icl_right.top1 == 1.0 and icl_right.n == result.notes["test_queries_filtered"]
    assert 0 < icl_right.n < icl_all.n and icl_all.top1 == pytest.approx(icl_right.n / icl_all.n)
    unfiltered = run_task(model, task, replace(protocol, filter_correct=False), progress=False)
    assert unfiltered.extraction_queries == [e.prompt.query for e in valid]


# --- the four bugs of a run's data without a home ---------------------------------------------------


def test_studies_use_the_runs_seed_and_reproduce_its_numbers(tiny, toy_task):
    """Bug: studies ran on the seed-0 split whatever the run's seed.  At seed 1, the head-count curve
    at the FV's head count and the baselines at the FV's layer must equal the run's own numbers."""
    from workbench.studies.paper import baseline_sweeps, head_count_curves

    model = tiny["llama"]
    result = run_task(model, toy_task, replace(SMALL, seed=1), progress=False)
    k, layer = len(result.fv.heads), result.fv_layer
    acc = {name: a.top1 for name, a in result.accuracy_unfiltered.items()}
    curves = head_count_curves(model, result, counts=(0, k), progress=False)
    assert curves["zero_shot"][k] == acc["zero_shot_fv"] and curves["shuffled"][k] == acc["shuffled_fv"]
    assert curves["zero_shot"][0] == acc["zero_shot"] and curves["shuffled"][0] == acc["shuffled"]
    base = baseline_sweeps(model, result, progress=False)
    assert base["mean state"].results["zero_shot"][layer].top1 == acc["mean_state"]
    assert base["task vector"].results["zero_shot"][layer].top1 == acc["task_vector"]
    # the seed-1 run's test queries are not the seed-0 split's
    assert set(result.split.test) != set(toy_task.split(0).test)


def test_cache_knows_models_by_content_not_name(toy_task, tmp_path):
    """Bug: two different models of one display name shared cached stages (and dtype was not in the key)."""
    tok = tiny_tokenizer()
    from workbench.core.tiny import tiny_config

    a = random_model(tiny_config("llama", len(tok)), tok, name="model", seed=0)
    b = random_model(tiny_config("llama", len(tok)), tok, name="model", seed=1)
    cache = StageCache(tmp_path / "stages")
    ra = run_task(a, toy_task, SMALL, cache=cache, progress=False)
    rb = run_task(b, toy_task, SMALL, cache=cache, progress=False)
    fresh = run_task(b, toy_task, SMALL, cache=StageCache(enabled=False), progress=False)
    assert not torch.allclose(ra.scan.effects, rb.scan.effects)
    torch.testing.assert_close(rb.scan.effects, fresh.scan.effects)
    torch.testing.assert_close(rb.fv.vector, fresh.fv.vector)
    half = load_model("tiny-llama", dtype="bfloat16", verbose=False)
    full = load_model("tiny-llama", verbose=False)
    assert model_id(half) != model_id(full) and model_id(half).endswith("-bfloat16")
    assert model_id(full) == model_id(load_model("tiny-llama", verbose=False))  # same content, same identity
    with pytest.raises(ResultMismatch, match="the run's own model"):
        ra.prompt_sets(b)


def test_diagnose_with_a_task_file_named_like_a_builtin(tmp_path, toy_task, capsys):
    """Bug: studies reloaded the task by its file stem, so `--task my.json` died and a file named like a
    built-in task silently got the built-in's data."""
    task_file = write_task(tmp_path / "capitalize.json", toy_task)
    rc = main(
        [
            "diagnose",
            "--model",
            "tiny-llama",
            "--task",
            str(task_file),
            "--alphas",
            "1",
            "--n-mean-prompts",
            "4",
            "--n-scan-prompts",
            "2",
            "--out",
            str(tmp_path / "out"),
            "--formats",
            "html",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    diag = json.loads((tmp_path / "out" / "tiny-llama_diagnose.json").read_text())["tasks"]["capitalize"]
    assert diag["n_prompts"] == len(toy_task.split(0).test)  # the file's test split, not the built-in's


def test_vector_loaded_for_another_model_stays_usable(tiny, tmp_path):
    """Bug: load(..., allow_other_model=True) loaded, then decode() refused and asked for the same flag."""
    from workbench.method.vectors import FunctionVector, VectorMismatch

    fv = FunctionVector.from_heads(
        run_task(tiny["llama"], "capitalize", SMALL, progress=False).means,
        [(0, 1)],
        tiny["llama"],
        "capitalize",
    )
    path = fv.save(tmp_path / "fv.safetensors")
    other = load_model("tiny-llama", verbose=False)  # another object, the same weights: compatible
    FunctionVector.load(path, model=other).decode(other)
    from workbench.core.tiny import tiny_model

    reseeded = tiny_model("llama", seed=3)  # same name and shape, other weights
    with pytest.raises(VectorMismatch, match="fingerprint"):
        FunctionVector.load(path, model=reseeded)
    loaded = FunctionVector.load(path, model=reseeded, allow_other_model=True)
    assert len(loaded.decode(reseeded, k=3)) == 3
    assert loaded.provenance["hook_site"] == "blocks.{layer}.hook_resid_post"
    assert loaded.provenance["model_fingerprint"] == model_id(tiny["llama"]).split("-")[0]


# --- the CLI ------------------------------------------------------------------------------------------


def test_cli_contract_on_tiny_model(tmp_path, toy_task):
    out = tmp_path / "run"
    rc = main(
        [
            "run",
            "--model",
            "tiny-llama",
            "--task",
            str(write_task(tmp_path / "toy.json", toy_task)),
            "--out",
            str(out),
            "--layer",
            "1",
            "--top-k",
            "3",
            "--sweep-layers",
            "--n-mean-prompts",
            "5",
            "--n-scan-prompts",
            "2",
        ]
    )
    assert rc == 0
    data = json.loads((out / "result.json").read_text())
    for key in (
        "model",
        "task",
        "n_layers",
        "n_heads",
        "aie",
        "top_heads",
        "fv_layer",
        "accuracy",
        "accuracy_unfiltered",
        "layer_sweep",
    ):
        assert key in data, key
    assert data["fv_layer"] == 1 and len(data["top_heads"]) == 3 and data["task"] == "toy"
    assert set(data["accuracy"]) >= {"icl", "zero_shot", "zero_shot_fv", "shuffled", "shuffled_fv"}
    assert data["protocol"]["n_mean_prompts"] == 5 and TaskResult.load(out).protocol.n_scan_prompts == 2


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["run", "--model", "tiny-llama", "--task", "nope", "--out", str(tmp_path)]) == 2
    assert "Unknown task 'nope'" in capsys.readouterr().err
    assert (
        main(["run", "--model", "tiny-llama", "--task", "antonym", "--out", str(tmp_path), "--layer", "9"])
        == 2
    )
    assert "out of range" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "not-a-run")]) == 2
    assert "not-a-run does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--model", "tiny-llama", "--task", "antonym", "--out", str(tmp_path), "--top-k", "0"])
    assert "at least 1" in capsys.readouterr().err


def test_merge_and_compare_runs(tmp_path, toy_task, capsys):
    task_file = write_task(tmp_path / "toy.json", toy_task)
    common = [
        "--model",
        "tiny-llama",
        "--task",
        str(task_file),
        "--layer",
        "1",
        "--n-mean-prompts",
        "4",
        "--n-scan-prompts",
        "2",
    ]
    for seed in (0, 1):
        assert main(["run", *common, "--seed", str(seed), "--out", str(tmp_path / f"s{seed}")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "s0"), "--k", "3"]) == 0
    assert "top-3 overlap 100%, Spearman of the AIE maps 1.00" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "s1"), "--k", "3"]) == 0
    assert "seed 0) vs toy (seed 1)" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "s0"), str(tmp_path / "nope")]) == 2
    assert (
        main(
            [
                "merge",
                str(tmp_path / "s0"),
                str(tmp_path / "s1"),
                "--unfiltered",
                "--out",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    merged = json.loads((tmp_path / "m.json").read_text())
    runs = [TaskResult.load(tmp_path / f"s{s}") for s in (0, 1)]
    expect = sum(r.accuracy_unfiltered["zero_shot_fv"].top1 for r in runs) / 2
    assert merged["mean"]["zero_shot_fv"] == pytest.approx(expect)
    torch.testing.assert_close(
        torch.tensor(merged["universal_aie"]), (runs[0].scan.aie + runs[1].scan.aie) / 2
    )
    out = str(tmp_path / "w.json")
    dirs = [str(tmp_path / "s0"), str(tmp_path / "s1")]
    assert main(["merge", *dirs, "--whole-answer", "--unfiltered", "--out", out]) == 0
    whole = json.loads((tmp_path / "w.json").read_text())
    expect = sum(r.answer_accuracy_unfiltered["zero_shot_fv"].top1 for r in runs) / 2
    assert whole["key"] == "answer_accuracy_unfiltered"
    assert whole["mean"]["zero_shot_fv"] == pytest.approx(expect)
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s0")]) == 2  # the same run twice
    assert "merged once" in capsys.readouterr().err


def test_attribution_study_uses_the_exact_scans_prompts(tiny, toy_task):
    """The comparison must score the very prompts of the run's scan: rescanning them exactly
    reproduces the run's per-prompt effects."""
    from workbench.core.scan import scan_heads
    from workbench.studies.agreement import attribution_vs_exact

    model = tiny["llama"]
    result = run_task(model, toy_task, SMALL, progress=False)
    again = scan_heads(model, result.prompt_sets(model)["scan"], result.means.mean_z, progress=False)
    torch.testing.assert_close(again.effects, result.scan.effects, atol=1e-6, rtol=0)
    approx, stats = attribution_vs_exact(model, result, k=3, progress=False)
    assert approx.effects.shape == result.scan.effects.shape and approx.meta["method"] == "attribution"
    exact_top = {(l, h) for l, h, _ in result.scan.top_heads(3)}
    approx_top = {(l, h) for l, h, _ in approx.top_heads(6)}
    assert stats["exact_top_k_in_approx_top_2k"] == len(exact_top & approx_top) / 3


def test_attribution_figure_is_a_cached_stage(tiny, toy_task, tmp_path, monkeypatch):
    """`workbench figures` redraws the attribution scatter from the stage cache: the attribution scan
    runs once, and the redrawn figure holds the same points."""
    from workbench.base.stage_cache import StageCache
    from workbench.show import report

    model = tiny["llama"]
    result = run_task(model, toy_task, SMALL, progress=False)
    calls, figs = [], []
    real = report.attribution_vs_exact
    monkeypatch.setattr(report, "attribution_vs_exact", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = StageCache(tmp_path)
    first = report.attribution_figure(lambda fig, key: figs.append(fig), model, result, False, cache)
    again = report.attribution_figure(lambda fig, key: figs.append(fig), model, result, False, cache)
    assert len(calls) == 1 and again == first
    assert list(figs[0].data[0].y) == list(figs[1].data[0].y)
    approx, _ = real(model, result, progress=False)
    assert list(figs[1].data[0].y) == approx.aie.flatten().tolist()


def test_diagnose_command_grid_matches_a_direct_evaluation(tmp_path, capsys, monkeypatch):
    """`workbench diagnose` writes the layer x alpha grid and the state tests; cells re-measured with
    plain hooks written here agree."""
    from workbench.core.heads import last_token_states
    from workbench.data.tasks import load_task
    from workbench.method.evaluate import accuracy

    diagnose_args = [
        "diagnose",
        "--model",
        "tiny-llama",
        "--task",
        "capitalize",
        "--alphas",
        "1",
        "4",
        "--counts",
        "2",
        "8",
        "--state-tests",
        "1",
        "--centered",
        "--n-mean-prompts",
        "4",
        "--n-scan-prompts",
        "2",
        "--out",
        str(tmp_path),
        "--formats",
        "html",
    ]
    rc = main(diagnose_args)
    assert rc == 0 and "task-vector ceiling" in capsys.readouterr().out
    diag = json.loads((tmp_path / "tiny-llama_diagnose.json").read_text())["tasks"]["capitalize"]
    assert len(diag["zero_shot"]) == 2 and len(diag["zero_shot"][0]) == 2 == len(diag["task_vector"])
    assert (tmp_path / "tiny-llama_diagnose_capitalize.html").exists()
    assert diag["head_counts"]["counts"] == [2, 8] and diag["head_counts_centered"]["centered"]
    model = load_model("tiny-llama", verbose=False)
    result = run_task(
        model, load_task("capitalize"), Protocol(n_mean_prompts=4, n_scan_prompts=2), progress=False
    )
    sets = result.prompt_sets(model)
    zero = sets["test_zero_shot"]
    fv = result.fv.vector

    def add_at_1(act, hook, scale=4.0):
        act[:, -1] += scale * fv
        return act

    assert accuracy(model, zero, [("blocks.1.hook_resid_post", add_at_1)]).top1 == diag["zero_shot"][1][1]
    mean_icl = last_token_states(model, sets["donors"], [1])[0].mean(0)

    def replace_at_1(act, hook):
        act[:, -1] = mean_icl
        return act

    assert (
        accuracy(model, zero, [("blocks.1.hook_resid_post", replace_at_1)]).top1
        == diag["state_tests"]["replace_mean_icl"][0]
    )
    capsys.readouterr()
    # every part is a cached stage: the same command measures nothing again
    import workbench.studies.diagnose as diagnose_module

    for name in ("injection_diagnostics", "head_count_grid", "state_tests"):
        monkeypatch.setattr(diagnose_module, name, lambda *a, **k: 1 / 0)
    rc = main(diagnose_args)
    assert rc == 0
    assert json.loads((tmp_path / "tiny-llama_diagnose.json").read_text())["tasks"]["capitalize"] == diag


def test_centered_fv_subtracts_each_heads_zero_shot_output(tiny, toy_task):
    from workbench.method.pipeline import zero_shot_head_means

    model = tiny["llama"]
    plain = run_task(model, toy_task, replace(SMALL, layer=1), progress=False)
    centered = run_task(model, toy_task, replace(SMALL, layer=1, center=True), progress=False)
    zero = zero_shot_head_means(model, plain.prompt_sets(model), progress=False)
    assert centered.fv.heads == plain.fv.heads
    expected = plain.fv.vector - sum(zero.mean_out[l, h] for l, h in plain.fv.heads)
    torch.testing.assert_close(centered.fv.vector, expected, atol=1e-5, rtol=0)
    assert (centered.fv.vector - plain.fv.vector).norm() > 1e-3


@pytest.mark.real_model
def test_icl_beats_zero_shot_and_fv_lifts_zero_shot(real_model):
    """The science on real weights, small counts: capitalize on the embedded model."""
    result = run_task(
        real_model, "capitalize", Protocol(n_mean_prompts=20, n_scan_prompts=4, layer=17), progress=False
    )
    acc = result.accuracy_unfiltered
    assert acc["icl"].top1 > acc["zero_shot"].top1 + 0.5
    assert acc["zero_shot_fv"].top1 > acc["zero_shot"].top1 + 0.15
    assert acc["shuffled_fv"].top1 > acc["shuffled"].top1 + 0.2


def test_function_vector_and_headline_accuracies_against_plain_transformers(trained, trained_run):
    """The FV and every accuracy of a run, recomputed in plain transformers on a model that answers
    some test queries right (the tiny random model above answers none)."""
    model, run = trained[0], trained_run
    sets = run.prompt_sets(model)
    mean_out = hf_mean_head_outputs(model, sets["means"])
    fv = sum(mean_out[l, h] for l, h in run.fv.heads)
    torch.testing.assert_close(run.fv.vector, fv, atol=1e-4, rtol=1e-4)
    assert run.fv.heads == [(l, h) for l, h, _ in run.scan.top_heads(len(run.fv.heads))]
    layer = run.fv_layer
    conditions = {
        "icl": hf_ranks(model, sets["test_icl"]),
        "zero_shot": hf_ranks(model, sets["test_zero_shot"]),
        "zero_shot_fv": hf_ranks(model, sets["test_zero_shot"], add=(layer, fv)),
        "shuffled": hf_ranks(model, sets["test_shuffled"]),
        "shuffled_fv": hf_ranks(model, sets["test_shuffled"], add=(layer, fv)),
    }
    right = conditions["icl"] == 0
    assert 0 < int(right.sum()) < len(right)  # a model that answers some queries right, not all
    for name, ranks in conditions.items():
        assert torch.equal(run.accuracy_unfiltered[name].ranks, ranks), name
        assert run.accuracy_unfiltered[name].top1 == pytest.approx(top1(ranks)), name
        assert run.accuracy[name].top1 == pytest.approx(top1(ranks[right])), name  # the paper's filter
    assert run.accuracy["icl"].top1 == 1.0
