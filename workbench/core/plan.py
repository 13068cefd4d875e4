"""How much memory and work a run needs, before it runs: the planner behind ``workbench plan``.

A :class:`ModelShape` holds the numbers that decide memory (widths, heads, vocabulary, parameter
count); it comes from a loaded model, a Hugging Face config (a local ``config.json`` or folder,
or a name of :data:`KNOWN_CONFIGS`, a table of real models' shape fields, so that no download is
needed).  :func:`plan_run` walks the stages of :func:`~workbench.method.pipeline.run_task` and
gives, per stage, the peak memory (weights, key/value cache, the forward's largest layer, the
logits kept), the variant batch it would choose, and the token x layer work; :class:`RunPlan`
says whether the run fits and, if not, what to change.

**The memory model** (inference, eager attention, one forward's transient buffers freed layer by
layer).  For a forward of ``B`` rows of ``T`` query tokens against ``K`` keys, with element size
``s`` (2 in bfloat16, 4 in float32), the largest layer holds about

    B T (6 d_model + 2 (H + 2 H_kv) d_head + 3 d_mlp) s      residual, q/k/v (+ rotated), MLP
  + 2 B K H d_head s                                          keys and values expanded per head
  + B H T K (2 s + 8)                                         scores, mask added, float32 softmax

plus the 4-D mask (``T K s``), a key/value cache where one is kept (``2 L B K H_kv d_head s``), and
the logits kept (``R`` rows of ``d_vocab`` in the model's dtype, a float32 copy and its softmax).
:func:`variant_rows` inverts it: how many last-token variant rows fit in a memory budget (the
scan's heads per forward, and a sweep's prompts x layers per forward), the one rule the scan
(:func:`~workbench.core.scan.auto_variant_batch`) and the sweeps use.  ``bench/full_width.py``
checks the predicted peaks against measured ones on real-width models.

>>> plan = plan_run(known_shape("gptj-6b"), dtype="bfloat16", device="cuda", device_bytes=80 * 2**30)
>>> plan.fits, round(plan.weights_bytes / 2**30, 1)
(True, 11.3)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .model import layer_windows, model_info

__all__ = [
    "ModelShape",
    "StagePlan",
    "RunPlan",
    "PlanError",
    "KNOWN_CONFIGS",
    "known_shape",
    "shape_of",
    "forward_bytes",
    "variant_rows",
    "activation_budget",
    "device_memory",
    "plan_run",
    "plan_for_model",
    "parse_bytes",
    "plan_model",
    "shape_of_model",
    "shape_from_config",
]

GiB = 2**30


class PlanError(ValueError):
    """A run that will not fit in memory, or a planner input it cannot read; the message says what to do."""


# --- shapes ------------------------------------------------------------------------------------

# Real models' shape fields (as their config.json on the Hub has them), by a short name: enough
# for transformers to build the model on the meta device and count its parameters exactly.
KNOWN_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "gptj-6b": ("GPTJConfig", {}),  # transformers' defaults are GPT-J 6B's shape
    "gpt-neox-20b": ("GPTNeoXConfig", {}),  # likewise GPT-NeoX 20B's
    "llama-2-7b": (
        "LlamaConfig",
        dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
             num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096),
    ),
    "llama-2-13b": (
        "LlamaConfig",
        dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
             num_key_value_heads=40, vocab_size=32000, max_position_embeddings=4096),
    ),
    "llama-2-70b": (
        "LlamaConfig",
        dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
             num_key_value_heads=8, vocab_size=32000, max_position_embeddings=4096),
    ),
    "llama-3-8b": (
        "LlamaConfig",
        dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
             num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0),
    ),
    "llama-3-70b": (
        "LlamaConfig",
        dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
             num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0),
    ),
    "mistral-7b": (
        "MistralConfig",
        dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
             num_key_value_heads=8, vocab_size=32000, max_position_embeddings=32768, sliding_window=None),
    ),
    "gemma-2-9b": (
        "Gemma2Config",
        dict(hidden_size=3584, intermediate_size=14336, num_hidden_layers=42, num_attention_heads=16,
             num_key_value_heads=8, head_dim=256, vocab_size=256000, query_pre_attn_scalar=256,
             sliding_window=4096, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
             max_position_embeddings=8192),
    ),
    "qwen2.5-7b": (
        "Qwen2Config",
        dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
             num_key_value_heads=4, vocab_size=152064, max_position_embeddings=131072,
             rope_theta=1000000.0, tie_word_embeddings=False),
    ),
    "smollm2-135m": (
        "LlamaConfig",
        dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
             num_key_value_heads=3, vocab_size=49152, max_position_embeddings=8192, tie_word_embeddings=True),
    ),
    "gemma3-270m": (
        "Gemma3TextConfig",
        dict(hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
             num_key_value_heads=1, head_dim=256, vocab_size=262144, sliding_window=512,
             max_position_embeddings=32768, query_pre_attn_scalar=256),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a model that decide its memory and work."""

    name: str
    model_type: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_model: int
    d_mlp: int
    d_vocab: int
    n_params: int
    min_window: int | None = None  # the narrowest sliding window (None: global attention only)

    @property
    def n_total_heads(self) -> int:
        return self.n_layers * self.n_heads

    def weights_bytes(self, dtype: torch.dtype) -> int:
        return self.n_params * _itemsize(dtype)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _itemsize(dtype: torch.dtype | str) -> int:
    return torch.empty(0, dtype=_dtype(dtype)).element_size()


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype).replace("torch.", ""), None)
    if not isinstance(value, torch.dtype):
        raise PlanError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    return value


