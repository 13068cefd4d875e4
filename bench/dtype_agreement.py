"""bfloat16 against float32 over the whole protocol, on the embedded model: heads, layer, accuracies.

    OMP_NUM_THREADS=1 python bench/dtype_agreement.py                          # smollm2-135m, antonym
    python bench/dtype_agreement.py --task capitalize --n-mean 100 --n-scan 25   # the paper's counts

Runs :func:`~workbench.method.pipeline.run_task` twice on the same task, protocol and seed (no
stage cache), once with the weights in float32 and once in bfloat16, and compares every decision
the protocol makes:

- the head scan: shared heads among the top 10, the largest AIE difference, the rank correlation,
  and the heads that enter or leave the top 10 with their AIEs both ways (and the 10th head's);
- the extraction filter (valid queries kept) and the layer chosen on valid (with the valid sweep's
  scores at both layers both ways);
- every accuracy (filtered and unfiltered), and the test queries whose top-1 decision flips;
- when the two runs chose different layers, the bfloat16 run's FV added after the float32 run's
  layer too: the accuracies once that one decision is set aside;
- that every score came out in float32 (the scan's effects, the head means, the FV).

Last line: ``top10_overlap=<shared of 10> max_acc_diff=<largest accuracy difference, in points>``,
followed by ``(at the same layer: <points>)`` when the layers differ.  Both runs are saved
(``--out``, :meth:`~workbench.method.result.TaskResult.save`) for a closer look.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's package

from workbench.base.stage_cache import StageCache
from workbench.base.stats import spearman
from workbench.core.loading import load_model
from workbench.data.tasks import load_task
from workbench.method.evaluate import Accuracy
from workbench.method.pipeline import evaluate_conditions, run_task
from workbench.method.protocol import Protocol


def one_run(model_name: str, dtype: torch.dtype, task, protocol, out: Path):
    """One whole run (no stage cache), saved under ``out/<dtype>``; the model is returned too."""
    model = load_model(model_name, dtype=dtype, verbose=False)
    t0 = time.perf_counter()
    result = run_task(model, task, protocol, StageCache(enabled=False), progress=False)
    seconds = time.perf_counter() - t0
    result.save(out / str(dtype).removeprefix("torch."), overwrite=True)
    return model, result, seconds


def at_layer(model, result, layer: int) -> dict:
    """The run's FV added after ``layer`` instead of its chosen one: every condition, filtered by the
    run's own clean-ICL decisions (as ``result.accuracy``)."""
    sets = result.prompt_sets(model)
    accs = evaluate_conditions(model, sets, result.fv, layer, result.means, progress=False)
    right = result.icl_correct
    return {name: Accuracy(a.ranks[right]).top1 for name, a in accs.items()}


def same_layer(a, b, b_model, names=("float32", "bfloat16")) -> float:
    """When the runs chose different layers: ``b``'s FV evaluated at ``a``'s layer, against ``a``:
    what bfloat16 changes in the accuracies once the layer decision is set aside."""
    moved = at_layer(b_model, b, a.fv_layer)
    print(f"at {names[0]}'s layer {a.fv_layer} both ways:")
    worst = 0.0
    for cond, acc_a in a.accuracy.items():
        worst = max(worst, abs(acc_a.top1 - moved[cond]))
        print(f"  {cond:<16} {acc_a.top1:9.3f} {moved[cond]:9.3f}")
    return 100 * worst


