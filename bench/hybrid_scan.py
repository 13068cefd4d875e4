"""The hybrid head scan against the full exact scan: top-10 recall and cost, on the embedded model.

    OMP_NUM_THREADS=1 python bench/hybrid_scan.py                 # smollm2-135m, antonym, 25 prompts
    python bench/hybrid_scan.py --task capitalize --candidates 30 50 100

The hybrid (``scan_heads(method="hybrid", candidates=N)``) ranks every head by attribution
patching (one forward and one backward per prompt), then patches only the top ``N`` exactly.  Its
scores on those heads are the exact scan's; what it can miss is an exact top-10 head that
attribution ranks below ``N``.  This script runs the full exact scan, the attribution scan and the
hybrid at the default ``N`` on the same prompts and means (timed), and reads the recall at other
``N`` from the first two (the hybrid's scores equal the exact scan's on its candidates: checked
here on the timed run, and in ``tests/test_hybrid.py``).

Last line: ``recall_top10=<at the default N> cost=<hybrid seconds / exact seconds>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's package

from workbench.core.heads import mean_head_activations
from workbench.core.loading import load_model
from workbench.core.model import model_info
from workbench.core.scan import attribution_scan, default_candidates, hybrid_candidates, scan_heads
from workbench.data.prompts import sample_prompts
from workbench.data.tasks import load_task
from workbench.method.protocol import encode


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="antonym")
    ap.add_argument("--prompts", type=int, default=25)
    ap.add_argument("--mean-prompts", type=int, default=50)
    ap.add_argument("--candidates", type=int, nargs="+", default=[10, 20, 30, 50, 80, 120])
    args = ap.parse_args(argv)

    model = load_model(args.model, verbose=False)
    info = model_info(model)
    split = load_task(args.task).split(0)
    clean = encode(model, sample_prompts(split, args.mean_prompts, 10, "icl", seed=1))
    corrupted = encode(model, sample_prompts(split, args.prompts, 10, "shuffled", seed=2))
    mean_z = mean_head_activations(model, clean, progress=False).mean_z
    n_default = default_candidates(info.n_total_heads)
    print(
        f"{info.name} on {args.task}: {info.n_total_heads} heads, {len(corrupted)} shuffled 10-shot prompts, "
        f"means over {len(clean)} clean prompts; torch {torch.get_num_threads()} thread(s)"
    )

    exact, t_exact = timed(lambda: scan_heads(model, corrupted, mean_z, progress=False))
    approx, t_attr = timed(lambda: attribution_scan(model, corrupted, mean_z, progress=False))
    hybrid, t_hybrid = timed(
        lambda: scan_heads(model, corrupted, mean_z, method="hybrid", candidates=n_default, progress=False)
    )
    scanned = ~hybrid.effects[0].isnan()
    diff = float((hybrid.effects[:, scanned] - exact.effects[:, scanned]).abs().max())

    top = {(l, h) for l, h, _ in exact.top_heads(10)}
    print(f"exact scan {t_exact:.1f} s; attribution {t_attr:.1f} s; hybrid (N={n_default}) {t_hybrid:.1f} s")
    print(f"hybrid scores vs exact on its {int(scanned.sum())} candidates: max |difference| {diff:.2e}")
    print(f"{'N':>5} {'recall of the exact top 10':>28}  missed (exact rank, attribution rank)")
    ranks_attr = {(l, h): i for i, (l, h, _) in enumerate(approx.top_heads(info.n_total_heads))}
    ranks_exact = {(l, h): i for i, (l, h, _) in enumerate(exact.top_heads(10))}
    recall = {}
    for n in sorted(set(args.candidates) | {n_default}):
        chosen = set(hybrid_candidates(approx, n))
        recall[n] = len(top & chosen) / 10
        missed = sorted(top - chosen, key=ranks_exact.get)
        print(
            f"{n:5d} {recall[n]:28.0%}  "
            + ", ".join(f"L{l}H{h} ({ranks_exact[(l, h)] + 1}, {ranks_attr[(l, h)] + 1})" for l, h in missed)
        )
    hybrid_top = {(l, h) for l, h, _ in hybrid.top_heads(10)}
    print(f"hybrid's own top 10 shares {len(hybrid_top & top)}/10 with the exact top 10")
    print(f"recall_top10={recall[n_default]:.2f} cost={t_hybrid / t_exact:.2f}")
    return {"recall": recall, "t_exact": t_exact, "t_attr": t_attr, "t_hybrid": t_hybrid, "diff": diff}


if __name__ == "__main__":
    main()
