"""The architecture matrix: every decoder family of ``workbench.core.support.FAMILIES``,
as a tiny random model, is either exact or refused with its reason.

The reference is transformers itself (``workbench.core.plain``: an untouched transformers model
sharing the weights, plain ``torch`` hooks on its real modules: the output projection's input
for a head patch, the decoder layer's output for an added vector), never the bridge's hooks or
the workbench's maps.  For each exact family:

- the fast scan of EVERY head equals one-head-at-a-time patching in transformers, on a prompt
  longer than any sliding window;
- the heads' mapped outputs plus the bias's share sum to what each attention block adds to the
  residual stream (the self-check's ``head_map``, on every layer);
- a vector added after layer L at the last position, and steered greedy generation, match
  transformers with the vector added to that decoder layer's output;
- prompts of unequal length left-padded into one forward (``workbench.core.padding``), with
  last-token variants, match transformers' forward of each prompt alone.
"""

from __future__ import annotations

import re
import warnings

import pytest
import torch

from workbench.core import padding, plain
from workbench.core.hooks import add_vector, generate
from workbench.core.layer_skip import SKIP_FAMILIES
from workbench.core.model import ModelLoadError, model_info
from workbench.core.scan import layer_windows, scan_heads
from workbench.core.selfcheck import ModelCheckFailed, check_record, self_check, verify_model
from workbench.core.support import FAMILIES, family_config, family_model
from workbench.core.variants import variant_scores
from workbench.data.prompts import EncodedPrompt

EXACT = [n for n, f in FAMILIES.items() if f.refusal is None]
REFUSED = [n for n, f in FAMILIES.items() if f.refusal is not None]


def _ids(model, n: int, seed: int) -> torch.Tensor:
    info = model_info(model)
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(8, info.d_vocab, (n,), generator=g)
    if info.bos_id is not None:
        ids[0] = info.bos_id
    return ids[None]


def test_matrix_is_wide_enough():
    assert len(EXACT) >= 40 and len(REFUSED) >= 10
    for name in ("gptj", "gpt_neox", "llama", "qwen2", "mistral", "gemma2", "gemma3_text", "gpt2", "falcon"):
        assert name in EXACT, name
    for name in ("olmo2", "olmo3", "flex_olmo", "exaone4", "afmoe", "glm4", "granite", "bloom", "falcon_rw"):
        assert name in EXACT, name


