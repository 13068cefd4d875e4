"""Prompts of unequal length in one forward (workbench.core.padding): padded and unpadded results agree
to float rounding on tiny Llama, Gemma 3 (a sliding window narrower than the prompts) and GPT-2 (learned
absolute positions), and on the embedded model; the last-token logits also against the Hugging Face
model's own forward of each prompt alone.  A padded batch with the positions left out must fail the
same comparison, or the tests would prove nothing."""

import pytest
import torch
from test_variants import assert_same, every_intervention

import workbench.core.padding as padding
from workbench.core.forward import last_token_logits, plain_forwards
from workbench.core.heads import last_token_states, mean_head_activations
from workbench.core.hooks import add_vector
from workbench.core.model import model_info
from workbench.core.tiny import tiny_model
from workbench.core.variants import variant_scores
from workbench.data.tasks import load_task
from workbench.method.protocol import PromptSets, Protocol

TOL = 1e-5


@pytest.fixture(scope="module")
def models(tiny):
    """The tiny families, Gemma 3 with a 24-token sliding window (its local layer must mask)."""
    return {"llama": tiny["llama"], "gemma3": tiny_model("gemma3", sliding_window=24), "gpt2": tiny["gpt2"]}


def mixed_prompts(model, task, n_icl=10, n_zero=6):
    sets = PromptSets(task, Protocol(n_shot=3), model)
    prompts = sets["test_shuffled"][:n_icl] + sets["test_zero_shot"][:n_zero]
    assert len({len(p.ids) for p in prompts}) >= 4, "lengths must differ, or nothing is padded"
    return prompts


def count_padded(monkeypatch):
    """Spy on padding.run: the number of padded batches it ran."""
    seen = []
    real = padding.run

    def spy(model, batch, *args, **kwargs):
        seen.append(batch.padded)
        return real(model, batch, *args, **kwargs)

    monkeypatch.setattr(padding, "run", spy)
    return seen


def test_batches_sort_pad_left_and_keep_equal_lengths_apart_without_padding():
    prompts = [[9, 1, 2, 3], [9, 1], [9, 1, 2], [9, 4], [9] + [5] * 20]
    got = padding.batches(prompts, batch_size=3, pad=True)
    assert [b.idx for b in got] == [[1, 3, 2], [0], [4]]  # the 21-token prompt would be mostly pad
    assert got[0].pads == [1, 1, 0] and got[0].tokens.tolist() == [[9, 9, 1], [9, 9, 4], [9, 1, 2]]
    assert all(len(b.idx) * b.tokens.shape[1] <= padding.MAX_BATCH_TOKENS for b in got)
    plain = padding.batches(prompts, batch_size=3, pad=False)
    assert [b.idx for b in plain] == [[1, 3], [2], [0], [4]] and not any(b.padded for b in plain)
    big = padding.batches([[1] * 100] * 16, batch_size=16, pad=True)
    assert [len(b.idx) for b in big] == [10, 6]  # at most MAX_BATCH_TOKENS tokens per forward


