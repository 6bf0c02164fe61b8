"""custom_vjp, custom_jvp and checkpoint."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

import wengert as W
import wengert.numpy as wnp
from wengert import (
    check_grads,
    checkpoint,
    custom_jvp,
    custom_vjp,
    grad,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    vjp,
)

X3 = np.array([0.3, -0.7, 1.1])


def close(a, b):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# custom_vjp
# ---------------------------------------------------------------------------------------------


def make_sin_times():
    calls = {"fwd": 0, "bwd": 0}

    @custom_vjp
    def sin_times(x, y):
        return wnp.sin(x) * y

    def fwd(x, y):
        calls["fwd"] += 1
        return sin_times(x, y), (x, y)

    def bwd(res, g):
        calls["bwd"] += 1
        x, y = res
        return g * wnp.cos(x) * y, wnp.sum(g * wnp.sin(x))  # y is a scalar: sum over x's axes

    sin_times.defvjp(fwd, bwd)
    return sin_times, calls


def test_custom_vjp_is_used_in_reverse_mode():
    f, calls = make_sin_times()
    gx, gy = grad(lambda x, y: wnp.sum(f(x, y)), argnums=(0, 1))(X3, 2.0)
    close(gx, 2.0 * np.cos(X3))
    close(gy, np.sum(np.sin(X3)))
    assert calls == {"fwd": 1, "bwd": 1}


def test_custom_vjp_plain_call():
    f, calls = make_sin_times()
    close(f(X3, 2.0), 2 * np.sin(X3))
    assert calls["fwd"] == 0


def test_custom_vjp_rule_really_replaces_the_derivative():
    @custom_vjp
    def clip_gradient(x):
        return x

    clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (wnp.clip(g, -1.0, 1.0),))
    close(grad(lambda x: wnp.sum(clip_gradient(x) * 10.0))(X3), np.ones(3))
    # forward mode differentiates the implementation (the identity) instead
    close(jvp(lambda x: clip_gradient(x) * 10.0, (X3,), (np.ones(3),))[1], 10 * np.ones(3))


def test_custom_vjp_only_wanted_cotangents_are_checked():
    # bwd returns a broadcast-shaped cotangent for y, but y is not differentiated: fine
    @custom_vjp
    def f(x, y):
        return x * y

    f.defvjp(lambda x, y: (f(x, y), (x, y)), lambda r, g: (g * r[1], g * r[0]))
    close(grad(lambda x: wnp.sum(f(x, 2.0)))(X3), 2 * np.ones(3))
    with pytest.raises(ValueError, match=r"shape \(3,\) for an argument of shape \(\).*sum"):
        grad(lambda y: wnp.sum(f(X3, y)))(2.0)


def test_custom_vjp_second_order_and_hessian():
    f, _ = make_sin_times()
    close(grad(grad(lambda x: f(x, 3.0)))(0.4), -3 * np.sin(0.4))
    H = hessian(lambda x: wnp.sum(f(x, 3.0)))(X3)
    close(H, np.diag(-3 * np.sin(X3)))
    check_grads(lambda x: f(x, 3.0), (X3,), order=2)


def test_custom_vjp_works_in_forward_mode_through_its_implementation():
    f, calls = make_sin_times()
    out, t = jvp(lambda x: f(x, 2.0), (X3,), (np.ones(3),))
    close(t, 2 * np.cos(X3))
    close(jacfwd(lambda x: f(x, 2.0))(X3), np.diag(2 * np.cos(X3)))
    close(jvp(grad(lambda x: f(x, 2.0)), (0.5,), (1.0,))[1], -2 * np.sin(0.5))
    close(grad(lambda x: jvp(lambda y: f(y, 2.0), (x,), (1.0,))[1])(0.5), -2 * np.sin(0.5))
    assert calls["fwd"] == 1  # only forward-over-reverse (jvp of grad) used the reverse rule


def test_custom_vjp_forward_mode_of_opaque_implementation_is_a_clear_error():
    @custom_vjp
    def opaque(x):
        return np.asarray(x) * 2.0  # plain NumPy on the value: not traceable

    opaque.defvjp(lambda x: (opaque(x), None), lambda _, g: (2.0 * g,))
    close(grad(lambda x: wnp.sum(opaque(x)))(X3), 2 * np.ones(3))  # reverse mode is fine
    for run in (
        lambda: jvp(opaque, (X3,), (X3,)),
        lambda: jacfwd(opaque)(X3),
        lambda: hessian(lambda x: wnp.sum(opaque(x) ** 2))(X3),
    ):
        with pytest.raises(TypeError, match="custom_vjp function.*custom_jvp"):
            run()


def test_custom_vjp_nondiff_argnums():
    @partial(custom_vjp, nondiff_argnums=(0,))
    def apply(fn, x):
        return fn(x)

    def fwd(fn, x):
        return fn(x), x

    def bwd(fn, x, g):  # nondiff arguments first
        return (g * grad(fn)(x),)

    apply.defvjp(fwd, bwd)
    close(grad(lambda x: apply(wnp.sin, x))(0.3), np.cos(0.3))
    close(jvp(lambda x: apply(wnp.sin, x), (0.3,), (1.0,))[1], np.cos(0.3))


def test_custom_vjp_traced_nondiff_argument_is_an_error():
    @partial(custom_vjp, nondiff_argnums=(1,))
    def scale(x, s):
        return x * s

    scale.defvjp(lambda x, s: (x * s, None), lambda s, _, g: (g * s,))
    close(grad(lambda x: scale(x, 3.0))(1.0), 3.0)
    # only the nondiff argument traced: the plain implementation is differentiated, correctly
    close(grad(lambda s: scale(2.0, s))(3.0), 2.0)
    close(jvp(lambda s: scale(s, s), (3.0,), (1.0,))[1], 6.0)  # forward mode: the same
    with pytest.raises(TypeError, match="nondiff_argnums.*stop_gradient"):
        grad(lambda s: scale(s, s))(3.0)


def test_custom_vjp_pytree_arguments_and_outputs():
    @custom_vjp
    def f(p):
        return {"s": p["a"] * p["b"], "t": p["a"]}

    def fwd(p):
        return f(p), p

    def bwd(p, g):
        return ({"a": g["s"] * p["b"] + g["t"], "b": wnp.sum(g["s"] * p["a"])},)

    f.defvjp(fwd, bwd)
    p = {"a": np.array([1.0, 2.0]), "b": 3.0}
    out, pull = vjp(f, p)
    (ct,) = pull({"s": np.ones(2), "t": np.ones(2)})
    close(ct["a"], [4.0, 4.0])
    close(ct["b"], 3.0)


def test_custom_vjp_none_cotangent_means_zero():
    @custom_vjp
    def f(x, y):
        return x + y

    f.defvjp(lambda x, y: (x + y, None), lambda _, g: (g, None))
    gx, gy = grad(lambda x, y: f(x, y), argnums=(0, 1))(1.0, 2.0)
    close(gx, 1.0)
    close(gy, 0.0)


def test_custom_vjp_errors():
    @custom_vjp
    def f(x):
        return x

    with pytest.raises(TypeError, match=r"defvjp\(fwd, bwd\)"):
        grad(f)(1.0)
    f.defvjp(lambda x: x, lambda _, g: (g,))
    with pytest.raises(TypeError, match=r"pair \(output, residuals\)"):
        grad(f)(1.0)
    f.defvjp(lambda x: (x, None), lambda _, g: g)
    with pytest.raises(TypeError, match="one cotangent per differentiable argument"):
        grad(f)(1.0)
    with pytest.raises(TypeError, match="positional arguments only"):
        f(x=1.0)


def test_custom_vjp_float32_cotangent_cast():
    @custom_vjp
    def f(x):
        return x * 2

    f.defvjp(lambda x: (x * 2, None), lambda _, g: (np.asarray(g, np.float64) * 2,))
    g = grad(lambda x: wnp.sum(f(x)))(X3.astype(np.float32))
    assert g.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# custom_jvp
# ---------------------------------------------------------------------------------------------


def make_softplus():
    calls = {"rule": 0}

    @custom_jvp
    def softplus(x):
        return wnp.log1p(wnp.exp(x))

    @softplus.defjvp
    def rule(primals, tangents):
        calls["rule"] += 1
        (x,), (t,) = primals, tangents
        return softplus(x), t / (1.0 + wnp.exp(-x))

    return softplus, calls


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_custom_jvp_forward_mode():
    f, calls = make_softplus()
    out, t = jvp(f, (X3,), (np.ones(3),))
    close(out, np.log1p(np.exp(X3)))
    close(t, sigmoid(X3))
    assert calls["rule"] == 1


def test_custom_jvp_reverse_mode_transposes_the_rule():
    f, calls = make_softplus()
    close(grad(lambda x: wnp.sum(f(x)))(X3), sigmoid(X3))
    close(jacrev(f)(X3), np.diag(sigmoid(X3)))
    assert calls["rule"] == 2


def test_custom_jvp_rule_is_used_not_the_implementation():
    @custom_jvp
    def f(x):
        return x**2

    f.defjvp(lambda p, t: (f(p[0]), 10.0 * t[0]))  # deliberately not 2x
    close(jvp(f, (3.0,), (1.0,))[1], 10.0)
    close(grad(f)(3.0), 10.0)


def test_custom_jvp_higher_orders_all_combinations():
    f, _ = make_softplus()
    d2 = sigmoid(0.4) * (1 - sigmoid(0.4))
    close(grad(grad(f))(0.4), d2)
    close(jvp(grad(f), (0.4,), (1.0,))[1], d2)
    close(grad(lambda x: jvp(f, (x,), (1.0,))[1])(0.4), d2)
    close(jvp(lambda x: jvp(f, (x,), (1.0,))[1], (0.4,), (1.0,))[1], d2)
    close(hessian(lambda x: wnp.sum(f(x)))(X3), np.diag(sigmoid(X3) * (1 - sigmoid(X3))))
    check_grads(f, (X3,), order=2)


def test_custom_jvp_in_jacfwd_batches_directions():
    f, calls = make_softplus()
    close(jacfwd(f)(X3), np.diag(sigmoid(X3)))


def test_custom_jvp_several_arguments_and_nondiff():
    @partial(custom_jvp, nondiff_argnums=(2,))
    def f(x, y, k):
        return wnp.sin(x) * y**k

    @f.defjvp
    def rule(k, primals, tangents):
        (x, y), (tx, ty) = primals, tangents
        return f(x, y, k), wnp.cos(x) * y**k * tx + wnp.sin(x) * k * y ** (k - 1) * ty

    gx, gy = grad(f, argnums=(0, 1))(0.5, 2.0, 3)
    close(gx, np.cos(0.5) * 8)
    close(gy, np.sin(0.5) * 12)
    close(grad(grad(f, argnums=1), argnums=1)(0.5, 3.0, 3), np.sin(0.5) * 18)
    close(jvp(lambda y: f(0.5, y, 3), (3.0,), (1.0,))[1], np.sin(0.5) * 27)


def test_custom_jvp_traced_nondiff_argument_is_an_error():
    @partial(custom_jvp, nondiff_argnums=(1,))
    def scale(x, s):
        return x * s

    scale.defjvp(lambda s, p, t: (scale(p[0], s), t[0] * s))
    close(jvp(lambda x: scale(x, 3.0), (1.0,), (1.0,))[1], 3.0)
    for run in (
        lambda: jvp(lambda s: scale(s, s), (3.0,), (1.0,)),
        lambda: grad(lambda s: scale(s, s))(3.0),
    ):
        with pytest.raises(TypeError, match="nondiff_argnums"):
            run()


def test_custom_jvp_without_rule_is_the_plain_function():
    @custom_jvp
    def f(x):
        return wnp.sin(x)

    close(grad(f)(0.2), np.cos(0.2))


def test_custom_jvp_rule_with_constant_array_unlocks_it():
    M = np.array([[2.0, 1.0], [0.0, 3.0]])

    @custom_jvp
    def lin(x):
        return wnp.matmul(M, x)

    lin.defjvp(lambda p, t: (lin(p[0]), wnp.matmul(M, t[0])))
    close(grad(lambda x: wnp.sum(lin(x)))(np.ones(2)), M.sum(axis=0))
    assert M.flags.writeable


def test_custom_jvp_errors():
    @custom_jvp
    def f(x):
        return x

    f.defjvp(lambda p, t: p[0])
    with pytest.raises(TypeError, match=r"\(primal_out, tangent_out\)"):
        jvp(f, (1.0,), (1.0,))

    @custom_jvp
    def h(x):
        return x * 2

    h.defjvp(lambda p, t: (h(p[0]), wnp.sum(t[0])))
    for run in (lambda: jvp(h, (X3,), (X3,)), lambda: grad(lambda x: wnp.sum(h(x)))(X3)):
        with pytest.raises(ValueError, match=r"tangent of shape \(\) for a primal output of shape"):
            run()

    @custom_jvp
    def g(x):
        return x

    g.defjvp(lambda p, t: (p[0] + t[0], t[0]))
    with pytest.raises(ValueError, match="primal output depends on the tangents"):
        grad(g)(1.0)


# ---------------------------------------------------------------------------------------------
# checkpoint
# ---------------------------------------------------------------------------------------------


def counted(fn):
    calls = [0]

    def body(*args, **kwargs):
        calls[0] += 1
        return fn(*args, **kwargs)

    return body, calls


def block(x):
    return wnp.sin(wnp.exp(x) * x) * wnp.cos(x)


def test_checkpoint_recomputes_and_gives_the_same_gradient():
    body, calls = counted(block)
    ck = checkpoint(body)
    f_ck = lambda x: wnp.sum(ck(x) ** 2)
    f = lambda x: wnp.sum(block(x) ** 2)
    g = grad(f_ck)(X3)
    assert calls[0] == 2  # once forward, once again during the backward sweep
    close(g, grad(f)(X3))


def test_checkpoint_does_not_recompute_in_forward_mode_or_plain_calls():
    body, calls = counted(block)
    ck = checkpoint(body)
    out, t = jvp(ck, (X3,), (np.ones(3),))
    close(t, jvp(block, (X3,), (np.ones(3),))[1])
    ck(X3)
    assert calls[0] == 2


def test_checkpoint_second_order():
    body, calls = counted(block)
    ck = checkpoint(body)
    f_ck = lambda x: wnp.sum(ck(x) ** 2)
    f = lambda x: wnp.sum(block(x) ** 2)
    close(hessian(f_ck)(X3), hessian(f)(X3))
    close(grad(grad(lambda x: ck(x) ** 2))(0.3), grad(grad(lambda x: block(x) ** 2))(0.3))
    close(jvp(grad(f_ck), (X3,), (np.ones(3),))[1], jvp(grad(f), (X3,), (np.ones(3),))[1])
    close(
        grad(lambda x: jvp(f_ck, (x,), (np.ones(3),))[1])(X3),
        grad(lambda x: jvp(f, (x,), (np.ones(3),))[1])(X3),
    )
    check_grads(f_ck, (X3,), order=2)


def test_checkpoint_nested_reverse_modes_recompute_at_each_level():
    body, calls = counted(lambda x: wnp.exp(x) * x)
    ck = checkpoint(body)
    g2 = grad(grad(lambda x: ck(x) ** 2))(0.5)
    ex = np.exp(0.5)
    # f = (x eˣ)², f'' = 2 (eˣ(1+x))² + 2 x eˣ · eˣ(2+x)
    close(g2, 2 * (ex * 1.5) ** 2 + 2 * 0.5 * ex * ex * 2.5)
    # forward; the inner sweep's recomputation; the outer sweep's recomputation (f'' uses the
    # value x eˣ, so the outer tape's checkpointed entry is swept too)
    assert calls[0] == 3


def test_checkpoint_pytrees_kwargs_and_several_outputs():
    def layer(p, x, scale=1.0):
        h = wnp.tanh(wnp.matmul(p["w"], x) + p["b"])
        return h * scale, wnp.sum(h)

    ck = checkpoint(layer)
    p = {"w": np.array([[0.1, 0.2, -0.3], [0.5, -0.1, 0.2]]), "b": np.array([0.0, 0.1])}

    def loss(p, layer_fn):
        h, s = layer_fn(p, X3, scale=2.0)
        return wnp.sum(h**2) + s

    g_ck = grad(loss)(p, ck)
    g = grad(loss)(p, layer)
    close(g_ck["w"], g["w"])
    close(g_ck["b"], g["b"])


def test_checkpoint_keeps_name():
    assert checkpoint(block).__name__ == "block"
    assert W.checkpoint(block)(0.1) == block(0.1)
