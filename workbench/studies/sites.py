"""Where is the task state written?  Attention layers against MLPs (:mod:`workbench.core.site_scan`).

:func:`task_sites` runs, for one task on one model (no head scan needed):

- the site scan: each layer's attention output and MLP output patched at the last token of the
  ``scan`` (shuffled-label) prompts with its clean mean (``means`` prompts), AIE per site;
- the exact split of the ICL - zero-shot state difference: with ``D_L = mean ICL state - mean
  zero-shot state`` after layer ``L`` (last token; ICL: the ``donors`` prompts, zero-shot: the test
  prompts), ``D_L = D_embed + sum_{l <= L} (D_attn[l] + D_mlp[l])`` exactly, and each part's share
  of ``|D_L|^2`` is its projection ``part . D_L / |D_L|^2`` (the shares sum to 1).

Both are cached as stages of the run's key (model identity, task content, seed, filter).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..base.stage_cache import StageCache
from ..core.heads import last_token_states
from ..core.model import model_info
from ..core.site_scan import SITES, scan_sites, site_means
from ..data.tasks import Task
from ..method.pipeline import Stages, filter_extraction_queries
from ..method.protocol import PromptSets, Protocol
from .study import Study, StudyContext, StudyRecord

__all__ = ["task_sites", "state_split", "Sites", "STUDY"]


def state_split(model, icl, zero) -> dict:
    """Shares of ``|D_L|^2`` written by the embedding, attention layers and MLPs up to ``L`` (see above)."""
    info = model_info(model)
    layers = list(range(info.n_layers))
    d_sites = site_means(model, icl) - site_means(model, zero)  # [site, layer, d]
    d_state = last_token_states(model, icl, layers).mean(1) - last_token_states(model, zero, layers).mean(1)
    cum = d_sites.cumsum(1)  # [site, layer, d]: sum over l <= L
    d_embed = d_state[0] - d_sites[:, 0].sum(0)  # what the embedding (and BOS) contribute
    norm2 = d_state.pow(2).sum(-1)  # [layer]
    shares = {site: ((cum[s] * d_state).sum(-1) / norm2).tolist() for s, site in enumerate(SITES)}
    shares["embed"] = ((d_embed[None] * d_state).sum(-1) / norm2).tolist()
    residual_error = (d_embed[None] + cum.sum(0) - d_state).norm(dim=-1).max()
    return {
        "norm": norm2.sqrt().tolist(),
        "shares": shares,
        "max_reconstruction_error": float(residual_error),
    }


def task_sites(model, task: Task, protocol: Protocol = Protocol(), cache: StageCache | None = None) -> dict:
    """The site scan and the state split for ``task`` (module docstring), with the run's prompt sets."""
    stages = Stages(model, task, protocol, cache or StageCache(), progress=False)
    extraction, _ = filter_extraction_queries(stages)
    sets = PromptSets(task, protocol, model, extraction)
    p = protocol
    means = stages.cached(
        "site_means", {"n": p.n_mean_prompts}, lambda: {"means": site_means(model, sets["means"])}
    )["means"]
    effects = stages.cached(
        "site_scan",
        {"n": p.n_scan_prompts, "n_means": p.n_mean_prompts},
        lambda: {"effects": scan_sites(model, sets["scan"], means).effects},
    )["effects"]
    from ..core.site_scan import SiteScan

    scan = SiteScan(effects, model_info(model).name, task.name)
    split = stages.cached(
        "state_split",
        {"split": 1},
        lambda: {
            k: torch.tensor(v)
            for k, v in _flat(state_split(model, sets["donors"], sets["test_zero_shot"])).items()
        },
    )
    return {
        "scan": scan.to_dict(),
        "split": {k.split("/", 1)[1]: v.tolist() for k, v in split.items() if k.startswith("shares/")},
        "state_norm": split["norm"].tolist(),
        "max_reconstruction_error": float(split["max_reconstruction_error"]),
    }


def _flat(d: dict) -> dict:
    out = {"norm": d["norm"], "max_reconstruction_error": d["max_reconstruction_error"]}
    out.update({f"shares/{k}": v for k, v in d["shares"].items()})
    return out


@dataclass(repr=False)
class Sites(StudyRecord):
    """:func:`task_sites` of one task: ``scan`` the :class:`~workbench.core.site_scan.SiteScan` as a
    dict (``sites``, ``aie`` and ``sem`` ``[site][layer]``), ``split[part][L]`` the share of
    ``|D_L|^2`` written by ``attn``, ``mlp`` (all layers up to ``L``) or ``embed``."""

    scan: dict
    split: dict
    state_norm: list
    max_reconstruction_error: float


def _compute(ctx: StudyContext, run) -> Sites:
    if isinstance(run, Task):
        return Sites.from_dict(task_sites(ctx.model, run, Protocol(), cache=ctx.cache))
    run.check_model(ctx.model)
    return Sites.from_dict(task_sites(ctx.model, run.task, run.protocol, cache=ctx.cache))


STUDY = Study(
    name="sites",
    summary="attention-layer and MLP indirect effects, and who writes the ICL - zero-shot state",
    record=Sites,
    compute=_compute,
    needs_scan=False,
    cached=False,
)