@pytest.mark.parametrize("name", EXACT)
def test_exact_family_matches_transformers(name):
    model = family_model(name)
    info = model_info(model)
    check = verify_model(model, force=True)  # raises ModelCheckFailed (with the numbers) if not exact
    assert check.passed and check_record(model)["status"] == "passed"

    # the scan of every head == one full transformers forward per head, prompt longer than any window
    windows = [w for w in layer_windows(model) if w is not None]
    n = max([20, *[w + 6 for w in windows]])
    ids, donor = _ids(model, n, seed=11), _ids(model, n, seed=12)
    mean_z = plain.plain_head_inputs(model, donor, info.n_heads)
    with torch.inference_mode():
        clean = plain.plain_logits(model, ids)[0, -1].float()
    answer = int(clean.argmax())
    p_clean = float(clean.softmax(-1)[answer])
    fast = scan_heads(model, [EncodedPrompt(tuple(ids[0].tolist()), answer, None)], mean_z, progress=False)
    ref = torch.tensor(
        [
            [
                plain.plain_patched_prob(model, ids, answer, l, h, mean_z[l, h]) - p_clean
                for h in range(info.n_heads)
            ]
            for l in range(info.n_layers)
        ]
    )
    assert ref.abs().max() > 0, "no head changed anything: the comparison would prove nothing"
    torch.testing.assert_close(fast.effects[0], ref, atol=1e-5 * p_clean, rtol=0)

    # the same on a prompt inside every window: the layer-skip pass where the family allows it
    # (core/layer_skip.py SKIP_FAMILIES), with no fallback warning (its control row agrees)
    ids = _ids(model, 12, seed=15)
    with torch.inference_mode():
        clean = plain.plain_logits(model, ids)[0, -1].float()
    answer, p_clean = int(clean.argmax()), float(clean.softmax(-1).max())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = scan_heads(
            model, [EncodedPrompt(tuple(ids[0].tolist()), answer, None)], mean_z, progress=False
        )
    hf_type = model.original_model.config.model_type
    assert fast.meta["layer_skip"] == (1 if hf_type in SKIP_FAMILIES else 0), hf_type
    ref = torch.tensor(
        [
            [
                plain.plain_patched_prob(model, ids, answer, l, h, mean_z[l, h]) - p_clean
                for h in range(info.n_heads)
            ]
            for l in range(info.n_layers)
        ]
    )
    torch.testing.assert_close(fast.effects[0], ref, atol=1e-5 * p_clean, rtol=0)

    # injection after the last layer and the first, at the last position
    short = _ids(model, 12, seed=13)
    for layer in sorted({0, info.n_layers - 1}):
        vec = torch.randn(info.d_model, generator=torch.Generator().manual_seed(layer)) * 3
        with torch.inference_mode():
            ours = model.run_with_hooks(short, fwd_hooks=add_vector(model, layer, vec))[0, -1]
        theirs = plain.plain_logits(model, short, add=(layer, vec))[0, -1]
        base = plain.plain_logits(model, short)[0, -1]
        assert (theirs - base).abs().max() > 1e-3
        torch.testing.assert_close(
            ours.float(), theirs.float(), atol=1e-4 * float(theirs.abs().max()), rtol=0
        )

    # the same injections as last-token variants of one prefix run (every stage's evaluation path,
    # core/variants.py), on a prompt longer than any sliding window
    long = _ids(model, n, seed=14)
    vecs = {
        l: torch.randn(info.d_model, generator=torch.Generator().manual_seed(20 + l)) * 3 for l in range(2)
    }
    scores = variant_scores(
        model,
        [EncodedPrompt(tuple(long[0].tolist()), answer, None)],
        {("add", l): add_vector(model, l, v) for l, v in vecs.items()} | {"none": None},
        keep_logits=True,
    )
    for key, add in [(("add", l), (l, v)) for l, v in vecs.items()] + [("none", None)]:
        with torch.inference_mode():
            theirs = plain.plain_logits(model, long, add=add)[0, -1].float()
        torch.testing.assert_close(
            scores[key].logits[0], theirs, atol=1e-4 * float(theirs.abs().max()), rtol=0
        )

    # prompts of unequal length left-padded into one forward (core/padding.py), with the same
    # variants, one prompt longer than any sliding window: each row as transformers runs it alone
    assert padding.padding_verified(model) == (padding.slow_path_reason(model) is None), name
    other = _ids(model, n - 3, seed=16)
    prompts = [EncodedPrompt(tuple(x[0].tolist()), answer, None) for x in (long, other)]
    ran: list[bool] = []
    real_run = padding.run
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            padding, "run", lambda m, batch, *a, **k: ran.append(batch.padded) or real_run(m, batch, *a, **k)
        )
        scores = variant_scores(
            model, prompts, {("add", 1): add_vector(model, 1, vecs[1]), "none": None}, keep_logits=True
        )
    assert ran == [True] if padding.can_pad(model, n, 1) else not any(ran), (name, ran)
    for i, x in enumerate((long, other)):
        for key, add in ((("add", 1), (1, vecs[1])), ("none", None)):
            with torch.inference_mode():
                theirs = plain.plain_logits(model, x, add=add)[0, -1].float()
            torch.testing.assert_close(
                scores[key].logits[i], theirs, atol=1e-4 * float(theirs.abs().max()), rtol=0
            )

    # steered greedy generation: the vector at the prompt's last position and every new one
    layer, steps = info.n_layers - 1, 4
    vec = torch.randn(info.d_model, generator=torch.Generator().manual_seed(7)) * 3
    prompt = short[0].tolist()
    text = generate(model, prompt, max_new_tokens=steps, vector=vec, layer=layer)
    tokens = list(prompt)
    for _ in range(steps):
        logits = plain.plain_logits(
            model, torch.tensor([tokens]), add=(layer, vec), from_position=len(prompt) - 1
        )
        nxt = int(logits[0, -1].argmax())
        if nxt == model.tokenizer.eos_token_id:
            break
        tokens.append(nxt)
    assert text == model.tokenizer.decode(tokens[len(prompt) :])


