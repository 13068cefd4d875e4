"""`workbench study`: a study of finished runs through the command line, on a tiny model's run.

The numbers themselves are checked against plain hooks in the studies' own tests (test_signed.py,
test_site_scan.py, ...); here: the JSON holds exactly what the study function returns, a rerun is
served from the stage cache, and bad input ends in one line."""

import json

import pytest
from test_pipeline import write_task

from workbench.cli import main
from workbench.core.loading import load_model
from workbench.method.result import TaskResult


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory, toy_task):
    root = tmp_path_factory.mktemp("study")
    task_file = write_task(root / "toy.json", toy_task)
    runs = root / "runs"
    args = ["--model", "tiny-llama", "--task", str(task_file), "--layer", "0", "--top-k", "2"]
    args += ["--n-mean-prompts", "4", "--n-scan-prompts", "2", "--out", str(runs / "toy")]
    assert main(["run", *args]) == 0
    return root, runs, task_file


def test_study_writes_the_studys_numbers_and_reruns_from_the_cache(toy_runs, monkeypatch, capsys):
    import workbench.studies.signed as signed

    root, runs, _ = toy_runs
    out, figs = root / "out", root / "figs"
    args = ["study", "signed", "--runs", str(runs), "--tasks", "toy", "--k", "2"]
    args += ["--out", str(out), "--figures", str(figs), "--formats", "html"]
    assert main(args) == 0
    doc = json.loads((out / "tiny-llama_signed.json").read_text())
    assert doc["study"] == "signed" and doc["params"] == {"k": 2}
    assert doc["command"].startswith("workbench study signed")
    assert (figs / "tiny-llama_signed_heatmaps.html").exists()
    want = signed.signed_heads_study(load_model("tiny-llama"), TaskResult.load(runs / "toy"), k=2)
    assert doc["tasks"]["toy"] == json.loads(json.dumps(want))

    def fail(*a, **k):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(signed, "signed_heads_study", fail)
    (out / "tiny-llama_signed.json").unlink()
    assert main(args) == 0, capsys.readouterr().err
    assert json.loads((out / "tiny-llama_signed.json").read_text())["tasks"] == doc["tasks"]
    assert main([*args, "--k", "3"]) == 1  # another k: a new key, so computed (argparse keeps the last --k)
    assert "recomputed" in capsys.readouterr().err


def test_sites_study_uses_the_runs_task_and_protocol(toy_runs):
    from workbench.studies.sites import task_sites

    root, runs, _ = toy_runs
    out = root / "sites"
    argv = ["study", "sites", "--runs", str(runs), "--tasks", "toy", "--out", str(out)]
    assert main([*argv, "--figures", str(out), "--formats", "html"]) == 0
    doc = json.loads((out / "tiny-llama_sites.json").read_text())
    run = TaskResult.load(runs / "toy")
    want = task_sites(load_model("tiny-llama"), run.task, run.protocol)
    assert doc["tasks"]["toy"] == json.loads(json.dumps(want))
    assert (out / "tiny-llama_sites.html").exists() and (out / "tiny-llama_sites_split.html").exists()
    from workbench.show.figures import state_split_figure

    fig = state_split_figure(doc["tasks"])
    assert [list(t.y) for t in fig.data] == [want["split"][p] for p in ("attn", "mlp", "embed")]


def test_study_bad_input_is_one_line(toy_runs, capsys):
    _, runs, _ = toy_runs
    cases = {
        ("nope", "--runs", str(runs), "--tasks", "toy"): "unknown study 'nope'; choose one of: positions",
        ("signed", "--runs", str(runs), "--tasks", "missing"): "no finished run of 'missing'",
        ("signed", "--tasks", "toy"): "give --runs DIR",
        ("sites", "--tasks", "no-such-task"): "Unknown task 'no-such-task'",
        (
            "zoo",
            "--runs",
            str(runs),
            "--tasks",
            "toy",
            "--k",
            "3",
        ): "--k does not apply to study 'zoo' (it takes --soft-steps)",
        ("signed", "--runs", str(runs), "--tasks", "toy", "--model", "tiny-gemma3"): "Studies of a run need",
    }
    for argv, message in cases.items():
        assert main(["study", *argv]) == 2, argv
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and message in errors[0] and "Traceback" not in err, err


def test_run_with_the_head_count_chosen_on_valid(toy_runs, capsys):
    root, _, task_file = toy_runs
    common = ["run", "--model", "tiny-llama", "--task", str(task_file), "--n-mean-prompts", "4"]
    common += ["--n-scan-prompts", "2", "--head-count-rule", "valid"]
    assert main([*common, "--out", str(root / "valid")]) == 0
    run = TaskResult.load(root / "valid")
    choice = run.notes["head_count"]
    assert (
        choice["rule"] == "valid"
        and len(run.fv.heads) == choice["chosen"]
        and run.fv_layer == choice["layer"]
    )
    assert run.protocol.head_count_rule == "valid"
    capsys.readouterr()
    assert main([*common, "--layer", "1", "--out", str(root / "bad")]) == 2
    assert "use it with layer_rule='sweep', no fixed layer" in capsys.readouterr().err
