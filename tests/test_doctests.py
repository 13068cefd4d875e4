"""The runnable examples in the package's docstrings run (the ones not marked +SKIP).

:data:`WITH_EXAMPLES` lists the modules that have examples; each must have at least one that runs
(an example deleted or marked +SKIP fails here), and a module that gains examples must be listed,
so none is left unrun.
"""

import doctest
import importlib
import pkgutil

import pytest

import workbench

WITH_EXAMPLES = (
    "workbench.base.checks",
    "workbench.base.files",
    "workbench.base.stage_cache",
    "workbench.base.stats",
    "workbench.core.forward",
    "workbench.core.hooks",
    "workbench.core.layer_skip",
    "workbench.core.model",
    "workbench.core.padding",
    "workbench.core.plan",
    "workbench.core.scan",
    "workbench.core.tiny",
    "workbench.data.label_baselines",
    "workbench.data.contrasts",
    "workbench.data.prompts",
    "workbench.data.tasks",
    "workbench.method.evaluate",
    "workbench.method.pipeline",
    "workbench.method.preflight",
    "workbench.method.protocol",
    "workbench.method.vectors",
    "workbench.show.figures",
    "workbench.show.figures.scan",
    "workbench.show.formats",
    "workbench.show.baseline_marks",
    "workbench.show.study_figures",
    "workbench.show.style",
    "workbench.studies.agreement",
    "workbench.studies.cache",
    "workbench.studies.registry",
    "workbench.studies.study",
    "workbench.teach.checking",
)


def runnable_examples(name: str) -> int:
    tests = doctest.DocTestFinder().find(importlib.import_module(name))
    return sum(1 for t in tests for e in t.examples if not e.options.get(doctest.SKIP))


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and runnable_examples(name) > 0, f"{name} has no runnable example"
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"


def test_every_module_with_examples_is_listed():
    modules = [m.name for m in pkgutil.walk_packages(workbench.__path__, "workbench.")]
    unlisted = [name for name in modules if name not in WITH_EXAMPLES and runnable_examples(name)]
    assert not unlisted, f"add these modules to WITH_EXAMPLES so their examples run: {unlisted}"
