"""How fast this machine multiplies matrices of a model's shapes, in float32 and bfloat16.

    OMP_NUM_THREADS=1 python bench/matmul_rate.py                   # SmolLM2-135M's shapes
    python bench/matmul_rate.py --d-model 4096 --d-mlp 11008 --rows 1 128 2048

Times ``torch.nn.functional.linear`` of ``[rows, d_in]`` by a ``[d_out, d_in]`` weight for each
projection shape of a decoder layer (query/output ``d_model -> d_model``, key/value
``d_model -> d_kv``, MLP ``d_model <-> d_mlp``) and each row count: the work a forward's linear
layers do, which is most of a forward's time.  Batching prompts helps only where the rate grows
with the rows; a bfloat16 rate far below float32 means the CPU lacks bfloat16 instructions.

Prints one line per dtype, shape and row count, and the last line
``float32=<median GFLOP/s> bfloat16=<median GFLOP/s>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def rate(rows: int, d_out: int, d_in: int, dtype: torch.dtype, seconds: float = 0.5) -> float:
    """GFLOP/s of ``linear([rows, d_in], [d_out, d_in])`` (2 * rows * d_out * d_in FLOP a call)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, d_in, generator=g).to(dtype)
    w = torch.randn(d_out, d_in, generator=g).to(dtype)
    torch.nn.functional.linear(x, w)  # warm up
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls < 3:
        torch.nn.functional.linear(x, w)
        calls += 1
    return 2 * rows * d_out * d_in * calls / elapsed / 1e9


def main(argv=None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d-model", type=int, default=576)
    ap.add_argument("--d-kv", type=int, default=192)
    ap.add_argument("--d-mlp", type=int, default=1536)
    ap.add_argument("--rows", type=int, nargs="+", default=[98, 271, 784, 1568])
    ap.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = ap.parse_args(argv)
    d, kv, mlp = args.d_model, args.d_kv, args.d_mlp
    shapes = {"q/o": (d, d), "k/v": (kv, d), "mlp in": (mlp, d), "mlp out": (d, mlp)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    medians = {}
    for dtype in (torch.float32, torch.bfloat16):
        rates = []
        for name, (d_out, d_in) in shapes.items():
            for rows in args.rows:
                r = rate(rows, d_out, d_in, dtype, args.seconds)
                rates.append(r)
                print(f"{str(dtype)[6:]:<9} {name:<8} rows {rows:>5}: {r:7.1f} GFLOP/s")
        medians[str(dtype)[6:]] = statistics.median(rates)
    print(" ".join(f"{k}={v:.1f}" for k, v in medians.items()))
    return medians


if __name__ == "__main__":
    main()
