"""Bad input and faults: one case per mistake a new user or a failing machine makes.

Each case asserts the message (one line, what is wrong and what to do) or the correct behaviour,
and, where work was done, that nothing already computed is lost.  Tiny models throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from workbench.base.files import CorruptFileError, read_tensors, write_json, write_tensors
from workbench.base.stage_cache import StageCache
from workbench.cli import main
from workbench.core.loading import load_model
from workbench.core.model import ModelLoadError, VectorMismatch, model_info
from workbench.core.tiny import tiny_model
from workbench.data.tasks import Task, TaskError
from workbench.method import pipeline
from workbench.method.pipeline import run_task
from workbench.method.protocol import Protocol, ProtocolError
from workbench.method.result import ResultFileError, TaskResult
from workbench.method.vectors import FunctionVector

REPO = Path(__file__).resolve().parent.parent
SMALL = Protocol(n_mean_prompts=4, n_scan_prompts=3, layer=1)


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run the CLI in-process; return (exit status, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse
        code = e.code
    return code, capsys.readouterr().err


def one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error")]
    assert lines, f"no error line in {err!r}"
    assert "Traceback" not in err, err
    return lines[-1]


def _write_task(tmp_path: Path, task: Task) -> Path:
    path = tmp_path / f"{task.name}.json"
    path.write_text(json.dumps([{"input": p.input, "output": p.output} for p in task.pairs]))
    return path


# --- silently wrong or wrongly accepted ------------------------------------------------------


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--task", "antonym", "--out", "x", "--top-k", "0"], "at least 1"),
        (["run", "--task", "antonym", "--out", "x", "--top-k", "-3"], "at least 1"),
        (["run", "--task", "antonym", "--out", "x", "--n-scan-prompts", "0"], "at least 1"),
        (["run", "--task", "antonym", "--out", "x", "--n-mean-prompts", "0"], "at least 1"),
        (["compare", "a", "b", "--k", "-5"], "at least 1"),
        (["diagnose", "--task", "antonym", "--counts", "-2"], "at least 0"),
    ],
)
def test_cli_refuses_counts_that_cannot_work(capsys, argv, message):
    code, err = cli(capsys, *argv)
    assert code == 2 and message in err


def test_top_k_beyond_the_model_is_refused_and_the_used_k_is_recorded(tmp_path, capsys, toy_task):
    code, err = cli(
        capsys, "run", "--model", "tiny-llama", "--task", str(_write_task(tmp_path, toy_task)),
        "--out", str(tmp_path / "r"), "--top-k", "100", "--n-mean-prompts", "4", "--n-scan-prompts", "3",
    )  # fmt: skip
    assert code == 2 and "top_k 100 is more than the 8 heads" in one_line_error(err)
    result = run_task(tiny_model("llama"), toy_task, SMALL, progress=False)
    assert result.notes["top_k"] == len(result.fv.heads) == 4  # the default, written down


def test_dtype_is_part_of_the_identity_and_recorded(toy_task, tmp_path):
    cache = StageCache(tmp_path / "stages")
    f32 = run_task(load_model("tiny-llama", verbose=False), toy_task, SMALL, cache=cache, progress=False)
    bf16_model = load_model("tiny-llama", dtype="bfloat16", verbose=False)
    assert next(bf16_model.parameters()).dtype == torch.bfloat16  # not ignored on tiny models
    bf16 = run_task(bf16_model, toy_task, SMALL, cache=cache, progress=False)
    assert f32.model_id != bf16.model_id and bf16.model_id.endswith("bfloat16")
    assert bf16.notes["dtype"] == "bfloat16" and f32.notes["dtype"] == "float32"
    assert not torch.equal(f32.scan.effects, bf16.scan.effects)  # computed again, not reused


@pytest.mark.real_model
def test_answers_whose_first_token_is_a_shared_emoji_byte_are_scored_on_the_whole_character(real_model):
    from workbench.data.prompts import answer_token_report
    from workbench.method.preflight import preflight

    emoji = ["😀", "😃", "😄", "😁", "😆", "😅", "😂", "🙂", "😉", "😊"]
    words = [f"word{i}" for i in range(60)]
    task = Task.from_pairs("emoji", [(w, emoji[(7 * i) % 10]) for i, w in enumerate(words)])
    report = preflight(real_model, task, Protocol())  # not refused: each emoji is its own scored run
    assert report.n_first_tokens == 10 and report.n_sharing == 0 and report.n_multi_token > 0
    assert answer_token_report(real_model.tokenizer, task.pairs).examples == {}


@pytest.mark.real_model
def test_answer_report_counts_answers_that_share_a_first_token(real_model):
    from workbench.data.prompts import answer_token_report

    pairs = Task.from_pairs("t", [("a", "NEW YORK"), ("b", "NEW DELHI"), ("c", "Paris"), ("d", "Rome")]).pairs
    report = answer_token_report(real_model.tokenizer, pairs)
    assert report.n_answers == 4 and report.n_sharing == 2 and report.n_first_tokens == 3


def test_prompts_longer_than_the_context_are_refused_before_any_stage(toy_task):
    long = Task.from_pairs(
        "long", [(" ".join(["word"] * 40) + str(i), chr(65 + i % 26) + str(i)) for i in range(40)]
    )
    model = tiny_model("llama")  # max_position_embeddings 512; 10 shots of ~120 tokens
    with pytest.raises(ProtocolError, match="longer than the 512 tokens"):
        run_task(model, long, SMALL, progress=False)


def test_a_damaged_stage_file_is_recomputed_and_said(toy_task, tmp_path):
    model, cache = tiny_model("llama"), StageCache(tmp_path / "stages")
    first = run_task(model, toy_task, SMALL, cache=cache, progress=False)
    scan_file = next((tmp_path / "stages" / "scan").glob("*.safetensors"))
    raw = bytearray(scan_file.read_bytes())
    raw[-5] ^= 0x40  # a flipped bit in the data: still parses
    scan_file.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="damaged, recomputing"):
        again = run_task(model, toy_task, SMALL, cache=cache, progress=False)
    assert torch.equal(again.scan.effects, first.scan.effects)
    means_file = next((tmp_path / "stages" / "means").glob("*.safetensors"))
    means_file.write_bytes(means_file.read_bytes()[:40])  # truncated
    with pytest.warns(UserWarning, match=str(means_file.name)):
        again = run_task(model, toy_task, SMALL, cache=cache, progress=False)
    assert torch.equal(again.fv.vector, first.fv.vector)


def test_vector_files_edited_or_without_a_model_record_are_refused(tmp_path, tiny):
    from safetensors import safe_open
    from safetensors.torch import save_file

    model = tiny["llama"]
    d = model_info(model).d_model
    fv = FunctionVector(torch.randn(d), model="elsewhere", provenance={"model_fingerprint": "0" * 20})
    path = fv.save(tmp_path / "fv.safetensors")
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    claimed = json.loads(header["json"])
    claimed["provenance"]["model_fingerprint"] = "edited-to-match"
    header["json"] = json.dumps(claimed)
    save_file(read_tensors(path)[0], str(path), metadata=header)  # checksum kept from before the edit
    with pytest.raises(CorruptFileError, match="checksum"):
        FunctionVector.load(path, model=model)
    save_file({"function_vector": torch.randn(d)}, str(tmp_path / "bare.safetensors"))  # no metadata
    with pytest.raises(VectorMismatch, match="no record of the model"):
        FunctionVector.load(tmp_path / "bare.safetensors", model=model)
    assert FunctionVector.load(tmp_path / "bare.safetensors", model=model, allow_other_model=True)


def test_out_holding_another_run_is_refused_unless_overwrite(tmp_path, capsys, toy_task):
    other = Task.from_pairs("other", [(p.input, p.output.lower()) for p in toy_task.pairs])
    common = ["--model", "tiny-llama", "--n-mean-prompts", "4", "--n-scan-prompts", "3", "--layer", "1"]
    out = str(tmp_path / "r")
    assert cli(capsys, "run", *common, "--task", str(_write_task(tmp_path, toy_task)), "--out", out)[0] == 0
    before = (tmp_path / "r" / "result.json").read_bytes()
    code, err = cli(capsys, "run", *common, "--task", str(_write_task(tmp_path, other)), "--out", out)
    assert code == 2 and "already holds the result of another run (task 'toy-capitalize'" in one_line_error(
        err
    )
    assert (tmp_path / "r" / "result.json").read_bytes() == before  # nothing lost
    code, _ = cli(
        capsys, "run", *common, "--task", str(_write_task(tmp_path, other)), "--out", out, "--overwrite"
    )
    assert code == 0 and TaskResult.load(out).task.name == "other"


def test_a_folder_half_written_by_a_kill_is_refused_on_load(tmp_path, toy_task):
    model = tiny_model("llama")
    a = run_task(model, toy_task, SMALL, progress=False)
    b = run_task(model, toy_task, replace(SMALL, seed=1), progress=False)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    os.replace(
        tmp_path / "b" / "tensors.safetensors", tmp_path / "a" / "tensors.safetensors"
    )  # kill mid-save
    with pytest.raises(ResultFileError, match="half-written"):
        TaskResult.load(tmp_path / "a")


def test_merging_one_folder_twice_counts_it_once(tmp_path, toy_task, capsys):
    from workbench.studies.agreement import merge_results

    result = run_task(tiny_model("llama"), toy_task, SMALL, progress=False)
    result.save(tmp_path / "r")
    with pytest.raises(ValueError, match="each run may be merged once"):
        merge_results([TaskResult.load(tmp_path / "r")] * 3)


# --- raw tracebacks before ---------------------------------------------------------------------


def _save_tiny_hf(folder: Path, tokenizer: bool = True) -> None:
    from transformers import AutoModelForCausalLM

    from workbench.core.tiny import tiny_config, tiny_tokenizer

    tok = tiny_tokenizer()
    AutoModelForCausalLM.from_config(tiny_config("llama", vocab_size=len(tok))).save_pretrained(folder)
    if tokenizer:
        tok.save_pretrained(folder)


def test_broken_model_folders_and_files_name_what_is_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="no config.json, weights"):
        load_model(str(tmp_path / "empty"), verbose=False)
    _save_tiny_hf(tmp_path / "no-tokenizer", tokenizer=False)
    with pytest.raises(ModelLoadError, match="no a tokenizer|no .*tokenizer"):
        load_model(str(tmp_path / "no-tokenizer"), verbose=False)
    (tmp_path / "not.gguf").write_text("hello")
    with pytest.raises(ModelLoadError, match="is not a GGUF file"):
        load_model(str(tmp_path / "not.gguf"), verbose=False)
    (tmp_path / "cut.gguf").write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ModelLoadError, match="could not be read as a model"):
        load_model(str(tmp_path / "cut.gguf"), verbose=False)


def test_a_damaged_cache_of_a_builtin_model_says_what_to_delete(tmp_path):
    folder = tmp_path / "models" / "smollm2-135m"
    _save_tiny_hf(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=f"delete {folder}"):
        load_model("smollm2-135m", cache_dir=tmp_path / "models", verbose=False)


def test_tasks_too_small_or_unscorable_fail_before_any_stage(tiny, monkeypatch):
    monkeypatch.setattr(pipeline, "filter_extraction_queries", lambda *a: pytest.fail("a stage ran"))
    small = Task.from_pairs("small", [(f"w{i}", f"W{i}") for i in range(12)])
    with pytest.raises(TaskError, match="needs at least 16 pairs"):
        run_task(tiny["llama"], small, SMALL, progress=False)
    spaces = Task.from_pairs("spaces", [(f"w{i}", f"!{i}") for i in range(40)])  # one scored token: ' !'
    with pytest.raises(TaskError, match="no token tells them apart"):
        run_task(tiny["llama"], spaces, SMALL, progress=False)


def test_bad_values_are_refused_before_loading(tmp_path, capsys):
    code, err = cli(capsys, "run", "--task", str(tmp_path), "--out", str(tmp_path / "o"))
    assert code == 2 and "is a folder" in one_line_error(err)
    if not torch.cuda.is_available():
        code, err = cli(capsys, "run", "--model", "tiny-llama", "--device", "cuda", "--task", "antonym",
                        "--out", str(tmp_path / "o"))  # fmt: skip
        assert code == 2 and "no CUDA GPU" in one_line_error(err)


@pytest.mark.parametrize("where", ["a file", "under a file", "read-only"])
def test_unwritable_out_is_refused_before_loading(tmp_path, capsys, monkeypatch, where):
    monkeypatch.setattr("workbench.core.loading.load_model", lambda *a, **k: pytest.fail("loaded a model"))
    (tmp_path / "f").write_text("")
    out = {
        "a file": tmp_path / "f",
        "under a file": tmp_path / "f" / "sub",
        "read-only": Path("/proc/no/out"),
    }
    code, err = cli(capsys, "run", "--model", "tiny-llama", "--task", "antonym", "--out", str(out[where]))
    assert code == 2 and "cannot write" in one_line_error(err)


@pytest.mark.parametrize("damage", ["truncate", "bad json", "missing key"])
def test_merge_and_compare_of_damaged_results_say_which_file(tmp_path, capsys, toy_task, damage):
    result = run_task(tiny_model("llama"), toy_task, SMALL, progress=False)
    result.save(tmp_path / "r")
    if damage == "truncate":
        f = tmp_path / "r" / "tensors.safetensors"
        f.write_bytes(f.read_bytes()[:200])
    elif damage == "bad json":
        (tmp_path / "r" / "result.json").write_text("{")
    else:
        doc = json.loads((tmp_path / "r" / "result.json").read_text())
        del doc["fv_layer"]
        (tmp_path / "r" / "result.json").write_text(json.dumps(doc))
    for argv in (["merge", str(tmp_path / "r")], ["compare", str(tmp_path / "r"), str(tmp_path / "r")]):
        code, err = cli(capsys, *argv)
        assert code == 2 and str(tmp_path / "r") in one_line_error(err)


def test_a_broken_pipe_ends_quietly():
    proc = subprocess.run(
        f"{sys.executable} -m workbench.cli tasks | head -1", shell=True, capture_output=True, text=True
    )
    assert proc.stdout.startswith("built-in tasks") and "Traceback" not in proc.stderr
    assert "BrokenPipe" not in proc.stderr


def test_ctrl_c_prints_one_line_and_a_rerun_resumes_from_the_last_chunk(
    tmp_path, capsys, monkeypatch, toy_task
):
    task = _write_task(tmp_path, toy_task)
    argv = ["run", "--model", "tiny-llama", "--task", str(task), "--out", str(tmp_path / "r"),
            "--n-mean-prompts", "4", "--n-scan-prompts", "12", "--layer", "1"]  # fmt: skip
    monkeypatch.setenv("WORKBENCH_STAGE_CACHE", str(tmp_path / "stages"))
    real_scan, calls, interrupt = pipeline.scan_heads, [], [True]

    def interrupted_scan(model, prompts, *a, **k):
        calls.append(len(prompts))
        if len(calls) == 2 and interrupt.pop():
            raise KeyboardInterrupt
        return real_scan(model, prompts, *a, **k)

    monkeypatch.setattr(pipeline, "scan_heads", interrupted_scan)
    code, err = cli(capsys, *argv)
    assert code == 130 and "rerun the same command to resume" in err and "Traceback" not in err
    assert err.strip().endswith("rerun the same command to resume.")  # one line after the progress bars
    calls.clear()
    interrupt.append(False)
    assert cli(capsys, *argv)[0] == 0
    assert calls == [5, 2]  # the first chunk of 5 prompts came from the cache
    resumed = TaskResult.load(tmp_path / "r")  # equals one uninterrupted scan of all 12 prompts
    model = tiny_model("llama")
    whole = real_scan(model, resumed.prompt_sets(model)["scan"], resumed.means.mean_z, progress=False)
    assert torch.equal(resumed.scan.effects, whole.effects)


# --- the set-up and slow failures ------------------------------------------------------------


@pytest.mark.parametrize(
    "version_ok, expect", [(True, "python3 -m venv"), (False, "no Python 3.11 or newer")]
)
def test_makefile_takes_a_python3_of_311_or_newer_from_path(tmp_path, version_ok, expect):
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "sh", "test"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    fake = bin_dir / "python3"
    fake.write_text(f"#!/bin/sh\nexit {0 if version_ok else 1}\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        ["make", *(["-n"] if version_ok else []), "setup", f"VENV={tmp_path / 'venv'}"],
        cwd=REPO, env={"PATH": str(bin_dir)}, capture_output=True, text=True,
    )  # fmt: skip
    assert expect in proc.stdout + proc.stderr


def test_an_unreachable_hub_name_fails_in_seconds():
    start = time.perf_counter()
    with pytest.raises(ModelLoadError, match="not reachable"):
        load_model("no-such-user/no-such-model", verbose=False)
    assert time.perf_counter() - start < 15


def test_prompt_building_is_linear_in_the_task_size():
    from workbench.data.prompts import sample_prompts

    task = Task.from_pairs("big", [(f"in{i}", f"out{i}") for i in range(100_000)])
    split = task.split()
    start = time.perf_counter()
    prompts = sample_prompts(split, None, 10, "icl", "valid")
    assert len(prompts) == len(split.valid) and all(
        p.query.input not in [d.input for d in p.demos] for p in prompts
    )
    assert time.perf_counter() - start < 30  # was hours: O(queries x train)


# --- faults ----------------------------------------------------------------------------------


_WORKER = """
import sys, time, torch
from workbench.base.stage_cache import StageCache
def compute():
    print("computed", flush=True)
    time.sleep(2)
    return {"x": torch.arange(3)}
