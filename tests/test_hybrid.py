"""The hybrid scan: attribution patching picks the candidates, and their scores are the exact scan's
(checked against the plain one-forward-per-head reference); the other heads are NaN."""

from __future__ import annotations

import pytest
import torch
from reference import reference_scan

from workbench.core.heads import mean_head_activations
from workbench.core.scan import attribution_scan, hybrid_candidates, scan_heads, top_heads
from workbench.data.prompts import sample_prompts
from workbench.method.protocol import Protocol, ProtocolError, encode


@pytest.fixture(scope="module")
def setup(tiny, toy_task):
    model = tiny["llama"]
    split = toy_task.split(0)
    clean = encode(model, sample_prompts(split, 6, 3, "icl", seed=1))
    corrupted = encode(model, sample_prompts(split, 3, 3, "shuffled", seed=2))
    return model, corrupted, mean_head_activations(model, clean, progress=False).mean_z


def test_candidates_scores_equal_the_exact_scan(setup):
    model, prompts, mean_z = setup
    hybrid = scan_heads(model, prompts, mean_z, method="hybrid", candidates=3, progress=False)
    approx = attribution_scan(model, prompts, mean_z, progress=False)
    chosen = sorted((l, h) for l, h, _ in top_heads(approx.aie, 3))
    assert hybrid.meta["method"] == "hybrid" and hybrid.meta["candidates"] == 3
    ref = reference_scan(model, prompts, mean_z)  # every head, one plain forward each
    scanned = ~hybrid.effects[0].isnan()
    assert sorted(map(tuple, scanned.nonzero().tolist())) == chosen
    assert torch.allclose(hybrid.effects[:, scanned], ref[:, scanned], atol=1e-6, rtol=0)
    assert hybrid.effects[:, ~scanned].isnan().all()
    restricted = torch.where(scanned, ref.mean(0), torch.tensor(float("nan")))
    assert [x[:2] for x in hybrid.top_heads(3)] == [x[:2] for x in top_heads(restricted, 3)]


def test_all_candidates_is_the_exact_scan(setup):
    model, prompts, mean_z = setup
    n = mean_z.shape[0] * mean_z.shape[1]
    hybrid = scan_heads(model, prompts, mean_z, method="hybrid", candidates=n, progress=False)
    exact = scan_heads(model, prompts, mean_z, progress=False)
    assert torch.allclose(hybrid.effects, exact.effects, atol=1e-7, rtol=0)


def test_bad_candidates_and_protocol(setup):
    model, prompts, mean_z = setup
    with pytest.raises(ValueError, match="candidates"):
        hybrid_candidates(attribution_scan(model, prompts[:1], mean_z, progress=False), 0)
    with pytest.raises(ValueError, match="unknown method"):
        scan_heads(model, prompts, mean_z, method="fast", progress=False)
    with pytest.raises(ProtocolError, match="scan_method"):
        Protocol(scan_method="attribution")


def test_run_task_with_the_hybrid_scan(tiny, toy_task):
    from workbench.method.pipeline import run_task

    protocol = Protocol(
        n_shot=2, n_mean_prompts=4, n_scan_prompts=2, top_k=2, scan_method="hybrid", scan_candidates=3
    )
    result = run_task(tiny["llama"], toy_task, protocol, progress=False)
    assert int((~result.scan.aie.isnan()).sum()) == 3
    assert {tuple(h) for h in result.fv.heads} <= {tuple(h) for h in result.scan.meta["candidates"]}
