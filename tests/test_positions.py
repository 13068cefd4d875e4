"""Where the FV is added (studies/positions.py): last position, every position, every position
after BOS, against plain transformers on the trained tiny model."""

import dataclasses

import pytest
from reference import hf_ranks, top1

from workbench.studies.positions import every_position_effect


def test_every_position_effect_against_plain_transformers(trained, trained_run):
    model, run = trained[0], dataclasses.replace(trained_run, fv_layer=0)  # a layer with one after it
    alphas = [1.0, 4.0]
    out = every_position_effect(model, run, alphas)
    sets, v = run.prompt_sets(model), run.fv.vector
    assert out["layer"] == 0 and out["alphas"] == alphas
    moved = False
    for name in ("zero_shot", "shuffled"):
        prompts = sets[f"test_{name}"]
        row = out[name]
        assert row["n"] == len(prompts)
        assert row["none"] == pytest.approx(top1(hf_ranks(model, prompts)))
        for a in alphas:
            last = top1(hf_ranks(model, prompts, add=(0, a * v)))
            every = top1(hf_ranks(model, prompts, add=(0, a * v), add_from=0))
            after_bos = top1(hf_ranks(model, prompts, add=(0, a * v), add_from=1))
            assert row["last"][str(a)] == pytest.approx(last)
            assert row["every"][str(a)] == pytest.approx(every)
            assert row["every_after_bos"][str(a)] == pytest.approx(after_bos)
            moved |= every != last
    assert moved  # the positions make a difference here, so the three conditions are told apart
