"""Real widths, a few layers: the scan, the head map and injection against plain transformers, and
measured peak memory against ``workbench plan``, on random-weight models of the paper's scale.

    OMP_NUM_THREADS=1 python bench/full_width.py               # GPT-J-6B, Llama-3-8B, Gemma-2-9B, Qwen2.5-7B
    python bench/full_width.py --models llama-3-8b --layers 3  # one model, three layers
    python bench/full_width.py --tiny                          # the same checks at tiny widths (seconds)

Each model is built from its config in :data:`workbench.core.plan.KNOWN_CONFIGS` (the real hidden
size, heads, key/value heads, head size, MLP width and vocabulary) with ``--layers`` layers, random
weights, float32, on the CPU; one at a time, freed before the next.  Two changes to the config,
both said in the output: Gemma-2's sliding window is cut from 4096 to 24 tokens so that the
40-token prompts cross it (a width is not changed by it), and the unembedding is scaled by 8 so that
random weights give confident predictions (with the initial weights every answer has a probability
near ``1 / d_vocab``, and a probability difference of 1e-4 would prove nothing).

Checked against :mod:`workbench.core.plain` (an untouched transformers model sharing the weights,
plain torch hooks):

- scan: :func:`scan_heads` on every head, compared on 8 heads spread over the layers (every
  layer's first and last head among them) against one-head-at-a-time patching of transformers'
  output-projection input (``|dP(answer)|``; each costs a full forward there);
- head map: each head's mapped mean output (``HeadMeans.mean_out``, what the FV sums) against the
  output projection's weight columns times the head's input, and the heads' sum plus the output
  bias's share against what transformers' attention block writes (after Gemma-2's post-norm);
- injection: a vector added after each layer, through the last-token variants of the sweeps (16
  prompts, as the plan's sweep stage), against transformers with the vector added to the decoder
  layer's output on 2 of them (``|dP|`` over the whole vocabulary).

Memory: the process's peak resident memory (Linux ``VmHWM``, reset before each stage through
``/proc/self/clear_refs``) above what it held before the model was built, against ``plan_run``'s
peak for the stage (weights + forward + logits kept).  RSS is what the machine must supply (what
runs out on a CPU); torch's CPU allocator caches nothing, so a freed tensor leaves the count, and
the model's weights enter it once (the plain reference shares them).  Printed per stage: the whole
peak and, separately, the part above the weights (the activations, where the model is harder).

Last line: ``memory_rel_err=<worst over models and stages> max_abs_diff=<worst over models and checks>``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.core import plain  # noqa: E402
from workbench.core.heads import bias_to_residual, mean_head_activations  # noqa: E402
from workbench.core.hooks import add_vector  # noqa: E402
from workbench.core.model import model_info  # noqa: E402
from workbench.core.plan import known_config, plan_run, shape_of_model  # noqa: E402
from workbench.core.scan import auto_variant_batch, scan_heads  # noqa: E402
from workbench.core.tiny import random_model, tiny_tokenizer  # noqa: E402
from workbench.core.variants import variant_scores  # noqa: E402
from workbench.data.prompts import EncodedPrompt  # noqa: E402

MODELS = ("gptj-6b", "llama-3-8b", "gemma-2-9b", "qwen2.5-7b")
TINY = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=16)
LOGIT_SCALE = 8.0
WINDOW = 24  # Gemma-2's sliding window here (its real one, 4096, would never be crossed)


def build(name: str, layers: int, tiny: bool = False):
    """A random-weight bridge of ``name``'s config with ``layers`` layers (tiny widths if asked)."""
    cfg = known_config(name)
    if cfg.model_type == "gptj":
        cfg.n_layer = layers
        if tiny:
            cfg.n_embd, cfg.n_head, cfg.rotary_dim, cfg.n_inner = 64, 4, 8, 128
        cfg.architectures = ["GPTJForCausalLM"]
    else:
        cfg.num_hidden_layers = layers
        if tiny:
            for k, v in TINY.items():
                setattr(cfg, k, v)
            if hasattr(cfg, "query_pre_attn_scalar"):
                cfg.query_pre_attn_scalar = 16
        if getattr(cfg, "layer_types", None) is not None:  # re-derive the per-layer kinds for this depth
            cfg.layer_types = [cfg.layer_types[i % len(cfg.layer_types)] for i in range(layers)]
        if cfg.model_type == "gemma2":
            cfg.sliding_window = WINDOW
            cfg.layer_types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
        cfg.architectures = [
            {"llama": "LlamaForCausalLM", "gemma2": "Gemma2ForCausalLM"}.get(
                cfg.model_type, "Qwen2ForCausalLM"
            )
        ]
    if tiny:
        cfg.vocab_size = 512
    cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = 0, 1, 2
    model = random_model(cfg, tiny_tokenizer(), name=f"random-{name}", seed=0)
    with torch.no_grad():
        head = model.original_model.get_output_embeddings().weight
        head.mul_(LOGIT_SCALE)
    return model


