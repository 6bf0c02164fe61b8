"""Contractions of wengert.numpy: matmul, einsum, tensordot, dot, inner, outer, vdot."""

import numpy as np
import pytest
from _checks import check, rng

import wengert.numpy as wnp
from wengert import check_grads, grad, jacfwd, jacrev


def check_jacobians(f, *args, holomorphic=False):
    nums = tuple(range(len(args)))
    jf = jacfwd(f, argnums=nums, holomorphic=holomorphic)(*args)
    jr = jacrev(f, argnums=nums, holomorphic=holomorphic)(*args)
    for a, b in zip(jf, jr):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def check_all(f, ref, *args, holomorphic=True):
    """Value, derivatives and Jacobians; complex Jacobians only for holomorphic ``f``."""
    np.testing.assert_allclose(f(*args), ref(*args), rtol=1e-12, atol=1e-12)
    check(f, *args)
    cplx = any(np.iscomplexobj(a) for a in args)
    if holomorphic or not cplx:
        check_jacobians(f, *args, holomorphic=cplx)


MATMUL_SHAPES = [
    ((3,), (3,)),
    ((3,), (3, 2)),
    ((2, 3), (3,)),
    ((2, 3), (3, 4)),
    ((4, 2, 3), (3, 2)),
    ((2, 3), (4, 3, 2)),
    ((4, 2, 3), (4, 3, 2)),
    ((2, 1, 2, 3), (4, 3, 2)),  # broadcast batch
    ((1, 2, 3), (2, 1, 3, 2)),
    ((3,), (2, 3, 4)),  # vector against a stack
    ((2, 4, 3), (3,)),
]


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES, ids=str)
def test_matmul(sa, sb):
    r = rng(1)
    a, b = r.standard_normal(sa), r.standard_normal(sb)
    check_all(wnp.matmul, np.matmul, a, b)
    check_all(lambda p, q: p @ q, np.matmul, a, b)
    check(lambda p: p @ b, a)
    check(lambda q: a @ q, b)
    check(lambda p: wnp.sin(p @ p.mT) if p.ndim > 1 else wnp.sin(p @ p), a)


def test_matmul_rejects_scalars():
    with pytest.raises(ValueError):
        grad(lambda a: wnp.matmul(a, np.ones(2)))(np.float64(1.0))


def test_matmul_complex():
    r = rng(2)
    a = r.standard_normal((2, 3)) + 1j * r.standard_normal((2, 3))
    b = r.standard_normal((3, 2)) + 1j * r.standard_normal((3, 2))
    check_all(wnp.matmul, np.matmul, a, b)
    check(lambda p: p @ b.real, a)


