"""Property tests: for random shapes and random compositions of operations, reverse mode is
the transpose of forward mode, ⟨vjp(u), v⟩ = ⟨u, jvp(v)⟩, and the Jacobians agree."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import wengert.numpy as wnp
from wengert import grad, jacfwd, jacrev, jvp, tree_flatten, tree_unflatten, vjp
from wengert.tree import tree_structure

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def _matmul_const(y, x, b, k):
    n = y.shape[-1]
    c = np.linspace(-1.0, 1.0, n * n).reshape(n, n) + np.eye(n)
    return wnp.matmul(y, c)


# Each operation maps (y, x, b, k) to a new y; x is the first input (fan-out: it is used
# again), b a second input broadcasting against x's last axis, k a small integer parameter.
# y keeps a shape that broadcasts against x.
OPS = [
    ("sin", lambda y, x, b, k: wnp.sin(y)),
    ("tanh", lambda y, x, b, k: 1.5 * wnp.tanh(y)),
    ("exp", lambda y, x, b, k: wnp.exp(0.3 * y)),
    ("square", lambda y, x, b, k: y * y),
    ("times_x", lambda y, x, b, k: y * x),
    ("plus_x", lambda y, x, b, k: y + x),
    ("times_b", lambda y, x, b, k: y * b),
    ("rational", lambda y, x, b, k: x / (1.0 + y * y)),
    ("power", lambda y, x, b, k: (1.0 + y * y) ** 1.5),
    ("log", lambda y, x, b, k: wnp.log1p(y * y)),
    ("sum_axis", lambda y, x, b, k: wnp.sum(y, axis=k % y.ndim, keepdims=True)),
    ("mean_last", lambda y, x, b, k: wnp.mean(y, axis=-1, keepdims=True)),
    ("reshape", lambda y, x, b, k: wnp.reshape(wnp.reshape(y, (-1,)), y.shape)),
    ("transpose2", lambda y, x, b, k: wnp.transpose(wnp.transpose(y) * 2.0)),
    ("reverse", lambda y, x, b, k: y[::-1]),
    ("matmul", _matmul_const),
    ("where", lambda y, x, b, k: wnp.where(y > 0, y, 0.1 * y)),
    ("maximum", lambda y, x, b, k: wnp.maximum(y, x)),
    ("concat_slice", lambda y, x, b, k: wnp.concatenate([y, 2.0 * y], axis=0)[y.shape[0] :]),
    ("stack_sum", lambda y, x, b, k: wnp.sum(wnp.stack([y, wnp.sin(y)]), axis=0)),
    ("abs", lambda y, x, b, k: wnp.abs(y - 0.1)),
    ("prod_last", lambda y, x, b, k: wnp.prod(1.0 + 0.1 * y, axis=-1, keepdims=True)),
]

shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)
programs = st.lists(
    st.tuples(st.integers(0, len(OPS) - 1), st.integers(0, 2)), min_size=1, max_size=7
)


def build(program):
    def f(x, b):
        y = x
        for i, k in program:
            y = OPS[i][1](y, x, b, k)
        return y

    return f


def finite(f, x, b):
    """Compositions can overflow (exp of a square of a square...): skip those examples."""
    with np.errstate(all="ignore"):
        out = np.asarray(f(x, b))
    ok = bool(np.all(np.isfinite(out))) and float(np.max(np.abs(out), initial=0.0)) < 1e8
    assume(ok)


def inputs(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, shape)
    b = rng.uniform(-1.5, 1.5, shape[-1:])
    return rng, x, b


def inner(a, b):
    return sum(float(np.sum(np.asarray(p) * np.asarray(q))) for p, q in zip(a, b))


@SETTINGS
@given(shape=shapes, program=programs, seed=st.integers(0, 2**16))
def test_vjp_is_transpose_of_jvp(shape, program, seed):
    f = build(program)
    rng, x, b = inputs(shape, seed)
    finite(f, x, b)
    vx, vb = rng.standard_normal(x.shape), rng.standard_normal(b.shape)
    out, t = jvp(f, (x, b), (vx, vb))
    out2, pull = vjp(f, x, b)
    np.testing.assert_allclose(out, out2)
    u = rng.standard_normal(np.shape(out))
    cx, cb = pull(u)
    assert cx.shape == x.shape and cb.shape == b.shape
    lhs = inner([cx, cb], [vx, vb])
    rhs = inner([u], [t])
    assert abs(lhs - rhs) <= 1e-9 * (1.0 + abs(lhs) + abs(rhs)), (lhs, rhs)


@SETTINGS
@given(shape=shapes, program=programs, seed=st.integers(0, 2**16))
def test_jacfwd_equals_jacrev(shape, program, seed):
    f = build(program)
    _, x, b = inputs(shape, seed)
    finite(f, x, b)
    Jf = jacfwd(f, argnums=(0, 1))(x, b)
    Jr = jacrev(f, argnums=(0, 1))(x, b)
    for a, c in zip(Jf, Jr):
        assert a.shape == c.shape
        np.testing.assert_allclose(a, c, rtol=1e-9, atol=1e-12)


SMOOTH = [i for i, (name, _) in enumerate(OPS) if name not in ("where", "maximum", "abs")]
smooth_programs = st.lists(
    st.tuples(st.sampled_from(SMOOTH), st.integers(0, 2)), min_size=1, max_size=5
)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(shape=shapes, program=smooth_programs, seed=st.integers(0, 2**16))
def test_gradient_matches_finite_differences(shape, program, seed):
    f = build(program)
    rng, x, b = inputs(shape, seed)
    finite(f, x, b)
    loss = lambda x: wnp.sum(f(x, b))
    g = grad(loss)(x)
    v = rng.standard_normal(x.shape)
    eps = 1e-6
    fd = (np.sum(f(x + eps * v, b)) - np.sum(f(x - eps * v, b))) / (2 * eps)
    ad = float(np.sum(g * v))
    assert abs(ad - fd) <= 1e-5 * (1.0 + abs(fd)), (ad, fd)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(shape=shapes, program=smooth_programs, seed=st.integers(0, 2**16))
def test_second_order_symmetry(shape, program, seed):
    # ⟨v, H w⟩ = ⟨w, H v⟩ with H·v by forward-over-reverse
    f = build(program)
    rng, x, b = inputs(shape, seed)
    finite(f, x, b)
    loss = lambda x: wnp.sum(f(x, b))
    v, w = rng.standard_normal(x.shape), rng.standard_normal(x.shape)
    Hv = jvp(grad(loss), (x,), (v,))[1]
    Hw = jvp(grad(loss), (x,), (w,))[1]
    a, c = float(np.sum(w * Hv)), float(np.sum(v * Hw))
    assert abs(a - c) <= 1e-8 * (1.0 + abs(a) + abs(c)), (a, c)


leaves = st.one_of(st.floats(-10, 10), st.integers(-5, 5), st.none(), st.just(np.arange(3.0)))
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.text("abc", min_size=1, max_size=2), children, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(tree=trees)
def test_tree_flatten_unflatten_roundtrip(tree):
    leaves_, treedef = tree_flatten(tree)
    rebuilt = tree_unflatten(treedef, leaves_)
    assert tree_structure(rebuilt) == treedef
    again = tree_flatten(rebuilt)[0]
    assert len(again) == len(leaves_) and all(a is b for a, b in zip(again, leaves_))
    assert all(v is not None for v in leaves_)  # None is an empty container, not a leaf
