"""Bad values, one class at a time, on every entry point that takes them: the CLI (one line, exit
status 2), the ``wb.`` functions and the vector methods (a user-error class with the sentence).

Classes: layers (negative, beyond the model, beyond the vector's model), finite numbers (NaN or
infinite scales), task text (the prompt format's own separators, control characters, lone
surrogates), seeds, head counts, figure formats, a name where a model is expected, devices, output
paths, the stage cache, missing run folders.  Tiny models throughout.
"""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import pytest
import torch

import workbench as wb
from workbench.base.checks import BadSeed, NotFinite, OutOfRange, check_finite, check_layer
from workbench.base.stage_cache import CacheUnwritable, StageCache
from workbench.beyond.export import ControlVector, export_control_vector
from workbench.beyond.steering import SteeringVector
from workbench.cli import main
from workbench.core.model import ModelLoadError, NotAModel
from workbench.core.tiny import tiny_model
from workbench.data.tasks import Task, TaskError, load_task
from workbench.method.pipeline import run_task
from workbench.method.protocol import Protocol
from workbench.method.result import ResultFileError, ResultMismatch, TaskResult
from workbench.method.vectors import FunctionVector
from workbench.show.formats import FormatError

NAN, INF = float("nan"), float("inf")
SMALL = Protocol(n_mean_prompts=4, n_scan_prompts=3, layer=1)


def cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        code = e.code
    return code, capsys.readouterr().err


def error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert lines and "Traceback" not in err and "looks like a bug" not in err, err
    return lines[-1]


def write_task(path: Path, pairs) -> Path:
    path.write_text(json.dumps([{"input": x, "output": y} for x, y in pairs]))
    return path


@pytest.fixture(scope="module")
def llama():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, toy_task, llama):
    folder = tmp_path_factory.mktemp("checks") / "run"
    run_task(llama, toy_task, SMALL, progress=False).save(folder)
    return folder


@pytest.fixture(scope="module")
def run(run_dir):
    return TaskResult.load(run_dir)


@pytest.fixture(scope="module")
def steering(llama):
    return SteeringVector.from_texts(llama, ["good day", "fine work"], ["bad day", "poor work"])


# --- layers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--task", "antonym", "--out", "x", "--layer", "-1"],
        ["diagnose", "--task", "antonym", "--state-tests", "-1"],
        ["diagnose", "--task", "antonym", "--count-layers", "-2"],
    ],
)
def test_cli_refuses_negative_layers_before_loading(capsys, monkeypatch, argv):
    monkeypatch.setattr("workbench.core.loading.load_model", lambda *a, **k: pytest.fail("loaded a model"))
    code, err = cli(capsys, *argv)
    assert code == 2 and ("negative: layers count from 0" in err or "at least 0" in err), err


@pytest.mark.parametrize("flag", ["--state-tests", "--count-layers"])
def test_diagnose_refuses_a_layer_beyond_the_model_before_the_run(tmp_path, capsys, monkeypatch, flag):
    monkeypatch.setattr("workbench.method.pipeline.run_task", lambda *a, **k: pytest.fail("ran"))
    code, err = cli(capsys, "diagnose", "--model", "tiny-llama", "--task", "antonym", "--out", tmp_path,
                    "--counts", "1", flag, "5")  # fmt: skip
    assert code == 2 and "layer 5 is out of range: tiny-llama has 2 layers" in error_line(err)


def test_python_functions_refuse_negative_and_missing_layers(llama, run):
    v = run.fv.vector
    for bad in (-1, 2, 99):
        with pytest.raises(OutOfRange, match="negative|out of range"):
            wb.add_vector(llama, bad, v)
        with pytest.raises(OutOfRange):
            wb.project_out(llama, v, layers=[bad])
        with pytest.raises(OutOfRange):
            wb.mean_ablate_heads(llama, [(bad, 0)], run.means.mean_z)
    with pytest.raises(OutOfRange, match="negative"):
        Protocol(layer=-1)
    with pytest.raises(OutOfRange, match="tiny-llama has 2 layers"):
        run_task(llama, run.task, Protocol(layer=2), progress=False)