print(StageCache(sys.argv[1]).get_or_compute("demo", {"k": 1}, compute)["x"].tolist(), flush=True)
"""


def test_two_runs_on_one_cache_compute_a_stage_once(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "c")], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert sum(o.count("computed") for o in outs) == 1
    assert all("[0, 1, 2]" in o for o in outs)


def test_written_files_respect_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        path = write_tensors(tmp_path / "t.safetensors", {"x": torch.ones(2)})
        json_path = write_json(tmp_path / "sub" / "a.json", {})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o664 and json_path.stat().st_mode & 0o777 == 0o664


def test_temporaries_of_a_killed_writer_are_cleaned_on_the_next_write(tmp_path):
    import socket

    dead = tmp_path / f".a.json.{socket.gethostname()}.999999999.x1.tmp"
    live = tmp_path / f".a.json.{socket.gethostname()}.{os.getpid()}.x2.tmp"
    dead.mkdir(), live.mkdir()
    write_json(tmp_path / "a.json", {"ok": 1})
    assert not dead.exists() and live.exists()


def test_damaged_tensor_files_name_the_file(tmp_path):
    path = write_tensors(tmp_path / "t.safetensors", {"x": torch.ones(2)})
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(CorruptFileError, match=str(path)):
        read_tensors(path)