@pytest.mark.parametrize("name", REFUSED)
def test_refused_family_says_why(name):
    with pytest.raises(ModelLoadError) as err:
        family_model(name, unverified=False)
    assert re.search(FAMILIES[name].refusal, str(err.value)), str(err.value)


def test_plain_reference_is_transformers_itself():
    """The reference twin computes what a separately built transformers model computes."""
    from transformers import AutoModelForCausalLM

    for name in ("gemma2", "gpt2"):
        model = family_model(name)
        cfg = family_config(name, model_info(model).d_vocab)
        cfg._attn_implementation = "eager"
        torch.manual_seed(0)  # random_model's seed
        separate = AutoModelForCausalLM.from_config(cfg).eval()
        ids = _ids(model, 30, seed=1)
        with torch.inference_mode():
            torch.testing.assert_close(plain.plain_logits(model, ids), separate(ids).logits)


@pytest.mark.parametrize(
    "name, broken, check",
    [
        ("mistral", "workbench.core.scan._install_layer_masks", "scan"),  # the window left out of the scan
        ("gemma3_text", "workbench.core.scan._install_layer_masks", "scan"),
        ("olmo2", "workbench.core.heads.post_attn_norm_module", "head_map"),  # post-norm left out
        ("glm4", "workbench.core.heads.post_attn_norm_module", "head_map"),
        ("granite", "workbench.core.heads.residual_scale", "head_map"),  # multiplier left out
        ("bloom", "workbench.core.scan.slow_path_reason", "scan"),  # ALiBi in the variant scan
    ],
)
def test_self_check_catches_each_fixed_bug(name, broken, check, monkeypatch):
    """Undo one fix and the self-check fails on the check that guards it, and refuses the model."""
    undo = {
        "_install_layer_masks": lambda *a, **k: [],
        "post_attn_norm_module": lambda *a, **k: None,
        "residual_scale": lambda *a, **k: 1.0,
        "slow_path_reason": lambda *a, **k: None,
    }
    module, attr = broken.rsplit(".", 1)
    monkeypatch.setattr(module + "." + attr, undo[attr])
    model = family_model(name, seed=3)
    result = self_check(model, force=True)
    assert [i.name for i in result.failures] == [check], result
    with pytest.raises(ModelCheckFailed, match=rf"(?s){check}.*--unverified"):
        verify_model(model)
    accepted = verify_model(model, unverified=True)
    assert accepted.status == "failed-unverified" and check_record(model)["status"] == "failed-unverified"
    assert "FAIL" in repr(accepted) and check in repr(accepted)


def test_self_check_is_cached_by_weights(tmp_path, monkeypatch):
    """The check runs once per weights (atomic JSON in the cache dir), not once per load."""
    import workbench.core.selfcheck as sc

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    model = family_model("llama", seed=5)
    first = self_check(model)
    files = list((tmp_path / "selfcheck").glob("*.json"))
    assert len(files) == 1 and files[0].name.startswith(first.model_id)
    monkeypatch.setattr(sc, "_run_checks", lambda m: pytest.fail("ran again instead of reading the cache"))
    again = self_check(family_model("llama", seed=5))
    assert again.to_json() == first.to_json()
    with pytest.raises(pytest.fail.Exception):
        self_check(family_model("llama", seed=6))  # other weights: checked anew


def test_architecture_table_command(tmp_path, capsys):
    from workbench.cli import main

    assert main(["architectures", "llama", "mamba", "--out", str(tmp_path / "arch.md")]) == 0
    table = (tmp_path / "arch.md").read_text()
    assert (
        "| llama | `llama` | exact |" in table
        and "| mamba | `mamba` | refused | its layers are recurrent" in table
    )
    assert "1 exact, 1 refused, of 2 families" in capsys.readouterr().out


def test_cli_has_the_unverified_flag():
    from workbench.cli import build_parser

    args = build_parser().parse_args(["run", "--task", "t", "--out", "o", "--unverified"])
    assert args.unverified is True
    assert build_parser().parse_args(["run", "--task", "t", "--out", "o"]).unverified is False
