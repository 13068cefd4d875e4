"""TaskResult: everything one run produced, the home of its data, saved and loaded as a folder.

A result carries its :class:`~workbench.data.tasks.Task` (the pairs, not a name), its
:class:`~workbench.method.protocol.Protocol`, the model's name and identity, and the extraction
queries the filter kept, so ``result.prompt_sets(model)`` rebuilds every prompt set of the run
exactly.  Studies take a result and nothing reloads a task by name.

``save(dir)`` writes ``result.json`` (the CLI's contract: tables, AIE, accuracies, provenance,
and the task's pairs), ``function_vector.safetensors`` and ``tensors.safetensors`` (means,
per-prompt effects, per-query ranks, sweeps); ``TaskResult.load(dir)`` reads them back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..base.checks import json_form
from ..base.files import (
    CorruptFileError,
    atomic_path,
    file_sha256,
    read_json,
    read_json_document,
    read_tensors,
    temporary_folder_beside,
    write_json,
    write_tensors,
)
from ..core.heads import HeadMeans
from ..core.model import VectorMismatch, model_id, model_info
from ..core.scan import HeadScan
from ..data.label_baselines import LabelBaselines, label_baselines
from ..data.tasks import Pair, Task, TaskSplit
from .evaluate import Accuracy, LayerSweep
from .protocol import PromptSets, Protocol
from .vectors import FunctionVector, package_versions

__all__ = ["TaskResult", "ResultMismatch", "ResultFileError", "RESULT_FILES", "check_output_folder"]

RESULT_FILES = ("result.json", "function_vector.safetensors", "tensors.safetensors")


class ResultMismatch(ValueError):
    """A result is used with a model other than the one it was made on."""


class ResultFileError(ValueError):
    """A result folder is missing a file or was not written by ``TaskResult.save``."""


def check_output_folder(
    out_dir: str | Path, task_digest: str, model_id: str, protocol: Protocol, overwrite: bool = False
) -> Path:
    """Refuse, before any work, an output folder that holds another run's result (another task,
    model or protocol) unless ``overwrite``; rerunning the same run into its folder is allowed.

    The saved protocol is read back through :meth:`Protocol.from_dict` (settings added since it was
    written take their defaults) and both sides are compared in their saved form
    (:func:`~workbench.base.checks.json_form`)."""
    out_dir = Path(out_dir)
    path = out_dir / "result.json"
    if overwrite or not path.exists():
        return out_dir
    try:
        old = read_json(path)
        differs = [
            what
            for what, same in (
                (f"task {old.get('task')!r}", old.get("task_digest") == task_digest),
                (f"model {old.get('model')!r} ({old.get('model_id')})", old.get("model_id") == model_id),
                ("protocol", "protocol" in old and Protocol.from_dict(old["protocol"]) == protocol),
            )
            if not same
        ]
    except (ValueError, OSError, AttributeError, TypeError, IndexError):
        differs = ["an unreadable result.json"]
    if differs:
        raise ResultFileError(
            f"{out_dir} already holds the result of another run ({', '.join(differs)}). "
            "Choose another --out folder, or pass --overwrite (overwrite=True) to replace it."
        )
    return out_dir


@dataclass
class TaskResult:
    """Everything one run produced; ``to_json()`` is the CLI's ``result.json``.

    accuracy_unfiltered: per condition, the ranks on EVERY test query (rows in the split's order);
    accuracy: the same on the test queries clean ICL answers right (the paper's filter).
    """

    model: str
    model_id: str
    task: Task
    protocol: Protocol
    extraction_queries: list[Pair]
    means: HeadMeans
    scan: HeadScan
    fv: FunctionVector
    fv_layer: int
    accuracy_unfiltered: dict[str, Accuracy]
    valid_sweep: LayerSweep | None = None
    test_sweep: LayerSweep | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    self_check: dict[str, Any] | None = None  # the model's self-check outcome (core/selfcheck.py)

    def __post_init__(self) -> None:
        # held as saved, so a result and its saved copy compare equal (tuples -> lists, keys -> str)
        self.notes = json_form(self.notes)
        self.self_check = json_form(self.self_check)
        self.extraction_queries = [q if isinstance(q, Pair) else Pair(*q) for q in self.extraction_queries]
        self.fv_layer = int(self.fv_layer)

    # --- the run's data -----------------------------------------------------------------------
    @property
    def split(self) -> TaskSplit:
        return self.task.split(seed=self.protocol.seed)

    @property
    def icl_correct(self) -> torch.Tensor:
        """Which test queries clean ICL answers right: the filter of :attr:`accuracy`."""
        return self.accuracy_unfiltered["icl"].correct

    @property
    def accuracy(self) -> dict[str, Accuracy]:
        """Each condition on the test queries clean ICL answers right."""
        right = self.icl_correct
        return {name: Accuracy(a.ranks[right]) for name, a in self.accuracy_unfiltered.items()}

    @property
    def baselines(self) -> LabelBaselines:
        """The majority-label and chance accuracies of the answers of the evaluated test queries."""
        return label_baselines([p.output for p in PromptSets(self.task, self.protocol).test_queries])

    def check_model(self, model) -> None:
        """Raise :class:`ResultMismatch` unless ``model`` is the one this result was made on."""
        if model_id(model) != self.model_id:
            raise ResultMismatch(
                f"this result was made on {self.model!r} ({self.model_id}); the model given is "
                f"{model_info(model).name!r} ({model_id(model)}). Studies of a run need the run's own model."
            )

    def check_same_model(self, others) -> None:
        """Raise :class:`ResultMismatch` unless every run in ``others`` (TaskResults, or HeadScans
        by their model's name) was made on this run's model: head numbers of two models do not
        name the same heads, even when the shapes agree."""
        for other in others:
            if isinstance(other, TaskResult):
                same, theirs = other.model_id == self.model_id, f"{other.model!r} ({other.model_id})"
            else:
                name = getattr(other, "model", "")
                same, theirs = (not name or name == self.model), repr(name)
            if not same:
                raise ResultMismatch(
                    f"this run was made on {self.model!r} ({self.model_id}), another run given with it on "
                    f"{theirs}: compare runs of one model only."
                )

    def prompt_sets(self, model) -> PromptSets:
        """The run's prompt sets, encoded for ``model`` (which must be the run's model)."""
        self.check_model(model)
        return PromptSets(self.task, self.protocol, model, self.extraction_queries)

    # --- display ------------------------------------------------------------------------------
    def table(self) -> str:
        filtered = self.accuracy
        rows = [f"{'condition':<14}{'filtered':>10}{'unfiltered':>12}"]
        for k, a in self.accuracy_unfiltered.items():
            rows.append(f"{k:<14}{filtered[k].top1:>10.1%}{a.top1:>12.1%}")
        b = self.baselines
        rows.append(f"{'(majority)':<14}{'':>10}{b.majority:>12.1%}")
        rows.append(f"{'(chance)':<14}{'':>10}{b.chance:>12.1%}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        return (
            f"TaskResult({self.model} / {self.task.name}, seed {self.protocol.seed}, FV at layer "
            f"{self.fv_layer}, {len(self.fv.heads)} heads)\n{self.table()}"
        )

    def _repr_html_(self) -> str:
        filtered = self.accuracy
        rows = "".join(
            f"<tr><td>{k}</td><td>{filtered[k].top1:.1%}</td><td>{a.top1:.1%}</td></tr>"
            for k, a in self.accuracy_unfiltered.items()
        )
        heads = ", ".join(f"L{l}H{h}" for l, h in self.fv.heads)
        return (
            f"<b>TaskResult</b> {self.model} / {self.task.name} (seed {self.protocol.seed}): FV of "
            f"{len(self.fv.heads)} heads [{heads}] after layer {self.fv_layer}"
            f"<table><tr><th>condition</th><th>filtered (n={int(self.icl_correct.sum())})</th>"
            f"<th>all (n={self.icl_correct.numel()})</th></tr>{rows}</table>"
            f"baselines of the test answers: majority {self.baselines.majority:.1%}, "
            f"chance {self.baselines.chance:.1%}"
        )

    # --- saving -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        aie = self.scan.aie
        filtered = self.accuracy
        out = {
            "model": self.model,
            "model_id": self.model_id,
            "self_check": self.self_check,
            "task": self.task.name,
            "n_layers": int(aie.shape[0]),
            "n_heads": int(aie.shape[1]),
            "aie": torch.nan_to_num(aie).tolist(),
            "aie_sem": torch.nan_to_num(self.scan.sem).tolist(),
            "top_heads": [[l, h, v] for l, h, v in self.scan.top_heads(len(self.fv.heads))],
            "fv_layer": self.fv_layer,
            "fv_norm": self.fv.norm,
            "accuracy": {k: v.top1 for k, v in filtered.items()},
            "accuracy_unfiltered": {k: v.top1 for k, v in self.accuracy_unfiltered.items()},
            "baselines": self.baselines.to_dict(),
            "accuracy_detail": {k: v.to_dict() for k, v in filtered.items()},
            "accuracy_unfiltered_detail": {k: v.to_dict() for k, v in self.accuracy_unfiltered.items()},
            "protocol": self.protocol.to_dict(),
            "notes": self.notes,
            "versions": package_versions(),
            "task_data": self.task.to_json(),
            "task_digest": self.task.digest,
            "extraction_queries": [[p.input, p.output] for p in self.extraction_queries],
        }
        if self.valid_sweep is not None:
            out["valid_layer_sweep"] = self.valid_sweep.to_dict()
        if self.test_sweep is not None:
            out["layer_sweep"] = self.test_sweep.to_dict()
        return out

    def to_tensors(self) -> dict[str, torch.Tensor]:
        out = {f"means/{k}": v for k, v in self.means.to_tensors().items()}
        out["scan/effects"] = self.scan.effects
        out.update({f"ranks/{k}": a.ranks for k, a in self.accuracy_unfiltered.items()})
        for name, sweep in (("valid_sweep", self.valid_sweep), ("test_sweep", self.test_sweep)):
            if sweep is not None:
                out.update({f"{name}/{k}": v for k, v in sweep.to_tensors().items()})
        return out

    def save(self, out_dir: str | Path, overwrite: bool = False) -> Path:
        """Write ``result.json``, ``function_vector.safetensors`` and ``tensors.safetensors`` as one unit.

        The files are written in a temporary folder beside ``out_dir`` and moved in (the folder as a
        whole when it is new), ``result.json`` last; it records each tensor file's SHA-256, so a
        folder left half-written by a kill is refused on :meth:`load`.  A folder holding another
        run's result (other task, model or protocol) is refused unless ``overwrite``.
        """
        out_dir = Path(out_dir)
        check_output_folder(out_dir, self.task.digest, self.model_id, self.protocol, overwrite)
        if not out_dir.exists():
            with atomic_path(out_dir) as tmp:
                tmp.mkdir()
                self._write_files(tmp)
            return out_dir
        # Keep whatever else the folder holds: move our files in, result.json last.
        with temporary_folder_beside(out_dir / RESULT_FILES[0]) as tmp:
            self._write_files(tmp)
            for name in (*RESULT_FILES[1:], RESULT_FILES[0]):
                os.replace(tmp / name, out_dir / name)
        return out_dir

    def _write_files(self, folder: Path) -> None:
        self.fv.save(folder / "function_vector.safetensors")
        write_tensors(folder / "tensors.safetensors", self.to_tensors())
        doc = self.to_json()
        doc["files"] = {name: file_sha256(folder / name) for name in RESULT_FILES[1:]}
        write_json(folder / "result.json", doc)

    @classmethod
    def load(cls, out_dir: str | Path) -> TaskResult:
        """Read back a folder written by :meth:`save` (:class:`ResultFileError` if it is incomplete,
        damaged or edited)."""
        out_dir = Path(out_dir)
        if not out_dir.exists():
            raise ResultFileError(f"{out_dir} does not exist: pass a folder written by `workbench run --out`")
        if not out_dir.is_dir():
            raise ResultFileError(
                f"{out_dir} is a file, not a folder: pass a folder written by `workbench run --out`"
            )
        missing = [name for name in RESULT_FILES if not (out_dir / name).exists()]
        if missing:
            raise ResultFileError(
                f"no {', '.join(missing)} in {out_dir}: pass a folder written by "
                "`workbench run --out` (or TaskResult.save) with this version of the workbench"
            )
        data = read_json_document(out_dir / "result.json", ResultFileError)
        if not isinstance(data, dict) or "task_data" not in data:
            raise ResultFileError(
                f"{out_dir}/result.json was written by an older workbench (no task data) or edited; "
                "rerun `workbench run` to refresh it"
            )
        for name, digest in data.get("files", {}).items():
            if file_sha256(out_dir / name) != digest:
                raise ResultFileError(
                    f"{out_dir / name} is not the file result.json was written with (changed, damaged, or "
                    "the folder was left half-written by an interrupted save); rerun `workbench run`."
                )
        try:
            return cls._from_saved(out_dir, data)
        except (KeyError, TypeError, ValueError, IndexError, CorruptFileError) as e:
            if isinstance(e, ResultFileError | VectorMismatch):
                raise
            raise ResultFileError(
                f"{out_dir} cannot be read back ({type(e).__name__}: {e}); it was edited or damaged. "
                "Rerun `workbench run` to write it again."
            ) from None

    @classmethod
    def _from_saved(cls, out_dir: Path, data: dict) -> TaskResult:
        tensors, _ = read_tensors(out_dir / "tensors.safetensors")

        def group(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + "/")}

        sweeps = {
            name: LayerSweep.from_tensors(group(name)) if group(name) else None
            for name in ("valid_sweep", "test_sweep")
        }
        task = Task.from_json(data["task_data"])
        return cls(
            model=data["model"],
            model_id=data["model_id"],
            task=task,
            protocol=Protocol.from_dict(data["protocol"]),
            extraction_queries=[Pair(x, y) for x, y in data["extraction_queries"]],
            means=HeadMeans.from_tensors(group("means")),
            scan=HeadScan(group("scan")["effects"], model=data["model"], task=task.name),
            fv=FunctionVector.load(out_dir / "function_vector.safetensors"),
            fv_layer=int(data["fv_layer"]),
            accuracy_unfiltered={k: Accuracy(group("ranks")[k]) for k in data["accuracy_unfiltered"]},
            valid_sweep=sweeps["valid_sweep"],
            test_sweep=sweeps["test_sweep"],
            notes=data.get("notes", {}),
            self_check=data.get("self_check"),
        )
