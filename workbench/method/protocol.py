"""The protocol of a run and the prompt sets it owns: every set named once, every seed by one rule.

A run of the paper's protocol draws about ten prompt sets from one task split (clean prompts for
the means, corrupted ones for the scan, valid and test sets for the layer choice and the
evaluation, donors for Hendel's task vector, ...).  Each is declared ONCE in :data:`PROMPT_SETS`:
its kind of prompt, where its queries come from, how many prompts, and its seed offset.  The seed
of every set is ``protocol.seed + offset``; nothing else in the package draws a run's prompts.

:class:`PromptSets` builds them for one model (encoded, cached).  The pipeline, the studies and
the figures ask a :class:`~workbench.method.result.TaskResult` for its sets, so a study always
sees the run's own split, seed and queries.

>>> from workbench.data.tasks import Task
>>> task = Task.from_pairs("toy", [(f"w{i}", f"W{i}") for i in range(100)])
>>> sets = PromptSets(task, Protocol(n_shot=2, seed=3))
>>> sets.seed("test_icl"), len(sets.text("test_icl")), sets.text("test_zero_shot")[0].text
(8, 21, 'Q: w82\\nA:')
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Any

from ..base.checks import check_finite, check_layer, check_seed, json_form
from ..core.model import context_length, model_info
from ..data.prompts import EncodedPrompt, Prompt, PromptKind, encode_prompts, sample_prompts, scorable_pairs
from ..data.tasks import Pair, Task, TaskError, TaskSplit

__all__ = ["Protocol", "ProtocolError", "PromptSetSpec", "PROMPT_SETS", "PromptSets", "encode"]


class ProtocolError(ValueError):
    """A protocol setting that cannot work (e.g. zero scan prompts); the message names it."""


@dataclass(frozen=True)
class Protocol:
    """The counts and choices of one run (defaults: the paper's).

    >>> Protocol(n_scan_prompts=0)
    Traceback (most recent call last):
    ...
    workbench.method.protocol.ProtocolError: n_scan_prompts must be at least 1, got 0
    """

    n_shot: int = 10
    n_mean_prompts: int = 100
    n_scan_prompts: int = 25
    top_k: int | None = None  # None: default_top_k(model)
    layer: int | None = None  # None: chosen by `layer_rule`
    layer_rule: str = "sweep"  # "sweep": best on valid; "third": the paper's n_layers // 3
    sweep_layers: bool = False  # also report the full test-split layer sweep
    natural_text: bool = False  # also score greedy generations from natural-text templates
    portability: bool = False  # also score zero-shot prompts in other formats
    n_extra_queries: int = 20  # test queries used by the two evaluations above
    alpha: float = 1.0
    center: bool = False  # subtract each head's mean output on zero-shot prompts from the FV's terms
    filter_correct: bool = True  # use only queries clean ICL answers right (paper)
    seed: int = 0
    # heads in the FV: "fixed" = top_k (the paper's fixed count); "valid" = the count of
    # `head_counts` that is best on the validation split, chosen jointly with the layer
    head_count_rule: str = "fixed"
    head_counts: tuple[int, ...] = (4, 8, 12, 16, 20, 25, 30, 40)
    # the head scan: "exact" (every head), or "hybrid" (attribution patching ranks every head, the
    # exact scan runs on the top `scan_candidates`; None: core.scan.default_candidates)
    scan_method: str = "exact"
    scan_candidates: int | None = None
    # at most this many test queries, drawn with the seed (PromptSets.test_queries); None: the whole split
    max_eval_queries: int | None = None

    def __post_init__(self) -> None:
        for name, least in (
            ("n_shot", 1),
            ("n_mean_prompts", 1),
            ("n_scan_prompts", 1),
            ("n_extra_queries", 0),
        ):
            if getattr(self, name) < least:
                raise ProtocolError(f"{name} must be at least {least}, got {getattr(self, name)}")
        if self.max_eval_queries is not None and self.max_eval_queries < 1:
            raise ProtocolError(
                "max_eval_queries must be at least 1 (or None for the whole test split), "
                f"got {self.max_eval_queries}"
            )
        if self.top_k is not None and self.top_k < 1:
            raise ProtocolError(f"top_k must be at least 1 (or None for the default), got {self.top_k}")
        if self.head_count_rule not in ("fixed", "valid"):
            raise ProtocolError(f"head_count_rule must be 'fixed' or 'valid', got {self.head_count_rule!r}")
        if self.head_count_rule == "valid" and (not self.head_counts or min(self.head_counts) < 1):
            raise ProtocolError(f"head_counts must be positive counts, got {self.head_counts!r}")
        if self.head_count_rule == "valid" and (
            self.center or self.layer is not None or self.layer_rule != "sweep"
        ):
            raise ProtocolError(
                "head_count_rule='valid' chooses the count jointly with the layer on the validation split: "
                "use it with layer_rule='sweep', no fixed layer, and center=False"
            )
        if self.scan_method not in ("exact", "hybrid"):
            raise ProtocolError(f"scan_method must be 'exact' or 'hybrid', got {self.scan_method!r}")
        if self.scan_candidates is not None and self.scan_candidates < 1:
            raise ProtocolError(f"scan_candidates must be at least 1, got {self.scan_candidates}")
        if self.layer_rule not in ("sweep", "third"):
            raise ProtocolError(f"layer_rule must be 'sweep' or 'third', got {self.layer_rule!r}")
        if self.layer is not None:
            check_layer(self.layer)  # the model's own range is checked when the run starts
        check_seed(self.seed)
        check_finite(self.alpha, "alpha")
        object.__setattr__(self, "head_counts", tuple(self.head_counts))

    def to_dict(self) -> dict[str, Any]:
        """The protocol as it is saved (:func:`~workbench.base.checks.json_form`): a saved copy
        compares equal to it."""
        return json_form(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Protocol:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class PromptSetSpec:
    """One named prompt set of a run.

    kind: ``icl`` | ``shuffled`` | ``zero_shot``.  queries: ``train`` | ``valid`` | ``test`` |
    ``extraction`` (the valid queries kept by the filter).  count: ``None`` (every query once, in
    the split's order), a number, a :class:`Protocol` field, or ``"test_zero_shot"`` (as many
    as the encoded zero-shot test prompts).  offset: the set's seed is ``protocol.seed + offset``.
    """

    kind: PromptKind
    queries: str
    count: int | str | None
    offset: int
    purpose: str


PROMPT_SETS: dict[str, PromptSetSpec] = {
    "valid_icl": PromptSetSpec(
        "icl", "valid", None, 0, "clean prompts of every valid query: the extraction filter"
    ),
    "means": PromptSetSpec(
        "icl", "extraction", "n_mean_prompts", 1, "clean prompts whose head outputs are averaged"
    ),
    "scan": PromptSetSpec(
        "shuffled", "extraction", "n_scan_prompts", 2, "corrupted prompts of the head scan"
    ),
    "valid_zero_shot": PromptSetSpec("zero_shot", "valid", None, 0, "the layer choice (zero-shot)"),
    "valid_shuffled": PromptSetSpec("shuffled", "valid", None, 3, "the layer choice (shuffled labels)"),
    "test_sweep_shuffled": PromptSetSpec("shuffled", "test", None, 4, "the reported test-split layer sweep"),
    "test_icl": PromptSetSpec("icl", "test", None, 5, "clean ICL on every test query; defines the filter"),
    "test_zero_shot": PromptSetSpec("zero_shot", "test", None, 0, "every test query alone"),
    "test_shuffled": PromptSetSpec("shuffled", "test", None, 6, "every test query after shuffled labels"),
    "donors": PromptSetSpec(
        "icl",
        "train",
        "test_zero_shot",
        7,
        "clean prompts about train queries, one per test query: Hendel's task vectors",
    ),
    "train_zero_shot": PromptSetSpec(
        "zero_shot", "train", None, 8, "zero-shot train prompts: the centring baseline, soft-vector training"
    ),
    "attention_example": PromptSetSpec("icl", "test", 1, 0, "the clean prompt the attention views show"),
    "screen_icl": PromptSetSpec("icl", "test", None, 0, "the quick ICL screen of `workbench icl`"),
    "screen_zero_shot": PromptSetSpec("zero_shot", "test", None, 0, "the quick ICL screen (zero-shot)"),
    "screen_shuffled": PromptSetSpec("shuffled", "test", None, 0, "the quick ICL screen (shuffled labels)"),
}


def encode(model, prompts: Sequence[Prompt]) -> list[EncodedPrompt]:
    """Encode prompts for ``model``, one for one: a set never loses a prompt, so paired sets stay
    aligned (unscorable answers are removed from the task before any set is drawn:
    :attr:`PromptSets.scorable`).

    Raises :class:`ProtocolError` if an answer cannot be scored in one of these prompts, or a
    prompt is longer than the model's context (:func:`~workbench.core.model.context_length`):
    past it a model computes garbage silently.
    """
    enc, skipped = encode_prompts(model.tokenizer, prompts, model_info(model).bos_id)
    if skipped:
        raise ProtocolError(
            f"{len(skipped)} of {len(prompts)} prompts have an answer that cannot be scored here, though "
            f"it can after a zero-shot prompt ({skipped[0][1]}). Drop those pairs from the task."
        )
    limit = context_length(model)
    longest = max(enc, key=len, default=None)
    if limit is not None and longest is not None and len(longest) > limit:
        n_over = sum(len(e) > limit for e in enc)
        kind = longest.prompt.kind
        raise ProtocolError(
            f"{n_over} of {len(enc)} {kind} prompts are longer than the {limit} tokens "
            f"{model_info(model).name} was built for (the longest has {len(longest)}). "
            "Use fewer shots (Protocol(n_shot=...)) or a task with shorter inputs and outputs."
        )
    return enc


class PromptSets:
    """The prompt sets of one run (task, protocol, extraction queries), built on demand.

    ``text(name)`` gives the prompts as text; ``sets[name]`` (with a model) gives them encoded,
    each set built once.  ``extraction``: the valid queries kept by the filter (needed by the
    ``means`` and ``scan`` sets; the pipeline finds them from ``valid_icl``).

    With a model, the pairs whose answer its tokenizer cannot score are set aside ONCE, before
    any set is drawn (:attr:`scorable`, :attr:`dropped`), and the split is that of the remaining
    pairs; so every set holds one prompt per query drawn and paired sets (clean / shuffled /
    zero-shot / donors) stay aligned.  A task with no such pair splits exactly as without a model.
    """

    def __init__(self, task: Task, protocol: Protocol, model=None, extraction: Sequence[Pair] | None = None):
        self.task = task
        self.protocol = protocol
        self.model = model
        self.extraction = None if extraction is None else list(extraction)
        self._encoded: dict[tuple[str, int | None], list[EncodedPrompt]] = {}

    def __repr__(self) -> str:
        return (
            f"PromptSets({self.task.name!r}, seed {self.protocol.seed}, {self.split}, "
            f"{'?' if self.extraction is None else len(self.extraction)} extraction queries)"
        )

    @cached_property
    def _scorable(self) -> tuple[Task, list[tuple[Pair, str]]]:
        if self.model is None:
            return self.task, []
        kept, dropped = scorable_pairs(self.model.tokenizer, self.task.pairs)
        if not dropped:
            return self.task, []
        if not kept:
            raise TaskError(
                f"no answer of task {self.task.name!r} can be scored on this tokenizer ({dropped[0][1]})"
            )
        return Task(self.task.name, tuple(kept), self.task.source, self.task.description), dropped

    @property
    def scorable(self) -> Task:
        """The task without the pairs whose answer cannot be scored on the model's tokenizer."""
        return self._scorable[0]

    @property
    def dropped(self) -> list[tuple[Pair, str]]:
        """The pairs set aside as unscorable, each with the reason."""
        return self._scorable[1]

    @cached_property
    def split(self) -> TaskSplit:
        return self.scorable.split(seed=self.protocol.seed)

    @staticmethod
    def spec(name: str) -> PromptSetSpec:
        try:
            return PROMPT_SETS[name]
        except KeyError:
            raise KeyError(f"no prompt set {name!r}; the sets are {sorted(PROMPT_SETS)}") from None

    def seed(self, name: str) -> int:
        """The seed of set ``name``: ``protocol.seed + PROMPT_SETS[name].offset``."""
        return self.protocol.seed + self.spec(name).offset

    def _count(self, spec: PromptSetSpec) -> int | None:
        if spec.count is None or isinstance(spec.count, int):
            return spec.count
        if spec.count in PROMPT_SETS:
            return len(self[spec.count])
        return int(getattr(self.protocol, spec.count))

    @cached_property
    def test_queries(self) -> tuple[Pair, ...]:
        """The test queries every test set is built from: the whole test split, or with
        ``protocol.max_eval_queries`` that many of them, drawn with ``protocol.seed`` (kept in the
        split's order)."""
        test, cap = self.split.test, self.protocol.max_eval_queries
        if cap is None or cap >= len(test):
            return test
        keep = sorted(random.Random(self.protocol.seed).sample(range(len(test)), cap))
        return tuple(test[i] for i in keep)

    def _queries(self, name: str, spec: PromptSetSpec) -> Sequence[Pair] | None:
        if spec.queries == "test":
            return None if self.protocol.max_eval_queries is None else self.test_queries
        if spec.queries != "extraction":
            return None
        if self.extraction is None:
            raise ValueError(
                f"the prompt set {name!r} draws from the extraction queries, which are not known "
                "here: take the sets from a TaskResult (result.prompt_sets(model))"
            )
        return self.extraction

    def text(self, name: str, n: int | None = None) -> list[Prompt]:
        """Set ``name`` as text prompts (``n`` overrides its count)."""
        spec = self.spec(name)
        count = n if n is not None else self._count(spec)
        queries = "valid" if spec.queries == "extraction" else spec.queries
        n_shot = 0 if spec.kind == "zero_shot" else self.protocol.n_shot
        return sample_prompts(
            self.split,
            count,
            n_shot,
            spec.kind,
            queries,
            seed=self.seed(name),
            query_pairs=self._queries(name, spec),
        )

    def encoded(self, name: str, n: int | None = None) -> list[EncodedPrompt]:
        """Set ``name`` encoded for the model (one encoded prompt per text prompt)."""
        if self.model is None:
            raise ValueError(
                "these prompt sets have no model to encode for: PromptSets(task, protocol, model)"
            )
        key = (name, n)
        if key not in self._encoded:
            self._encoded[key] = encode(self.model, self.text(name, n))
        return self._encoded[key]

    def __getitem__(self, name: str) -> list[EncodedPrompt]:
        return self.encoded(name)
