"""The plain references the tests compare the workbench against: one full forward per prompt
(and per head), plain hooks written out here, nothing clever.

:func:`reference_scan` is the oracle for :func:`workbench.scan.scan_heads`: logits at every
position, the patch written at the last position of ``blocks.l.attn.hook_z``, the answer's
probability read at the last position.  :func:`plain_top1`, :func:`add_after` and
:func:`patch_heads` are the oracle of the studies' accuracies.
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
