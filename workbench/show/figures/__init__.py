"""Plotly figures of the workbench's results, one look for all (:mod:`workbench.show.style`), and
their export.

Every function takes result objects (a HeadScan, LayerSweep, TaskResult, or a study's result) and
never runs a model.  By topic:

- :mod:`.scan`: the AIE heatmap of one task and the grid over tasks;
- :mod:`.evaluation`: accuracy by layer, by head count, per task and condition;
- :mod:`.vectors`: decoded vectors, steering and soft task vectors;
- :mod:`.export`: offline HTML, and PNG/PDF where a Chromium is available;
- each study's own figure lives beside the others in :mod:`workbench.show.study_figures`, and is
  also reachable here by name.

>>> import torch
>>> from workbench.show import figures
>>> fig = figures.aie_heatmap(torch.rand(4, 3), top_k=2, title="toy")
>>> len(fig.layout.shapes)
2
"""

from __future__ import annotations

from ..study_figures.diagnose import injection_figure
from ..study_figures.head_count import head_count_choice_figure
from ..study_figures.induction import induction_figure
from ..study_figures.positions import positions_figure
from ..study_figures.signed import signed_figure
from ..study_figures.sites import sites_figure, state_split_figure
from ..study_figures.zoo import zoo_figure
from ..style import CONDITION_LABELS, STYLE
from .evaluation import (
    accuracy_comparison,
    grouped_bars,
    head_count_figure,
    layer_sweep_figure,
    scatter_figure,
)
from .export import export
from .scan import aie_grid, aie_heatmap
from .vectors import decoded_figure, soft_alpha_figure, steering_figure

__all__ = [
    "aie_heatmap",
    "aie_grid",
    "layer_sweep_figure",
    "head_count_figure",
    "accuracy_comparison",
    "decoded_figure",
    "grouped_bars",
    "scatter_figure",
    "soft_alpha_figure",
    "injection_figure",
    "steering_figure",
    "positions_figure",
    "signed_figure",
    "induction_figure",
    "zoo_figure",
    "sites_figure",
    "state_split_figure",
    "head_count_choice_figure",
    "export",
    "CONDITION_LABELS",
    "STYLE",
]
