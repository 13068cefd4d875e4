"""The plain references the tests compare the workbench against: one full forward per prompt
(and per head), plain hooks written out here, nothing clever.

:func:`reference_scan` is the oracle for :func:`workbench.scan.scan_heads`: logits at every
position, the patch written at the last position of ``blocks.l.attn.hook_z``, the answer's
probability read at the last position.  :func:`plain_top1`, :func:`add_after` and
:func:`patch_heads` are the oracle of the studies' accuracies.

Below the TransformerLens hooks, the same in plain transformers (no TransformerLens at all):
:func:`hf_ranks` (a vector added to a decoder layer's output, head outputs rewritten at the output
projection's input), :func:`hf_mean_head_outputs` (each head's output through its slice of W_O),
and hand-written statistics (:func:`spearman_by_hand`, :func:`top_by_hand`).
"""

from __future__ import annotations

import math

import torch


@torch.inference_mode()
def reference_scan(model, prompts, mean_z, heads=None):
    """``[prompt, layer, head]`` of ``P_patched(answer) - P_corrupted(answer)`` (NaN if unscanned)."""
    L, H, _ = mean_z.shape
    heads = heads if heads is not None else [(l, h) for l in range(L) for h in range(H)]
    effects = torch.full((len(prompts), L, H), float("nan"))
    for p_idx, prompt in enumerate(prompts):
        tokens = torch.tensor([prompt.ids])
        clean = model(tokens)[0, -1].float().softmax(-1)[prompt.answer_id]
        for layer, head in heads:

            def patch(z, hook, head=head, layer=layer):
                z[:, -1, head] = mean_z[layer, head].to(z.dtype)
                return z

            logits = model.run_with_hooks(tokens, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", patch)])
            patched = logits[0, -1].float().softmax(-1)[prompt.answer_id]
            effects[p_idx, layer, head] = patched - clean
    return effects


def plain_top1(model, prompts, hooks_for=lambda i: []):
    """Share of prompts whose answer token has no higher logit, one unbatched forward each."""
    right = 0
    with torch.no_grad():
        for i, p in enumerate(prompts):
            logits = model.run_with_hooks(torch.tensor([p.ids]), fwd_hooks=hooks_for(i))[0, -1]
            right += int((logits > logits[p.answer_id]).sum() == 0)
    return right / len(prompts)


def add_after(layer, vector):
    """Hooks adding ``vector`` to the last position after block ``layer``."""

    def hook(act, hook):
        act[:, -1] = act[:, -1] + vector
        return act

    return [(f"blocks.{layer}.hook_resid_post", hook)]


def patch_heads(mean_z, heads):
    """Hooks writing each head's ``mean_z`` over its last-position ``hook_z`` (a mean ablation)."""

    def hook(z, hook):
        for l, h in heads:
            if l == hook.layer():
                z[:, -1, h] = mean_z[l, h]
        return z

    return [(f"blocks.{l}.attn.hook_z", hook) for l in sorted({l for l, _ in heads})]


# --- plain transformers, no TransformerLens -----------------------------------------------------


def hf_of(model):
    return model.original_model


def hf_ranks(model, prompts, *, add=None, add_from=None, z_patch=None) -> torch.Tensor:
    """Per prompt, how many logits beat the answer's, in plain transformers.

    add: ``(layer, vector)`` added to decoder layer ``layer``'s output at the last position (or,
    with ``add_from=i``, at positions ``i`` and later); z_patch: ``{layer: fn(z_last) -> z_last}``
    applied to the output projection's input at the last position (``z`` as ``[heads, d_head]``).
    """
    hf = hf_of(model)
    cfg = hf.config
    d_head = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    handles = []
    if add is not None:
        layer, vector = add

        def add_hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            where = slice(-1, None) if add_from is None else slice(add_from, None)
            hidden[:, where] += vector.to(hidden.dtype)
            return output

        handles.append(hf.model.layers[layer].register_forward_hook(add_hook))
    for layer, fn in (z_patch or {}).items():

        def pre_hook(module, args, fn=fn):
            (x,) = args
            x = x.clone()
            last = x[:, -1].reshape(x.shape[0], -1, d_head)
            x[:, -1] = fn(last).reshape(x.shape[0], -1)
            return (x,)

        handles.append(hf.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(pre_hook))
    try:
        out = []
        with torch.no_grad():
            for p in prompts:
                logits = hf(torch.tensor([p.ids])).logits[0, -1]
                out.append(int((logits > logits[p.answer_id]).sum()))
    finally:
        for h in handles:
            h.remove()
    return torch.tensor(out)


def top1(ranks: torch.Tensor) -> float:
    return float((ranks == 0).float().mean())


def hf_mean_head_outputs(model, prompts) -> torch.Tensor:
    """``[layer, head, d_model]``: each head's last-position output through its slice of W_O, averaged."""
    hf = hf_of(model)
    cfg = hf.config
    n_heads = cfg.num_attention_heads
    d_head = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
    sums = torch.zeros(cfg.num_hidden_layers, n_heads, cfg.hidden_size)
    handles = []
    for layer, block in enumerate(hf.model.layers):
        w = block.self_attn.o_proj.weight  # [d_model, heads * d_head]

        def grab(module, args, layer=layer, w=w):
            z = args[0][0, -1].reshape(n_heads, d_head)
            for h in range(n_heads):
                sums[layer, h] += (w[:, h * d_head : (h + 1) * d_head] @ z[h]).float()

        handles.append(block.self_attn.o_proj.register_forward_pre_hook(grab))
    try:
        with torch.no_grad():
            for p in prompts:
                hf(torch.tensor([p.ids]))
    finally:
        for h in handles:
            h.remove()
    return sums / len(prompts)


def ranks_with_ties(xs: list[float]) -> list[float]:
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def spearman_by_hand(a: list[float], b: list[float]) -> float:
    ra, rb = ranks_with_ties(a), ranks_with_ties(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def top_by_hand(aie: torch.Tensor, k: int) -> set[tuple[int, int]]:
    cells = [(float(aie[l, h]), l, h) for l in range(aie.shape[0]) for h in range(aie.shape[1])]
    return {(l, h) for _, l, h in sorted(cells, key=lambda c: -c[0])[:k]}
