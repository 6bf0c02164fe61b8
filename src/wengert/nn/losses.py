"""Loss functions for training: cross-entropy (from logits, probabilities or integer labels),
binary cross-entropy, mse, l1, l2, huber and KL divergence.

All are composites of differentiable ops, numerically stable (log-sum-exp inside, no log 0).

Conventions: the class axis is ``axis=1`` (channel-first, as the rest of ``wengert.nn``; for
(N, K) it is also the last).  ``reduction`` is one of

* ``"mean"``: the per-observation losses averaged over the observations (the batch, and any
  spatial axes) -- for cross-entropy this is MATLAB's and PyTorch's default;
* ``"sum"``: their sum;
* ``"none"``: the per-observation losses;
* ``"batch"`` (regression losses only): the sum over everything divided by the batch size N,
  MATLAB's ``l1loss``/``l2loss``/``huber`` "batch-size" normalisation.
"""

from __future__ import annotations

import numpy as _np

import wengert.numpy as wnp
from wengert.core import is_traced, primal_value
from wengert.nn.functional import log_sigmoid, log_softmax
from wengert.nn.functional._types import Array

__all__ = [
    "cross_entropy",
    "cross_entropy_from_probs",
    "index_cross_entropy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse",
    "l1",
    "l2",
    "huber",
    "kl_div",
]


def _shape(v):
    return _np.shape(primal_value(v))


def _dtype(v):
    return _np.result_type(primal_value(v))


def _cast(c, like):
    """A constant (targets, weights) in the float dtype of ``like`` (never promotes)."""
    c = primal_value(c)
    dt = _dtype(like)
    if isinstance(c, _np.ndarray) or _np.ndim(c):
        return _np.asarray(c).astype(dt, copy=False)
    return c


def _reduce(per_obs, reduction: str, who: str, batch: int | None = None):
    if reduction == "mean":
        return wnp.mean(per_obs)
    if reduction == "sum":
        return wnp.sum(per_obs)
    if reduction == "none":
        return per_obs
    if reduction == "batch" and batch is not None:
        return wnp.sum(per_obs) / batch
    ok = "'mean', 'sum', 'none'" + (", 'batch'" if batch is not None else "")
    raise ValueError(f"{who}: reduction must be one of {ok}, not {reduction!r}")


def _class_axis(x, axis, who):
    nd = len(_shape(x))
    if nd == 0:
        raise ValueError(f"{who}: expected (N, K, ...) scores, got a scalar")
    if not -nd <= axis < nd:
        raise ValueError(f"{who}: axis {axis} is out of range for shape {_shape(x)}")
    return axis % nd


def _weighted_targets(targets, k, ax, nd, class_weights, label_smoothing, like, who):
    """(1 − ε)·t + ε/K, times the class weights (broadcast along the class axis)."""
    t = targets
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{who}: label_smoothing must lie in [0, 1], got {label_smoothing}")
    if label_smoothing:
        t = t * (1 - label_smoothing) + label_smoothing / k
    if class_weights is not None:
        w = _cast(class_weights, like)
        if _np.shape(w) != (k,):
            raise ValueError(f"{who}: class_weights must have shape ({k},), got {_np.shape(w)}")
        t = t * _np.reshape(w, (k,) + (1,) * (nd - ax - 1))
    return t


def cross_entropy(
    logits: Array, targets: Array, class_weights: Array=None, label_smoothing: float = 0.0, reduction: str = "mean",
    axis: int = 1,
) -> Array:  # fmt: skip
    """Softmax cross-entropy from unnormalised scores ``logits`` (N, K, ...) and target
    distributions ``targets`` of the same shape (one-hot or probabilities):

        loss_n = −Σ_k w_k · t̃_nk · log softmax(logits_n)_k,   t̃ = (1 − ε)·t + ε/K

    (ε = ``label_smoothing``, w = ``class_weights``, default 1).  log softmax is computed as
    x − logsumexp(x), so no exponential overflows and no log(0) occurs.  ``reduction="mean"``
    averages over the observations (N and any trailing axes).
    """
    ax = _class_axis(logits, axis, "cross_entropy")
    xs = _shape(logits)
    if _shape(targets) != xs:
        raise ValueError(
            f"cross_entropy: targets must have the logits' shape {xs}, got {_shape(targets)}; "
            "for integer labels use index_cross_entropy (or nn.functional.one_hot)"
        )
    t = targets if is_traced(targets) else _cast(targets, logits)
    t = _weighted_targets(
        t, xs[ax], ax, len(xs), class_weights, label_smoothing, logits, "cross_entropy"
    )
    per_obs = -wnp.sum(t * log_softmax(logits, axis=ax), axis=ax)
    return _reduce(per_obs, reduction, "cross_entropy")


