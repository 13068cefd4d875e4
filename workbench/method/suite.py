"""The paper's experiment over many tasks: every task's run, the universal heads, the universal FV.

    tasks -> run_task per task (saved in OUT/<task>/, read back when complete)
          -> universal heads: mean AIE over the tasks whose clean ICL beats their majority baseline
          -> on every task: the universal FV (that task's mean head outputs summed over the universal
             heads) at its own validation layer, beside the per-task FV and the baselines
          -> SuiteResult: suite.json, suite.md (the table), figures

A task is *a source of the universal heads* when its clean ICL top-1 on the validation queries beats
the majority-label baseline of those queries' answers by more than ``margin`` (recorded).  The
universal AIE map is :func:`workbench.core.scan.universal_map` of the sources' AIE maps (each task
weighted equally, as in :func:`workbench.studies.agreement.merge_results`), and the universal heads
are its top ``k``: ``protocol.top_k`` (or the model's default), or, with
``protocol.head_count_rule == "valid"``, the count of ``protocol.head_counts`` whose universal FV
scores best on the validation split (zero-shot + shuffled top-1 at each task's best layer, averaged
over the tasks that ran).

Every task's run stays a :class:`~workbench.method.result.TaskResult` folder, so ``merge`` and the
studies work on a suite's runs.  Where one machine is not enough, ``executor`` (a submitit executor,
e.g. ``submitit.AutoExecutor(folder)``) runs one job per task, then one job for the universal step.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..base.files import atomic_path, read_json, write_json
from ..base.stage_cache import StageCache
from ..core.model import model_id, model_info
from ..core.scan import HeadScan, top_heads, universal_map
from ..data.label_baselines import label_baselines
from ..data.tasks import Task, TaskError, load_task
from .evaluate import Accuracy, head_count_grid_accuracy
from .pipeline import CONDITIONS, Stages, choose_layer, evaluation, heads_function_vector, run_task
from .protocol import Protocol, ProtocolError
from .result import ResultFileError, TaskResult
from .vectors import default_top_k

__all__ = ["run_suite", "SuiteResult", "SuiteRow", "suite_tasks", "PAPER_MAIN_TASKS", "DEFAULT_MARGIN"]

PAPER_MAIN_TASKS = (
    "antonym",
    "capitalize",
    "country-capital",
    "english-french",
    "present-past",
    "singular-plural",
)
DEFAULT_MARGIN = 0.1  # clean ICL must beat the majority baseline by more than 10 points
FV_CONDITIONS = ("zero_shot_fv", "shuffled_fv")  # the conditions the FV changes
LAYER_CONDITIONS = ("mean_state", "task_vector")  # the FV-free conditions set at the FV's layer


@dataclass(frozen=True)
class SuiteTask:
    """One task given to the suite: where it came from, its folder name, and the task or why not."""

    source: str
    slug: str
    task: Task | None = None
    status: str = "ran"  # what it will be if nothing fails: ran | skipped | error
    error: str | None = None


def suite_tasks(sources: Sequence[str | Path | Task]) -> list[SuiteTask]:
    """Task files, folders of task files (every ``*.json``, sorted), built-in names or :class:`Task`
    objects, each loaded.  A file that does not load becomes an ``error`` entry with its message; a
    task given twice (same pairs) a ``skipped`` one."""
    expanded: list[str | Task] = []
    for src in sources:
        path = Path(src) if not isinstance(src, Task) else None
        if path is not None and path.is_dir():
            files = sorted(path.glob("*.json"))
            if not files:
                raise TaskError(f"{path} holds no .json task files")
            expanded.extend(str(f) for f in files)
        else:
            expanded.append(src if isinstance(src, Task) else str(src))
    out: list[SuiteTask] = []
    slugs: set[str] = set()
    digests: dict[str, str] = {}
    for src in expanded:
        source = src.name if isinstance(src, Task) else src
        try:
            task = src if isinstance(src, Task) else load_task(src)
        except (TaskError, OSError, ValueError) as e:
            out.append(
                SuiteTask(source, _unique(_slug(Path(source).stem), slugs), None, "error", _one_line(e))
            )
            continue
        slug = _unique(_slug(task.name), slugs)
        if task.digest in digests:
            out.append(SuiteTask(source, slug, task, "skipped", f"the same pairs as {digests[task.digest]}"))
            continue
        digests[task.digest] = source
        out.append(SuiteTask(source, slug, task))
    return out


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "task"


def _unique(slug: str, taken: set[str]) -> str:
    candidate, i = slug, 2
    while candidate in taken:
        candidate, i = f"{slug}-{i}", i + 1
    taken.add(candidate)
    return candidate


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (
        text if isinstance(e, TaskError | ProtocolError | ResultFileError) else f"{type(e).__name__}: {text}"
    )


@dataclass
class SuiteRow:
    """One task of a suite: its status, baselines and accuracies (filtered: on the test queries clean
    ICL answers right, as ``result.json``'s ``accuracy``; ``icl`` is on every evaluated query)."""

    task: str
    status: str
    error: str | None = None
    name: str | None = None
    folder: str | None = None
    icl: float | None = None
    majority: float | None = None
    chance: float | None = None
    valid_icl: float | None = None
    valid_majority: float | None = None
    universal_source: bool = False
    fv_layer: int | None = None
    universal_layer: int | None = None
    n_test: int | None = None
    n_filtered: int | None = None
    accuracy: dict[str, float] = field(default_factory=dict)
    accuracy_sem: dict[str, float] = field(default_factory=dict)
    accuracy_universal: dict[str, float] = field(default_factory=dict)
    accuracy_universal_sem: dict[str, float] = field(default_factory=dict)
    accuracy_answer: dict[str, float] = field(default_factory=dict)  # the task's FV, whole answers
    seconds: float | None = None
    cpu_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteRow:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class SuiteResult:
    """A suite's outcome: one :class:`SuiteRow` per task given, the universal heads and AIE map.

    ``universal_heads``: ``[(layer, head, mean AIE), ...]``, best first; ``universal_aie``:
    ``[layer, head]``, the mean AIE over the source tasks (None if no task qualified).
    """

    model: str
    model_id: str
    protocol: Protocol
    margin: float
    rows: list[SuiteRow]
    universal_heads: list[tuple[int, int, float]]
    universal_aie: torch.Tensor | None
    head_count: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    cpu_seconds: float | None = None

    @property
    def ran(self) -> list[SuiteRow]:
        return [r for r in self.rows if r.status == "ran"]

    @property
    def sources(self) -> list[str]:
        return [r.name or r.task for r in self.rows if r.universal_source]

    def ordered_rows(self) -> list[SuiteRow]:
        """The paper's six main tasks first (in its order), then the rest as given."""
        main = {name: i for i, name in enumerate(PAPER_MAIN_TASKS)}
        order = sorted(enumerate(self.rows), key=lambda ir: (main.get(ir[1].name or "", len(main)), ir[0]))
        return [row for _, row in order]

    def markdown(self) -> list[str]:
        """The paper-style table: top-1 (%) ± standard error, per-task FV (FV) vs universal FV (UFV)."""
        head = (
            "| task | ICL | majority | chance | source | zero-shot | + FV | + UFV | shuffled | + FV | + UFV "
            "| layer FV / UFV |"
        )
        lines = [head, "|" + "---|" * 12]
        for r in self.ordered_rows():
            if r.status != "ran":
                lines.append(f"| {r.name or r.task} | {r.status}: {r.error or ''} |" + " |" * 10)
                continue
            a, s, u, us = r.accuracy, r.accuracy_sem, r.accuracy_universal, r.accuracy_universal_sem
            cells = [
                _pct(r.icl),
                _pct(r.majority),
                _pct(r.chance),
                "yes" if r.universal_source else "no",
                _pm(a.get("zero_shot"), s.get("zero_shot")),
                _pm(a.get("zero_shot_fv"), s.get("zero_shot_fv")),
                _pm(u.get("zero_shot_fv"), us.get("zero_shot_fv")),
                _pm(a.get("shuffled"), s.get("shuffled")),
                _pm(a.get("shuffled_fv"), s.get("shuffled_fv")),
                _pm(u.get("shuffled_fv"), us.get("shuffled_fv")),
                f"{r.fv_layer} / {r.universal_layer}",
            ]
            lines.append(f"| {r.name} | " + " | ".join(cells) + " |")
        return lines

    def __repr__(self) -> str:
        heads = ", ".join(f"L{l}H{h}" for l, h, _ in self.universal_heads)
        n = {s: sum(r.status == s for r in self.rows) for s in ("ran", "skipped", "error")}
        return (
            f"SuiteResult({self.model}: {n['ran']} ran, {n['skipped']} skipped, {n['error']} failed; "
            f"{len(self.sources)} source tasks (clean ICL > majority + {self.margin:.0%} on valid); "
            f"universal heads [{heads}])\n" + "\n".join(self.markdown())
        )

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(repr(self))}</pre>"

    # --- saving -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``suite.json``: ``universal_heads`` [[layer, head, aie], ...] and one row per task."""
        return {
            "model": self.model,
            "model_id": self.model_id,
            "protocol": self.protocol.to_dict(),
            "margin": self.margin,
            "source_rule": "clean ICL top-1 on valid > majority baseline of the valid answers + margin",
            "sources": self.sources,
            "head_count": self.head_count,
            "universal_heads": [[int(l), int(h), float(v)] for l, h, v in self.universal_heads],
            "universal_aie": None if self.universal_aie is None else self.universal_aie.tolist(),
            "tasks": [r.to_dict() for r in self.rows],
            "table": self.markdown(),
            "command": self.command,
            "cpu_seconds": self.cpu_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteResult:
        aie = data.get("universal_aie")
        return cls(
            model=data["model"],
            model_id=data["model_id"],
            protocol=Protocol.from_dict(data["protocol"]),
            margin=float(data["margin"]),
            rows=[SuiteRow.from_dict(r) for r in data["tasks"]],
            universal_heads=[(int(l), int(h), float(v)) for l, h, v in data["universal_heads"]],
            universal_aie=None if aie is None else torch.tensor(aie),
            head_count=data.get("head_count") or {},
            command=data.get("command"),
            cpu_seconds=data.get("cpu_seconds"),
        )

    def save(self, out: str | Path) -> list[Path]:
        """Write ``suite.json`` and ``suite.md`` (the table) into ``out``; the figures are
        :func:`workbench.show.suite_figures.suite_figures`."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "suite.json", self.to_dict())
        with atomic_path(out / "suite.md") as tmp:
            tmp.write_text("\n".join(self.markdown()) + "\n", encoding="utf-8")
        return [out / "suite.json", out / "suite.md"]

    @classmethod
    def load(cls, out: str | Path) -> SuiteResult:
        path = Path(out) / "suite.json"
        if not path.exists():
            raise ResultFileError(f"no suite.json in {out}: pass a folder written by `workbench suite --out`")
        try:
            return cls.from_dict(read_json(path))
        except (KeyError, TypeError, ValueError) as e:
            raise ResultFileError(
                f"{path} cannot be read back ({type(e).__name__}: {e}); rerun the suite"
            ) from None

    def results(self, out: str | Path) -> list[TaskResult]:
        """The TaskResults of the tasks that ran (their folders under ``out``)."""
        return [TaskResult.load(Path(out) / r.folder) for r in self.ran]


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.0f}"


def _pm(x: float | None, se: float | None) -> str:
    if x is None:
        return ""
    return f"{100 * x:.0f} ± {100 * se:.0f}" if se is not None else f"{100 * x:.0f}"


# --- the per-task step ---------------------------------------------------------------------------
ModelSpec = Any  # a model, a name or path for load_model, or a zero-argument callable returning a model


def _as_model(model: ModelSpec, unverified: bool = False):
    if isinstance(model, str | Path):
        from ..core.loading import load_model  # noqa: PLC0415 - only when given a name

        return load_model(str(model), unverified=unverified)
    if callable(model) and not isinstance(model, torch.nn.Module):
        return model()
    return model


def _saved_run(folder: Path, entry: SuiteTask, mid: str, protocol: Protocol) -> TaskResult | None:
    """The complete run already in ``folder`` for this task, model and protocol, if there is one."""
    if not (folder / "result.json").exists():
        return None
    try:
        result = TaskResult.load(folder)
    except ResultFileError:
        return None
    same = (result.task.digest, result.model_id, result.protocol) == (entry.task.digest, mid, protocol)
    return result if same else None


def suite_task_run(
    model,
    entry: SuiteTask,
    out: str | Path,
    protocol: Protocol,
    cache: StageCache | None = None,
    progress: bool = False,
    unverified: bool = False,
) -> tuple[str, str | None, float, float]:
    """Run (or read back) one task of a suite into ``out/<slug>/``: ``(status, error, seconds, cpu)``.

    Any failure becomes ``("error", one-line message)``; an interrupt still stops the suite.
    """
    if entry.status != "ran":
        return entry.status, entry.error, 0.0, 0.0
    folder = Path(out) / entry.slug
    if _saved_run(folder, entry, model_id(model), protocol) is not None:
        return "ran", None, 0.0, 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        result = run_task(model, entry.task, protocol, cache=cache, progress=progress, unverified=unverified)
        result.notes["cpu_seconds"] = time.process_time() - cpu
        result.save(folder, overwrite=True)
    except Exception as e:  # noqa: BLE001 - a failing task is recorded and the suite goes on
        return "error", _one_line(e), time.perf_counter() - wall, time.process_time() - cpu
    return "ran", None, time.perf_counter() - wall, time.process_time() - cpu


def _suite_task_job(model: ModelSpec, entry: SuiteTask, out: str, protocol: Protocol, unverified: bool):
    """One submitit job: load the model and run one task (its folder is the job's output)."""
    return suite_task_run(_as_model(model, unverified), entry, out, protocol, unverified=unverified)


# --- the universal step --------------------------------------------------------------------------
def _source(result: TaskResult, margin: float) -> tuple[bool, float, float]:
    """Whether clean ICL on valid beats the valid answers' majority baseline by more than ``margin``."""
    valid_icl = float(result.notes.get("valid_icl_top1", float("nan")))
    majority = label_baselines([p.output for p in result.split.valid]).majority
    return valid_icl > majority + margin, valid_icl, majority


def universal_function_vector_accuracy(
    model,
    result: TaskResult,
    heads: Sequence[tuple[int, int]],
    cache: StageCache | None = None,
    progress: bool = False,
) -> tuple[int, dict[str, Accuracy]]:
    """The universal FV on one task: the task's mean head outputs summed over ``heads``, added after
    the layer best on the task's validation split (the pipeline's rule), evaluated on its test
    queries under every condition (unfiltered ranks, rows as in ``result.accuracy_unfiltered``).

    Only the conditions the universal FV or its layer changes run again: :data:`FV_CONDITIONS`, and
    the mean state and the task vector (set at that layer) when it is not the task's own FV layer.
    Clean ICL, zero-shot and shuffled are the task's own run's ranks."""
    stages = Stages(model, result.task, result.protocol, cache or StageCache(), progress)
    sets = result.prompt_sets(model)
    fv = heads_function_vector(stages, sets, result.means, [tuple(h) for h in heads], {"universal": True})
    fv.layer, _ = choose_layer(stages, sets, fv)
    again = FV_CONDITIONS + (() if fv.layer == result.fv_layer else LAYER_CONDITIONS)
    ranks = evaluation(stages, sets, fv, result.means, again)
    return fv.layer, {name: ranks.get(name, result.accuracy_unfiltered[name]) for name in CONDITIONS}


def choose_universal_count(
    model,
    results: Sequence[TaskResult],
    universal_aie: torch.Tensor,
    protocol: Protocol,
    cache: StageCache | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``head_count_rule="valid"`` for the universal heads: the count of ``protocol.head_counts`` whose
    universal FV has the best validation score (zero-shot + shuffled top-1 at each task's best layer),
    averaged over ``results``; ties go to fewer heads."""
    info = model_info(model)
    counts = sorted({k for k in protocol.head_counts if k <= info.n_total_heads})
    ranking = HeadScan(universal_aie[None].clone(), model=info.name, task="universal")
    scores = torch.zeros(len(counts))
    for result in results:
        stages = Stages(model, result.task, result.protocol, cache or StageCache(), progress)
        sets = result.prompt_sets(model)

        def compute(result=result, sets=sets):
            out = {}
            for name in ("valid_zero_shot", "valid_shuffled"):
                grid = head_count_grid_accuracy(
                    model,
                    result.means,
                    ranking,
                    range(info.n_layers),
                    sets[name],
                    counts,
                    result.protocol.alpha,
                    progress,
                )
                out[name] = torch.stack(
                    [torch.tensor([grid[L][k].top1 for L in sorted(grid)]) for k in counts]
                )
            return out

        key = {"counts": counts, "alpha": protocol.alpha, "heads": top_heads(universal_aie, max(counts))}
        grids = stages.cached("universal_head_counts", key, compute)
        scores += (grids["valid_zero_shot"] + grids["valid_shuffled"]).max(1).values
    scores /= max(len(results), 1)
    i = max(range(len(counts)), key=lambda j: (float(scores[j]), -j))
    return {"rule": "valid", "counts": counts, "chosen": counts[i], "valid_score_by_count": scores.tolist()}


def universal_step(
    model,
    entries: Sequence[SuiteTask],
    statuses: Sequence[tuple[str, str | None, float, float]],
    out: str | Path,
    protocol: Protocol,
    margin: float = DEFAULT_MARGIN,
    cache: StageCache | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> SuiteResult:
    """Universal heads from the tasks that ran, then the universal FV on each of them."""
    log = log or (lambda line: None)
    cpu = time.process_time()
    out = Path(out)
    rows: list[SuiteRow] = []
    results: dict[int, TaskResult] = {}
    for i, (entry, (status, error, seconds, task_cpu)) in enumerate(zip(entries, statuses)):
        row = SuiteRow(task=entry.source, status=status, error=error, name=entry.task and entry.task.name)
        if status == "ran":
            try:
                results[i] = TaskResult.load(out / entry.slug)
            except ResultFileError as e:
                row.status, row.error = "error", _one_line(e)
        if row.status == "ran":
            r = results[i]
            row.folder = entry.slug
            row.seconds = seconds or None
            row.cpu_seconds = r.notes.get("cpu_seconds", task_cpu or None)
            row.universal_source, row.valid_icl, row.valid_majority = _source(r, margin)
        rows.append(row)

    sources = [results[i] for i, row in enumerate(rows) if row.universal_source]
    universal_aie = universal_map([r.scan.aie for r in sources]) if sources else None
    head_count: dict[str, Any] = {}
    heads: list[tuple[int, int, float]] = []
    if universal_aie is not None:
        if protocol.head_count_rule == "valid":
            head_count = choose_universal_count(model, list(results.values()), universal_aie, protocol, cache)
            k = head_count["chosen"]
        else:
            k = protocol.top_k or default_top_k(model_info(model).n_total_heads)
            head_count = {"rule": "fixed", "chosen": k}
        heads = top_heads(universal_aie, k)
        log(
            f"universal heads (mean AIE over {len(sources)} tasks): "
            + ", ".join(f"L{l}H{h}" for l, h, _ in heads)
        )
    else:
        log(f"no task's clean ICL beats its majority baseline by {margin:.0%}: no universal heads")

    for i, row in enumerate(rows):
        if row.status != "ran":
            continue
        r = results[i]
        right = r.icl_correct
        b = r.baselines
        row.icl, row.majority, row.chance = r.accuracy_unfiltered["icl"].top1, b.majority, b.chance
        row.fv_layer, row.n_test, row.n_filtered = r.fv_layer, int(right.numel()), int(right.sum())
        row.accuracy = {k: a.top1 for k, a in r.accuracy.items()}
        row.accuracy_sem = {k: a.stderr for k, a in r.accuracy.items()}
        row.accuracy_answer = {k: a.top1 for k, a in (r.answer_accuracy or {}).items()}
        if heads:
            try:
                layer, accs = universal_function_vector_accuracy(
                    model, r, [(l, h) for l, h, _ in heads], cache
                )
            except Exception as e:  # noqa: BLE001 - recorded; the other tasks go on
                row.error = "universal FV: " + _one_line(e)
                continue
            row.universal_layer = layer
            filtered = {k: Accuracy(a.ranks[right]) for k, a in accs.items()}
            row.accuracy_universal = {k: a.top1 for k, a in filtered.items()}
            row.accuracy_universal_sem = {k: a.stderr for k, a in filtered.items()}
            log(
                f"{row.name}: zero-shot {row.accuracy['zero_shot']:.0%}, "
                f"+ FV {row.accuracy['zero_shot_fv']:.0%}, "
                f"+ universal FV {row.accuracy_universal['zero_shot_fv']:.0%} (layer {layer})"
            )
    first = next(iter(results.values()), None)
    return SuiteResult(
        model=first.model if first else model_info(model).name,
        model_id=first.model_id if first else model_id(model),
        protocol=protocol,
        margin=margin,
        rows=rows,
        universal_heads=heads,
        universal_aie=universal_aie,
        head_count=head_count,
        cpu_seconds=sum(r.cpu_seconds or 0.0 for r in rows) + (time.process_time() - cpu),
    )


def _universal_job(model, entries, statuses, out, protocol, margin, unverified):
    """The last submitit job: the universal step, on the finished task folders."""
    return universal_step(_as_model(model, unverified), entries, statuses, out, protocol, margin).to_dict()


# --- the suite -----------------------------------------------------------------------------------
def run_suite(
    model: ModelSpec,
    tasks: Sequence[str | Path | Task],
    out: str | Path,
    protocol: Protocol = Protocol(),
    margin: float = DEFAULT_MARGIN,
    cache: StageCache | None = None,
    progress: bool = True,
    unverified: bool = False,
    executor=None,
    command: str | None = None,
) -> SuiteResult:
    """The paper's experiment over ``tasks`` (files, folders of ``*.json``, names or Task objects).

    Each task's run is saved in ``out/<task>/`` and read back when complete (same task, model and
    protocol), its stages cached, so an interrupted suite resumes.  A task that fails is recorded
    with its one-line error and the others go on.  ``executor``: a submitit executor (one job per
    task, then the universal step); ``model`` must then be a name or path, or a picklable
    zero-argument callable returning the model.  Writes ``suite.json`` and ``suite.md``.
    """
    if not 0 <= margin < 1:
        raise ProtocolError(f"margin must be in [0, 1) (a share of queries), got {margin}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = suite_tasks(tasks)
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if progress else (lambda line: None)
    if executor is None:
        model = _as_model(model, unverified)
        statuses = _in_process(model, entries, out, protocol, cache, unverified, log)
        suite = universal_step(model, entries, statuses, out, protocol, margin, cache, log=log)
    else:
        if isinstance(model, torch.nn.Module):
            raise ProtocolError(
                "a suite on an executor loads the model in each job: give its name or path "
                "(or a picklable function that returns it), not the loaded model"
            )
        statuses = _on_executor(executor, model, entries, out, protocol, unverified, log)
        job = executor.submit(
            _universal_job, model, entries, statuses, str(out), protocol, margin, unverified
        )
        suite = SuiteResult.from_dict(job.result())
    suite.command = command
    suite.save(out)
    return suite


def _in_process(model, entries, out, protocol, cache, unverified, log):
    statuses: list[tuple[str, str | None, float, float]] = []
    spent: list[float] = []  # seconds of the tasks computed (not read back) so far
    for i, entry in enumerate(entries, 1):
        status = suite_task_run(model, entry, out, protocol, cache, progress=False, unverified=unverified)
        statuses.append(status)
        if status[2] > 0:
            spent.append(status[2])
        left = len(entries) - i
        eta = f", about {_duration(left * sum(spent) / len(spent))} left" if spent and left else ""
        done = f"{status[0]} in {_duration(status[2])}" if status[2] > 0 else status[0]
        if status[0] == "ran" and status[2] == 0:
            done = "read back"
        error = f": {status[1]}" if status[1] else ""
        log(f"[{i}/{len(entries)}] {entry.task.name if entry.task else entry.source}: {done}{error}{eta}")
    return statuses


def _on_executor(executor, model, entries, out, protocol, unverified, log):
    jobs = {
        i: executor.submit(_suite_task_job, model, e, str(out), protocol, unverified)
        for i, e in enumerate(entries)
        if e.status == "ran"
    }
    log(f"submitted {len(jobs)} task jobs")
    statuses = []
    for i, entry in enumerate(entries):
        if i not in jobs:
            statuses.append((entry.status, entry.error, 0.0, 0.0))
            continue
        try:
            statuses.append(tuple(jobs[i].result()))
        except Exception as e:  # noqa: BLE001 - a failed job is that task's error
            statuses.append(("error", "job failed: " + _one_line(e).splitlines()[0], 0.0, 0.0))
        log(f"[{len(statuses)}/{len(entries)}] {entry.task.name}: {statuses[-1][0]}")
    return statuses


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
