"""The studies of issue 14 on finished runs, each cached as a stage (a rerun reads the numbers back).

    python bench/studies14.py --study positions --runs /work/main/runs/smollm2-135m \
        --tasks antonym capitalize present-past country-capital

Studies: ``positions`` (FV at the last vs every position: what a llama.cpp control vector does),
``signed`` (heads with negative AIE), ``induction`` (FV vs induction heads), ``head_count``
(joint layer x head-count choice on valid), ``zoo`` (baseline vectors under one evaluator),
``sites`` (MLP / attention-layer indirect effects).  Writes ``OUT/<model>_<study>.json`` and
figures ``FIGURES/<model>_<study>*.{html,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workbench.base.stage_cache import StageCache  # noqa: E402
from workbench.core.loading import DEFAULT_MODEL, load_model  # noqa: E402
from workbench.method.result import TaskResult  # noqa: E402
from workbench.show import figures  # noqa: E402
from workbench.studies.cache import cached_study  # noqa: E402

STUDIES = ("positions", "signed", "induction", "head_count", "zoo", "sites")


def study_fn(name: str, args):
    """``(params, compute(model, result), figure(all_results) or None)`` for study ``name``."""
    if name == "positions":
        from workbench.studies.positions import every_position_effect

        params = {"alphas": args.alphas}
        return params, lambda m, r: every_position_effect(m, r, args.alphas), figures.positions_figure
    if name == "signed":
        from workbench.studies.signed import signed_heads_study

        params = {"k": args.k}
        return params, lambda m, r: signed_heads_study(m, r, k=args.k), figures.signed_figure
    if name == "induction":
        from workbench.core.model import model_id
        from workbench.studies.induction import ablation_curves, induction_scores

        scores: dict = {}

        def compute(m, r):
            if not scores:  # once per model, cached as a stage of its own
                key = {"model": model_id(m), "n_seq": 20, "seq_len": 25, "seed": 0}
                scores.update(
                    StageCache().get_or_compute("induction_scores", key, lambda: induction_scores(m))
                )
            out = ablation_curves(m, r, scores["prefix_matching"])
            top = sorted(
                ((float(v), i) for i, v in enumerate(scores["prefix_matching"].flatten())), reverse=True
            )[:10]
            H = scores["prefix_matching"].shape[1]
            out["top_induction"] = [[i // H, i % H, v] for v, i in top]
            out["prefix_matching"] = scores["prefix_matching"].tolist()
            out["copying"] = scores["copying"].tolist()
            out["aie"] = r.scan.aie.tolist()
            return out

        return {"percents": [1, 2, 3, 5, 10, 20], "n_random": 3}, compute, figures.induction_figure
    if name == "head_count":
        import dataclasses

        from workbench.method.pipeline import run_task

        def compute(m, r):
            fixed = r.accuracy
            chosen = run_task(
                m, r.task, dataclasses.replace(r.protocol, head_count_rule="valid"), progress=False
            )
            chosen.save(Path(args.out) / "head_count" / r.task.name)
            acc = chosen.accuracy
            return {
                "fixed": {"k": len(r.fv.heads), "layer": r.fv_layer, **{c: fixed[c].top1 for c in fixed}},
                "valid": {
                    "k": len(chosen.fv.heads),
                    "layer": chosen.fv_layer,
                    **{c: acc[c].top1 for c in acc},
                },
                "choice": chosen.notes["head_count"],
                "n_filtered": int(r.icl_correct.sum()),
            }

        return {"rule": "valid"}, compute, lambda r: {"_choice": figures.head_count_choice_figure(r)}
    if name == "zoo":
        from workbench.studies.baselines import baseline_zoo

        return (
            {"soft_steps": args.soft_steps},
            lambda m, r: baseline_zoo(m, r, soft_steps=args.soft_steps),
            figures.zoo_figure,
        )
    raise SystemExit(f"unknown study {name!r}; one of {STUDIES}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--study", required=True, choices=STUDIES)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--runs", required=True, help="folder of finished runs, one subfolder per task")
    ap.add_argument("--tasks", nargs="+", required=True)
    ap.add_argument("--out", default="runs/studies14")
    ap.add_argument("--alphas", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--soft-steps", type=int, default=0)
    ap.add_argument("--formats", nargs="+", default=["html", "png"])
    ap.add_argument("--figures", default="figures", help="where the figures go")
    args = ap.parse_args(argv)

    model = load_model(args.model)
    cache = StageCache()
    results = {}
    if args.study == "sites":  # a task, not a finished run: no head scan needed
        from workbench.data.tasks import load_task
        from workbench.studies.sites import task_sites

        for task in args.tasks:
            results[task] = task_sites(model, load_task(task), cache=cache)
            print(json.dumps({task: results[task]})[:2000])
        _write(args, results, lambda r: figures.sites_figure({t: v["scan"] for t, v in r.items()}))
        return
    params, compute, draw = study_fn(args.study, args)
    for task in args.tasks:
        t0 = time.time()
        result = TaskResult.load(Path(args.runs) / task)
        results[task] = cached_study(cache, args.study, model, result, params, lambda: compute(model, result))
        print(f"{task}: {time.time() - t0:.0f} s", file=sys.stderr)
        print(json.dumps({task: results[task]}, default=str)[:2000])
    _write(args, results, draw)


def _write(args, results, draw) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.model}_{args.study}.json").write_text(
        json.dumps({"command": " ".join(sys.argv), **results}, indent=1)
    )
    if draw is not None:
        drawn = draw(results)
        for suffix, fig in (drawn if isinstance(drawn, dict) else {"": drawn}).items():
            figures.export(fig, f"{args.model}_{args.study}{suffix}", args.figures, args.formats)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
