"""Time the whole protocol (``run_task``) the plain way and the fast way: same model, task, prompts, process.

    OMP_NUM_THREADS=1 python bench/pipeline_speed.py                  # smollm2-135m, antonym, paper protocol
    python bench/pipeline_speed.py --task capitalize --sweep-layers   # also the reported test-split sweep

plain: every intervention is its own forward of the whole prompt, and only prompts of one token
length share a forward (``plain_forwards()``, the reference path).  fast: each prompt's prefix runs
once and the interventions are last-token variants of it (:mod:`workbench.core.variants`), and
prompts of unequal length share forwards, left-padded (:mod:`workbench.core.padding`).  The head
scan: plain, one forward of the prompt and its variants per prompt; fast, the layer skip
(:mod:`workbench.core.layer_skip`); ``bench/scan_speed.py`` times it against the one-forward-per-head
reference.
No stage cache is used.

Prints the time of each stage both ways and their ratio, the floor (the token x layer forwards
the protocol needs at minimum, and the time it would take at the plain run's measured rate), the
accuracies both ways, and the last line ``speedup=<x> max_abs_diff=<y>``: ``y`` is the largest
difference of an answer probability between the two runs, over every prompt and intervention
scored by :func:`~workbench.core.variants.variant_scores`, and of the scan's effects.
"""

from __future__ import annotations

import argparse
import functools
import platform
import time
from collections import defaultdict

import torch

import workbench.method.evaluate as evaluate
import workbench.method.pipeline as pipeline
from workbench.base.stage_cache import StageCache
from workbench.core.loading import load_model
from workbench.core.model import model_info
from workbench.core.variants import plain_forwards
from workbench.data.tasks import load_task
from workbench.method.protocol import Protocol

STAGES = (
    "filter_extraction_queries",
    "mean_activations",
    "head_scan",
    "function_vector",
    "choose_layer",
    "evaluation",
    "test_layer_sweep",
    "generation_extras",
)