EINSUMS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),  # implicit output
    ("ij,ij", [(2, 3), (2, 3)]),  # implicit: all summed
    ("ba,ca", [(2, 3), (4, 3)]),  # implicit output in alphabetical order: 'bc'
    ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(3,), (2,)]),
    ("ij->ji", [(2, 3)]),
    ("ij->i", [(2, 3)]),  # a label summed within one operand only
    ("ij->", [(2, 3)]),
    ("ii->i", [(3, 3)]),  # repeated label: the diagonal
    ("ii->", [(3, 3)]),  # the trace
    ("ii", [(3, 3)]),
    ("iij->ji", [(3, 3, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 4)]),  # 3 operands
    ("ij,j,jk->k", [(2, 3), (3,), (3, 2)]),
    ("i,i,i->i", [(3,), (3,), (3,)]),
    ("...ij,...jk->...ik", [(4, 2, 3), (4, 3, 2)]),  # ellipsis
    ("...ij,...jk->...ik", [(2, 1, 2, 3), (4, 3, 2)]),  # ellipsis with broadcasting
    ("...ij,jk", [(4, 2, 3), (3, 2)]),  # ellipsis, implicit output
    ("i...,i...->...", [(3, 2, 2), (3, 1, 2)]),
    ("...i,...i->...", [(3,), (2, 3)]),
    ("i...->...", [(3, 2)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("ij,kj->ikj", [(2, 3), (2, 3)]),
    ("ii,ij->j", [(3, 3), (3, 2)]),
    ("ii,i->i", [(3, 3), (3,)]),
    ("iii->i", [(2, 2, 2)]),
    ("a...a->...", [(2, 3, 2)]),
    ("ij,ij->", [(2, 3), (1, 3)]),  # NumPy broadcasts a label of length one
    ("ij,jk->ik", [(2, 1), (3, 2)]),
    ("Ab, bC -> AC", [(2, 3), (3, 2)]),  # capitals and spaces
    ("i,j,k->ijk", [(2,), (3,), (2,)]),
]


@pytest.mark.parametrize("spec, shapes", EINSUMS, ids=[e[0] for e in EINSUMS])
def test_einsum(spec, shapes):
    r = rng(3)
    ops = [r.standard_normal(s) for s in shapes]
    check_all(lambda *xs: wnp.einsum(spec, *xs), lambda *xs: np.einsum(spec, *xs), *ops)
    # the second derivative needs a non-multilinear function
    check(lambda *xs: wnp.einsum(spec, *[wnp.sin(x) for x in xs]), *ops)


def test_einsum_with_constants_and_repeated_operand():
    r = rng(4)
    a, b = r.standard_normal((3, 3)), r.standard_normal((3,))
    check_all(
        lambda x: wnp.einsum("ij,j,i->", x, b, b), lambda x: np.einsum("ij,j,i->", x, b, b), a
    )
    check_all(lambda x: wnp.einsum("ij,jk->ik", x, x), lambda x: x @ x, a)
    check_all(lambda y: wnp.einsum("ij,j,i->", a, y, y), lambda y: y @ a @ y, b)


def test_einsum_complex():
    r = rng(5)
    a = r.standard_normal((2, 3)) + 1j * r.standard_normal((2, 3))
    b = r.standard_normal((3,)) + 1j * r.standard_normal((3,))
    check_all(lambda x, y: wnp.einsum("ij,j->i", x, y), lambda x, y: x @ y, a, b)


def test_einsum_errors():
    with pytest.raises(ValueError):
        wnp.einsum("ij,jk->ik", np.ones((2, 2)))
    with pytest.raises(TypeError):
        wnp.einsum(np.ones(2), [0], np.ones(2), [0])


TENSORDOTS = [
    ((2, 3, 4), (3, 4, 2), 2),
    ((2, 3), (3, 4), 1),
    ((2, 3), (4, 5), 0),
    ((2, 3, 4), (4, 3), ([1, 2], [1, 0])),
    ((2, 3, 4), (4, 2), (-1, 0)),
    ((2, 3, 4), (3, 2), ([1], [0])),
    ((3, 4), (4, 3), ((0, 1), (1, 0))),
]


@pytest.mark.parametrize("sa, sb, axes", TENSORDOTS, ids=str)
def test_tensordot(sa, sb, axes):
    r = rng(6)
    a, b = r.standard_normal(sa), r.standard_normal(sb)
    f = lambda x, y: wnp.tensordot(x, y, axes)
    check_all(f, lambda x, y: np.tensordot(x, y, axes), a, b)
    check(lambda x, y: f(wnp.sin(x), y * y), a, b)


DOTS = [
    ((), ()),
    ((), (3,)),
    ((2, 3), ()),
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 2)),
    ((2, 3), (3, 2)),
    ((2, 2, 3), (3,)),
    ((3,), (2, 3, 2)),
    ((2, 2, 3), (3, 4)),
    ((2, 3), (2, 3, 2)),
    ((2, 2, 3), (2, 3, 2)),
]


@pytest.mark.parametrize("sa, sb", DOTS, ids=str)
def test_dot(sa, sb):
    r = rng(7)
    a, b = np.asarray(r.standard_normal(sa)), np.asarray(r.standard_normal(sb))
    check_all(wnp.dot, np.dot, a, b)
    check(lambda x, y: wnp.dot(wnp.sin(x), y * y), a, b)
    if a.ndim:
        check(lambda x: x.dot(b), a)


@pytest.mark.parametrize("sa, sb", [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((2, 3), (4, 3))])
def test_inner(sa, sb):
    r = rng(8)
    a, b = np.asarray(r.standard_normal(sa)), np.asarray(r.standard_normal(sb))
    check_all(wnp.inner, np.inner, a, b)


