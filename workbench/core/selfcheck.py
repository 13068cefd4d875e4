"""A model proves itself before it is used: the self-check, run once per model, cached by weights.

Every number the workbench publishes rests on four facts about the loaded model, checked here on
seeded probe prompts against transformers itself (:mod:`workbench.core.plain`: an untouched
transformers model sharing the weights, plain ``torch`` hooks on its real modules):

==============  ================================================================================
``logits``      the bridge's logits equal transformers' (relative to the largest logit)
``head_map``    per layer, the heads' mapped outputs (:func:`~workbench.core.heads.head_to_residual`
                plus the output bias's share) sum to what the attention block adds to the
                residual stream (``layer_out - layer_in`` with the MLPs zeroed), relative error
``hooks``       every hook site the workbench uses fires in every layer (count of silent ones)
``injection``   a vector added after layer L at the last position (:func:`add_vector`) changes
                the logits exactly as adding it to transformers' decoder-layer output does
``scan``        the fast scan (:func:`scan_heads`) equals one-head-at-a-time patching of
                transformers' output-projection input, for a few heads, on a prompt longer
                than any sliding window (error relative to the answer's probability)
==============  ================================================================================

:func:`verify_model` runs it (or reads it from the cache, keyed by
:func:`~workbench.core.model.model_id` and the package versions) and refuses a model that fails
with :class:`ModelCheckFailed`, unless ``unverified=True``; :func:`check_record` is what
``result.json`` and a saved vector's provenance record.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..base.files import atomic_path, default_cache_dir
from ..data.prompts import EncodedPrompt
from . import plain
from .heads import bias_to_residual, head_to_residual
from .hooks import add_vector
from .model import HOOK_SITES, ModelLoadError, hook_name, input_device, model_id, model_info, require_model
from .scan import layer_windows, scan_heads

__all__ = ["CheckItem", "SelfCheck", "ModelCheckFailed", "self_check", "verify_model", "check_record"]

CHECK_VERSION = 1  # bump when a check changes: cached results of older checks are not reused
_MIN_PROBE = 24  # tokens of the short probe prompt
_MAX_PROBE = 4200  # longest scan prompt (a window longer than this is not exercised)


class ModelCheckFailed(ModelLoadError):
    """The model failed its self-check: the workbench's numbers on it would be wrong."""


@dataclass
class CheckItem:
    """One check: its measured ``value`` must be at most ``limit`` (``what`` says what was measured)."""

    name: str
    value: float
    limit: float
    what: str
    passed: bool

    def line(self) -> str:
        mark = "ok  " if self.passed else "FAIL"
        return f"{mark} {self.name:<10} {self.value:.3g} (limit {self.limit:.3g}): {self.what}"


@dataclass
class SelfCheck:
    """The outcome of a model's self-check (see the module docstring)."""

    model: str
    model_id: str
    items: list[CheckItem]
    seconds: float
    probe_tokens: int
    versions: dict[str, str] = field(default_factory=dict)
    unverified: bool = False  # a failed check the user chose to go on with

    @property
    def passed(self) -> bool:
        return all(i.passed for i in self.items)

    @property
    def status(self) -> str:
        """``"passed"``, ``"failed"`` or ``"failed-unverified"`` (used anyway, at the user's risk)."""
        return "passed" if self.passed else ("failed-unverified" if self.unverified else "failed")

    @property
    def failures(self) -> list[CheckItem]:
        return [i for i in self.items if not i.passed]

    def __repr__(self) -> str:
        lines = "\n  ".join(i.line() for i in self.items)
        return (
            f"SelfCheck({self.model} [{self.model_id}]: {self.status.upper()} in {self.seconds:.1f} s, "
            f"scan prompt {self.probe_tokens} tokens)\n  {lines}"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status, "check_version": CHECK_VERSION}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SelfCheck:
        items = [CheckItem(**i) for i in d["items"]]
        keep = {k: d[k] for k in ("model", "model_id", "seconds", "probe_tokens", "versions", "unverified")}
        return cls(items=items, **keep)

    def message(self) -> str:
        """The refusal: which checks failed, by how much, and what to do."""
        failed = "\n  ".join(i.line() for i in self.failures)
        return (
            f"{self.model} failed the workbench's self-check (numbers on it would be silently wrong):\n"
            f"  {failed}\n"
            "What to do: use a model family `workbench architectures` lists as exact; load it in float32; "
            "or, at your own risk, pass --unverified (CLI) / unverified=True (load_model, verify_model, "
            "run_task): every result then records that the check failed."
        )


def check_record(model) -> dict[str, Any] | None:
    """The check's outcome as ``result.json`` and vector provenance record it (None: never checked)."""
    require_model(model)
    check = model.__dict__.get("_workbench_selfcheck")
    if check is None:
        return None
    return {
        "status": check.status,
        "check_version": CHECK_VERSION,
        "checks": {i.name: {"value": i.value, "limit": i.limit, "passed": i.passed} for i in check.items},
    }


