"""The checking code of ``bench/full_width.py`` at tiny widths: the scan, the head map and injection
of GPT-J, Llama-3, Gemma-2 and Qwen2.5 shapes against plain transformers, and its memory figures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import full_width  # noqa: E402


def test_full_width_checks_at_tiny_widths(capsys):
    rows = full_width.main(["--tiny"])
    out = capsys.readouterr().out
    assert [r["name"] for r in rows] == list(full_width.MODELS)
    for r in rows:
        assert r["max_abs_diff"] < 1e-5, r  # float32 rounding only
        assert r["effect"] > 1e-3 and r["moved"] > 1e-3, r  # the patches and the vector did change the answer
        assert r["memory_rel_err"] >= 0.0
    assert "sliding window 24 on layers [0]" in out  # Gemma-2's sliding layer is crossed by the prompts
    assert out.strip().splitlines()[-1].startswith("memory_rel_err=")


def test_a_wrong_head_map_is_caught(monkeypatch):
    import torch

    model = full_width.build("llama-3-8b", 2, tiny=True)
    prompt = full_width.random_prompts(model, 1, 12, seed=0)[0]
    assert full_width.check_head_map(model, prompt) < 1e-5
    real = full_width.mean_head_activations

    def shifted(*args, **kwargs):  # a head map that swaps two heads' outputs
        means = real(*args, **kwargs)
        means.mean_out[:, [0, 1]] = means.mean_out[:, [1, 0]]
        return means

    monkeypatch.setattr(full_width, "mean_head_activations", shifted)
    assert full_width.check_head_map(model, prompt) > 1e-2
    assert torch.is_tensor(model.W_O)
