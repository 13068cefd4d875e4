"""Induction scores against the attention modules' own outputs; ablation curves against plain hooks."""

import pytest
import torch
from reference import patch_heads, plain_top1

from workbench.core.model import model_info
from workbench.show import figures
from workbench.studies.induction import ablation_curves, head_sets, induction_scores


def test_induction_scores_against_hf_modules(trained):
    model = trained[0]
    info = model_info(model)
    n_seq, T = 4, 7
    got = induction_scores(model, n_seq=n_seq, seq_len=T, seed=3)
    # the same sequences, rebuilt here
    gen = torch.Generator().manual_seed(3)
    low = 1000 if info.d_vocab > 4000 else 4
    rand = torch.randint(low, info.d_vocab - 1, (n_seq, T), generator=gen)
    bos = [] if info.bos_id is None else [info.bos_id]
    tokens = torch.cat([torch.tensor(bos, dtype=torch.long).expand(n_seq, len(bos)), rand, rand], 1)
    hf = model.original_model
    o_in, norm_in, attn = {}, {}, {}
    hooks = [
        layer.self_attn.register_forward_hook(lambda m, a, o, i=i: attn.__setitem__(i, o[1].detach()))
        for i, layer in enumerate(hf.model.layers)
    ]
    hooks += [
        layer.self_attn.o_proj.register_forward_pre_hook(lambda m, a, i=i: o_in.__setitem__(i, a[0].detach()))
        for i, layer in enumerate(hf.model.layers)
    ]
    hooks.append(hf.model.norm.register_forward_hook(lambda m, a, o: norm_in.__setitem__(0, a[0].detach())))
    try:
        with torch.no_grad():
            hf(tokens)
    finally:
        for h in hooks:
            h.remove()
    off = len(bos)
    q = torch.arange(off + T, off + 2 * T - 1)
    k = q - T + 1
    prefix = torch.stack([a[:, :, q, k].mean((0, 2)) for _, a in sorted(attn.items())])
    assert torch.allclose(got["prefix_matching"], prefix, atol=1e-5)
    W_U = hf.lm_head.weight.float()  # [vocab, d]
    gain = hf.model.norm.weight.float()
    x = norm_in[0][:, q]
    scale = gain / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + hf.model.norm.variance_epsilon)
    direction = W_U[tokens[:, k]] - W_U.mean(0)
    dh = info.d_head
    copying = torch.zeros(info.n_layers, info.n_heads)
    for l, layer in enumerate(hf.model.layers):
        W_o = layer.self_attn.o_proj.weight.float()  # [d, H * dh]
        for h in range(info.n_heads):
            head_out = o_in[l][:, q, h * dh : (h + 1) * dh] @ W_o[:, h * dh : (h + 1) * dh].T
            copying[l, h] = (head_out * scale * direction).sum(-1).mean()
    assert torch.allclose(got["copying"], copying, atol=1e-4)


def test_head_sets_exclude_each_other():
    aie = torch.tensor([[0.9, 0.1, 0.0, 0.5], [0.8, 0.2, 0.3, 0.4]])
    ind = torch.tensor([[0.9, 0.0, 0.7, 0.0], [0.0, 0.6, 0.0, 0.0]])
    s = head_sets(aie, ind, 25)  # 2 heads of 8
    assert s["fv"] == [(0, 0), (1, 0)] and s["induction"] == [(0, 0), (0, 2)]
    assert s["fv_not_induction"] == [(1, 0)] and s["induction_not_fv"] == [(0, 2)]


def test_ablation_curves_against_plain_hooks(trained, trained_run):
    model = trained[0]
    scores = induction_scores(model, n_seq=4, seq_len=7)
    ind = scores["prefix_matching"]
    out = ablation_curves(model, trained_run, ind, percents=(25, 50), n_random=1)
    icl = trained_run.prompt_sets(model)["test_icl"]
    mean_z = trained_run.means.mean_z

    def patch(heads):
        return patch_heads(mean_z, heads)

    assert out["none"] == pytest.approx(plain_top1(model, icl))
    for i, p in enumerate((25, 50)):
        for name, heads in head_sets(trained_run.scan.aie, ind, p).items():
            assert out[name][i] == pytest.approx(plain_top1(model, icl, lambda j, hs=heads: patch(hs))), (
                p,
                name,
            )
    fig = figures.induction_figure(
        {
            "t": {
                **out,
                "aie": trained_run.scan.aie.tolist(),
                "prefix_matching": ind.tolist(),
                "copying": scores["copying"].tolist(),
                "top_induction": [],
            }
        }
    )
    assert set(fig) == {"_scatter", "_ablation"}
