"""The ``workbench`` command line: it parses arguments and calls the package, nothing else.

    workbench run --model M --task T --out DIR [--seed S] [--layer L] [--top-k K] [--sweep-layers]
    workbench suite --tasks FILES_OR_DIRS... --out DIR [--max-eval-queries N]   # many tasks, universal FV
    workbench icl --model M --tasks T1 T2 ...     # 10-shot / zero-shot / shuffled accuracy table
    workbench merge DIR1 DIR2 ... [--out FILE]    # one table (and universal AIE) from many runs
    workbench figures --model M --tasks T1 T2 ... --out figures/   # every paper figure
    workbench study NAME --runs DIR --tasks T1 T2 ... [--out DIR --figures DIR]   # a study of finished runs
    workbench diagnose --model M --task T [--counts K ...] [--state-tests]   # the run, then `study diagnose`
    workbench compare DIR_A DIR_B [--k 10]        # how far two runs' head scans agree (e.g. two seeds)
    workbench explore RUN_DIR --out page.html [--others DIR ...]   # a linked, offline explorer of the heads
    workbench export RUN_DIR --out FILE.gguf [--layer L] [--scale S]   # the FV as a llama.cpp control vector
    workbench plan --model gptj-6b --dtype bfloat16 --device cuda --gpu-memory 80GiB   # memory per stage
    workbench tasks | workbench models

The studies and their flags come from :data:`workbench.studies.registry.STUDIES` (``workbench study
--help`` lists them); no study is named here.

``run`` writes ``DIR/result.json``, ``DIR/function_vector.safetensors`` and ``DIR/tensors.safetensors``;
stages are cached (``$WORKBENCH_CACHE``), so rerunning with the same arguments is quick, and an
interrupted run resumes where it stopped.

Every mistake the workbench can recognise ends in one line, ``error: ...``, saying what is wrong and
what to do (exit status 2); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def count_int(text: str) -> int:
    return _int_at_least(text, 0)


def _checked(check, convert=int, kind="a whole number"):
    """An argparse type: ``convert`` the text, then the package's own ``check`` of that value."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            return check(value)
        except (ValueError, IndexError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def _arg_types():
    from .base.checks import check_finite, check_layer, check_seed
    from .show.formats import check_formats

    return {
        "layer": _checked(check_layer),
        "seed": _checked(check_seed),
        "finite": _checked(lambda x: check_finite(x, "the value"), float, "a number"),
        "format": _checked(lambda f: check_formats([f])[0], str),
    }


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least {low}, got {text}")
    return value


def _load(args):
    from .core.loading import load_model

    return load_model(
        args.model,
        device=args.device,
        dtype=args.dtype,
        device_map=args.device_map,
        unverified=getattr(args, "unverified", False),
    )


def _check_out_file(path) -> None:
    from .base.files import check_writable_file

    try:
        check_writable_file(path)
    except OSError as e:
        raise OutputError(str(e)) from None


def _check_out_folder(path) -> None:
    from .base.files import check_writable_folder

    try:
        check_writable_folder(path)
    except OSError as e:
        raise OutputError(str(e)) from None


class OutputError(ValueError):
    """The output path cannot be written."""


def _protocol(args, **extra):
    from .method.protocol import Protocol

    return Protocol(
        seed=args.seed, n_mean_prompts=args.n_mean_prompts, n_scan_prompts=args.n_scan_prompts, **extra
    )


def _run_protocol(args, **extra):
    """The Protocol of `run`'s protocol options (:func:`protocol_args`)."""
    return _protocol(
        args,
        layer=args.layer,
        top_k=args.top_k,
        sweep_layers=args.sweep_layers,
        layer_rule=args.layer_rule,
        filter_correct=not args.no_filter,
        natural_text=args.natural_text,
        portability=args.portability,
        center=args.center,
        head_count_rule=args.head_count_rule,
        scan_method=args.scan_method,
        scan_candidates=args.scan_candidates,
        **extra,
    )


def cmd_run(args) -> int:
    from .base.stage_cache import StageCache
    from .core.model import model_id
    from .data.tasks import load_task
    from .method.pipeline import run_task
    from .method.result import check_output_folder

    task = load_task(args.task)  # fail on a bad task, output folder or cache before loading the model
    _check_out_folder(args.out)
    StageCache().check_writable()
    protocol = _run_protocol(args)
    model = _load(args)
    check_output_folder(args.out, task.digest, model_id(model), protocol, args.overwrite)
    result = run_task(model, task, protocol)
    result.save(args.out, overwrite=args.overwrite)
    print(result)
    print(
        "wrote " + ", ".join(str(Path(args.out) / n) for n in ("result.json", "function_vector.safetensors"))
    )
    return 0


def cmd_suite(args) -> int:
    import functools

    from .core.loading import load_model
    from .method.suite import run_suite
    from .show.suite_figures import suite_figures

    _check_out_folder(args.out)
    protocol = _run_protocol(args, max_eval_queries=args.max_eval_queries)
    executor = _slurm_executor(args) if args.slurm else None
    # on an executor each job loads the model itself, with the options given here
    loader = functools.partial(
        load_model, args.model, device=args.device, dtype=args.dtype, unverified=args.unverified
    )
    suite = run_suite(
        loader if executor is not None else _load(args),
        args.tasks,
        args.out,
        protocol,
        margin=args.margin,
        executor=executor,
        unverified=args.unverified,
        command=args.command_line,
    )
    figures = suite_figures(suite, Path(args.out) / "figures", args.formats)
    print(suite)
    print("wrote", Path(args.out) / "suite.json", Path(args.out) / "suite.md", *figures)
    return 0


def _slurm_executor(args):
    """A submitit executor for `suite --slurm` (``--slurm-cluster local``: the jobs as local processes)."""
    import submitit

    executor = submitit.AutoExecutor(folder=Path(args.out) / "slurm", cluster=args.slurm_cluster)
    params = {"timeout_min": args.slurm_minutes, "cpus_per_task": args.slurm_cpus}
    if args.slurm_partition:
        params["slurm_partition"] = args.slurm_partition
    if args.slurm_gpus:
        params["gpus_per_node"] = args.slurm_gpus
    executor.update_parameters(**params)
    return executor


def cmd_plan(args) -> int:
    from .base.files import write_json
    from .core.plan import parse_bytes, plan_model
    from .data.tasks import load_task

    plan = plan_model(
        args.model,
        dtype=args.dtype,
        device=args.device,
        memory=None if args.gpu_memory is None else parse_bytes(args.gpu_memory),
        device_map=args.device_map,
        n_devices=args.gpus,
        protocol=_protocol(args, n_shot=args.n_shot, sweep_layers=args.sweep_layers),
        task=load_task(args.task),
        variant_batch=args.variant_batch,
        prompt_tokens=args.prompt_tokens,
    )
    print(plan)
    if args.json:
        write_json(args.json, plan.to_dict())
    return 0 if plan.fits else 3


def cmd_icl(args) -> int:
    from .base.files import write_json
    from .core.model import model_info
    from .data.tasks import load_task
    from .method.evaluate import icl_screen
    from .method.protocol import Protocol

    tasks = [load_task(t) for t in args.tasks]
    if args.out:
        _check_out_file(args.out)
    model = _load(args)
    rows = []
    for task in tasks:
        row = icl_screen(model, task, Protocol(seed=args.seed))
        rows.append(row)
        print(
            f"{task.name:<24} 10-shot {row['icl']:6.1%}   zero-shot {row['zero_shot']:6.1%}   "
            f"shuffled {row['shuffled']:6.1%}   (n={row['n']})",
            flush=True,
        )
    if args.out:
        write_json(args.out, {"model": model_info(model).name, "seed": args.seed, "rows": rows})
    return 0


def cmd_merge(args) -> int:
    from .base.files import write_json
    from .method.result import TaskResult
    from .studies.agreement import merge_results

    if args.out:
        _check_out_file(args.out)
    merged = merge_results(
        [TaskResult.load(d) for d in args.dirs], unfiltered=args.unfiltered, whole_answer=args.whole_answer
    )
    print("\n".join(merged.markdown()))
    if args.out:
        write_json(args.out, merged.to_json())
    return 0


def cmd_figures(args) -> int:
    from .data.tasks import load_task
    from .show.report import paper_figures

    tasks = [load_task(t) for t in args.tasks]
    _check_out_folder(args.out)
    written = paper_figures(
        _load(args),
        tasks,
        args.out,
        _protocol(args),
        formats=args.formats,
        composition_tasks=not args.no_composition,
        fresh=args.fresh,
    )
    for key, paths in written.items():
        print(f"{key:<22} " + "  ".join(str(p) for p in paths))
    return 0


def cmd_compare(args) -> int:
    from .method.result import TaskResult
    from .studies.agreement import compare_runs, describe_comparison

    print(describe_comparison(compare_runs(TaskResult.load(args.a), TaskResult.load(args.b), k=args.k)))
    return 0


def cmd_explore(args) -> int:
    from .show.explore import explore

    _check_out_file(args.out)
    explorer = explore(args.run_dir, model=args.model, others=args.others, top=args.top, device=args.device)
    print(explorer)
    print(f"wrote {explorer.save(args.out)}")
    return 0


def _study_given(args, studies) -> dict:
    """The study arguments given on the command line (flags left out are ``None``)."""
    names = {p.name for study in studies for p in study.params}
    return {name: getattr(args, name) for name in sorted(names) if getattr(args, name, None) is not None}


def cmd_diagnose(args) -> int:
    from .data.tasks import load_task
    from .method.pipeline import run_task
    from .show.report import run_study
    from .studies.diagnose import check_diagnose_values
    from .studies.registry import STUDIES

    task = load_task(args.task)
    given = _study_given(args, [STUDIES["diagnose"]])
    STUDIES["diagnose"].arguments(**given)  # fail on bad input before loading the model
    _check_out_folder(args.out)
    model = _load(args)
    check_diagnose_values(model, args.alphas or (), args.count_layers, args.state_tests)
    result = run_task(model, task, _protocol(args, top_k=args.top_k))
    study = run_study(
        "diagnose",
        model,
        [task.name],
        runs={task.name: result},
        out=args.out,
        figures_dir=args.out,
        formats=args.formats,
        command=args.command_line,
        **given,
    )
    print(study)
    print("wrote", *study.written)
    return 0


def cmd_study(args) -> int:
    from .core.loading import DEFAULT_MODEL
    from .show.report import run_study
    from .studies.registry import STUDIES, load_runs, runs_model, study_params

    runs = load_runs(args.runs, args.tasks, args.name)  # fail on bad input before loading the model
    given = _study_given(args, STUDIES.values())
    study_params(args.name, **given)
    _check_out_folder(args.out)
    _check_out_folder(args.figures)
    args.model = args.model or runs_model(runs) or DEFAULT_MODEL
    study = run_study(
        args.name,
        _load(args),
        args.tasks,
        runs_dir=args.runs,
        out=args.out,
        figures_dir=args.figures,
        formats=args.formats,
        command=args.command_line,
        **given,
    )
    print(study)
    print("wrote", *study.written)
    return 0


def cmd_export(args) -> int:
    from .beyond.export import export_control_vector
    from .core.loading import load_model
    from .core.model import model_info
    from .method.result import TaskResult

    if Path(args.out).suffix != ".gguf":
        raise OutputError(f"--out {args.out}: name a .gguf file (llama.cpp reads control vectors as GGUF)")
    result = TaskResult.load(args.run_dir)
    layer = result.fv_layer if args.layer is None else args.layer
    if layer == 0:
        raise ExportRefused(
            "llama.cpp cannot add a control vector after block 0 (its loader rejects direction.0)"
            + (": this run's FV sits there; " if args.layer is None else "; ")
            + "give --layer L with L >= 1 (the FV added at another layer acts differently: "
            "`workbench diagnose` measures it by layer)"
        )
    _check_out_folder(Path(args.out).parent)
    model = load_model(args.model or result.model, device=args.device, verbose=False)
    result.check_model(model)
    path = export_control_vector(result.fv, args.out, model=model, layer=layer, scale=args.scale)
    block = model_info(model).check_layer(layer)
    print(
        f"wrote {path}: the FV of {result.task.name} ({len(result.fv.heads)} heads, {result.model}) as "
        f"direction.{block} (added after block {block}), scale "
        f"{args.scale:g}.\nllama.cpp adds it at every position: load it with --control-vector-scaled "
        f"{path} 1.0; `workbench study positions` measures what every position does to this FV"
    )
    return 0


class ExportRefused(ValueError):
    """A control vector llama.cpp could not use."""


def cmd_tasks(args) -> int:
    from .data.tasks import list_tasks, load_task, tasks_dir

    print(f"built-in tasks in {tasks_dir()}:")
    for name in list_tasks():
        t = load_task(name)
        print(f"  {name:<28} {len(t):>4} pairs   e.g. {t.pairs[0].input!r} -> {t.pairs[0].output!r}")
    return 0


def cmd_models(args) -> int:
    from .core.loading import BUILTIN_MODELS, DEFAULT_MODEL

    for name, spec in BUILTIN_MODELS.items():
        star = " (default)" if name == DEFAULT_MODEL else ""
        print(f"  {name:<16}{star:<11} {spec.description}\n  {'':<27} weights: {spec.install}")
    print("  Any local HF folder, .gguf file, or Hugging Face Hub name (with network) also works.")
    return 0


def cmd_architectures(args) -> int:
    from .core.support import write_architecture_table

    return write_architecture_table(args.out, args.families or None)


def study_table(studies) -> str:
    """The ``study`` command's description: each study, its summary and its flags."""
    lines = ["A study of finished runs (`workbench run --out RUNS/<task>` for each task). The studies:", ""]
    for study in studies:
        lines.append(f"  {study.name:<11} {study.summary}")
        if study.params:
            lines.append(f"  {'':<11} flags: {' '.join(p.flag for p in study.params)}")
    return "\n".join(lines).replace("%", "%%")


def study_flags(parser: argparse.ArgumentParser, studies) -> None:
    """One flag per study parameter (``Param``), generated: a name several studies take is one flag
    whose help names each study's meaning and default; every flag defaults to ``None`` (not given),
    and the study's record applies its own default and checks."""
    studies = list(studies)
    uses: dict = {}
    for study in studies:
        for p in study.params:
            uses.setdefault(p.name, []).append((study, p))
    for name, pairs in uses.items():
        first = pairs[0][1]
        if any((p.type, p.many) != (first.type, first.many) for _, p in pairs):
            raise TypeError(f"studies take --{name} as different types: {[s.name for s, _ in pairs]}")

        def meaning(p):
            if isinstance(p.default, list | tuple):
                shown = " ".join(map(str, p.default)) or "none"
            else:
                shown = str(p.default)
            default = "" if p.default is None or p.type is bool else f" (default {shown})"
            return p.help + default

        helps = [meaning(p) if len(studies) == 1 else f"{s.name}: {meaning(p)}" for s, p in pairs]
        kwargs = {"dest": name, "default": None, "help": "; ".join(helps).replace("%", "%%")}
        if first.type is bool:
            parser.add_argument(first.flag, action="store_true", **kwargs)
        else:
            metavar = first.metavar or name.upper()
            parser.add_argument(
                first.flag, type=_param_type(first), nargs=first.many, metavar=metavar, **kwargs
            )


def _param_type(p):
    if p.type is int:
        return (lambda text: _int_at_least(text, int(p.low))) if p.low is not None else int
    return _arg_types()["finite"] if p.type is float else p.type


def build_parser() -> argparse.ArgumentParser:
    from .core.loading import DEFAULT_MODEL

    parser = argparse.ArgumentParser(prog="workbench", description="Find, study and use function vectors.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    types = _arg_types()
    sub = parser.add_subparsers(dest="command", required=True)

    def variant_batch_arg(p):
        p.add_argument(
            "--variant-batch",
            type=positive_int,
            default=None,
            metavar="N",
            help="at most N last-token variants per forward in every stage (default: from free memory); "
            "lower it if memory runs out: the numbers stay the same",
        )

    def model_args(p):
        p.add_argument(
            "--model",
            default=DEFAULT_MODEL,
            help=f"built-in name, local path, .gguf or hub name (default {DEFAULT_MODEL})",
        )
        p.add_argument("--device", default="cpu")
        p.add_argument(
            "--device-map",
            default=None,
            metavar="auto|balanced",
            help="shard a model over all visible GPUs with accelerate (replaces --device)",
        )
        p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
        p.add_argument("--seed", type=types["seed"], default=0, help="0 .. 2**64 - 1")
        p.add_argument(
            "--unverified",
            action="store_true",
            help="go on with a model that fails its self-check, at your own risk (results record it)",
        )
        variant_batch_arg(p)

    def protocol_args(run):
        """The protocol options of `run` (and of `suite`, which runs it on many tasks)."""
        run.add_argument(
            "--layer",
            type=types["layer"],
            default=None,
            help="add the FV after this block (default: best on valid)",
        )
        run.add_argument("--layer-rule", default="sweep", choices=["sweep", "third"])
        run.add_argument(
            "--top-k", type=positive_int, default=None, help="heads in the FV (default: by model size)"
        )
        run.add_argument(
            "--head-count-rule",
            default="fixed",
            choices=["fixed", "valid"],
            help="fixed: the paper's top-k (--top-k); valid: the count best on the validation split, "
            "chosen jointly with the layer",
        )
        run.add_argument("--sweep-layers", action="store_true", help="also report the test-split layer sweep")
        run.add_argument("--n-mean-prompts", type=positive_int, default=100)
        run.add_argument("--n-scan-prompts", type=positive_int, default=25)
        run.add_argument(
            "--center",
            action="store_true",
            help="FV terms: each head's clean mean output minus its zero-shot mean output "
            "(needed on Gemma 3)",
        )
        run.add_argument(
            "--no-filter", action="store_true", help="do not restrict extraction to queries ICL gets right"
        )
        run.add_argument(
            "--natural-text",
            action="store_true",
            help="also score greedy generations from natural-text templates",
        )
        run.add_argument(
            "--portability", action="store_true", help="also score zero-shot prompts in 20 other formats"
        )
        run.add_argument(
            "--scan-method",
            default="exact",
            choices=["exact", "hybrid"],
            help="exact: every head patched; hybrid: attribution patching ranks every head and only the "
            "top --scan-candidates are patched exactly (for very large models)",
        )
        run.add_argument(
            "--scan-candidates",
            type=positive_int,
            default=None,
            metavar="N",
            help="heads the hybrid scan patches exactly (default: a tenth of the heads, at least 50)",
        )

    run = sub.add_parser("run", help="the full protocol for one task")
    model_args(run)
    run.add_argument("--task", required=True, help="built-in task name or path to a JSON dataset")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument(
        "--overwrite", action="store_true", help="replace a result of another run already in --out"
    )
    protocol_args(run)
    run.set_defaults(func=cmd_run)

    suite = sub.add_parser(
        "suite", help="the paper's experiment over many tasks: runs, universal heads and FV"
    )
    model_args(suite)
    suite.add_argument(
        "--tasks", nargs="+", required=True, help="task files, folders of them, or built-in names"
    )
    suite.add_argument(
        "--out", required=True, help="output folder: one subfolder per task, suite.json, suite.md"
    )
    protocol_args(suite)
    suite.add_argument(
        "--max-eval-queries",
        type=positive_int,
        default=None,
        metavar="N",
        help="evaluate at most N test queries per task, drawn with the seed (default: the whole test split)",
    )
    suite.add_argument(
        "--margin",
        type=float,
        default=0.1,
        help="universal heads come from the tasks whose clean ICL beats their majority baseline by more than "
        "this share (default 0.1)",
    )
    suite.add_argument("--formats", nargs="+", type=types["format"], default=["html", "png"])
    suite.add_argument(
        "--slurm", action="store_true", help="one submitit job per task, then the universal step"
    )
    suite.add_argument(
        "--slurm-cluster", default=None, help="submitit cluster: slurm (default: detected), local, debug"
    )
    suite.add_argument("--slurm-partition", default=None)
    suite.add_argument("--slurm-minutes", type=positive_int, default=120, help="time limit of each job")
    suite.add_argument("--slurm-cpus", type=positive_int, default=4)
    suite.add_argument("--slurm-gpus", type=count_int, default=0)
    suite.set_defaults(func=cmd_suite)

    plan = sub.add_parser(
        "plan", help="peak memory, variant batch and work of each stage of `run`, before loading anything"
    )
    plan.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="a known config (gptj-6b, llama-2-70b, ...), built-in or tiny model, folder or config.json",
    )
    plan.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    plan.add_argument("--device", default="cpu", help="cpu or cuda")
    plan.add_argument(
        "--gpu-memory", default=None, metavar="SIZE", help="memory per device, e.g. 80GiB (default: detected)"
    )
    plan.add_argument("--device-map", default=None, metavar="auto|balanced", help="weights spread over GPUs")
    plan.add_argument("--gpus", type=positive_int, default=None, help="GPUs of the device map")
    plan.add_argument("--task", default="antonym", help="the task whose split sizes count the prompts")
    plan.add_argument("--n-shot", type=positive_int, default=10)
    plan.add_argument("--n-mean-prompts", type=positive_int, default=100)
    plan.add_argument("--n-scan-prompts", type=positive_int, default=25)
    plan.add_argument("--sweep-layers", action="store_true")
    plan.add_argument("--seed", type=int, default=0)
    plan.add_argument(
        "--prompt-tokens", type=positive_int, default=None, help="tokens of a prompt (default: 9 per shot)"
    )
    plan.add_argument("--json", default=None, metavar="FILE", help="also write the plan as JSON")
    variant_batch_arg(plan)
    plan.set_defaults(func=cmd_plan)

    icl = sub.add_parser("icl", help="10-shot, zero-shot and shuffled-label accuracy per task")
    model_args(icl)
    icl.add_argument(
        "--tasks", nargs="+", default=["antonym", "capitalize", "country-capital", "present-past"]
    )
    icl.add_argument("--out", default=None, help="also write the table as JSON")
    icl.set_defaults(func=cmd_icl)

    merge = sub.add_parser("merge", help="combine result folders of one model into one table")
    merge.add_argument("dirs", nargs="+")
    merge.add_argument("--out", default=None)
    merge.add_argument(
        "--unfiltered", action="store_true", help="every test query, not only those ICL gets right"
    )
    merge.add_argument(
        "--whole-answer",
        action="store_true",
        help="score each condition on the whole answer (every token top-1), not its first token",
    )
    merge.set_defaults(func=cmd_merge)

    figs = sub.add_parser("figures", help="paper-style figures for some tasks (the first is featured)")
    model_args(figs)
    figs.add_argument(
        "--tasks", nargs="+", default=["antonym", "capitalize", "present-past", "country-capital"]
    )
    figs.add_argument("--out", default="figures")
    figs.add_argument(
        "--formats", nargs="+", type=types["format"], default=["html", "png", "pdf"], help="html png pdf svg"
    )
    figs.add_argument("--n-mean-prompts", type=positive_int, default=100)
    figs.add_argument("--n-scan-prompts", type=positive_int, default=25)
    figs.add_argument(
        "--no-composition",
        action="store_true",
        help="skip the composed-task figure; without this flag it also runs the built-in composed tasks "
        "and their parts that --tasks does not name (e.g. first-item-capitalize, choose-first-of-3), and "
        "says which before it starts",
    )
    figs.add_argument("--fresh", action="store_true", help="recompute every stage instead of using the cache")
    figs.set_defaults(func=cmd_figures)

    from .studies.registry import STUDIES

    diag = sub.add_parser(
        "diagnose",
        help=STUDIES["diagnose"].summary + " (makes the run of --task, then `workbench study diagnose`)",
    )
    model_args(diag)
    diag.add_argument("--task", required=True)
    diag.add_argument("--top-k", type=positive_int, default=None)
    diag.add_argument("--n-mean-prompts", type=positive_int, default=100)
    diag.add_argument("--n-scan-prompts", type=positive_int, default=25)
    diag.add_argument("--out", default="figures", help="where the JSON and the figure go")
    diag.add_argument("--formats", nargs="+", type=types["format"], default=["html", "png"])
    study_flags(diag, [STUDIES["diagnose"]])
    diag.set_defaults(func=cmd_diagnose)

    cmp = sub.add_parser("compare", help="how far two runs' head scans agree (e.g. two seeds)")
    cmp.add_argument("a")
    cmp.add_argument("b")
    cmp.add_argument(
        "--k",
        type=positive_int,
        default=None,
        help="top-k heads to compare (default 10, or all on a smaller model)",
    )
    cmp.set_defaults(func=cmd_compare)

    exp = sub.add_parser("explore", help="one self-contained HTML page exploring a run's heads")
    exp.add_argument("run_dir", help="a folder written by `workbench run --out`")
    exp.add_argument("--out", required=True, help="the HTML page to write")
    exp.add_argument(
        "--others", nargs="*", default=[], help="other runs of the same model: each head's rank there"
    )
    exp.add_argument(
        "--top", type=positive_int, default=16, help="heads with precomputed patterns and add/remove"
    )
    exp.add_argument("--model", default=None, help="load the run's model from here (default: its name)")
    exp.add_argument("--device", default="cpu")
    exp.set_defaults(func=cmd_explore)

    study = sub.add_parser(
        "study",
        help="a study of finished runs: " + ", ".join(STUDIES),
        description=study_table(STUDIES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    study.add_argument("name", help=" | ".join(STUDIES))
    study.add_argument("--runs", default=None, help="folder of finished runs, one subfolder per task")
    study.add_argument("--tasks", nargs="+", required=True, help="the tasks (subfolders of --runs)")
    study.add_argument("--model", default=None, help="default: the runs' own model")
    study.add_argument("--device", default="cpu")
    study.add_argument("--device-map", default=None, metavar="auto|balanced")
    study.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    variant_batch_arg(study)
    study.add_argument("--out", default="runs/studies", help="where the JSON goes")
    study.add_argument("--figures", default="figures", help="where the figures go")
    study.add_argument("--formats", nargs="+", type=types["format"], default=["html", "png"])
    study_flags(study, STUDIES.values())
    study.set_defaults(func=cmd_study)

    export = sub.add_parser("export", help="a run's FV as a llama.cpp control vector (GGUF)")
    export.add_argument("run_dir", help="a folder written by `workbench run --out`")
    export.add_argument("--out", required=True, help="the .gguf file to write")
    export.add_argument(
        "--layer", type=int, default=None, help="add it after this block (default: the run's FV layer; >= 1)"
    )
    export.add_argument(
        "--scale", type=float, default=1.0, help="multiply the stored vector (default 1; not 0)"
    )
    export.add_argument("--model", default=None, help="the run's model, from here (default: its name)")
    export.add_argument("--device", default="cpu")
    export.set_defaults(func=cmd_export)

    sub.add_parser("tasks", help="list built-in tasks").set_defaults(func=cmd_tasks)
    sub.add_parser("models", help="list built-in models").set_defaults(func=cmd_models)
    arch = sub.add_parser(
        "architectures", help="self-check tiny models of every decoder family: the docs' architecture table"
    )
    arch.add_argument("--out", default=None, help="also write the Markdown table and JSON rows here (.md)")
    arch.add_argument("families", nargs="*", help="only these families (default: all)")
    arch.set_defaults(func=cmd_architectures)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .core.forward import variant_batch

    args = build_parser().parse_args(argv)
    args.command_line = "workbench " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        with variant_batch(getattr(args, "variant_batch", None)):
            return args.func(args)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: every finished stage (and chunk of a long one) is saved in the cache; "
            "rerun the same command to resume.",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # `workbench tasks | head`: the reader left; say nothing more
        _silence_stdout()
        return 0
    except Exception as e:  # noqa: BLE001 - every error ends in one line unless --debug
        if args.debug:
            raise
        if isinstance(e, _user_errors()):
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(
            f"error: {type(e).__name__}: {e}\n(this looks like a bug in the workbench; rerun with --debug "
            "for the traceback and report it)",
            file=sys.stderr,
        )
        return 1


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors that mean bad input, not a bug: their message is the whole story."""
    from .base.checks import BadSeed, NotFinite, OutOfRange
    from .base.files import CorruptFileError
    from .base.stage_cache import CacheUnwritable
    from .beyond.export import ExportError
    from .core.model import ModelLoadError, NotAModel, VectorMismatch
    from .core.plan import PlanError
    from .data.contrasts import ContrastFileError
    from .data.tasks import TaskError
    from .method.protocol import ProtocolError
    from .method.result import ResultFileError, ResultMismatch
    from .show.formats import FormatError
    from .studies.study import StudyError

    return (
        NotFinite,
        BadSeed,
        NotAModel,
        CacheUnwritable,
        FormatError,
        StudyError,
        ExportError,
        ExportRefused,
        TaskError,
        ModelLoadError,
        OutOfRange,
        ProtocolError,
        ResultFileError,
        ResultMismatch,
        VectorMismatch,
        ContrastFileError,
        CorruptFileError,
        OutputError,
        PlanError,
    )


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at devnull so Python's exit flush raises nothing."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
