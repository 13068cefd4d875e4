"""Learned soft task vectors: one weight per attention head, fitted by gradient descent.

A function vector takes the top-k heads by causal effect and sums their mean outputs.  A *soft*
task vector learns instead, for every head ``(l, h)``, how much of its task mean to put in::

    alpha[l, h] = sigmoid(theta[l, h])                          in (0, 1)
    z'[l, h](last) = (1 - alpha[l, h]) * z[l, h](last) + alpha[l, h] * mean_z[l, h]

at ``blocks.l.attn.hook_z`` of the LAST position (and of every generated position, with
``from_position``), where ``mean_z`` is each head's mean last-token output over clean ICL
prompts (:class:`workbench.core.heads.HeadMeans`).  ``alpha = 1`` on a set of heads is the
hard mean patch of those heads (:func:`workbench.core.hooks.mean_ablate_heads`); ``alpha = 0``
everywhere leaves the model unchanged.

The ``L * H`` logits ``theta`` are fitted with Adam on ZERO-SHOT prompts of the task's train
split, the model frozen, to minimise::

    loss = CE(logits[last], answer's first token)  +  sparsity * sum_{l,h} alpha[l, h]

The L1 term (``alpha >= 0``) keeps few heads on.  Prompts are grouped by token length (no
padding) and only last-position logits are computed.  :func:`soft_vs_fv` fits on the train
split and compares on the test split with zero-shot, the FV, ICL and the hard top-k-by-AIE mask.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from ..base.checks import json_form
from ..base.stats import spearman
from ..core.forward import Hooks, last_token_logits, length_batches
from ..core.hooks import add_vector, blend_heads, mean_ablate_heads
from ..core.model import ModelInfo, VectorMismatch, input_device, model_dtype, model_info
from ..core.scan import top_heads
from ..data.prompts import EncodedPrompt
from ..method.evaluate import Accuracy, accuracies
from ..method.vectors import VectorArtifact, vector_provenance

__all__ = [
    "soft_conditions",
    "SoftTaskVector",
    "fit_soft_task_vector",
    "soft_hooks",
    "soft_loss",
    "soft_vs_fv",
    "ON_THRESHOLD",
]

ON_THRESHOLD = 0.5  # a head counts as "on" when alpha > this


def soft_hooks(
    model,
    alpha: Float[Tensor, "layer head"],
    mean_z: Float[Tensor, "layer head d_head"],
    from_position: int | None = None,
) -> Hooks:
    """The soft vector's intervention: :func:`workbench.core.hooks.blend_heads`."""
    return blend_heads(model, alpha, mean_z, from_position)


