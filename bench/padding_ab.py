"""Padded against equal-length batches on one stage's prompts, timed in alternation (A B A B ...).

    OMP_NUM_THREADS=1 python bench/padding_ab.py                   # smollm2-135m, antonym valid_icl

The prompts are a run's clean 10-shot validation prompts (the filter stage's forwards: every
prompt's last-token logits, no hooks).  Each round times the equal-length path
(:func:`~workbench.core.forward.plain_forwards`) and the padded path once, so a machine whose
load drifts slows both alike; prints each round and the last line
``padded_speedup=<median ratio> max_abs_diff=<largest logit difference>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from workbench.core.forward import last_token_logits, plain_forwards
from workbench.core.loading import load_model
from workbench.data.tasks import load_task
from workbench.method.protocol import PromptSets, Protocol


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="antonym")
    ap.add_argument("--set", default="valid_icl")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    model = load_model(args.model, "cpu", torch.float32)
    prompts = PromptSets(load_task(args.task), Protocol(), model)[args.set]
    lengths = sorted(len(p.ids) for p in prompts)
    print(
        f"{args.model}, {args.task} {args.set}: {len(prompts)} prompts of {lengths[0]}-{lengths[-1]} tokens "
        f"({len(set(lengths))} lengths), {torch.get_num_threads()} thread(s)"
    )
    last_token_logits(model, prompts[:2])  # warm-up
    ratios, diff = [], 0.0
    for r in range(args.rounds):
        t0 = time.perf_counter()
        with plain_forwards():
            equal = last_token_logits(model, prompts)
        t1 = time.perf_counter()
        padded = last_token_logits(model, prompts)
        t2 = time.perf_counter()
        diff = max(diff, float((padded - equal).abs().max()))
        ratios.append((t1 - t0) / (t2 - t1))
        print(f"round {r}: equal lengths {t1 - t0:7.2f} s, padded {t2 - t1:7.2f} s, ratio {ratios[-1]:.2f}")
    print(f"padded_speedup={statistics.median(ratios):.2f} max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()
