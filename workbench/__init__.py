"""The function-vector workbench (Todd et al., "Function Vectors in Large Language Models").

    import workbench as wb

    model = wb.load_model()                         # the embedded SmolLM2-135M (offline)
    result = wb.run_task(model, "capitalize")       # the paper's protocol, stages cached
    result.scan.top_heads(10)                       # [(layer, head, AIE), ...]
    result.fv.decode(model)                         # the FV through the unembedding
    wb.figures.aie_heatmap(result)                  # plotly figures of any result
    result.save("runs/capitalize"); wb.TaskResult.load("runs/capitalize")
    suite = wb.run_suite(model, ["antonym", "present-past"], out="runs/suite")  # + the universal FV

The package is layered by job; a lower group never imports a higher one
(``tests/test_layers.py`` keeps it so):

    base     atomic files, the stage cache, statistics
    data     tasks, prompts, contrast files (text only, no model)
    core     TransformerLens mechanics: the model's facts and identity, loading, forwards,
             the intervention vocabulary, head means and the head -> residual map, the head scan,
             the self-check and the architecture-support matrix (support.py)
    method   the paper's protocol: Protocol and the run's prompt sets, vectors, evaluation,
             the pipeline, TaskResult
    beyond   methods after the paper: soft task vectors, contrastive steering
    studies  studies of finished runs: one module per study, each declaring one ``Study`` record
             (name, parameters, compute(run) -> typed record); registry.py collects them, and the
             ``workbench study`` command, its flags, the cached stage and the docs' study pages
             come from it; paper.py, agreement.py and cache.py serve them
    show     figures (by topic), one module per study's figure (registered by the study's name),
             report.py (the paper's figures, ``run_study``), attention views, the explorer
    teach    the course chapter and the exercises, with checks that name the mistake

Names here are imported on first use, so ``import workbench`` is instant.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it (a module path alone: the module itself)
_FACE = {
    # models
    "load_model": "workbench.core.loading",
    "DEFAULT_MODEL": "workbench.core.loading",
    "model_info": "workbench.core.model",
    "model_id": "workbench.core.model",
    "tiny_model": "workbench.core.tiny",
    "variant_batch": "workbench.core.forward",
    "plain_forwards": "workbench.core.forward",
    "verify_model": "workbench.core.selfcheck",
    "SelfCheck": "workbench.core.selfcheck",
    "ModelCheckFailed": "workbench.core.selfcheck",
    # tasks and prompts
    "load_task": "workbench.data.tasks",
    "list_tasks": "workbench.data.tasks",
    "Task": "workbench.data.tasks",
    "Pair": "workbench.data.tasks",
    "sample_prompts": "workbench.data.prompts",
    "encode": "workbench.method.protocol",
    # the protocol
    "Protocol": "workbench.method.protocol",
    "PromptSets": "workbench.method.protocol",
    "run_task": "workbench.method.pipeline",
    "TaskResult": "workbench.method.result",
    "run_suite": "workbench.method.suite",
    "SuiteResult": "workbench.method.suite",
    "suite_figures": "workbench.show.suite_figures",
    "label_baselines": "workbench.data.label_baselines",
    # heads
    "mean_head_activations": "workbench.core.heads",
    "HeadMeans": "workbench.core.heads",
    "scan_heads": "workbench.core.scan",
    "HeadScan": "workbench.core.scan",
    "top_heads": "workbench.core.scan",
    # vectors
    "FunctionVector": "workbench.method.vectors",
    "default_top_k": "workbench.method.vectors",
    "SoftTaskVector": "workbench.beyond.soft",
    "fit_soft_task_vector": "workbench.beyond.soft",
    "SteeringVector": "workbench.beyond.steering",
    "load_contrast": "workbench.data.contrasts",
    "encode_texts": "workbench.beyond.steering",
    "logit_gap": "workbench.beyond.steering",
    # interventions and evaluation
    "add_vector": "workbench.core.hooks",
    "mean_ablate_heads": "workbench.core.hooks",
    "project_out": "workbench.core.hooks",
    "generate": "workbench.core.hooks",
    "accuracy": "workbench.method.evaluate",
    "layer_sweep": "workbench.method.evaluate",
    "spearman": "workbench.base.stats",
    "compare_scans": "workbench.studies.agreement",
    # showing and teaching
    "attention_view": "workbench.show.attention",
    "explore": "workbench.show.explore",
    "paper_figures": "workbench.show.report",
    "figures": "workbench.show.figures",
    "studies": "workbench.studies",
    "exercises": "workbench.teach.exercises",
    "course": "workbench.teach.course",
}
_MODULES = {"figures", "studies", "exercises", "course"}

__all__ = sorted(_FACE)


def __getattr__(name: str) -> Any:
    if name not in _FACE:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}; the face lists {__all__}")
    module = importlib.import_module(_FACE[name])
    value = module if name in _MODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
