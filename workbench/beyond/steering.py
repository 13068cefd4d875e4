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
continuation (sentiment, language).  A contrast file (:mod:`workbench.data.contrasts`) says which
(``"chat": true/false``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from jaxtyping import Float
from torch import Tensor

from ..core.forward import Hooks, last_token_logits
from ..core.heads import last_token_states
from ..core.hooks import add_vector, generate, project_out
from ..core.model import ModelInfo, model_info
from ..data.contrasts import ContrastSet, load_contrast
from ..data.prompts import EncodedPrompt, Prompt
from ..data.tasks import Pair
from ..method.vectors import FunctionVector, VectorArtifact, vector_provenance

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
        rendered = (
            tok.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
            if chat
            else text
        )
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


def logit_gap(
    model,
    prompts: Sequence[EncodedPrompt],
    positive_words: Sequence[str],
    negative_words: Sequence[str],
    hooks: Hooks | None = None,
) -> Float[Tensor, " prompt"]:
    """Per prompt: mean next-token log-prob of the positive words' first tokens minus the negative
    words' (each word as ``" word"``, ``"Word"`` and ``" Word"``), under ``hooks``."""
    logp = last_token_logits(model, prompts, hooks, batch_size=8).log_softmax(-1)
    pos, neg = _first_tokens(model, positive_words), _first_tokens(model, negative_words)
    return logp[:, pos].mean(-1) - logp[:, neg].mean(-1)


# --- the vector -------------------------------------------------------------------------------------


@dataclass
class SteeringVector(VectorArtifact):
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
    provenance: dict[str, Any] = field(default_factory=dict)
    allow_other_model: bool = field(default=False, compare=False)

    KIND: ClassVar[str] = "steering_vector"
    TENSOR_NAMES: ClassVar[tuple[str, ...]] = ("steering_directions",)
    LEGACY_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"model", "positive", "negative", "n_positive", "n_negative", "chat", "n_layers", "d_model", "meta"}
    )

    def __post_init__(self) -> None:
        self._normalise_records()

    def n_model_layers(self) -> int:
        return self.n_layers

    # --- building -----------------------------------------------------------------------------------
    @classmethod
    def from_texts(
        cls,
        model,
        positive: Sequence[str],
        negative: Sequence[str],
        chat: bool = False,
        positive_label: str = "positive",
        negative_label: str = "negative",
        meta: dict[str, Any] | None = None,
        batch_size: int = 8,
    ) -> SteeringVector:
        """Mean last-token residual of ``positive`` minus that of ``negative``, at every layer."""
        if not positive or not negative:
            raise ValueError("a steering vector needs at least one positive and one negative prompt")
        layers = list(range(model_info(model).n_layers))
        means = [
            last_token_states(model, encode_texts(model, texts, chat), layers, batch_size).mean(1)
            for texts in (positive, negative)
        ]
        provenance = vector_provenance(
            model,
            "resid_post",
            "add alpha * directions[L] after layer L, or project out",
            "last token of the prompt, and every generated token",
            "alpha (chosen at use)",
            prompt_format="chat template" if chat else "plain text after BOS",
        )
        return cls(
            means[0] - means[1],
            model_info(model).name,
            positive_label,
            negative_label,
            len(positive),
            len(negative),
            chat,
            dict(meta or {}),
            (means[0] + means[1]) / 2,
            provenance,
        )

    @classmethod
    def from_contrast(cls, model, contrast: ContrastSet | str | Path, **kw) -> SteeringVector:
        """Build from a :class:`ContrastSet` (or the name/path of a contrast file)."""
        c = contrast if isinstance(contrast, ContrastSet) else load_contrast(contrast)
        return cls.from_texts(
            model,
            c.positive,
            c.negative,
            c.chat,
            c.positive_label,
            c.negative_label,
            meta={"contrast": c.name},
            **kw,
        )

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
        layer = self.check_layer(layer)
        return FunctionVector(
            self.directions[layer].clone(),
            self.model,
            task=self.label,
            layer=layer,
            meta={
                "kind": "steering",
                "n_positive": self.n_positive,
                "n_negative": self.n_negative,
                "chat": self.chat,
            },
            provenance=dict(self.provenance),
            allow_other_model=self.allow_other_model,
        )

    def __repr__(self) -> str:
        n = self.norms
        return (
            f"SteeringVector({self.label!r} on {self.model}, {self.n_positive} vs {self.n_negative} prompts, "
            f"{self.n_layers} layers x d_model {self.d_model}, |v| {float(n[0]):.2f} (layer 0) .. "
            f"{float(n[-1]):.2f} (layer {self.n_layers - 1}), {'chat' if self.chat else 'text'} format)"
        )

    def _repr_html_(self) -> str:
        n = self.norms.tolist()
        top = max(n) or 1.0
        bars = "".join(
            f"<div title='layer {i}: |v| = {v:.2f}' style='display:inline-block;width:8px;margin-right:1px;"
            f"height:{max(1, int(40 * v / top))}px;background:#DD8452;vertical-align:bottom'></div>"
            for i, v in enumerate(n)
        )
        rows = [
            ("model", self.model),
            ("positive", f"{self.positive} ({self.n_positive} prompts)"),
            ("negative", f"{self.negative} ({self.n_negative} prompts)"),
            ("shape", f"{self.n_layers} layers × d_model {self.d_model}"),
            ("format", "chat template" if self.chat else "plain text"),
        ]
        rows += [(k, v) for k, v in self.meta.items() if k != "versions"]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
            f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
            for k, v in rows
        )
        return (
            f"<div><b>SteeringVector</b> {html.escape(self.label)}<table>{body}</table>"
            f"<div style='font-size:11px'>|v| per layer (0 → {self.n_layers - 1}, max {top:.2f})</div>"
            f"<div style='height:42px'>{bars}</div></div>"
        )

    # --- use with a model ---------------------------------------------------------------------------
    def shape_problem(self, info: ModelInfo) -> str | None:
        if (self.n_layers, self.d_model) != (info.n_layers, info.d_model):
            return f"has {self.n_layers} layers x d_model {self.d_model}"
        return None

    def add_hooks(self, model, layer: int, alpha: float = 1.0, from_position: int | None = None) -> Hooks:
        """Hooks adding ``alpha * directions[layer]`` after ``layer`` (last position, or every
        position from ``from_position`` on): :func:`workbench.intervene.add_vector`."""
        self.check_compatible(model)
        layer = self.check_layer(layer)
        return add_vector(model, layer, self.directions[layer], alpha, from_position)

    def project_out_hooks(
        self,
        model,
        layer: int | None = None,
        layers: Sequence[int] | None = None,
        from_position: int | None = None,
        centered: bool = False,
    ) -> Hooks:
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
            raise ValueError(
                "this steering vector has no centers (made before they were stored?); use centered=False"
            )
        layers = (
            list(range(self.n_layers))
            if layers is None
            else [model_info(model).check_layer(l) for l in layers]
        )
        hooks: Hooks = []
        for l in layers:
            src = l if layer is None else self.check_layer(layer)
            hooks += project_out(
                model, self.directions[src], [l], self.centers[src] if centered else None, from_position
            )
        return hooks

    def generate(
        self,
        model,
        prompt: str,
        layer: int | None = None,
        alpha: float = 1.0,
        max_new_tokens: int = 24,
        chat: bool | None = None,
        project: bool = False,
        centered: bool = False,
        stop_at_newline: bool = False,
    ) -> str:
        """Greedy continuation of ``prompt`` (a raw text; chat-wrapped if ``chat``, default: as the
        vector was built), with ``alpha * directions[layer]`` added from the prompt's last token on
        (:func:`workbench.intervene.generate`), or, with ``project=True``, with the direction
        projected out after every layer (``layer``'s direction; each layer's own if ``None``).
        ``centered``: see :meth:`project_out_hooks`.  ``layer=None`` and ``project=False``: no
        intervention."""
        self.check_compatible(model)
        ids = encode_texts(model, [prompt], self.chat if chat is None else chat)[0].ids
        if project:
            hooks = self.project_out_hooks(model, layer, from_position=len(ids) - 1, centered=centered)
            return generate(model, ids, max_new_tokens, stop_at_newline=stop_at_newline, hooks=hooks)
        if layer is None:
            return generate(model, ids, max_new_tokens, stop_at_newline=stop_at_newline)
        layer = self.check_layer(layer)
        return generate(model, ids, max_new_tokens, self.directions[layer], layer, alpha, stop_at_newline)

    # --- the artifact ---------------------------------------------------------------------------
    def tensors(self) -> dict[str, Tensor]:
        out = {"steering_directions": self.directions}
        return out if self.centers is None else {**out, "centers": self.centers}

    def fields(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "positive": self.positive,
            "negative": self.negative,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "chat": self.chat,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
        }

    @classmethod
    def from_saved(cls, tensors, fields, provenance, meta) -> SteeringVector:
        meta = {**fields.get("meta", {}), **meta}  # the flat headers of earlier versions nested it
        return cls(
            tensors["steering_directions"],
            fields.get("model", ""),
            fields.get("positive", "positive"),
            fields.get("negative", "negative"),
            int(fields.get("n_positive", 0)),
            int(fields.get("n_negative", 0)),
            bool(fields.get("chat", False)),
            dict(meta),
            tensors.get("centers"),
            provenance,
        )
