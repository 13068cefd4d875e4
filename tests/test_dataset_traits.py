"""Tasks with the traits of the paper's dataset files, built from our own small data (tests/data/):
inputs repeated with different outputs, a binary classification task, numeric answers, translations
whose answers start with accented or multi-byte characters, an extractive task.

Each runs end to end on a tiny Llama whose tokenizer writes like SmolLM2's (`` 5`` is `` `` + ``5``,
é / ü / ñ / CJK / emoji are bytes), and every score of every condition, first-token and whole-answer,
is checked against a plain-transformers computation written here (its own tokenization, hooks on the
Hugging Face decoder layers, one forward per prompt).
"""

from __future__ import annotations

import string
import warnings
from pathlib import Path

import pytest
import torch

from workbench.core.tiny import random_model, tiny_config
from workbench.data.prompts import (
    AnswerTokenError,
    answer_token_report,
    encode_prompt,
    sample_prompts,
    zero_shot_prompt,
)
from workbench.data.tasks import Pair, Task, load_task
from workbench.method.pipeline import CONDITIONS, check_aligned, run_task
from workbench.method.protocol import Protocol

DATA = Path(__file__).parent / "data"
SMALL = Protocol(n_shot=3, n_mean_prompts=6, n_scan_prompts=3, seed=1)
MISSING_BYTE = (
    "ð"  # the byte-level stand-in of 0xF0, the first byte of most emoji: unknown to `split_digit_tokenizer`
)


def split_digit_tokenizer():
    """A byte-level BPE tokenizer like SmolLM2's where it matters: `` `` + letter merges, but a digit
    after a space stays apart (`` 5`` -> `` ``, ``5``) and non-ASCII characters are bytes.  The byte
    0xF0 is missing, so an answer starting with an emoji is the unknown token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(["<|bos|>", "<|eos|>", "<|pad|>", "<|unk|>"])}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        if ch != MISSING_BYTE:
            vocab.setdefault(ch, len(vocab))
    merges = [("\u0120", ch) for ch in string.ascii_letters]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<|unk|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
        unk_token="<|unk|>",
        name_or_path="split-digit-bytes",
        add_bos_token=True,
    )


@pytest.fixture(scope="module")
def model():
    tok = split_digit_tokenizer()
    return random_model(tiny_config("llama", len(tok)), tok, name="tiny-split-digits", seed=3)


# --- the data itself ---


def test_repeated_inputs_are_kept_split_together_and_never_shown_to_their_query():
    task = load_task(DATA / "next_item.json")
    assert len(task) == 43  # 44 entries, one exact duplicate merged
    assert task.repeated_inputs == {"I": ("J", "II"), "V": ("W", "VI"), "X": ("Y", "XI")}
    note = task.repeated_inputs_note()
    assert note["inputs"] == 3 and note["pairs"] == 6 and "own pair's output" in note["rule"]
    for seed in range(5):
        split = task.split(seed)
        parts = [split.train, split.valid, split.test]
        key = lambda p: (p.input, p.output)  # noqa: E731
        assert sorted(split.train + split.valid + split.test, key=key) == sorted(task.pairs, key=key)
        for x in task.repeated_inputs:
            assert sum(any(p.input == x for p in part) for part in parts) == 1  # one part holds them all
        for queries in ("train", "valid", "test"):
            for kind in ("icl", "shuffled"):
                for prompt in sample_prompts(split, None, 5, kind, queries, seed=seed):
                    assert all(d.input != prompt.query.input for d in prompt.demos)


def test_the_split_of_a_task_without_repeats_is_the_shuffle_of_its_pairs():
    import random

    task = Task.from_pairs("toy", [(f"w{i}", f"W{i}") for i in range(57)])
    order = list(range(57))
    random.Random(4).shuffle(order)  # the rule before repeated inputs were kept
    split = task.split(4)
    assert split.train + split.valid + split.test == tuple(task.pairs[i] for i in order)
    assert (len(split.train), len(split.valid)) == (round(0.7 * 57), round(0.09 * 57))


# --- the answer rule on the test tokenizer ---


def _reference_answer(tokenizer, text: str, answer: str):
    """The rule, written independently: ``(prompt ids + whitespace tokens, answer tokens, n scored)``."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    full = tokenizer(text + " " + answer, add_special_tokens=False)["input_ids"]
    assert full[: len(ids)] == ids
    tail = full[len(ids) :]
    lead = 0
    while tokenizer.convert_ids_to_tokens(tail[lead]) in ("\u0120", "\u2581", " "):
        lead += 1
    rest = tail[lead:]
    # the fewest tokens that hold the space and the answer's whole first character (each character of a
    # byte-level token stands for one byte)
    need = len((" " + answer[0]).encode())
    got = sum(len(tokenizer.convert_ids_to_tokens(t)) for t in tail[:lead])
    n = 0
    while got < need:
        got += len(tokenizer.convert_ids_to_tokens(rest[n]))
        n += 1
    return ids + tail[:lead], rest, n


