"""Studies of finished runs; each takes :class:`~workbench.method.result.TaskResult` objects.

- :mod:`.paper`: composition, ablation, head-count curves, baseline sweeps,
- :mod:`.diagnose`: why an FV does or doesn't work zero-shot (``workbench diagnose``).
- :mod:`.agreement`: seed stability, attribution against exact, many runs merged.
"""

from .agreement import attribution_vs_exact, compare_runs, compare_scans, merge_results, top_k_overlap
from .diagnose import diagnose_run, head_count_grid, injection_diagnostics, state_tests
from .paper import MinimalHeads, ablation, baseline_sweeps, composition, find_minimal_heads, head_count_curves

__all__ = [
    "ablation",
    "attribution_vs_exact",
    "baseline_sweeps",
    "compare_runs",
    "compare_scans",
    "composition",
    "diagnose_run",
    "find_minimal_heads",
    "MinimalHeads",
    "head_count_curves",
    "head_count_grid",
    "injection_diagnostics",
    "merge_results",
    "state_tests",
    "top_k_overlap",
]
