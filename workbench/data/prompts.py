"""In-context-learning prompts and their answer tokens.

The paper's format, one demonstration per block and a space before every word::

    Q: hot\\nA: cold\\n\\nQ: big\\nA: small\\n\\nQ: fast\\nA:

with the answer scored by the FIRST token of ``" " + answer``.  Every prompt the workbench
builds (clean, shuffled-label, zero-shot, other templates, natural text) comes from this module.

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
    replacement when there are fewer queries than prompts.  A demonstration never repeats the
    query.  ``query_pairs`` overrides the query pool (e.g. queries filtered by correctness).
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
    """The first token of ``" " + answer`` is empty or only whitespace, so it cannot be scored."""


@dataclass(frozen=True)
class EncodedPrompt:
    """Token ids of a prompt (BOS included when the model uses one) and its answer's first token."""

    ids: tuple[int, ...]
    answer_id: int
    prompt: Prompt = field(compare=False)

    def __len__(self) -> int:
        return len(self.ids)


def encode_prompt(tokenizer, prompt: Prompt, bos_id: int | None) -> EncodedPrompt:
    """Tokenize ``prompt`` and find the first token of ``" " + answer`` as it follows the prompt.

    The answer token is read from the joint tokenization of prompt and answer, so merges across
    the boundary are respected; if the joint tokens do not extend the prompt's own tokens, the
    answer is tokenized alone.  Raises :class:`AnswerTokenError` if that token is only
    whitespace (a tokenizer that splits the leading space off), which would score nothing.
    """
    ids = tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
    full = tokenizer(prompt.text + " " + prompt.answer, add_special_tokens=False)["input_ids"]
    if len(full) > len(ids) and full[: len(ids)] == ids:
        answer_id = full[len(ids)]
    else:
        alone = tokenizer(" " + prompt.answer, add_special_tokens=False)["input_ids"]
        if not alone:
            raise AnswerTokenError(f"answer {prompt.answer!r} tokenizes to nothing")
        answer_id = alone[0]
    piece = tokenizer.decode([answer_id])
    if not piece.strip():
        raise AnswerTokenError(
            f"the first token of ' {prompt.answer}' is {piece!r}, only whitespace: this tokenizer "
            "splits the space off, so scoring it would test nothing. Drop this pair or change "
            "the answer's format."
        )
    prefix = [bos_id] if bos_id is not None else []
    return EncodedPrompt(tuple(prefix + list(ids)), int(answer_id), prompt)


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
    """How well the first-token rule can tell a task's answers apart, for one tokenizer.

    n_answers: distinct answers; n_unscorable: those whose first token is only whitespace;
    n_first_tokens: distinct first tokens among the scorable ones; n_sharing: distinct answers whose
    first token is also another answer's; n_partial_shared: of those, the ones whose first token is
    an incomplete UTF-8 character (a byte of an emoji or CJK character); majority_share: the
    accuracy of a model that always answers the most common first token (over pairs);
    examples: a few answers that share a first token, by token.
    """

    n_answers: int
    n_unscorable: int
    n_first_tokens: int
    n_sharing: int
    n_partial_shared: int
    majority_share: float
    majority_token: str
    examples: dict[str, list[str]]

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
    """Score each distinct answer's first token as a prompt would (:func:`encode_prompt` after a
    zero-shot prompt in ``fmt``) and report how many answers it identifies."""
    from collections import Counter, defaultdict

    first: dict[str, int | None] = {}
    for answer in dict.fromkeys(p.output for p in pairs):
        try:
            first[answer] = encode_prompt(tokenizer, zero_shot_prompt(Pair("x", answer), fmt), None).answer_id
        except AnswerTokenError:
            first[answer] = None
    groups: dict[int, list[str]] = defaultdict(list)
    for answer, tok in first.items():
        if tok is not None:
            groups[tok].append(answer)
    shared = {tok: answers for tok, answers in groups.items() if len(answers) > 1}
    partial = {tok for tok in shared if "\ufffd" in tokenizer.decode([tok])}
    counts = Counter(first[p.output] for p in pairs if first[p.output] is not None)
    top, n_top = counts.most_common(1)[0] if counts else (None, 0)
    biggest = sorted(shared.items(), key=lambda kv: -len(kv[1]))[:3]
    return AnswerTokenReport(
        n_answers=len(first),
        n_unscorable=sum(tok is None for tok in first.values()),
        n_first_tokens=len(groups),
        n_sharing=sum(len(a) for a in shared.values()),
        n_partial_shared=sum(len(shared[tok]) for tok in partial),
        majority_share=n_top / max(1, sum(counts.values())),
        majority_token="" if top is None else tokenizer.decode([top]),
        examples={tokenizer.decode([tok]): answers[:4] for tok, answers in biggest},
    )
