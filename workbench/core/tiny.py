"""Random-weight models built from a local config: no download, no network.

Tests, the teaching exercises and the benchmarks use them.  The tiny ones run in milliseconds;
the same builder takes a real model's config (e.g. ``GPTJConfig()``) to time the method at a
real size, since speed does not depend on the weight values.

The tokenizer is byte-level with one merge per ``space + letter/digit``, so the first token of
``" cold"`` is ``" c"``, never a bare space: answers are always scorable.

>>> model = tiny_model("llama")
>>> model_info(model).n_layers, model_info(model).n_heads
(2, 4)
"""

from __future__ import annotations

import string

import torch

from .model import bridge_from_hf, model_info
from .selfcheck import verify_model

__all__ = ["tiny_tokenizer", "tiny_config", "tiny_model", "random_model", "TINY_CONFIGS", "TINY_SIZES"]

_SPECIALS = ["<|bos|>", "<|eos|>", "<|pad|>"]


def tiny_tokenizer():
    """A byte-level BPE tokenizer (256 bytes + space-letter merges), built in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = pre_tokenizers.ByteLevel.alphabet()
    vocab = {tok: i for i, tok in enumerate(_SPECIALS)}
    for ch in sorted(byte_chars):
        vocab.setdefault(ch, len(vocab))
    space = "\u0120"  # byte-level's printable stand-in for " "
    merges = []
    for ch in string.ascii_letters + string.digits:
        merges.append((space, ch))
        vocab[space + ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|bos|>",
        eos_token="<|eos|>",
        pad_token="<|pad|>",
        name_or_path="workbench-tiny-bytes",
        add_bos_token=True,  # TransformerLens asks for both
    )


# The sizes of every tiny model (names as most transformers configs spell them); the architecture
# matrix (workbench.core.support) builds its families from the same numbers.
TINY_SIZES = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=512,
    bos_token_id=0,
    eos_token_id=1,
    pad_token_id=2,
)


def tiny_config(arch: str, vocab_size: int, **overrides):
    """The transformers config of a tiny ``arch`` model (one of :data:`TINY_CONFIGS`), with
    :data:`TINY_SIZES` and ``overrides`` set on it.

    >>> cfg = tiny_config("llama", vocab_size=300, num_hidden_layers=3)
    >>> (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size)
    ('llama', 3, 64, 300)
    """
    from transformers import Gemma3TextConfig, GPT2Config, LlamaConfig

    if arch == "llama":  # SmolLM2's family: GQA, RoPE, RMSNorm, no biases
        cfg = LlamaConfig(vocab_size=vocab_size, tie_word_embeddings=True, **TINY_SIZES)
        cfg.architectures = ["LlamaForCausalLM"]
    elif arch == "gemma3":  # post-attention norm between heads and the residual; d_head != d_model/n_heads
        cfg = Gemma3TextConfig(
            vocab_size=vocab_size,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=32,
            max_position_embeddings=512,
            query_pre_attn_scalar=32,
            sliding_window=512,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=2,
        )
        cfg.architectures = ["Gemma3ForCausalLM"]
    elif arch == "gpt2":  # learned positions, LayerNorm, biases everywhere
        cfg = GPT2Config(
            vocab_size=vocab_size,
            n_embd=64,
            n_layer=2,
            n_head=4,
            n_positions=512,
            bos_token_id=0,
            eos_token_id=1,
        )
        cfg.architectures = ["GPT2LMHeadModel"]
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose from {list(TINY_CONFIGS)}")
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


TINY_CONFIGS = ("llama", "gemma3", "gpt2")


def random_model(config, tokenizer=None, name: str | None = None, seed: int = 0, dtype=torch.float32):
    """A bridge over ``AutoModelForCausalLM.from_config(config)`` with seeded random weights."""
    from transformers import AutoModelForCausalLM

    tokenizer = tokenizer or tiny_tokenizer()
    torch.manual_seed(seed)
    config._attn_implementation = "eager"
    hf = AutoModelForCausalLM.from_config(config).to(dtype)
    name = name or f"random-{config.model_type}"
    bridge = bridge_from_hf(hf, tokenizer, name)
    model_info(bridge)
    return bridge


def tiny_model(
    arch: str = "llama",
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    unverified: bool = False,
    **config_overrides,
):
    """A 2-layer, 4-head random model of the given family, with :func:`tiny_tokenizer`, self-checked
    (:func:`workbench.core.selfcheck.verify_model`; a fraction of a second, cached)."""
    tok = tiny_tokenizer()
    cfg = tiny_config(arch, vocab_size=len(tok), **config_overrides)
    model = random_model(cfg, tok, name=f"tiny-{arch}", seed=seed, dtype=dtype)
    verify_model(model, unverified=unverified)
    return model
