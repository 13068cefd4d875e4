"""Reruns: the same run into its own folder is accepted and read back from the cache, and every
value a run saves compares equal to its in-memory original after a JSON round trip."""

from __future__ import annotations

import json
import time
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.base.stage_cache import StageCache
from workbench.cli import main
from workbench.core.tiny import tiny_model
from workbench.data.tasks import Pair
from workbench.method.pipeline import run_task
from workbench.method.protocol import Protocol
from workbench.method.result import TaskResult, check_output_folder
from workbench.method.vectors import FunctionVector

SMALL = Protocol(n_mean_prompts=4, n_scan_prompts=3, layer=1)
HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# JSON-like values as Python code builds them: tuples, int keys, nesting (text a UTF-8 file can hold)
TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=8)
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(TEXT | st.integers(0, 99), inner, max_size=3)
    ),
    max_leaves=12,
)
RECORDS = st.dictionaries(TEXT, VALUES, max_size=4)

PROTOCOLS = st.builds(
    Protocol,
    n_shot=st.integers(1, 20),
    n_mean_prompts=st.integers(1, 200),
    n_scan_prompts=st.integers(1, 50),
    top_k=st.none() | st.integers(1, 40),
    layer=st.none() | st.integers(0, 80),
    layer_rule=st.sampled_from(["sweep", "third"]),
    sweep_layers=st.booleans(),
    natural_text=st.booleans(),
    portability=st.booleans(),
    n_extra_queries=st.integers(0, 50),
    alpha=st.floats(-100, 100, allow_nan=False),
    center=st.booleans(),
    filter_correct=st.booleans(),
    seed=st.integers(0, 2**64 - 1),
    head_counts=st.lists(st.integers(1, 50), min_size=1, max_size=8).map(tuple),
)


def _saved(value):
    return json.loads(json.dumps(value))


@HYPOTHESIS
@given(PROTOCOLS)
def test_every_protocol_field_survives_json_and_its_folder_accepts_a_rerun(tmp_path_factory, protocol):
    assert _saved(protocol.to_dict()) == protocol.to_dict()  # held as saved: a list, not a tuple
    assert Protocol.from_dict(_saved(protocol.to_dict())) == protocol
    assert {f.name for f in fields(Protocol)} == set(protocol.to_dict())
    folder = tmp_path_factory.mktemp("out")
    (folder / "result.json").write_text(
        json.dumps({"task_digest": "t", "model_id": "m", "protocol": protocol.to_dict()})
    )
    check_output_folder(folder, "t", "m", protocol)  # the same run: accepted
    other = replace(protocol, seed=(protocol.seed + 1) % 2**64)
    with pytest.raises(ValueError, match="another run \\(protocol\\)"):
        check_output_folder(folder, "t", "m", other)


@pytest.fixture(scope="module")
def small_run(toy_task):
    return run_task(tiny_model("llama"), toy_task, SMALL, progress=False)


@HYPOTHESIS
@given(
    notes=RECORDS,
    self_check=st.none() | RECORDS,
    protocol=PROTOCOLS,
    queries=st.lists(st.tuples(TEXT, TEXT), max_size=4),
    fv_layer=st.integers(0, 1),
    model=TEXT,
)
def test_every_task_result_field_survives_save_and_load(
    tmp_path_factory, small_run, notes, self_check, protocol, queries, fv_layer, model
):
    result = replace(
        small_run,
        model=model,
        notes=notes,
        self_check=self_check,
        protocol=protocol,
        extraction_queries=[Pair(*q) for q in queries],
        fv_layer=fv_layer,
    )
    folder = tmp_path_factory.mktemp("run") / "r"
    result.save(folder)
    result.save(folder)  # a rerun of the cell: accepted
    back = TaskResult.load(folder)
    back.save(folder)  # and the loaded copy is the same run too
    for name in (
        "model",
        "model_id",
        "task",
        "protocol",
        "extraction_queries",
        "fv_layer",
        "notes",
        "self_check",
    ):
        assert getattr(back, name) == getattr(result, name), name
    assert json.dumps(back.to_json(), sort_keys=True) == json.dumps(result.to_json(), sort_keys=True)
    torch.testing.assert_close(back.scan.effects, result.scan.effects, equal_nan=True)
    for k, acc in result.accuracy_unfiltered.items():
        assert torch.equal(back.accuracy_unfiltered[k].ranks, acc.ranks)