def cross_entropy_from_probs(
    probs: Array, targets: Array, class_weights: Array=None, label_smoothing: float = 0.0, reduction: str = "mean",
    axis: int = 1, eps: float | None = None,
) -> Array:  # fmt: skip
    """Cross-entropy from predicted probabilities (e.g. after a softmax layer):

        loss_n = −Σ_k w_k · t̃_nk · log(clip(p_nk, eps, 1))

    The clip (``eps`` defaults to the dtype's machine epsilon: 1.2e-7 in float32, 2.2e-16 in
    float64) keeps log(0) out; below eps the derivative in p is zero.  Prefer
    ``cross_entropy`` on logits, which needs no clipping.
    """
    ax = _class_axis(probs, axis, "cross_entropy_from_probs")
    xs = _shape(probs)
    if _shape(targets) != xs:
        raise ValueError(
            f"cross_entropy_from_probs: targets must have shape {xs}, got {_shape(targets)}"
        )
    if eps is None:
        eps = float(_np.finfo(_dtype(probs)).eps)
    t = targets if is_traced(targets) else _cast(targets, probs)
    t = _weighted_targets(
        t, xs[ax], ax, len(xs), class_weights, label_smoothing, probs, "cross_entropy_from_probs"
    )
    per_obs = -wnp.sum(t * wnp.log(wnp.clip(probs, eps, 1.0)), axis=ax)
    return _reduce(per_obs, reduction, "cross_entropy_from_probs")


def index_cross_entropy(
    logits: Array, labels: Array, class_weights: Array=None, label_smoothing: float = 0.0, reduction: str = "mean",
    axis: int = 1, ignore_index: int | None = None,
) -> Array:  # fmt: skip
    """Softmax cross-entropy with integer class labels: ``logits`` (N, K, ...), ``labels``
    (N, ...) in [0, K).  Equal to ``cross_entropy(logits, one_hot(labels))``, but gathers the
    label's log-probability instead of forming the one-hot matrix.  Observations whose label
    equals ``ignore_index`` contribute zero (and are not counted by ``"mean"``).
    """
    ax = _class_axis(logits, axis, "index_cross_entropy")
    xs = _shape(logits)
    k = xs[ax]
    lab = _np.asarray(primal_value(labels))
    if lab.dtype.kind not in "iu":
        raise TypeError(f"index_cross_entropy: labels must be integers, got dtype {lab.dtype}")
    want = xs[:ax] + xs[ax + 1 :]
    if lab.shape != want:
        raise ValueError(f"index_cross_entropy: labels must have shape {want}, got {lab.shape}")
    keep = None if ignore_index is None else lab != ignore_index
    safe = lab if keep is None else _np.where(keep, lab, 0)
    if safe.size and (safe.min() < 0 or safe.max() >= k):
        raise ValueError(
            f"index_cross_entropy: labels must lie in [0, {k}), got [{safe.min()}, {safe.max()}]"
        )
    if not 0 <= label_smoothing <= 1:
        raise ValueError(
            f"index_cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}"
        )
    lsm = wnp.moveaxis(log_softmax(logits, axis=ax), ax, -1)  # (..., K)
    grid = _np.indices(safe.shape, sparse=True)
    picked = lsm[tuple(grid) + (safe,)]
    dt = _dtype(logits)
    if class_weights is not None:
        w = _cast(class_weights, logits)
        if _np.shape(w) != (k,):
            raise ValueError(
                f"index_cross_entropy: class_weights must have shape ({k},), got {_np.shape(w)}"
            )
        per_obs = -(w[safe] * picked)
        if label_smoothing:
            smooth = -wnp.sum(lsm * w, axis=-1)
    else:
        if not label_smoothing and keep is None and reduction == "mean" and safe.size:
            return wnp.sum(picked) * _dtype(picked).type(-1 / safe.size)  # −mean, one op fewer
        per_obs = -picked
        if label_smoothing:
            smooth = -wnp.sum(lsm, axis=-1)
    if label_smoothing:
        per_obs = (1 - label_smoothing) * per_obs + (label_smoothing / k) * smooth
    if keep is not None:
        per_obs = per_obs * keep.astype(dt)
        if reduction == "mean":
            return wnp.sum(per_obs) / max(int(keep.sum()), 1)
    return _reduce(per_obs, reduction, "index_cross_entropy")


