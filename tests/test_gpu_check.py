"""The CPU path of ``bench/gpu_check.sh`` (tiny sizes): the script runs its three checks end to end
and writes their figures as JSON, as it would on a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_cpu_tiny_path(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    env["WORKBENCH_CACHE"] = str(tmp_path / "cache")
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--cpu-tiny"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["cpu_tiny"] is True
    for part in ("scan", "run", "dtype"):
        assert "error" not in report[part], report[part]
    scan = report["scan"]
    assert scan["ratio"] > 0 and scan["max_abs_diff_prompt0"] < 1e-2  # bf16: the fast scan matches the loop
    run = report["run"]
    assert set(run["stages"]) == {"filter", "means", "scan", "layer sweep (valid)", "evaluation"}
    assert all(s["seconds"] > 0 and s["plan_peak_bytes"] > 0 for s in run["stages"].values())
    assert report["dtype"]["top10_overlap"] >= 0 and "max_acc_diff" in report["dtype"]
    assert (tmp_path / "gpu_check.log").read_text().strip()


def test_dtype_agreement_moves_a_run_to_another_layer(trained, trained_run):
    """``bench/dtype_agreement.py``'s same-layer comparison: a run's FV at its own layer gives the
    run's own accuracies, and at another layer what a plain hook gives there."""
    sys.path.insert(0, str(ROOT / "bench"))
    import dtype_agreement
    from reference import add_after, plain_top1

    model, run = trained[0], trained_run
    own = dtype_agreement.at_layer(model, run, run.fv_layer)
    assert own == pytest.approx({k: a.top1 for k, a in run.accuracy.items()})
    assert dtype_agreement.same_layer(run, run, model) == 0.0
    other = (run.fv_layer + 1) % model.cfg.n_layers
    moved = dtype_agreement.at_layer(model, run, other)
    keep = run.icl_correct.tolist()
    prompts = [p for p, ok in zip(run.prompt_sets(model)["test_zero_shot"], keep) if ok]
    assert prompts, "the trained model answers some test queries in context"
    expected = plain_top1(model, prompts, lambda i: add_after(other, run.fv.vector))
    assert moved["zero_shot_fv"] == pytest.approx(expected)
