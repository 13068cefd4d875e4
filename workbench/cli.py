"""The ``workbench`` command line.

    workbench run --model M --task T --out DIR [--seed S] [--layer L] [--top-k K] [--sweep-layers]
    workbench icl --model M --tasks T1 T2 ...     # 10-shot / zero-shot / shuffled accuracy table
    workbench merge DIR1 DIR2 ... [--out FILE]    # one table (and universal AIE) from many runs
    workbench figures --model M --tasks T1 T2 ... --out figures/   # every paper figure
    workbench tasks | workbench models

``run`` writes ``DIR/function_vector.safetensors`` and ``DIR/result.json``; stages are cached
(``$WORKBENCH_CACHE``), so rerunning with the same arguments is quick.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _load(args):
    from .models import load_model

    return load_model(args.model, device=args.device, dtype=args.dtype, device_map=args.device_map)


def cmd_run(args) -> int:
    from .pipeline import Protocol, run_task
    from .tasks import load_task

    task = load_task(args.task)  # fail on a bad task before loading the model
    model = _load(args)
    protocol = Protocol(seed=args.seed, layer=args.layer, top_k=args.top_k, sweep_layers=args.sweep_layers,
                        n_mean_prompts=args.n_mean_prompts, n_scan_prompts=args.n_scan_prompts,
                        layer_rule=args.layer_rule, filter_correct=not args.no_filter,
                        natural_text=args.natural_text, portability=args.portability, center=args.center)
    result = run_task(model, task, protocol)
    result.save(args.out)
    print(result)
    print(f"wrote {Path(args.out) / 'result.json'} and {Path(args.out) / 'function_vector.safetensors'}")
    return 0


def cmd_icl(args) -> int:
    from .evaluate import accuracy
    from .models import model_info
    from .pipeline import encode
    from .prompts import sample_prompts
    from .tasks import load_task

    tasks = [load_task(t) for t in args.tasks]
    model = _load(args)
    rows = []
    for task in tasks:
        split = task.split(seed=args.seed)
        accs = {}
        for kind, n_shot in (("icl", 10), ("zero_shot", 0), ("shuffled", 10)):
            prompts = encode(model, sample_prompts(split, None, n_shot, kind, "test", seed=args.seed))
            accs[kind] = accuracy(model, prompts).top1
        n = len(prompts)  # test queries whose answer token can be scored
        rows.append({"task": task.name, **accs, "n": n})
        print(f"{task.name:<24} 10-shot {accs['icl']:6.1%}   zero-shot {accs['zero_shot']:6.1%}   "
              f"shuffled {accs['shuffled']:6.1%}   (n={n})", flush=True)
    if args.out:
        from .cache import write_json

        write_json(args.out, {"model": model_info(model).name, "seed": args.seed, "rows": rows})
    return 0


CONDITIONS = ["icl", "zero_shot", "zero_shot_fv", "shuffled", "shuffled_fv", "mean_state", "task_vector"]


def cmd_merge(args) -> int:
    from .cache import read_json, write_json

    missing = [d for d in args.dirs if not (Path(d) / "result.json").exists()]
    if missing:
        print(f"no result.json in {', '.join(missing)}: pass folders written by `workbench run --out`", file=sys.stderr)
        return 2
    results = [read_json(Path(d) / "result.json") for d in args.dirs]
    if not results:
        print("no result directories given", file=sys.stderr)
        return 2
    models = {r["model"] for r in results}
    if len(models) > 1:
        print(f"results come from different models {sorted(models)}; merge one model at a time", file=sys.stderr)
        return 2
    key = "accuracy_unfiltered" if args.unfiltered else "accuracy"
    header = "| task | layer | " + " | ".join(CONDITIONS) + " |"
    lines = [header, "|" + "---|" * (len(CONDITIONS) + 2)]
    for r in results:
        lines.append(f"| {r['task']} | {r['fv_layer']} | " + " | ".join(f"{100 * r[key][c]:.0f}" for c in CONDITIONS) + " |")
    mean = {c: sum(r[key][c] for r in results) / len(results) for c in CONDITIONS}
    lines.append("| **mean** | | " + " | ".join(f"**{100 * mean[c]:.0f}**" for c in CONDITIONS) + " |")
    print("\n".join(lines))
    import torch

    universal = torch.tensor([r["aie"] for r in results]).mean(0)
    if args.out:
        write_json(args.out, {"model": models.pop(), "tasks": [r["task"] for r in results], "mean": mean,
                              "key": key, "universal_aie": universal.tolist(), "table": lines})
    return 0


def cmd_figures(args) -> int:
    from .pipeline import Protocol
    from .report import paper_figures
    from .tasks import load_task

    for t in args.tasks:
        load_task(t)
    model = _load(args)
    protocol = Protocol(seed=args.seed, n_mean_prompts=args.n_mean_prompts, n_scan_prompts=args.n_scan_prompts)
    written = paper_figures(model, args.tasks, args.out, protocol, formats=args.formats,
                            composition_tasks=not args.no_composition, fresh=args.fresh)
    for key, paths in written.items():
        print(f"{key:<22} " + "  ".join(str(p) for p in paths))
    return 0


def cmd_compare(args) -> int:
    import torch

    from .cache import read_json
    from .scan import HeadScan
    from .studies import compare_scans

    runs = []
    for d in (args.a, args.b):
        if not (Path(d) / "result.json").exists():
            print(f"no result.json in {d}: pass folders written by `workbench run --out`", file=sys.stderr)
            return 2
        runs.append(read_json(Path(d) / "result.json"))
    a, b = runs
    if (a["model"], a["n_layers"], a["n_heads"]) != (b["model"], b["n_layers"], b["n_heads"]):
        print(f"{args.a} and {args.b} come from different models ({a['model']}, {b['model']})", file=sys.stderr)
        return 2
    scans = [HeadScan(torch.tensor(r["aie"])[None], model=r["model"], task=r["task"]) for r in runs]
    stats = compare_scans(*scans, k=args.k)
    print(f"{a['task']} (seed {a['protocol']['seed']}) vs {b['task']} (seed {b['protocol']['seed']}): "
          f"top-{args.k} overlap {stats['top_k_overlap']:.0%}, Spearman of the AIE maps {stats['spearman']:.2f}, "
          f"FV layers {a['fv_layer']} / {b['fv_layer']}, zero-shot + FV {a['accuracy']['zero_shot_fv']:.0%} / "
          f"{b['accuracy']['zero_shot_fv']:.0%}")
    return 0


def cmd_diagnose(args) -> int:
    from . import figures
    from .cache import write_json
    from .models import model_info
    from .pipeline import Protocol, run_task
    from .cache import read_json
    from .studies import head_count_grid, injection_diagnostics, state_tests
    from .tasks import load_task

    task = load_task(args.task)
    model = _load(args)
    result = run_task(model, task, Protocol(seed=args.seed, top_k=args.top_k, n_mean_prompts=args.n_mean_prompts,
                                            n_scan_prompts=args.n_scan_prompts))
    name = f"{model_info(model).name}_injection_{task.name}"
    path = Path(args.out) / f"{name}.json"
    old = read_json(path) if (args.reuse and path.exists()) else None
    if old and old.get("alphas") == args.alphas and old.get("heads") == [list(h) for h in result.fv.heads]:
        diag = old  # the same run's grid and baselines, already measured
    else:
        diag = injection_diagnostics(model, result, alphas=args.alphas, seed=args.seed)
    if args.counts:
        def measured(grid):  # reused only when asked for and the same grid
            return old is not None and grid and grid["counts"] == args.counts and grid["layers"] == (args.count_layers or diag["layers"])

        if not measured(diag.get("head_counts")):
            diag["head_counts"] = head_count_grid(model, result, args.counts, args.count_layers, seed=args.seed)
        if args.centered and not measured(diag.get("head_counts_centered")):
            diag["head_counts_centered"] = head_count_grid(model, result, args.counts, args.count_layers,
                                                           seed=args.seed, centered=True)
    if args.state_tests is not None and not (old and "state_tests" in diag):
        diag["state_tests"] = state_tests(model, result, args.state_tests or None, seed=args.seed)
    write_json(path, diag)
    paths = figures.export(figures.injection_figure(diag), name, args.out, args.formats)
    best = max((acc, diag["alphas"][a], layer) for a, row in enumerate(diag["zero_shot"]) for layer, acc in enumerate(row))
    print(f"zero-shot without FV {diag['baseline_zero_shot']:.0%}; best with FV {best[0]:.0%} "
          f"(alpha {best[1]}, layer {best[2]}); task-vector ceiling {max(diag['task_vector']):.0%} "
          f"(layer {diag['task_vector'].index(max(diag['task_vector']))})")
    print("wrote", Path(args.out) / f"{name}.json", *paths)
    return 0


def cmd_tasks(args) -> int:
    from .tasks import list_tasks, load_task, tasks_dir

    print(f"built-in tasks in {tasks_dir()}:")
    for name in list_tasks():
        t = load_task(name)
        print(f"  {name:<28} {len(t):>4} pairs   e.g. {t.pairs[0].input!r} -> {t.pairs[0].output!r}")
    return 0


def cmd_models(args) -> int:
    from .models import BUILTIN_MODELS, DEFAULT_MODEL

    for name, spec in BUILTIN_MODELS.items():
        star = " (default)" if name == DEFAULT_MODEL else ""
        print(f"  {name:<16}{star:<11} {spec.description}\n  {'':<27} weights: {spec.install}")
    print("  Any local HF folder, .gguf file, or Hugging Face Hub name (with network) also works.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .models import DEFAULT_MODEL

    parser = argparse.ArgumentParser(prog="workbench", description="Find, study and use function vectors.")
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p):
        p.add_argument("--model", default=DEFAULT_MODEL, help=f"built-in name, local path, .gguf or hub name (default {DEFAULT_MODEL})")
        p.add_argument("--device", default="cpu")
        p.add_argument("--device-map", default=None, metavar="auto|balanced",
                       help="shard a model over all visible GPUs with accelerate (replaces --device)")
        p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
        p.add_argument("--seed", type=int, default=0)

    run = sub.add_parser("run", help="the full protocol for one task")
    model_args(run)
    run.add_argument("--task", required=True, help="built-in task name or path to a JSON dataset")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--layer", type=int, default=None, help="add the FV after this block (default: best on valid)")
    run.add_argument("--layer-rule", default="sweep", choices=["sweep", "third"])
    run.add_argument("--top-k", type=int, default=None, help="heads in the FV (default: by model size)")
    run.add_argument("--sweep-layers", action="store_true", help="also report the test-split layer sweep")
    run.add_argument("--n-mean-prompts", type=int, default=100)
    run.add_argument("--n-scan-prompts", type=int, default=25)
    run.add_argument("--center", action="store_true",
                     help="FV terms: each head's clean mean output minus its zero-shot mean output (needed on Gemma 3)")
    run.add_argument("--no-filter", action="store_true", help="do not restrict extraction to queries ICL gets right")
    run.add_argument("--natural-text", action="store_true", help="also score greedy generations from natural-text templates")
    run.add_argument("--portability", action="store_true", help="also score zero-shot prompts in 20 other formats")
    run.set_defaults(func=cmd_run)

    icl = sub.add_parser("icl", help="10-shot, zero-shot and shuffled-label accuracy per task")
    model_args(icl)
    icl.add_argument("--tasks", nargs="+", default=["antonym", "capitalize", "country-capital", "present-past"])
    icl.add_argument("--out", default=None, help="also write the table as JSON")
    icl.set_defaults(func=cmd_icl)

    merge = sub.add_parser("merge", help="combine result folders of one model into one table")
    merge.add_argument("dirs", nargs="+")
    merge.add_argument("--out", default=None)
    merge.add_argument("--unfiltered", action="store_true")
    merge.set_defaults(func=cmd_merge)

    figs = sub.add_parser("figures", help="paper-style figures for some tasks (the first is featured)")
    model_args(figs)
    figs.add_argument("--tasks", nargs="+", default=["antonym", "capitalize", "present-past", "country-capital"])
    figs.add_argument("--out", default="figures")
    figs.add_argument("--formats", nargs="+", default=["html", "png", "pdf"])
    figs.add_argument("--n-mean-prompts", type=int, default=100)
    figs.add_argument("--n-scan-prompts", type=int, default=25)
    figs.add_argument("--no-composition", action="store_true", help="skip the composed-task figure")
    figs.add_argument("--fresh", action="store_true", help="recompute every stage instead of using the cache")
    figs.set_defaults(func=cmd_figures)

    diag = sub.add_parser("diagnose", help="why an FV does or doesn't work zero-shot: layer x scale grid, "
                                           "task-vector ceiling, FV size against the residual")
    model_args(diag)
    diag.add_argument("--task", required=True)
    diag.add_argument("--top-k", type=int, default=None)
    diag.add_argument("--alphas", type=float, nargs="+", default=[0.5, 1, 2, 4, 8, 16])
    diag.add_argument("--counts", type=int, nargs="*", default=[], help="also a heads x layer grid with these head counts")
    diag.add_argument("--centered", action="store_true",
                      help="also that grid with each head's zero-shot mean output subtracted")
    diag.add_argument("--count-layers", type=int, nargs="*", default=None, help="layers of that grid (default: all)")
    diag.add_argument("--state-tests", type=int, nargs="*", default=None, metavar="LAYER",
                      help="also replace the last state by the mean ICL state, and add mean ICL - mean zero-shot "
                           "(at these layers; none given: all)")
    diag.add_argument("--reuse", action="store_true", help="keep the alpha grid and baselines of an earlier identical run")
    diag.add_argument("--n-mean-prompts", type=int, default=100)
    diag.add_argument("--n-scan-prompts", type=int, default=25)
    diag.add_argument("--out", default="figures")
    diag.add_argument("--formats", nargs="+", default=["html", "png"])
    diag.set_defaults(func=cmd_diagnose)

    cmp = sub.add_parser("compare", help="how far two runs' head scans agree (e.g. two seeds)")
    cmp.add_argument("a")
    cmp.add_argument("b")
    cmp.add_argument("--k", type=int, default=10)
    cmp.set_defaults(func=cmd_compare)

    sub.add_parser("tasks", help="list built-in tasks").set_defaults(func=cmd_tasks)
    sub.add_parser("models", help="list built-in models").set_defaults(func=cmd_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .models import ModelLoadError
    from .tasks import TaskError

    try:
        return args.func(args)
    except (TaskError, ModelLoadError, IndexError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
