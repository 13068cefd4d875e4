"""Studies of finished runs; each takes :class:`~workbench.method.result.TaskResult` objects.

- :mod:`.study`: what a study is (the :class:`~.study.Study` record, its parameters, its typed
  per-run result) and :mod:`.registry`, which collects one record per study module:

  ==============  ===================================================================================
  ``positions``   the FV at the last position against every position (a llama.cpp control vector)
  ``signed``      heads with negative AIE: ablated, left in, subtracted
  ``induction``   FV heads against induction heads: scores and ablation curves
  ``head_count``  the run redone with the head count chosen on valid (:mod:`.head_count`)
  ``zoo``         task vectors of other papers under one evaluator (:mod:`.baselines`)
  ``sites``       attention-layer and MLP indirect effects, and the split of the ICL state
  ``diagnose``    why an FV does or doesn't work zero-shot (also ``workbench diagnose``)
  ==============  ===================================================================================

  ``workbench study NAME`` runs any of them; :func:`workbench.show.report.run_study` in Python.
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