def verify_model(model, unverified: bool = False, force: bool = False, progress: bool = False) -> SelfCheck:
    """Self-check ``model`` once (cached on it and on disk); raise :class:`ModelCheckFailed` if it
    fails, unless ``unverified`` (or the model was already accepted unverified)."""
    require_model(model)
    check = model.__dict__.get("_workbench_selfcheck")
    if check is None or force:
        check = self_check(model, force=force, progress=progress)
    if not check.passed:
        if not (unverified or check.unverified):
            raise ModelCheckFailed(check.message())
        check.unverified = True
    model.__dict__["_workbench_selfcheck"] = check
    return check


def _cache_path(model):
    versions = _versions()
    key = hashlib.sha256(json.dumps([CHECK_VERSION, versions], sort_keys=True).encode()).hexdigest()[:8]
    return default_cache_dir() / "selfcheck" / f"{model_id(model)}-v{CHECK_VERSION}-{key}.json"


def _versions() -> dict[str, str]:
    import transformer_lens
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "transformer_lens": getattr(transformer_lens, "__version__", "?"),
    }


def self_check(model, force: bool = False, progress: bool = False) -> SelfCheck:
    """Run the checks (or read their cached result): never raises for a failing check."""
    path = _cache_path(model)
    if path.exists() and not force:
        try:
            return SelfCheck.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry: check again
    check = _run_checks(model)
    if not any(i.what.startswith("raised ") for i in check.items):  # a crash may be passing: not kept
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(check.to_json(), indent=1))
    return check


# --- the checks ----------------------------------------------------------------------------------


def _tolerance(model) -> float:
    """Relative tolerance: float32 rounding, or half-precision rounding."""
    return 1e-4 if model_info(model).dtype == "float32" else 3e-2


def _probe_ids(model, n: int, seed: int) -> torch.Tensor:
    info = model_info(model)
    gen = torch.Generator().manual_seed(seed)
    low = min(8, info.d_vocab - 1)
    ids = torch.randint(low, info.d_vocab, (n,), generator=gen)
    if info.bos_id is not None:
        ids[0] = info.bos_id
    return ids[None].to(input_device(model))


def _scan_length(model) -> int:
    windows = [w for w in layer_windows(model) if w is not None]
    return min(_MAX_PROBE, max([_MIN_PROBE, *[w + 8 for w in windows]]))


def _guard(name: str, limit: float, fn) -> CheckItem:
    """Run one check; an exception is a failure that names it."""
    try:
        value, what = fn()
        value = float(value)
        ok = value <= limit and value == value  # NaN fails
        return CheckItem(name, value, limit, what, bool(ok))
    except Exception as e:  # noqa: BLE001 - a crash is a failed check, reported with its reason
        return CheckItem(name, float("inf"), limit, f"raised {type(e).__name__}: {str(e)[:300]}", False)


def _run_checks(model) -> SelfCheck:
    start = time.perf_counter()
    info = model_info(model)
    tol = _tolerance(model)
    ids = _probe_ids(model, _MIN_PROBE, seed=0)
    n_scan = _scan_length(model)
    items = [
        _guard("logits", tol, lambda: _check_logits(model, ids)),
        _guard("head_map", 10 * tol, lambda: _check_head_map(model, ids)),
        _guard("hooks", 0, lambda: _check_hooks(model, ids)),
        _guard("injection", tol, lambda: _check_injection(model, ids)),
        _guard("scan", 10 * tol, lambda: _check_scan(model, n_scan)),
    ]
    return SelfCheck(
        model=info.name,
        model_id=model_id(model),
        items=items,
        seconds=round(time.perf_counter() - start, 2),
        probe_tokens=n_scan,
        versions=_versions(),
    )


@torch.inference_mode()
def _check_logits(model, ids):
    ours = model(ids).float()
    ref = plain.plain_logits(model, ids).float()
    err = (ours - ref).abs().max() / ref.abs().max().clamp_min(1e-12)
    return err, "max |bridge - transformers| logit / max |logit|"


