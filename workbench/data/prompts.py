"""In-context-learning prompts and their answer tokens.

The paper's format, one demonstration per block and a space before every word::

    Q: hot\\nA: cold\\n\\nQ: big\\nA: small\\n\\nQ: fast\\nA:

with the answer scored by its first token (:func:`encode_prompt` states the rule for answers whose
first token is a bare space or part of a character).  Every prompt the workbench builds (clean,
shuffled-label, zero-shot, other templates, natural text) comes from this module.

>>> from workbench.data.tasks import Pair
>>> demos = [Pair("hot", "cold"), Pair("big", "small")]
>>> print(icl_prompt(demos, Pair("fast", "slow")).text)
Q: hot
A: cold
<BLANKLINE>
Q: big
A: small
<BLANKLINE>
Q: fast
A:
>>> zero_shot_prompt(Pair("fast", "slow")).text
'Q: fast\\nA:'
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from .tasks import Pair, TaskSplit

__all__ = [
    "PromptFormat",
    "PAPER_FORMAT",
    "PORTABILITY_FORMATS",
    "NATURAL_TEMPLATES",
    "Prompt",
    "EncodedPrompt",
    "AnswerTokenError",
    "icl_prompt",
    "shuffled_prompt",
    "zero_shot_prompt",
    "natural_prompt",
    "sample_prompts",
    "encode_prompt",
    "encode_prompts",
    "with_format",
    "AnswerTokenReport",
    "answer_token_report",
    "scorable_pairs",
    "ANSWER_RULE",
]

PromptKind = Literal["icl", "shuffled", "zero_shot", "natural"]


@dataclass(frozen=True)
class PromptFormat:
    """How demonstrations are written: ``{input_prefix} x{io_separator}{output_prefix} y``.

    Blocks are joined by ``example_separator``.  An empty prefix drops its following space.
    """

    input_prefix: str = "Q:"
    output_prefix: str = "A:"
    io_separator: str = "\n"
    example_separator: str = "\n\n"

    def block(self, x: str, y: str | None) -> str:
        head = f"{self.input_prefix} {x}" if self.input_prefix else x
        tail = f"{self.output_prefix} {y}" if y is not None else self.output_prefix
        if not self.output_prefix:
            tail = f" {y}" if y is not None else ""
        return f"{head}{self.io_separator}{tail}"

    def render(self, demos: Sequence[Pair], query: Pair) -> str:
        blocks = [self.block(d.input, d.output) for d in demos] + [self.block(query.input, None)]
        return self.example_separator.join(blocks)


PAPER_FORMAT = PromptFormat()

# Other prefix pairs and separators, for the portability evaluation (paper, appendix).
_PREFIXES = [
    ("input:", "output:"),
    ("In:", "Out:"),
    ("x:", "y:"),
    ("Input:", "Output:"),
    ("question:", "answer:"),
    ("Q:", "A:"),
    ("text:", "label:"),
    ("", " ->"),
]
_SEPARATORS = [(" ", "\n"), ("\n", "\n\n"), ("\n", "\n"), (" ", " | "), (" ", "\n\n")]
PORTABILITY_FORMATS: tuple[PromptFormat, ...] = tuple(
    PromptFormat(i, o.strip() if o.strip() else o, io, ex)
    for (i, o) in _PREFIXES
    for (io, ex) in _SEPARATORS
    if (i, o, io, ex) != ("Q:", "A:", "\n", "\n\n")
)

# Natural-text templates (paper, section 3.2); {X} is the query.
NATURAL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "word": (
        'The word "{X}", means',
        'When I think of the word "{X}", it usually means',
        'When I think of "{X}", I usually',
        'While reading a book, I came across the word "{X}". I looked it up in a dictionary and it turns '
        "out that it means",
        'The word "{X}" can be understood as a synonym for',
    ),
    "place": (
        "A couple years ago I visited {X}, and",
        "If you ever travel to {X}, you have to visit",
        "When you think of {X},",
    ),
}


@dataclass(frozen=True)
class Prompt:
    """A prompt's text, the pair it asks about, and the demonstrations it shows."""

    text: str
    query: Pair
    demos: tuple[Pair, ...] = ()
    kind: PromptKind = "icl"

    @property
    def answer(self) -> str:
        return self.query.output


def icl_prompt(demos: Sequence[Pair], query: Pair, fmt: PromptFormat = PAPER_FORMAT) -> Prompt:
    """A clean n-shot prompt: the demonstrations with their true labels, then the query."""
    return Prompt(fmt.render(demos, query), query, tuple(demos), "icl")


