"""A model run in bfloat16 still has its scores computed in float32: the scan's probabilities, the
variants' probabilities and the head means (the FV's terms) come from the model's bf16 outputs cast
up before any softmax, difference or sum.  Each check recomputes the float32 figure from the very
tensors the model returned, and shows that a bf16 computation would have differed (so it can fail)."""

from __future__ import annotations

import pytest
import torch

from workbench.core.heads import mean_head_activations
from workbench.core.hooks import add_vector
from workbench.core.model import hook_name, model_info
from workbench.core.scan import attribution_scan, scan_heads
from workbench.core.tiny import tiny_model
from workbench.core.variants import plain_forwards, variant_scores
from workbench.data.prompts import EncodedPrompt


@pytest.fixture(scope="module")
def bf16():
    return tiny_model("llama", dtype=torch.bfloat16, unverified=True)


def _prompts(n: int, length: int = 12) -> list[EncodedPrompt]:
    gen = torch.Generator().manual_seed(0)
    return [
        EncodedPrompt(tuple(int(i) for i in torch.randint(3, 300, (length,), generator=gen)), 70 + i, None)
        for i in range(n)
    ]


def _recording(model, monkeypatch, extra_hooks=()):
    outputs = []
    original = model.run_with_hooks

    def run(*args, fwd_hooks=(), **kwargs):
        out = original(*args, fwd_hooks=list(fwd_hooks) + list(extra_hooks), **kwargs)
        outputs.append(out.detach().clone())
        return out

    monkeypatch.setattr(model, "run_with_hooks", run)
    return outputs


def test_scan_probabilities_are_a_float32_softmax(bf16, monkeypatch):
    info = model_info(bf16)
    prompt = _prompts(1)[0]
    mean_z = torch.randn(info.n_layers, info.n_heads, info.d_head)
    logits = _recording(bf16, monkeypatch)
    with plain_forwards():  # the one-forward path, whose logits the recorder sees
        scan = scan_heads(bf16, [prompt], mean_z, progress=False)
    assert len(logits) == 1 and logits[0].dtype == torch.bfloat16 and scan.effects.dtype == torch.float32
    rows = logits[0][0]  # [1 + heads, d_vocab]: the unpatched last token, then each head's variant
    p32 = rows.float().softmax(-1)[:, prompt.answer_id]
    got = scan.effects[0].flatten()  # heads in (layer, head) order, as the scan lists them
    assert torch.allclose(got, p32[1:] - p32[0], atol=1e-7, rtol=0)
    p16 = rows.softmax(-1)[:, prompt.answer_id].float()
    assert (got - (p16[1:] - p16[0])).abs().max() > 1e-5  # a bf16 softmax would not pass the line above


def test_variant_probabilities_are_a_float32_softmax(bf16):
    info = model_info(bf16)
    prompts = _prompts(3)
    vec = torch.randn(info.d_model)
    scores = variant_scores(bf16, prompts, {"none": None, "add": add_vector(bf16, 0, vec)}, keep_logits=True)
    answers = torch.tensor([p.answer_id for p in prompts])
    for name in ("none", "add"):
        logits = scores[name].logits  # the model's bf16 logits, cast up
        assert torch.equal(logits, logits.bfloat16().float())  # bf16 values indeed
        p32 = logits.softmax(-1).gather(1, answers[:, None])[:, 0]
        assert scores[name].probs.dtype == torch.float32
        assert torch.allclose(scores[name].probs, p32, atol=1e-8, rtol=0)
        p16 = logits.bfloat16().softmax(-1).float().gather(1, answers[:, None])[:, 0]
        assert (scores[name].probs - p16).abs().max() > 0 or (p32 - p16).abs().max() == 0


def test_head_means_are_summed_and_mapped_in_float32(bf16, monkeypatch):
    info = model_info(bf16)
    prompts = _prompts(4)
    zs: dict[int, torch.Tensor] = {}

    def grab(z, hook):
        zs.setdefault(hook.layer(), []).append(z[:, -1].detach().clone())

    _recording(bf16, monkeypatch, [(hook_name("z", l), grab) for l in range(info.n_layers)])
    means = mean_head_activations(bf16, prompts, progress=False)
    assert means.mean_out.dtype == torch.float32
    for l in range(info.n_layers):
        z = torch.cat(zs[l]).float()  # [prompt, head, d_head], the model's bf16 values
        W_O = bf16.W_O[l].float()
        expected = torch.einsum("phd,hdm->phm", z, W_O).mean(0)
        assert torch.allclose(means.mean_out[l], expected, atol=1e-5, rtol=1e-5)
        in_bf16 = torch.einsum("phd,hdm->phm", z.bfloat16(), W_O.bfloat16()).float().mean(0)
        assert (in_bf16 - expected).abs().max() > 1e-5  # the map in bf16 would not pass


def test_attribution_estimates_are_float32(bf16):
    info = model_info(bf16)
    mean_z = torch.randn(info.n_layers, info.n_heads, info.d_head)
    scan = attribution_scan(bf16, _prompts(1), mean_z, progress=False)
    assert scan.effects.dtype == torch.float32 and scan.effects.isfinite().all()
