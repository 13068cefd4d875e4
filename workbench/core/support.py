"""Which decoder architectures the workbench handles exactly, and which it refuses (and why).

:data:`FAMILIES` lists tiny random-weight configs of decoder families that transformers builds
and TransformerLens 4's bridge lists (2 layers, ``d_model`` 64: each loads in well under a
second).  :func:`family_model` builds one; :func:`architecture_table` runs the self-check
(:mod:`workbench.core.selfcheck`) on each and tells, per family, ``exact`` or ``refused`` with
the reason.  The docs' architecture table (``docs/architectures.md``) is its output
(``python -m workbench.cli architectures``); ``tests/test_support.py`` checks every family
against plain transformers.

Each family states its expectation: ``None`` (exact) or a phrase its refusal must contain.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from .tiny import TINY_SIZES

__all__ = [
    "Family",
    "FAMILIES",
    "family_config",
    "family_model",
    "architecture_table",
    "ArchitectureRow",
    "format_table",
    "write_architecture_table",
]

_BASE = dict(TINY_SIZES)  # the sizes every tiny family shares (aliases below)
_GPT2_NAMES = dict(n_embd=64, n_layer=2, n_head=4, n_positions=512, n_inner=128)
# DeepSeek's multi-head latent attention with routed experts (refused; the config still has to build)
_MLA = dict(
    q_lora_rank=None,
    kv_lora_rank=16,
    qk_rope_head_dim=8,
    qk_nope_head_dim=16,
    v_head_dim=16,
    n_routed_experts=4,
    num_experts_per_tok=2,
    first_k_dense_replace=2,
)
_MOE = dict(num_local_experts=4, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)


@dataclass(frozen=True)
class Family:
    """A decoder family as a tiny config: ``model_type`` for ``AutoConfig.for_model`` and overrides."""

    name: str
    model_type: str
    overrides: dict[str, Any] = field(default_factory=dict)
    refusal: str | None = None  # None: must be exact; else a regex the refusal's reason matches
    note: str = ""  # what this family exercises

    @property
    def expect(self) -> str:
        return "exact" if self.refusal is None else "refused"


def _f(name, model_type=None, refusal=None, note="", **overrides) -> Family:
    return Family(name, model_type or name, overrides, refusal, note)


_WINDOW = 16  # sliding windows shorter than the self-check's scan prompt

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        # --- the paper's models and today's main ones -----------------------------------------
        _f(
            "gptj",
            note="GPT-J: parallel attention/MLP, rotary on part of d_head",
            **_GPT2_NAMES,
            rotary_dim=8,
        ),
        _f("gpt_neox", note="Pythia: parallel residual, fused QKV", rotary_pct=0.5),
        _f("llama", note="Llama 2/3: GQA, RoPE, RMSNorm"),
        _f("mistral", note="sliding window on every layer", sliding_window=_WINDOW),
        _f("mixtral", note="MoE MLP + sliding window", sliding_window=_WINDOW, **_MOE),
        _f("qwen2", note="QKV biases"),
        _f("qwen2_moe", note="MoE with a shared expert", shared_expert_intermediate_size=32, **_MOE),
        _f("qwen3", note="per-head q/k norms"),
        _f("qwen3_moe", **_MOE),
        _f("phi", note="parallel block, partial rotary, biases"),
        _f("phi3", note="fused QKV and gate/up"),
        _f("gemma", note="scaled embeddings, (1 + w) RMSNorm"),
        _f(
            "gemma2",
            note="post-attention norm, soft-capping, alternating sliding layers",
            sliding_window=_WINDOW,
            query_pre_attn_scalar=16,
        ),
        _f(
            "gemma3_text",
            note="post-attention norm on every layer, 5:1 local/global layers",
            sliding_window=_WINDOW,
            query_pre_attn_scalar=16,
            layer_types=["sliding_attention", "full_attention"],
        ),
        _f("gpt2", note="learned positions, LayerNorm, Conv1D, biases", **_GPT2_NAMES),
        _f(
            "falcon",
            note="Falcon-7B: multi-query, parallel attention",
            multi_query=True,
            new_decoder_architecture=False,
            ffn_hidden_size=128,
        ),
        # --- norms after attention under other names --------------------------------------------
        _f("olmo", note="non-parametric LayerNorm"),
        _f("olmo2", note="post-attention RMSNorm named post_attention_layernorm, no pre-norm"),
        _f("olmo3", note="OLMo-2 block + sliding layers", sliding_window=_WINDOW),
        _f("olmoe", **_MOE),
        _f("flex_olmo", note="OLMo-2 block, MoE", **_MOE),
        _f("exaone4", note="post-norm block, sliding/global layers", sliding_window=_WINDOW),
        _f("glm", note="partial rotary, interleaved"),
        _f("glm4", note="post_self_attn_layernorm after attention; post_attention_layernorm is pre-MLP"),
        # --- multipliers ----------------------------------------------------------------------
        _f(
            "granite",
            note="residual/embedding/attention multipliers",
            residual_multiplier=0.37,
            embedding_multiplier=3.0,
            attention_multiplier=0.2,
            logits_scaling=2.0,
        ),
        _f(
            "granitemoe",
            residual_multiplier=0.37,
            embedding_multiplier=3.0,
            attention_multiplier=0.2,
            logits_scaling=2.0,
            **_MOE,
        ),
        # --- more families ----------------------------------------------------------------------
        _f("cohere", note="parallel block, LayerNorm without bias, logit scale"),
        _f("cohere2", note="parallel block, sliding layers", sliding_window=_WINDOW),
        _f("stablelm", note="partial rotary, LayerNorm"),
        _f("starcoder2", note="biases, sliding window", sliding_window=_WINDOW),
        _f("gpt_bigcode", note="multi-query, fused c_attn", **_GPT2_NAMES),
        _f("codegen", note="mixed QKV layout", **_GPT2_NAMES, rotary_dim=8, n_ctx=512),
        _f(
            "gpt_neo",
            note="local/global layers (window by absolute position)",
            window_size=_WINDOW,
            attention_types=[[["global", "local"], 1]],
            num_layers=2,
            num_heads=4,
            attention_layers=["global", "local"],
        ),
        _f("opt", note="learned positions with offset", ffn_dim=128, word_embed_proj_dim=64),
        _f("bloom", note="ALiBi", n_head=4, n_layer=2),
        _f(
            "falcon_rw",
            "falcon",
            note="Falcon-RW: ALiBi",
            alibi=True,
            new_decoder_architecture=False,
            multi_query=False,
            parallel_attn=False,
            bias=True,
            ffn_hidden_size=128,
            num_kv_heads=4,
        ),
        _f("xglm", note="sinusoidal positions", ffn_dim=128, d_model=64, num_layers=2, attention_heads=4),
        _f("smollm3", note="NoPE on some layers"),
        _f("helium", refusal="cannot wrap"),
        _f("nemotron", note="LayerNorm1P, relu2"),
        _f("hunyuan_v1_dense"),
        _f("ernie4_5"),
        _f("seed_oss"),
        _f("apertus", note="xIELU"),
        _f("arcee", note="relu2 MLP"),
        _f("ministral", refusal="cannot wrap", sliding_window=_WINDOW),
        _f("persimmon", refusal="cannot wrap"),
        _f(
            "gpt_oss",
            note="sinks, sliding layers, MoE",
            sliding_window=_WINDOW,
            num_local_experts=4,
            num_experts_per_tok=2,
            layer_types=["sliding_attention", "full_attention"],
        ),
        _f("openai-gpt", refusal="post-LayerNorm", n_embd=64, n_layer=2, n_head=4, n_positions=512),
        _f(
            "afmoe",
            note="post-attention norm, MoE, sliding layers",
            sliding_window=_WINDOW,
            num_experts=4,
            num_experts_per_tok=2,
            num_dense_layers=1,
            moe_intermediate_size=32,
        ),
        _f(
            "mpt",
            note="ALiBi, fused Wqkv",
            d_model=64,
            n_heads=4,
            n_layers=2,
            expansion_ratio=2,
            max_seq_len=512,
        ),
        _f(
            "jetmoe",
            refusal="no attention output projection",
            num_local_experts=4,
            num_experts_per_tok=2,
            kv_channels=16,
            num_key_value_heads=4,
        ),
        # --- refused: layers with state along the sequence, latent attention, disagreeing bridges
        _f(
            "falcon_gqa",
            "falcon",
            refusal="cannot wrap|logits",
            note="Falcon's new GQA layout: the bridge's logits differ",
            new_decoder_architecture=True,
            num_kv_heads=2,
            parallel_attn=True,
            ffn_hidden_size=128,
        ),
        _f("mamba", refusal="recurrent", state_size=4, expand=2, conv_kernel=4),
        _f("rwkv", refusal="recurrent", attention_hidden_size=64, num_hidden_layers=2),
        _f(
            "jamba",
            refusal="recurrent",
            attn_layer_period=2,
            attn_layer_offset=1,
            expert_layer_period=2,
            expert_layer_offset=1,
            mamba_d_state=4,
            mamba_d_conv=4,
            mamba_expand=2,
            mamba_dt_rank=8,
            **_MOE,
        ),
        _f(
            "bamba",
            refusal="recurrent",
            mamba_n_heads=8,
            mamba_d_head=16,
            mamba_n_groups=1,
            mamba_d_state=8,
            mamba_chunk_size=16,
            attn_layer_indices=[1],
        ),
        _f("lfm2", refusal="recurrent", layer_types=["conv", "full_attention"]),
        _f(
            "qwen3_next",
            refusal="recurrent",
            layer_types=["linear_attention", "full_attention"],
            linear_num_value_heads=4,
            linear_num_key_heads=2,
            linear_key_head_dim=16,
            linear_value_head_dim=16,
            **_MOE,
        ),
        _f(
            "recurrent_gemma",
            refusal="recurrent",
            lru_width=64,
            attention_window_size=_WINDOW,
            block_types=["recurrent", "attention"],
        ),
        _f(
            "falcon_h1",
            refusal="recurrent",
            mamba_d_ssm=64,
            mamba_n_heads=4,
            mamba_d_head=16,
            mamba_n_groups=1,
            mamba_d_state=8,
            mamba_chunk_size=16,
        ),
        _f("deepseek_v2", refusal="latent attention", **_MLA),
        _f("deepseek_v3", refusal="latent attention", **_MLA),
    ]
}


def family_config(family: Family | str, vocab_size: int):
    """The tiny transformers config of ``family``: the shared tiny sizes where the config has such
    a field, then the family's own overrides."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    family = FAMILIES[family] if isinstance(family, str) else family
    base = AutoConfig.for_model(family.model_type)
    fields = base.to_dict()
    values = {
        k: v
        for k, v in {**_BASE, "vocab_size": vocab_size}.items()
        if k in fields and not isinstance(getattr(type(base), k, None), property)
    }
    values.update(family.overrides)
    data = {**base.to_dict(), **values}
    for derived in ("layer_types", "layers_block_type", "attention_layers"):
        if derived not in family.overrides:
            data.pop(derived, None)  # derived from the (tiny) number of layers by the config itself
    cfg = type(base)(**data)
    cfg.architectures = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[family.model_type]]
    return cfg


