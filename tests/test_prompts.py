import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.data.prompts import (
    PORTABILITY_FORMATS,
    AnswerTokenError,
    encode_prompt,
    icl_prompt,
    natural_prompt,
    sample_prompts,
    shuffled_prompt,
    zero_shot_prompt,
)
from workbench.data.tasks import Pair

words = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)


def test_paper_format_exactly():
    p = icl_prompt([Pair("hot", "cold"), Pair("big", "small")], Pair("fast", "slow"))
    assert p.text == "Q: hot\nA: cold\n\nQ: big\nA: small\n\nQ: fast\nA:"
    assert zero_shot_prompt(Pair("fast", "slow")).text == "Q: fast\nA:"


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(words, words), min_size=2, max_size=12, unique_by=lambda t: t[0]),
    words,
    words,
    st.integers(0, 999),
)
def test_shuffled_keeps_inputs_query_and_label_multiset(demos, qx, qy, seed):
    demos = [Pair(x, y) for x, y in demos]
    query = Pair(qx, qy)
    p = shuffled_prompt(demos, query, random.Random(seed))
    assert [d.input for d in p.demos] == [d.input for d in demos]
    assert Counter(d.output for d in p.demos) == Counter(d.output for d in demos)
    assert p.text.endswith(f"Q: {qx}\nA:") and p.answer == qy
    # the text holds each demo's (possibly moved) label right after its input
    for d in p.demos:
        assert f"Q: {d.input}\nA: {d.output}" in p.text


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(PORTABILITY_FORMATS), words, words)
def test_every_format_ends_with_the_query_and_output_prefix(fmt, x, y):
    text = fmt.render([Pair("aa", "bb")], Pair(x, y))
    assert text.endswith(fmt.block(x, None)) and text.startswith(fmt.block("aa", "bb"))
    assert fmt.example_separator in text


def test_sample_prompts_never_show_the_query(toy_task):
    split = toy_task.split(0)
    for p in sample_prompts(split, 30, n_shot=5, kind="icl", seed=1):
        assert p.query.input not in [d.input for d in p.demos]
        assert len(p.demos) == 5 and all(d in split.train for d in p.demos)
        assert p.query in split.valid


def test_natural_prompt_needs_slot():
    assert natural_prompt('The word "{X}", means', Pair("hot", "cold")).text == 'The word "hot", means'
    with pytest.raises(ValueError, match="slot"):
        natural_prompt("no slot", Pair("a", "b"))


class SplitSpaceTokenizer:
    """A tokenizer that gives the leading space its own token, like some SentencePiece models."""

    vocab = {" ": 1}

    def __call__(self, text, add_special_tokens=False):
        ids = []
        for ch in text:
            ids.append(self.vocab.setdefault(ch, len(self.vocab) + 1))
        return {"input_ids": ids}

    def decode(self, ids):
        inv = {v: k for k, v in self.vocab.items()}
        return "".join(inv[i] for i in ids)


def test_a_whitespace_first_token_joins_the_prompt_and_the_next_token_is_scored():
    tok = SplitSpaceTokenizer()
    enc = encode_prompt(tok, zero_shot_prompt(Pair("hot", "cold")), bos_id=None)
    assert tok.decode(list(enc.ids)) == "Q: hot\nA: "
    assert tok.decode([enc.answer_id]) == "c" and tok.decode(list(enc.answer_tokens)) == "cold"
    assert enc.n_scored == 1
    with pytest.raises(AnswerTokenError, match="whitespace only"):
        encode_prompt(tok, zero_shot_prompt(Pair("hot", "\t")), bos_id=None)


def test_answer_token_and_bos_on_real_tokenizer(tiny):
    tok = tiny["llama"].tokenizer
    enc = encode_prompt(tok, zero_shot_prompt(Pair("hot", "cold")), bos_id=tok.bos_token_id)
    assert enc.ids[0] == tok.bos_token_id
    assert tok.decode([enc.answer_id]) == " c"
    assert tok.decode(list(enc.ids[1:])) == "Q: hot\nA:"
    no_bos = encode_prompt(tok, zero_shot_prompt(Pair("hot", "cold")), bos_id=None)
    assert no_bos.ids == enc.ids[1:]
