"""Shared test helpers: seeded generators and the derivative checks every family uses."""

import numpy as np

from wengert import check_grads, jacfwd, jacrev, vjp


def rng(seed=0):
    return np.random.default_rng(seed)


def check(f, *args):
    """Order-2 derivatives in both modes; the cotangents also have their inputs' shapes and
    dtypes (check_grads alone would let a broadcastable wrong shape through)."""
    check_grads(f, args, order=2, modes=("fwd", "rev"))
    out, pull = vjp(f, *args)
    cts = pull(np.ones_like(out))
    for ct, x in zip(cts, args):
        assert np.shape(ct) == np.shape(x) and ct.dtype == np.result_type(x)


def check_jacobians(f, *args):
    """jacfwd (one batched forward pass) and jacrev agree, for every argument."""
    nums = tuple(range(len(args)))
    jf = jacfwd(f, argnums=nums)(*args)
    jr = jacrev(f, argnums=nums)(*args)
    for a, b in zip(jf, jr):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
