"""The checks of ``bench/gpu_check.sh`` (run that script, which installs the carried wheels first).

    python bench/gpu_check.py --out gpu_check.json              # on a CUDA GPU: the three checks below
    python bench/gpu_check.py --cpu-tiny --out gpu_check.json   # the same code at tiny sizes on the CPU

1. **scan**: random-weight GPT-J-6B in bfloat16, 25 prompts of 100 random tokens: the fast scan
   (``scan_heads``) of all 448 heads against the one-forward-per-head loop (``tests/reference.py``:
   a full forward per head, logits at every position), the loop timed on 1 prompt and
   extrapolated to 25; seconds, ratio, the fast scan's FLOP floor per second and its fraction of
   the card's bf16 peak (the spec sheet's dense figure, and an 8192^3 matmul measured in the run).
2. **run**: one whole ``run_task`` (the paper's protocol, antonym) on a random-weight Llama-3-8B
   shape in bfloat16 with SmolLM2's real tokenizer (its 49152 ids inside the model's 128256-row
   vocabulary): seconds and peak GPU memory per stage, against ``plan_for_model``'s peaks.  A
   random model answers nothing right, so the run goes through with ``filter_correct=False`` (every
   query kept, unfiltered accuracies: the clean-ICL filter would keep none), and unverified if its
   bf16 self-check fails (recorded).  The accuracies are meaningless; the times and memory are not.
3. **dtype**: ``bench/dtype_agreement.py``'s comparison (top-10 heads, layer, every accuracy) of
   bfloat16 against float32 on the embedded model (SmolLM2-135M) on the GPU.  Its weights (a
   94 MB GGUF) exceed one call's 64 MiB carry: ``gpu_check.sh prepare`` splits them in two, and
   the check runs where both halves reached the machine (see the shell script), else it is
   recorded as skipped with the reason.

``--cpu-tiny``: tiny GPT-J and Llama shapes, the tiny tokenizer, a 2-shot protocol, and part 3 on a
tiny Llama; memory from the process's peak RSS.  Writes one JSON file; prints its summary.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

import workbench.method.pipeline as pipeline  # noqa: E402
from workbench.base.stage_cache import StageCache  # noqa: E402
from workbench.core.heads import mean_head_activations  # noqa: E402
from workbench.core.model import bridge_from_hf, model_info  # noqa: E402
from workbench.core.plan import known_config, plan_for_model  # noqa: E402
from workbench.core.scan import scan_heads  # noqa: E402
from workbench.core.selfcheck import verify_model  # noqa: E402
from workbench.data.prompts import EncodedPrompt  # noqa: E402
from workbench.data.tasks import load_task  # noqa: E402
from workbench.method.protocol import Protocol  # noqa: E402

# stage function of the pipeline -> the plan's stage name
STAGES = {
    "filter_extraction_queries": "filter",
    "mean_activations": "means",
    "head_scan": "scan",
    "choose_layer": "layer sweep (valid)",
    "evaluation": "evaluation",
}
SPEC_BF16_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0}  # dense, from NVIDIA's spec sheets
TINY_GPTJ = dict(n_embd=64, n_head=4, rotary_dim=8, n_inner=128, n_layer=2, vocab_size=512)


class Device:
    """Synchronise, and read and reset the peak memory, on a CUDA GPU or (RSS) the CPU."""

    def __init__(self, name: str):
        self.device = torch.device(name)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def reset(self) -> None:
        self.sync()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            Path("/proc/self/clear_refs").write_text("5")

    def peak(self) -> int:
        self.sync()
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def timed(self, fn):
        self.sync()
        t0 = time.perf_counter()
        out = fn()
        self.sync()
        return out, time.perf_counter() - t0


def build(cfg, dtype, device: str, tokenizer, name: str):
    """A random-weight bridge, its weights made directly on ``device`` in ``dtype`` (seeded)."""
    from transformers import AutoModelForCausalLM

    cfg._attn_implementation = "eager"
    cfg.bos_token_id = getattr(tokenizer, "bos_token_id", None) or 0
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            hf = AutoModelForCausalLM.from_config(cfg)
    finally:
        torch.set_default_dtype(default)
    return bridge_from_hf(hf.eval(), tokenizer, name)


def smollm2_tokenizer():
    """SmolLM2's tokenizer: carried in ``.gpu/tokenizer`` (``gpu_check.sh prepare``), or read from the
    installed weights package."""
    from transformers import AutoTokenizer

    carried = ROOT / ".gpu" / "tokenizer"
    if carried.is_dir():
        return AutoTokenizer.from_pretrained(carried)
    from workbench.core.loading import BUILTIN_MODELS

    gguf = BUILTIN_MODELS["smollm2-135m"].gguf_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def random_prompts(model, n: int, length: int, seed: int) -> list[EncodedPrompt]:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, min(300, model_info(model).d_vocab), (n, length), generator=gen)
    return [EncodedPrompt(tuple(int(i) for i in row), int(row[-1]), None) for row in ids]


def matmul_tflops(dev: Device, n: int = 8192) -> float | None:
    """bf16 matmul rate measured here (TFLOP/s), or None on a CPU."""
    if dev.device.type != "cuda":
        return None
    a = torch.randn(n, n, device=dev.device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=dev.device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    _, t = dev.timed(lambda: [a @ b for _ in range(10)])
    return 2 * n**3 * 10 / t / 1e12


def check_scan(dev: Device, tiny: bool) -> dict:
    from reference import reference_scan
    from scan_speed import scan_flops
    from transformers import GPTJConfig

    from workbench.core.tiny import tiny_tokenizer

    cfg = GPTJConfig(**TINY_GPTJ) if tiny else known_config("gptj-6b")
    cfg.architectures = ["GPTJForCausalLM"]
    model = build(cfg, torch.bfloat16, str(dev.device), tiny_tokenizer(), "random-gptj-6b")
    info = model_info(model)
    length = 24 if tiny else 100
    clean = random_prompts(model, 8, length, seed=1)
    prompts = random_prompts(model, 10 if tiny else 25, length, seed=2)
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    scan_heads(model, prompts[:1], mean_z, heads=[(0, 0)], progress=False)  # warm-up
    fast, t_fast = dev.timed(lambda: scan_heads(model, prompts, mean_z, progress=False))
    ref, t_one = dev.timed(lambda: reference_scan(model, prompts[:1], mean_z))
    minimal, _ = scan_flops(model, length)
    rate = minimal * len(prompts) / t_fast / 1e12
    name = torch.cuda.get_device_name(dev.device) if dev.device.type == "cuda" else platform.processor()
    spec = next((v for k, v in SPEC_BF16_TFLOPS.items() if k in str(name)), None)
    measured = matmul_tflops(dev)
    out = {
        "model": f"random GPT-J-6B shape{' (tiny)' if tiny else ''}: {info.n_layers} x {info.n_heads} heads",
        "prompts": len(prompts),
        "tokens": length,
        "fast_scan_s": t_fast,
        "loop_1_prompt_s": t_one,
        "loop_25_prompts_s_extrapolated": t_one * len(prompts),
        "ratio": t_one * len(prompts) / t_fast,
        "max_abs_diff_prompt0": float((fast.effects[0] - ref[0]).abs().max()),
        "fast_scan_tflops": rate,
        "device_name": str(name),
        "spec_bf16_tflops": spec,
        "fraction_of_spec": None if spec is None else rate / spec,
        "matmul_bf16_tflops_measured": measured,
        "fraction_of_matmul": None if measured is None else rate / measured,
    }
    return out


class StageRecorder:
    """Seconds and peak memory of each pipeline stage (the pipeline's stage functions, wrapped)."""

    def __init__(self, dev: Device):
        self.dev, self.rows = dev, {}
        self._originals = {name: getattr(pipeline, name) for name in STAGES}

    def __enter__(self):
        for name, fn in self._originals.items():
            setattr(pipeline, name, self._wrap(name, fn))
        return self

    def __exit__(self, *exc):
        for name, fn in self._originals.items():
            setattr(pipeline, name, fn)

    def _wrap(self, name, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            self.dev.reset()
            out, seconds = self.dev.timed(lambda: fn(*args, **kwargs))
            self.rows[name] = {"seconds": seconds, "peak_bytes": self.dev.peak()}
            return out

        return run


def check_run(dev: Device, tiny: bool) -> dict:
    from workbench.core.tiny import tiny_config, tiny_tokenizer

    tokenizer = tiny_tokenizer() if tiny else smollm2_tokenizer()
    cfg = tiny_config("llama", len(tokenizer)) if tiny else known_config("llama-3-8b")
    cfg.architectures = ["LlamaForCausalLM"]
    model = build(cfg, torch.bfloat16, str(dev.device), tokenizer, "random-llama-3-8b")
    task = load_task("antonym")
    small = {"n_shot": 2, "n_mean_prompts": 4, "n_scan_prompts": 2} if tiny else {}
    protocol = Protocol(filter_correct=False, **small)
    check, t_check = dev.timed(lambda: verify_model(model, unverified=True))
    plan = plan_for_model(model, protocol, task)
    with StageRecorder(dev) as rec:
        result, total = dev.timed(
            lambda: pipeline.run_task(model, task, protocol, StageCache(enabled=False), progress=False)
        )
    stages = {}
    for fn_name, row in rec.rows.items():
        sp = plan.stage(STAGES[fn_name])
        predicted = sp.peak_bytes
        measured = row["peak_bytes"]
        stages[STAGES[fn_name]] = {
            **row,
            "plan_peak_bytes": predicted,
            "plan_variant_batch": sp.variant_batch,
            # on a CPU the peak is the whole process's RSS (libraries included): no comparison
            "rel_err": abs(predicted - measured) / measured if dev.device.type == "cuda" else None,
        }
    out = {
        "model": f"random Llama-3-8B shape{' (tiny)' if tiny else ''}, bfloat16",
        "tokenizer": f"{type(tokenizer).__name__} ({len(tokenizer)} ids)",
        "task": "antonym",
        "protocol": protocol.to_dict(),
        "self_check": check.status,
        "self_check_s": t_check,
        "run_task_s": total,
        "stages": stages,
        "plan": plan.to_dict(),
        "fv_layer": result.fv_layer,
        "accuracy_unfiltered": {k: v.top1 for k, v in result.accuracy_unfiltered.items()},
    }
    return out


def check_dtype(dev: Device, tiny: bool) -> dict:
    from workbench.core.tiny import tiny_model

    if tiny:
        task = load_task("antonym")
        protocol = Protocol(n_shot=2, n_mean_prompts=4, n_scan_prompts=2, filter_correct=False)
        runs, model = [], None
        for d in (torch.float32, torch.bfloat16):
            model = tiny_model("llama", dtype=d, unverified=True)
            runs.append(pipeline.run_task(model, task, protocol, StageCache(enabled=False), progress=False))
        return {"model": "tiny-llama", **_agreement(runs, model)}
    gguf = _smollm2_gguf()
    if gguf is None:
        return {
            "skipped": "the embedded model's weights did not reach this machine (gpu_check.sh prepare, stash)"
        }
    from workbench.core.loading import load_model

    task = load_task("antonym")
    protocol = Protocol(n_mean_prompts=50, n_scan_prompts=15)
    runs, seconds, model = [], [], None
    for d in (torch.float32, torch.bfloat16):
        del model
        model = load_model(str(gguf), device=str(dev.device), dtype=d)
        r, t = dev.timed(
            lambda m=model: pipeline.run_task(m, task, protocol, StageCache(enabled=False), progress=False)
        )
        runs.append(r)
        seconds.append(t)
    return {"model": "smollm2-135m", "seconds": seconds, **_agreement(runs, model)}


def _agreement(runs, bf16_model) -> dict:
    """``dtype_agreement``'s comparison of the float32 and bfloat16 runs, and, where they chose
    different layers, the bfloat16 FV at the float32 layer."""
    import dtype_agreement

    summary = dtype_agreement.compare(*runs)
    if runs[0].fv_layer != runs[1].fv_layer:
        summary["max_acc_diff_same_layer"] = dtype_agreement.same_layer(*runs, bf16_model)
    return summary


def _smollm2_gguf() -> Path | None:
    """The embedded model's GGUF: installed, or joined from the carried and stashed halves."""
    try:
        from workbench.core.loading import BUILTIN_MODELS

        path = BUILTIN_MODELS["smollm2-135m"].gguf_path()
        if path.is_file():
            return path
    except Exception:  # noqa: BLE001 - not installed here
        pass
    parts = [*Path("/tmp/wb-stash").glob("smollm2.gguf.part*"), *(ROOT / ".gpu").glob("smollm2.gguf.part*")]
    names = {p.name for p in parts}
    if {"smollm2.gguf.part0", "smollm2.gguf.part1"} - names:
        return None
    joined = Path("/tmp/SmolLM2-135M-Instruct.Q4_1.gguf")
    with open(joined, "wb") as f:
        for name in ("smollm2.gguf.part0", "smollm2.gguf.part1"):
            f.write(next(p for p in parts if p.name == name).read_bytes())
    return joined


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu-tiny", action="store_true", help="tiny sizes on the CPU (the suite's test)")
    ap.add_argument("--out", default="gpu_check.json")
    ap.add_argument("--parts", nargs="+", default=["scan", "run", "dtype"])
    args = ap.parse_args(argv)
    if not args.cpu_tiny and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible: run on the GPU machine, or pass --cpu-tiny")
    dev = Device("cpu" if args.cpu_tiny else "cuda")
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if dev.device.type == "cuda" else "cpu",
        "cpu_tiny": args.cpu_tiny,
    }
    checks = {"scan": check_scan, "run": check_run, "dtype": check_dtype}
    for part in args.parts:
        t0 = time.perf_counter()
        try:
            report[part] = checks[part](dev, args.cpu_tiny)
        except Exception as e:  # noqa: BLE001 - one failed part must not lose the others' figures
            report[part] = {"error": f"{type(e).__name__}: {e}"}
        report[part]["wall_s"] = time.perf_counter() - t0
        Path(args.out).write_text(json.dumps(report, indent=1, default=str))
        shown = {k: v for k, v in report[part].items() if k != "plan"}
        print(f"{part}: " + json.dumps(shown, default=str)[:1500], flush=True)
        if dev.device.type == "cuda":
            torch.cuda.empty_cache()
    return report


if __name__ == "__main__":
    main()