def shuffled_prompt(
    demos: Sequence[Pair], query: Pair, rng: random.Random, fmt: PromptFormat = PAPER_FORMAT
) -> Prompt:
    """Demonstration labels permuted among themselves; the query and its answer stay right."""
    outputs = [d.output for d in demos]
    rng.shuffle(outputs)
    shuffled = tuple(Pair(d.input, y) for d, y in zip(demos, outputs))
    return Prompt(fmt.render(shuffled, query), query, shuffled, "shuffled")


def zero_shot_prompt(query: Pair, fmt: PromptFormat = PAPER_FORMAT) -> Prompt:
    """The query alone, in the task format: ``Q: x\\nA:``."""
    return Prompt(fmt.render((), query), query, (), "zero_shot")


def natural_prompt(template: str, query: Pair) -> Prompt:
    """A natural-text prompt from a template with an ``{X}`` slot (no task format)."""
    if "{X}" not in template:
        raise ValueError(f"template needs an {{X}} slot for the query, got {template!r}")
    return Prompt(template.replace("{X}", query.input), query, (), "natural")


def sample_prompts(
    split: TaskSplit,
    n_prompts: int | None,
    n_shot: int = 10,
    kind: PromptKind = "icl",
    queries: Literal["train", "valid", "test"] = "valid",
    seed: int = 0,
    fmt: PromptFormat = PAPER_FORMAT,
    query_pairs: Sequence[Pair] | None = None,
) -> list[Prompt]:
    """Draw prompts: demonstrations from ``split.train``, queries from the named split.

    ``n_prompts=None`` uses every query once, in order; otherwise queries are drawn with
    replacement when there are fewer queries than prompts.  A demonstration never shows the
    query's input (nor another pair of a repeated input).  ``query_pairs`` overrides the query
    pool (e.g. queries filtered by correctness).
    """
    rng = random.Random(seed)
    pool = list(query_pairs) if query_pairs is not None else list(getattr(split, queries))
    if not pool:
        raise ValueError(f"no {queries} queries to build prompts from")
    if n_prompts is None:
        chosen = pool
    elif n_prompts <= len(pool):
        chosen = rng.sample(pool, n_prompts)
    else:
        chosen = [rng.choice(pool) for _ in range(n_prompts)]
    prompts = []
    train = list(split.train)
    train_inputs = {p.input for p in train}
    for query in chosen:
        if kind == "zero_shot":
            prompts.append(zero_shot_prompt(query, fmt))
            continue
        # Linear in the task's size: the train list is filtered only for a query that is in it.
        candidates = [p for p in train if p.input != query.input] if query.input in train_inputs else train
        if len(candidates) < n_shot:
            raise ValueError(
                f"{n_shot}-shot prompts need {n_shot} train pairs, the split has {len(candidates)}"
            )
        demos = rng.sample(candidates, n_shot)
        if kind == "icl":
            prompts.append(icl_prompt(demos, query, fmt))
        elif kind == "shuffled":
            prompts.append(shuffled_prompt(demos, query, rng, fmt))
        else:
            raise ValueError(f"unknown prompt kind {kind!r}; use icl, shuffled or zero_shot")
    return prompts


class AnswerTokenError(ValueError):
    """An answer this tokenizer cannot score: it tokenizes to nothing but whitespace, or its first
    character is not in the vocabulary (the unknown token, which every such answer shares)."""


ANSWER_RULE = (
    "The answer is tokenized after the prompt (' ' + answer, jointly with the prompt). Leading "
    "tokens that are only whitespace (' 5' -> ' ', '5' on Llama-style tokenizers) are part of the "
    "prompt, not of the answer. The answer's first token is scored; when that token is only part "
    "of a character (a byte of é, ü, ñ, CJK, an emoji), the tokens up to the one that completes "
    "the character are scored together: right at top-k when every one of them is within the top k "
    "given the ones before (teacher forcing). The whole-answer metric scores every answer token so."
)


