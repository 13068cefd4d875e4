"""Studies of finished runs; each takes :class:`~workbench.method.result.TaskResult` objects.

- one module per study (``positions.py``, ``signed.py``, ``induction.py``, ``head_count.py``,
  ``baselines.py``, ``sites.py``, ``diagnose.py``), each declaring one ``STUDY``: a
  :class:`~.study.Study` record (name, summary, parameters, ``compute(run)`` -> typed record);
- :mod:`.study`: what a record is; :mod:`.registry`: ``STUDIES``, every record by name, collected
  from this package's modules (``workbench study --help`` lists them; ``workbench study NAME``
  runs one, :func:`workbench.show.report.run_study` in Python).
- :mod:`.cache`: a study's numbers as a stage of the run's key.
- :mod:`.paper`: composition, ablation, head-count curves, baseline sweeps (the paper's figures).
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