class Recorder:
    """Wraps the pipeline's stage functions (timing) and the scorer (every probability it returns)."""

    def __init__(self):
        self.times: dict[str, float] = defaultdict(float)
        self.probs: list[dict] = []
        self._originals = {name: getattr(pipeline, name) for name in STAGES}
        self._scores = evaluate.variant_scores

    def __enter__(self):
        for name, fn in self._originals.items():
            setattr(pipeline, name, self._timed(name, fn))

        @functools.wraps(self._scores)
        def scores(*args, **kwargs):
            out = self._scores(*args, **kwargs)
            self.probs.append({k: v.probs.clone() for k, v in out.items()})
            return out

        evaluate.variant_scores = scores
        return self

    def __exit__(self, *exc):
        for name, fn in self._originals.items():
            setattr(pipeline, name, fn)
        evaluate.variant_scores = self._scores

    def _timed(self, name, fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.times[name] += time.perf_counter() - t0

        return run


def run(model, task, protocol, plain: bool):
    with Recorder() as rec:
        t0 = time.perf_counter()
        if plain:
            with plain_forwards():
                result = pipeline.run_task(model, task, protocol, StageCache(enabled=False), progress=False)
        else:
            result = pipeline.run_task(model, task, protocol, StageCache(enabled=False), progress=False)
        total = time.perf_counter() - t0
    return result, dict(rec.times), total, rec.probs


def floor_token_layers(model, result) -> dict[str, float]:
    """Token x layer forwards each stage needs at minimum: every distinct prompt's tokens through
    every layer once (through the FV layer only for the task-vector donors), and each intervention
    one token through the layers above its site (the scan: head of layer l, layers l..L-1)."""
    L = model_info(model).n_layers
    H = model_info(model).n_heads
    sets = result.prompt_sets(model)
    p = result.protocol

    def tokens(name):
        return sum(len(e.ids) for e in sets[name])

    layer, out = result.fv_layer, {}
    out["filter_extraction_queries"] = tokens("valid_icl") * L
    out["mean_activations"] = tokens("means") * L
    out["head_scan"] = tokens("scan") * L + len(sets["scan"]) * H * sum(L - l for l in range(L))
    above = sum(L - 1 - l for l in range(L))  # an FV added after layer l: one token through l+1..L-1
    if p.layer is None and p.layer_rule == "sweep":
        valid = ("valid_zero_shot", "valid_shuffled")
        out["choose_layer"] = sum(tokens(s) * L + len(sets[s]) * above for s in valid)
    n_test = len(sets["test_zero_shot"])
    out["evaluation"] = (
        (tokens("test_icl") + tokens("test_zero_shot") + tokens("test_shuffled")) * L
        + tokens("donors") * (layer + 1)  # the donors stop after the FV layer (last_token_states)
        + 4 * n_test * (L - 1 - layer)  # zero-shot: +FV, mean state, task vector; shuffled: +FV
    )
    if p.sweep_layers:
        test = ("test_zero_shot", "test_sweep_shuffled")
        out["test_layer_sweep"] = sum(tokens(s) * L + len(sets[s]) * above for s in test)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--task", default="antonym")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep-layers", action="store_true", help="also the test-split layer sweep")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()

    model = load_model(args.model, args.device, getattr(torch, args.dtype))
    task = load_task(args.task)
    protocol = Protocol(seed=args.seed, sweep_layers=args.sweep_layers)
    print(
        f"{model_info(model).name} on {args.task}, {args.device} {args.dtype}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), {platform.machine()}"
    )
    model(torch.tensor([[1, 2, 3, 4]]))  # warm-up

    plain, t_plain, total_plain, probs_plain = run(model, task, protocol, plain=True)
    fast, t_fast, total_fast, probs_fast = run(model, task, protocol, plain=False)

    floor = floor_token_layers(model, plain)
    rate = floor["mean_activations"] / t_plain["mean_activations"]  # token-layers/s of a plain forward
    print(f"\n{'stage':28s} {'plain s':>9s} {'fast s':>9s} {'ratio':>7s} {'floor s':>9s}")
    for name in STAGES:
        if name in t_plain:
            a, b = t_plain[name], t_fast[name]
            f = floor.get(name, 0.0) / rate
            print(f"{name:28s} {a:9.2f} {b:9.2f} {a / max(b, 1e-9):7.1f} {f:9.2f}")
    floor_s = sum(floor.values()) / rate
    ratio = total_plain / total_fast
    print(f"{'total (run_task)':28s} {total_plain:9.2f} {total_fast:9.2f} {ratio:7.1f} {floor_s:9.2f}")
    print(
        f"floor: {sum(floor.values()) / 1e6:.2f} M token-layer forwards; at the plain means stage's rate "
        f"({rate:.0f} token-layers/s) {floor_s:.1f} s, so no exact method can beat "
        f"{total_plain / floor_s:.1f}x on this protocol"
    )

    diff = float((fast.scan.effects - plain.scan.effects).abs().nan_to_num().max())
    if len(probs_fast) != len(probs_plain):
        raise SystemExit(f"the runs scored {len(probs_fast)} vs {len(probs_plain)} sets: not comparable")
    for a, b in zip(probs_fast, probs_plain):
        for k in b:
            diff = max(diff, float((a[k] - b[k]).abs().max()) if b[k].numel() else 0.0)
    same = all(
        torch.equal(fast.accuracy_unfiltered[k].ranks == 0, v.ranks == 0)
        for k, v in plain.accuracy_unfiltered.items()
    )
    print(f"fv layer: plain {plain.fv_layer}, fast {fast.fv_layer}")
    for label, r in (("plain", plain), ("fast", fast)):
        print(f"{label:5s} accuracy: " + ", ".join(f"{k} {v.top1:.3f}" for k, v in r.accuracy.items()))
    print(f"identical top-1 decisions on every test query and condition: {same}")
    print(f"speedup={total_plain / total_fast:.2f} max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()
