"""The study registry (`workbench.studies.registry`) and `workbench study`, on a tiny model's run.

The numbers themselves are checked against plain hooks in the studies' own tests (test_signed.py,
test_site_scan.py, ...); here: every registered study has a figure, a docs page and its CLI flags;
the JSON holds exactly what the study function returns, a rerun is served from the stage cache,
typed records round-trip and refuse numbers of another shape, and bad input ends in one line."""

import json
import re
from pathlib import Path

import pytest
from test_pipeline import write_task

from workbench.cli import build_parser, main
from workbench.core.loading import load_model
from workbench.method.result import TaskResult
from workbench.studies.registry import STUDIES, StudyResult, compute_study, study_params
from workbench.studies.study import StudyError, StudyRecordMismatch

DOCS = Path(__file__).resolve().parent.parent / "docs" / "studies"


def _subparser(name):
    parser = build_parser()
    (sub,) = [a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)]
    return sub.choices[name]


def test_every_study_has_a_figure_a_docs_page_and_a_cli_entry():
    from workbench.show.study_figures import all_figures, figure_of

    study_cli = _subparser("study")
    for name, study in STUDIES.items():
        assert callable(figure_of(name)), name
        page = DOCS.parent / study.page
        assert page.is_file(), f"no docs page {page}"
        text = page.read_text()
        assert f"workbench study {name}" in text and f"`{name}`" in text.splitlines()[0], name
        assert name in study_cli.description and study.summary in " ".join(study_cli.description.split())
        for p in study.params:
            assert p.flag in study_cli._option_string_actions, (name, p.flag)
    assert set(all_figures()) == set(STUDIES), "a figure registered for a study that is not in the registry"
    assert {p.stem for p in DOCS.glob("*.md")} == set(STUDIES), "a docs page of no registered study"
    diagnose_cli = _subparser("diagnose")  # the alias takes the same generated flags
    assert all(p.flag in diagnose_cli._option_string_actions for p in STUDIES["diagnose"].params)


def test_arguments_are_checked_in_python_and_on_the_command_line(capsys):
    assert study_params("signed") == {"k": 8} and study_params("signed", k=3) == {"k": 3}
    assert study_params("induction") == {"percents": [1, 2, 3, 5, 10, 20], "n_random": 3}
    assert study_params("diagnose", counts=[2, 4])["counts"] == [2, 4]
    for name, given, message in (
        ("signed", {"k": 0}, "--k of study 'signed' must be at least 1"),
        ("signed", {"k": 2.5}, "whole numbers"),
        ("positions", {"alphas": [float("nan")]}, "finite"),
        ("positions", {"alphas": []}, "at least one value"),
        ("zoo", {"k": 3}, "--k does not apply to study 'zoo' (it takes --soft-steps)"),
        ("nope", {}, "unknown study 'nope'"),
    ):
        with pytest.raises(StudyError, match=re.escape(message)):
            study_params(name, **given)
    with pytest.raises(SystemExit):
        main(["study", "signed", "--runs", "r", "--tasks", "t", "--k", "0"])
    assert "at least 1" in capsys.readouterr().err


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


def test_records_round_trip_and_numbers_of_another_shape_are_measured_again(toy_runs, tmp_path, capsys):
    """A saved StudyResult loads back into typed records and redraws; a cached stage whose keys are
    not the record's (another version's) is measured again with a note, never misread."""
    from workbench.base.stage_cache import StageCache
    from workbench.show.report import draw_study
    from workbench.studies.cache import cached_study
    from workbench.studies.signed import SignedHeads, signed_heads_study

    _, runs, _ = toy_runs
    model, run = load_model("tiny-llama"), TaskResult.load(runs / "toy")
    cache = StageCache(tmp_path / "stages")
    cached_study(cache, "signed", model, run, {"k": 2}, lambda: {"k": 2, "layer": 0})  # an old shape
    records = compute_study("signed", model, ["toy"], {"toy": run}, {"k": 2}, cache=cache, progress=False)
    assert "measuring again" in capsys.readouterr().err
    record = records["toy"]
    assert isinstance(record, SignedHeads)
    want = json.loads(json.dumps(signed_heads_study(model, run, k=2)))
    assert json.loads(json.dumps(record.to_dict())) == want
    assert record.ablation["icl"]["none"] == want["ablation"]["icl"]["none"] and record.k == 2
    again = compute_study("signed", model, ["toy"], {"toy": run}, {"k": 2}, cache=cache, progress=False)
    assert "measuring again" not in capsys.readouterr().err and again["toy"].to_dict() == record.to_dict()

    result = StudyResult("signed", "tiny-llama", "id", {"k": 2}, records)
    path = result.save(tmp_path / "signed.json")
    loaded = StudyResult.load(path)
    assert loaded.to_dict() == json.loads(path.read_text()) and isinstance(loaded.tasks["toy"], SignedHeads)
    assert set(draw_study(loaded)) == {"_heatmaps", "_bars"}
    assert "StudyResult(signed on tiny-llama; k=2)" in repr(loaded)
    assert "<b>signed</b> on tiny-llama (k=2)" in loaded._repr_html_()
    broken = json.loads(path.read_text())
    del broken["tasks"]["toy"]["aie"]
    with pytest.raises(StudyRecordMismatch, match="missing aie.*run the study again"):
        StudyResult.from_dict(broken)


def test_diagnose_is_a_study_of_runs_like_any_other(toy_runs):
    """`workbench study diagnose` writes what diagnose_run measures (without any cache)."""
    from workbench.studies.diagnose import diagnose_run

    root, runs, _ = toy_runs
    out = root / "diagnose"
    argv = ["study", "diagnose", "--runs", str(runs), "--tasks", "toy", "--alphas", "1", "--state-tests", "1"]
    assert main([*argv, "--out", str(out), "--figures", str(out), "--formats", "html"]) == 0
    doc = json.loads((out / "tiny-llama_diagnose.json").read_text())
    assert doc["params"] == {
        "alphas": [1.0],
        "counts": [],
        "count_layers": None,
        "centered": False,
        "state_tests": [1],
    }
    run = TaskResult.load(runs / "toy")
    want = diagnose_run(load_model("tiny-llama"), run, [1.0], state_layers=[1], progress=False)
    assert doc["tasks"]["toy"] == json.loads(json.dumps(want)) and "head_counts" not in want
    assert (out / "tiny-llama_diagnose_toy.html").exists()
