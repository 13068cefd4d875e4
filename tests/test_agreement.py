"""How far scans and runs agree (studies/agreement.py), against statistics written out by hand."""

import dataclasses

import pytest
import torch
from reference import hf_ranks, spearman_by_hand, top1, top_by_hand

from workbench.core.scan import HeadScan
from workbench.method.result import ResultMismatch
from workbench.studies.agreement import compare_runs, compare_scans, merge_results


def test_compare_scans_and_runs_against_hand_computations(trained, trained_run):
    exact = trained_run.scan
    g = torch.Generator().manual_seed(3)
    other = HeadScan(exact.effects + 0.05 * torch.randn(exact.effects.shape, generator=g), model=exact.model)
    a, b = exact.aie.flatten().tolist(), other.aie.flatten().tolist()
    for k in (1, 3, 8):
        got = compare_scans(exact, other, k)
        assert got["spearman"] == pytest.approx(spearman_by_hand(a, b))
        assert got["top_k_overlap"] == pytest.approx(
            len(top_by_hand(exact.aie, k) & top_by_hand(other.aie, k)) / k
        )
        assert got["max_abs_diff"] == pytest.approx(max(abs(x - y) for x, y in zip(a, b)))
    assert compare_scans(exact, exact, 3)["spearman"] == pytest.approx(1.0)

    model = trained[0]
    second = dataclasses.replace(
        trained_run, scan=other, protocol=dataclasses.replace(trained_run.protocol, seed=9)
    )
    s = compare_runs(trained_run, second, k=3)
    zero = hf_ranks(
        model,
        trained_run.prompt_sets(model)["test_zero_shot"],
        add=(trained_run.fv_layer, trained_run.fv.vector),
    )
    right = hf_ranks(model, trained_run.prompt_sets(model)["test_icl"]) == 0
    assert s["zero_shot_fv"][0] == pytest.approx(top1(zero[right]))
    assert s["seeds"] == [2, 9] and s["spearman"] == pytest.approx(spearman_by_hand(a, b))

    merged = merge_results([trained_run, second])
    torch.testing.assert_close(merged.universal_aie, (exact.aie + other.aie) / 2)
    assert merged.mean["zero_shot_fv"] == pytest.approx(top1(zero[right]))  # both rows share the test ranks
    whole = merge_results([trained_run, second], whole_answer=True)
    assert whole.key == "answer_accuracy"
    for row, run in zip(whole.rows, (trained_run, second)):
        assert row["zero_shot_fv"] == run.answer_accuracy["zero_shot_fv"].top1
        assert row["icl"] == run.answer_accuracy["icl"].top1
    old = dataclasses.replace(second, answer_accuracy_unfiltered=None)
    with pytest.raises(ResultMismatch, match="no whole-answer scores"):
        merge_results([trained_run, old], whole_answer=True)
