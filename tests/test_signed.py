"""Signed heads against plain per-prompt forwards with hooks written here."""

import dataclasses

import pytest
import torch
from reference import add_after, plain_top1
from reference import patch_heads as patch

from workbench.show import figures
from workbench.studies.signed import negative_heads, signed_heads_study


def test_negative_heads_are_the_lowest_aie(trained_run):
    aie = trained_run.scan.aie
    out = negative_heads(trained_run.scan, 3)
    values = sorted(aie.flatten().tolist())[:3]
    assert [v for _, _, v in out["bottom"]] == pytest.approx([v for v in values if v < 0])
    for l, h, v in out["significant"]:
        assert v < 0 and v / float(trained_run.scan.sem[l, h]) < -2


def test_signed_study_against_plain_hooks(trained):
    from test_paper import PROTOCOL

    from workbench.method.pipeline import run_task

    model, task = trained
    run = run_task(model, task, dataclasses.replace(PROTOCOL, top_k=2), progress=False)
    run = dataclasses.replace(run, fv_layer=0)  # a layer with one after it, so vectors matter
    out = signed_heads_study(model, run, k=2, n_random=1)
    sets = run.prompt_sets(model)
    mean_z, mean_out = run.means.mean_z, run.means.mean_out
    top = [tuple(h) for h in out["top"]]
    neg = [tuple(h) for h in out["negative"]]
    assert top == [(l, h) for l, h, _ in run.scan.top_heads(2)]
    assert all(float(run.scan.aie[h]) < 0 for h in neg)
    icl = sets["test_icl"]
    assert out["ablation"]["icl"]["top"] == pytest.approx(
        plain_top1(model, icl, lambda i: patch(mean_z, top))
    )
    # the trained model has heads of negative AIE, so the negative rows are measured, not skipped
    assert neg and out["negative"] == [
        [l, h]
        for l, h, v in sorted(
            ((l, h, float(run.scan.aie[l, h])) for l in range(2) for h in range(4)), key=lambda x: x[2]
        )[:2]
        if v < 0
    ]
    got = out["ablation"]["icl"]["negative"]
    assert got == pytest.approx(plain_top1(model, icl, lambda i: patch(mean_z, neg)))
    minus = sum(mean_out[h] for h in top) - sum(mean_out[h] for h in neg)
    zero = sets["test_zero_shot"]
    want = plain_top1(model, zero, lambda i: add_after(0, minus))
    assert out["vectors"]["zero_shot"]["fv_minus_negative"] == pytest.approx(want)
    want = plain_top1(model, zero, lambda i: add_after(0, sum(mean_out[h] for h in neg)))
    assert out["vectors"]["zero_shot"]["negative_only"] == pytest.approx(want)
    by_abs = sorted(((l, h) for l in range(2) for h in range(4)), key=lambda x: -abs(float(run.scan.aie[x])))[
        :2
    ]
    assert [tuple(h) for h in out["by_abs"]] == by_abs
    shuffled = sets["test_shuffled"]
    fv_abs = sum(mean_out[h] for h in by_abs)
    want = plain_top1(model, shuffled, lambda i: add_after(0, fv_abs))
    assert out["vectors"]["shuffled"]["fv_by_abs"] == pytest.approx(want)
    figs = figures.signed_figure({"t": out})
    assert len(figs["_heatmaps"].data) == 2 and torch.tensor(out["t"]).shape == (2, 4)
