"""Rank statistics shared by the studies (scan agreement) and soft task vectors (alpha vs AIE)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["spearman"]


def _ranks(x: Tensor) -> Tensor:
    """Ranks 0..n-1 of a 1-D tensor, ties sharing their mean rank."""
    order = x.argsort(stable=True)
    r = torch.empty(x.numel(), dtype=torch.float64)
    r[order] = torch.arange(x.numel(), dtype=torch.float64)
    _, inv = torch.unique(x, return_inverse=True)
    sums = torch.zeros(int(inv.max()) + 1, dtype=torch.float64).index_add_(0, inv, r)
    return (sums / torch.bincount(inv).double())[inv]


def spearman(x: Tensor, y: Tensor) -> float:
    """Spearman rank correlation of two equal-size tensors (flattened; NaN pairs dropped).

    >>> round(spearman(torch.tensor([1., 2., 3., 4.]), torch.tensor([10., 20., 30., 25.])), 6)
    0.8
    """
    x, y = x.flatten().double(), y.flatten().double()
    ok = ~(x.isnan() | y.isnan())
    x, y = x[ok], y[ok]
    if x.numel() < 2:
        return float("nan")
    rx, ry = _ranks(x), _ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = rx.norm() * ry.norm()
    return float((rx @ ry) / denom) if denom > 0 else float("nan")
