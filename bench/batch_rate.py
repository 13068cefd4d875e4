"""Forward throughput (token-layers per second) by prompts per forward: what batching could gain.

    OMP_NUM_THREADS=1 python bench/batch_rate.py                 # smollm2-135m, 97-token prompts

    OMP_NUM_THREADS=1 python bench/batch_rate.py --padded        # + left-padded prompts of 89-105 tokens

Every prefix-bound stage (means, filter, evaluation, donors, the variants' prefixes) batches prompts
of unequal length, left-padded (:mod:`workbench.core.padding`); this measures how the rate grows
with the batch, through the bridge and through the plain transformers model, each timed for
``--seconds`` per batch size.  With ``--padded`` it also times :func:`workbench.core.padding.run` on
prompts of ``--tokens`` +- 8 tokens, counting real tokens only (pad columns are overhead).
"""

from __future__ import annotations

import argparse
import time

import torch

from workbench.core import padding
from workbench.core.loading import load_model
from workbench.core.model import model_info


def rate(forward, ids, n_layers: int, seconds: float, n_tokens: int | None = None) -> float:
    with torch.inference_mode():
        forward(ids)  # warm-up
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            forward(ids)
            n += 1
    return (n_tokens or ids.numel()) * n_layers * n / (time.perf_counter() - start)


def padded_batch(model, b: int, tokens: int) -> padding.Batch:
    """``b`` random prompts of ``tokens - 8 .. tokens + 8`` tokens, left-padded into one batch."""
    g = torch.Generator().manual_seed(1000 + b)
    lengths = torch.randint(tokens - 8, tokens + 9, (b,), generator=g).tolist()
    prompts = [torch.randint(100, 40000, (n,), generator=g).tolist() for n in lengths]
    (batch,) = padding.batches(prompts, b, pad=True, max_tokens=None)
    return batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tokens", type=int, default=97)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--padded", action="store_true", help="also left-padded prompts of unequal length")
    args = ap.parse_args()
    model = load_model(args.model, "cpu", torch.float32)
    L = model_info(model).n_layers
    print(f"{args.model}, {args.tokens}-token prompts, {torch.get_num_threads()} thread(s)")
    for b in args.batches:
        ids = torch.randint(100, 40000, (b, args.tokens), generator=torch.Generator().manual_seed(b))
        bridge = rate(lambda x: model(x, logits_to_keep=1), ids, L, args.seconds)
        plain = rate(lambda x: model.original_model(x, logits_to_keep=1), ids, L, args.seconds)
        line = f"batch {b:3d}: bridge {bridge:7.0f} token-layers/s, plain transformers {plain:7.0f}"
        if args.padded:
            batch = padded_batch(model, b, args.tokens)
            real = sum(len(batch.tokens[0]) - p for p in batch.pads)
            padded = rate(lambda x: padding.run(model, x, [], logits_to_keep=1), batch, L, args.seconds, real)
            share = sum(batch.pads) / batch.tokens.numel()
            line += f", bridge padded {padded:7.0f} (real tokens; {share:.0%} pad columns)"
        print(line)


if __name__ == "__main__":
    main()