def random_prompts(model, n: int, length: int, seed: int) -> list[EncodedPrompt]:
    """``n`` prompts of random token ids; the answer is each prompt's own top prediction (transformers',
    one batched forward)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 300, (n, length), generator=gen)
    ids[:, 0] = 0
    answers = plain.plain_logits(model, ids, last_only=True)[:, -1].argmax(-1)
    return [EncodedPrompt(tuple(int(i) for i in row), int(a), None) for row, a in zip(ids, answers)]


def checked_heads(model, n: int = 8) -> list[tuple[int, int]]:
    """``n`` heads spread over layers and head indices (every layer, first and last heads) that the
    scan is compared on against transformers (each costs one full forward there)."""
    info = model_info(model)
    L, H = info.n_layers, info.n_heads
    picks = {(l, h) for l in range(L) for h in (0, H - 1)}
    step = max(1, (L * H) // n)
    picks |= {(i // H, i % H) for i in range(step // 2, L * H, step)}
    return sorted(picks)[: max(n, 2 * L)]


# --- memory ----------------------------------------------------------------------------------------


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def reset_peak() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    Path("/proc/self/clear_refs").write_text("5")


def peak() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def measured(fn, base: int) -> tuple[object, int, int]:
    """``fn()``, its peak RSS above ``base``, and above the RSS just before it."""
    reset_peak()
    before = rss()
    out = fn()
    top = peak()
    return out, top - base, top - before


# --- the checks --------------------------------------------------------------------------------------


def _twin_module(model, layer: int):
    """The transformers module whose output is what layer ``layer``'s attention writes into the
    residual stream: the post-attention norm where there is one, else the output projection."""
    block = model.blocks[layer]
    post = getattr(block, "ln1_post", None)
    return plain.bridge_submodule(model, post if post is not None else block.attn.o)


@torch.inference_mode()
def check_head_map(model, prompt: EncodedPrompt) -> float:
    """Largest relative error of the head map (module docstring) on one prompt."""
    info = model_info(model)
    twin = plain.plain_twin(model)
    ids = torch.tensor([prompt.ids])
    means = mean_head_activations(model, [prompt], progress=False)
    z_in, writes, handles = {}, {}, []
    for l in range(info.n_layers):
        proj = plain.bridge_submodule(model, model.blocks[l].attn.o)

        def grab_in(module, args, l=l):
            z_in[l] = args[0][0, -1].float().clone()

        def grab_write(module, args, output, l=l):
            writes[l] = plain._out_tensor(output)[0, -1].float().clone()

        handles += [
            proj.register_forward_pre_hook(grab_in),
            _twin_module(model, l).register_forward_hook(grab_write),
        ]
    try:
        twin(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    worst = 0.0
    for l in range(info.n_layers):
        total = means.mean_out[l].sum(0) + bias_to_residual(model, l).float()
        worst = max(worst, float((total - writes[l]).norm() / writes[l].norm()))
        if not info.post_attn_norm:  # each head alone: W_O's columns of the head times its input
            W = plain.bridge_submodule(model, model.blocks[l].attn.o).weight.float()  # [d_model, H * d_head]
            d = info.d_head
            for h in range(info.n_heads):
                ref = W[:, h * d : (h + 1) * d] @ z_in[l][h * d : (h + 1) * d]
                worst = max(worst, float((means.mean_out[l, h] - ref).norm() / writes[l].norm()))
    return worst


def check_scan(model, prompt: EncodedPrompt, mean_z) -> tuple[float, float, dict]:
    """(largest |dP| of the scan of every head against one-head patching in transformers, on the
    :func:`checked_heads`; largest |effect| among them; the scan's meta)."""
    scan = scan_heads(model, [prompt], mean_z, progress=False)
    ids = torch.tensor([prompt.ids])
    p0 = plain.plain_patched_prob(model, ids, prompt.answer_id, 0, 0, None)
    worst, biggest = 0.0, 0.0
    for l, h in checked_heads(model):
        ref = plain.plain_patched_prob(model, ids, prompt.answer_id, l, h, mean_z[l, h]) - p0
        worst = max(worst, abs(float(scan.effects[0, l, h]) - ref))
        biggest = max(biggest, abs(ref))
    return worst, biggest, scan.meta


def check_injection(model, prompts, vector, n_checked: int = 2) -> tuple[float, float]:
    """(largest |dP| over the vocabulary of the sweep's variants against transformers on the first
    ``n_checked`` prompts, largest change the vector made to a probability)."""
    info = model_info(model)
    ivs = {layer: add_vector(model, layer, vector) for layer in range(info.n_layers)}
    scores = variant_scores(model, prompts, ivs, keep_logits=True)
    worst = moved = 0.0
    for i, p in enumerate(prompts[:n_checked]):
        ids = torch.tensor([p.ids])
        clean = plain.plain_logits(model, ids, last_only=True)[0, -1].float().softmax(-1)
        for layer in range(info.n_layers):
            ref = (
                plain.plain_logits(model, ids, add=(layer, vector), last_only=True)[0, -1].float().softmax(-1)
            )
            ours = scores[layer].logits[i].softmax(-1)
            worst = max(worst, float((ours - ref).abs().max()))
            moved = max(moved, float((ref - clean).abs().max()))
    return worst, moved


def run_model(name: str, layers: int, tiny: bool, length: int = 40, n_sweep: int = 16) -> dict:
    """Build one model, run every check and the memory comparison, free it; the row of figures."""
    build(name, 1, tiny=True)  # warm-up: the family's code imported before the baseline is read
    reset_peak()
    base = rss()
    t0 = time.perf_counter()
    model = build(name, layers, tiny)
    info = model_info(model)
    shape = shape_of_model(model)
    weights_rss = rss() - base
    clean = random_prompts(model, 8, length, seed=1)
    corrupted = random_prompts(model, 1, length, seed=2)
    sweep = random_prompts(model, n_sweep, length, seed=3)
    free = _free()
    plan = plan_run(
        shape,
        "float32",
        "cpu",
        device_bytes=free + shape.weights_bytes(torch.float32),
        free_bytes=free,
        prompt_tokens=length,
        n_mean_prompts=8,
        n_valid=n_sweep,
    )

    rows = {}
    means, m_all, m_act = measured(lambda: mean_head_activations(model, clean, progress=False), base)
    rows["means"] = (m_all, m_act, plan.stage("means"))
    v = auto_variant_batch(model, length)
    (scan_err, biggest, meta), m_all, m_act = measured(
        lambda: check_scan(model, corrupted[0], means.mean_z), base
    )
    rows["scan"] = (m_all, m_act, plan.stage("scan"))
    top = sorted(
        (
            (float(means.mean_out[l, h].norm()), l, h)
            for l in range(info.n_layers)
            for h in range(info.n_heads)
        ),
        reverse=True,
    )[:3]
    vector = sum(means.mean_out[l, h] for _, l, h in top)
    (inj_err, moved), m_all, m_act = measured(lambda: check_injection(model, sweep, vector), base)
    rows["layer sweep (valid)"] = (m_all, m_act, plan.stage("layer sweep (valid)"))
    map_err = check_head_map(model, corrupted[0])
    seconds = time.perf_counter() - t0

    print(
        f"\n{name}: {info.n_layers} layers x {info.n_heads} heads ({info.n_kv_heads} kv), "
        f"d_model {info.d_model}, "
        f"d_head {info.d_head}, d_vocab {info.d_vocab}; {shape.n_params / 1e9:.2f} B parameters, float32"
        + (
            f"; sliding window {WINDOW} on layers {[l for l, w in enumerate(_windows(model)) if w]}"
            if name.startswith("gemma")
            else ""
        )
    )
    print(
        f"  scan       max |dP| {scan_err:.2e} (largest |effect| {biggest:.2e}; {v} variants per forward, "
        f"layer skip on {meta.get('layer_skip', 0)} prompt(s))"
    )
    print(f"  head map   max relative error {map_err:.2e}")
    print(
        f"  injection  max |dP| over the vocabulary {inj_err:.2e} "
        f"(the vector moved a probability by up to {moved:.2f})"
    )
    print(
        f"  weights    plan {shape.weights_bytes(torch.float32) / 2**30:.3f} GiB, "
        f"RSS {weights_rss / 2**30:.3f} GiB"
    )
    errs = []
    for stage, (m_all, m_act, sp) in rows.items():
        pred_act = sp.peak_bytes - sp.parts["weights"]
        rel = abs(sp.peak_bytes - m_all) / m_all
        errs.append(rel)
        print(
            f"  {stage:<20} peak: plan {sp.peak_bytes / 2**30:7.3f} GiB, measured {m_all / 2**30:7.3f} GiB "
            f"({rel:.1%}); above the weights: plan {pred_act / 2**20:8.1f} MiB, "
            f"measured {m_act / 2**20:8.1f} MiB"
        )
    print(f"  ({seconds:.0f} s)")
    return {
        "name": name,
        "memory_rel_err": max(errs),
        "max_abs_diff": max(scan_err, map_err, inj_err),
        "scan": scan_err,
        "head_map": map_err,
        "injection": inj_err,
        "effect": biggest,
        "moved": moved,
    }


def _windows(model):
    from workbench.core.model import layer_windows

    return layer_windows(model)


def _free() -> int:
    from workbench.core.plan import device_memory

    return device_memory("cpu")[1]


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--tiny", action="store_true", help="tiny widths: the checking code in seconds")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); unembedding x {LOGIT_SCALE}")
    rows = [run_model(name, args.layers, args.tiny) for name in args.models]
    mem = max(r["memory_rel_err"] for r in rows)
    diff = max(r["max_abs_diff"] for r in rows)
    print(f"\nmemory_rel_err={mem:.3f} max_abs_diff={diff:.2e}")
    return rows


if __name__ == "__main__":
    main()