def test_vectors_know_their_models_layers(llama, run, steering, tmp_path):
    fv = run.fv
    assert fv.provenance["n_layers"] == 2  # recorded, so checked without the model
    for layer in (-1, 99):
        with pytest.raises(OutOfRange, match="negative|tiny-llama"):
            export_control_vector(fv, tmp_path / "cv.gguf", layer=layer)
        with pytest.raises(OutOfRange):
            FunctionVector(fv.vector, fv.model, layer=layer, provenance=fv.provenance)
        with pytest.raises(OutOfRange):
            steering.at(layer)
        with pytest.raises(OutOfRange):
            steering.add_hooks(llama, layer)
        with pytest.raises(OutOfRange):
            steering.generate(llama, "hello", layer=layer, max_new_tokens=1)
    with pytest.raises(OutOfRange, match="negative"):
        export_control_vector({-1: fv.vector}, tmp_path / "cv.gguf")
    assert not (tmp_path / "cv.gguf").exists()
    assert steering.at(1).layer == 1


def test_check_layer_takes_whole_numbers_only():
    assert check_layer(3, 4) == 3 and check_layer(3.0) == 3
    for bad in (True, 1.5, "1", None):
        with pytest.raises(OutOfRange, match="whole number"):
            check_layer(bad, 4)


# --- finite numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "1e999"])
def test_cli_refuses_scales_that_are_not_finite(capsys, monkeypatch, value):
    monkeypatch.setattr("workbench.core.loading.load_model", lambda *a, **k: pytest.fail("loaded a model"))
    for argv in (["diagnose", "--task", "antonym", "--alphas", "1", value],
                 ["study", "positions", "--runs", ".", "--tasks", "t", "--alphas", value]):  # fmt: skip
        code, err = cli(capsys, *argv)
        assert code == 2 and "finite" in err, err


def test_python_functions_refuse_scales_that_are_not_finite(llama, run, tmp_path):
    from workbench.studies.diagnose import injection_diagnostics
    from workbench.studies.positions import every_position_effect
    from workbench.studies.registry import STUDIES
    from workbench.studies.study import StudyError

    v = run.fv.vector
    for bad in (NAN, INF):
        with pytest.raises(NotFinite):
            wb.add_vector(llama, 0, v, alpha=bad)
        with pytest.raises(NotFinite):
            wb.add_vector(llama, 0, v * bad)
        with pytest.raises(NotFinite):
            export_control_vector(run.fv, tmp_path / "cv.gguf", layer=1, scale=bad)
        with pytest.raises(NotFinite):
            every_position_effect(llama, run, [1.0, bad])
        with pytest.raises(NotFinite):
            injection_diagnostics(llama, run, alphas=[bad], progress=False)
        with pytest.raises(StudyError, match="finite"):
            STUDIES["positions"].arguments(alphas=[bad])
        with pytest.raises(NotFinite):
            Protocol(alpha=bad)
        with pytest.raises(NotFinite):
            wb.project_out(llama, v * bad)
    assert not (tmp_path / "cv.gguf").exists()  # nothing half-written: no all-NaN control vector


def test_vector_methods_refuse_scales_that_are_not_finite(llama, run, steering):
    for bad in (NAN, INF, -INF):
        with pytest.raises(NotFinite):
            run.fv * bad
        with pytest.raises(NotFinite):
            bad * run.fv
        with pytest.raises(NotFinite):
            steering.add_hooks(llama, 1, alpha=bad)
        with pytest.raises(NotFinite):
            steering.generate(llama, "hello", layer=1, alpha=bad, max_new_tokens=1)
    with pytest.raises(NotFinite):
        run.fv / 0
    with pytest.raises(NotFinite):
        ControlVector({1: run.fv.vector}).hooks(llama, strength=NAN)
    with pytest.raises(NotFinite):  # a NaN vector made outside the methods cannot be added either
        wb.add_vector(llama, 1, FunctionVector(run.fv.vector * NAN, run.fv.model).vector)
    assert math.isfinite((run.fv * 2.0).norm)


def test_check_finite_reads_numbers_lists_and_tensors():
    assert check_finite([1, 2.5], "x") == [1, 2.5]
    for bad in ([1, NAN], torch.tensor([0.0, INF]), "abc"):
        with pytest.raises(NotFinite, match="x"):
            check_finite(bad, "x")


# --- task text ----------------------------------------------------------------------------------

BAD_TEXT = {
    "separators": ("hot\nA: cold\n\nQ: hot", "line break"),
    "a newline": ("two\nlines", "line break"),
    "a carriage return": ("two\rlines", "line break"),
    "NUL": ("nul\x00byte", "control character"),
    "a lone surrogate": ("half\ud800", "lone UTF-16 surrogate"),
}


def _pairs(bad: str):
    return [(bad, "x")] + [(f"w{i}", f"W{i}") for i in range(30)]