def test_mask_and_positions_of_a_padded_row_with_variants_and_a_window():
    m = padding.attention_mask([2, 0], n=5, v=2, dtype=torch.float32, device="cpu", window=2)
    seen = (m[:, 0] == 0).int()
    # row 0: two pads (each sees itself), real tokens at columns 2..4, variants at 5, 6
    assert seen[0].tolist() == [
        [1, 0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 1, 0, 1, 0],
        [0, 0, 0, 1, 0, 0, 1],
    ]
    assert seen[1, 4].tolist() == [0, 0, 0, 1, 1, 0, 0] and seen[1, 5].tolist() == [0, 0, 0, 1, 0, 1, 0]
    assert padding.positions([2, 0], 5, 2).tolist() == [[0, 0, 0, 1, 2, 2, 2], [0, 1, 2, 3, 4, 4, 4]]


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_padded_logits_means_and_states_equal_unpadded_and_the_hf_forward(
    models, toy_task, arch, monkeypatch
):
    model = models[arch]
    prompts = mixed_prompts(model, toy_task)
    padded = count_padded(monkeypatch)
    logits = last_token_logits(model, prompts, batch_size=8)
    means = mean_head_activations(model, prompts, progress=False)
    states = last_token_states(model, prompts, [0, 1], batch_size=8)
    assert sum(padded) >= 3, "the forwards must be padded, or the test proves nothing"
    padded.clear()
    with plain_forwards():
        ref_logits = last_token_logits(model, prompts, batch_size=8)
        ref_means = mean_head_activations(model, prompts, progress=False)
        ref_states = last_token_states(model, prompts, [0, 1], batch_size=8)
    assert not any(padded)
    torch.testing.assert_close(logits, ref_logits, atol=TOL, rtol=0)
    for name, t in means.to_tensors().items():
        torch.testing.assert_close(t, ref_means.to_tensors()[name], atol=TOL, rtol=0)
    torch.testing.assert_close(states, ref_states, atol=TOL, rtol=0)
    hf = model.original_model  # independent: transformers' own forward of each prompt alone
    with torch.inference_mode():
        for i in (0, len(prompts) - 1):
            alone = hf(torch.tensor([prompts[i].ids])).logits[0, -1].float()
            torch.testing.assert_close(logits[i], alone, atol=TOL, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_padded_variants_equal_plain_forwards_for_every_intervention(models, toy_task, arch, monkeypatch):
    model = models[arch]
    prompts = mixed_prompts(model, toy_task)
    ivs = every_intervention(model, len(prompts))
    padded = count_padded(monkeypatch)
    fast = variant_scores(model, prompts, ivs, batch_size=4, variant_batch=5, keep_logits=True)
    assert sum(padded) >= 3
    plain = variant_scores(
        model, prompts, ivs, plain=True, keep_logits=True
    )  # unpadded, one per intervention
    assert_same(fast, plain, tol=TOL)


def test_gemma3_window_masks_are_what_keeps_padding_exact(models, toy_task, monkeypatch):
    """Leave the sliding-window masks out and the padded Gemma 3 forward differs: the window binds."""
    model = models["gemma3"]
    prompts = mixed_prompts(model, toy_task)
    assert max(len(p.ids) for p in prompts) > 24
    with plain_forwards():
        ref = last_token_logits(model, prompts, batch_size=8)
    monkeypatch.setattr(padding, "install_window_masks", lambda *a, **k: [])
    broken = last_token_logits(model, prompts, batch_size=8)
    assert (broken - ref).abs().max() > 1e-3


def test_padding_without_each_rows_positions_or_pad_mask_is_caught(models, toy_task, monkeypatch):
    """The comparisons above can fail: GPT-2's padded rows at the padded columns' positions (learned
    absolute positions; rotary ones are shift-invariant), or Llama's real tokens seeing the pad
    columns, give other logits."""
    prompts = mixed_prompts(models["gpt2"], toy_task)
    real_positions, real_mask = padding.positions, padding.attention_mask

    def unpadded_positions(pads, n, v=0, device=None):
        return real_positions([0] * len(pads), n, v, device)

    def pads_unmasked(pads, n, v, *args, **kwargs):
        return real_mask([0] * len(pads), n, v, *args, **kwargs)

    for arch, name, broken in (
        ("gpt2", "positions", unpadded_positions),
        ("llama", "attention_mask", pads_unmasked),
    ):
        model = models[arch]
        assert padding.padding_verified(model)  # checked before the breakage (it would refuse to pad)
        with plain_forwards():
            ref = last_token_logits(model, prompts, batch_size=8)
        with monkeypatch.context() as mp:
            mp.setattr(padding, name, broken)
            wrong = last_token_logits(model, prompts, batch_size=8)
        assert (wrong - ref).abs().max() > 1e-3, arch


def test_a_model_whose_padding_differs_keeps_equal_lengths_with_a_warning(toy_task, monkeypatch):
    """The once-per-model probe: GPT-2 with the rows' positions broken fails it, so it is never
    padded, and its numbers stay those of unpadded forwards."""
    model = tiny_model("gpt2", seed=1)
    real_positions = padding.positions
    monkeypatch.setattr(
        padding, "positions", lambda pads, n, v=0, device=None: real_positions([0] * len(pads), n, v, device)
    )
    prompts = mixed_prompts(model, toy_task)
    padded = count_padded(monkeypatch)
    with pytest.warns(UserWarning, match="will not share a forward"):
        got = last_token_logits(model, prompts, batch_size=8)
    assert not padding.padding_verified(model) and not any(padded[1:])  # [0]: the probe's own batch
    with plain_forwards():
        ref = last_token_logits(model, prompts, batch_size=8)
    assert torch.equal(got, ref)


def test_hooks_beyond_the_last_position_are_never_padded(models, toy_task, monkeypatch):
    """A hook from position 1 on (e.g. every token after BOS) must see unpadded rows."""
    model = models["llama"]
    prompts = mixed_prompts(model, toy_task)
    v = torch.randn(model_info(model).d_model) * 3
    padded = count_padded(monkeypatch)
    got = last_token_logits(model, prompts, add_vector(model, 0, v, from_position=1), batch_size=8)
    assert not any(padded)
    with plain_forwards():
        ref = last_token_logits(model, prompts, add_vector(model, 0, v, from_position=1), batch_size=8)
    assert torch.equal(got, ref)


@pytest.mark.real_model
def test_padding_on_the_embedded_model(real_model, monkeypatch):
    """SmolLM2-135M: ten-shot shuffled and zero-shot antonym prompts padded together; the logits, the
    means and a layer sweep's scores as unpadded, and the logits as transformers' own forward."""
    model = real_model
    sets = PromptSets(load_task("antonym"), Protocol(), model)
    prompts = sets["test_shuffled"][:5] + sets["test_zero_shot"][:3]
    assert len({len(p.ids) for p in prompts}) >= 3
    padded = count_padded(monkeypatch)
    logits = last_token_logits(model, prompts, batch_size=4)
    means = mean_head_activations(model, prompts, batch_size=4, progress=False)
    v = torch.randn(model_info(model).d_model, generator=torch.Generator().manual_seed(0)) * 2
    ivs = {"none": None, **{l: add_vector(model, l, v) for l in range(0, model_info(model).n_layers, 6)}}
    fast = variant_scores(model, prompts, ivs, batch_size=4, keep_logits=True)
    assert sum(padded) >= 3
    with plain_forwards():
        ref_logits = last_token_logits(model, prompts, batch_size=4)
        ref_means = mean_head_activations(model, prompts, batch_size=4, progress=False)
    plain = variant_scores(model, prompts, ivs, plain=True, keep_logits=True)
    torch.testing.assert_close(logits, ref_logits, atol=1e-4, rtol=0)  # logits of ~20: float32 rounding
    assert torch.equal(logits.argmax(-1), ref_logits.argmax(-1))
    for name, t in means.to_tensors().items():
        torch.testing.assert_close(t, ref_means.to_tensors()[name], atol=1e-4, rtol=0)
    assert_same(fast, plain, tol=TOL)
    with torch.inference_mode():
        alone = model.original_model(torch.tensor([prompts[0].ids]), logits_to_keep=1).logits[0, -1].float()
    torch.testing.assert_close(logits[0], alone, atol=1e-4, rtol=0)
