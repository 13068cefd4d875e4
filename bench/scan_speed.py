"""Time the plain reference head scan against the fast scan: same model, prompts and process.

    python bench/scan_speed.py                          # embedded model, 25 ten-shot prompts, all heads
    python bench/scan_speed.py --reference-prompts 2    # time the reference on a subset, extrapolate
    python bench/scan_speed.py --config gptj --dtype bfloat16 --device cuda   # random GPT-J-6B shape
    python bench/scan_speed.py --reference-prompts 1 --compare-dtype bfloat16  # how far bf16 moves the AIE

Prints both times, the speed-up, the largest AIE difference (on the prompts both ran), peak
memory, and the FLOP floor; the last line is ``speedup=<x> max_abs_diff=<y>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the oracle lives with the tests
from reference import reference_scan  # noqa: E402

from workbench.core.heads import mean_head_activations  # noqa: E402
from workbench.core.loading import load_model  # noqa: E402
from workbench.core.model import model_info  # noqa: E402
from workbench.core.scan import scan_heads  # noqa: E402
from workbench.data.prompts import sample_prompts  # noqa: E402
from workbench.data.tasks import load_task  # noqa: E402
from workbench.method.protocol import encode  # noqa: E402


def random_model_from_config(name: str, dtype: torch.dtype):
    """A real-size model with random weights (speed does not depend on the values)."""
    from transformers import GPTJConfig, LlamaConfig

    from workbench.core.tiny import random_model

    if name == "gptj":
        cfg = GPTJConfig()  # GPT-J 6B's shape: 28 layers x 16 heads, d_model 4096
        cfg.architectures = ["GPTJForCausalLM"]
    elif name == "llama2-7b":
        cfg = LlamaConfig(
            hidden_size=4096,
            intermediate_size=11008,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=32,
            vocab_size=32000,
            max_position_embeddings=4096,
        )
        cfg.architectures = ["LlamaForCausalLM"]
    else:
        raise SystemExit(f"unknown --config {name!r}; use gptj or llama2-7b")
    cfg.bos_token_id = 0
    return random_model(cfg, name=f"random-{name}", dtype=dtype)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")  # Linux: reset the peak RSS (VmHWM)


def peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated(device)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def scan_flops(model, n_tokens: int) -> tuple[float, float]:
    """(minimal FLOPs of a full scan of one prompt, FLOPs of the reference for one prompt).

    Minimal: the prompt's forward once, then for each head (l, h) one token through layers l..L-1
    (its projections and MLP, attention over n keys) and one unembedding row.
    """
    info = model_info(model)
    hf = model.original_model
    n_params = sum(p.numel() for p in hf.parameters())
    emb = info.d_vocab * info.d_model
    per_layer = (n_params - emb * (1 if hf.config.tie_word_embeddings else 2)) / info.n_layers
    token_layer = 2 * per_layer + 4 * n_tokens * info.d_model  # matmuls + attention over n keys
    prompt = n_tokens * info.n_layers * token_layer + 2 * emb
    heads = (
        sum((info.n_layers - l) * token_layer * info.n_heads for l in range(info.n_layers))
        + info.n_total_heads * 2 * emb
    )
    reference = info.n_total_heads * (prompt + 2 * emb * n_tokens)  # full forward, logits at every position
    return prompt + heads, reference


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--config", default=None, help="random weights at a real size: gptj | llama2-7b")
    ap.add_argument("--task", default="antonym")
    ap.add_argument("--prompts", type=int, default=25)
    ap.add_argument("--shots", type=int, default=10)
    ap.add_argument(
        "--reference-prompts",
        type=int,
        default=None,
        help="run the reference on this many prompts and extrapolate",
    )
    ap.add_argument(
        "--batch-size", type=int, default=None, help="patched variants per forward (default: from memory)"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument(
        "--peak-tflops", type=float, default=None, help="the machine's peak, for the fraction reached"
    )
    ap.add_argument(
        "--compare-dtype",
        default=None,
        help="also run the fast scan in this dtype (e.g. bfloat16) and report how far it moves the AIE",
    )
    args = ap.parse_args()

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    model = (
        random_model_from_config(args.config, dtype).to(device)
        if args.config
        else load_model(args.model, device, dtype)
    )
    info = model_info(model)
    split = load_task(args.task).split(0)
    clean = encode(model, sample_prompts(split, 20, args.shots, "icl", seed=1))
    corrupted = encode(model, sample_prompts(split, args.prompts, args.shots, "shuffled", seed=2))
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    n_tok = sum(len(p) for p in corrupted) / len(corrupted)
    print(
        f"model {info.name}: {info.n_layers} layers x {info.n_heads} heads = {info.n_total_heads}, "
        f"{len(corrupted)} prompts of {n_tok:.0f} tokens on average, {args.device} {args.dtype}"
    )

    scan_heads(model, corrupted[:1], mean_z, heads=[(0, 0)], progress=False)  # warm-up
    reset_peak(device)
    t0 = time.perf_counter()
    fast = scan_heads(model, corrupted, mean_z, batch_size=args.batch_size, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_fast = time.perf_counter() - t0
    mem_fast = peak_bytes(device)

    n_ref = args.reference_prompts or len(corrupted)
    reset_peak(device)
    t0 = time.perf_counter()
    ref = reference_scan(model, corrupted[:n_ref], mean_z)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_ref_measured = time.perf_counter() - t0
    mem_ref = peak_bytes(device)
    t_ref = t_ref_measured * len(corrupted) / n_ref
    diff = float((fast.effects[:n_ref] - ref).abs().max())

    minimal, reference_flops = scan_flops(model, int(n_tok))
    total_min = minimal * len(corrupted)
    kind = (
        "measured"
        if n_ref == len(corrupted)
        else f"extrapolated from {n_ref} prompt(s), {t_ref_measured:.1f} s"
    )
    print(f"reference scan: {t_ref:9.2f} s  ({kind}); peak memory {mem_ref / 2**20:8.0f} MiB")
    print(
        f"fast scan:      {t_fast:9.2f} s  ({len(corrupted)} prompts);      peak memory "
        f"{mem_fast / 2**20:8.0f} MiB"
    )
    print(
        f"FLOP floor {total_min / 1e12:.2f} TFLOP for the scan; the fast scan ran at "
        f"{total_min / t_fast / 1e12:.3f} TFLOP/s"
        + (
            f" = {total_min / t_fast / 1e12 / args.peak_tflops:.1%} of the {args.peak_tflops} TFLOP/s peak"
            if args.peak_tflops
            else ""
        )
        + f"; the reference does {reference_flops * len(corrupted) / 1e12:.1f} TFLOP"
    )
    if args.compare_dtype:
        from workbench.studies import top_k_overlap

        other_dtype = getattr(torch, args.compare_dtype)
        other = (
            random_model_from_config(args.config, other_dtype).to(device)
            if args.config
            else load_model(args.model, device, other_dtype, verbose=False)
        )
        t0 = time.perf_counter()
        low = scan_heads(other, corrupted, mean_z, batch_size=args.batch_size, progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t_low = time.perf_counter() - t0
        shift = float((low.aie - fast.aie).abs().max())
        print(
            f"{args.compare_dtype} fast scan: {t_low:.2f} s; AIE moved by at most {shift:.2e} "
            f"({shift / float(fast.aie.abs().max()):.1%} of the largest |AIE|); top-10 heads shared with "
            f"{args.dtype}: {top_k_overlap(fast, low, 10):.0%}"
        )
    print(f"speedup={t_ref / t_fast:.1f} max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()