@pytest.mark.parametrize("case", sorted(BAD_TEXT))
def test_task_text_that_breaks_the_prompt_format_is_refused_everywhere(tmp_path, capsys, case):
    bad, why = BAD_TEXT[case]
    with pytest.raises(TaskError, match=why):
        Task.from_pairs("t", _pairs(bad))
    with pytest.raises(TaskError, match=why):
        Task.from_pairs("t", [(y, x) for x, y in _pairs(bad)])  # in an output too
    path = tmp_path / "t.json"
    path.write_text(json.dumps([{"input": x, "output": y} for x, y in _pairs(bad)]))  # \ud800 escaped
    with pytest.raises(TaskError, match=f"{path}, entry 0: 'input'.*{why}"):
        load_task(path)
    code, err = cli(capsys, "run", "--model", "tiny-llama", "--task", path, "--out", tmp_path / "o")
    assert code == 2 and why in error_line(err)


def test_ordinary_text_with_tabs_and_unicode_is_kept():
    task = Task.from_pairs("t", [("naïve\tcafé", "Ünïcödé ✓"), ("日本", "東京")])
    assert task.pairs[0].input == "naïve\tcafé"


# --- seeds, counts, formats -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [2**64, -1, 10**30])
def test_seeds_beyond_64_bits_are_refused(capsys, monkeypatch, seed):
    monkeypatch.setattr("workbench.core.loading.load_model", lambda *a, **k: pytest.fail("loaded a model"))
    for argv in (["run", "--task", "antonym", "--out", "x"], ["icl"]):
        code, err = cli(capsys, *argv, "--seed", str(seed))
        assert code == 2 and "seed must be a whole number from 0 to 2**64 - 1" in err
    with pytest.raises(BadSeed):
        Protocol(seed=seed)
    assert Protocol(seed=2**64 - 1).seed == 2**64 - 1


def test_head_counts_beyond_the_model_are_refused(run_dir, run, llama, capsys):
    from workbench.studies.agreement import top_k_overlap
    from workbench.studies.signed import signed_heads_study

    code, err = cli(capsys, "compare", run_dir, run_dir, "--k", "500")
    assert code == 2 and "k 500 is more than the 8 heads" in error_line(err)
    capsys.readouterr()
    assert main(["compare", str(run_dir), str(run_dir), "--k", "3"]) == 0
    assert "nan" not in capsys.readouterr().out
    with pytest.raises(OutOfRange, match="more than the 8 heads"):
        top_k_overlap(run.scan, run.scan, 9)
    with pytest.raises(OutOfRange, match="more than the 8 heads of tiny-llama"):
        signed_heads_study(llama, run, k=9)


def test_compare_prints_no_nan(run_dir, capsys):
    capsys.readouterr()
    code = main(["compare", str(run_dir), str(run_dir)])  # the default k: 10, or all 8 heads here
    out = capsys.readouterr().out
    assert code == 0 and "top-8 overlap 100%" in out and "nan" not in out.lower()


def test_signed_study_with_default_arguments_on_a_tiny_model(run_dir, tmp_path, capsys, llama, run):
    from workbench.studies.signed import signed_heads_study

    out = signed_heads_study(llama, run)  # was: ValueError: Sample larger than population
    assert out["k"] == 4 and len(out["top"]) == 4  # the model's default FV size, 4 of 8 heads
    left = 8 - len({*map(tuple, out["top"]), *map(tuple, out["negative"])})
    assert out["random_k"] == min(4, left)
    code, err = cli(capsys, "study", "signed", "--runs", run_dir.parent, "--tasks", run_dir.name,
                    "--out", tmp_path, "--figures", tmp_path, "--formats", "html")  # fmt: skip
    assert code == 0, err
    code, err = cli(capsys, "study", "signed", "--runs", run_dir.parent, "--tasks", run_dir.name,
                    "--out", tmp_path, "--figures", tmp_path, "--formats", "html", "--k", "500")  # fmt: skip
    assert code == 2 and "more than the 8 heads" in error_line(err)


def test_figure_formats_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    import plotly.graph_objects as go

    from workbench.show import figures

    monkeypatch.setattr("workbench.core.loading.load_model", lambda *a, **k: pytest.fail("loaded a model"))
    for argv in (["figures", "--tasks", "antonym"], ["diagnose", "--task", "antonym"],
                 ["study", "signed", "--tasks", "t"]):  # fmt: skip
        code, err = cli(capsys, *argv, "--formats", "html", "bmp")
        assert code == 2 and "figure format 'bmp'" in err
    with pytest.raises(FormatError, match="html, png, pdf, svg"):
        figures.export(go.Figure(), "x", tmp_path, ["bmp"])
    with pytest.raises(FormatError):
        wb.paper_figures(None, ["antonym"], tmp_path, formats=["bmp"])
    assert not list(tmp_path.iterdir())


