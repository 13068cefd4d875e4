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


def test_zoo_soft_row_against_a_plain_blend_and_from_cached_parts(trained, trained_run, tmp_path):
    """With soft steps the zoo is the zoo without them (its own cached stage) plus the soft row;
    the row's accuracy equals the fitted alphas applied by a blend hook written here."""
    from workbench.base.stage_cache import StageCache
    from workbench.beyond.soft import fit_soft_task_vector
    from workbench.studies.registry import compute_study, study_params

    model = trained[0]
    run = trained_run
    cache = StageCache(tmp_path)
    params = study_params("zoo", soft_steps=40)
    out = compute_study("zoo", model, ["t"], {"t": run}, params, cache=cache, progress=False)["t"].to_dict()
    assert list((tmp_path / "study_zoo").glob("*.safetensors")), "the zoo part is a stage of its own"
    plain = baseline_zoo(model, run)
    assert set(out["test"]) == set(plain["test"]) | {"soft"}
    for name, acc in plain["test"].items():
        assert out["test"][name] == pytest.approx(acc), name
    sets = run.prompt_sets(model)
    soft = fit_soft_task_vector(
        model, sets["train_zero_shot"], run.means.mean_z, steps=40, seed=run.protocol.seed, progress=False
    )
    alpha, mean_z = soft.alpha.detach(), run.means.mean_z

    def blend(z, hook):
        a = alpha[hook.layer()][:, None]
        z[:, -1] = (1 - a) * z[:, -1] + a * mean_z[hook.layer()]
        return z

    hooks = [(f"blocks.{layer}.attn.hook_z", blend) for layer in range(alpha.shape[0])]
    test = sets["test_zero_shot"]
    assert out["test"]["soft"]["top1"] == pytest.approx(plain_top1(model, test, lambda i: hooks))
    kept = [p for p, ok in zip(test, run.icl_correct) if ok]
    assert out["test"]["soft"]["filtered"] == pytest.approx(plain_top1(model, kept, lambda i: hooks))
    assert out["soft"] == {"steps": 40, "heads_on": soft.n_on()}
    assert out["test"]["soft"]["top1"] > out["test"]["none"]["top1"]  # the row can tell a wrong blend apart
    assert baseline_zoo(model, run, soft_steps=40)["test"]["soft"] == pytest.approx(out["test"]["soft"])
