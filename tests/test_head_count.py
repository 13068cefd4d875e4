"""The head count chosen on the validation split, jointly with the layer, against plain hooks."""

import dataclasses

import pytest
from reference import add_after, plain_top1
from test_paper import PROTOCOL

from workbench.method.pipeline import run_task
from workbench.method.protocol import Protocol, ProtocolError


def test_protocol_option_checks_and_round_trips():
    p = Protocol(head_count_rule="valid", head_counts=(2, 4))
    assert Protocol.from_dict(p.to_dict()) == p
    assert Protocol().head_count_rule == "fixed"  # the paper's fixed count stays the default
    with pytest.raises(ProtocolError, match="head_count_rule"):
        Protocol(head_count_rule="best")
    with pytest.raises(ProtocolError, match="center=False"):
        Protocol(head_count_rule="valid", center=True)
    with pytest.raises(ProtocolError, match="positive"):
        Protocol(head_count_rule="valid", head_counts=(0, 2))


def test_joint_choice_against_plain_hooks(trained):
    model, task = trained
    counts = (1, 2, 4, 8)
    protocol = dataclasses.replace(PROTOCOL, head_count_rule="valid", head_counts=counts)
    result = run_task(model, task, protocol, progress=False)
    choice = result.notes["head_count"]
    sets = result.prompt_sets(model)
    ranked = [(l, h) for l, h, _ in result.scan.top_heads(8)]
    mean_out = result.means.mean_out
    score = {}
    for k in counts:
        v = sum(mean_out[h] for h in ranked[:k])
        for layer in range(2):
            score[(k, layer)] = sum(
                plain_top1(model, sets[name], lambda i: add_after(layer, v))
                for name in ("valid_zero_shot", "valid_shuffled")
            )
    best = max(score.values())
    k_best = min(k for (k, _), s in score.items() if s == best)
    layer_best = min(layer for (k, layer), s in score.items() if s == best and k == k_best)
    assert choice["chosen"] == k_best == len(result.fv.heads)
    assert choice["layer"] == layer_best == result.fv_layer
    assert choice["valid_score_by_count"] == pytest.approx(
        [max(score[(k, L)] for L in range(2)) for k in counts]
    )
