"""Learned soft task vectors against function vectors, per task, on one model.

    python bench/soft_task_vectors.py --model smollm2-135m --tasks antonym capitalize present-past

For each task: the pipeline's TaskResult (``run_task`` with the default protocol; its stages are
cached), then :func:`workbench.soft.soft_vs_fv` (fit one alpha per head on the train split's
zero-shot prompts, evaluate on the test split).  Writes ``<out>/<model>/soft_task_vectors.json``
(one entry per task), each task's vector as ``<out>/<model>/<task>/soft_task_vector.safetensors``,
and a figure per task (``figures/<model>_soft_<task>.{html,png}``).  ``--reuse`` evaluates the
saved vectors again (when fitted with the same hyperparameters) instead of fitting them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from workbench.base.files import read_json, write_json
from workbench.beyond.soft import SoftTaskVector, soft_vs_fv
from workbench.core.loading import DEFAULT_MODEL, load_model
from workbench.core.model import model_info
from workbench.method.pipeline import run_task
from workbench.show import figures


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--tasks", nargs="+", default=["antonym", "capitalize", "present-past"])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--sparsity", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--init", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs", help="folder for <model>/soft_task_vectors.json")
    ap.add_argument("--figures", default="figures", help="folder for the figures ('' for none)")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="evaluate a saved vector with the same hyperparameters instead of fitting again",
    )
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared CPU)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model(args.model)
    name = model_info(model).name
    path = Path(args.out) / name / "soft_task_vectors.json"
    table = read_json(path) if path.exists() else {}
    for task in args.tasks:
        t0 = time.time()
        result = run_task(model, task)
        t1 = time.time()
        saved = Path(args.out) / name / task / "soft_task_vector.safetensors"
        hparams = {
            "steps": args.steps,
            "lr": args.lr,
            "sparsity": args.sparsity,
            "batch_size": args.batch_size,
            "init": args.init,
            "seed": args.seed,
        }
        old = SoftTaskVector.load(saved, model) if args.reuse and saved.exists() else None
        if old is not None and any(old.hparams.get(k) != v for k, v in hparams.items()):
            old = None  # fitted with other hyperparameters: fit again
        row = soft_vs_fv(
            model,
            result,
            steps=args.steps,
            lr=args.lr,
            sparsity=args.sparsity,
            batch_size=args.batch_size,
            init=args.init,
            seed=args.seed,
            soft=old,
        )
        soft = row.pop("soft")
        row["reused_vector"] = old is not None
        row["seconds"] = {"task_result": round(t1 - t0, 1), "fit_and_evaluate": round(time.time() - t1, 1)}
        soft.save(saved)
        table[task] = row
        write_json(path, table)  # after every task, so a stopped run keeps what it measured
        acc = row["accuracy"]
        print(
            f"{task}: "
            + ", ".join(f"{k} {v:.0%}" for k, v in acc.items())
            + f" | {row['n_on']} of {row['n_params']} heads on, spearman(alpha, AIE) "
            f"{row['spearman_alpha_aie']:+.2f}" + f" | {row['seconds']['fit_and_evaluate']:.0f}s",
            flush=True,
        )
        if args.figures:
            figures.export(
                figures.soft_alpha_figure(soft, result.scan, top_k=row["top_k"]),
                f"{name}_soft_{task}",
                args.figures,
                formats=("html", "png"),
            )
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
