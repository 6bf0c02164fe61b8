"""The dlarray class: construction, labels, helpers, NumPy protocol, label rules, tracing."""

import numpy as np
import pytest

import wengert
import wengert.numpy as wnp
from wengert.dl import dims, dlarray, extractdata, finddim, isdlarray, stripdims
from wengert.dl._dlarray import _wrap

rng = np.random.default_rng(0)


def r(*shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------------------------
# Construction and validation
# ---------------------------------------------------------------------------------------------


def test_matlab_example_ts_becomes_st():
    a = r(3, 4)
    x = dlarray(a, "TS")
    assert dims(x) == "ST" and x.fmt == "ST"
    assert x.shape == (4, 3)
    np.testing.assert_array_equal(extractdata(x), a.T)


@pytest.mark.parametrize(
    "fmt, shape, want, perm",
    [
        ("TCB", (2, 3, 4), "CBT", (1, 2, 0)),
        ("BSSC", (2, 5, 6, 3), "SSCB", (1, 2, 3, 0)),
        ("UCS", (2, 3, 4), "SCU", (2, 1, 0)),
        ("SCBTU", (1, 2, 3, 4, 5), "SCBTU", (0, 1, 2, 3, 4)),
        ("usb", (2, 3, 4), "SBU", (1, 2, 0)),  # lower case accepted
    ],
)
def test_canonical_permutation(fmt, shape, want, perm):
    a = r(*shape)
    x = dlarray(a, fmt)
    assert x.fmt == want
    np.testing.assert_array_equal(extractdata(x), np.transpose(a, perm))


def test_repeated_s_and_u_keep_their_relative_order():
    a = r(2, 3, 4, 5)
    x = dlarray(a, "SCSU")  # the two S's: axis 0 then axis 2
    assert x.fmt == "SSCU"
    np.testing.assert_array_equal(extractdata(x), np.transpose(a, (0, 2, 1, 3)))


def test_longer_format_appends_singletons():
    x = dlarray(r(3, 4), "CBT")
    assert x.shape == (3, 4, 1) and x.fmt == "CBT"
    y = dlarray(r(5), "TC")  # (5,) as T, then a singleton C; canonical CT
    assert y.shape == (1, 5) and y.fmt == "CT"
    s = dlarray(2.0, "B")
    assert s.shape == (1,) and s.fmt == "B"


def test_vector_with_one_label_stays_1d():
    x = dlarray(np.arange(4.0), "C")
    assert x.shape == (4,) and x.fmt == "C"


@pytest.mark.parametrize(
    "fmt, match",
    [
        ("SX", "unknown label"),
        ("CCB", "more than one 'C'"),
        ("BSB", "more than one 'B'"),
        ("TT", "more than one 'T'"),
        ("C", "labels 1 dimension"),
    ],
)
def test_format_errors(fmt, match):
    with pytest.raises(ValueError, match=match):
        dlarray(r(3, 4), fmt)


def test_format_must_be_a_string():
    with pytest.raises(TypeError, match="string"):
        dlarray(r(3), 3)


def test_dtypes_kept_and_integers_refused():
    assert dlarray(r(3, dtype=np.float32)).dtype == np.float32
    assert dlarray(r(3)).dtype == np.float64
    assert dlarray(np.array([True, False]), "C").dtype == bool
    assert dlarray(np.array([1 + 2j])).dtype == np.complex128
    with pytest.raises(TypeError, match="integer"):
        dlarray(np.arange(3))
    with pytest.raises(TypeError, match="astype"):
        dlarray(np.arange(3, dtype=np.int32), "C")
    with pytest.raises(TypeError):
        dlarray(np.array(["a"]))
    # Python numbers are doubles, as MATLAB's literals
    assert dlarray([1, 2, 3]).dtype == np.float64
    assert dlarray(3).dtype == np.float64 and dlarray(3).shape == ()


def test_construction_copies_user_data():
    a = r(3, 2)
    x = dlarray(a, "CB")
    a[0, 0] = 99.0
    assert extractdata(x)[0, 0] != 99.0


def test_relabel_a_dlarray():
    x = dlarray(r(3, 4), "CB")
    y = dlarray(x)
    assert y.fmt == "CB" and y is not x
    z = dlarray(x, "BC")  # applied to the stored (C, B) data: now canonical "CB" of its transpose
    assert z.fmt == "CB" and z.shape == (4, 3)
    np.testing.assert_array_equal(extractdata(z), extractdata(x).T)
    assert dlarray(x, "").fmt == ""


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def test_helpers():
    x = dlarray(r(2, 3, 4, 5), "SSCB")
    assert isdlarray(x) and not isdlarray(np.ones(2))
    assert finddim(x, "S") == [0, 1] and finddim(x, "C") == [2] and finddim(x, "T") == []
    assert finddim(x, "b") == [3]
    s = stripdims(x)
    assert s.fmt == "" and dims(s) == "" and s.shape == x.shape
    p = stripdims(x, "CBSS")
    assert p.fmt == "" and p.shape == (4, 5, 2, 3)
    np.testing.assert_array_equal(extractdata(p), np.transpose(extractdata(x), (2, 3, 0, 1)))
    with pytest.raises(ValueError, match="labels of the dlarray"):
        stripdims(x, "CBS")
    with pytest.raises(ValueError, match="one of"):
        finddim(x, "Q")
    for f in (dims, stripdims):
        with pytest.raises(TypeError, match="dlarray"):
            f(np.ones(2))
    with pytest.raises(TypeError, match="dlarray"):
        finddim(np.ones(2), "C")
    np.testing.assert_array_equal(extractdata(np.ones(2)), np.ones(2))


def test_properties_and_repr():
    x = dlarray(r(3, 4, dtype=np.float32), "CB")
    assert (x.shape, x.ndim, x.size, x.dtype, len(x)) == ((3, 4), 2, 12, np.float32, 3)
    assert "fmt='CB'" in repr(x) and "float32" in repr(x)
    assert "unformatted" in repr(stripdims(x))
    assert float(dlarray(2.5)) == 2.5 and int(dlarray(3.0)) == 3
    assert bool(dlarray(1.0))
    np.testing.assert_array_equal(np.asarray(x), extractdata(x))
    assert [e.shape for e in x] == [(4,)] * 3


# ---------------------------------------------------------------------------------------------
# Element-wise label rules
# ---------------------------------------------------------------------------------------------


def test_elementwise_keeps_labels_and_float32():
    x = dlarray(r(3, 4, dtype=np.float32), "CB")
    for y in (np.exp(x), x * 2 + 1, -x, abs(x), x**2, 2.0**x, x / 3, np.tanh(x), wnp.sin(x)):
        assert isdlarray(y) and y.fmt == "CB" and y.dtype == np.float32
    np.testing.assert_allclose(extractdata(np.exp(x)), np.exp(extractdata(x)))
    c = x > 0
    assert c.fmt == "CB" and c.dtype == bool
    np.testing.assert_array_equal(extractdata(c), extractdata(x) > 0)
    assert (~c).fmt == "CB" and (c & c).dtype == bool


def test_binary_aligns_by_label():
    a = dlarray(r(2, 3, 5), "SCB")
    b = dlarray(r(3), "C")
    out = a + b
    assert out.fmt == "SCB" and out.shape == (2, 3, 5)
    np.testing.assert_allclose(extractdata(out), extractdata(a) + extractdata(b)[None, :, None])
    # commutative, and with numpy on the left
    np.testing.assert_allclose(extractdata(b + a), extractdata(out))
    c = dlarray(r(3, 7), "CT")
    u = a * c
    assert u.fmt == "SCBT" and u.shape == (2, 3, 5, 7)
    np.testing.assert_allclose(
        extractdata(u), extractdata(a)[..., None] * extractdata(c)[None, :, None, :]
    )


def test_binary_with_unformatted_operands():
    a = dlarray(r(3, 4), "CB")
    n = r(3, 4)
    for out in (a + n, n + a, a + stripdims(a), a + 1.0, np.float64(2) * a):
        assert out.fmt == "CB"
    assert (a + np.ones((3, 1))).fmt == "CB"
    with pytest.raises(ValueError, match="has 1 dimension"):
        a + np.ones(3)  # MATLAB would align a column; NumPy the last axis: refuse to guess
    with pytest.raises(ValueError, match="different formats"):
        np.where(np.ones((3, 4, 1)) > 0, a, dlarray(r(3), "C"))
    u = stripdims(a) + np.ones(4)  # unformatted: plain NumPy broadcasting
    assert u.fmt == "" and u.shape == (3, 4)


def test_ufunc_out_refused_and_tuple_results():
    a = dlarray(r(3), "C")
    with pytest.raises(TypeError, match="in\\s+place|not written"):
        np.exp(a, out=np.empty(3))
    frac, whole = np.modf(a)
    assert frac.fmt == "C" and whole.fmt == "C"


# ---------------------------------------------------------------------------------------------
# Reductions, shapes, indexing
# ---------------------------------------------------------------------------------------------


def test_reductions_keep_the_dimension_like_matlab():
    x = dlarray(r(2, 3, 4), "SCB")
    s = np.sum(x, axis=1)
    assert s.fmt == "SCB" and s.shape == (2, 1, 4)
    np.testing.assert_allclose(extractdata(s), extractdata(x).sum(1, keepdims=True))
    m = x.mean(axis=(0, 2))
    assert m.fmt == "SCB" and m.shape == (1, 3, 1)
    assert np.max(x, axis=-1).shape == (2, 3, 1)
    d = np.sum(x, axis=1, keepdims=False)
    assert d.fmt == "SB" and d.shape == (2, 4)
    t = np.sum(x)
    assert t.fmt == "" and t.shape == ()
    np.testing.assert_allclose(float(t), extractdata(x).sum())
    k = np.sum(x, keepdims=True)
    assert k.fmt == "SCB" and k.shape == (1, 1, 1)
    for f in (np.prod, np.std, np.var, np.min, np.median, np.nanmean):
        assert f(x, axis=2).fmt == "SCB"
    assert np.add.reduce(x, axis=0).shape == (1, 3, 4)
    # unformatted: NumPy exactly
    assert np.sum(stripdims(x), axis=1).shape == (2, 4)
    assert x.argmax(axis=1).shape == (2, 4)


def test_shape_functions_drop_labels():
    x = dlarray(r(2, 3, 4), "SCB")
    for y in (x.reshape(6, 4), np.reshape(x, (24,)), x.T, np.transpose(x), x.ravel(),
              np.moveaxis(x, 0, -1), np.expand_dims(x, 0), np.stack([x, x]), np.swapaxes(x, 0, 1)):  # fmt: skip
        assert isdlarray(y) and y.fmt == ""
    q = dlarray(r(2, 1, 4), "SCB")
    assert np.squeeze(q).fmt == "SB" and q.squeeze(1).shape == (2, 4)
    c = np.concatenate([x, x], axis=2)
    assert c.fmt == "SCB" and c.shape == (2, 3, 8)
    with pytest.raises(ValueError, match="different formats"):
        np.concatenate([x, dlarray(r(2, 3, 4), "SCT")])
    assert np.cumsum(x, axis=2).fmt == "SCB" and np.sort(x, axis=0).fmt == "SCB"
    assert np.where(x > 0, x, 0.0).fmt == "SCB" and np.clip(x, -1, 1).fmt == "SCB"
    assert (x @ np.ones((4, 2))).fmt == ""
    assert x.astype(np.float32).dtype == np.float32 and x.astype(np.float32).fmt == "SCB"
    with pytest.raises(TypeError, match="single, double or logical"):
        x.astype(np.int64)
    assert np.shape(x) == (2, 3, 4) and np.ndim(x) == 3


@pytest.mark.parametrize(
    "key, fmt",
    [
        (0, "CB"),
        ((slice(None), 1), "SB"),
        ((..., 0), "SC"),
        ((slice(0, 1), slice(None), slice(1, 3)), "SCB"),
        ((slice(None), slice(None), [0, 2]), "SCB"),
        ((slice(None), np.array([True, False, True])), "SCB"),
        ((None, 0), ""),
        (([0, 1], slice(None), [0, 1]), ""),
    ],
)
def test_indexing_labels(key, fmt):
    a = r(2, 3, 4)
    x = dlarray(a, "SCB")
    y = x[key]
    assert y.fmt == fmt
    np.testing.assert_array_equal(extractdata(y), a[key])


def test_setitem_is_functional_and_keeps_labels():
    x = dlarray(r(3, 4), "CB")
    alias = stripdims(x)
    x[0, :] = 0.0
    assert x.fmt == "CB" and np.all(extractdata(x)[0] == 0)
    assert not np.all(extractdata(alias)[0] == 0)  # the other dlarray sharing data is untouched


def test_unknown_numpy_function_on_plain_data():
    x = dlarray(r(5), "C")
    h = np.histogram(x, bins=2)  # not differentiable: computed on the data, counts stay plain
    assert h[0].sum() == 5


# ---------------------------------------------------------------------------------------------
# Tracing
# ---------------------------------------------------------------------------------------------


def test_grad_through_a_wrapping_function_and_float32():
    a = r(3, 4, dtype=np.float32)

    def f(v):
        x = dlarray(v, "CB")
        y = np.sum(np.tanh(x) * 2.0, axis=0)  # (1, 4), labels kept
        return (y * y).sum()._value

    g = wengert.grad(f)(a)
    assert g.dtype == np.float32 and g.shape == (3, 4)
    t = np.tanh(a)
    np.testing.assert_allclose(g, 8 * t.sum(0, keepdims=True) * (1 - t**2), rtol=1e-5)


def test_traced_dlarray_refuses_silent_conversion():
    def f(v):
        x = dlarray(v, "CB")
        assert isinstance(repr(x), str) and "traced" in repr(x)
        with pytest.raises(TypeError, match="extractdata"):
            float(x[0, 0])
        with pytest.raises(TypeError, match="extractdata"):
            np.asarray(x)
        plain = extractdata(x)
        assert type(plain) is np.ndarray
        return wnp.sum(x._value)

    wengert.grad(f)(r(2, 2))


def _label_ops(v):
    x = dlarray(v, "SCB")
    b = dlarray(v[0, :, 0] * 0.5, "C")
    y = np.exp(x * 0.3) + b  # aligned by label
    y = y[:, 1:] * np.cos(x[:, 1:])  # indexing keeps labels
    y = np.sum(y**2, axis=2) + np.mean(x)  # MATLAB-style reduction
    y = np.concatenate([y, y * 2], axis=0)
    y[0] = y[1] * 3.0
    return np.max(y, axis=1)._value


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_check_grads_through_label_rules(mode):
    wengert.check_grads(_label_ops, (r(2, 3, 2),), order=2, modes=(mode,))


def test_wrap_is_unchecked():
    x = _wrap(np.ones((2, 3)), "CB")
    assert x.fmt == "CB" and isdlarray(x)


def test_pickle_round_trip():
    import pickle

    x = dlarray(r(2, 3, dtype=np.float32), "CB")
    y = pickle.loads(pickle.dumps(x))
    assert y.fmt == "CB" and y.dtype == np.float32
    np.testing.assert_array_equal(extractdata(y), extractdata(x))


def test_copy_and_deepcopy_even_when_traced():
    import copy

    x = dlarray(r(2, 3), "CB")
    d = copy.deepcopy({"w": x})["w"]
    assert d.fmt == "CB" and d._value is not x._value
    assert copy.copy(x)._value is x._value

    def f(v):
        t = dlarray(v, "CB")
        return wnp.sum(copy.deepcopy(t)._value * 2.0)

    np.testing.assert_allclose(wengert.grad(f)(r(2, 3)), 2.0)
