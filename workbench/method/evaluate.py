"""Accuracies: with and without a vector, across layers, head counts, templates and formats.

The score is the rank of the answer's first token among the last position's logits: top-1 (also
top-2/3) accuracy (:data:`~workbench.data.prompts.ANSWER_RULE`: whitespace-only leading tokens
belong to the prompt; a first character of several tokens is scored on all of them).  The second
metric, :func:`answer_accuracy`, scores the whole answer under teacher forcing: right when every
answer token is the top-1, with any added vector at every answer position.  Natural-text prompts
are scored by greedy generation: correct if the answer appears in the generated text.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..core.forward import (
    HookFactory,
    Hooks,
    answer_ranks,
    last_token_logits,
    score_spans,
    teacher_forced_ranks,
)
from ..core.heads import HeadMeans
from ..core.hooks import add_vector, generate
from ..core.model import model_info
from ..core.scan import HeadScan
from ..core.variants import Intervention, variant_scores
from ..data.prompts import (
    PORTABILITY_FORMATS,
    EncodedPrompt,
    Prompt,
    encode_prompts,
    natural_prompt,
    with_format,
)
from ..data.tasks import Pair, Task
from .protocol import PromptSets, Protocol
from .vectors import FunctionVector

__all__ = [
    "Accuracy",
    "accuracy",
    "accuracies",
    "answer_accuracy",
    "sweep_layers",
    "layer_sweep",
    "LayerSweep",
    "head_count_sweep",
    "head_count_grid_accuracy",
    "natural_text_accuracy",
    "icl_screen",
    "portability_accuracy",
]


@dataclass
class Accuracy:
    """Ranks of the answer token (0 = top-1) for a set of prompts.

    >>> a = Accuracy(torch.tensor([0, 2, 0, 1]))
    >>> a.top1, a.top(2), a.n, round(a.stderr, 3)
    (0.5, 0.75, 4, 0.25)
    >>> a
    Accuracy(top1=50.0%, top3=100.0%, n=4)
    """

    ranks: Tensor

    @property
    def n(self) -> int:
        return int(self.ranks.numel())

    def top(self, k: int = 1) -> float:
        return float((self.ranks < k).float().mean()) if self.n else float("nan")

    @property
    def top1(self) -> float:
        return self.top(1)

    @property
    def correct(self) -> Tensor:
        return self.ranks == 0

    @property
    def stderr(self) -> float:
        """Binomial standard error of the top-1 accuracy."""
        p = self.top1
        return (p * (1 - p) / self.n) ** 0.5 if self.n else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        return {"top1": self.top(1), "top2": self.top(2), "top3": self.top(3), "n": self.n}

    def __repr__(self) -> str:
        return f"Accuracy(top1={self.top(1):.1%}, top3={self.top(3):.1%}, n={self.n})"


def accuracy(
    model,
    prompts: Sequence[EncodedPrompt],
    hooks: Hooks | HookFactory | None = None,
    batch_size: int = 16,
    progress: bool | str = False,
) -> Accuracy:
    """Top-k accuracy of the first answer token, optionally under intervention ``hooks``."""
    if not prompts:
        return Accuracy(torch.empty(0, dtype=torch.long))
    logits = last_token_logits(model, prompts, hooks, batch_size=batch_size, progress=progress)
    return Accuracy(score_spans(model, prompts, answer_ranks(logits, prompts), hooks))


def answer_accuracy(
    model,
    prompts: Sequence[EncodedPrompt],
    hooks: Hooks | HookFactory | None = None,
    first: Accuracy | None = None,
    batch_size: int = 16,
) -> Accuracy:
    """The whole-answer metric: each prompt's rank is the worst rank of its answer tokens under
    teacher forcing, so top-1 means every token was the top-1 given the ones before
    (:func:`~workbench.core.forward.teacher_forced_ranks`; an added vector acts at every answer
    position, as in steered generation).  ``first``: the same prompts' first-token accuracy under the
    same ``hooks``, reused for answers the first-token metric already scores whole."""
    if not prompts:
        return Accuracy(torch.empty(0, dtype=torch.long))
    ranks = torch.zeros(len(prompts), dtype=torch.long) if first is None else first.ranks.clone()
    todo = [i for i, p in enumerate(prompts) if first is None or len(p.answer_tokens) > p.n_scored]
    if todo:
        ranks[todo] = teacher_forced_ranks(
            model, prompts, hooks, whole=True, which=todo, batch_size=batch_size
        )
    return Accuracy(ranks)


def accuracies(
    model,
    prompts: Sequence[EncodedPrompt],
    interventions: dict,
    progress: bool | str = False,
    variant_batch: int | None = None,
) -> dict:
    """:func:`accuracy` under each of many interventions (name -> hooks, factory or ``None``).

    Each prompt's prefix runs once and every intervention is a last-token variant of it
    (:mod:`workbench.core.variants`); inside :func:`~workbench.core.variants.plain_forwards` it is
    one plain forward per intervention instead.  Same ranks either way, to float rounding.
    """
    scores = variant_scores(model, prompts, interventions, variant_batch=variant_batch, progress=progress)
    return {name: Accuracy(s.ranks) for name, s in scores.items()}


@dataclass
class LayerSweep:
    """Accuracy of each prompt set with the vector added after each layer."""

    layers: list[int]
    results: dict[str, list[Accuracy]]  # prompt-set name -> one Accuracy per layer
    baseline: dict[str, Accuracy]  # the same prompt sets with no vector

    def best_layer(self, sets: Sequence[str] | None = None) -> int:
        """The layer with the best mean top-1 accuracy over ``sets`` (first one on ties)."""
        sets = list(sets or self.results)
        score = [sum(self.results[s][i].top1 for s in sets) for i in range(len(self.layers))]
        return self.layers[max(range(len(score)), key=lambda i: (score[i], -i))]

    def to_dict(self) -> dict:
        return {
            "layers": self.layers,
            **{name: [a.top1 for a in accs] for name, accs in self.results.items()},
            "n": {name: accs[0].n if accs else 0 for name, accs in self.results.items()},
            "baseline": {k: v.top1 for k, v in self.baseline.items()},
        }

    def to_tensors(self) -> dict[str, Tensor]:
        out = {"layers": torch.tensor(self.layers)}
        for name, accs in self.results.items():
            if accs:
                out[f"sweep/{name}"] = torch.stack([a.ranks for a in accs])
            if name in self.baseline:
                out[f"baseline/{name}"] = self.baseline[name].ranks
        return out

    @classmethod
    def concat_prompts(cls, parts: Sequence[LayerSweep]) -> LayerSweep:
        """One sweep from sweeps of the same layers over consecutive groups of prompts (a prompt set
        may be absent from a part: it had no prompts left there)."""
        names = list(dict.fromkeys(name for p in parts for name in p.results))
        layers = parts[0].layers

        def joined(accs: list[Accuracy]) -> Accuracy:
            return Accuracy(torch.cat([a.ranks for a in accs]))

        return cls(
            layers,
            {
                n: [joined([p.results[n][i] for p in parts if n in p.results]) for i in range(len(layers))]
                for n in names
            },
            {n: joined([p.baseline[n] for p in parts if n in p.baseline]) for n in names},
        )

    @classmethod
    def from_tensors(cls, t: dict[str, Tensor]) -> LayerSweep:
        names = list(dict.fromkeys(k.split("/", 1)[1] for k in t if k.startswith(("sweep/", "baseline/"))))
        return cls(
            t["layers"].tolist(),
            {n: [Accuracy(r) for r in t[f"sweep/{n}"]] if f"sweep/{n}" in t else [] for n in names},
            {n: Accuracy(t[f"baseline/{n}"]) for n in names if f"baseline/{n}" in t},
        )

    def __repr__(self) -> str:
        rows = ", ".join(
            f"{name} best {max(a.top1 for a in accs):.0%}" for name, accs in self.results.items()
        )
        return f"LayerSweep({len(self.layers)} layers; {rows}; best layer {self.best_layer()})"


def sweep_layers(
    model,
    prompt_sets: dict[str, Sequence[EncodedPrompt]],
    hooks_at: Callable[[int], Hooks | HookFactory],
    layers: Sequence[int] | None = None,
    progress: bool | str = True,
    baseline: bool = True,
) -> LayerSweep:
    """Apply ``hooks_at(layer)`` at each layer in turn and measure every prompt set (each prompt's
    prefix once, every layer a last-token variant: :func:`accuracies`), and with ``baseline``
    every set with no hooks."""
    layers = list(range(model_info(model).n_layers)) if layers is None else list(layers)
    desc = progress if isinstance(progress, str) else "layer sweep"
    interventions: dict[Any, Intervention] = {("layer", layer): hooks_at(layer) for layer in layers}
    if baseline:
        interventions["baseline"] = None
    results: dict[str, list[Accuracy]] = {}
    base: dict[str, Accuracy] = {}
    for name, prompts in prompt_sets.items():
        accs = accuracies(model, prompts, interventions, progress=progress and f"{desc}: {name}")
        results[name] = [accs[("layer", layer)] for layer in layers]
        if baseline:
            base[name] = accs["baseline"]
    return LayerSweep(layers, results, base)


def layer_sweep(
    model,
    vector: Tensor,
    prompt_sets: dict[str, Sequence[EncodedPrompt]],
    layers: Sequence[int] | None = None,
    alpha: float = 1.0,
    progress: bool = True,
    baseline: bool = True,
) -> LayerSweep:
    """Add ``alpha * vector`` after each layer in turn and measure every prompt set."""
    return sweep_layers(
        model, prompt_sets, lambda layer: add_vector(model, layer, vector, alpha), layers, progress, baseline
    )


def head_count_sweep(
    model,
    means: HeadMeans,
    scan: HeadScan,
    layer: int,
    prompts: Sequence[EncodedPrompt],
    counts: Sequence[int] = (0, 1, 2, 3, 5, 8, 10, 15, 20, 30, 40),
    alpha: float = 1.0,
    progress: bool = True,
) -> dict[int, Accuracy]:
    """Accuracy as the FV sums the top 0, 1, 2, ... heads by AIE."""
    return head_count_grid_accuracy(model, means, scan, [layer], prompts, counts, alpha, progress)[layer]


def head_count_grid_accuracy(
    model,
    means: HeadMeans,
    scan: HeadScan,
    layers: Sequence[int],
    prompts: Sequence[EncodedPrompt],
    counts: Sequence[int],
    alpha: float = 1.0,
    progress: bool = True,
) -> dict[int, dict[int, Accuracy]]:
    """``[layer][k]``: accuracy with the FV of the top ``k`` heads added after ``layer`` (every
    layer x count a last-token variant of one prefix run)."""
    ranked = [(l, h) for l, h, _ in scan.top_heads(max(counts, default=0))]
    vectors = {k: FunctionVector.from_heads(means, ranked[:k], model=model).vector for k in counts if k}
    interventions: dict[Any, Intervention] = {
        (layer, k): add_vector(model, layer, vectors[k], alpha) for layer in layers for k in vectors
    }
    interventions["none"] = None
    accs = accuracies(model, prompts, interventions, progress=progress and "head counts")
    return {layer: {k: accs[(layer, k)] if k else accs["none"] for k in counts} for layer in layers}


def natural_text_accuracy(
    model,
    pairs: Sequence[Pair],
    templates: Sequence[str],
    vector: Tensor | None,
    layer: int | None,
    alpha: float = 1.0,
    max_new_tokens: int = 16,
    progress: bool = True,
) -> dict[str, float]:
    """Fraction of greedy generations that contain the answer, per template."""
    bos = model_info(model).bos_id
    out = {}
    for template in tqdm(templates, desc="natural text", disable=not progress, leave=False):
        hits = 0
        for pair in pairs:
            prompt = natural_prompt(template, pair)
            ids = ([bos] if bos is not None else []) + model.tokenizer(prompt.text, add_special_tokens=False)[
                "input_ids"
            ]
            text = generate(model, ids, max_new_tokens, vector, layer, alpha)
            hits += pair.output.lower() in text.lower()
        out[template] = hits / max(1, len(pairs))
    return out


def portability_accuracy(
    model,
    prompts: Sequence[Prompt],
    vector: Tensor,
    layer: int,
    n_formats: int = 20,
    seed: int = 0,
    alpha: float = 1.0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Zero-shot accuracy with and without the FV under other prefixes and separators."""
    formats = random.Random(seed).sample(list(PORTABILITY_FORMATS), min(n_formats, len(PORTABILITY_FORMATS)))
    bos = model_info(model).bos_id
    out = {}
    for fmt in tqdm(formats, desc="portability", disable=not progress, leave=False):
        enc, _ = encode_prompts(model.tokenizer, [with_format(p, fmt) for p in prompts], bos)
        key = repr((fmt.input_prefix, fmt.output_prefix, fmt.io_separator, fmt.example_separator))
        accs = accuracies(model, enc, {"plain": None, "fv": add_vector(model, layer, vector, alpha)})
        out[key] = {name: a.top1 for name, a in accs.items()}
    return out


def icl_screen(model, task: Task, protocol: Protocol = Protocol()) -> dict[str, float | int | str]:
    """Clean, zero-shot and shuffled-label top-1 accuracy on every test query of ``task``: the
    quick look of ``workbench icl`` (its own prompt sets, ``screen_*``), before any run."""
    sets = PromptSets(task, protocol, model)
    accs = {kind: accuracy(model, sets[f"screen_{kind}"]).top1 for kind in ("icl", "zero_shot", "shuffled")}
    return {"task": task.name, **accs, "n": len(sets["screen_shuffled"])}
