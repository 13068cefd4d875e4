"""Why does (or doesn't) a function vector work zero-shot?  The ``diagnose`` study.

- :func:`injection_diagnostics`: the FV's size against the residual, and accuracy by layer x scale,
  beside the two baselines (the task vector is a ceiling for single-position interventions).
- :func:`head_count_grid`: accuracy by the number of top heads x layer (optionally centred).
- :func:`state_tests`: replace the last state by the mean ICL state, or add ICL minus zero-shot.
- :func:`diagnose_run`: those asked for on one run, each a cached stage of its own (so asking for
  one more part measures only that part).

All measure on the run's zero-shot test prompts (every test query, unfiltered).
``workbench study diagnose --runs DIR --tasks T`` runs it on finished runs; ``workbench diagnose
--task T`` first makes (or reads from the cache) the run of ``T``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..base.checks import check_finite
from ..core.heads import last_token_states
from ..core.hooks import add_vector, replace_last_state
from ..core.model import model_info
from ..method.evaluate import accuracies, head_count_grid_accuracy
from ..method.pipeline import zero_shot_head_means
from ..method.result import TaskResult
from .cache import cached_study
from .paper import baseline_sweeps
from .study import Param, Study, StudyContext, StudyRecord

__all__ = [
    "injection_diagnostics",
    "head_count_grid",
    "state_tests",
    "diagnose_run",
    "check_diagnose_values",
    "Diagnosis",
    "STUDY",
]


def injection_diagnostics(
    model, result: TaskResult, alphas: Sequence[float] = (0.5, 1, 2, 4, 8, 16), progress: bool = True
) -> dict:
    """Size against the residual, scale, and a ceiling, for every layer ``L``:

    - ``norm_ratio[L]``: ``|FV| / mean |resid_L|`` at the last token, how big the FV is beside
      the stream it is added to;
    - ``zero_shot[a][L]``: top-1 accuracy with ``alphas[a] * FV`` added after ``L``;
    - ``task_vector[L]`` / ``mean_state[L]``: the two baselines (:func:`baseline_sweeps`).  The
      task vector overwrites the whole last-token state with a clean ICL prompt's, so it is a
      ceiling for any single-position intervention at that layer.
    """
    check_finite(alphas, "alphas")
    zero = result.prompt_sets(model)["test_zero_shot"]
    n_layers = model_info(model).n_layers
    resid = last_token_states(model, zero, list(range(n_layers)))  # [layer, prompt, d_model]
    resid_norm = resid.norm(dim=-1).mean(-1)
    fv = result.fv.vector
    scaled = {(a, L): add_vector(model, L, fv, a) for a in alphas for L in range(n_layers)}
    grid = accuracies(model, zero, {**scaled, "none": None}, progress=progress and "layer x scale")
    base = baseline_sweeps(model, result, progress)
    return {
        "model": result.model,
        "task": result.task.name,
        "n_prompts": len(zero),
        "fv_layer": result.fv_layer,
        "heads": [list(h) for h in result.fv.heads],
        "layers": list(range(n_layers)),
        "alphas": list(alphas),
        "fv_norm": result.fv.norm,
        "resid_norm": resid_norm.tolist(),
        "norm_ratio": (result.fv.norm / resid_norm).tolist(),
        "zero_shot": [[grid[(a, L)].top1 for L in range(n_layers)] for a in alphas],
        "baseline_zero_shot": grid["none"].top1,
        "task_vector": [a.top1 for a in base["task vector"].results["zero_shot"]],
        "mean_state": [a.top1 for a in base["mean state"].results["zero_shot"]],
    }


def head_count_grid(
    model,
    result: TaskResult,
    counts: Sequence[int],
    layers: Sequence[int] | None = None,
    centered: bool = False,
    progress: bool = True,
) -> dict:
    """Zero-shot test accuracy with the FV of the top ``k`` heads added after layer ``L``, for every
    ``k`` in ``counts`` and ``L`` in ``layers``: does the task need more heads?

    ``centered=True`` subtracts from each head's clean mean output its mean output on zero-shot
    prompts (train queries): ``FV_c = sum_h (mean_out_icl[h] - mean_out_zero[h])``, which keeps
    what ICL changes in a head's output and drops what the head writes on any prompt.
    """
    sets = result.prompt_sets(model)
    zero = sets["test_zero_shot"]
    info = model_info(model)
    layers = list(range(info.n_layers)) if layers is None else [info.check_layer(layer) for layer in layers]
    counts = [k for k in counts if 0 < k <= info.n_total_heads]
    means = result.means
    if centered:
        means = means.centered(zero_shot_head_means(model, sets, progress=False))
    grid = head_count_grid_accuracy(model, means, result.scan, layers, zero, counts, progress=progress)
    return {
        "counts": counts,
        "layers": layers,
        "centered": centered,
        "zero_shot": [[grid[layer][k].top1 for layer in layers] for k in counts],
    }


def state_tests(
    model, result: TaskResult, layers: Sequence[int] | None = None, progress: bool = True
) -> dict:
    """Add or replace?  Zero-shot test accuracy at each layer with the last state

    - ``replace_mean_icl``: overwritten by the MEAN clean ICL last state (Hendel's task vector
      uses one ICL prompt's state per query; this uses their mean, the same for every query);
    - ``add_icl_minus_zero``: shifted by ``mean ICL state - mean zero-shot state`` (the two
      prompt sets' difference, i.e. a contrastive steering vector between ICL and zero-shot).

    If replacing works where adding the FV (or the mean state) does not, the zero-shot prompt's
    own state is what resists, not a lack of task information in the added vector.
    """
    sets = result.prompt_sets(model)
    zero = sets["test_zero_shot"]
    info = model_info(model)
    layers = list(range(info.n_layers)) if layers is None else [info.check_layer(layer) for layer in layers]
    icl_mean = last_token_states(model, sets["donors"], layers).mean(1)  # [layer, d_model]
    zero_mean = last_token_states(model, zero, layers).mean(1)
    tests = {}
    for i, layer in enumerate(layers):
        same = icl_mean[i].expand(len(zero), -1)
        tests[("replace_mean_icl", i)] = replace_last_state(model, layer, same)
        tests[("add_icl_minus_zero", i)] = add_vector(model, layer, icl_mean[i] - zero_mean[i])
    accs = accuracies(model, zero, tests, progress=progress and "state tests")
    out: dict = {"layers": layers}
    for kind in ("replace_mean_icl", "add_icl_minus_zero"):
        out[kind] = [accs[(kind, i)].top1 for i in range(len(layers))]
    return out


def check_diagnose_values(
    model,
    alphas: Sequence[float] = (),
    count_layers: Sequence[int] | None = None,
    state_layers: Sequence[int] | None = None,
) -> None:
    """Refuse, before any work, scales that are not finite and layers ``model`` does not have."""
    check_finite(list(alphas), "alphas")
    for layer in [*(count_layers or []), *(state_layers or [])]:
        model_info(model).check_layer(layer)


def diagnose_run(
    model,
    result: TaskResult,
    alphas: Sequence[float] = (0.5, 1, 2, 4, 8, 16),
    counts: Sequence[int] = (),
    count_layers: Sequence[int] | None = None,
    centered: bool = False,
    state_layers: Sequence[int] | None = None,
    cache=None,
    progress: bool = True,
) -> dict:
    """Every diagnostic asked for, in one dict (what the ``diagnose`` study records).

    ``counts``: also :func:`head_count_grid` (and its centred version with ``centered``) at
    ``count_layers`` (``None`` or ``[]``: every layer); ``state_layers``: also :func:`state_tests`
    there (``[]``: every layer; ``None``: skip).  With a stage ``cache``, each part is a stage of the
    run's key and its own arguments (:func:`~workbench.studies.cache.cached_study`).
    """
    check_diagnose_values(model, alphas, count_layers, state_layers)

    def part(name, params, compute):
        return cached_study(cache, f"diagnose_{name}", model, result, params, compute)

    alphas = [float(a) for a in alphas]
    diag = part(
        "injection",
        {"alphas": alphas},
        lambda: injection_diagnostics(model, result, alphas=alphas, progress=progress),
    )
    if counts:
        layers = list(count_layers) if count_layers else diag["layers"]
        counts = list(counts)
        diag["head_counts"] = part(
            "head_counts",
            {"counts": counts, "layers": layers, "centered": False},
            lambda: head_count_grid(model, result, counts, layers, progress=progress),
        )
        if centered:
            diag["head_counts_centered"] = part(
                "head_counts",
                {"counts": counts, "layers": layers, "centered": True},
                lambda: head_count_grid(model, result, counts, layers, centered=True, progress=progress),
            )
    if state_layers is not None:
        want = list(state_layers) or diag["layers"]
        diag["state_tests"] = part(
            "state_tests", {"layers": want}, lambda: state_tests(model, result, want, progress=progress)
        )
    return diag


@dataclass(repr=False)
class Diagnosis(StudyRecord):
    """:func:`diagnose_run` of one run.  ``zero_shot[a][L]``: top-1 with ``alphas[a] * FV`` added
    after layer ``layers[L]``; ``task_vector[L]``, ``mean_state[L]``: the baselines; ``norm_ratio[L]``:
    ``|FV| / mean |resid_L|``; the optional parts as :func:`head_count_grid` and :func:`state_tests`
    return them."""

    model: str
    task: str
    n_prompts: int
    fv_layer: int
    heads: list
    layers: list
    alphas: list
    fv_norm: float
    resid_norm: list
    norm_ratio: list
    zero_shot: list
    baseline_zero_shot: float
    task_vector: list
    mean_state: list
    head_counts: dict | None = None
    head_counts_centered: dict | None = None
    state_tests: dict | None = None

    def best(self) -> tuple[float, float, int]:
        """The best zero-shot accuracy with the FV: ``(top-1, alpha, layer)``."""
        return max(
            (acc, self.alphas[a], self.layers[i])
            for a, row in enumerate(self.zero_shot)
            for i, acc in enumerate(row)
        )

    def __repr__(self) -> str:
        acc, alpha, layer = self.best()
        tv = self.task_vector
        ceiling = max(tv)
        return (
            f"Diagnosis({self.task}: zero-shot without FV {self.baseline_zero_shot:.0%}; best with FV "
            f"{acc:.0%} (alpha {alpha:g}, layer {layer}); task-vector ceiling {ceiling:.0%} "
            f"(layer {self.layers[tv.index(ceiling)]}))"
        )


def _compute(ctx: StudyContext, run: TaskResult) -> Diagnosis:
    p = ctx.params
    diag = diagnose_run(
        ctx.model,
        run,
        p["alphas"],
        p["counts"],
        p["count_layers"],
        p["centered"],
        p["state_tests"],
        cache=ctx.cache,
        progress=ctx.progress,
    )
    return Diagnosis.from_dict(diag)


STUDY = Study(
    name="diagnose",
    summary="why an FV does or doesn't work zero-shot: layer x scale grid, task-vector ceiling, "
    "FV size against the residual",
    record=Diagnosis,
    compute=_compute,
    params=(
        Param("alphas", float, (0.5, 1, 2, 4, 8, 16), "the FV's scales", many="+", metavar="A"),
        Param(
            "counts",
            int,
            (),
            "also a heads x layer grid with these head counts",
            many="*",
            low=0,
            metavar="K",
        ),
        Param("count_layers", int, None, "layers of that grid (default: all)", many="*", low=0, metavar="L"),
        Param("centered", bool, False, "also that grid with each head's zero-shot mean output subtracted"),
        Param(
            "state_tests",
            int,
            None,
            "also replace the last state by the mean ICL state, and add mean ICL - mean zero-shot "
            "(at these layers; none given: all)",
            many="*",
            low=0,
            metavar="L",
        ),
    ),
    cached=False,
)