def test_whitespace_and_partial_characters_follow_the_rule_on_a_byte_level_tokenizer():
    tok = split_digit_tokenizer()
    for answer in ["5", "42", "étoile", "über", "ñandú", "日本", "œuf", "cold"]:
        prompt = zero_shot_prompt(Pair("x", answer))
        enc = encode_prompt(tok, prompt, None)
        ids, rest, n = _reference_answer(tok, prompt.text, answer)
        assert list(enc.ids) == ids and list(enc.answer_tokens) == rest and enc.n_scored == n, answer
        assert tok.decode(list(enc.scored_tokens)) == answer[0] or (answer[0].isascii() and n == 1)
    with pytest.raises(AnswerTokenError, match="not in this tokenizer's vocabulary"):
        encode_prompt(tok, zero_shot_prompt(Pair("x", "😀")), None)


# --- every kind of task runs, and every score matches plain transformers ---


def _layer_output_hook(fn):
    def hook(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        fn(hidden)
        return output

    return hook


@torch.no_grad()
def reference_ranks(model, result, whole: bool) -> dict[str, torch.Tensor]:
    """Every condition's per-query rank, from the run's prompt TEXT, with plain transformers: one forward
    per prompt of the prompt and the answer's tokens (teacher forcing), vectors added with forward hooks
    on the decoder layer, the rank the worst over the scored tokens."""
    hf, tok = model.original_model, model.tokenizer
    layers = hf.model.layers
    sets = result.prompt_sets(model)
    layer = result.fv_layer
    bos = [tok.bos_token_id]

    def encode(prompt):
        ids, rest, n = _reference_answer(tok, prompt.text, prompt.answer)
        return bos + ids, rest, (len(rest) if whole else n)

    donor_states = []
    for prompt in sets.text("donors"):
        ids, _, _ = encode(prompt)
        donor_states.append(
            hf(torch.tensor([ids]), output_hidden_states=True).hidden_states[layer + 1][0, -1]
        )

    def ranks(prompts, add=None, replace=False):
        out = []
        for i, prompt in enumerate(prompts):
            ids, rest, m = encode(prompt)
            n = len(ids)

            def edit(hidden, i=i, n=n):
                if add is not None:
                    hidden[:, n - 1 :] += add
                if replace:
                    hidden[:, n - 1] = donor_states[i]

            handle = layers[layer].register_forward_hook(_layer_output_hook(edit))
            try:
                logits = hf(torch.tensor([ids + rest[: m - 1]])).logits[0, n - 1 :].float()
            finally:
                handle.remove()
            out.append(max(int((logits[j] > logits[j, rest[j]]).sum()) for j in range(m)))
        return torch.tensor(out)

    icl, zero, shuffled = (sets.text(name) for name in ("test_icl", "test_zero_shot", "test_shuffled"))
    fv = result.fv.vector * result.protocol.alpha
    return {
        "icl": ranks(icl),
        "zero_shot": ranks(zero),
        "zero_shot_fv": ranks(zero, add=fv),
        "shuffled": ranks(shuffled),
        "shuffled_fv": ranks(shuffled, add=fv),
        "mean_state": ranks(zero, add=result.means.mean_resid[layer]),
        "task_vector": ranks(zero, replace=True),
    }


def run_with_warnings(model, task):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_task(model, task, SMALL, progress=False)
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize(
    "name", ["next_item", "sentiment", "word_to_number", "translation_accents", "pick_animal"]
)
def test_each_kind_of_task_runs_and_scores_like_plain_transformers(model, name, tmp_path):
    from workbench.method.result import TaskResult

    task = load_task(DATA / f"{name}.json")
    result, messages = run_with_warnings(model, task)
    loaded = TaskResult.load(result.save(tmp_path / "run"))
    assert loaded.split == result.split and loaded.notes == result.notes
    for condition in CONDITIONS:
        assert torch.equal(
            loaded.answer_accuracy_unfiltered[condition].ranks,
            result.answer_accuracy_unfiltered[condition].ranks,
        )
    assert set(result.accuracy_unfiltered) == set(CONDITIONS) == set(result.answer_accuracy_unfiltered)
    first, whole = reference_ranks(model, result, whole=False), reference_ranks(model, result, whole=True)
    for condition in CONDITIONS:
        assert torch.equal(result.accuracy_unfiltered[condition].ranks, first[condition]), condition
        assert torch.equal(result.answer_accuracy_unfiltered[condition].ranks, whole[condition]), condition
    doc = result.to_json()
    assert doc["accuracy_answer_unfiltered"] == {
        c: result.answer_accuracy_unfiltered[c].top1 for c in CONDITIONS
    }
    assert set(doc["accuracy_answer"]) == set(doc["accuracy"])
    repeated = [m for m in messages if "listed with several outputs" in m]
    if name == "next_item":  # said once, in the result and in one warning, with examples
        assert len(repeated) == 1 and "'I': ['J', 'II']" in repeated[0]
        assert doc["notes"]["repeated_inputs"]["inputs"] == 3
    else:
        assert not repeated and "repeated_inputs" not in doc["notes"]
    report = doc["notes"]["answer_tokens"]
    if name == "sentiment":  # a binary task is not refused; its majority share is recorded
        assert report["n_first_tokens"] == 2 and report["majority_share"] == pytest.approx(22 / 40)
    if name == "word_to_number":  # every answer's first token is a bare space, moved into the prompt
        assert report["n_whitespace_first"] == report["n_answers"] and report["n_unscorable"] == 0
    if name == "translation_accents":  # emoji answers are unknown tokens here: set aside once, and said
        unscorable = doc["notes"]["unscorable"]
        assert unscorable["pairs"] == 4 and ["smile", "😀"] in unscorable["examples"]
        assert sum("set aside" in m for m in messages) == 1
        assert report["n_multi_token"] > 0


def test_every_paired_set_of_a_run_stays_aligned_with_unscorable_answers(model):
    task = load_task(DATA / "translation_accents.json")
    result, _ = run_with_warnings(model, task)
    sets = result.prompt_sets(model)
    dropped = {p for p, _ in sets.dropped}
    assert {p.output for p in dropped} == {"😀", "😂", "🐱", "🐶"}
    split = sets.split
    assert split == result.split and not dropped & set(split.train + split.valid + split.test)
    for names, queries in (
        (("test_icl", "test_zero_shot", "test_shuffled", "test_sweep_shuffled"), split.test),
        (("valid_icl", "valid_zero_shot", "valid_shuffled"), split.valid),
    ):
        for name in names:
            assert [e.prompt.query for e in sets[name]] == list(queries), name
    assert len(sets["donors"]) == len(split.test) == result.accuracy_unfiltered["icl"].n
    assert all(e.prompt.query in split.train for e in sets["donors"])
    check_aligned({name: sets[name] for name in ("test_icl", "test_zero_shot", "test_shuffled", "donors")})
    shifted = {
        "test_icl": sets["test_icl"],
        "test_zero_shot": sets["test_zero_shot"][1:] + sets["test_zero_shot"][:1],
    }
    with pytest.raises(RuntimeError, match="not paired"):
        check_aligned(shifted)


def test_only_tasks_no_token_can_tell_apart_are_refused(model):
    from workbench.data.tasks import TaskError

    same_start = Task.from_pairs("same", [(f"w{i}", f"Yes{i}") for i in range(30)])  # ' Y' 'e' 's' ...
    with pytest.raises(TaskError, match="no token tells them apart"):
        run_task(model, same_start, SMALL, progress=False)
    emoji = Task.from_pairs("emoji", [(f"w{i}", "😀😂"[i % 2]) for i in range(30)])
    with pytest.raises(TaskError, match="no answer .* can be scored"):
        run_task(model, emoji, SMALL, progress=False)
    skewed = Task.from_pairs("skewed", [(f"w{i}", "yes" if i % 10 else "no") for i in range(40)])  # 90 % yes
    assert answer_token_report(model.tokenizer, skewed.pairs).majority_share == pytest.approx(0.9)
    run_task(model, skewed, SMALL, progress=False)  # a classification task runs


# --- the answer rule on the real tokenizers (SmolLM2: byte-level BPE; Gemma 3: SentencePiece) ---


def real_tokenizer(name: str):
    """A built-in model's tokenizer, read once from its GGUF (a pip package), kept in the test cache."""
    from transformers import AutoTokenizer

    from workbench.base.files import default_cache_dir
    from workbench.core.loading import BUILTIN_MODELS

    folder = default_cache_dir() / "tokenizers" / name
    if not folder.exists():
        path = BUILTIN_MODELS[name].gguf_path()
        AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).save_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


