"""Forward throughput (token-layers per second) by prompts per forward: what batching could gain.

    OMP_NUM_THREADS=1 python bench/batch_rate.py                 # smollm2-135m, 97-token prompts

Every prefix-bound stage (means, filter, evaluation, the scan's prompt run) batches only prompts of
equal token length; this measures how the rate grows with the batch, through the bridge and
through the plain transformers model, each timed for ``--seconds`` per batch size.
"""

from __future__ import annotations

import argparse
import time

import torch

from workbench.core.loading import load_model
from workbench.core.model import model_info


def rate(forward, ids: torch.Tensor, n_layers: int, seconds: float) -> float:
    with torch.inference_mode():
        forward(ids)  # warm-up
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            forward(ids)
            n += 1
    return ids.numel() * n_layers * n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--tokens", type=int, default=97)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16])
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    model = load_model(args.model, "cpu", torch.float32)
    L = model_info(model).n_layers
    print(f"{args.model}, {args.tokens}-token prompts, {torch.get_num_threads()} thread(s)")
    for b in args.batches:
        ids = torch.randint(100, 40000, (b, args.tokens), generator=torch.Generator().manual_seed(b))
        bridge = rate(lambda x: model(x, logits_to_keep=1), ids, L, args.seconds)
        plain = rate(lambda x: model.original_model(x, logits_to_keep=1), ids, L, args.seconds)
        print(f"batch {b:3d}: bridge {bridge:7.0f} token-layers/s, plain transformers {plain:7.0f}")


if __name__ == "__main__":
    main()
