"""The majority-label and chance baselines drawn on accuracy bars: one short dash per task.

>>> fig = go.Figure(go.Bar(x=["a", "b"], y=[0.5, 0.9]))
>>> add_label_baselines(fig, ["a", "b"], [0.5, 0.1], [0.5, 0.05])
>>> [t.name for t in fig.data]
[None, 'majority label', 'chance']
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

__all__ = ["add_label_baselines"]


def add_label_baselines(
    fig: go.Figure, tasks: Sequence[str], majority: Sequence[float | None], chance: Sequence[float | None]
) -> None:
    """Add each task's majority and chance accuracy to a bar figure whose x axis is ``tasks``."""
    for name, values, color, symbol in (
        ("majority label", majority, "black", "line-ew-open"),
        ("chance", chance, "grey", "line-ew"),
    ):
        fig.add_trace(
            go.Scatter(
                x=list(tasks),
                y=list(values),
                mode="markers",
                name=name,
                marker=dict(symbol=symbol, size=34, color=color, line=dict(width=3, color=color)),
                hovertemplate=f"%{{x}}: {name} %{{y:.1%}}<extra></extra>",
            )
        )