@dataclass(frozen=True)
class EncodedPrompt:
    """Token ids of a prompt (BOS included when the model uses one) and of its answer.

    ids: the prompt, ending with any whitespace-only tokens the answer starts with (:data:`ANSWER_RULE`).
    answer_id: the answer's first token after them (the scored token of the paper's metric).
    answer_ids: every answer token from ``answer_id`` on (empty: ``(answer_id,)``).
    n_scored: how many of ``answer_ids`` the first-token metric scores: 1, or more when the first
    token is part of a character.
    """

    ids: tuple[int, ...]
    answer_id: int
    prompt: Prompt = field(compare=False)
    answer_ids: tuple[int, ...] = ()
    n_scored: int = 1

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def answer_tokens(self) -> tuple[int, ...]:
        """The whole answer's tokens (the first is :attr:`answer_id`)."""
        return self.answer_ids or (self.answer_id,)

    @property
    def scored_tokens(self) -> tuple[int, ...]:
        """The tokens the first-token metric scores (one, unless the first is part of a character)."""
        return self.answer_tokens[: self.n_scored]


def _answer_tokens(tokenizer, text: str, answer: str) -> tuple[list[int], list[int]]:
    """``(prompt ids, answer ids)``: the answer's tokens as they follow the prompt's."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    full = tokenizer(text + " " + answer, add_special_tokens=False)["input_ids"]
    if len(full) > len(ids) and full[: len(ids)] == ids:
        return ids, full[len(ids) :]
    return ids, tokenizer(" " + answer, add_special_tokens=False)["input_ids"]


def split_answer(tokenizer, answer: str, tokens: Sequence[int]) -> tuple[int, int]:
    """``(n_lead, n_scored)`` for an answer's tokens under :data:`ANSWER_RULE`: how many leading
    tokens are only whitespace (they join the prompt), and how many after them the first-token
    metric scores.  Raises :class:`AnswerTokenError` if nothing is left or the first character
    is the unknown token.

    >>> from workbench.core.tiny import tiny_tokenizer
    >>> tok = tiny_tokenizer()
    >>> [tok.decode([t]) for t in tok(" ü5", add_special_tokens=False)["input_ids"]]
    [' ', '\ufffd', '\ufffd', '5']
    >>> split_answer(tok, "ü5", tok(" ü5", add_special_tokens=False)["input_ids"])
    (1, 2)
    """
    lead = 0
    while lead < len(tokens) and (piece := tokenizer.decode([tokens[lead]])) and not piece.strip():
        lead += 1
    rest = list(tokens[lead:])
    if not rest:
        raise AnswerTokenError(
            f"' {answer}' tokenizes to whitespace only: there is no answer token to score. Drop this pair."
        )
    n = 1
    partial_ok = "\ufffd" in answer  # an answer that holds U+FFFD itself
    while n < len(rest) and not partial_ok and "\ufffd" in tokenizer.decode(rest[:n]):
        n += 1
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and unk in rest[:n]:
        raise AnswerTokenError(
            f"the first character of {answer!r} is not in this tokenizer's vocabulary (it becomes the "
            "unknown token, shared by every such answer), so no token can tell it apart. Drop this pair."
        )
    return lead, n


def encode_prompt(tokenizer, prompt: Prompt, bos_id: int | None) -> EncodedPrompt:
    """Tokenize ``prompt`` and its answer under :data:`ANSWER_RULE`.

    The answer's tokens are read from the joint tokenization of prompt and ``" " + answer``, so
    merges across the boundary are respected; if the joint tokens do not extend the prompt's own
    tokens, the answer is tokenized alone.  Whitespace-only leading answer tokens are appended to
    the prompt's ids.  Raises :class:`AnswerTokenError` for an answer no token can score.
    """
    ids, tokens = _answer_tokens(tokenizer, prompt.text, prompt.answer)
    if not tokens:
        raise AnswerTokenError(f"answer {prompt.answer!r} tokenizes to nothing")
    lead, n_scored = split_answer(tokenizer, prompt.answer, tokens)
    prefix = [bos_id] if bos_id is not None else []
    answer = tuple(int(t) for t in tokens[lead:])
    return EncodedPrompt(tuple(prefix + list(ids) + list(tokens[:lead])), answer[0], prompt, answer, n_scored)


def scorable_pairs(
    tokenizer, pairs: Sequence[Pair], fmt: PromptFormat = PAPER_FORMAT
) -> tuple[list[Pair], list[tuple[Pair, str]]]:
    """``(kept, dropped)``: the pairs whose answer can be scored on ``tokenizer`` (each distinct
    answer encoded once after a zero-shot prompt in ``fmt``), and the others with the reason.

    A run decides this ONCE, before any prompt set is drawn
    (:class:`~workbench.method.protocol.PromptSets`), so its paired sets stay aligned."""
    reason: dict[str, str | None] = {}
    for answer in dict.fromkeys(p.output for p in pairs):
        try:
            encode_prompt(tokenizer, zero_shot_prompt(Pair("x", answer), fmt), None)
            reason[answer] = None
        except AnswerTokenError as e:
            reason[answer] = str(e)
    kept = [p for p in pairs if reason[p.output] is None]
    dropped = [(p, str(reason[p.output])) for p in pairs if reason[p.output] is not None]
    return kept, dropped


def encode_prompts(
    tokenizer, prompts: Sequence[Prompt], bos_id: int | None, skip_bad_answers: bool = True
) -> tuple[list[EncodedPrompt], list[tuple[Prompt, str]]]:
    """Encode many prompts; returns ``(encoded, skipped)`` where ``skipped`` holds each prompt
    whose answer cannot be scored and the reason (raised instead if ``skip_bad_answers=False``)."""
    encoded, skipped = [], []
    for p in prompts:
        try:
            encoded.append(encode_prompt(tokenizer, p, bos_id))
        except AnswerTokenError as e:
            if not skip_bad_answers:
                raise
            skipped.append((p, str(e)))
    return encoded, skipped


def with_format(prompt: Prompt, fmt: PromptFormat) -> Prompt:
    """The same demonstrations and query, rendered in another format."""
    return replace(prompt, text=fmt.render(prompt.demos, prompt.query))


@dataclass(frozen=True)
class AnswerTokenReport:
    """How well the first-token rule (:data:`ANSWER_RULE`) tells a task's answers apart, for one tokenizer.

    n_answers: distinct answers; n_unscorable: those no token can score (:func:`split_answer`);
    n_first_tokens: distinct scored tokens (or token runs) among the scorable ones; n_sharing:
    distinct answers whose scored tokens are also another answer's; n_whitespace_first: answers
    whose first token is only whitespace (moved into the prompt); n_multi_token: answers whose
    first character takes more than one token (scored together); n_partial_shared: kept for
    older results, always 0 (a scored run never ends inside a character); majority_share: the
    accuracy of a model that always answers the most common scored token (over pairs), e.g. the
    majority label of a classification task; examples: a few answers that share scored tokens.
    """

    n_answers: int
    n_unscorable: int
    n_first_tokens: int
    n_sharing: int
    n_partial_shared: int
    majority_share: float
    majority_token: str
    examples: dict[str, list[str]]
    n_whitespace_first: int = 0
    n_multi_token: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return (
            f"AnswerTokenReport({self.n_answers} answers, {self.n_first_tokens} first tokens, "
            f"{self.n_sharing} sharing one, {self.n_unscorable} unscorable; always answering "
            f"{self.majority_token!r} scores {self.majority_share:.0%})"
        )


def answer_token_report(
    tokenizer, pairs: Sequence[Pair], fmt: PromptFormat = PAPER_FORMAT
) -> AnswerTokenReport:
    """Encode each distinct answer as a prompt would (:func:`encode_prompt` after a zero-shot
    prompt in ``fmt``) and report how many answers its scored tokens identify."""
    from collections import Counter, defaultdict

    first: dict[str, tuple[int, ...] | None] = {}
    n_space = n_multi = 0
    for answer in dict.fromkeys(p.output for p in pairs):
        try:
            enc = encode_prompt(tokenizer, zero_shot_prompt(Pair("x", answer), fmt), None)
        except AnswerTokenError:
            first[answer] = None
            continue
        first[answer] = enc.scored_tokens
        n_multi += enc.n_scored > 1
        n_space += len(enc.ids) > len(
            tokenizer(fmt.render((), Pair("x", answer)), add_special_tokens=False)["input_ids"]
        )
    groups: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for answer, toks in first.items():
        if toks is not None:
            groups[toks].append(answer)
    shared = {toks: answers for toks, answers in groups.items() if len(answers) > 1}
    counts = Counter(first[p.output] for p in pairs if first[p.output] is not None)
    top, n_top = counts.most_common(1)[0] if counts else (None, 0)
    biggest = sorted(shared.items(), key=lambda kv: -len(kv[1]))[:3]
    return AnswerTokenReport(
        n_answers=len(first),
        n_unscorable=sum(toks is None for toks in first.values()),
        n_first_tokens=len(groups),
        n_sharing=sum(len(a) for a in shared.values()),
        n_partial_shared=0,
        majority_share=n_top / max(1, sum(counts.values())),
        majority_token="" if top is None else tokenizer.decode(list(top)),
        examples={tokenizer.decode(list(toks)): answers[:4] for toks, answers in biggest},
        n_whitespace_first=n_space,
        n_multi_token=n_multi,
    )
