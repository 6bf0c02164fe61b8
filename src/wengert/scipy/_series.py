"""Parameter derivatives of the regularized incomplete gamma and beta functions, by series.

SciPy computes P(a, x), Q(a, x) and I_x(a, b) but not their derivatives in the shape
parameters.  Both are sums of positive terms exp(L_m(θ)) whose logarithms have closed-form
derivatives in θ (polygamma functions), so ∂^α Σ exp(L_m) = Σ exp(L_m)·Y_α(m), where Y_α
follows from the multivariate Leibniz rule (:func:`leibniz`).  Plain NumPy: these are the
implementations of primitives; their own derivative rules live in :mod:`wengert.scipy.special`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sp

_CHUNK = 64  # terms per vectorized step
_MAX_TERMS = 200_000
_TINY = 1e-300
_RTOL = 1e-17


def leibniz(alpha: tuple, dlog: Callable[[tuple], Any]) -> Any:
    """Y_α with ∂^α exp(L) = exp(L)·Y_α, given ``dlog(β)`` = ∂^β L for multi-indices |β| ≥ 1.

    From ∂^(α+e_p) e^L = ∂^α (L_p e^L) = Σ_{β ≤ α} C(α, β) ∂^(β+e_p) L · ∂^(α−β) e^L.
    Works on NumPy arrays and on traced values alike (only + and × are used)."""
    zero = (0,) * len(alpha)
    ys: dict = {zero: 1}
    ds: dict = {}

    def d(beta):
        if beta not in ds:
            ds[beta] = dlog(beta)
        return ds[beta]

    def y(al):
        if al in ys:
            return ys[al]
        p = next(i for i, k in enumerate(al) if k)
        prev = al[:p] + (al[p] - 1,) + al[p + 1 :]
        total = 0
        for beta in np.ndindex(*(k + 1 for k in prev)):
            coef = math.prod(math.comb(n, k) for n, k in zip(prev, beta))
            up = beta[:p] + (beta[p] + 1,) + beta[p + 1 :]
            rest = tuple(n - k for n, k in zip(prev, beta))
            total = total + coef * d(up) * y(rest)
        ys[al] = total
        return total

    return y(tuple(alpha))


def _sum_series(log_term: Callable, dlog: Callable, alpha: tuple, shape: tuple, what: str):
    """Σ_{m ≥ 0} exp(L_m)·Y_α(m), terms decreasing from m = 0 on; ``log_term(m)`` and
    ``dlog(m)(β)`` take a column of term indices m (shape (C, 1, ..., 1))."""
    out = np.zeros(shape)
    nd = len(shape)
    for start in range(0, _MAX_TERMS, _CHUNK):
        m = np.arange(start, start + _CHUNK, dtype=float).reshape((-1,) + (1,) * nd)
        terms = np.exp(log_term(m)) * leibniz(alpha, dlog(m))
        terms = np.where(np.isfinite(terms), terms, 0.0)
        out += terms.sum(axis=0)
        last = np.abs(terms[-1]), np.exp(log_term(m[-1:]))[0]
        if np.all((last[0] <= _RTOL * np.maximum(np.abs(out), _TINY)) & (last[1] < 1e-30)):
            return out
    raise ArithmeticError(
        f"{what}: the series did not converge in {_MAX_TERMS} terms for these parameters"
    )


def igamma_da(a: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """∂^k P(a, x) / ∂a^k for k ≥ 1 (P: the regularized lower incomplete gamma function).

    P(a, x) = Σ_{n ≥ 0} exp(L_n), L_n = (a + n) log x − x − log Γ(a + n + 1), with
    ∂L_n/∂a = log x − ψ(a + n + 1) and ∂^j L_n/∂a^j = −ψ^(j−1)(a + n + 1) for j ≥ 2.
    For x > a the terms peak near n ≈ x − a; the sum starts 10 standard deviations below.
    """
    dtype = np.result_type(a, x, np.float32)
    a, x = np.broadcast_arrays(np.asarray(a, float), np.asarray(x, float))
    ok = (a > 0) & (x > 0) & np.isfinite(a) & np.isfinite(x)
    aa, xx = np.where(ok, a, 1.0), np.where(ok, x, 1.0)
    skip = np.floor(np.maximum(xx - aa - 10 * np.sqrt(xx + aa) - 10, 0))
    logx = np.log(xx)

    def log_term(m):
        n = m + skip
        return (aa + n) * logx - xx - sp.gammaln(aa + n + 1)

    def dlog(m):
        s = aa + m + skip + 1
        return lambda beta: logx - sp.digamma(s) if beta[0] == 1 else -sp.polygamma(beta[0] - 1, s)

    out = _sum_series(log_term, dlog, (k,), aa.shape, "gammainc derivative in a")
    out = np.where(x == 0, 0.0, np.where(ok, out, np.nan))
    return out.astype(dtype, copy=False)


def ibeta_dab(a: np.ndarray, b: np.ndarray, x: np.ndarray, i: int, j: int) -> np.ndarray:
    """∂^(i+j) I_x(a, b) / ∂a^i ∂b^j for i + j ≥ 1 (I: the regularized incomplete beta).

    I_x(a, b) = Σ_{m ≥ 0} exp(L_m), L_m = (a + m) log x + b log(1 − x) + log Γ(a + b + m)
    − log Γ(a + 1 + m) − log Γ(b) (the hypergeometric series 2F1(a + b, 1; a + 1; x)).  Where
    x > (a + 1)/(a + b + 2) it uses I_x(a, b) = 1 − I_{1−x}(b, a), so the terms decrease from
    m = 0 on.
    """
    dtype = np.result_type(a, b, x, np.float32)
    a, b, x = np.broadcast_arrays(*(np.asarray(v, float) for v in (a, b, x)))
    ok = (a > 0) & (b > 0) & (x > 0) & (x < 1) & np.isfinite(a) & np.isfinite(b)
    flip = x > (a + 1) / (a + b + 2)
    p = np.where(ok, np.where(flip, b, a), 1.0)  # the first parameter of the series
    q = np.where(ok, np.where(flip, a, b), 1.0)
    y = np.where(ok, np.where(flip, 1 - x, x), 0.5)
    logy, log1my = np.log(y), np.log1p(-y)

    def run(ip, iq):
        def log_term(m):
            return (
                (p + m) * logy
                + q * log1my
                + sp.gammaln(p + q + m)
                - sp.gammaln(p + 1 + m)
                - sp.gammaln(q)
            )

        def dlog(m):
            def d(beta):
                u, v = beta
                if u + v == 1:
                    if u:
                        return logy + sp.digamma(p + q + m) - sp.digamma(p + 1 + m)
                    return log1my + sp.digamma(p + q + m) - sp.digamma(q)
                out = sp.polygamma(u + v - 1, p + q + m)
                if v == 0:
                    out = out - sp.polygamma(u - 1, p + 1 + m)
                if u == 0:
                    out = out - sp.polygamma(v - 1, q)
                return out

            return d

        return _sum_series(log_term, dlog, (ip, iq), p.shape, "betainc derivative in a, b")

    if np.any(flip & ok):
        flipped = -run(j, i)  # ∂_a^i ∂_b^j [1 − I_{1−x}(b, a)]
        out = np.where(flip, flipped, run(i, j) if np.any(~flip & ok) else 0.0)
    else:
        out = run(i, j)
    out = np.where((x == 0) | (x == 1), 0.0, np.where(ok, out, np.nan))
    return out.astype(dtype, copy=False)