def family_model(family: Family | str, seed: int = 0, unverified: bool = True):
    """A bridge over a tiny random ``family`` model (not self-checked unless ``unverified=False``)."""
    from .selfcheck import verify_model
    from .tiny import random_model, tiny_tokenizer

    family = FAMILIES[family] if isinstance(family, str) else family
    tok = tiny_tokenizer()
    cfg = family_config(family, len(tok))
    model = random_model(cfg, tok, name=f"tiny-{family.name}", seed=seed)
    if not unverified:
        verify_model(model)
    return model


@dataclass
class ArchitectureRow:
    family: str
    model_type: str
    verdict: str  # "exact" or "refused"
    reason: str
    expected: str
    seconds: float

    @property
    def as_expected(self) -> bool:
        return self.verdict == self.expected


def _first_line(text: str) -> str:
    """A refusal's reason, short enough for a table row."""
    text = " ".join(str(text).split())
    text = re.sub(r"^.*? cannot be analysed exactly by the workbench: ", "", text)
    if "Could not determine supported architecture" in text:
        return "TransformerLens 4 has no adapter for it: the bridge does not load it"
    text = re.sub(r"^TransformerLens cannot wrap \S+ \(\S+\): ", "TransformerLens' conversion fails: ", text)
    return text[:240]


