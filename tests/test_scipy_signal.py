"""wengert.scipy.signal: convolve and correlate in every mode, N-D and complex, against SciPy,
with derivatives to order 2 in both modes."""

import numpy as np
import pytest

ss = pytest.importorskip("scipy.signal")

import wengert.scipy.signal as wsig  # noqa: E402
from wengert import check_grads, jacfwd, jacrev, vjp  # noqa: E402

SHAPES = [((5,), (3,)), ((3,), (5,)), ((4, 5), (2, 3)), ((2, 3), (4, 5)), ((3, 4), (2, 5)), ((2, 3, 2), (2, 2, 2))]  # fmt: skip


def check(f, *args):
    check_grads(f, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    for ct, x in zip(pull(np.ones_like(out)), args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)


@pytest.mark.parametrize("f", [wsig.convolve, wsig.correlate], ids=lambda f: f.__name__)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [float, complex], ids=lambda d: d.__name__)
def test_convolve_correlate(f, mode, shapes, dtype):
    r = np.random.default_rng(0)
    x, y = r.standard_normal(shapes[0]), r.standard_normal(shapes[1])
    if dtype is complex:
        x = x + 1j * r.standard_normal(shapes[0])
        y = y + 1j * r.standard_normal(shapes[1])
    ref = getattr(ss, f.__name__)
    try:
        expected = ref(x, y, mode=mode)
    except ValueError:
        with pytest.raises(ValueError, match="valid"):
            f(x, y, mode=mode)
        return
    np.testing.assert_allclose(f(x, y, mode=mode), expected, atol=1e-12)
    check(lambda a, b: f(a, b, mode=mode), x, y)


def test_methods_dtype_and_jacobians():
    r = np.random.default_rng(1)
    x, y = r.standard_normal(6), r.standard_normal(3)
    for method in ("direct", "fft", "auto"):
        np.testing.assert_allclose(
            wsig.convolve(x, y, method=method), ss.convolve(x, y), atol=1e-12
        )
    np.testing.assert_allclose(
        wsig.fftconvolve(x, y, "same"), ss.fftconvolve(x, y, "same"), atol=1e-12
    )
    check(lambda a, b: wsig.fftconvolve(a, b, "valid"), x, y)
    assert wsig.convolve(x.astype(np.float32), y.astype(np.float32)).dtype == np.float32
    g = lambda a, b: wsig.correlate(a, b, "same")
    for a, b in zip(jacfwd(g, argnums=(0, 1))(x, y), jacrev(g, argnums=(0, 1))(x, y)):
        np.testing.assert_allclose(a, b, atol=1e-13)
    with pytest.raises(ValueError, match="mode"):
        wsig.convolve(x, y, mode="nope")
    with pytest.raises(ValueError, match="dimensionality"):
        wsig.convolve(x, y[None])
