"""Benchmarks: wengert beside plain NumPy, HIPS autograd, PyTorch and JAX, in one run.

    python benchmarks/run.py            # everything (about 3 minutes on 2 cores)
    python benchmarks/run.py --quick    # smoke run: fewer samples, no torch.compile
    python benchmarks/run.py --only 2,4 --json results.json

Every workload is timed for each implementation in the same process, in interleaved rounds,
and reported as the median time per call (µs) and as a ratio to the plain NumPy forward pass
of the same function.  Before anything is timed, every gradient is checked against wengert's
(and wengert's against a hand-written NumPy gradient).  Peers that are not installed are
skipped with a note, so this also runs in the test virtualenv with wengert and NumPy only.

Inputs are converted to each library's array type once, outside the timing (a float64
``torch.Tensor`` leaf with ``requires_grad``, a ``jax.Array``); gradients are left in the
library's own type.  Building the gradient function (``wengert.grad(f)``, ``jax.jit(...)``)
is also outside the timing; compilation happens on the first call, reported separately.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import FULL, QUICK, Measurement, Settings, measure_interleaved  # noqa: E402

# inductor's pool of compile workers would otherwise linger beside the timed code
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import wengert  # noqa: E402
import wengert.numpy as wnp  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Peers (all optional)
# ---------------------------------------------------------------------------------------------

_TORCH_COMPILE_PROBE = """
import torch
f = torch.compile(lambda x: (torch.sin(x) * 2.0).sum())
x = torch.ones(3, dtype=torch.float64, requires_grad=True)
(g,) = torch.autograd.grad(f(x), x)
assert abs(float(g[0]) - 2 * 0.5403023058681398) < 1e-12
"""


class _Skipped(Exception):
    pass


@dataclass
class Peers:
    anp: object = None  # autograd.numpy
    autograd: object = None
    autograd_lse: object = None
    torch: object = None
    torch_compile: bool = False
    jax: object = None
    jnp: object = None
    versions: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def load_peers(
    want_compile: bool, skip: set[str] = frozenset(), compile_timeout_s: float = 240.0
) -> Peers:
    p = Peers()
    try:
        if "autograd" in skip:
            raise _Skipped
        import autograd
        import autograd.numpy as anp
        from autograd.scipy.special import logsumexp

        p.autograd, p.anp, p.autograd_lse = autograd, anp, logsumexp
        p.versions["autograd"] = _dist_version("autograd")
    except _Skipped:
        p.notes.append("HIPS autograd: skipped (--skip)")
    except ImportError:
        p.notes.append("HIPS autograd: skipped (not installed; pip install autograd)")
    try:
        if "torch" in skip:
            raise _Skipped
        import torch

        p.torch = torch
        p.versions["torch"] = torch.__version__
        p.versions["torch threads"] = torch.get_num_threads()
    except _Skipped:
        p.notes.append("PyTorch: skipped (--skip)")
    except ImportError:
        p.notes.append("PyTorch: skipped (not installed; pip install torch==2.13.0)")
    if p.torch is not None:
        if not want_compile:
            p.notes.append("PyTorch compiled: skipped (--quick or --no-compile)")
        else:
            ok, why = _probe_torch_compile(compile_timeout_s)
            p.torch_compile = ok
            if not ok:
                p.notes.append(f"PyTorch compiled: skipped (torch.compile does not work: {why})")
    try:
        if "jax" in skip:
            raise _Skipped
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        p.jax, p.jnp = jax, jnp
        p.versions["jax"] = jax.__version__
        p.versions["jaxlib"] = _dist_version("jaxlib")
        p.versions["jax backend"] = jax.default_backend()
    except _Skipped:
        p.notes.append("JAX: skipped (--skip)")
    except ImportError:
        p.notes.append("JAX: skipped (not installed; pip install jax jaxlib)")
    return p


def _probe_torch_compile(timeout_s: float) -> tuple[bool, str]:
    """Does torch.compile (inductor, CPU) work here, offline, within the time limit?"""
    try:
        r = subprocess.run(
            [sys.executable, "-c", _TORCH_COMPILE_PROBE],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return False, f"a trivial function took over {timeout_s:.0f} s to compile"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["unknown error"])[-1]
        return False, last[:200]
    return True, ""


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------------------------
# Rows of a workload and their checks
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    fn: Callable[[], object] | None  # the timed call; None: skipped
    grad_of: Callable[[object], list[np.ndarray]] | None = None  # output -> numpy leaves
    note: str = ""
    is_grad: bool = True
    measurement: Measurement | None = None
    first_call_s: float = float("nan")  # the very first call: includes any compilation
    check: str = ""  # "ok (max rel err ...)" or the mismatch


def leaves_to_numpy(out) -> list[np.ndarray]:
    """Flatten (nested) tuples/lists of arrays/tensors to a list of float64 NumPy arrays."""
    if isinstance(out, (tuple, list)):
        res = []
        for o in out:
            res.extend(leaves_to_numpy(o))
        return res
    if hasattr(out, "detach"):  # torch.Tensor
        out = out.detach().cpu().numpy()
    return [np.asarray(out, dtype=np.float64)]


def compare(got: list[np.ndarray], want: list[np.ndarray], rtol: float = 1e-8) -> str | None:
    """None if every leaf agrees; else a description of the worst disagreement."""
    if len(got) != len(want):
        return f"{len(got)} gradient arrays, expected {len(want)}"
    worst = 0.0
    for g, w in zip(got, want):
        if g.shape != w.shape:
            return f"shape {g.shape}, expected {w.shape}"
        scale = max(float(np.max(np.abs(w), initial=0.0)), 1e-300)
        err = float(np.max(np.abs(g - w), initial=0.0)) / scale
        if not np.isfinite(err) or not np.allclose(g, w, rtol=rtol, atol=rtol * scale):
            return f"max |error| / max |gradient| = {err:.3g}"
        worst = max(worst, err)
    return None if worst <= rtol else f"max |error| / max |gradient| = {worst:.3g}"


def max_rel_err(got: list[np.ndarray], want: list[np.ndarray]) -> float:
    e = 0.0
    for g, w in zip(got, want):
        scale = max(float(np.max(np.abs(w), initial=0.0)), 1e-300)
        e = max(e, float(np.max(np.abs(g - w), initial=0.0)) / scale)
    return e


# ---------------------------------------------------------------------------------------------
# The workloads.  Each function is written once against a NumPy-like namespace ``m`` and
# instantiated for every library, so all implementations run the very same operations.
# ---------------------------------------------------------------------------------------------


@dataclass
class Workload:
    number: int
    key: str
    title: str
    detail: str
    target: float | None  # wengert / NumPy forward must be at most this
    target_vs_hand: float | None = None  # wengert / hand-written NumPy gradient
    rows: list[Row] = field(default_factory=list)


def _torch_leaf(torch, a):
    t = torch.tensor(a, dtype=torch.float64) if np.ndim(a) == 0 else torch.from_numpy(a)
    return t.clone().requires_grad_(True)


def _add_peer_rows(
    rows: list[Row],
    peers: Peers,
    make_f: Callable,  # namespace -> function of the differentiated args (+ constants)
    args: tuple,  # NumPy values of the differentiated arguments
    consts: tuple = (),  # NumPy constants passed after them
    tuple_arg: bool = False,  # the single differentiated argument is a tuple of arrays
    lse: dict | None = None,  # per-library extras passed to make_f
) -> None:
    """Append HIPS autograd, PyTorch (eager, compiled) and JAX (eager, jit) rows."""
    lse = lse or {}
    nargs = 1 if tuple_arg else len(args)
    argnums = 0 if nargs == 1 else tuple(range(nargs))
    diff = (args,) if tuple_arg else args

    # HIPS autograd
    if peers.autograd is not None:
        f = make_f(peers.anp, **lse.get("autograd", {}))
        ag = peers.autograd.grad(f, argnum=argnums)
        rows.append(Row("HIPS autograd", lambda: ag(*diff, *consts), leaves_to_numpy))
    else:
        rows.append(Row("HIPS autograd", None, note="not installed"))

    # PyTorch
    if peers.torch is not None:
        torch = peers.torch
        wrt = [_torch_leaf(torch, a) for a in args]
        call_args = (wrt,) if tuple_arg else tuple(wrt)
        t_consts = tuple(torch.from_numpy(np.ascontiguousarray(c)) for c in consts)
        f = make_f(torch, **lse.get("torch", {}))

        def torch_grad(f=f):
            return torch.autograd.grad(f(*call_args, *t_consts), wrt)

        rows.append(Row("PyTorch eager", torch_grad, leaves_to_numpy))
        if peers.torch_compile:
            cf = torch.compile(make_f(torch, **lse.get("torch", {})))

            def torch_compiled_grad():
                return torch.autograd.grad(cf(*call_args, *t_consts), wrt)

            rows.append(Row("PyTorch torch.compile", torch_compiled_grad, leaves_to_numpy))
        else:
            rows.append(Row("PyTorch torch.compile", None, note="skipped"))
    else:
        rows.append(Row("PyTorch eager", None, note="not installed"))

    # JAX
    if peers.jax is not None:
        jax, jnp = peers.jax, peers.jnp
        j_args = tuple(jnp.asarray(a) for a in args)
        j_diff = (j_args,) if tuple_arg else j_args
        j_consts = tuple(jnp.asarray(c) for c in consts)
        f = make_f(jnp, **lse.get("jax", {}))
        jgrad = jax.grad(f, argnums=argnums)
        jg = jax.jit(jax.grad(f, argnums=argnums))
        rows.append(
            Row(
                "JAX eager (no jit)",
                lambda: jax.block_until_ready(jgrad(*j_diff, *j_consts)),
                leaves_to_numpy,
            )
        )
        rows.append(
            Row(
                "JAX jit(grad)",
                lambda: jax.block_until_ready(jg(*j_diff, *j_consts)),
                leaves_to_numpy,
            )
        )
    else:
        rows.append(Row("JAX", None, note="not installed"))


# (1) the MATLAB seed function ----------------------------------------------------------------


def make_seed(m):
    def f(x1, x2):
        return x1 * m.exp(-0.5 * (x1**2 + x2**2))

    return f


def seed_grad_np(x1, x2):
    e = np.exp(-0.5 * (x1**2 + x2**2))
    return e * (1.0 - x1**2), -x1 * x2 * e


def workload_seed(peers: Peers) -> Workload:
    w = Workload(
        1,
        "seed",
        "MATLAB seed function f(x1, x2) = x1·exp(−½(x1²+x2²)) at (2, ½): gradient",
        "scalar arguments: wengert.grad(f, argnums=(0, 1))(2.0, 0.5) (two Python floats in, "
        "two 0-d arrays out); PyTorch uses 0-d float64 tensors",
        target=None,
    )
    x1, x2 = 2.0, 0.5
    f_np = make_seed(np)
    g = wengert.grad(make_seed(wnp), argnums=(0, 1))
    w.rows = [
        Row("NumPy forward", lambda: f_np(x1, x2), is_grad=False),
        Row("NumPy hand-written gradient", lambda: seed_grad_np(x1, x2), leaves_to_numpy),
        Row("wengert", lambda: g(x1, x2), leaves_to_numpy),
    ]
    _add_peer_rows(w.rows, peers, make_seed, (x1, x2))
    return w


# (2) a chain of 250 small elementwise ops ---------------------------------------------------

CHAIN_STEPS = 50  # 5 ops each, then y*y and sum: 252 ops
CHAIN_OPS = 5 * CHAIN_STEPS + 2


def make_chain(m, steps: int = CHAIN_STEPS):
    def f(y):
        for _ in range(steps):
            y = m.sin(y) * 0.9 + m.tanh(y) * 0.1
        return m.sum(y * y)

    return f


def chain_grad_np(x, steps: int = CHAIN_STEPS):
    saved = []
    y = x
    for _ in range(steps):
        t = np.tanh(y)
        saved.append((y, t))
        y = np.sin(y) * 0.9 + t * 0.1
    g = 2.0 * y
    for y, t in reversed(saved):
        g = g * (0.9 * np.cos(y) + 0.1 * (1.0 - t * t))
    return g


def chain_input(n: int = 10) -> np.ndarray:
    return np.random.default_rng(2).uniform(-1.5, 1.5, n)


def workload_chain(peers: Peers) -> Workload:
    w = Workload(
        2,
        "chain",
        f"chain of {CHAIN_OPS} small elementwise ops on a 10-vector: gradient",
        f"y = sin(y)·0.9 + tanh(y)·0.1, {CHAIN_STEPS} times, then sum(y·y); "
        "measures the fixed cost per recorded op",
        target=6.0,
    )
    x = chain_input()
    f_np = make_chain(np)
    g = wengert.grad(make_chain(wnp))
    w.rows = [
        Row("NumPy forward", lambda: f_np(x), is_grad=False),
        Row("NumPy hand-written gradient", lambda: chain_grad_np(x), leaves_to_numpy),
        Row("wengert", lambda: g(x), leaves_to_numpy),
    ]
    _add_peer_rows(w.rows, peers, make_chain, (x,))
    return w


# (3) an MLP with softmax cross-entropy ------------------------------------------------------

MLP_SIZES = (64, 256, 256, 10)
MLP_BATCH = 256


def make_mlp(m, lse=None):
    if lse is None:
        lse = lambda z: m.logsumexp(z, axis=1)

    def loss(params, X, Y):
        W1, b1, W2, b2, W3, b3 = params
        h1 = m.tanh(X @ W1 + b1)
        h2 = m.tanh(h1 @ W2 + b2)
        z = h2 @ W3 + b3
        return m.mean(lse(z) - m.sum(Y * z, axis=1))

    return loss


def np_logsumexp_rows(z):
    zmax = z.max(axis=1, keepdims=True)
    return np.log(np.exp(z - zmax).sum(axis=1)) + zmax[:, 0]


def mlp_value_and_grad_np(params, X, Y):
    """Hand-written backprop: the forward pass, keeping what the backward pass reuses."""
    W1, b1, W2, b2, W3, b3 = params
    batch = X.shape[0]
    h1 = X @ W1
    h1 += b1
    np.tanh(h1, out=h1)
    h2 = h1 @ W2
    h2 += b2
    np.tanh(h2, out=h2)
    z = h2 @ W3
    z += b3
    zmax = z.max(axis=1, keepdims=True)
    e = z - zmax
    np.exp(e, out=e)
    s = e.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(s[:, 0]) + zmax[:, 0] - np.einsum("ij,ij->i", Y, z)))
    # backward: dL/dz = (softmax(z) - Y) / batch
    dz = e
    dz /= s
    dz -= Y
    dz *= 1.0 / batch
    dW3 = h2.T @ dz
    db3 = dz.sum(axis=0)
    dh2 = dz @ W3.T
    h2 *= h2  # tanh' = 1 - h², computed in place: h2 is not needed any more
    np.subtract(1.0, h2, out=h2)
    dh2 *= h2
    dW2 = h1.T @ dh2
    db2 = dh2.sum(axis=0)
    dh1 = dh2 @ W2.T
    h1 *= h1
    np.subtract(1.0, h1, out=h1)
    dh1 *= h1
    dW1 = X.T @ dh1
    db1 = dh1.sum(axis=0)
    return loss, (dW1, db1, dW2, db2, dW3, db3)


def mlp_data():
    rng = np.random.default_rng(3)
    params = []
    for n_in, n_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        params.append(rng.standard_normal((n_in, n_out)) / np.sqrt(n_in))
        params.append(0.1 * rng.standard_normal(n_out))
    X = rng.standard_normal((MLP_BATCH, MLP_SIZES[0]))
    labels = rng.integers(0, MLP_SIZES[-1], MLP_BATCH)
    Y = np.zeros((MLP_BATCH, MLP_SIZES[-1]))
    Y[np.arange(MLP_BATCH), labels] = 1.0
    return tuple(params), X, Y


def workload_mlp(peers: Peers) -> Workload:
    sizes = "-".join(map(str, MLP_SIZES))
    w = Workload(
        3,
        "mlp",
        f"MLP {sizes}, tanh, softmax cross-entropy, batch {MLP_BATCH}, float64: "
        "gradient w.r.t. all weights and biases",
        "loss = mean(logsumexp(z, axis=1) − sum(Y·z, axis=1)) with one-hot Y; each library "
        "uses its own logsumexp; the hand-written NumPy gradient is the forward pass plus "
        "manual backprop reusing the forward intermediates",
        target=None,
        target_vs_hand=1.1,
    )
    params, X, Y = mlp_data()
    f_np = make_mlp(np, lse=np_logsumexp_rows)
    # the forward pass must agree with the hand-written one
    loss_hand, _ = mlp_value_and_grad_np(params, X, Y)
    assert np.isclose(f_np(params, X, Y), loss_hand, rtol=1e-12), "MLP forward passes disagree"
    g = wengert.grad(make_mlp(wnp))
    w.rows = [
        Row("NumPy forward", lambda: f_np(params, X, Y), is_grad=False),
        Row(
            "NumPy hand-written gradient",
            lambda: mlp_value_and_grad_np(params, X, Y),
            lambda out: leaves_to_numpy(out[1]),
        ),
        Row("wengert", lambda: g(params, X, Y), leaves_to_numpy),
    ]
    extras = {}
    if peers.autograd is not None:
        extras["autograd"] = {"lse": lambda z: peers.autograd_lse(z, axis=1)}
    if peers.torch is not None:
        extras["torch"] = {"lse": lambda z: peers.torch.logsumexp(z, dim=1)}
    if peers.jax is not None:
        extras["jax"] = {"lse": lambda z: peers.jax.nn.logsumexp(z, axis=1)}
    _add_peer_rows(w.rows, peers, make_mlp, params, (X, Y), tuple_arg=True, lse=extras)
    return w


# (4) Rosenbrock, n = 10^6 -------------------------------------------------------------------

ROSEN_N = 10**6


def make_rosen(m):
    def f(x):
        return m.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    return f


def rosen_grad_np(x):
    a = x[:-1]
    d = x[1:] - a * a
    g = np.empty_like(x)
    g[:-1] = -400.0 * a * d - 2.0 * (1.0 - a)
    g[-1] = 0.0
    g[1:] += 200.0 * d
    return g


def workload_rosen(peers: Peers) -> Workload:
    w = Workload(
        4,
        "rosenbrock",
        "Rosenbrock, n = 10^6, float64: gradient",
        "f(x) = Σ 100(x[1:] − x[:-1]²)² + (1 − x[:-1])²; memory-bound large arrays",
        target=4.0,
    )
    x = np.random.default_rng(4).uniform(-2.0, 2.0, ROSEN_N)
    f_np = make_rosen(np)
    g = wengert.grad(make_rosen(wnp))
    w.rows = [
        Row("NumPy forward", lambda: f_np(x), is_grad=False),
        Row("NumPy hand-written gradient", lambda: rosen_grad_np(x), leaves_to_numpy),
        Row("wengert", lambda: g(x), leaves_to_numpy),
    ]
    _add_peer_rows(w.rows, peers, make_rosen, (x,))
    return w


WORKLOADS = {1: workload_seed, 2: workload_chain, 3: workload_mlp, 4: workload_rosen}

# ---------------------------------------------------------------------------------------------
# Running, checking and reporting
# ---------------------------------------------------------------------------------------------


def check_rows(w: Workload) -> bool:
    """Call everything once (the timed first call, compilation included), then compare every
    gradient with wengert's, and wengert's with the hand-written NumPy one."""
    outs = {}
    for r in w.rows:
        if r.fn is None:
            continue
        t0 = time.perf_counter()
        try:
            outs[r.name] = r.fn()
        except Exception as e:
            if r.name == "wengert" or not r.is_grad or r.name.startswith("NumPy"):
                raise
            # a peer that cannot run this workload
            r.note = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
            r.fn = None
            continue
        r.first_call_s = time.perf_counter() - t0
    by = {r.name: r for r in w.rows}
    ref = by["wengert"].grad_of(outs["wengert"])
    hand = by["NumPy hand-written gradient"]
    hand_leaves = hand.grad_of(outs[hand.name])
    ok = True
    for r in w.rows:
        if r.fn is None or not r.is_grad:
            continue
        got = r.grad_of(outs[r.name])
        want, against = (hand_leaves, "hand-written") if r.name == "wengert" else (ref, "wengert")
        bad = compare(got, want)
        if bad is None:
            r.check = f"ok vs {against} ({max_rel_err(got, want):.1e})"
        else:
            r.check = f"MISMATCH vs {against}: {bad}"
            r.note = r.check
            r.fn = None
            ok = False
    return ok


def run_workload(w: Workload, settings: Settings) -> bool:
    ok = check_rows(w)
    timed = [(r.name, r.fn) for r in w.rows if r.fn is not None]
    ms = measure_interleaved(timed, settings)
    by_name = {m.name: m for m in ms}
    for r in w.rows:
        r.measurement = by_name.get(r.name)
    return ok


def _fmt_us(us: float) -> str:
    if us >= 1000:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def report(w: Workload) -> dict:
    base = next(r for r in w.rows if r.name == "NumPy forward").measurement.median_s
    head = f"({w.number}) {w.title}"
    print()
    print(head)
    print("    " + w.detail)
    lines = [("implementation", "median µs", "× NumPy fwd", "IQR µs", "first call ms", "check")]
    rows_json = []
    for r in w.rows:
        m = r.measurement
        if m is None:
            lines.append((r.name, "—", "—", "", "", r.note or "skipped"))
            rows_json.append({"name": r.name, "skipped": r.note or "skipped"})
            continue
        lo, hi = m.spread
        ratio = m.median_s / base
        lines.append(
            (
                r.name,
                _fmt_us(m.median_us),
                f"{ratio:.2f}",
                f"{_fmt_us(lo)}–{_fmt_us(hi)}",
                f"{r.first_call_s * 1e3:.1f}",
                r.check if r.is_grad else "",
            )
        )
        rows_json.append(
            {
                "name": r.name,
                "median_us": m.median_us,
                "ratio_to_numpy_forward": ratio,
                "iqr_us": [lo, hi],
                "first_call_ms": r.first_call_s * 1e3,
                "loops_per_sample": m.number,
                "samples": len(m.samples),
                "check": r.check,
            }
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for k, line in enumerate(lines):
        cells = [
            c.ljust(wd) if i in (0, 5) else c.rjust(wd)
            for i, (c, wd) in enumerate(zip(line, widths))
        ]
        print("    | " + " | ".join(cells) + " |")
        if k == 0:
            print("    |" + "|".join("-" * (wd + 2) for wd in widths) + "|")
    res: dict = {"number": w.number, "key": w.key, "title": w.title, "rows": rows_json}
    by = {r.name: r.measurement for r in w.rows}
    wm = by.get("wengert")
    if wm is not None and w.target is not None:
        ratio = wm.median_s / base
        verdict = "met" if ratio <= w.target else "MISSED"
        print(f"    target: wengert ≤ {w.target:g}× NumPy forward: {ratio:.2f}× — {verdict}")
        res["target"] = {"wengert_vs_numpy_forward_max": w.target, "measured": ratio}
    hm = by.get("NumPy hand-written gradient")
    if wm is not None and hm is not None:
        ratio = wm.median_s / hm.median_s
        line = f"    wengert / hand-written NumPy gradient: {ratio:.2f}×"
        if w.target_vs_hand is not None:
            verdict = "met" if ratio <= w.target_vs_hand else "MISSED"
            line += f" (target ≤ {w.target_vs_hand:g}× — {verdict})"
            res["target"] = {"wengert_vs_hand_written_max": w.target_vs_hand, "measured": ratio}
        print(line)
        res["wengert_vs_hand_written"] = ratio
    return res


def machine_info(peers: Peers) -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = cpu or line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu or "?",
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "wengert": wengert.__version__,
    }
    try:
        from threadpoolctl import threadpool_info

        info["numpy BLAS threads"] = [
            f"{d.get('internal_api')}:{d.get('num_threads')}" for d in threadpool_info()
        ]
    except ImportError:
        info["numpy BLAS threads"] = "library default"
    info.update(peers.versions)
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="few samples (a smoke run)")
    ap.add_argument("--only", default="", help="comma-separated workload numbers, e.g. 2,3")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument(
        "--skip", default="", help="comma-separated peers to leave out: autograd,torch,jax"
    )
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument("--compile", action="store_true", help="use torch.compile even with --quick")
    args = ap.parse_args(argv)

    settings = QUICK if args.quick else FULL
    only = [int(s) for s in args.only.split(",") if s.strip()] or sorted(WORKLOADS)
    for n in only:
        if n not in WORKLOADS:
            ap.error(f"--only: no workload {n} (there are {sorted(WORKLOADS)})")
    want_compile = not args.no_compile and (args.compile or not args.quick)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if skip - {"autograd", "torch", "jax"}:
        ap.error(f"--skip: unknown peers {sorted(skip - {'autograd', 'torch', 'jax'})}")
    peers = load_peers(want_compile, skip)

    info = machine_info(peers)
    print("wengert benchmarks — median time per call; ratios are to the NumPy forward pass")
    print("  " + ", ".join(f"{k}: {v}" for k, v in info.items()))
    print(
        f"  sampling: {settings.rounds} interleaved rounds × {settings.per_round} samples, "
        f"each ≥ {settings.min_sample_s * 1e3:g} ms, gc enabled"
    )
    for note in peers.notes:
        print("  note: " + note)

    results, all_ok = [], True
    for n in only:
        w = WORKLOADS[n](peers)
        all_ok &= run_workload(w, settings)
        results.append(report(w))

    if args.json:
        out = {"machine": info, "settings": vars(settings), "notes": peers.notes}
        out["quick"] = args.quick
        out["workloads"] = results
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.json}")
    if not all_ok:
        print("\nSome gradients did not match (see the check column).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