@torch.inference_mode()
def _check_head_map(model, ids):
    info = model_info(model)
    ref = plain.plain_attn_contributions(model, ids)  # [layer, pos, d_model]
    z_of: dict[int, torch.Tensor] = {}
    mapped: dict[int, torch.Tensor] = {}

    def grab_z(z, hook):
        z_of[hook.layer()] = z[0].clone()

    def grab_out(out, hook):
        layer = hook.layer()
        heads = head_to_residual(model, layer, z_of.pop(layer), out[0]).float().sum(-2)
        mapped[layer] = heads + bias_to_residual(model, layer, out[0]).to(heads.device)

    def zero(module, args, out):
        return plain._with_tensor(out, torch.zeros_like(plain._out_tensor(out)))

    handles = [plain.mlp_write(b).register_forward_hook(zero) for b in model.blocks]
    try:
        hooks = []
        for layer in range(info.n_layers):
            hooks += [(hook_name("z", layer), grab_z), (hook_name("attn_out", layer), grab_out)]
        model.run_with_hooks(ids, fwd_hooks=hooks)
    finally:
        for h in handles:
            h.remove()
    errs = [
        float((mapped[l].cpu() - ref[l].cpu()).norm() / ref[l].norm().clamp_min(1e-12))
        for l in range(info.n_layers)
    ]
    worst = max(range(len(errs)), key=errs.__getitem__)
    return errs[worst], f"|sum of heads' map - attention's residual write| / |write|, worst layer {worst}"


@torch.inference_mode()
def _check_hooks(model, ids):
    info = model_info(model)
    fired: set[str] = set()
    names = [hook_name(site, layer) for site in HOOK_SITES for layer in range(info.n_layers)]

    def seen(name):
        return lambda act, hook: fired.add(name)

    model.run_with_hooks(ids, fwd_hooks=[(n, seen(n)) for n in names])
    silent = [n for n in names if n not in fired]
    what = "hook points that never fired" + (f": {silent[:4]}" if silent else "")
    return len(silent), what


@torch.inference_mode()
def _check_injection(model, ids):
    info = model_info(model)
    clean = plain.plain_logits(model, ids).float()
    gen = torch.Generator().manual_seed(1)
    worst, smallest_change = 0.0, float("inf")
    layers = sorted({0, info.n_layers // 2, info.n_layers - 1})
    resid: dict[int, torch.Tensor] = {}

    def grab(act, hook):
        resid[hook.layer()] = act[0, -1].float().norm().cpu()

    model.run_with_hooks(ids, fwd_hooks=[(hook_name("resid_post", layer), grab) for layer in layers])
    for layer in layers:
        if layer not in resid:
            raise RuntimeError(f"blocks.{layer}.hook_resid_post never fired")
        vec = torch.randn(info.d_model, generator=gen)
        vec = vec / vec.norm() * resid[layer]  # as large as the state itself
        ours = model.run_with_hooks(ids, fwd_hooks=add_vector(model, layer, vec)).float()
        ref = plain.plain_logits(model, ids, add=(layer, vec.to(clean.device))).float()
        scale = ref.abs().max().clamp_min(1e-12)
        worst = max(worst, float((ours - ref).abs().max() / scale))
        smallest_change = min(smallest_change, float((ref[0, -1] - clean[0, -1]).abs().max() / scale))
    if smallest_change <= max(10 * worst, 1e-6):  # the change must stand out of the rounding
        raise RuntimeError(f"adding a vector changed the reference logits by only {smallest_change:.2g}")
    return worst, "max |bridge - transformers| logit with a vector added after a layer / max |logit|"


def _check_scan(model, n: int):
    info = model_info(model)
    ids = _probe_ids(model, n, seed=2)
    donor = _probe_ids(model, n, seed=3)
    L, H = info.n_layers, info.n_heads
    heads = {(0, 0), (L // 2, H // 2), (L - 1, H - 1)}
    windows = layer_windows(model)
    for kind in (True, False):  # a head in a windowed layer and one in a global layer, if both exist
        hit = [l for l, w in enumerate(windows) if (w is not None) == kind]
        if hit and not any((windows[l] is not None) == kind for l, _ in heads):
            heads.add((hit[0], H - 1))
    heads = sorted(heads)
    mean_z = torch.zeros(L, H, info.d_head)
    mean_z[:] = plain.plain_head_inputs(model, donor, H).cpu()
    with torch.inference_mode():
        clean = plain.plain_logits(model, ids, last_only=True)[0, -1].float()
    answer = int(clean.argmax())
    p_clean = float(clean.softmax(-1)[answer])
    prompt = EncodedPrompt(tuple(int(i) for i in ids[0]), answer, None)
    fast = scan_heads(model, [prompt], mean_z, heads=heads, progress=False).effects[0]
    errs, effects = [], []
    for l, h in heads:
        ref = plain.plain_patched_prob(model, ids, answer, l, h, mean_z[l, h]) - p_clean
        effects.append(abs(ref))
        errs.append(abs(float(fast[l, h]) - ref) / p_clean)
    if max(effects) == 0.0:
        raise RuntimeError("no patched head changed the answer's probability: the check would prove nothing")
    return max(errs), (
        f"max |fast scan - one-head patching in transformers| / P(answer), {len(heads)} heads, {n} tokens"
    )