# --- runs of another model, models, devices ----------------------------------------------------------


def test_explore_refuses_others_of_another_model(run_dir, run, tmp_path, capsys, toy_task):
    other = tiny_model("llama", seed=1)  # the same name and shape, other weights
    run_task(other, toy_task, SMALL, progress=False).save(tmp_path / "other")
    with pytest.raises(ResultMismatch, match="compare runs of one model only"):
        wb.explore(run, tiny_model("llama"), others=[tmp_path / "other"], precompute=False, progress=False)
    code, err = cli(
        capsys, "explore", run_dir, "--out", tmp_path / "page.html", "--others", tmp_path / "other"
    )
    assert code == 2 and "compare runs of one model only" in error_line(err)
    assert not (tmp_path / "page.html").exists()


def test_a_name_where_a_model_is_expected_says_how_to_load_it(run):
    prompts = []
    for call in (
        lambda m: wb.scan_heads(m, prompts, run.means.mean_z),
        lambda m: wb.run_task(m, run.task, SMALL, progress=False),
        lambda m: wb.mean_head_activations(m, prompts),
        lambda m: wb.add_vector(m, 0, run.fv.vector),
        lambda m: wb.model_info(m),
        lambda m: wb.model_id(m),
        lambda m: run.fv.decode(m),
    ):
        with pytest.raises(NotAModel, match=r"wb.load_model\('smollm2-135m'\)"):
            call("smollm2-135m")
    with pytest.raises(NotAModel, match="got a dict"):
        wb.model_info({})


def test_unknown_devices_are_refused_in_a_sentence(tmp_path, capsys):
    with pytest.raises(ModelLoadError, match="not a device name torch knows"):
        wb.load_model("tiny-llama", device="tpu9")
    code, err = cli(capsys, "run", "--model", "tiny-llama", "--device", "tpu9", "--task", "antonym",
                    "--out", tmp_path / "o")  # fmt: skip
    assert code == 2 and "--device tpu9: not a device name" in error_line(err)


# --- paths and the cache --------------------------------------------------------------------------


def test_output_files_that_are_folders_are_refused_before_work(run_dir, tmp_path, capsys):
    for argv in (["merge", run_dir, "--out", tmp_path], ["icl", "--model", "tiny-llama", "--out", tmp_path],
                 ["explore", run_dir, "--out", tmp_path]):  # fmt: skip
        code, err = cli(capsys, *argv)
        assert code == 2 and "it is a folder; pass the name of a file" in error_line(err)
    assert cli(capsys, "merge", run_dir, "--out", tmp_path / "merged.json")[0] == 0


def test_a_missing_run_folder_does_not_exist(tmp_path, capsys):
    with pytest.raises(ResultFileError, match="does not exist"):
        TaskResult.load(tmp_path / "nope")
    (tmp_path / "file").write_text("")
    with pytest.raises(ResultFileError, match="is a file, not a folder"):
        TaskResult.load(tmp_path / "file")
    code, err = cli(capsys, "compare", tmp_path / "nope", tmp_path / "nope")
    assert code == 2 and "nope does not exist" in error_line(err)


@pytest.mark.parametrize("where", ["a file", "read-only", "full"])
def test_an_unwritable_stage_cache_names_the_setting(tmp_path, capsys, monkeypatch, toy_task, llama, where):
    (tmp_path / "file").write_text("")
    root = {"a file": tmp_path / "file", "read-only": Path("/proc/no/cache"), "full": tmp_path / "c"}[where]
    monkeypatch.setenv("WORKBENCH_STAGE_CACHE", str(root))
    if where == "full":
        keep = StageCache(root).get_or_compute("kept", {}, lambda: {"x": torch.ones(2)})

        def full(*a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("workbench.base.stage_cache.write_tensors", full)
    with pytest.raises(CacheUnwritable, match="WORKBENCH_STAGE_CACHE"):
        run_task(llama, toy_task, SMALL, progress=False)
    task_file = write_task(tmp_path / "toy.json", [(p.input, p.output) for p in toy_task.pairs])
    code, err = cli(capsys, "run", "--model", "tiny-llama", "--task", task_file, "--out", tmp_path / "o",
                    "--n-mean-prompts", "4", "--n-scan-prompts", "3")  # fmt: skip
    line = error_line(err)
    assert code == 2 and "WORKBENCH_STAGE_CACHE" in line and str(root) in line
    if where == "full":  # nothing stored before was lost
        assert torch.equal(StageCache(root).get_or_compute("kept", {}, lambda: {})["x"], keep["x"])