def _first(cfg, *names, default=None):
    for n in names:
        v = getattr(cfg, n, None)
        if v is not None:
            return v
    return default


def held_parameters(module) -> int:
    """Elements of every distinct storage behind ``module``'s parameters (shared weights counted once)."""
    storages = {p.untyped_storage().data_ptr(): p for p in module.parameters()}
    return sum(p.untyped_storage().nbytes() // p.element_size() for p in storages.values())


def shape_from_config(config, name: str) -> ModelShape:
    """A :class:`ModelShape` from a transformers config: its fields, and its parameters counted on
    the meta device (no memory used)."""
    from transformers import AutoModelForCausalLM

    cfg = getattr(config, "text_config", None) or config
    d_model = int(_first(cfg, "hidden_size", "n_embd", "d_model"))
    n_heads = int(_first(cfg, "num_attention_heads", "n_head"))
    n_kv = int(_first(cfg, "num_key_value_heads", default=n_heads) or n_heads)
    d_head = int(_first(cfg, "head_dim", default=d_model // n_heads) or d_model // n_heads)
    d_mlp = int(_first(cfg, "intermediate_size", "n_inner", "ffn_dim", default=4 * d_model) or 4 * d_model)
    kinds = getattr(cfg, "layer_types", None)
    window = getattr(cfg, "sliding_window", None)
    if isinstance(kinds, (list, tuple)) and "sliding_attention" not in kinds:
        window = None
    if getattr(cfg, "use_sliding_window", True) is False:
        window = None
    try:
        with torch.device("meta"):
            hf = AutoModelForCausalLM.from_config(config)
    except Exception as e:  # noqa: BLE001 - rethrown with the reason
        raise PlanError(f"transformers cannot build {name!r} from its config: {type(e).__name__}: {e}") from e
    n_params = sum(p.numel() for p in hf.parameters())  # tied weights counted once
    n_layers = int(_first(cfg, "num_hidden_layers", "n_layer"))
    return ModelShape(
        name=name,
        model_type=str(cfg.model_type),
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_kv,
        d_head=d_head,
        d_model=d_model,
        d_mlp=d_mlp,
        d_vocab=int(cfg.vocab_size),
        n_params=int(n_params),
        min_window=int(window) if isinstance(window, int) and window > 0 else None,
    )


def known_config(name: str):
    """The transformers config of a :data:`KNOWN_CONFIGS` name."""
    import transformers

    cls_name, fields = KNOWN_CONFIGS[name]
    return getattr(transformers, cls_name)(**fields)


def known_shape(name: str) -> ModelShape:
    """The shape of a model of :data:`KNOWN_CONFIGS` (e.g. ``"llama-2-70b"``)."""
    if name not in KNOWN_CONFIGS:
        raise PlanError(f"no known config {name!r}; known: {sorted(KNOWN_CONFIGS)}")
    return shape_from_config(known_config(name), name)


def shape_of(name_or_config: str | os.PathLike) -> ModelShape:
    """The shape of a known name, a built-in model, a tiny model, a folder or a ``config.json``."""
    from transformers import AutoConfig

    text = str(name_or_config)
    if text in KNOWN_CONFIGS:
        return known_shape(text)
    if text.startswith("tiny-"):
        from .tiny import TINY_CONFIGS, tiny_config, tiny_tokenizer

        if text[5:] not in TINY_CONFIGS:
            raise PlanError(f"unknown tiny model {text!r}; choose from {['tiny-' + a for a in TINY_CONFIGS]}")
        return shape_from_config(tiny_config(text[5:], vocab_size=len(tiny_tokenizer())), text)
    path = Path(text)
    if path.is_dir():
        path = path / "config.json"
    if path.name.endswith(".json") and path.is_file():
        try:
            data = json.loads(path.read_text())
            config = AutoConfig.for_model(**data)
        except (ValueError, KeyError, TypeError) as e:
            raise PlanError(f"{path} is not a transformers config.json: {e}") from None
        return shape_from_config(config, path.parent.name or text)
    raise PlanError(
        f"cannot plan {text!r}: not a known config ({', '.join(sorted(KNOWN_CONFIGS))}), a tiny model, "
        "a model folder or a config.json. Download the model's config.json and pass its path."
    )


def shape_of_model(model) -> ModelShape:
    """The shape of a loaded bridge (its parameters counted as loaded; computed once per model)."""
    cached = model.__dict__.get("_workbench_shape")
    if cached is not None:
        return cached
    info = model_info(model)
    hf = model.original_model
    cfg = getattr(hf.config, "text_config", None) or hf.config
    windows = [w for w in layer_windows(model) if w is not None]
    shape = ModelShape(
        name=info.name,
        model_type=str(cfg.model_type),
        n_layers=info.n_layers,
        n_heads=info.n_heads,
        n_kv_heads=info.n_kv_heads,
        d_head=info.d_head,
        d_model=info.d_model,
        d_mlp=int(getattr(model.cfg, "d_mlp", None) or 4 * info.d_model),
        d_vocab=info.d_vocab,
        n_params=held_parameters(hf),
        min_window=min(windows) if windows else None,
    )
    model.__dict__["_workbench_shape"] = shape
    return shape


# --- the memory model ----------------------------------------------------------------------------


def forward_bytes(
    shape: ModelShape,
    itemsize: int,
    batch: int,
    tokens: int,
    keys: int | None = None,
    logit_rows: int = 1,
    cache_keys: int = 0,
) -> int:
    """Transient bytes of one forward (module docstring): ``batch`` rows of ``tokens`` queries
    against ``keys`` keys (default ``tokens``), ``logit_rows`` logits per row kept, and a key/value
    cache of ``cache_keys`` tokens per row held across the layers.

    >>> s = known_shape("smollm2-135m")
    >>> forward_bytes(s, 4, 1, 100) < forward_bytes(s, 4, 2, 100) < forward_bytes(s, 4, 1, 300)
    True
    """
    K = tokens if keys is None else keys
    B, T, s = batch, tokens, itemsize
    H, Hkv, dh = shape.n_heads, shape.n_kv_heads, shape.d_head
    layer = B * T * (6 * shape.d_model + 2 * (H + 2 * Hkv) * dh + 3 * shape.d_mlp) * s
    layer += 2 * B * K * H * dh * s
    layer += B * H * T * K * (2 * s + 8)
    mask = T * K * s
    cache = 2 * shape.n_layers * B * cache_keys * Hkv * dh * s
    logits = B * logit_rows * shape.d_vocab * (s + 8)
    return int(layer + mask + cache + logits)


def scan_forward_bytes(shape: ModelShape, itemsize: int, tokens: int, variants: int, skip: bool) -> int:
    """Transient bytes of one scan forward of a ``tokens``-long prompt with ``variants`` heads:
    the layer-skip pass (the prompt with a cache, then the variant rows against it) or one forward
    of prompt + variants (:mod:`workbench.core.scan`)."""
    if skip:
        prompt = forward_bytes(shape, itemsize, 1, tokens, cache_keys=tokens)
        rows = variants + 1
        rows_pass = forward_bytes(shape, itemsize, 1, rows, tokens - 1 + rows, rows, cache_keys=tokens + rows)
        return max(prompt, rows_pass)
    n = tokens + variants
    return forward_bytes(shape, itemsize, 1, n, n, variants + 1)


def variant_rows(shape: ModelShape, itemsize: int, tokens: int, budget_bytes: int, cap: int) -> int:
    """The most last-token variant rows (at most ``cap``, at least 1) whose forward beside a
    ``tokens``-long prompt fits in ``budget_bytes``: the one rule for heads per scan forward and
    prompts x interventions per sweep forward.

    >>> s = known_shape("smollm2-135m")
    >>> variant_rows(s, 4, 100, 2**40, 270), variant_rows(s, 4, 100, 0, 270)
    (270, 1)
    """
    lo, hi = 1, max(1, cap)
    if scan_forward_bytes(shape, itemsize, tokens, hi, skip=False) <= budget_bytes:
        return hi
    while lo < hi:  # the largest v in [lo, hi) that fits (the cost grows with v)
        mid = (lo + hi + 1) // 2
        if scan_forward_bytes(shape, itemsize, tokens, mid, skip=False) <= budget_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo


def device_memory(device: str | torch.device = "cpu") -> tuple[int, int]:
    """``(total, free)`` bytes of ``device`` now (a CUDA GPU's, or this machine's RAM)."""
    device = torch.device(device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return int(total), int(free)
    total = free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
            elif line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    if total is None or free is None:
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            total = total or os.sysconf("SC_PHYS_PAGES") * page
            free = free or os.sysconf("SC_AVPHYS_PAGES") * page
        except (ValueError, OSError, AttributeError):
            total, free = 16 * GiB, 4 * GiB
    return int(total), int(free)


def activation_budget(free_bytes: int, device_type: str) -> int:
    """The share of free memory the variants of one forward may take: half a GPU's free memory;
    a quarter of the free RAM, at most 4 GiB, on a CPU (which other programs share)."""
    if device_type == "cuda":
        return int(free_bytes * 0.5)
    return int(min(free_bytes * 0.25, 4 * GiB))


def parse_bytes(text: str) -> int:
    """``"80GiB"``, ``"80G"``, ``"24 GB"``, ``"512MiB"`` or a plain number of bytes.

    >>> parse_bytes("80GiB") == 80 * 2**30, parse_bytes("1.5 GB")
    (True, 1500000000)
    """
    t = str(text).strip().replace(" ", "")
    units = {"gib": GiB, "g": GiB, "gb": 10**9, "mib": 2**20, "m": 2**20, "mb": 10**6, "tib": 2**40}
    units.update({"tb": 10**12, "kib": 1024, "kb": 1000, "b": 1, "": 1})
    for unit in sorted(units, key=len, reverse=True):
        if t.lower().endswith(unit):
            number = t[: len(t) - len(unit)] if unit else t
            try:
                return int(float(number) * units[unit])
            except ValueError:
                break
    raise PlanError(f"cannot read a memory size from {text!r}; write e.g. 80GiB, 24GB or 512MiB")


# --- the plan of a run ---------------------------------------------------------------------------


@dataclass
class StagePlan:
    """One stage of a run: its peak memory (bytes, weights included) and its parts, the variant
    batch it would use, and its token x layer work."""

    name: str
    peak_bytes: int
    parts: dict[str, int]
    variant_batch: int | None
    token_layers: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunPlan:
    """The plan of one ``workbench run``: per stage, peak memory, variant batch and work.

    ``fits`` is False when a stage's peak exceeds the device's memory (per GPU with a device map);
    ``problems`` then says what to change, ``warnings`` what is close.
    """

    shape: ModelShape
    dtype: str
    device: str
    device_bytes: int
    n_devices: int
    weights_bytes: int  # per device
    prompt_tokens: int
    stages: list[StagePlan]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not self.problems

    @property
    def peak_bytes(self) -> int:
        return max(s.peak_bytes for s in self.stages)

    def stage(self, name: str) -> StagePlan:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage {name!r}; the stages are {[s.name for s in self.stages]}")

    def __repr__(self) -> str:
        where = f"{self.device} x {self.n_devices}" if self.n_devices > 1 else self.device
        lines = [
            f"RunPlan({self.shape.name}: {self.shape.n_layers} layers x {self.shape.n_heads} heads, "
            f"{self.shape.n_params / 1e9:.2f} B parameters, {self.dtype}, on {where} with "
            f"{self.device_bytes / GiB:.1f} GiB{' each' if self.n_devices > 1 else ''}; "
            f"prompts of about {self.prompt_tokens} tokens)",
            f"  {'stage':<20} {'peak GiB':>9} {'variants':>9} {'token x layer':>14}  parts (GiB)",
        ]
        for s in self.stages:
            parts = ", ".join(f"{k} {v / GiB:.2f}" for k, v in s.parts.items() if v)
            vb = "-" if s.variant_batch is None else str(s.variant_batch)
            lines.append(
                f"  {s.name:<20} {s.peak_bytes / GiB:9.2f} {vb:>9} {s.token_layers:14,d}  {parts}"
                + (f"  ({s.note})" if s.note else "")
            )
        verdict = "fits" if self.fits else "DOES NOT FIT"
        cap = self.device_bytes / GiB
        lines.append(f"  peak {self.peak_bytes / GiB:.2f} GiB of {cap:.1f} GiB: {verdict}")
        lines += [f"  problem: {p}" for p in self.problems] + [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape.to_dict(),
            "dtype": self.dtype,
            "device": self.device,
            "device_bytes": self.device_bytes,
            "n_devices": self.n_devices,
            "weights_bytes": self.weights_bytes,
            "prompt_tokens": self.prompt_tokens,
            "peak_bytes": self.peak_bytes,
            "fits": self.fits,
            "stages": [s.to_dict() for s in self.stages],
            "problems": self.problems,
            "warnings": self.warnings,
        }

    def check(self) -> RunPlan:
        """Raise :class:`PlanError` (with what to change) if the run will not fit; else return self."""
        if not self.fits:
            raise PlanError(f"{self.shape.name} in {self.dtype} will not fit: " + "; ".join(self.problems))
        return self


def _skip_path(shape: ModelShape, tokens: int, n_devices: int) -> bool:
    from .layer_skip import SKIP_FAMILIES

    window_ok = shape.min_window is None or tokens < shape.min_window
    return shape.model_type in SKIP_FAMILIES and window_ok and n_devices == 1


def plan_run(
    shape: ModelShape,
    dtype: torch.dtype | str = "float32",
    device: str = "cpu",
    device_bytes: int | None = None,
    free_bytes: int | None = None,
    n_devices: int = 1,
    prompt_tokens: int | None = None,
    zero_shot_tokens: int = 6,
    n_shot: int = 10,
    n_mean_prompts: int = 100,
    n_scan_prompts: int = 25,
    n_valid: int = 22,
    n_test: int = 50,
    sweep_layers: bool = False,
    variant_batch: int | None = None,
    resident_bytes: int = 0,
) -> RunPlan:
    """The plan of one run of the protocol (defaults: the paper's counts; the valid / test sizes of
    the antonym task).

    Args:
        device_bytes: memory per device (default: the device's total); ``free_bytes``: what is free
            for the activations' budget (default: ``device_bytes`` less the weights).
        n_devices: GPUs a ``device_map`` spreads the weights over (the layers split evenly).
        prompt_tokens: tokens of an ``n_shot`` prompt (default ``9 (n_shot + 1) + 1``, about what
            the built-in tasks' prompts take on BPE tokenizers).
        variant_batch: the user's ``--variant-batch`` (default: chosen by the budget rule).
        resident_bytes: memory already held besides the weights (counted against ``device_bytes``).
    """
    dt = _dtype(dtype)
    s = _itemsize(dt)
    dev_type = torch.device(device).type
    if device_bytes is None:
        device_bytes = device_memory(device)[0]
    T = prompt_tokens or 9 * (n_shot + 1) + 1
    L, H = shape.n_layers, shape.n_heads
    weights = -(-shape.weights_bytes(dt) // max(1, n_devices))
    base = weights + resident_bytes
    if free_bytes is None:
        free_bytes = max(0, device_bytes - base)
    budget = activation_budget(free_bytes, dev_type)

    def rows_for(tokens: int, cap: int) -> int:
        return variant_batch or variant_rows(shape, s, tokens, budget, cap)

    stages = [StagePlan("weights", weights, {"weights": weights}, None, 0)]

    def add(name, fwd, vb, work, note="", extra=None):
        parts = {"weights": weights, "forward": fwd, **(extra or {})}
        stages.append(StagePlan(name, base + sum(v for k, v in parts.items() if k != "weights"), parts,
                                vb, int(work), note))  # fmt: skip

    # filter: clean ICL prompts of every valid query, 16 per forward, last-position logits
    b = min(16, n_valid)
    add("filter", forward_bytes(shape, s, b, T), None, n_valid * T * L,
        extra={"logits kept": n_valid * shape.d_vocab * 4})  # fmt: skip
    # means: 8 clean prompts per forward; running sums of every head's z and residual share
    sums = 4 * L * (H * (shape.d_head + shape.d_model) + shape.d_model)
    add("means", forward_bytes(shape, s, 8, T), None, n_mean_prompts * T * L,
        extra={"sums": sums, "logits kept": n_mean_prompts * shape.d_vocab * 4})  # fmt: skip
    # scan: one prompt at a time; all heads as variants if they fit (then the layer skip), else chunks
    v = rows_for(T, shape.n_total_heads)
    skip = v >= shape.n_total_heads and _skip_path(shape, T, n_devices) and not variant_batch
    if skip:
        work = n_scan_prompts * (T * L + H * sum(L - l for l in range(L)) + L)
        note = "layer skip: each head's row from its own layer"
    else:
        chunks = -(-shape.n_total_heads // v)
        work = n_scan_prompts * chunks * (T + v) * L
        note = f"{chunks} forward(s) of prompt + variants per prompt"
    add("scan", scan_forward_bytes(shape, s, T, min(v, shape.n_total_heads), skip), v, work, note)
    # valid layer sweep: every layer's FV as a variant of each prompt (zero-shot and shuffled)
    rows = rows_for(T, shape.n_total_heads)  # variants.variant_scores: prompts x layers <= rows
    per_fwd = max(1, min(16, rows // L)) if not variant_batch else 16
    v_sweep = L if not variant_batch else min(L, variant_batch)
    fwd = forward_bytes(shape, s, per_fwd, T + v_sweep, T + v_sweep, v_sweep + 1)
    work = n_valid * (T + zero_shot_tokens) * L + 2 * n_valid * sum(L - 1 - l for l in range(L))
    add("layer sweep (valid)", fwd, per_fwd * v_sweep, work, f"{per_fwd} prompt(s) x {v_sweep} layers")
    # evaluation: clean, zero-shot (3 interventions) and shuffled (1) test prompts; donors to layer L
    fwd = max(forward_bytes(shape, s, 16, T + 1, T + 1, 2), forward_bytes(shape, s, 16, 9, 9, 4))
    work = n_test * (3 * T + zero_shot_tokens) * L + 4 * n_test * L // 2
    add("evaluation", fwd, 3, work)
    if sweep_layers:
        add("layer sweep (test)", stages[-2].parts["forward"], stages[-2].variant_batch,
            n_test * (T + zero_shot_tokens) * L + 2 * n_test * sum(L - 1 - l for l in range(L)))  # fmt: skip

    name = str(dt).replace("torch.", "")
    plan = RunPlan(shape, name, device, int(device_bytes), n_devices, weights, T, stages)
    replan = None
    if variant_batch:
        args = dict(dtype=dt, device=device, device_bytes=device_bytes, free_bytes=free_bytes,
                    n_devices=n_devices, prompt_tokens=T, zero_shot_tokens=zero_shot_tokens, n_shot=n_shot,
                    n_mean_prompts=n_mean_prompts, n_scan_prompts=n_scan_prompts, n_valid=n_valid,
                    n_test=n_test, sweep_layers=sweep_layers, resident_bytes=resident_bytes)  # fmt: skip
        replan = lambda vb: plan_run(shape, variant_batch=vb, **args)
    _judge(plan, variant_batch, dt, replan)
    return plan


def _judge(plan: RunPlan, variant_batch: int | None, dtype: torch.dtype, replan=None) -> None:
    """Fill ``problems`` and ``warnings``, each saying what to change (``replan(vb)``: the same plan
    with another variant batch, to find the largest that fits)."""
    cap = plan.device_bytes
    if plan.weights_bytes > cap:
        fixes = []
        if dtype == torch.float32:
            fixes.append(f"--dtype bfloat16 (weights {plan.weights_bytes / 2 / GiB:.1f} GiB)")
        need = -(-plan.weights_bytes * plan.n_devices // int(cap * 0.8))
        fixes.append(f"--device-map auto over at least {need} such GPUs")
        plan.problems.append(
            f"the weights alone take {plan.weights_bytes / GiB:.1f} GiB of the {cap / GiB:.1f} GiB per "
            "device; "
            f"use {' or '.join(fixes)}"
        )
        return
    over = [s for s in plan.stages if s.peak_bytes > cap]
    if over:
        advice = (
            "use --dtype bfloat16, or " if dtype == torch.float32 else "use "
        ) + "--device-map auto over more GPUs"
        if variant_batch and replan is not None:
            lo, hi = 0, variant_batch - 1  # the largest batch that fits (the peak grows with it)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if replan(mid).peak_bytes <= cap else (lo, mid - 1)
            advice = f"use --variant-batch {lo}" if lo else advice
            advice += f" (now {variant_batch}), or leave it out to have it chosen"
        names = ", ".join(f"{s.name} {s.peak_bytes / GiB:.2f} GiB" for s in over)
        plan.problems.append(f"stages need more than the {cap / GiB:.1f} GiB: {names}; {advice}")
    elif plan.peak_bytes > 0.95 * cap:
        room = "a lower --variant-batch" + (" or --dtype bfloat16" if dtype == torch.float32 else "")
        plan.warnings.append(
            f"the peak, {plan.peak_bytes / GiB:.2f} GiB, is over 95 % of {cap / GiB:.1f} GiB: other "
            f"programs on the device may push it over; {room} leaves room"
        )


def plan_for_model(model, protocol=None, task=None, variant_batch: int | None = None) -> RunPlan:
    """The plan of :func:`~workbench.method.pipeline.run_task` for a LOADED model, against the memory
    free now (the weights already resident): what the run checks before its first stage."""
    from .model import input_device, model_dtype

    shape = shape_of_model(model)
    device = input_device(model)
    total, free = device_memory(device)
    p = protocol
    kw: dict[str, Any] = {}
    if p is not None:
        kw = dict(n_shot=p.n_shot, n_mean_prompts=p.n_mean_prompts, n_scan_prompts=p.n_scan_prompts,
                  sweep_layers=p.sweep_layers)  # fmt: skip
    if task is not None:
        kw.update(_split_counts(task))
        kw["prompt_tokens"] = _prompt_tokens(model, task, kw.get("n_shot", 10))
    hf = model.original_model
    n_dev = len({p.device for p in hf.parameters() if p.device.type != "meta"})
    weights = shape.weights_bytes(model_dtype(model))
    # the weights are resident: the device's capacity is what is free now plus them
    return plan_run(
        shape,
        model_dtype(model),
        str(device),
        device_bytes=free + weights // max(1, n_dev),
        free_bytes=free,
        n_devices=n_dev,
        variant_batch=variant_batch,
        **kw,
    )


def _prompt_tokens(model, task, n_shot: int) -> int:
    """The longest of a few ``n_shot`` prompts of ``task``, in the model's tokens."""
    from ..data.prompts import encode_prompts, sample_prompts

    try:
        prompts = sample_prompts(task.split(seed=0), 8, n_shot, "icl", "valid", seed=0)
        encoded, _ = encode_prompts(model.tokenizer, prompts, model_info(model).bos_id)
    except Exception:  # noqa: BLE001 - a task the sampler refuses is refused by the run itself, later
        encoded = []
    return max((len(e.ids) for e in encoded), default=9 * (n_shot + 1) + 1)


def plan_model(
    name_or_config: str,
    dtype: str = "float32",
    device: str = "cpu",
    memory: int | None = None,
    device_map: str | None = None,
    n_devices: int | None = None,
    protocol=None,
    task=None,
    variant_batch: int | None = None,
    prompt_tokens: int | None = None,
) -> RunPlan:
    """``workbench plan``: the plan of a run of ``name_or_config`` (:func:`shape_of`) before loading it.

    ``memory``: bytes per device (default: the GPU's total, or this machine's RAM on ``cpu``);
    ``device_map``: the weights spread over ``n_devices`` GPUs (default: those visible, else 1);
    ``protocol`` / ``task``: the run's counts (default: the paper's protocol, antonym's split sizes).
    """
    shape = shape_of(name_or_config)
    kind = torch.device(device).type
    if memory is None:
        if kind == "cuda" and not torch.cuda.is_available():
            raise PlanError("no CUDA GPU is visible here: give its memory with --gpu-memory (e.g. 80GiB)")
        memory = device_memory(device)[0]
    if device_map is not None:
        n_devices = n_devices or (torch.cuda.device_count() if kind == "cuda" else 0) or 1
    else:
        n_devices = 1
    kw: dict[str, Any] = {}
    if protocol is not None:
        kw = dict(n_shot=protocol.n_shot, n_mean_prompts=protocol.n_mean_prompts,
                  n_scan_prompts=protocol.n_scan_prompts, sweep_layers=protocol.sweep_layers)  # fmt: skip
    if task is not None:
        kw.update(_split_counts(task))
    return plan_run(
        shape, dtype, device, device_bytes=memory, n_devices=n_devices, variant_batch=variant_batch,
        prompt_tokens=prompt_tokens, **kw,
    )  # fmt: skip


def _split_counts(task) -> dict[str, int]:
    split = task.split(seed=0)
    return {"n_valid": len(split.valid), "n_test": len(split.test)}