def architecture_table(names: list[str] | None = None, progress: bool = True) -> list[ArchitectureRow]:
    """Build and self-check every family (or ``names``): exact, or refused with the reason."""
    from tqdm.auto import tqdm

    from .model import ModelLoadError
    from .selfcheck import self_check

    rows = []
    for name in tqdm(names or list(FAMILIES), desc="architectures", disable=not progress):
        fam = FAMILIES[name]
        start = time.perf_counter()
        try:
            model = family_model(fam)
            check = self_check(model, force=True)
            if check.passed:
                verdict, reason = (
                    "exact",
                    "self-check passed: " + ", ".join(f"{i.name} {i.value:.1g}" for i in check.items),
                )
            else:
                verdict = "refused"
                reason = "self-check failed: " + "; ".join(
                    f"{i.name} {i.value:.2g} > {i.limit:.1g}" + (f" ({i.what})" if "raised" in i.what else "")
                    for i in check.failures
                )
        except ModelLoadError as e:
            verdict, reason = "refused", str(e)
        except Exception as e:  # noqa: BLE001 - the table reports any failure to load
            verdict, reason = "refused", f"{type(e).__name__}: {e}"
        rows.append(
            ArchitectureRow(
                name, fam.model_type, verdict, _first_line(reason), fam.expect, time.perf_counter() - start
            )
        )
        torch.manual_seed(0)
    return rows