ANSWERS = [
    "5",
    "42",
    "2026",
    "étirer",
    "été",
    "über",
    "Übung",
    "niño",
    "ñandú",
    "ñu",
    "日本",
    "月",
    "😀",
    "😂",
    "cold",
]


@pytest.mark.real_model
@pytest.mark.parametrize("name", ["smollm2-135m", "gemma3-270m"])
def test_the_answer_rule_on_real_tokenizers_against_their_own_tokenization(name):
    tok = real_tokenizer(name)
    for answer in ANSWERS:
        prompt = zero_shot_prompt(Pair("x", answer))
        enc = encode_prompt(tok, prompt, None)
        ids = tok(prompt.text, add_special_tokens=False)["input_ids"]
        full = tok(prompt.text + " " + answer, add_special_tokens=False)["input_ids"]
        assert list(enc.ids) + list(enc.answer_tokens) == full  # the joint tokenization, cut in two
        moved = list(enc.ids[len(ids) :])
        assert all(tok.decode([t]).isspace() for t in moved)  # only whitespace joined the prompt
        scored = tok.decode(list(enc.scored_tokens)).strip()
        assert scored and answer.startswith(scored) and "\ufffd" not in scored, (answer, scored)
        shorter = tok.decode(list(enc.scored_tokens[:-1]))
        assert enc.n_scored == 1 or "\ufffd" in shorter, (answer, shorter)  # no token fewer would do
    report = answer_token_report(
        tok, Task.from_pairs("mixed", [(str(i), a) for i, a in enumerate(ANSWERS)]).pairs
    )
    # answers share scored tokens only where they share their first character(s)
    for shared in report.examples.values():
        assert len({a[0] for a in shared}) == 1, shared
    assert report.n_unscorable == 0


