"""The indirect-effect scan beyond heads: each layer's whole attention output and its MLP output.

A *site* is what one sublayer adds to the residual stream at the last token:

- ``attn``: the attention layer's output as it enters the residual (``blocks.L.hook_attn_out``;
  on models with a post-attention norm, Gemma 2/3, the norm's output ``blocks.L.ln1_post.hook_out``);
- ``mlp``: the MLP's output as it enters the residual (``blocks.L.hook_mlp_out``; Gemma:
  ``blocks.L.ln2_post.hook_out``).

As in the head scan, a site is patched at the last token of a corrupted prompt with its mean
over clean prompts, and its indirect effect is ``P_patched(answer) - P_corrupted(answer)``.
Patching at the last token changes nothing earlier, so every site is a last-token variant of one
run of the prompt's prefix (:func:`workbench.core.variants.variant_scores`): exact and fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from ..data.prompts import EncodedPrompt
from .forward import last_token_logits
from .model import model_info
from .variants import variant_scores

__all__ = ["SITES", "site_hook", "site_means", "scan_sites", "SiteScan"]

SITES = ("attn", "mlp")


def site_hook(model, site: str, layer: int) -> str:
    """The hook point whose activation is exactly what ``site`` of ``layer`` adds to the residual."""
    post = model_info(model).post_attn_norm
    if site == "attn":
        return f"blocks.{layer}.ln1_post.hook_out" if post else f"blocks.{layer}.hook_attn_out"
    if site == "mlp":
        return f"blocks.{layer}.ln2_post.hook_out" if post else f"blocks.{layer}.hook_mlp_out"
    raise ValueError(f"unknown site {site!r}; use one of {SITES}")


def site_means(
    model, prompts: Sequence[EncodedPrompt], batch_size: int = 8
) -> Float[Tensor, "site layer d_model"]:
    """Each site's mean last-token output over ``prompts`` (``[site, layer, d_model]``, sites in
    :data:`SITES` order)."""
    info = model_info(model)
    sums = torch.zeros(len(SITES), info.n_layers, info.d_model)
    hooks = []
    for s, site in enumerate(SITES):
        for layer in range(info.n_layers):

            def grab(act, hook, s=s, layer=layer):
                sums[s, layer] += act[:, -1].float().sum(0).cpu()
                return act

            hooks.append((site_hook(model, site, layer), grab))
    last_token_logits(model, prompts, hooks, batch_size=batch_size, pad=True)  # hooks read [:, -1] only
    if not prompts:
        raise ValueError("site_means needs at least one prompt")
    return sums / len(prompts)


@dataclass
class SiteScan:
    """``effects[prompt, site, layer]``: ``P_patched - P_corrupted`` of the answer."""

    effects: Float[Tensor, "prompt site layer"]
    model: str = ""
    task: str = ""

    @property
    def aie(self) -> Float[Tensor, "site layer"]:
        return self.effects.mean(0)

    @property
    def sem(self) -> Float[Tensor, "site layer"]:
        n = self.effects.shape[0]
        return self.effects.std(0) / math.sqrt(n) if n > 1 else torch.full_like(self.aie, float("nan"))

    def to_dict(self) -> dict:
        return {
            "sites": list(SITES),
            "aie": self.aie.tolist(),
            "sem": self.sem.tolist(),
            "n_prompts": int(self.effects.shape[0]),
        }

    def __repr__(self) -> str:
        parts = []
        for s, site in enumerate(SITES):
            best = int(self.aie[s].argmax())
            parts.append(f"{site}: best L{best} {float(self.aie[s, best]):+.3f}")
        return f"SiteScan({self.model} / {self.task}, {self.effects.shape[0]} prompts; {'; '.join(parts)})"


def scan_sites(
    model,
    prompts: Sequence[EncodedPrompt],
    means: Float[Tensor, "site layer d_model"],
    layers: Sequence[int] | None = None,
    progress: bool = False,
) -> SiteScan:
    """Every site's indirect effect on ``prompts`` (patched with ``means`` at the last token)."""
    info = model_info(model)
    layers = list(range(info.n_layers)) if layers is None else list(layers)

    def patch(mean):
        def hook(act, hook):
            act[:, -1] = mean.to(device=act.device, dtype=act.dtype)
            return act

        return hook

    interventions: dict = {"corrupted": None}
    for s, site in enumerate(SITES):
        for layer in layers:
            interventions[(s, layer)] = [(site_hook(model, site, layer), patch(means[s, layer]))]
    scores = variant_scores(model, prompts, interventions, progress=progress and "site scan")
    base = scores["corrupted"].probs
    effects = torch.full((len(prompts), len(SITES), info.n_layers), float("nan"))
    for s in range(len(SITES)):
        for layer in layers:
            effects[:, s, layer] = scores[(s, layer)].probs - base
    return SiteScan(effects, info.name)