def format_table(rows: list[ArchitectureRow]) -> str:
    """The rows as a Markdown table."""
    lines = ["| family | model_type | verdict | why |", "|---|---|---|---|"]
    for r in rows:
        note = FAMILIES[r.family].note if r.family in FAMILIES else ""
        why = r.reason if r.verdict == "refused" else (note or "-")
        lines.append(f"| {r.family} | `{r.model_type}` | {r.verdict} | {why.replace('|', '/')} |")
    return "\n".join(lines)


def write_architecture_table(out: str | None = None, names: list[str] | None = None) -> int:
    """Print the table (and write it to ``out`` as Markdown, with the rows as JSON beside it);
    return 1 if any family is not as :data:`FAMILIES` expects (an exact one refused, or the reverse)."""
    import json
    from dataclasses import asdict
    from pathlib import Path

    from ..base.files import atomic_path, write_json

    rows = architecture_table(names)
    table = format_table(rows)
    n_exact = sum(r.verdict == "exact" for r in rows)
    summary = f"{n_exact} exact, {len(rows) - n_exact} refused, of {len(rows)} families"
    print(table + "\n\n" + summary)
    unexpected = [r.family for r in rows if not r.as_expected]
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(table + "\n\n" + summary + "\n")
        write_json(path.with_suffix(".json"), [asdict(r) for r in rows])
        print("wrote", path, path.with_suffix(".json"))
    if unexpected:
        print(
            "NOT AS EXPECTED:",
            ", ".join(unexpected),
            json.dumps([r.reason for r in rows if not r.as_expected]),
        )
        return 1
    return 0
