"""The CPU path of ``bench/gpu_check.sh`` (tiny sizes): the script runs its three checks end to end
and writes their figures as JSON, as it would on a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