@pytest.mark.real_model
def test_smollm2_writes_digits_and_accents_after_a_bare_space():
    tok = real_tokenizer("smollm2-135m")
    enc = {
        a: encode_prompt(tok, zero_shot_prompt(Pair("x", a)), None) for a in ("5", "étirer", "über", "ñandú")
    }
    assert tok.decode([enc["5"].ids[-1]]) == " " and tok.decode([enc["5"].answer_id]) == "5"
    assert tok.decode([enc["étirer"].ids[-1]]) == " " and tok.decode([enc["étirer"].answer_id]) == "ét"
    # ü and ñ start with the same partial byte ' Ã'; their scored runs are ' ü' and ' ñ'
    assert enc["über"].answer_id == enc["ñandú"].answer_id
    assert (
        tok.decode(list(enc["über"].scored_tokens)) == " ü"
        and tok.decode(list(enc["ñandú"].scored_tokens)) == " ñ"
    )


def test_stage_keys_change_only_for_tasks_the_answer_rule_or_the_split_by_input_touch(model):
    from workbench.base.stage_cache import StageCache
    from workbench.method.pipeline import SCORING_VERSION, Stages

    def key(task):
        return Stages(model, task, SMALL, StageCache(), False).key

    assert "scoring" not in key(Task.from_pairs("plain", [(f"w{i}", f"Word{i}") for i in range(20)]))
    assert "scoring" not in key(load_task(DATA / "sentiment.json"))
    for name in ("next_item", "word_to_number", "translation_accents"):
        assert key(load_task(DATA / f"{name}.json"))["scoring"] == SCORING_VERSION, name
