"""circuitsvis attention views that work offline.

circuitsvis's notebook display first probes the internet, and its ``str()`` HTML loads the
script from a CDN.  Here the JavaScript bundle that ships inside the circuitsvis wheel is
inlined ONCE per page, and every view on the page calls it: the HTML opens with no network.

>>> page = AttentionPage()  # doctest: +SKIP
>>> page.add_heads("top FV heads", patterns, tokens)  # doctest: +SKIP
>>> page.save("figures/attention.html")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from ..base.files import atomic_path
from ..core.model import hook_name, input_device, model_info
from ..data.prompts import EncodedPrompt

__all__ = ["AttentionPage", "head_patterns", "circuitsvis_bundle", "attention_view"]


def circuitsvis_bundle() -> str:
    """The circuitsvis browser bundle (IIFE build) from the installed wheel."""
    import circuitsvis

    path = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
    if not path.exists():
        raise FileNotFoundError(
            f"circuitsvis's bundled JavaScript is missing at {path}; reinstall circuitsvis"
        )
    return path.read_text(encoding="utf-8").replace("</script>", "<\\/script>")


@torch.inference_mode()
def head_patterns(
    model, prompt: EncodedPrompt, heads: Sequence[tuple[int, int]]
) -> Float[Tensor, "head query key"]:
    """Attention patterns (``blocks.L.attn.hook_pattern``) of the given heads on one prompt."""
    info = model_info(model)
    layers = sorted({info.check_layer(l) for l, _ in heads})
    store: dict[int, Tensor] = {}

    def grab(pattern, hook):
        store[hook.layer()] = pattern[0].float().cpu()
        return pattern

    device = input_device(model)
    model.run_with_hooks(
        torch.tensor([prompt.ids], device=device), fwd_hooks=[(hook_name("pattern", l), grab) for l in layers]
    )
    return torch.stack([store[l][h] for l, h in heads])


def _token_strings(model, prompt: EncodedPrompt, marks: dict[int, str]) -> list[str]:
    toks = [model.tokenizer.decode([i]) for i in prompt.ids]
    return [f"{marks[i]}{t}" if i in marks else t for i, t in enumerate(toks)]


def label_positions(model, prompt: EncodedPrompt) -> dict[int, str]:
    """Mark the demonstration labels' first tokens (``▸``) and the query's last token (``◆``)."""
    tok = model.tokenizer
    marks: dict[int, str] = {len(prompt.ids) - 1: "◆"}
    text_so_far = ""
    offsets = []
    for i in prompt.ids:
        offsets.append(len(text_so_far))
        text_so_far += tok.decode([i])
    cursor = 0
    for demo in prompt.prompt.demos:
        at = text_so_far.find(" " + demo.output, text_so_far.find(demo.input, cursor) + len(demo.input))
        if at < 0:
            continue
        cursor = at
        pos = max(j for j, off in enumerate(offsets) if off <= at + 1)
        marks[pos] = "▸"
    return marks


class AttentionPage:
    """An HTML page of circuitsvis attention views, with the bundle inlined once."""

    def __init__(self, title: str = "Attention of function-vector heads"):
        self.title = title
        self.sections: list[str] = []

    def add_heads(
        self,
        caption: str,
        patterns: Float[Tensor, "head query key"],
        tokens: Sequence[str],
        head_names: Sequence[str] | None = None,
    ) -> AttentionPage:
        div = "cv-" + uuid.uuid4().hex[:12]
        props = {"attention": patterns.tolist(), "tokens": list(tokens)}
        if head_names is not None:
            props["attentionHeadNames"] = list(head_names)
        self.sections.append(
            f"<h3>{html.escape(caption)}</h3><div id='{div}'></div>"
            f"<script>CircuitsVis.render('{div}', CircuitsVis.AttentionHeads, {json.dumps(props)});</script>"
        )
        return self

    def html(self) -> str:
        return (
            "<!DOCTYPE html><html><head><meta "
            f"charset='utf-8'><title>{html.escape(self.title)}</title></head>"
            f"<body style='font-family: sans-serif'><h2>{html.escape(self.title)}</h2>"
            "<p>◆ marks the query's last token (where the FV heads read the task); ▸ marks the first token "
            "of each demonstration's label.</p>"
            f"<script>{circuitsvis_bundle()}</script>{''.join(self.sections)}</body></html>"
        )

    def _repr_html_(self) -> str:  # a notebook cell: the same self-contained page in an iframe
        return (
            f'<iframe srcdoc="{html.escape(self.html(), quote=True)}" '
            "style='width:100%; height:720px; border:0'></iframe>"
        )

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_text(self.html(), encoding="utf-8")
        return Path(path)


def attention_view(
    model,
    prompt: EncodedPrompt,
    heads: Sequence[tuple[int, int]],
    caption: str = "",
    page: AttentionPage | None = None,
) -> AttentionPage:
    """Add the patterns of ``heads`` on ``prompt`` to ``page`` (a new one by default)."""
    page = page or AttentionPage()
    patterns = head_patterns(model, prompt, heads)
    tokens = _token_strings(model, prompt, label_positions(model, prompt))
    return page.add_heads(
        caption or ", ".join(f"L{l}H{h}" for l, h in heads), patterns, tokens, [f"L{l}H{h}" for l, h in heads]
    )
