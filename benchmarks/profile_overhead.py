"""Where does wengert's time go on many small ops?  Workload (2) of ``run.py``, split up.

    python benchmarks/profile_overhead.py              # the split, medians over many samples
    python benchmarks/profile_overhead.py --cprofile   # plus the hottest functions (cProfile)
    python benchmarks/profile_overhead.py --steps 200 --n 1000

Workload (2) is ``y = sin(y)*0.9 + tanh(y)*0.1`` ``steps`` times on an ``n``-vector, then
``sum(y*y)``: 5·steps + 2 ops, each on tiny arrays, so nearly all of the time is the fixed
cost per op.  Reported, all as medians:

* NumPy forward: the function on plain arrays (the floor);
* wengert grad: ``wengert.grad(f)(x)``, everything;
* forward with taping: ``wengert.vjp(f, x)``: runs f and records the tape;
* backward sweep: ``vjp_fn(1.0)`` on a tape recorded once (the sweep is repeatable);
* per-op overhead: (time − NumPy forward) / number of ops, in µs, for the whole gradient and
  for the taping forward; the backward sweep per op beside NumPy's hand-written backward
  per op.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import chain_grad_np, chain_input, make_chain  # noqa: E402
from timing import FULL, QUICK, measure_interleaved  # noqa: E402

import wengert  # noqa: E402
import wengert.numpy as wnp  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50, help="loop iterations (5 ops each)")
    ap.add_argument("--n", type=int, default=10, help="vector length")
    ap.add_argument("--quick", action="store_true", help="fewer samples")
    ap.add_argument("--cprofile", action="store_true", help="also profile wengert.grad")
    ap.add_argument("--top", type=int, default=25, help="rows of the cProfile table")
    args = ap.parse_args(argv)
    settings = QUICK if args.quick else FULL

    n_ops = 5 * args.steps + 2
    x = chain_input(args.n)
    f_np = make_chain(np, args.steps)
    f_w = make_chain(wnp, args.steps)
    g = wengert.grad(f_w)

    # the pieces must add up to the same gradient
    want = chain_grad_np(x, args.steps)
    _, vjp_fn = wengert.vjp(f_w, x)
    (got,) = vjp_fn(1.0)
    assert np.allclose(g(x), want, rtol=1e-10, atol=0), "wengert.grad disagrees with NumPy"
    assert np.allclose(got, want, rtol=1e-10, atol=0), "wengert.vjp disagrees with NumPy"

    ms = measure_interleaved(
        [
            ("NumPy forward", lambda: f_np(x)),
            ("NumPy hand-written gradient", lambda: chain_grad_np(x, args.steps)),
            ("wengert grad", lambda: g(x)),
            ("wengert forward with taping: vjp(f, x)", lambda: wengert.vjp(f_w, x)),
            ("wengert backward sweep: vjp_fn(1.0)", lambda: vjp_fn(1.0)),
        ],
        settings,
    )
    t_np, t_hand, t_grad, t_fwd, t_bwd = (m.median_us for m in ms)

    print(
        f"workload (2): {args.steps} × (sin, ·0.9, tanh, ·0.1, +), then y·y, sum: "
        f"{n_ops} ops on a {args.n}-vector; numpy {np.__version__}"
    )
    width = max(len(m.name) for m in ms)
    print(f"  {'':{width}}  median µs  × NumPy fwd   IQR µs")
    for m in ms:
        lo, hi = m.spread
        print(
            f"  {m.name:{width}}  {m.median_us:9.1f}  {m.median_us / t_np:10.2f}   "
            f"{lo:.1f}–{hi:.1f}"
        )
    print()
    both = t_fwd + t_bwd
    print(
        f"  split of vjp + one sweep ({both:.1f} µs; the grad call took {t_grad:.1f} µs): "
        f"forward with taping {100 * t_fwd / both:.1f} %, backward sweep {100 * t_bwd / both:.1f} %"
    )
    print(f"  per op (µs, {n_ops} ops):")
    print(f"    NumPy forward, per op:                        {t_np / n_ops:6.2f}")
    print(f"    whole gradient, overhead beyond NumPy fwd:    {(t_grad - t_np) / n_ops:6.2f}")
    print(f"    taping forward, overhead beyond NumPy fwd:    {(t_fwd - t_np) / n_ops:6.2f}")
    print(f"    backward sweep, per op:                       {t_bwd / n_ops:6.2f}")
    print(f"    NumPy hand-written backward, per op:          {(t_hand - t_np) / n_ops:6.2f}")

    if args.cprofile:
        calls = 200
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(calls):
            g(x)
        prof.disable()
        print(f"\ncProfile of {calls} calls of wengert.grad(f)(x), by own time:")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
