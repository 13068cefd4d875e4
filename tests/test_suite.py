"""`workbench suite`: many tasks in one command, a malformed file among them, the universal heads and
the universal FV checked against independent computations (plain means, plain hooks)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
import torch
from reference import add_after, plain_top1

import workbench.method.suite as suite_module
from workbench.base.stage_cache import StageCache
from workbench.cli import main
from workbench.data.label_baselines import label_baselines
from workbench.data.tasks import Task
from workbench.method.pipeline import evaluate_conditions
from workbench.method.protocol import PromptSets, Protocol
from workbench.method.result import TaskResult
from workbench.method.suite import (
    SuiteResult,
    choose_universal_count,
    run_suite,
    universal_function_vector_accuracy,
)

PROTOCOL = Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=3, seed=2, top_k=3, max_eval_queries=16)


def _write(folder, name, pairs):
    path = folder / f"{name}.json"
    path.write_text(json.dumps([{"input": x, "output": y} for x, y in pairs]))
    return path


def test_label_baselines_against_counting():
    answers = ["b", "a", "b", "c", "b", "a"]
    b = label_baselines(answers)
    assert (b.majority, b.chance, b.majority_label, b.n_distinct) == (3 / 6, 1 / 3, "b", 3)
    with pytest.raises(ValueError, match="at least one"):
        label_baselines([])


def test_capped_test_queries_are_a_seeded_subset(toy_task):
    full = PromptSets(toy_task, Protocol(seed=1))
    capped = PromptSets(toy_task, Protocol(seed=1, max_eval_queries=5))
    assert set(capped.test_queries) < set(full.split.test) and len(capped.test_queries) == 5
    assert [p.query for p in capped.text("test_zero_shot")] == list(capped.test_queries)
    assert [p.query for p in capped.text("test_icl")] == list(capped.test_queries)
    assert capped.test_queries == PromptSets(toy_task, Protocol(seed=1, max_eval_queries=5)).test_queries
    assert PromptSets(toy_task, Protocol(seed=1, max_eval_queries=999)).test_queries == full.split.test


@pytest.fixture(scope="module")
def suite_run(trained, tmp_path_factory):
    """The trained tiny model's capitalize task, a copy task of the same words, a malformed file and
    a task too small to run."""
    model, task = trained
    folder = tmp_path_factory.mktemp("tasks")
    _write(folder, "capitalize", [(p.input, p.output) for p in task.pairs])
    _write(folder, "copy", [(p.input, p.input) for p in task.pairs])
    (folder / "broken.json").write_text('[{"input": "a", "output": ')
    _write(folder, "few", [(p.input, p.output) for p in task.pairs[:5]])  # loads, but its run fails
    out = tmp_path_factory.mktemp("suite")
    return model, folder, out, run_suite(model, [folder], out, PROTOCOL, margin=0.1, progress=False)


def test_suite_reports_the_malformed_file_and_runs_the_others(suite_run):
    _, _, out, suite = suite_run
    by_task = {r.task.rsplit("/", 1)[-1]: r for r in suite.rows}
    assert by_task["broken.json"].status == "error"
    assert "not valid JSON" in by_task["broken.json"].error and "broken.json" in by_task["broken.json"].error
    assert {by_task[n].status for n in ("capitalize.json", "copy.json")} == {"ran"}
    assert by_task["few.json"].status == "error" and "too few" in by_task["few.json"].error
    doc = json.loads((out / "suite.json").read_text())
    assert len(doc["tasks"]) == 4 and doc["universal_heads"] and doc["margin"] == 0.1
    for row in doc["tasks"]:
        if row["status"] == "ran":
            assert {"zero_shot_fv", "shuffled_fv", "zero_shot", "shuffled"} <= set(row["accuracy_universal"])
            result = TaskResult.load(out / row["folder"])
            whole = {k: a.top1 for k, a in result.answer_accuracy.items()}
            assert row["accuracy_answer"] == pytest.approx(whole, nan_ok=True) and len(whole) == 7
            assert row["majority"] is not None and row["chance"] is not None
    assert doc["protocol"]["max_eval_queries"] == 16
    again = SuiteResult.load(out)
    assert again.to_dict() == suite.to_dict()
    assert "broken" in repr(suite) and (out / "suite.md").read_text().startswith("| task |")


def test_universal_heads_are_the_mean_aie_of_the_source_tasks(suite_run):
    _, _, out, suite = suite_run
    maps = []
    for row in suite.ran:
        doc = json.loads((out / row.folder / "result.json").read_text())
        task = Task.from_json(doc["task_data"])
        valid = [p.output for p in task.split(seed=PROTOCOL.seed).valid]
        majority = Counter(valid).most_common(1)[0][1] / len(valid)
        source = doc["notes"]["valid_icl_top1"] > majority + 0.1
        assert row.universal_source == source
        if source:
            maps.append(doc["aie"])
    assert maps, "the trained model's tasks should beat their majority baselines"
    L, H = len(maps[0]), len(maps[0][0])
    mean = {(l, h): sum(m[l][h] for m in maps) / len(maps) for l in range(L) for h in range(H)}
    expected = sorted(mean, key=lambda lh: -mean[lh])[: PROTOCOL.top_k]
    assert [(l, h) for l, h, _ in suite.universal_heads] == expected
    assert [v for _, _, v in suite.universal_heads] == pytest.approx([mean[lh] for lh in expected], abs=1e-6)


def test_universal_fv_accuracy_against_plain_hooks(suite_run):
    model, _, out, suite = suite_run
    heads = [(l, h) for l, h, _ in suite.universal_heads]
    for row in suite.ran:
        result = TaskResult.load(out / row.folder)
        vector = sum(result.means.mean_out[l, h] for l, h in heads)
        sets = result.prompt_sets(model)
        keep = result.icl_correct.tolist()
        for name, key in (("test_zero_shot", "zero_shot_fv"), ("test_shuffled", "shuffled_fv")):
            prompts = [p for p, ok in zip(sets[name], keep) if ok]
            expected = plain_top1(model, prompts, lambda i: add_after(row.universal_layer, vector))
            assert row.accuracy_universal[key] == pytest.approx(expected)
        assert (
            row.majority
            == label_baselines([p.output for p in PromptSets(result.task, PROTOCOL).test_queries]).majority
        )


def test_universal_conditions_without_an_fv_are_set_at_the_universal_layer(suite_run, monkeypatch):
    model, _, out, suite = suite_run
    heads = [(l, h) for l, h, _ in suite.universal_heads]
    result = TaskResult.load(out / suite.ran[0].folder)
    sets = result.prompt_sets(model)
    for layer in range(model.cfg.n_layers):  # the task's own layer, and every other one
        monkeypatch.setattr(suite_module, "choose_layer", lambda *a, layer=layer: (layer, None))
        got_layer, accs = universal_function_vector_accuracy(model, result, heads, StageCache(enabled=False))
        fresh = evaluate_conditions(model, sets, result.fv, layer, result.means, progress=False)
        assert got_layer == layer
        for name in ("icl", "zero_shot", "shuffled", "mean_state", "task_vector"):
            assert torch.equal(accs[name].ranks, fresh[name].ranks), (layer, name)
        state = result.means.mean_resid[layer]  # and the mean state by plain hooks, at that layer
        expected = plain_top1(model, sets["test_zero_shot"], lambda i, layer=layer: add_after(layer, state))
        assert accs["mean_state"].top1 == pytest.approx(expected), layer
    others = [l for l in range(model.cfg.n_layers) if l != result.fv_layer]
    moved = evaluate_conditions(model, sets, result.fv, others[0], result.means, progress=False)
    own = result.accuracy_unfiltered
    assert any(not torch.equal(moved[c].ranks, own[c].ranks) for c in ("mean_state", "task_vector"))


def test_a_finished_suite_reads_its_runs_back(suite_run):
    model, folder, out, suite = suite_run
    stamps = {r.folder: (out / r.folder / "result.json").stat().st_mtime_ns for r in suite.ran}
    again = run_suite(model, [folder], out, PROTOCOL, margin=0.1, progress=False)
    assert {r.folder: (out / r.folder / "result.json").stat().st_mtime_ns for r in again.ran} == stamps
    assert again.universal_heads == suite.universal_heads


def test_cli_suite_on_submitit_local_executor(tmp_path, toy_task, capsys, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.chdir(__import__("pathlib").Path(__file__).resolve().parent.parent)  # jobs import this tree
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    _write(tasks, "toy", [(p.input, p.output) for p in toy_task.pairs])
    (tasks / "empty.json").write_text("[]")
    out = tmp_path / "out"
    argv = ["suite", "--model", "tiny-llama", "--tasks", str(tasks), "--out", str(out),
            "--n-mean-prompts", "4",
            "--n-scan-prompts", "3", "--layer", "1", "--max-eval-queries", "8", "--formats", "html",
            "--slurm", "--slurm-cluster", "local", "--slurm-minutes", "5", "--slurm-cpus", "1"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    doc = json.loads((out / "suite.json").read_text())
    rows = {r["task"].rsplit("/", 1)[-1]: r for r in doc["tasks"]}
    assert rows["empty.json"]["status"] == "error" and rows["empty.json"]["error"]
    assert rows["toy.json"]["status"] == "ran" and rows["toy.json"]["accuracy"]
    assert TaskResult.load(out / rows["toy.json"]["folder"]).protocol.max_eval_queries == 8
    assert (out / "figures" / "suite_accuracy.html").exists() and list((out / "slurm").iterdir())


def test_merge_works_on_a_suites_runs(suite_run, capsys):
    _, _, out, suite = suite_run
    assert main(["merge", *(str(out / r.folder) for r in suite.ran)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].endswith("| majority | chance |")
    for row in suite.ran:
        line = next(t for t in table if t.startswith(f"| {row.name} |"))
        assert line.endswith(f"| {100 * row.majority:.0f} | {100 * row.chance:.0f} |")


def test_universal_head_count_chosen_on_valid_against_plain_hooks(suite_run):
    model, _, out, suite = suite_run
    counts = (1, 2, 4)
    results = [TaskResult.load(out / r.folder) for r in suite.ran]
    protocol = dataclasses.replace(PROTOCOL, head_counts=counts)
    choice = choose_universal_count(model, results, suite.universal_aie, protocol)
    flat = suite.universal_aie.flatten()
    H = suite.universal_aie.shape[1]
    ranked = [(int(i) // H, int(i) % H) for i in flat.argsort(descending=True)]
    score = {k: 0.0 for k in counts}
    for result in results:
        sets = result.prompt_sets(model)
        for k in counts:
            v = sum(result.means.mean_out[h] for h in ranked[:k])
            score[k] += max(
                sum(
                    plain_top1(model, sets[name], lambda i, layer=layer: add_after(layer, v))
                    for name in ("valid_zero_shot", "valid_shuffled")
                )
                for layer in range(2)
            ) / len(results)
    best = max(score.values())
    assert choice["chosen"] == min(k for k in counts if score[k] == best)
    assert choice["valid_score_by_count"] == pytest.approx([score[k] for k in counts])


def test_a_capped_run_never_reads_an_uncapped_runs_test_stages(tiny, toy_task, tmp_path):
    """Every stage over the test split is keyed by the cap: the same task, uncapped and then capped,
    against one stage cache gives the capped run answers for its own queries only (a stage read back
    from the uncapped run would hold more rows than the capped queries)."""
    from workbench.base.stage_cache import StageCache
    from workbench.method.pipeline import TEST_STAGES, Stages, run_task

    cache = StageCache(tmp_path / "stages")
    uncapped = dataclasses.replace(
        PROTOCOL, max_eval_queries=None, natural_text=True, n_extra_queries=3, sweep_layers=True
    )
    with pytest.warns(UserWarning):
        run_task(tiny["llama"], toy_task, uncapped, cache=cache, progress=False)
    capped = dataclasses.replace(uncapped, max_eval_queries=5)
    with pytest.warns(UserWarning):
        result = run_task(tiny["llama"], toy_task, capped, cache=cache, progress=False)
    assert len(result.accuracy_unfiltered["zero_shot"].ranks) == 5
    for name, acc in result.answer_accuracy_unfiltered.items():
        assert len(acc.ranks) == 5, name
    assert result.notes["natural_text"]["queries"] <= 3
    assert all(a.n == 5 for accs in result.test_sweep.results.values() for a in accs)
    stages = Stages(tiny["llama"], toy_task, capped, cache, progress=False)
    assert all(stages.parts(stage, {})["max_eval_queries"] == 5 for stage in TEST_STAGES)
    assert "max_eval_queries" not in stages.parts("means", {})