def compare(a, b, names=("float32", "bfloat16")) -> dict:
    """Every decision of two runs side by side (printed), and the two summary figures."""
    top_a = [(l, h) for l, h, _ in a.scan.top_heads(10)]
    top_b = [(l, h) for l, h, _ in b.scan.top_heads(10)]
    shared = len(set(top_a) & set(top_b))
    aie_a, aie_b = a.scan.aie, b.scan.aie
    print(
        f"\nhead scan: {shared}/10 of the top heads shared; max |AIE difference| "
        f"{float((aie_a - aie_b).abs().max()):.4f} (largest AIE {float(aie_a.max()):.4f}); "
        f"Spearman over all heads {spearman(aie_a.flatten(), aie_b.flatten()):.3f}"
    )
    print(f"  top 10 {names[0]}: " + ", ".join(f"L{l}H{h}" for l, h in top_a))
    print(f"  top 10 {names[1]}: " + ", ".join(f"L{l}H{h}" for l, h in top_b))
    tenth_a, tenth_b = a.scan.top_heads(10)[-1][2], b.scan.top_heads(10)[-1][2]
    for l, h in sorted(set(top_a) ^ set(top_b)):
        where = names[0] if (l, h) in top_a else names[1]
        print(
            f"  L{l}H{h} only in {where}'s top 10: AIE {float(aie_a[l, h]):+.4f} ({names[0]}) "
            f"{float(aie_b[l, h]):+.4f} ({names[1]}); 10th head's AIE {tenth_a:+.4f} / {tenth_b:+.4f}"
        )
    kept_a, kept_b = set(a.extraction_queries), set(b.extraction_queries)
    print(f"filter: {len(kept_a)} / {len(kept_b)} valid queries kept; {len(kept_a ^ kept_b)} differ")
    line = f"layer chosen on valid: {a.fv_layer} / {b.fv_layer}"
    if a.fv_layer != b.fv_layer and a.valid_sweep is not None and b.valid_sweep is not None:
        for label, r in zip(names, (a, b)):
            s = r.valid_sweep
            score = {L: sum(s.results[k][i].top1 for k in s.results) for i, L in enumerate(s.layers)}
            line += f"; {label} scores layer {a.fv_layer}: {score[a.fv_layer]:.3f}, "
            line += f"{b.fv_layer}: {score[b.fv_layer]:.3f}"
    print(line)
    worst = 0.0
    print(f"{'accuracy':<16} {names[0]:>9} {names[1]:>9}   unfiltered {names[0]:>9} {names[1]:>9}  flips")
    for cond in a.accuracy_unfiltered:
        fa, fb = a.accuracy[cond].top1, b.accuracy[cond].top1
        ua, ub = a.accuracy_unfiltered[cond].top1, b.accuracy_unfiltered[cond].top1
        flips = int(
            ((a.accuracy_unfiltered[cond].ranks == 0) != (b.accuracy_unfiltered[cond].ranks == 0)).sum()
        )
        worst = max(worst, abs(fa - fb), abs(ua - ub))
        print(f"{cond:<16} {fa:9.3f} {fb:9.3f}   {'':>10} {ua:9.3f} {ub:9.3f}  {flips:5d}")
    floats = {
        "scan effects": b.scan.effects.dtype,
        "head means": b.means.mean_out.dtype,
        "function vector": b.fv.vector.dtype,
    }
    print("dtypes of the bfloat16 run's scores: " + ", ".join(f"{k} {v}" for k, v in floats.items()))
    if any(v != torch.float32 for v in floats.values()):
        raise SystemExit("a score of the bfloat16 run is not float32")
    return {"top10_overlap": shared, "max_acc_diff": 100 * worst}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="antonym")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-mean", type=int, default=50)
    ap.add_argument("--n-scan", type=int, default=15)
    ap.add_argument("--out", default="runs/dtype_agreement", help="where both runs are saved")
    args = ap.parse_args(argv)
    task = load_task(args.task)
    protocol = Protocol(seed=args.seed, n_mean_prompts=args.n_mean, n_scan_prompts=args.n_scan)
    print(
        f"{args.model} on {args.task}, {protocol}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)"
    )
    out = Path(args.out)
    m32, r32, t32 = one_run(args.model, torch.float32, task, protocol, out)
    del m32
    gc.collect()
    m16, r16, t16 = one_run(args.model, torch.bfloat16, task, protocol, out)
    print(f"run_task: float32 {t32:.0f} s, bfloat16 {t16:.0f} s; both runs saved in {out}/")
    summary = compare(r32, r16)
    if r32.fv_layer != r16.fv_layer:
        summary["max_acc_diff_same_layer"] = same_layer(r32, r16, m16)
    line = f"top10_overlap={summary['top10_overlap']} max_acc_diff={summary['max_acc_diff']:.1f}"
    if "max_acc_diff_same_layer" in summary:
        line += f" (at the same layer: {summary['max_acc_diff_same_layer']:.1f})"
    print(line)
    return summary


if __name__ == "__main__":
    main()