@HYPOTHESIS
@given(
    meta=RECORDS,
    provenance=RECORDS,
    heads=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=5),
    layer=st.none() | st.integers(0, 40),
    task=TEXT,
    model=TEXT,
)
def test_every_vector_field_survives_save_and_load(
    tmp_path_factory, meta, provenance, heads, layer, task, model
):
    provenance.pop("n_layers", None)  # a recorded layer count is checked against the layer
    fv = FunctionVector(
        torch.randn(6), model=model, task=task, heads=heads, layer=layer, meta=meta, provenance=provenance
    )
    path = fv.save(tmp_path_factory.mktemp("v") / "fv.safetensors")
    back = FunctionVector.load(path)
    assert (back.model, back.task, back.heads, back.layer, back.meta) == (
        model,
        task,
        fv.heads,
        layer,
        fv.meta,
    )
    assert back.meta == _saved(meta) and back.heads == [tuple(h) for h in heads]
    assert {k: v for k, v in back.provenance.items() if k != "versions"} == {
        k: v for k, v in fv.provenance.items() if k != "versions"
    }
    assert torch.equal(back.vector, fv.vector)


@HYPOTHESIS
@given(meta=RECORDS, provenance=RECORDS, hparams=RECORDS, history=RECORDS, model=TEXT)
def test_every_steering_and_soft_vector_record_survives_save_and_load(
    tmp_path_factory, meta, provenance, hparams, history, model
):
    from workbench.beyond.soft import SoftTaskVector
    from workbench.beyond.steering import SteeringVector

    folder = tmp_path_factory.mktemp("v")
    sv = SteeringVector(torch.randn(2, 6), model, meta=meta, provenance=provenance)
    back = SteeringVector.load(sv.save(folder / "sv.safetensors"))
    assert back.meta == sv.meta == _saved(meta)
    assert {k: v for k, v in back.provenance.items() if k != "versions"} == {
        k: v for k, v in sv.provenance.items() if k != "versions"
    }
    soft = SoftTaskVector(
        torch.rand(2, 3),
        torch.randn(2, 3, 4),
        model,
        hparams=hparams,
        history=history,
        meta=meta,
        provenance=provenance,
    )
    back = SoftTaskVector.load(soft.save(folder / "soft.safetensors"))
    assert (back.hparams, back.history, back.meta) == (soft.hparams, soft.history, soft.meta)
    assert back.hparams == _saved(hparams) and back.history == _saved(history)


def _cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_the_same_run_twice_succeeds_and_reads_every_stage_from_the_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STAGE_CACHE", str(tmp_path / "stages"))
    argv = ["run", "--model", "tiny-llama", "--task", "capitalize", "--out", str(tmp_path / "r"),
            "--n-mean-prompts", "4", "--n-scan-prompts", "3"]  # fmt: skip
    code, err = _cli(capsys, *argv)
    assert code == 0, err
    first = json.loads((tmp_path / "r" / "result.json").read_text())
    stored = sorted(p.name for p in (tmp_path / "stages").rglob("*.safetensors"))

    def no_compute(*a, **k):
        pytest.fail("a stage was computed again on a rerun")

    monkeypatch.setattr(StageCache, "_write", no_compute)
    code, err = _cli(capsys, *argv)
    assert code == 0, err  # was: "already holds the result of another run (protocol)"
    again = json.loads((tmp_path / "r" / "result.json").read_text())
    # the same numbers (the files' SHA-256 may differ: safetensors orders its header freely)
    assert {k: v for k, v in again.items() if k != "files"} == {
        k: v for k, v in first.items() if k != "files"
    }
    assert sorted(p.name for p in (tmp_path / "stages").rglob("*.safetensors")) == stored


def test_a_rerun_in_python_is_read_from_the_cache_nearly_at_once(tmp_path, toy_task):
    model, cache = tiny_model("llama"), StageCache(tmp_path / "stages")
    protocol = replace(SMALL, natural_text=True, portability=True, n_extra_queries=2)  # generation too
    start = time.perf_counter()
    first = run_task(model, toy_task, protocol, cache=cache, progress=False)
    computed = time.perf_counter() - start
    first.save(tmp_path / "r")
    cache._write = lambda *a, **k: pytest.fail("a stage was computed again")
    start = time.perf_counter()
    again = run_task(model, toy_task, protocol, cache=cache, progress=False)
    again.save(tmp_path / "r")  # into its own folder: accepted
    assert time.perf_counter() - start < max(2.0, computed / 2)
    assert torch.equal(again.fv.vector, first.fv.vector)
    assert again.notes == first.notes and "natural_text" in again.notes and "portability" in again.notes
    assert Path(tmp_path / "r" / "result.json").exists()
