"""Functional updates (``at(x)[idx].set/add/multiply``) and in-place assignment ``x[idx] = v`` on
traced arrays: values as NumPy's, derivatives to order 2 in both modes, aliasing, views."""

import numpy as np
import pytest
from _checks import rng

import wengert.numpy as wnp
from wengert import check_grads, grad, hessian, jacfwd, jacrev, jvp, vjp
from wengert.numpy._update import ViewAssignmentError


def check(f, *args):
    check_grads(f, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    cts = pull(np.ones_like(out))
    for ct, x in zip(cts, args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)
    if any(np.iscomplexobj(a) for a in args):
        return
    nums = tuple(range(len(args)))
    for a, b in zip(jacfwd(f, argnums=nums)(*args), jacrev(f, argnums=nums)(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


X = rng().standard_normal((3, 4))
# index -> shape of the value that fills the selection (broadcast where smaller)
INDICES = {
    "int": (1, (4,)),
    "negative int": (-1, ()),
    "element": ((2, -1), ()),
    "slice": (slice(1, None), (2, 4)),
    "slice with step, row value": ((slice(None), slice(None, None, 2)), (2,)),
    "ellipsis": ((Ellipsis, 1), (3,)),
    "none": ((None, 0), (1, 4)),
    "int array": (np.array([2, 0]), (2, 4)),
    "repeated rows": (np.array([1, 1, 0]), (3, 4)),
    "repeated elements": ((np.array([0, 0, 2, 0]), np.array([1, 1, 3, 1])), (4,)),
    "array then slice": ((np.array([2, 0]), slice(1, 3)), (2, 2)),
    "arrays separated by slice": ((np.array([0, 2]), slice(None), ...), (2, 4)),
    "boolean mask": (X > 0, (int((X > 0).sum()),)),
    "boolean row mask": (np.array([True, False, True]), (1, 4)),
    "everything": (Ellipsis, (3, 4)),
    "empty": (slice(2, 2), (0, 4)),
}


def _numpy_update(x, idx, v, mode):
    out = np.array(x, copy=True)
    if mode == "set":
        out[idx] = v
    elif mode == "add":
        np.add.at(out, idx, v)
    else:
        np.multiply.at(out, idx, v)
    return out


@pytest.mark.parametrize("mode", ["set", "add", "multiply"])
@pytest.mark.parametrize("name", INDICES)
def test_at_updates(name, mode):
    idx, vshape = INDICES[name]
    if isinstance(idx, tuple) and idx and idx[-1] is Ellipsis:
        idx = idx[:-1]
    v = rng(1).uniform(0.5, 1.5, vshape)
    f = lambda x, val: getattr(wnp.at(x)[idx], mode)(val)
    np.testing.assert_array_equal(f(X, v), _numpy_update(X, idx, v, mode))
    check(f, X, v)


def test_at_values_of_repeated_positions():
    x = np.zeros(4)
    idx = np.array([1, 1, 3, 1])
    v = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(wnp.at(x)[idx].set(v), [0, 4, 0, 3])  # the last one wins
    np.testing.assert_array_equal(wnp.at(x)[idx].add(v), [0, 7, 0, 3])  # all are added
    np.testing.assert_array_equal(wnp.at(x + 1)[idx].multiply(v), [1, 8, 1, 3])
    # set: only the value that was kept gets a cotangent
    gx, gv = grad(lambda a, b: wnp.sum(wnp.at(a)[idx].set(b) * np.arange(4.0)), argnums=(0, 1))(
        x, v
    )
    np.testing.assert_array_equal(gx, [0, 0, 2, 0])
    np.testing.assert_array_equal(gv, [0, 0, 3, 1])
    _, t = jvp(lambda b: wnp.at(x)[idx].set(b), (v,), (np.ones(4),))
    np.testing.assert_array_equal(t, [0, 1, 0, 1])
    # multiply: ∂/∂v_k = x · (the other values at that position)
    gv = grad(lambda b: wnp.sum(wnp.at(x + 2)[idx].multiply(b)))(v)
    np.testing.assert_allclose(gv, [2 * 2 * 4, 2 * 1 * 4, 2, 2 * 1 * 2])


def test_at_other_methods_and_plain_input_untouched():
    x = np.arange(5.0)
    keep = x.copy()
    np.testing.assert_array_equal(wnp.at(x)[1:3].subtract(1.0), [0, 0, 1, 3, 4])
    np.testing.assert_array_equal(wnp.at(x)[1:3].divide(2.0), [0, 0.5, 1, 3, 4])
    np.testing.assert_array_equal(wnp.at(x)[np.array([4, 0])].get(), [4, 0])
    np.testing.assert_array_equal(wnp.at(x)[0].set(9), [9, 1, 2, 3, 4])
    np.testing.assert_array_equal(x, keep)  # never mutated
    check(lambda a, b: wnp.at(a)[1:3].subtract(b) + wnp.at(a)[::2].divide(b[0] + 2), x, x[:2])
    check(lambda a: wnp.at(a)[np.array([1, 2])].get() * 2, x)
    xi = np.arange(5)  # an integer array with plain values: NumPy's own semantics
    np.testing.assert_array_equal(wnp.at(xi)[0].set(7), [7, 1, 2, 3, 4])


def test_at_dtypes_and_errors():
    x32 = np.ones(4, np.float32)
    out = wnp.at(x32)[1:].set(np.array([1.0, 2.0, 3.0]))
    assert out.dtype == np.float32
    g = grad(lambda a, b: wnp.sum(wnp.at(a)[1:].multiply(b) ** 2), argnums=(0, 1))(
        x32, np.ones(3, np.float32)
    )
    assert g[0].dtype == g[1].dtype == np.float32
    z = np.ones(3, complex)
    check(lambda a, b: wnp.at(a)[np.array([0, 0, 2])].add(b * 1j), z, np.array([0.5, 1.0, 2.0]))
    check(lambda a, b: wnp.at(a)[1:].set(b), z, np.array([2 + 1j, 3j]))
    with pytest.raises(TypeError, match="complex"):
        wnp.at(np.ones(3))[0].set(1j)
    with pytest.raises(TypeError, match="dtype int"):
        grad(lambda b: wnp.sum(wnp.at(np.arange(3))[0].set(b)))(np.float64(1.0))
    with pytest.raises(ValueError, match="broadcast"):
        wnp.at(np.ones((3, 4)))[0].set(np.ones(3))
    with pytest.raises(IndexError):
        wnp.at(np.ones(3))[5].set(1.0)


# ---------------------------------------------------------------------------------------------
# x[idx] = v on a traced x
# ---------------------------------------------------------------------------------------------


def f_loop(x):
    """A NumPy-style loop that fills a traced array in place."""
    y = x * 1.0
    for i in range(1, y.shape[0]):
        y[i] = y[i - 1] * wnp.sin(x[i]) + x[i]
    return y


def test_setitem_loop_all_modes():
    x = rng(2).standard_normal(5)
    check(f_loop, x)
    check_grads(lambda a: wnp.sum(f_loop(a) ** 2), (x,), order=3)
    h = hessian(lambda a: wnp.sum(f_loop(a)))(x)
    np.testing.assert_allclose(h, jacrev(jacfwd(lambda a: wnp.sum(f_loop(a))))(x), rtol=1e-10)


@pytest.mark.parametrize("name", INDICES)
def test_setitem_matches_at_set(name):
    idx, vshape = INDICES[name]
    if isinstance(idx, tuple) and idx and idx[-1] is Ellipsis:
        idx = idx[:-1]
    v = rng(3).uniform(0.5, 1.5, vshape)

    def f(x, val):
        y = x * 1.0
        y[idx] = val * 2.0
        return y

    np.testing.assert_array_equal(f(X, v), _numpy_update(X, idx, v * 2.0, "set"))
    check(f, X, v)


def test_setitem_keeps_the_old_value_for_earlier_uses_and_aliases():
    def f(x):
        y = x * 2.0
        before = y * 1.0  # uses the old y
        alias = y  # the same object: it sees the assignment, as in NumPy
        y[0] = 100.0
        y[1] += x[2]  # x[idx] += v: y.__setitem__(1, y[1] + x[2])
        return before, alias, y

    x = np.array([1.0, 2.0, 3.0])
    before, alias, y = f(x)
    np.testing.assert_array_equal(before, [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(alias, [100.0, 7.0, 6.0])
    np.testing.assert_array_equal(y, alias)
    (gb, ga, gy) = (jacrev(lambda a, k=k: f(a)[k])(x) for k in range(3))
    np.testing.assert_array_equal(gb, 2 * np.eye(3))
    np.testing.assert_array_equal(ga, [[0, 0, 0], [0, 2, 1], [0, 0, 2]])
    np.testing.assert_array_equal(gy, ga)
    for k in range(3):
        np.testing.assert_array_equal(jacfwd(lambda a, k=k: f(a)[k])(x), (gb, ga, gy)[k])


def _fill(x):
    y = x * 0.0
    y[:2] = [x[1], x[0] * x[2]]
    y[2] = 3.0
    return y


def test_setitem_traced_values_in_lists_and_scalars():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(_fill(x), [2.0, 3.0, 3.0])
    np.testing.assert_array_equal(jacrev(_fill)(x), [[0, 1, 0], [3, 0, 1], [0, 0, 0]])
    check(_fill, x)


def test_copy_makes_a_new_array():
    def f(x):
        y = x * 1.0
        z = y.copy()
        w = wnp.copy(y)
        z[0] = 0.0
        w[1] = 0.0
        return y, z, w

    x = np.array([1.0, 2.0, 3.0])
    y, z, w = f(x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(z, [0, 2, 3])
    np.testing.assert_array_equal(w, [1, 0, 3])
    jy = jacrev(lambda a: f(a)[0])(x)
    np.testing.assert_array_equal(jy, np.eye(3))
    check(lambda a: f(a)[1], x)
    check(lambda a: f(a)[2], x)
    check(wnp.copy, x)


@pytest.mark.parametrize(
    "make_view",
    [
        lambda y: y[:2],
        lambda y: y[1],
        lambda y: y.reshape(6),
        lambda y: y.T,
        lambda y: wnp.swapaxes(y, 0, 1),
    ],
    ids=["slice", "row", "reshape", "transpose", "swapaxes"],
)
def test_setitem_into_a_view_raises(make_view):
    def f(x):
        y = x * 1.0
        v = make_view(y)
        v[0] = 0.0
        return wnp.sum(y)

    x = np.ones((2, 3))
    with pytest.raises(ViewAssignmentError, match="view"):
        grad(f)(x)
    with pytest.raises(ViewAssignmentError, match="view"):
        jvp(f, (x,), (x,))
    with pytest.raises(ViewAssignmentError, match="view"):
        jacfwd(grad(f))(x)


def test_setitem_into_copies_is_fine():
    def f(x):
        y = x * 1.0
        a = y[np.array([0, 1])]  # advanced indexing copies
        a[0] = 0.0
        b = y[:, np.array([2, 0])]  # a copy, even where NumPy's result has a base
        b[0, 0] = 0.0
        c = y[:1].copy()
        c[0] = 5.0
        d = y.reshape(6) * 1.0
        d[0] = 1.0
        return wnp.sum(a) + wnp.sum(b) + wnp.sum(c) + wnp.sum(d) + wnp.sum(y)

    x = rng(4).standard_normal((2, 3))
    check(f, x)


def test_setitem_on_an_argument():
    def f(x):
        x[0] = 0.0
        return wnp.sum(x * x)

    x = np.array([1.0, 2.0])
    # reverse mode needs the argument unchanged to report its derivative
    with pytest.raises(TypeError, match="argument"):
        grad(f)(x)
    # forward mode rebinds it (the caller's array is never modified)
    out, t = jvp(f, (x,), (np.ones(2),))
    assert out == 4.0 and t == 4.0
    np.testing.assert_array_equal(x, [1.0, 2.0])
    g = grad(lambda a: f(a.copy()))(x)
    np.testing.assert_array_equal(g, [0.0, 4.0])


def test_setitem_with_a_value_from_an_inner_transformation():
    def outer(x):
        y = x * 1.0

        def inner(z):
            y[0] = z  # z is traced by the inner grad, y by the outer one
            return wnp.sum(y)

        return grad(inner)(x[1])

    with pytest.raises(TypeError, match="nested"):
        grad(outer)(np.array([1.0, 2.0]))
    # a value from an outer transformation may be assigned into an inner array
    def outer_ok(x):
        def inner(z):
            y = z * 1.0
            y[0] = x[1] ** 2
            return wnp.sum(y * z)

        return wnp.sum(grad(inner)(x * 2.0))

    check_grads(outer_ok, (np.array([1.0, 2.0]),), order=2)


def test_plain_array_assignment_of_a_traced_value_is_refused():
    def f(x):
        out = np.zeros(2)
        out[0] = x[0]  # NumPy converts without asking: refused with a pointer to at()/array()
        return out

    with pytest.raises((TypeError, ValueError)):
        grad(lambda a: np.sum(f(a)))(np.ones(2))


def test_flatten_copies_and_ravel_is_a_view():
    def f(x):
        y = x * 1.0
        flat = y.flatten()  # NumPy's flatten always copies
        flat[0] = 0.0
        return wnp.sum(flat) + wnp.sum(y)

    check(f, np.ones((2, 2)))

    def g(x):
        r = (x * 1.0).ravel()  # a view of a contiguous array
        r[0] = 0.0
        return wnp.sum(r)

    with pytest.raises(ViewAssignmentError):
        grad(g)(np.ones((2, 2)))


def test_array_of_a_tracer_is_a_copy_so_assignment_leaves_the_original():
    def f(y):
        z = wnp.array(y)  # a new array, as in NumPy
        z[0] = 0.0
        return y * 1.0, z

    (y_out, z_out), (ty, tz) = jvp(f, (np.ones(3),), (np.ones(3),))
    np.testing.assert_array_equal(y_out, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(ty, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(z_out, [0.0, 1.0, 1.0])
    np.testing.assert_array_equal(tz, [0.0, 1.0, 1.0])
