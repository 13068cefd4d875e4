"""The baseline zoo against plain per-prompt forwards with hooks written here."""

import pytest
import torch
from reference import add_after, plain_top1

from workbench.show import figures
from workbench.studies.baselines import baseline_zoo, momentum_average, separator_states


def test_momentum_average_by_hand():
    s = torch.tensor([[1.0], [3.0], [2.0]])  # running means 1, 2, 2
    # m1 = 0.5*0 + (2-1) = 1; m2 = 0.5*1 + (2-2) = 0.5; result 2 + 0.5
    assert momentum_average(s, beta=0.5).item() == pytest.approx(2.5)
    assert momentum_average(s, beta=0.0).item() == pytest.approx(2.0)


def test_separator_states_against_hf_layer_outputs(trained_run, trained):
    model = trained[0]
    prompts = trained_run.prompt_sets(model)["means"][:3]
    got = separator_states(model, prompts, [0, 1])
    hf = model.original_model
    total = None
    for p in prompts:
        ids = list(p.ids)
        pos = [i + 1 for i in range(len(ids) - 2) if ids[i : i + 2] == ids[-2:]]
        outs = {}
        hooks = [
            layer.register_forward_hook(
                lambda m, a, o, i=i: outs.__setitem__(i, (o[0] if isinstance(o, tuple) else o)[0])
            )
            for i, layer in enumerate(hf.model.layers)
        ]
        with torch.no_grad():
            hf(torch.tensor([ids]))
        for h in hooks:
            h.remove()
        s = torch.stack([outs[0][pos], outs[1][pos]])
        total = s if total is None else total + s
    assert got.shape[1] == 3  # the trained task's prompts have 3 demonstrations
    assert torch.allclose(got, total / 3, atol=1e-4)


def test_zoo_against_plain_hooks(trained, trained_run):
    model = trained[0]
    out = baseline_zoo(model, trained_run, n_icv_pairs=8)
    sets = trained_run.prompt_sets(model)
    valid, test = sets["valid_zero_shot"], sets["test_zero_shot"]
    right = trained_run.icl_correct
    m = trained_run.means.mean_resid
    scores = [plain_top1(model, valid, lambda i, L=L: add_after(L, m[L])) for L in range(2)]
    L = max(range(2), key=lambda L: (scores[L], -L))
    assert out["chosen"]["mean_icl"] == L and out["valid"]["mean_icl"] == pytest.approx(scores[L])
    assert out["test"]["mean_icl"]["top1"] == pytest.approx(
        plain_top1(model, test, lambda i: add_after(L, m[L]))
    )
    kept = [p for p, ok in zip(test, right) if ok]
    assert out["test"]["mean_icl"]["filtered"] == pytest.approx(
        plain_top1(model, kept, lambda i: add_after(L, m[L]))
    )
    assert out["test"]["none"]["top1"] == pytest.approx(plain_top1(model, test))
    assert set(out["test"]) == {
        "none",
        "fv",
        "fv_centered",
        "task_vector",
        "mean_icl",
        "icl_minus_zero",
        "icv",
        "state_vector",
    }
    fig = figures.zoo_figure({"t": out})
    assert len(fig.data) == 1