@dataclass
class SoftTaskVector(VectorArtifact):
    """A learned weight per head for blending its output toward its task mean.

    alpha:  ``[layer, head]`` in [0, 1].  mean_z: ``[layer, head, d_head]`` the task means it
    blends toward (kept, so the vector is self-contained).  history: per optimisation step,
    ``ce`` (the batch's cross-entropy), ``penalty`` (``sparsity * sum alpha``) and ``n_on``.
    """

    alpha: Float[Tensor, "layer head"]
    mean_z: Float[Tensor, "layer head d_head"]
    model: str
    task: str = ""
    hparams: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    allow_other_model: bool = field(default=False, compare=False)

    KIND: ClassVar[str] = "soft_task_vector"
    TENSOR_NAMES: ClassVar[tuple[str, ...]] = ("alpha", "mean_z")
    LEGACY_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"kind", "model", "task", "n_layers", "n_heads", "d_head", "hparams", "history"}
    )

    def __post_init__(self) -> None:
        self._normalise_records()
        self.hparams = json_form(self.hparams)
        self.history = json_form(self.history)

    def n_model_layers(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def n_params(self) -> int:
        return int(self.alpha.numel())

    def n_on(self, threshold: float = ON_THRESHOLD) -> int:
        """Heads with ``alpha > threshold``."""
        return int((self.alpha > threshold).sum())

    def top_heads(self, k: int = 10) -> list[tuple[int, int, float]]:
        """The ``k`` heads with the largest alpha, as ``(layer, head, alpha)``."""
        return top_heads(self.alpha, k)

    def binarized(self, threshold: float = ON_THRESHOLD) -> SoftTaskVector:
        """The same vector with ``alpha`` rounded to 0/1 at ``threshold`` (a hard head mask)."""
        return SoftTaskVector(
            (self.alpha > threshold).float(),
            self.mean_z,
            self.model,
            self.task,
            dict(self.hparams),
            {},
            {**self.meta, "binarized_at": threshold},
            dict(self.provenance),
            self.allow_other_model,
        )

    def shape_problem(self, info: ModelInfo) -> str | None:
        want = (info.n_layers, info.n_heads, info.d_head)
        if tuple(self.mean_z.shape) != want:
            return f"has {tuple(self.mean_z.shape)} (layer, head, d_head)"
        return None

    def hooks(self, model, from_position: int | None = None) -> Hooks:
        """TransformerLens hooks applying the blend at the last position (or from ``from_position`` on)."""
        self.check_compatible(model)
        return soft_hooks(model, self.alpha.detach(), self.mean_z, from_position)

    # --- display -----------------------------------------------------------------------------
    def _summary(self) -> str:
        L, H = self.alpha.shape
        ce = self.history.get("ce") or []
        loss = f", batch CE {ce[0]:.3f} -> {ce[-1]:.3f} in {len(ce)} steps" if ce else ""
        return (
            f"{self.task or 'task'} on {self.model or 'model'}: {self.n_on()} of {L * H} heads with "
            f"alpha > {ON_THRESHOLD} ({self.n_params} parameters), sum alpha "
            f"{float(self.alpha.sum()):.2f}{loss}"
        )

    def __repr__(self) -> str:
        top = ", ".join(f"L{l}H{h} {a:.2f}" for l, h, a in self.top_heads(6))
        return f"SoftTaskVector({self._summary()}; top: {top})"

    def _repr_html_(self) -> str:
        hp = ", ".join(f"{k}={v}" for k, v in self.hparams.items())
        rows = "".join(f"<tr><td>L{l}H{h}</td><td>{a:.3f}</td></tr>" for l, h, a in self.top_heads(10))
        return (
            f"<b>SoftTaskVector</b> {self._summary()}<br><small>{hp}</small>"
            f"<table><tr><th>head</th><th>alpha</th></tr>{rows}</table>"
        )

    # --- the artifact ---------------------------------------------------------------------------
    def tensors(self) -> dict[str, Tensor]:
        return {"alpha": self.alpha, "mean_z": self.mean_z}

    def fields(self) -> dict[str, Any]:
        L, H, dh = self.mean_z.shape
        return {
            "model": self.model,
            "task": self.task,
            "n_layers": L,
            "n_heads": H,
            "d_head": dh,
            "hparams": self.hparams,
            "history": self.history,
        }

    @classmethod
    def from_saved(cls, tensors, fields, provenance, meta) -> SoftTaskVector:
        return cls(
            tensors["alpha"],
            tensors["mean_z"],
            fields.get("model", ""),
            fields.get("task", ""),
            fields.get("hparams", {}),
            fields.get("history", {}),
            meta,
            provenance,
        )


@contextmanager
def _frozen(model) -> Iterator[None]:
    """Parameters with ``requires_grad=False`` inside the block, restored after."""
    params = list(model.parameters())
    before = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(params, before):
            p.requires_grad_(flag)


def soft_loss(
    model,
    prompts: Sequence[EncodedPrompt],
    alpha: Float[Tensor, "layer head"],
    mean_z: Float[Tensor, "layer head d_head"],
    batch_size: int = 16,
) -> float:
    """Mean cross-entropy of the answer's first token over ``prompts`` with the blend applied."""
    if not prompts:
        raise ValueError("soft_loss needs at least one prompt")
    logits = last_token_logits(
        model, prompts, soft_hooks(model, alpha.detach(), mean_z), batch_size=batch_size
    )
    answers = torch.tensor([p.answer_id for p in prompts])
    return float(F.cross_entropy(logits, answers, reduction="mean"))


def fit_soft_task_vector(
    model,
    prompts: Sequence[EncodedPrompt],
    mean_z: Float[Tensor, "layer head d_head"],
    *,
    steps: int = 150,
    lr: float = 0.1,
    sparsity: float = 0.05,
    batch_size: int = 16,
    init: float = 0.1,
    seed: int = 0,
    task: str = "",
    progress: bool = True,
) -> SoftTaskVector:
    """Fit one alpha per head on ``prompts`` (zero-shot, encoded) by Adam on CE + ``sparsity * sum alpha``.

    Args:
        prompts: zero-shot prompts of the task's train split (``answer_id`` is the target).
        mean_z: each head's mean last-token ``hook_z`` over clean prompts (``HeadMeans.mean_z``).
        steps: optimiser steps, each on one batch of equal-length prompts (batches cycle in a
            seeded random order).
        lr: Adam's learning rate on the logits ``theta`` (``alpha = sigmoid(theta)``).
        sparsity: weight of the L1 penalty ``sum alpha`` (0: no penalty).
        init: every alpha's starting value (in (0, 1)).
    """
    if not prompts:
        raise ValueError("fit_soft_task_vector needs at least one prompt")
    if not 0 < init < 1:
        raise ValueError(f"init must be in (0, 1), got {init}")
    info = model_info(model)
    if tuple(mean_z.shape) != (info.n_layers, info.n_heads, info.d_head):
        raise VectorMismatch(
            f"mean_z has shape {tuple(mean_z.shape)}, but {info.name} needs "
            f"{(info.n_layers, info.n_heads, info.d_head)} (layer, head, d_head)."
        )
    device = input_device(model)
    dtype = model_dtype(model)
    mean_dev = mean_z.to(device=device, dtype=dtype)
    batches = [
        (idx, tokens.to(device), torch.tensor([prompts[i].answer_id for i in idx], device=device))
        for idx, tokens in length_batches(prompts, batch_size)
    ]
    rng = random.Random(seed)
    theta = torch.full(
        (info.n_layers, info.n_heads),
        float(torch.logit(torch.tensor(init))),
        device=device,
        requires_grad=True,
    )
    opt = torch.optim.Adam([theta], lr=lr)
    history: dict[str, list[float]] = {"ce": [], "penalty": [], "n_on": []}
    order: list[int] = []
    bar = tqdm(
        range(steps), desc=f"soft task vector{': ' + task if task else ''}", disable=not progress, leave=False
    )
    with _frozen(model), torch.enable_grad():
        for _ in bar:
            if not order:
                order = list(range(len(batches)))
                rng.shuffle(order)
            _, tokens, answers = batches[order.pop()]
            alpha = torch.sigmoid(theta)
            logits = model.run_with_hooks(
                tokens, fwd_hooks=soft_hooks(model, alpha, mean_dev), logits_to_keep=1
            )[:, -1]
            ce = F.cross_entropy(logits.float(), answers.to(logits.device))
            penalty = sparsity * alpha.sum()
            opt.zero_grad(set_to_none=True)
            (ce + penalty).backward()
            opt.step()
            history["ce"].append(float(ce.detach()))
            history["penalty"].append(float(penalty.detach()))
            history["n_on"].append(int((alpha > ON_THRESHOLD).sum()))
            bar.set_postfix(ce=f"{history['ce'][-1]:.3f}", on=history["n_on"][-1])
    hparams = {
        "steps": steps,
        "lr": lr,
        "sparsity": sparsity,
        "batch_size": batch_size,
        "init": init,
        "seed": seed,
        "n_prompts": len(prompts),
    }
    provenance = vector_provenance(
        model,
        "z",
        "blend: z + alpha * (mean_z - z) per head",
        "last token of the prompt, and every generated token",
        "alpha per head",
        task=task,
        fitted_on="zero-shot prompts of the train split",
    )
    return SoftTaskVector(
        torch.sigmoid(theta).detach().float().cpu(),
        mean_z.detach().float().cpu(),
        info.name,
        task,
        hparams,
        history,
        provenance=provenance,
    )


def soft_vs_fv(
    model,
    result,
    *,
    steps: int = 150,
    lr: float = 0.1,
    sparsity: float = 0.05,
    batch_size: int = 16,
    init: float = 0.1,
    n_train: int | None = None,
    top_k: int | None = None,
    seed: int = 0,
    soft: SoftTaskVector | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit a soft task vector on ``result``'s train zero-shot prompts; compare on its test split.

    ``result`` is a :class:`workbench.method.result.TaskResult` (its means, scan, FV and layer are
    used).  Conditions, all on the test split's zero-shot prompts unless named otherwise:
    ``zero_shot``, ``zero_shot_soft``, ``zero_shot_soft_binary`` (alpha rounded at 0.5),
    ``zero_shot_fv`` (the result's FV at its layer), ``zero_shot_topk_mask`` (the top-k heads by
    AIE mean-patched, alpha = 1 on them: k = the FV's head count unless ``top_k``),
    ``zero_shot_aie_mask_matched`` (the same with as many heads as the soft vector has on) and
    ``icl`` (clean 10-shot, from the result's own evaluation of the same test queries).
    ``soft``: an already fitted vector to evaluate instead of fitting one.

    Returns a JSON-able dict (``accuracy`` on the test queries clean ICL gets right, as in the
    pipeline, and ``accuracy_unfiltered`` on all), plus ``"soft"``: the fitted
    :class:`SoftTaskVector`.
    """
    info = model_info(model)
    p = result.protocol
    sets = result.prompt_sets(model)
    train = sets.encoded("train_zero_shot", n_train)
    mean_z = result.means.mean_z
    if soft is None:
        soft = fit_soft_task_vector(
            model,
            train,
            mean_z,
            steps=steps,
            lr=lr,
            sparsity=sparsity,
            batch_size=batch_size,
            init=init,
            seed=seed,
            task=result.task.name,
            progress=progress,
        )
        soft.provenance.update(protocol=p.to_dict(), seed=p.seed, task_digest=result.task.digest)
    else:
        soft.check_compatible(model)
        if not torch.allclose(soft.mean_z, mean_z.float().cpu()):
            raise VectorMismatch("the given soft task vector blends toward other means than this result's")
    soft.meta["train_loss_init"] = soft_loss(
        model, train, torch.full_like(soft.alpha, soft.hparams.get("init", init)), mean_z, batch_size
    )
    soft.meta["train_loss_final"] = soft_loss(model, train, soft.alpha, mean_z, batch_size)

    k = top_k or len(result.fv.heads)
    accs = soft_conditions(model, result, soft, k, progress)
    zero, right = sets["test_zero_shot"], accs["icl"].correct
    top = [(l, h) for l, h, _ in result.scan.top_heads(k)]
    aie = torch.nan_to_num(result.scan.aie.float(), nan=0.0)
    return {
        "model": info.name,
        "task": result.task.name,
        "accuracy": {name: Accuracy(a.ranks[right]).top1 for name, a in accs.items()},
        "accuracy_unfiltered": {name: a.top1 for name, a in accs.items()},
        "n_test": len(zero),
        "n_test_filtered": int(right.sum()),
        "n_train": len(train),
        "n_params": soft.n_params,
        "n_on": soft.n_on(),
        "alpha_sum": float(soft.alpha.sum()),
        "top_k": k,
        "fv_layer": result.fv_layer,
        "spearman_alpha_aie": spearman(soft.alpha, aie),
        "top_soft_heads": [[l, h, a] for l, h, a in soft.top_heads(10)],
        "top_aie_heads": [[l, h, v] for l, h, v in result.scan.top_heads(k)],
        "overlap_top_k": len({(l, h) for l, h, _ in soft.top_heads(k)} & set(top)),
        "train_loss_init": soft.meta["train_loss_init"],
        "train_loss_final": soft.meta["train_loss_final"],
        "hparams": soft.hparams,
        "soft": soft,
    }


def soft_conditions(
    model, result, soft: SoftTaskVector, top_k: int, progress: bool = True
) -> dict[str, Accuracy]:
    """Every test query of ``result`` (zero-shot) under the soft vector and its comparisons (see
    :func:`soft_vs_fv`), and clean ICL from the result's own evaluation of the same queries."""
    zero = result.prompt_sets(model)["test_zero_shot"]
    icl = result.accuracy_unfiltered["icl"]
    if icl.n != len(zero):
        raise RuntimeError(
            f"the result's ICL evaluation has {icl.n} test queries, its prompt sets {len(zero)}"
        )
    mean_z = result.means.mean_z
    top = [(l, h) for l, h, _ in result.scan.top_heads(top_k)]
    matched = [(l, h) for l, h, _ in result.scan.top_heads(max(1, soft.n_on()))]
    conditions: dict[str, Hooks | None] = {
        "zero_shot": None,
        "zero_shot_soft": soft.hooks(model),
        "zero_shot_soft_binary": soft.binarized().hooks(model),
        "zero_shot_fv": add_vector(model, result.fv_layer, result.fv.vector, result.protocol.alpha),
        "zero_shot_topk_mask": mean_ablate_heads(model, top, mean_z),
        "zero_shot_aie_mask_matched": mean_ablate_heads(model, matched, mean_z),
    }
    accs = accuracies(model, zero, conditions, progress=progress and "evaluate")  # prefixes once
    return {**accs, "icl": icl}
