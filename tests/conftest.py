"""Shared fixtures: tiny random models (milliseconds, no network) and the real embedded model.

The suite never writes into a user's cache: stage results go to a fresh temporary folder, and
dequantized weights to ``build/test-cache`` in the repository (ignored by git, kept between local
runs so the embedded model is dequantized once).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for `reference` and `trained_tiny`

REPO = Path(__file__).resolve().parent.parent
os.environ["WORKBENCH_CACHE"] = str(REPO / "build" / "test-cache")  # before any workbench import reads it


def pytest_collection_modifyitems(config, items):
    """A test that loads the embedded model must say so (``-m "not real_model"`` must skip it)."""
    unmarked = [
        i.nodeid for i in items if "real_model" in i.fixturenames and not i.get_closest_marker("real_model")
    ]
    if unmarked:
        raise pytest.UsageError(
            f"tests using the real_model fixture without @pytest.mark.real_model: {unmarked}"
        )


@pytest.fixture(autouse=True, scope="session")
def _isolated_stage_cache(tmp_path_factory):
    os.environ["WORKBENCH_STAGE_CACHE"] = str(tmp_path_factory.mktemp("stages"))


@pytest.fixture(scope="session")
def tiny():
    """One tiny random model of each architecture family."""
    from workbench.core.tiny import tiny_model

    return {arch: tiny_model(arch) for arch in ("llama", "gemma3", "gpt2")}


@pytest.fixture(scope="session")
def toy_task():
    from workbench.data.tasks import Task

    words = ["apple", "river", "green", "stone", "cloud", "table", "music", "horse", "light", "paper"]
    return Task.from_pairs(
        "toy-capitalize", [(f"{w}{i}", f"{w.capitalize()}{i}") for i in range(12) for w in words]
    )


@pytest.fixture(scope="session")
def real_model():
    """The embedded default model (real pretrained weights, offline)."""
    from workbench.core.loading import DEFAULT_MODEL, load_model

    return load_model(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def trained():
    """A tiny Llama trained to do ICL partly (``trained_tiny.py``), and its held-out capitalize task:
    the model whose clean ICL answers some queries right and some wrong."""
    from trained_tiny import trained_copy_model

    from workbench.core.model import bridge_from_hf
    from workbench.data.tasks import Task

    hf, tokenizer, pairs = trained_copy_model()
    return bridge_from_hf(hf, tokenizer, "trained-tiny"), Task.from_pairs("trained-capitalize", pairs)


@pytest.fixture(scope="session")
def trained_run(trained):
    """A small run of the protocol on the trained tiny model (clean ICL neither 0 nor 1)."""
    from workbench.method.pipeline import run_task
    from workbench.method.protocol import Protocol

    result = run_task(
        *trained, Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=3, seed=2), progress=False
    )
    assert 0 < result.accuracy_unfiltered["icl"].top1 < 1
    return result
