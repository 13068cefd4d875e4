"""The runnable examples in the package's docstrings run (the ones not marked +SKIP)."""

import doctest
import importlib
import pkgutil

import pytest

import workbench

MODULES = [m.name for m in pkgutil.walk_packages(workbench.__path__, "workbench.")]  # subpackages too


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
