"""The figures of the ``induction`` study."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import torch

from ...studies.induction import InductionHeads
from ..style import STYLE
from . import records, study_figure

__all__ = ["induction_figure"]


@study_figure("induction")
def induction_figure(by_task: Any) -> dict[str, go.Figure]:
    """FV heads against induction heads (:mod:`workbench.studies.induction`): each head's prefix-matching
    score against its AIE averaged over the tasks, and clean ICL accuracy as the top n % of FV heads
    (sparing induction heads), of induction heads (sparing FV heads) or random heads are ablated
    (mean over tasks, error bars: standard error over tasks)."""
    by_task = records(by_task, InductionHeads)
    tasks = list(by_task)
    aie = torch.stack([torch.tensor(by_task[t].aie) for t in tasks]).mean(0)
    ind = torch.tensor(by_task[tasks[0]].prefix_matching)
    L, H = aie.shape
    labels = [f"L{l}H{h}" for l in range(L) for h in range(H)]
    scatter = go.Figure(
        go.Scatter(
            x=ind.flatten().tolist(),
            y=aie.flatten().tolist(),
            mode="markers",
            text=labels,
            hovertemplate="%{text}<br>prefix matching %{x:.3f}<br>AIE %{y:.4f}<extra></extra>",
        )
    )
    scatter.update_layout(
        title=f"Induction (prefix matching) against AIE (mean over {len(tasks)} tasks)",
        xaxis_title="prefix-matching score",
        yaxis_title="AIE",
        width=600,
        height=480,
        **STYLE,
    )
    percents = by_task[tasks[0]].percents
    curves = go.Figure()
    names = {
        "fv_not_induction": "FV heads, induction spared",
        "induction_not_fv": "induction heads, FV spared",
        "random": "random heads",
    }
    for key, label in names.items():
        vals = torch.tensor([by_task[t].curve(key) for t in tasks], dtype=torch.float)  # [task, percent]
        err = vals.std(0) / len(tasks) ** 0.5 if len(tasks) > 1 else torch.zeros(len(percents))
        curves.add_scatter(
            x=percents, y=vals.mean(0).tolist(), error_y=dict(type="data", array=err.tolist()), name=label
        )
    base = sum(by_task[t].none for t in tasks) / len(tasks)
    curves.add_hline(y=base, line_dash="dash", line_color="#999", annotation_text="no ablation")
    curves.update_layout(
        title=f"Clean ICL accuracy under last-token mean ablation ({len(tasks)} tasks)",
        xaxis_title="heads ablated (% of all heads)",
        yaxis_title="10-shot top-1 accuracy",
        width=700,
        height=440,
        **STYLE,
    )
    return {"_scatter": scatter, "_ablation": curves}