def binary_cross_entropy(
    probs: Array, targets: Array, weights: Array=None, reduction: str = "mean", logits: bool = False,
    eps: float | None = None, pos_weight: Array=None,
) -> Array:  # fmt: skip
    """Binary cross-entropy, element by element:

        loss = −w · [t·log p + (1 − t)·log(1 − p)]

    With ``logits=True`` the first argument is the score x (p = σ(x)) and the loss is
    computed as −w·[pw·t·log σ(x) + (1 − t)·log σ(−x)] with stable log σ (no overflow for
    large |x|; ``pos_weight`` pw weights the positive term).  With probabilities, p is
    clipped to [eps, 1 − eps] (eps: the dtype's machine epsilon by default), so no log(0).
    ``reduction="mean"`` averages over all elements.
    """
    if _shape(targets) != _shape(probs):
        raise ValueError(
            f"binary_cross_entropy: targets must have shape {_shape(probs)}, got {_shape(targets)}"
        )
    t = targets if is_traced(targets) else _cast(targets, probs)
    if logits:
        pos = log_sigmoid(probs)
        if pos_weight is not None:
            pos = pos * _cast(pos_weight, probs)
        loss = -(t * pos + (1 - t) * log_sigmoid(-probs))
    else:
        if pos_weight is not None:
            raise ValueError("binary_cross_entropy: pos_weight needs logits=True")
        if eps is None:
            eps = float(_np.finfo(_dtype(probs)).eps)
        p = wnp.clip(probs, eps, 1 - eps)
        loss = -(t * wnp.log(p) + (1 - t) * wnp.log1p(-p))
    if weights is not None:
        loss = loss * _cast(weights, probs)
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(logits: Array, targets: Array, weights: Array=None, reduction: str = "mean", pos_weight: Array=None) -> Array:  # fmt: skip
    """``binary_cross_entropy(logits, targets, logits=True)``: softplus(x) − t·x, stably."""
    return binary_cross_entropy(
        logits, targets, weights, reduction, logits=True, pos_weight=pos_weight
    )


# ---------------------------------------------------------------------------------------------
# Regression losses
# ---------------------------------------------------------------------------------------------


def _diff(pred, target, who):
    if _shape(target) != _shape(pred):
        try:
            _np.broadcast_shapes(_shape(pred), _shape(target))
        except ValueError:
            raise ValueError(
                f"{who}: target shape {_shape(target)} does not match prediction {_shape(pred)}"
            ) from None
    t = target if is_traced(target) else _cast(target, pred)
    return pred - t


def _batch(pred):
    s = _shape(pred)
    return s[0] if s else 1


def mse(pred: Array, target: Array, reduction: str = "mean") -> Array:
    """Mean squared error: mean over all elements of (pred − target)² (``"batch"``: the sum
    divided by N; MATLAB's half-mean-squared ``mse`` is ``l2(pred, target) / 2``)."""
    d = _diff(pred, target, "mse")
    return _reduce(d * d, reduction, "mse", batch=_batch(pred))


def l2(pred: Array, target: Array, reduction: str = "batch") -> Array:
    """L2 loss as MATLAB's ``l2loss``: Σ (pred − target)² divided by the batch size N
    (``reduction="batch"``, the default; also "mean", "sum", "none")."""
    d = _diff(pred, target, "l2")
    return _reduce(d * d, reduction, "l2", batch=_batch(pred))


def l1(pred: Array, target: Array, reduction: str = "batch") -> Array:
    """L1 loss as MATLAB's ``l1loss``: Σ |pred − target| divided by the batch size N
    (derivative sign(pred − target), 0 at equality)."""
    d = _diff(pred, target, "l1")
    return _reduce(wnp.abs(d), reduction, "l1", batch=_batch(pred))


def huber(pred: Array, target: Array, delta: float = 1.0, reduction: str = "batch") -> Array:
    """Huber loss (MATLAB's ``huber``): with d = pred − target,
    ½d² where |d| ≤ δ and δ(|d| − ½δ) elsewhere, summed and divided by the batch size N."""
    if delta <= 0:
        raise ValueError(f"huber: delta must be positive, got {delta}")
    d = _diff(pred, target, "huber")
    a = wnp.abs(d)
    small = primal_value(a) <= delta
    dq = wnp.where(small, d, 0)
    loss = wnp.where(small, 0.5 * (dq * dq), delta * (a - 0.5 * delta))
    return _reduce(loss, reduction, "huber", batch=_batch(pred))


def kl_div(
    pred: Array, target: Array, reduction: str = "batch", axis: int = 1, log_input: bool = False,
    from_logits: bool = False,
) -> Array:  # fmt: skip
    """Kullback-Leibler divergence KL(p ‖ q) = Σ_k p_k (log p_k − log q_k) of the model's
    distribution q = ``pred`` from the target p = ``target``, along the class ``axis``.

    ``pred`` holds probabilities, or log-probabilities with ``log_input=True``, or logits
    with ``from_logits=True`` (log q = log_softmax); terms with p_k = 0 are 0.  Probabilities
    are clipped at the dtype's machine epsilon before the log.  ``reduction="batch"``
    (default) sums and divides by N, the mathematically correct mean KL per sample.
    """
    ax = _class_axis(pred, axis, "kl_div")
    if _shape(target) != _shape(pred):
        raise ValueError(f"kl_div: target must have shape {_shape(pred)}, got {_shape(target)}")
    if from_logits:
        log_q = log_softmax(pred, axis=ax)
    elif log_input:
        log_q = pred
    else:
        log_q = wnp.log(wnp.clip(pred, float(_np.finfo(_dtype(pred)).eps), 1.0))
    p = target if is_traced(target) else _cast(target, pred)
    pv = primal_value(p)
    p_log_p = p * wnp.log(wnp.where(pv > 0, p, 1))
    per_obs = wnp.sum(p_log_p - p * log_q, axis=ax)
    return _reduce(per_obs, reduction, "kl_div", batch=_batch(pred))
