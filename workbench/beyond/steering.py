"""Contrastive steering vectors: the difference of two prompt sets' mean last-token residuals.

For a *positive* set of prompts (e.g. positive reviews) and a *negative* set (negative reviews),
the steering vector after block ``L`` is

    v[L] = mean_{p in positive} resid_post[L](p)[-1]  -  mean_{p in negative} resid_post[L](p)[-1]

(Turner et al.'s activation addition, Rimsky et al.'s contrastive activation addition, with the
mean over many prompts).  It is computed for EVERY layer in one pass per set
(:func:`workbench.activations.last_token_states`).  Adding ``alpha * v[L]`` after block ``L``
(:func:`workbench.intervene.add_vector`, at the prompt's last position and every generated one)
pushes generations towards the positive set; projecting ``v`` out of the residual stream
(Arditi et al.'s directional ablation) removes what the model writes along it.

One layer's vector is a :class:`~workbench.vectors.FunctionVector` (``sv.at(layer)``), so
decoding, algebra and single-vector saving are the function vectors' own.

Prompt formats.  ``chat=False`` tokenizes the raw text after the model's BOS, as
:func:`workbench.prompts.encode_prompt` does.  ``chat=True`` wraps each text as a user turn in the
tokenizer's chat template with the assistant header appended (``...<|im_start|>assistant\\n`` on
SmolLM2-Instruct): the last token, where the residual is read and the vector is added, is then
the same header token for every prompt, the point where the assistant's reply starts.  Use it
for behaviours of the assistant (agreeing with the user); use plain text for properties of a
continuation (sentiment, language).  A contrast file says which (``"chat": true/false``).

Contrast files (``tasks/steering/*.json``)::

    {"name": "sentiment", "description": "...", "chat": false,
     "positive_label": "positive", "negative_label": "negative",
     "positive": ["I loved every minute of", ...], "negative": ["I hated every minute of", ...],
     "test": ["The weather today is", ...],
     "score_words": {"positive": [" great", ...], "negative": [" awful", ...]}}

``test`` holds held-out prompts for generation; ``score_words`` (optional) the words whose
presence in a generation, and whose first tokens' logits at the next position, score it.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from jaxtyping import Float
from torch import Tensor

from .activations import last_token_states
from .cache import read_tensors, write_tensors
from .forward import Hooks, last_token_logits
from .intervene import add_vector, generate, project_out
from .models import model_info
from .prompts import EncodedPrompt, Prompt
from .tasks import Pair, tasks_dir
from .vectors import FunctionVector, VectorMismatch, package_versions

__all__ = [
    "SteeringVector",
    "encode_texts",
    "word_hits",
    "logit_gap",
]


def encode_texts(model, texts: Sequence[str], chat: bool = False) -> list[EncodedPrompt]:
    """Token ids of raw texts, BOS first (as :func:`workbench.prompts.encode_prompt` does).

    ``chat=True`` wraps each text as a user turn of the tokenizer's chat template, ending with
    the assistant header.  These prompts have no answer: ``answer_id`` is ``-1``.
    """
    tok = model.tokenizer
    bos = model_info(model).bos_id
    if chat and not getattr(tok, "chat_template", None):
        raise ValueError(f"{model_info(model).name}'s tokenizer has no chat template; use chat=False")
    out = []
    for text in texts:
        rendered = (tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                            add_generation_prompt=True) if chat else text)
        ids = list(tok(rendered, add_special_tokens=False)["input_ids"])
        if bos is not None and (not ids or ids[0] != bos):  # a chat template may start with BOS already
            ids = [bos] + ids
        out.append(EncodedPrompt(tuple(ids), -1, Prompt(rendered, Pair(text, ""), (), "natural")))
    return out


# --- scoring ---------------------------------------------------------------------------------------

def word_hits(text: str, words: Sequence[str]) -> int:
    """How many of ``words`` occur in ``text`` (case-insensitive, whole words)."""
    import re

    low = text.lower()
    return sum(bool(re.search(rf"(?<![a-z]){re.escape(w.strip().lower())}(?![a-z])", low)) for w in words)


def _first_tokens(model, words: Sequence[str]) -> list[int]:
    ids = []
    for w in words:
        for form in (" " + w.strip(), w.strip().capitalize(), " " + w.strip().capitalize()):
            t = model.tokenizer(form, add_special_tokens=False)["input_ids"]
            if t:
                ids.append(t[0])
    return sorted(set(ids))


def logit_gap(model, prompts: Sequence[EncodedPrompt], positive_words: Sequence[str], negative_words: Sequence[str],
              hooks: Hooks | None = None) -> Float[Tensor, " prompt"]:
    """Per prompt: mean next-token log-prob of the positive words' first tokens minus the negative
    words' (each word as ``" word"``, ``"Word"`` and ``" Word"``), under ``hooks``."""
    logp = last_token_logits(model, prompts, hooks, batch_size=8).log_softmax(-1)
    pos, neg = _first_tokens(model, positive_words), _first_tokens(model, negative_words)
    return logp[:, pos].mean(-1) - logp[:, neg].mean(-1)


# --- the vector -------------------------------------------------------------------------------------

