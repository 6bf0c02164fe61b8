"""Weight initializers: Glorot, He, orthogonal, narrow normal, zeros, ones, unit forget gate.

Each takes ``(rng, shape, dtype=float32, ...)`` with ``rng`` a ``numpy.random.Generator``, so
initialization is reproducible from a seed, and returns a plain NumPy array.  Fans follow the
layouts of ``wengert.nn.functional``: dense weights (out, in) and convolution weights
(C_out, C_in/groups, *kernel) have fan_in = in·∏kernel and fan_out = out·∏kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "fans",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "orthogonal",
    "narrow_normal",
    "normal",
    "uniform",
    "zeros",
    "ones",
    "unit_forget_gate",
]

Shape = int | Sequence[int]


def _shape(shape: Shape) -> tuple:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must be non-negative, got {shape}")
    return shape


def _dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"initializers make float arrays; got dtype {dt}")
    return dt


def _check_rng(rng, who):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{who}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )


def fans(shape: Shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape.

    * ``()``: (1, 1); ``(n,)``: (n, n);
    * ``(out, in)`` (dense): (in, out);
    * ``(C_out, C_in, *kernel)`` (convolution): (C_in·∏kernel, C_out·∏kernel).
    """
    shape = _shape(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def glorot_uniform(
    rng: np.random.Generator, shape: Shape, dtype=np.float32, gain: float = 1.0
) -> np.ndarray:
    """Glorot (Xavier) uniform: U(−a, a) with a = gain·√(6 / (fan_in + fan_out))."""
    _check_rng(rng, "glorot_uniform")
    fi, fo = fans(shape)
    a = gain * math.sqrt(6.0 / max(fi + fo, 1))
    return rng.uniform(-a, a, _shape(shape)).astype(_dtype(dtype))


def glorot_normal(
    rng: np.random.Generator, shape: Shape, dtype=np.float32, gain: float = 1.0
) -> np.ndarray:
    """Glorot (Xavier) normal: N(0, σ²) with σ = gain·√(2 / (fan_in + fan_out))."""
    _check_rng(rng, "glorot_normal")
    fi, fo = fans(shape)
    s = gain * math.sqrt(2.0 / max(fi + fo, 1))
    return (s * rng.standard_normal(_shape(shape))).astype(_dtype(dtype))


def he_uniform(
    rng: np.random.Generator, shape: Shape, dtype=np.float32, gain: float = math.sqrt(2.0)
) -> np.ndarray:
    """He (Kaiming) uniform: U(−a, a) with a = gain·√(3 / fan_in); gain √2 suits ReLU."""
    _check_rng(rng, "he_uniform")
    fi, _ = fans(shape)
    a = gain * math.sqrt(3.0 / max(fi, 1))
    return rng.uniform(-a, a, _shape(shape)).astype(_dtype(dtype))


def he_normal(
    rng: np.random.Generator, shape: Shape, dtype=np.float32, gain: float = math.sqrt(2.0)
) -> np.ndarray:
    """He (Kaiming) normal: N(0, σ²) with σ = gain / √fan_in (= √(2 / fan_in) for ReLU)."""
    _check_rng(rng, "he_normal")
    fi, _ = fans(shape)
    s = gain / math.sqrt(max(fi, 1))
    return (s * rng.standard_normal(_shape(shape))).astype(_dtype(dtype))


def orthogonal(
    rng: np.random.Generator, shape: Shape, dtype=np.float32, gain: float = 1.0
) -> np.ndarray:
    """A (semi-)orthogonal matrix times ``gain``: the weight viewed as rows = shape[0],
    cols = ∏shape[1:] has orthonormal rows (rows ≤ cols) or columns (rows > cols).  From the
    QR factorisation of a Gaussian matrix, with R's diagonal signs folded in so the result
    is uniformly (Haar) distributed."""
    _check_rng(rng, "orthogonal")
    shape = _shape(shape)
    if len(shape) < 2:
        raise ValueError(f"orthogonal: shape needs at least 2 axes, got {shape}")
    rows, cols = shape[0], math.prod(shape[1:])
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(_dtype(dtype))


def normal(
    rng: np.random.Generator, shape: Shape, dtype=np.float32, std: float = 1.0, mean: float = 0.0
) -> np.ndarray:
    """N(mean, std²) samples."""
    _check_rng(rng, "normal")
    return (mean + std * rng.standard_normal(_shape(shape))).astype(_dtype(dtype))


def uniform(
    rng: np.random.Generator, shape: Shape, dtype=np.float32, low: float = -1.0, high: float = 1.0
) -> np.ndarray:
    """U(low, high) samples."""
    _check_rng(rng, "uniform")
    return rng.uniform(low, high, _shape(shape)).astype(_dtype(dtype))


def narrow_normal(
    rng: np.random.Generator, shape: Shape, dtype=np.float32, std: float = 0.01
) -> np.ndarray:
    """N(0, 0.01²) (MATLAB's "narrow-normal")."""
    return normal(rng, shape, dtype, std=std)


def zeros(rng: np.random.Generator | None, shape: Shape, dtype=np.float32) -> np.ndarray:
    """All zeros (``rng`` is accepted for a uniform signature and ignored)."""
    return np.zeros(_shape(shape), _dtype(dtype))


def ones(rng: np.random.Generator | None, shape: Shape, dtype=np.float32) -> np.ndarray:
    """All ones (``rng`` is ignored)."""
    return np.ones(_shape(shape), _dtype(dtype))


def unit_forget_gate(
    rng: np.random.Generator | None, shape: Shape, dtype=np.float32, gates: int = 4
) -> np.ndarray:
    """LSTM bias (4H,): zeros except ones on the forget gate, the second of the four gate
    blocks in the (input, forget, cell candidate, output) layout of
    ``wengert.nn.functional.lstm``.  ``rng`` is ignored."""
    shape = _shape(shape)
    if len(shape) != 1 or shape[0] % gates:
        raise ValueError(f"unit_forget_gate: shape must be (4·hidden,), got {shape}")
    h = shape[0] // gates
    b = np.zeros(shape, _dtype(dtype))
    b[h : 2 * h] = 1
    return b
