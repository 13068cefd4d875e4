"""The plain reference scan: one full forward per head per prompt, nothing clever.

It is the oracle for :func:`workbench.scan.scan_heads`: logits at every position, the patch
written at the last position of ``blocks.l.attn.hook_z``, the answer's probability read at the
last position.
"""

from __future__ import annotations

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