@pytest.mark.parametrize("sa, sb", [((3,), (2,)), ((2, 2), (3,)), ((), (2,))])
def test_outer(sa, sb):
    r = rng(9)
    a, b = np.asarray(r.standard_normal(sa)), np.asarray(r.standard_normal(sb))
    check_all(wnp.outer, np.outer, a, b)


def test_vdot():
    r = rng(10)
    a, b = r.standard_normal((2, 3)), r.standard_normal((2, 3))
    check_all(wnp.vdot, np.vdot, a, b)
    za = a + 1j * b
    zb = b - 0.5j * a
    check_all(wnp.vdot, np.vdot, za, zb, holomorphic=False)  # conj(a): not holomorphic


def test_float32():
    r = rng(11)
    a, b = (
        r.standard_normal((2, 3)).astype(np.float32),
        r.standard_normal((3, 4)).astype(np.float32),
    )
    fs = [
        lambda x, y: x @ y,
        lambda x, y: wnp.einsum("ij,jk->ik", x, y),
        lambda x, y: wnp.einsum("ij,jk", x, y),
        lambda x, y: wnp.tensordot(x, y, 1),
        lambda x, y: wnp.dot(x, y),
        lambda x, y: wnp.einsum("ii->i", x @ y[:, :2]),
        lambda x, y: wnp.outer(x, y),
        lambda x, y: wnp.matmul(x[0], y),
    ]
    for f in fs:
        assert f(a, b).dtype == np.float32
        g = lambda x, y: wnp.sum(wnp.sin(f(x, y)))
        ga, gb = grad(g, argnums=(0, 1))(a, b)
        assert ga.dtype == gb.dtype == np.float32
        ja, jb = jacfwd(f, argnums=(0, 1))(a, b)
        assert ja.dtype == jb.dtype == np.float32
        assert jacfwd(grad(g))(a, b).dtype == np.float32
        check_grads(g, (a, b), order=2)


def check_hessians(f, x):
    """The four ways to a Hessian agree (three carry batched tangents through the rules)."""
    h = jacrev(jacrev(f))(x)
    for other in (jacfwd(jacrev(f)), jacfwd(jacfwd(f)), jacrev(jacfwd(f))):
        np.testing.assert_allclose(other(x), h, rtol=1e-9, atol=1e-10)


HESSIANS = {
    "matmul": lambda x: wnp.sum(wnp.sin(x @ x.T)),
    "matmul vectors": lambda x: (
        wnp.sum(wnp.sin(x[0] @ x.T)) + wnp.sum(wnp.cos(x @ x[1])) + wnp.sin(x[0] @ x[1])
    ),
    "matmul stacked": lambda x: wnp.sum(wnp.sin(x[None, :, :2] @ wnp.stack([x, x * 2])[:, :2])),
    "einsum": lambda x: wnp.sum(wnp.sin(wnp.einsum("ij,kj->ik", x, x))),
    "einsum diagonal, trace": lambda x: (
        wnp.sum(wnp.sin(wnp.einsum("ii->i", x[:, :3]))) + wnp.einsum("ii", x[:, 1:] * x[:, 1:])
    ),
    "einsum ellipsis": lambda x: wnp.sum(wnp.sin(wnp.einsum("...ij,jk", x[None], x.T))),
    "einsum 3 operands": lambda x: wnp.sin(wnp.einsum("ij,jk,ki->", x, x.T, x @ x.T)),
    "einsum ij->i": lambda x: wnp.sum(wnp.sin(wnp.einsum("ij->i", x * x))),
    "tensordot": lambda x: wnp.sum(wnp.sin(wnp.tensordot(x, x, ([0], [0])))),
    "dot": lambda x: wnp.sum(wnp.sin(wnp.dot(x[None], x.T))),
    "outer, inner, vdot": lambda x: (
        wnp.sum(wnp.sin(wnp.outer(x[0], x[1])))
        + wnp.sum(wnp.sin(wnp.inner(x, x)))
        + wnp.sin(wnp.vdot(x, x))
    ),
}


@pytest.mark.parametrize("f", HESSIANS.values(), ids=HESSIANS.keys())
def test_hessians(f):
    check_hessians(f, rng(12).uniform(0.5, 1.5, (3, 4)))