@dataclass
class SteeringVector:
    """Per-layer contrastive directions ``[layer, d_model]`` of one model, with their provenance.

    ``directions[L]`` belongs after block ``L`` (``blocks.L.hook_resid_post``).  ``centers[L]``
    (optional) is the midpoint of the two sets' means, for the *centered* projection, which moves
    a state to the middle of the two sets along the direction instead of to the origin.
    """

    directions: Float[Tensor, "layer d_model"]
    model: str
    positive: str = "positive"
    negative: str = "negative"
    n_positive: int = 0
    n_negative: int = 0
    chat: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    centers: Float[Tensor, "layer d_model"] | None = None

    # --- building -----------------------------------------------------------------------------------
    @classmethod
    def from_texts(cls, model, positive: Sequence[str], negative: Sequence[str], chat: bool = False,
                   positive_label: str = "positive", negative_label: str = "negative",
                   meta: dict[str, Any] | None = None, batch_size: int = 8) -> "SteeringVector":
        """Mean last-token residual of ``positive`` minus that of ``negative``, at every layer."""
        if not positive or not negative:
            raise ValueError("a steering vector needs at least one positive and one negative prompt")
        layers = list(range(model_info(model).n_layers))
        means = [last_token_states(model, encode_texts(model, texts, chat), layers, batch_size).mean(1)
                 for texts in (positive, negative)]
        return cls(means[0] - means[1], model_info(model).name, positive_label, negative_label,
                   len(positive), len(negative), chat, dict(meta or {}), (means[0] + means[1]) / 2)

    @classmethod
    def from_contrast(cls, model, contrast: ContrastSet | str | Path, **kw) -> "SteeringVector":
        """Build from a :class:`ContrastSet` (or the name/path of a contrast file)."""
        c = contrast if isinstance(contrast, ContrastSet) else load_contrast(contrast)
        return cls.from_texts(model, c.positive, c.negative, c.chat, c.positive_label, c.negative_label,
                              meta={"contrast": c.name}, **kw)

    # --- views -----------------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return self.directions.shape[0]

    @property
    def d_model(self) -> int:
        return self.directions.shape[1]

    @property
    def norms(self) -> Float[Tensor, " layer"]:
        return self.directions.norm(dim=-1)

    @property
    def label(self) -> str:
        return f"{self.positive} - {self.negative}"

    def at(self, layer: int) -> FunctionVector:
        """One layer's direction as a :class:`FunctionVector` (decode, algebra, save, add)."""
        if not -self.n_layers <= layer < self.n_layers:
            raise IndexError(f"layer {layer} is out of range: this vector has {self.n_layers} layers")
        layer %= self.n_layers
        return FunctionVector(self.directions[layer].clone(), self.model, task=self.label, layer=layer,
                              meta={"kind": "steering", "n_positive": self.n_positive,
                                    "n_negative": self.n_negative, "chat": self.chat})

    def __repr__(self) -> str:
        n = self.norms
        return (f"SteeringVector({self.label!r} on {self.model}, {self.n_positive} vs {self.n_negative} prompts, "
                f"{self.n_layers} layers x d_model {self.d_model}, |v| {float(n[0]):.2f} (layer 0) .. "
                f"{float(n[-1]):.2f} (layer {self.n_layers - 1}), {'chat' if self.chat else 'text'} format)")

    def _repr_html_(self) -> str:
        n = self.norms.tolist()
        top = max(n) or 1.0
        bars = "".join(
            f"<div title='layer {i}: |v| = {v:.2f}' style='display:inline-block;width:8px;margin-right:1px;"
            f"height:{max(1, int(40 * v / top))}px;background:#DD8452;vertical-align:bottom'></div>"
            for i, v in enumerate(n))
        rows = [("model", self.model), ("positive", f"{self.positive} ({self.n_positive} prompts)"),
                ("negative", f"{self.negative} ({self.n_negative} prompts)"),
                ("shape", f"{self.n_layers} layers × d_model {self.d_model}"),
                ("format", "chat template" if self.chat else "plain text")]
        rows += [(k, v) for k, v in self.meta.items() if k != "versions"]
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
        return (f"<div><b>SteeringVector</b> {html.escape(self.label)}<table>{body}</table>"
                f"<div style='font-size:11px'>|v| per layer (0 → {self.n_layers - 1}, max {top:.2f})</div>"
                f"<div style='height:42px'>{bars}</div></div>")

    # --- use with a model ---------------------------------------------------------------------------
    def check_compatible(self, model) -> None:
        """Raise :class:`~workbench.vectors.VectorMismatch` unless made on ``model``."""
        info = model_info(model)
        if (self.d_model, self.n_layers) != (info.d_model, info.n_layers):
            raise VectorMismatch(
                f"this steering vector has {self.n_layers} layers x d_model {self.d_model} (made on {self.model!r}), "
                f"but {info.name} has {info.n_layers} layers x d_model {info.d_model}. Build one on {info.name}.")
        if self.model != info.name:
            raise VectorMismatch(
                f"this steering vector was made on {self.model!r}, not on {info.name!r}; residual streams of "
                f"different models do not share directions. Build one on {info.name}.")

    def add_hooks(self, model, layer: int, alpha: float = 1.0, from_position: int | None = None) -> Hooks:
        """Hooks adding ``alpha * directions[layer]`` after ``layer`` (last position, or every
        position from ``from_position`` on): :func:`workbench.intervene.add_vector`."""
        self.check_compatible(model)
        return add_vector(model, layer, self.directions[layer], alpha, from_position)

    def project_out_hooks(self, model, layer: int | None = None, layers: Sequence[int] | None = None,
                          from_position: int | None = None, centered: bool = False) -> Hooks:
        """Hooks removing the steering direction from the residual after each of ``layers`` (all by default).

        ``layer``: project out that one layer's direction everywhere (directional ablation);
        ``None``: each layer's own direction at that layer.  At the last position
        (:func:`workbench.intervene.project_out`), or at every position from ``from_position`` on
        (for generation, where earlier generated tokens must stay projected).

        ``centered=False`` sets the component along the direction to 0 (Arditi et al.);
        ``centered=True`` sets it to that of ``centers`` (the midpoint of the two sets' means),
        i.e. ``x - ((x - c) . u) u``.  A mean difference is not a direction through the typical
        state: the plain projection can move a state past the midpoint, toward either side.
        """
        self.check_compatible(model)
        if centered and self.centers is None:
            raise ValueError("this steering vector has no centers (made before they were stored?); use centered=False")
        layers = list(range(self.n_layers)) if layers is None else [model_info(model).check_layer(l) for l in layers]
        hooks: Hooks = []
        for l in layers:
            src = l if layer is None else layer
            d = self.directions[src]
            if from_position is None and not centered:
                hooks += project_out(model, d, [l])
            else:
                hooks += _project_from(d, l, -1 if from_position is None else from_position,
                                       self.centers[src] if centered else None)
        return hooks

    def generate(self, model, prompt: str, layer: int | None = None, alpha: float = 1.0, max_new_tokens: int = 24,
                 chat: bool | None = None, project: bool = False, centered: bool = False,
                 stop_at_newline: bool = False) -> str:
        """Greedy continuation of ``prompt`` (a raw text; chat-wrapped if ``chat``, default: as the
        vector was built), with ``alpha * directions[layer]`` added from the prompt's last token on
        (:func:`workbench.intervene.generate`), or, with ``project=True``, with the direction
        projected out after every layer (``layer``'s direction; each layer's own if ``None``).
        ``centered``: see :meth:`project_out_hooks`.  ``layer=None`` and ``project=False``: no intervention."""
        self.check_compatible(model)
        ids = encode_texts(model, [prompt], self.chat if chat is None else chat)[0].ids
        if project:
            with model.hooks(fwd_hooks=self.project_out_hooks(model, layer, from_position=len(ids) - 1,
                                                                      centered=centered)):
                return generate(model, ids, max_new_tokens, stop_at_newline=stop_at_newline)
        if layer is None:
            return generate(model, ids, max_new_tokens, stop_at_newline=stop_at_newline)
        return generate(model, ids, max_new_tokens, self.directions[layer], layer, alpha, stop_at_newline)

    # --- persistence ----------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """``directions`` as safetensors, the provenance as JSON metadata (atomically)."""
        meta = {"model": self.model, "positive": self.positive, "negative": self.negative,
                "n_positive": self.n_positive, "n_negative": self.n_negative, "chat": self.chat,
                "n_layers": self.n_layers, "d_model": self.d_model, "versions": package_versions(),
                "meta": self.meta}
        tensors = {"steering_directions": self.directions.float()}
        if self.centers is not None:
            tensors["centers"] = self.centers.float()
        return write_tensors(path, tensors, meta)

    @classmethod
    def load(cls, path: str | Path, model=None) -> "SteeringVector":
        """Read a saved vector; with ``model``, check that it was made on that model."""
        tensors, meta = read_tensors(path)
        if "steering_directions" not in tensors:
            raise ValueError(f"{path} holds no 'steering_directions' tensor; was it written by SteeringVector.save? "
                             f"(a single layer's FunctionVector loads with FunctionVector.load)")
        sv = cls(tensors["steering_directions"], meta.get("model", ""), meta.get("positive", "positive"),
                 meta.get("negative", "negative"), int(meta.get("n_positive", 0)), int(meta.get("n_negative", 0)),
                 bool(meta.get("chat", False)), dict(meta.get("meta", {})), tensors.get("centers"))
        if model is not None:
            sv.check_compatible(model)
        return sv


def _project_from(direction: Tensor, layer: int, start: int, center: Tensor | None = None) -> Hooks:
    """Remove the component along ``direction`` (relative to ``center``) at positions ``start:``."""
    u = direction.float() / direction.float().norm()
    offset = float(center.float() @ u) if center is not None else 0.0

    def hook(resid, hook):
        uu = u.to(device=resid.device, dtype=resid.dtype)
        x = resid[:, start:]
        resid[:, start:] = x - ((x @ uu) - offset)[..., None] * uu
        return resid

    return [(f"blocks.{layer}.hook_resid_post", hook)]
