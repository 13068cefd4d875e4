"""The one look of every figure: the plotly template, colours and labels per condition, and the
AIE heatmap trace that the scan, study and explorer figures share."""

from __future__ import annotations

import plotly.graph_objects as go
import torch

from ..core.scan import top_heads

__all__ = ["STYLE", "COLORS", "CONDITION_LABELS", "aie_of", "top_pairs", "heatmap_trace"]

STYLE = dict(template="simple_white", font=dict(family="Helvetica, Arial, sans-serif", size=13))
COLORS = {
    "icl": "#4C72B0",
    "zero_shot": "#BBBBBB",
    "zero_shot_fv": "#DD8452",
    "shuffled": "#8C8C8C",
    "shuffled_fv": "#C44E52",
    "mean_state": "#55A868",
    "task_vector": "#8172B3",
}
CONDITION_LABELS = {
    "icl": "10-shot ICL",
    "zero_shot": "zero-shot",
    "zero_shot_fv": "zero-shot + FV",
    "shuffled": "shuffled",
    "shuffled_fv": "shuffled + FV",
    "mean_state": "zero-shot + mean state",
    "task_vector": "zero-shot + task vector (Hendel)",
}


def aie_of(scan) -> torch.Tensor:
    """The ``[layer, head]`` AIE of a HeadScan (or an AIE tensor itself)."""
    return scan.aie if hasattr(scan, "aie") else torch.as_tensor(scan)


def top_pairs(aie: torch.Tensor, k: int) -> list[tuple[int, int]]:
    return [(l, h) for l, h, _ in top_heads(aie, k)]


def heatmap_trace(aie: torch.Tensor, sem: torch.Tensor | None = None, showscale: bool = True, zmax=None):
    L, H = aie.shape
    zmax = zmax or float(torch.nan_to_num(aie).abs().max()) or 1.0
    custom = sem.numpy() if sem is not None else None
    hover = (
        "layer %{y}, head %{x}<br>AIE %{z:.4f}"
        + ("<br>s.e. %{customdata:.4f}" if custom is not None else "")
        + "<extra></extra>"
    )
    return go.Heatmap(
        z=aie.numpy(),
        x=list(range(H)),
        y=list(range(L)),
        colorscale="RdBu_r",
        zmid=0,
        zmin=-zmax,
        zmax=zmax,
        customdata=custom,
        hovertemplate=hover,
        showscale=showscale,
        colorbar=dict(title="AIE"),
    )
