"""MATLAB's "Initialize Learnable Parameters for Model Functions", ported to wengert.dl.

The MATLAB page defines one small function per initializer, each taking the size ``sz`` of
the parameter (MATLAB's layout: filterSize×numChannels×numFilters for convolution weights,
outputSize×inputSize for fully connected weights, (4·numHiddenUnits)×inputSize for LSTM
input weights...) and, where the scale depends on them, ``numOut``/``numIn``, and returning a
dlarray:

==============================  =============================================================
``initializeGlorot(sz, numOut,   U(−b, b), b = √(6 / (numIn + numOut)): variance 2/(numIn +
numIn)``                         numOut)
``initializeHe(sz, numIn)``      N(0, 2/numIn)
``initializeGaussian(sz, mu,     N(mu, sigma²), by default N(0, 0.01²)
sigma)``
``initializeUniform(sz, bound)`` U(−bound, bound), by default bound 0.1
``initializeOrthogonal(sz)``     Q of the QR factorisation of a Gaussian matrix, signs fixed
                                 by diag(R): orthonormal columns, QᵀQ = I
``initializeUnitForgetGate(      LSTM bias (4H×1): zeros, ones on the forget gate (rows
numHiddenUnits)``                H+1…2H in MATLAB's 1-based numbering)
``initializeZeros(sz)``,         all zeros / all ones (biases, batch-norm offsets and scales)
``initializeOnes(sz)``
==============================  =============================================================

They draw with wengert.nn.init (no second implementation: the MATLAB functions fix the
scale from numIn/numOut, nn.init draws the samples).  ``className`` is MATLAB's "single"
(float32, the default) or "double".  Random draws come from ``rng`` (a
``numpy.random.Generator``), by default the generator installed by ``wengert.dl.rng(seed)`` in
:func:`main` (MATLAB's global ``rng``).

Running the script initialises the parameters of each layer type of the MATLAB page
(convolution, transposed convolution, fully connect, batch normalisation, LSTM, GRU,
embedding), uses them in the matching wengert.dl operation, prints the statistics of each
initializer and checks them against the definitions above.

    python examples/dl/initialize_params.py            # full run (large samples, tight checks)
    python examples/dl/initialize_params.py --quick    # smaller samples
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import wengert.dl as dl
import wengert.nn as nn

# MATLAB draws from one global generator; main() installs it with dl.rng(seed).
RNG = np.random.default_rng(0)

_CLASSES = {"single": np.float32, "double": np.float64}


def _dtype(className: str):
    try:
        return _CLASSES[className]
    except KeyError:
        raise ValueError(f'className must be "single" or "double", got {className!r}') from None


def _gen(rng):
    return RNG if rng is None else rng


def _size(sz) -> tuple:
    return tuple(int(s) for s in np.ravel(sz))


# ---------------------------------------------------------------------------------------------
# The initializers of the MATLAB page
# ---------------------------------------------------------------------------------------------


def initializeGlorot(sz, numOut: int, numIn: int, className: str = "single", *, rng=None):
    """Glorot (Xavier) uniform: U(−b, b) with b = √(6 / (numIn + numOut)), so the variance is
    b²/3 = 2 / (numIn + numOut)."""
    bound = math.sqrt(6 / (numIn + numOut))
    w = nn.init.uniform(_gen(rng), _size(sz), _dtype(className), low=-bound, high=bound)
    return dl.dlarray(w)


def initializeHe(sz, numIn: int, className: str = "single", *, rng=None):
    """He: N(0, σ²) with σ = √(2 / numIn)."""
    w = nn.init.normal(_gen(rng), _size(sz), _dtype(className), std=math.sqrt(2 / numIn))
    return dl.dlarray(w)


def initializeGaussian(
    sz, mu: float = 0, sigma: float = 0.01, className: str = "single", *, rng=None
):
    """N(mu, sigma²) samples (MATLAB's default: mean 0, standard deviation 0.01)."""
    w = nn.init.normal(_gen(rng), _size(sz), _dtype(className), std=sigma, mean=mu)
    return dl.dlarray(w)


def initializeUniform(sz, bound: float = 0.1, className: str = "single", *, rng=None):
    """U(−bound, bound) samples (MATLAB's default bound 0.1)."""
    w = nn.init.uniform(_gen(rng), _size(sz), _dtype(className), low=-bound, high=bound)
    return dl.dlarray(w)


def initializeOrthogonal(sz, className: str = "single", *, rng=None):
    """The orthogonal factor Q of Z = QR for a Gaussian Z of size ``sz`` (rows ≥ columns, e.g.
    the (4·numHiddenUnits)×numHiddenUnits recurrent weights of an LSTM), each column's sign
    fixed by diag(R) so Q is uniformly distributed: QᵀQ = I."""
    sz = _size(sz)
    if len(sz) != 2 or sz[0] < sz[1]:
        raise ValueError(
            f"initializeOrthogonal: sz must be [rows cols] with rows >= cols, got {sz}"
        )
    return dl.dlarray(nn.init.orthogonal(_gen(rng), sz, _dtype(className)))


def initializeUnitForgetGate(numHiddenUnits: int, className: str = "single"):
    """The LSTM bias (4·numHiddenUnits)×1: zeros, with ones for the forget gate (the second
    block of MATLAB's input/forget/cell-candidate/output gate order)."""
    h = int(numHiddenUnits)
    b = nn.init.unit_forget_gate(None, (4 * h,), _dtype(className))
    return dl.dlarray(b.reshape(4 * h, 1))


def initializeZeros(sz, className: str = "single"):
    """All zeros (biases, batch-normalisation offsets, trained means)."""
    return dl.dlarray(nn.init.zeros(None, _size(sz), _dtype(className)))


def initializeOnes(sz, className: str = "single"):
    """All ones (batch-normalisation scales, trained variances)."""
    return dl.dlarray(nn.init.ones(None, _size(sz), _dtype(className)))


# ---------------------------------------------------------------------------------------------
# The parameters of each layer type, as the MATLAB page initialises them
# ---------------------------------------------------------------------------------------------


def layer_parameters(rng=None) -> dict:
    """A parameters struct (dict) with one entry per layer type of the MATLAB page."""
    p: dict = {}
    # convolution: sz = [filterSize numChannels numFilters]
    filterSize, numChannels, numFilters = (5, 5), 1, 20
    sz = [*filterSize, numChannels, numFilters]
    numOut = math.prod(filterSize) * numFilters
    numIn = math.prod(filterSize) * numChannels
    p["conv"] = {
        "Weights": initializeGlorot(sz, numOut, numIn, rng=rng),
        "Bias": initializeZeros([numFilters, 1]),
    }
    # transposed convolution: sz = [filterSize numFilters numChannels]
    filterSize, numChannels, numFilters = (3, 3), 20, 10
    sz = [*filterSize, numFilters, numChannels]
    numOut = math.prod(filterSize) * numFilters
    numIn = math.prod(filterSize) * numChannels
    p["transposedConv"] = {
        "Weights": initializeGlorot(sz, numOut, numIn, rng=rng),
        "Bias": initializeZeros([numFilters, 1]),
    }
    # fully connect: sz = [outputSize inputSize]
    outputSize, inputSize = 10, 8 * 8 * 20
    p["fc"] = {
        "Weights": initializeGlorot([outputSize, inputSize], outputSize, inputSize, rng=rng),
        "Bias": initializeZeros([outputSize, 1]),
    }
    # batch normalisation: offset and scale, one per channel
    numChannels = 20
    p["batchnorm"] = {"Offset": initializeZeros([numChannels, 1]),
                      "Scale": initializeOnes([numChannels, 1])}  # fmt: skip
    # LSTM: input weights Glorot, recurrent weights orthogonal, bias unit forget gate
    numHiddenUnits, inputSize = 16, 12
    p["lstm"] = {
        "InputWeights": initializeGlorot(
            [4 * numHiddenUnits, inputSize], 4 * numHiddenUnits, inputSize, rng=rng
        ),
        "RecurrentWeights": initializeOrthogonal([4 * numHiddenUnits, numHiddenUnits], rng=rng),
        "Bias": initializeUnitForgetGate(numHiddenUnits),
    }
    # GRU: input weights Glorot, recurrent weights orthogonal, bias zeros
    p["gru"] = {
        "InputWeights": initializeGlorot(
            [3 * numHiddenUnits, inputSize], 3 * numHiddenUnits, inputSize, rng=rng
        ),
        "RecurrentWeights": initializeOrthogonal([3 * numHiddenUnits, numHiddenUnits], rng=rng),
        "Bias": initializeZeros([3 * numHiddenUnits, 1]),
    }
    # embedding: Gaussian, embeddingDimension×numWords
    embeddingDimension, numWords = 8, 50
    p["embed"] = {"Weights": initializeGaussian([embeddingDimension, numWords], rng=rng)}
    return p


def use_parameters(p: dict, rng: np.random.Generator) -> dict:
    """Run each layer type's operation with its parameters; returns the output formats and
    sizes (the parameters fit the operations' MATLAB layouts)."""
    out = {}
    X = dl.dlarray(rng.random((8, 8, 1, 4)).astype(np.float32), "SSCB")
    Y = dl.dlconv(X, p["conv"]["Weights"], p["conv"]["Bias"], padding="same")
    out["dlconv"] = (dl.dims(Y), Y.shape)
    Y = dl.batchnorm(Y, p["batchnorm"]["Offset"], p["batchnorm"]["Scale"])
    out["batchnorm"] = (dl.dims(Y), Y.shape)
    Z = dl.dltranspconv(Y, p["transposedConv"]["Weights"], p["transposedConv"]["Bias"],
                        stride=2, cropping="same")  # fmt: skip
    out["dltranspconv"] = (dl.dims(Z), Z.shape)
    Y = dl.fullyconnect(dl.relu(Y), p["fc"]["Weights"], p["fc"]["Bias"])
    out["fullyconnect"] = (dl.dims(Y), Y.shape)
    S = dl.dlarray(rng.standard_normal((12, 4, 7)).astype(np.float32), "CBT")
    H0 = np.zeros((16, 1), np.float32)
    q = p["lstm"]
    Y, H, C = dl.lstm(S, H0, H0, q["InputWeights"], q["RecurrentWeights"], q["Bias"])
    out["lstm"] = (dl.dims(Y), Y.shape)
    q = p["gru"]
    Y, H = dl.gru(S, H0, q["InputWeights"], q["RecurrentWeights"], q["Bias"])
    out["gru"] = (dl.dims(Y), Y.shape)
    words = dl.dlarray(rng.integers(0, 50, (1, 4, 7)).astype(np.float32), "CBT")
    Y = dl.embed(words, p["embed"]["Weights"])
    out["embed"] = (dl.dims(Y), Y.shape)
    return out


# ---------------------------------------------------------------------------------------------
# Statistics and checks
# ---------------------------------------------------------------------------------------------


def _stats(w) -> dict:
    a = dl.extractdata(w).astype(np.float64)
    return {"mean": a.mean(), "std": a.std(), "min": a.min(), "max": a.max(), "n": a.size}


def check_initializers(scale: int, rng: np.random.Generator) -> tuple[dict, dict]:
    """Draw each initializer at a size with ~``scale`` elements and compare its statistics
    with the definition: (statistics per initializer, {check name: (passed, detail)})."""
    stats: dict = {}
    checks: dict = {}
    tol = 4 / math.sqrt(scale)  # ≈ 4 standard errors of a relative variance estimate

    def close(name, got, want, rel):
        ok = abs(got - want) <= rel * abs(want)
        checks[name] = (bool(ok), f"{got:.6g} vs {want:.6g} (±{100 * rel:.1f}%)")

    # Glorot on convolution weights: numIn = prod(filterSize)·numChannels, numOut = ...·numFilters
    fs, c, f = (5, 5), 16, max(scale // 400, 4)
    sz = [*fs, c, f]
    numIn, numOut = math.prod(fs) * c, math.prod(fs) * f
    w = initializeGlorot(sz, numOut, numIn, rng=rng)
    s = stats["initializeGlorot"] = _stats(w)
    bound = math.sqrt(6 / (numIn + numOut))
    checks["glorot: |w| <= sqrt(6/(numIn+numOut))"] = (
        bool(max(-s["min"], s["max"]) <= bound), f"max |w| {max(-s['min'], s['max']):.5g}, bound {bound:.5g}"
    )  # fmt: skip
    close("glorot: var = 2/(numIn+numOut)", s["std"] ** 2, 2 / (numIn + numOut), tol)
    checks["glorot: single, size kept"] = (
        w.dtype == np.float32 and w.shape == tuple(sz), f"{w.dtype}, {w.shape}"
    )  # fmt: skip

    # He on fully connected weights: numIn = inputSize
    inputSize = 256
    outputSize = max(scale // inputSize, 4)
    w = initializeHe([outputSize, inputSize], inputSize, rng=rng)
    s = stats["initializeHe"] = _stats(w)
    close("he: var = 2/numIn", s["std"] ** 2, 2 / inputSize, tol)
    checks["he: mean ≈ 0"] = (
        abs(s["mean"]) <= 4 * s["std"] / math.sqrt(s["n"]), f"{s['mean']:.3g}"
    )  # fmt: skip

    # Gaussian: mean mu, std sigma (defaults 0 and 0.01; also a shifted one in double)
    w = initializeGaussian([scale], rng=rng)
    s = stats["initializeGaussian"] = _stats(w)
    close("gaussian: std = 0.01", s["std"], 0.01, tol)
    w = initializeGaussian([scale], 1.5, 0.2, "double", rng=rng)
    s = stats["initializeGaussian(mu=1.5, sigma=0.2, double)"] = _stats(w)
    close("gaussian: mean = 1.5", s["mean"], 1.5, 0.01)
    close("gaussian: std = 0.2", s["std"], 0.2, tol)
    checks["gaussian: double kept"] = (w.dtype == np.float64, str(w.dtype))

    # Uniform: within the bound, variance bound²/3
    w = initializeUniform([scale], 0.1, rng=rng)
    s = stats["initializeUniform"] = _stats(w)
    close("uniform: var = bound²/3", s["std"] ** 2, 0.01 / 3, tol)

    # Orthogonal on LSTM recurrent weights (4H×H): QᵀQ = I
    H = 32
    for cls, atol in (("single", 1e-5), ("double", 1e-12)):
        Q = dl.extractdata(initializeOrthogonal([4 * H, H], cls, rng=rng)).astype(np.float64)
        err = np.abs(Q.T @ Q - np.eye(H)).max()
        checks[f"orthogonal ({cls}): QᵀQ = I"] = (bool(err <= atol), f"max |QᵀQ − I| = {err:.2e}")
    stats["initializeOrthogonal"] = _stats(initializeOrthogonal([4 * H, H], rng=rng))
    Q = dl.extractdata(initializeOrthogonal([H, H], "double", rng=rng))
    err = max(np.abs(Q.T @ Q - np.eye(H)).max(), np.abs(Q @ Q.T - np.eye(H)).max())
    checks["orthogonal (square): QᵀQ = QQᵀ = I"] = (bool(err <= 1e-12), f"{err:.2e}")

    # Unit forget gate: ones exactly on rows H..2H−1 (0-based)
    b = dl.extractdata(initializeUnitForgetGate(H))
    stats["initializeUnitForgetGate"] = _stats(b)
    want = np.zeros((4 * H, 1), np.float32)
    want[H : 2 * H] = 1
    checks["unit forget gate: ones on the forget gate only"] = (
        bool(b.shape == (4 * H, 1) and np.array_equal(b, want)), f"{int(b.sum())} ones at rows {np.flatnonzero(b)[[0, -1]]}"
    )  # fmt: skip

    z, o = initializeZeros([20, 1]), initializeOnes([20, 1])
    stats["initializeZeros"], stats["initializeOnes"] = _stats(z), _stats(o)
    checks["zeros/ones"] = (
        bool(np.all(dl.extractdata(z) == 0) and np.all(dl.extractdata(o) == 1)), "exact"
    )  # fmt: skip
    return stats, checks


def main(argv: list[str] | None = None) -> dict:
    global RNG
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller samples (2·10⁴ values)")
    ap.add_argument("--size", type=int, default=None, help="values per statistics sample")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="(unused: this example writes no files)")
    ap.add_argument("--no-progress", action="store_true", help="(unused: no progress bar)")
    args = ap.parse_args(argv)
    scale = args.size or (20_000 if args.quick else 400_000)

    t0 = time.perf_counter()
    RNG = dl.rng(args.seed)

    params = layer_parameters()
    print("Parameters of each layer type (MATLAB layouts):")
    for layer, entries in params.items():
        for name, v in entries.items():
            print(f"  {layer:>15}.{name:<17} {'×'.join(map(str, v.shape)):>10}  {v.dtype}")
    used = use_parameters(params, RNG)
    print("\nUsed in the matching operations:")
    for op, (fmt, shape) in used.items():
        print(f"  {op:<13} -> {fmt:<5} {'×'.join(map(str, shape))}")

    stats, checks = check_initializers(scale, RNG)
    print(f"\nStatistics (samples of ~{scale} values):")
    print(f"  {'initializer':<46} {'mean':>10} {'std':>10} {'min':>10} {'max':>10}")
    for name, s in stats.items():
        print(
            f"  {name:<46} {s['mean']:>10.4g} {s['std']:>10.4g} {s['min']:>10.4g} {s['max']:>10.4g}"
        )
    print("\nChecks:")
    for name, (ok, detail) in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}: {detail}")
    passed = all(ok for ok, _ in checks.values())
    elapsed = time.perf_counter() - t0
    print(
        f"\n{sum(ok for ok, _ in checks.values())}/{len(checks)} checks passed in {elapsed:.2f} s"
    )
    return {
        "parameters": params,
        "used": used,
        "stats": stats,
        "checks": checks,
        "passed": passed,
        "seconds": elapsed,
    }


if __name__ == "__main__":
    main()
