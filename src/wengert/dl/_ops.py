"""MATLAB's deep-learning operations on dlarrays (fullyconnect, dlconv, batchnorm, lstm, ...).

Each reads the C/B/S/T dimensions from the labels (or ``data_format``), permutes to the layout of
wengert.nn.functional / wengert.nn.losses, calls it, and permutes back with MATLAB's labels.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as _np

import wengert.numpy as wnp
from wengert.core import is_traced, primal_value
from wengert.dl._dlarray import _ORDER, _canonical, _order, _parse_fmt, _wrap, dlarray
from wengert.nn import functional as F
from wengert.nn import losses as L

__all__ = [
    "fullyconnect", "dlconv", "dltranspconv", "batchnorm", "layernorm", "instancenorm",
    "groupnorm", "maxpool", "avgpool", "lstm", "gru", "attention", "embed", "relu",
    "leakyrelu", "gelu", "sigmoid", "softmax", "crossentropy", "indexcrossentropy", "mse",
    "l1loss", "l2loss", "huber", "onehotencode", "onehotdecode",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Layout glue
# ---------------------------------------------------------------------------------------------


def _shape(v) -> tuple:
    return tuple(_np.shape(primal_value(v)))


def _prod(t) -> int:
    n = 1
    for v in t:
        n *= int(v)
    return n


def _val(x: Any) -> Any:
    """The data of a parameter (dlarray, tracer or array); None stays None."""
    if isinstance(x, dlarray):
        return x._value
    if x is None or is_traced(x):
        return x
    return _np.asarray(x)


def _vec(x: Any, n: int, who: str, name: str) -> Any:
    """A per-channel parameter (any shape with ``n`` elements) as a vector (n,)."""
    v = _val(x)
    if v is None:
        return None
    if _prod(_shape(v)) != n:
        raise ValueError(
            f"{who}: {name} must have {n} elements (one per channel), got shape {_shape(v)}"
        )
    return v if _shape(v) == (n,) else wnp.reshape(v, (n,))


def _bias(bias: Any, n: int, who: str):
    """A bias as (vector (n,) or None, scalar to add afterwards or None): MATLAB accepts one
    value per filter/output, or a scalar (0: none)."""
    if bias is None:
        return None, None
    bv = _val(bias)
    size = _prod(_shape(bv))
    if size == n and not (n == 1 and _shape(bv) == ()):
        return _vec(bv, n, who, "bias"), None
    if size == 1:
        if not is_traced(bv) and float(_np.asarray(bv)) == 0:
            return None, None
        return None, wnp.reshape(bv, ())
    raise ValueError(f"{who}: bias must have {n} elements (or be a scalar), got shape {_shape(bv)}")


def _add_scalar(y: Any, extra: Any) -> Any:
    if extra is None:
        return y
    if not is_traced(extra):  # a constant: in y's dtype (float32 stays float32)
        extra = _np.asarray(extra, dtype=_np.result_type(primal_value(y)))
    return y + extra


class _In:
    """An input brought to canonical (formatted) form; remembers how to give results back."""

    __slots__ = ("value", "fmt", "user", "perm")

    def __init__(self, X: Any, data_format: str | None, who: str) -> None:
        if isinstance(X, dlarray) and X._fmt:
            if data_format is not None:
                raise ValueError(
                    f"{who}: data_format is for unformatted input; this dlarray already has "
                    f"format {X._fmt!r}. Drop data_format, or stripdims(X) first."
                )
            self.value, self.fmt, self.user, self.perm = X._value, X._fmt, None, None
            return
        v = _val(X)
        if data_format is None:
            raise ValueError(
                f"{who}: the input is unformatted, so its dimensions are unknown. Pass "
                "data_format=... (MATLAB's DataFormat), e.g. data_format='SSCB', or label it "
                "with dlarray(X, 'SSCB')."
            )
        f = _parse_fmt(data_format, who)
        if len(f) < len(_shape(v)):
            raise ValueError(
                f"{who}: data_format {data_format!r} labels {len(f)} dimension(s) but the input "
                f"has {len(_shape(v))}."
            )
        canon, perm, extra = _canonical(f, len(_shape(v)))
        if extra:
            v = wnp.reshape(v, _shape(v) + (1,) * extra)
        if perm != tuple(range(len(perm))):
            v = wnp.transpose(v, perm)
        self.value, self.fmt, self.user, self.perm = v, canon, f, perm

    def axes(self, label: str) -> list[int]:
        return [i for i, c in enumerate(self.fmt) if c == label]

    def axis(self, label: str, who: str, required: bool = True) -> int | None:
        a = self.axes(label)
        if not a:
            if required:
                raise ValueError(
                    f"{who}: the input (format {self.fmt!r}) has no {label!r} dimension; "
                    f"{_WHAT[label]} is needed here."
                )
            return None
        return a[0]

    def like(self, T: Any, who: str, name: str = "targets") -> Any:
        """A second array (targets, mask...) in this input's canonical layout."""
        if isinstance(T, dlarray) and T._fmt:
            if T._fmt != self.fmt:
                raise ValueError(
                    f"{who}: {name} has format {T._fmt!r} but the predictions have {self.fmt!r}."
                )
            return T._value
        v = _val(T)
        if self.perm is not None:
            nd = len(_shape(v))
            if nd != len(self.perm):
                if nd < len(self.perm) and _prod(_shape(v)) == _prod(_shape(self.value)):
                    v = wnp.reshape(v, _shape(v) + (1,) * (len(self.perm) - nd))
                else:
                    raise ValueError(
                        f"{who}: {name} of shape {_shape(v)} does not match data_format "
                        f"{self.user!r}."
                    )
            v = wnp.transpose(v, self.perm)
        return v

    def out(self, value: Any, fmt: str) -> dlarray:
        """A result with canonical labels ``fmt``: formatted for formatted input; for
        unformatted input unformatted, in the order of data_format when the labels are the
        same, else in canonical order (as MATLAB)."""
        if self.user is None:
            return _wrap(value, fmt)
        if sorted(fmt) == sorted(self.user):
            perm = _order(fmt, self.user)
            if perm != tuple(range(len(perm))):
                value = wnp.transpose(value, perm)
        return _wrap(value, "")


_WHAT = {"C": "a channel dimension", "B": "a batch dimension", "S": "a spatial dimension",
         "T": "a time dimension", "U": "an unspecified dimension"}  # fmt: skip


def _canon_perm(labels: list[str]) -> tuple[int, ...]:
    return tuple(sorted(range(len(labels)), key=lambda i: (_ORDER.index(labels[i]), i)))


def _to_nc(x: _In, lead: list[int], c: int | None, inner: list[int]):
    """x permuted to (lead..., C, inner...) and reshaped to (N, C, *inner) with N the product
    of the lead axes (1 if none; C of size 1 if ``c`` is None)."""
    v = x.value
    shape = _shape(v)
    perm = lead + ([c] if c is not None else []) + inner
    if tuple(perm) != tuple(range(len(perm))):
        v = wnp.transpose(v, perm)
    lead_shape = tuple(shape[i] for i in lead)
    cs = shape[c] if c is not None else 1
    new = (_prod(lead_shape), cs) + tuple(shape[i] for i in inner)
    if _shape(v) != new:
        v = wnp.reshape(v, new)
    return v, lead_shape


def _from_nc(y: Any, x: _In, lead: list[int], inner: list[int]):
    """The inverse of ``_to_nc`` on a result (N, C', *inner'): back to canonical labels."""
    ys = _shape(y)
    lead_shape = tuple(_shape(x.value)[i] for i in lead)
    y = wnp.reshape(y, lead_shape + ys[1:])
    labels = [x.fmt[i] for i in lead] + ["C"] + [x.fmt[i] for i in inner]
    perm = _canon_perm(labels)
    if perm != tuple(range(len(perm))):
        y = wnp.transpose(y, perm)
    return y, "".join(labels[i] for i in perm)


def _ints(v: Any, d: int, who: str, name: str) -> tuple:
    a = _np.asarray(v).reshape(-1)
    if a.size == 1:
        a = _np.repeat(a, d)
    if a.size != d:
        raise ValueError(f"{who}: {name} must be a scalar or have {d} elements, got {v!r}")
    return tuple(operator.index(int(t)) for t in a)


def _padding(p: Any, d: int, who: str, name: str = "padding"):
    """MATLAB's Padding/Cropping (scalar, d-vector, or 2-by-d [before; after]) as nn's."""
    if isinstance(p, str):
        if p.lower() == "same":
            return "same"
        raise ValueError(
            f"{who}: {name} must be 'same', a scalar, a vector or a 2-by-d matrix, not {p!r}"
        )
    a = _np.asarray(p)
    if a.ndim == 2:
        if a.shape != (2, d):
            raise ValueError(
                f"{who}: a {name} matrix must be 2-by-{d} ([before; after]), got {a.shape}"
            )
        return tuple((int(a[0, i]), int(a[1, i])) for i in range(d))
    return _ints(a, d, who, name)


def _conv_axes(x: _In, d: int, who: str, labels: str | None = None):
    """The axes convolved/pooled over.  With ``labels`` (the S/T letters of MATLAB's
    WeightsFormat/PoolFormat) exactly those; else the S axes, plus T when the filter has one
    more dimension (or T alone for data without S)."""
    s, t = x.axes("S"), x.axes("T")
    if labels is not None:
        ns, want_t = labels.count("S"), "T" in labels
        if ns != len(s) or (want_t and not t):
            raise ValueError(
                f"{who}: the format {labels!r} does not fit the input's format {x.fmt!r} (its "
                "S dimensions must match the input's, and a T needs a T in the input)"
            )
        return s + (t if want_t else [])
    if d == len(s):
        return s
    if t and d == len(s) + 1:
        return s + t
    raise ValueError(
        f"{who}: the filter/pool has {d} spatial dimension(s) but the input (format {x.fmt!r}) "
        f"has {len(s)} S dimension(s){' and a T dimension' if t else ''}."
    )


def _weights_layout(weights: Any, weights_format: str | None, who: str):
    """Filter weights as (filter dims S..., T, C, U...) data, with the S/T letters, or
    (data, None) when no format says where the dimensions are."""
    w = _val(weights)
    fmt = weights._fmt if isinstance(weights, dlarray) and weights._fmt else None
    if weights_format is not None:
        if fmt is not None:
            raise ValueError(
                f"{who}: weights_format is for unformatted weights (these are {fmt!r})"
            )
        fmt = _parse_fmt(weights_format, who)
        if len(fmt) != len(_shape(w)):
            raise ValueError(
                f"{who}: weights_format {weights_format!r} does not match weights of shape {_shape(w)}"
            )
    if fmt is None:
        return w, None
    if "C" not in fmt or "B" in fmt or not 1 <= fmt.count("U") <= 2:
        raise ValueError(
            f"{who}: a weights format has the filter's S/T dimensions, one C and one or two U; got {fmt!r}"
        )
    want = "S" * fmt.count("S") + "T" * fmt.count("T") + "C" + "U" * fmt.count("U")
    perm = _order(fmt, want)
    if perm != tuple(range(len(perm))):
        w = wnp.transpose(w, perm)
    return w, want[: len(want) - 1 - fmt.count("U")]


def _no_u(x: _In, who: str) -> None:
    if "U" in x.fmt:
        raise ValueError(
            f"{who}: the input has unspecified (U) dimensions ({x.fmt!r}); relabel them as S, "
            "C, B or T."
        )


# ---------------------------------------------------------------------------------------------
# Dense, convolution
# ---------------------------------------------------------------------------------------------


def fullyconnect(
    X: Any, weights: Any, bias: Any = None, *, data_format: str | None = None
) -> dlarray:
    """y = W·x + b for every observation (and time step): ``weights`` (outputSize, inputSize),
    ``bias`` outputSize elements.  The S and C dimensions of X make the inputSize features,
    flattened in MATLAB's column-major order; the output has format "CB" ("CBT" with time)."""
    who = "fullyconnect"
    x = _In(X, data_format, who)
    _no_u(x, who)
    feat = x.axes("S") + x.axes("C")
    if not feat:
        raise ValueError(f"{who}: the input (format {x.fmt!r}) has no C or S dimension to connect")
    lead = x.axes("B") + x.axes("T")
    shape = _shape(x.value)
    v = x.value
    # column-major flattening of (S..., C): reverse the feature axes, then C-order reshape
    perm = lead + feat[::-1]
    if tuple(perm) != tuple(range(len(perm))):
        v = wnp.transpose(v, perm)
    lead_shape = tuple(shape[i] for i in lead)
    n_in = _prod(shape[i] for i in feat)
    v = wnp.reshape(v, (_prod(lead_shape), n_in))
    w = weights._value if isinstance(weights, dlarray) else _val(weights)
    if isinstance(weights, dlarray) and weights._fmt and weights._fmt != "UC":
        w = wnp.transpose(w, _order(weights._fmt, "U" + weights._fmt.replace("U", "", 1)))
    ws = _shape(w)
    if len(ws) > 2:  # (out, S..., C) weights: flatten column-major like the input
        w = wnp.reshape(wnp.transpose(w, (0,) + tuple(range(len(ws) - 1, 0, -1))), (ws[0], -1))
        ws = _shape(w)
    if len(ws) != 2 or ws[1] != n_in:
        raise ValueError(
            f"{who}: weights must be outputSize-by-inputSize with inputSize = {n_in} (the S and "
            f"C elements of one observation); got {ws}"
        )
    b, extra = _bias(bias, ws[0], who)
    y = _add_scalar(F.fully_connect(v, w, b), extra)  # (N, out)
    y = wnp.reshape(y, lead_shape + (ws[0],))
    labels = [x.fmt[i] for i in lead] + ["C"]
    p = _canon_perm(labels)
    if p != tuple(range(len(p))):
        y = wnp.transpose(y, p)
    return x.out(y, "".join(labels[i] for i in p))


def _pad_value_mode(value: Any, who: str):
    if isinstance(value, str):
        modes = {"symmetric-include-edge": "symmetric", "symmetric-exclude-edge": "reflect",
                 "replicate": "edge"}  # fmt: skip
        if value.lower() not in modes:
            raise ValueError(
                f"{who}: padding_value must be a number or one of {sorted(modes)}, not {value!r}"
            )
        return modes[value.lower()], {}
    return "constant", {"constant_values": float(value)}


def _explicit_pad(v, padding, d, kernel, stride, dilation, padding_value, who):
    """Pad (N, C, *S) data with a non-zero PaddingValue; returns the padded data and padding 0."""
    from wengert.nn.functional._conv import resolve_padding

    lo, hi = resolve_padding(padding, d, _shape(v)[2:], kernel, stride, dilation, who)
    mode, kw = _pad_value_mode(padding_value, who)
    widths = ((0, 0), (0, 0)) + tuple(zip(lo, hi))
    return wnp.pad(v, widths, mode=mode, **kw), 0


def _is_grouped(x: _In, ws: tuple, plain_fits: bool, grouped_fits: bool) -> bool:
    """Whether filter weights of shape ``ws`` are MATLAB's grouped layout (one more trailing
    dimension, numGroups): the plain layout is preferred when both read consistently."""
    nsp, has_t = len(x.axes("S")), bool(x.axes("T"))
    dims_ok = {n for n in (nsp, nsp + 1 if has_t else -1) if n >= 1} or ({1} if has_t else set())
    if len(ws) - 2 in dims_ok and plain_fits:
        return False
    return len(ws) - 3 in dims_ok and grouped_fits


def _conv_operands(X, weights, data_format, weights_format, who, transposed=False):
    """What ``dlconv`` and ``dltranspconv`` share: the input in wengert.nn's (N, C, *S)
    layout and the weights turned from MATLAB's filterSize×numChannels×numFilters (transposed:
    filterSize×numFilters×numChannels; grouped: ×numGroups) into wengert.nn's layout.
    Returns ``(x, v, wn, ws, d, groups, inner, lead)``."""
    layout = (
        "filterSize×numFilters×numChannels" if transposed else "filterSize×numChannels×numFilters"
    )
    x = _In(X, data_format, who)
    _no_u(x, who)
    w, labels = _weights_layout(weights, weights_format, who)
    ws = _shape(w)
    c = x.axis("C", who)
    cin = _shape(x.value)[c]
    if labels is None:
        if transposed:
            grouped = _is_grouped(x, ws, ws[-1] == cin, ws[-2] * ws[-1] == cin)
        else:
            grouped = _is_grouped(x, ws, ws[-2] == cin, ws[-3] * ws[-1] == cin)
    else:
        grouped = len(ws) - len(labels) == 3
    d = len(ws) - 3 if grouped else len(ws) - 2
    if d < 1:
        raise ValueError(f"{who}: weights must be {layout}, got {ws}")
    inner = _conv_axes(x, d, who, labels)
    lead = [i for i in x.axes("B") + x.axes("T") if i not in inner]
    v, _ = _to_nc(x, lead, c, inner)
    kd = tuple(range(d))
    if grouped:
        g = ws[-1]
        wn = wnp.transpose(w, (d + 2, d + 1, d) + kd)  # (G, F or C per group, the other, k...)
        wn = wnp.reshape(wn, (g * ws[d + 1], ws[d]) + ws[:d])
    else:
        g = 1
        wc = ws[d + 1] if transposed else ws[d]
        if wc != cin:
            raise ValueError(
                f"{who}: weights {ws} expect {wc} channels but the input has {cin}; MATLAB's "
                f"layout is {layout}"
            )
        wn = wnp.transpose(w, (d + 1, d) + kd)  # (F, C, k...); transposed: (C_in, F, k...)
    return x, v, wn, ws, d, g, inner, lead


def dlconv(
    X: Any, weights: Any, bias: Any = None, *, stride: Any = 1, dilation_factor: Any = 1,
    padding: Any = 0, padding_value: Any = 0, data_format: str | None = None,
    weights_format: str | None = None,
) -> dlarray:  # fmt: skip
    """Deep-learning convolution (cross-correlation) over the S dimensions of X (and T when the
    filter has one more dimension).  ``weights`` is filterSize×numChannels×numFilters
    (filterSize×numChannelsPerGroup×numFiltersPerGroup×numGroups for grouped convolution),
    ``bias`` numFilters elements (or a scalar).  ``padding``: "same", a scalar, one value per
    dimension, or a 2-by-d [before; after] matrix; ``padding_value``: a number,
    "symmetric-include-edge", "symmetric-exclude-edge" or "replicate".  The output has X's
    format with numFilters channels."""
    who = "dlconv"
    x, v, wn, ws, d, g, inner, lead = _conv_operands(X, weights, data_format, weights_format, who)
    nf = _shape(wn)[0]
    stride, dil = _ints(stride, d, who, "stride"), _ints(dilation_factor, d, who, "dilation_factor")
    pad = _padding(padding, d, who)
    if not (isinstance(padding_value, (int, float)) and padding_value == 0):
        v, pad = _explicit_pad(v, pad, d, ws[:d], stride, dil, padding_value, who)
    b, extra = _bias(bias, nf, who)
    y = _add_scalar(F.conv_general(v, wn, b, stride, pad, dil, g, who=who), extra)
    y, fmt = _from_nc(y, x, lead, inner)
    return x.out(y, fmt)


def dltranspconv(
    X: Any, weights: Any, bias: Any = None, *, stride: Any = 1, dilation_factor: Any = 1,
    cropping: Any = 0, data_format: str | None = None, weights_format: str | None = None,
) -> dlarray:  # fmt: skip
    """Transposed convolution (the adjoint of ``dlconv`` in X).  ``weights`` is
    filterSize×numFilters×numChannels (filterSize×numFiltersPerGroup×numChannelsPerGroup×
    numGroups grouped); output size (in − 1)·stride + dilation·(filter − 1) + 1 − cropping,
    ``cropping="same"`` giving in·stride."""
    who = "dltranspconv"
    x, v, wn, ws, d, g, inner, lead = _conv_operands(
        X, weights, data_format, weights_format, who, transposed=True
    )
    stride, dil = _ints(stride, d, who, "stride"), _ints(dilation_factor, d, who, "dilation_factor")
    crop = _padding(cropping, d, who, "cropping")
    opad = (0,) * d
    if crop == "same":  # output = input·stride: crop the excess, the odd one at the end
        pairs, op = [], []
        for k, s, r in zip(ws[:d], stride, dil):
            total = r * (k - 1) + 1 - s
            if total >= 0:
                pairs.append((total // 2, total - total // 2))
                op.append(0)
            else:
                pairs.append((0, 0))
                op.append(-total)
        crop, opad = tuple(pairs), tuple(op)
    nf = _shape(wn)[1] * g
    b, extra = _bias(bias, nf, who)
    from wengert.nn.functional._conv import conv_transpose_general

    y = _add_scalar(conv_transpose_general(v, wn, b, stride, crop, opad, dil, g, who=who), extra)
    y, fmt = _from_nc(y, x, lead, inner)
    return x.out(y, fmt)


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------


def _channels_last(x: _In, who: str):
    """(M, C): every non-C axis folded into M (the C axis last)."""
    c = x.axis("C", who)
    others = [i for i in range(len(x.fmt)) if i != c]
    v = x.value
    perm = others + [c]
    if tuple(perm) != tuple(range(len(perm))):
        v = wnp.transpose(v, perm)
    shape = _shape(x.value)
    return wnp.reshape(v, (-1, shape[c])), perm


def _undo_channels_last(y, x: _In, perm):
    shape = _shape(x.value)
    y = wnp.reshape(y, tuple(shape[i] for i in perm))
    inv = tuple(_np.argsort(perm))
    return wnp.transpose(y, inv) if inv != tuple(range(len(inv))) else y


def _stat(old: Any, new: _np.ndarray) -> Any:
    """A running statistic returned in the type and shape it came in."""
    new = new.reshape(_np.shape(primal_value(_val(old))))
    return dlarray(new) if isinstance(old, dlarray) else new


def batchnorm(
    X: Any, offset: Any, scale_factor: Any, running_mu: Any = None, running_sigma_sq: Any = None,
    *, training: bool = True, return_stats: bool = False, data_format: str | None = None,
    epsilon: float = 1e-5, mean_decay: float = 0.1, variance_decay: float = 0.1,
) -> Any:  # fmt: skip
    """Batch normalisation per channel over all other dimensions (S, T, B, U):
    y = γ·(x − μ)/√(σ² + ε) + β.

    * ``batchnorm(X, offset, scale)`` → Y, normalised with the statistics of X
      (``return_stats=True``: ``(Y, mu, sigma_sq)`` of this batch, sigma_sq unbiased).
    * ``batchnorm(X, offset, scale, running_mu, running_sigma_sq)`` → ``(Y, running_mu,
      running_sigma_sq)`` updated as (1 − decay)·old + decay·batch (batch variance unbiased,
      as wengert.nn), or with ``training=False`` just Y normalised by the given statistics
      (MATLAB picks these modes by the number of outputs).
    """
    who = "batchnorm"
    x = _In(X, data_format, who)
    v, perm = _channels_last(x, who)
    c = _shape(v)[1]
    beta, gamma = _vec(offset, c, who, "offset"), _vec(scale_factor, c, who, "scale_factor")
    have_stats = running_mu is not None or running_sigma_sq is not None
    if have_stats and (running_mu is None or running_sigma_sq is None):
        raise ValueError(f"{who}: give both running_mu and running_sigma_sq, or neither")
    if have_stats and not training:
        rm = _vec(running_mu, c, who, "running_mu")
        rv = _vec(running_sigma_sq, c, who, "running_sigma_sq")
        y = F.batch_norm(v, gamma, beta, rm, rv, training=False, eps=epsilon)
        return x.out(_undo_channels_last(y, x, perm), x.fmt)
    y, bm, bv = F.batch_norm(v, gamma, beta, training=True, momentum=1.0, eps=epsilon)
    y = x.out(_undo_channels_last(y, x, perm), x.fmt)
    if not have_stats:
        return (y, bm, bv) if return_stats else y
    om = _np.asarray(primal_value(_val(running_mu)), dtype=bm.dtype).reshape(c)
    ov = _np.asarray(primal_value(_val(running_sigma_sq)), dtype=bv.dtype).reshape(c)
    new_m = (1 - mean_decay) * om + mean_decay * bm
    new_v = (1 - variance_decay) * ov + variance_decay * bv
    return (
        y,
        _stat(running_mu, new_m.astype(bm.dtype)),
        _stat(running_sigma_sq, new_v.astype(bv.dtype)),
    )


def layernorm(
    X: Any, offset: Any, scale_factor: Any, *, data_format: str | None = None,
    epsilon: float = 1e-5, operation_dimension: str = "auto",
) -> dlarray:  # fmt: skip
    """Layer normalisation per observation: over the channels ("channel-only"), the spatial
    dimensions and channels ("spatial-channel"), or everything but the batch
    ("batch-excluded"); "auto" is spatial-channel for data with S dimensions, else
    channel-only.  Then the per-channel affine map γ (``scale_factor``), β (``offset``)."""
    who = "layernorm"
    x = _In(X, data_format, who)
    c = x.axis("C", who)
    mode = operation_dimension.lower()
    if mode == "auto":
        mode = "spatial-channel" if x.axes("S") else "channel-only"
    if mode == "channel-only":
        norm = []
    elif mode == "spatial-channel":
        norm = x.axes("S")
    elif mode == "batch-excluded":
        norm = [i for i in range(len(x.fmt)) if x.fmt[i] != "B" and i != c]
    else:
        raise ValueError(
            f"{who}: operation_dimension must be 'auto', 'channel-only', 'spatial-channel' or "
            f"'batch-excluded', not {operation_dimension!r}"
        )
    keep = [i for i in range(len(x.fmt)) if i != c and i not in norm]
    perm = keep + norm + [c]
    v = x.value
    if tuple(perm) != tuple(range(len(perm))):
        v = wnp.transpose(v, perm)
    n = _shape(x.value)[c]
    beta, gamma = _vec(offset, n, who, "offset"), _vec(scale_factor, n, who, "scale_factor")
    if not norm:
        y = F.layer_norm(v, gamma=gamma, beta=beta, eps=epsilon)
    else:
        y = F.layer_norm(v, eps=epsilon, axes=tuple(range(len(keep), len(perm))))
        if gamma is not None:
            y = y * gamma
        if beta is not None:
            y = y + beta
    inv = tuple(_np.argsort(perm))
    if inv != tuple(range(len(inv))):
        y = wnp.transpose(y, inv)
    return x.out(y, x.fmt)


def instancenorm(
    X: Any, offset: Any, scale_factor: Any, *, data_format: str | None = None, epsilon: float = 1e-5
) -> dlarray:
    """Instance normalisation: each channel of each observation over its S and T dimensions,
    then the per-channel affine map."""
    who = "instancenorm"
    x = _In(X, data_format, who)
    c = x.axis("C", who)
    inner = x.axes("S") + x.axes("T")
    if not inner:
        raise ValueError(
            f"{who}: the input (format {x.fmt!r}) has no S or T dimension to normalise over"
        )
    lead = [i for i in range(len(x.fmt)) if i != c and i not in inner]
    v, _ = _to_nc(x, lead, c, inner)
    n = _shape(v)[1]
    y = F.instance_norm(
        v, _vec(scale_factor, n, who, "scale_factor"), _vec(offset, n, who, "offset"), eps=epsilon
    )
    y, fmt = _from_nc(y, x, lead, inner)
    return x.out(y, fmt)


def groupnorm(
    X: Any, num_groups: Any, offset: Any, scale_factor: Any, *, data_format: str | None = None,
    epsilon: float = 1e-5,
) -> dlarray:  # fmt: skip
    """Group normalisation: the channels split into ``num_groups`` groups (or "all-channels",
    "channel-wise"), each normalised per observation over its channels and the S, T and U
    dimensions; then the per-channel affine map."""
    who = "groupnorm"
    x = _In(X, data_format, who)
    c = x.axis("C", who)
    lead = x.axes("B")
    inner = [i for i in range(len(x.fmt)) if i != c and i not in lead]
    v, _ = _to_nc(x, lead, c, inner)
    n = _shape(v)[1]
    if isinstance(num_groups, str):
        mode = num_groups.lower()
        if mode not in ("all-channels", "channel-wise"):
            raise ValueError(
                f"{who}: num_groups must be a positive integer, 'all-channels' or 'channel-wise'"
            )
        num_groups = 1 if mode == "all-channels" else n
    y = F.group_norm(
        v,
        int(num_groups),
        _vec(scale_factor, n, who, "scale_factor"),
        _vec(offset, n, who, "offset"),
        eps=epsilon,
    )
    y, fmt = _from_nc(y, x, lead, inner)
    return x.out(y, fmt)


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------


def _pool_setup(x: _In, pool_size: Any, pool_format: str | None, who: str):
    _no_u(x, who)
    labels = None
    if pool_format is not None:
        labels = _parse_fmt(pool_format, who)
        if labels.replace("S", "").replace("T", "") or labels.count("T") > 1:
            raise ValueError(
                f"{who}: pool_format is made of S and (at most one) T, got {pool_format!r}"
            )
    if isinstance(pool_size, str):
        if pool_size.lower() != "global":
            raise ValueError(f"{who}: pool_size must be sizes or 'global', not {pool_size!r}")
        inner = _conv_axes(x, 0, who, labels) if labels else (x.axes("S") or x.axes("T"))
        if not inner:
            raise ValueError(f"{who}: the input (format {x.fmt!r}) has no S or T dimension to pool")
        return None, inner
    ps = _np.asarray(pool_size).reshape(-1)
    if labels is not None:
        d = len(labels)
    else:
        d = len(x.axes("S")) if ps.size == 1 else ps.size
        if d == 0 and x.axes("T"):
            d = 1
    inner = _conv_axes(x, d, who, labels)
    return _ints(ps, d, who, "pool_size"), inner


def maxpool(
    X: Any, pool_size: Any, *, stride: Any = 1, padding: Any = 0, data_format: str | None = None,
    pool_format: str | None = None, return_indices: bool = False,
) -> Any:  # fmt: skip
    """Max pooling over the S dimensions (T for sequence data) with windows ``pool_size``
    (or ``"global"``: the max over all of them, kept as size-1 dimensions).  ``padding`` pads
    with −∞.  ``return_indices=True`` returns ``(Y, indices, input_size)``: each maximum's
    flat index within its pooled plane (0-based, in the output's layout)."""
    who = "maxpool"
    x = _In(X, data_format, who)
    kernel, inner = _pool_setup(x, pool_size, pool_format, who)
    c = x.axis("C", who, required=False)
    lead = [i for i in range(len(x.fmt)) if i != c and i not in inner]
    v, _ = _to_nc(x, lead, c, inner)
    if kernel is None:
        y = F.global_max_pool(v, keepdims=True)
        idx = None
    else:
        d = len(kernel)
        if d > 3:
            raise ValueError(f"{who}: pooling over {d} dimensions is not supported (at most 3)")
        fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[d - 1]
        out = fn(v, kernel, _ints(stride, d, who, "stride"), _padding(padding, d, who),
                 return_indices=return_indices)  # fmt: skip
        y, idx = out if return_indices else (out, None)
    y, fmt = _pool_back(y, x, lead, inner, c)
    res = x.out(y, fmt)
    if not return_indices:
        return res
    if idx is None:
        raise ValueError(f"{who}: return_indices is not available for 'global' pooling")
    ind, _ = _pool_back(_np.asarray(idx), x, lead, inner, c)
    return res, _np.asarray(ind), _shape(_val(X))


def _pool_back(y, x: _In, lead, inner, c):
    """``_from_nc`` for pooling, removing the size-1 channel axis added to data without C."""
    y, fmt = _from_nc(y, x, lead, inner)
    if c is None:
        k = fmt.index("C")
        y = wnp.reshape(y, _shape(y)[:k] + _shape(y)[k + 1 :])
        fmt = fmt[:k] + fmt[k + 1 :]
    return y, fmt


def avgpool(
    X: Any, pool_size: Any, *, stride: Any = 1, padding: Any = 0, padding_value: Any = 0,
    data_format: str | None = None, pool_format: str | None = None,
) -> dlarray:  # fmt: skip
    """Average pooling over the S dimensions (T for sequence data); ``"global"`` averages
    over all of them.  ``padding_value=0`` counts padding in the window size; ``"mean"``
    averages the real elements only."""
    who = "avgpool"
    x = _In(X, data_format, who)
    kernel, inner = _pool_setup(x, pool_size, pool_format, who)
    c = x.axis("C", who, required=False)
    lead = [i for i in range(len(x.fmt)) if i != c and i not in inner]
    v, _ = _to_nc(x, lead, c, inner)
    if kernel is None:
        y = F.global_avg_pool(v, keepdims=True)
    else:
        d = len(kernel)
        if d > 3:
            raise ValueError(f"{who}: pooling over {d} dimensions is not supported (at most 3)")
        if isinstance(padding_value, str):
            if padding_value.lower() != "mean":
                raise ValueError(f"{who}: padding_value must be 0 or 'mean', not {padding_value!r}")
            include = False
        elif padding_value == 0:
            include = True
        else:
            raise ValueError(f"{who}: padding_value must be 0 or 'mean', not {padding_value!r}")
        fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[d - 1]
        y = fn(
            v,
            kernel,
            _ints(stride, d, who, "stride"),
            _padding(padding, d, who),
            count_include_pad=include,
        )
    y, fmt = _pool_back(y, x, lead, inner, c)
    return x.out(y, fmt)


# ---------------------------------------------------------------------------------------------
# Recurrent layers, attention, embedding
# ---------------------------------------------------------------------------------------------


def _seq(x: _In, who: str):
    """(N, T, C) data for the recurrent layers, and the input's B/T presence."""
    c = x.axis("C", who)
    if x.axes("S") or x.axes("U"):
        raise ValueError(f"{who}: the input must have format 'CBT', 'CB' or 'CT', got {x.fmt!r}")
    b, t = x.axis("B", who, False), x.axis("T", who, False)
    shape = _shape(x.value)
    v = x.value
    perm = [i for i in (b, t) if i is not None] + [c]
    if tuple(perm) != tuple(range(len(perm))):
        v = wnp.transpose(v, perm)
    n = shape[b] if b is not None else 1
    steps = shape[t] if t is not None else 1
    return wnp.reshape(v, (n, steps, shape[c])), b is not None, t is not None


def _state(s: Any, n: int, h: int, who: str, name: str) -> Any:
    """An initial state (H,), (H, 1) or (H, N) (or formatted "CB") as nn's (N, H)."""
    v = _val(s)
    if isinstance(s, dlarray) and s._fmt and s._fmt != "CB":
        if s._fmt == "C":
            v = wnp.reshape(v, (h, 1))
        else:
            raise ValueError(f"{who}: {name} must have format 'CB' or 'C', got {s._fmt!r}")
    shape = _shape(v)
    if _prod(shape) == h:
        return wnp.broadcast_to(wnp.reshape(v, (1, h)), (n, h))
    if shape == (h, n):
        return wnp.transpose(v)
    raise ValueError(
        f"{who}: {name} must be numHiddenUnits-by-1 or -by-numObservations ({h}×{n}), got {shape}"
    )


def _seq_out(y, x: _In, has_b: bool, has_t: bool):
    """nn's (N, T, H) back to canonical "CBT" (without B/T if the input had none)."""
    y = wnp.transpose(y, (2, 0, 1))  # (H, N, T)
    shape = _shape(y)
    keep = (shape[0],) + ((shape[1],) if has_b else ()) + ((shape[2],) if has_t else ())
    fmt = "C" + ("B" if has_b else "") + ("T" if has_t else "")
    return x.out(wnp.reshape(y, keep), fmt)


def _final(s, x: _In, has_b: bool):
    """A final state (N, H) as "CB" (or "C" when the input had no batch)."""
    st = wnp.transpose(s)
    if not has_b:
        st = wnp.reshape(st, (_shape(st)[0],))
    fmt = "CB" if has_b else "C"
    return _wrap(st, fmt if x.user is None else "")


def _default_acts(state: str, gate: str, who: str) -> None:
    if state.lower() != "tanh" or gate.lower() != "sigmoid":
        raise NotImplementedError(
            f"{who}: only state_activation_function='tanh' and gate_activation_function="
            "'sigmoid' are available (wengert.nn.functional has no softsign/relu/hard-sigmoid "
            "recurrent cells)."
        )


def lstm(
    X: Any, H0: Any, C0: Any, weights: Any, recurrent_weights: Any, bias: Any, *,
    data_format: str | None = None, state_activation_function: str = "tanh",
    gate_activation_function: str = "sigmoid",
) -> tuple[dlarray, dlarray, dlarray]:  # fmt: skip
    """Long short-term memory over the T dimension: ``weights`` (4·numHiddenUnits)×inputSize,
    ``recurrent_weights`` (4H)×H, ``bias`` 4H, gates stacked (input, forget, cell candidate,
    output) as MATLAB.  Returns ``(Y, hidden_state, cell_state)``: Y "CBT" (H channels), the
    final states "CB"."""
    who = "lstm"
    _default_acts(state_activation_function, gate_activation_function, who)
    x = _In(X, data_format, who)
    v, has_b, has_t = _seq(x, who)
    n = _shape(v)[0]
    w, r = _val(weights), _val(recurrent_weights)
    h = _shape(r)[-1]
    b = _vec(bias, 4 * h, who, "bias")
    h0, c0 = _state(H0, n, h, who, "H0"), _state(C0, n, h, who, "C0")
    y, hs, cs = F.lstm(v, h0, c0, w, r, b)
    return _seq_out(y, x, has_b, has_t), _final(hs, x, has_b), _final(cs, x, has_b)


def gru(
    X: Any, H0: Any, weights: Any, recurrent_weights: Any, bias: Any, *,
    data_format: str | None = None, reset_gate_mode: str = "after-multiplication",
    state_activation_function: str = "tanh", gate_activation_function: str = "sigmoid",
) -> tuple[dlarray, dlarray]:  # fmt: skip
    """Gated recurrent unit over the T dimension: ``weights`` (3H)×inputSize,
    ``recurrent_weights`` (3H)×H, gates stacked (reset, update, candidate), h ← (1 − z)⊙h̃ +
    z⊙h.  ``reset_gate_mode``: "after-multiplication" (``bias`` 3H) or
    "recurrent-bias-after-multiplication" (``bias`` 6H: input then recurrent biases).
    Returns ``(Y, hidden_state)``."""
    who = "gru"
    _default_acts(state_activation_function, gate_activation_function, who)
    mode = reset_gate_mode.lower()
    if mode == "before-multiplication":
        raise NotImplementedError(
            "gru: reset_gate_mode='before-multiplication' is not available (wengert.nn."
            "functional.gru applies the reset gate after the recurrent product)."
        )
    if mode not in ("after-multiplication", "recurrent-bias-after-multiplication"):
        raise ValueError(f"gru: unknown reset_gate_mode {reset_gate_mode!r}")
    x = _In(X, data_format, who)
    v, has_b, has_t = _seq(x, who)
    n = _shape(v)[0]
    w, r = _val(weights), _val(recurrent_weights)
    h = _shape(r)[-1]
    if mode == "after-multiplication":
        b_ih, b_hh = _vec(bias, 3 * h, who, "bias"), None
    else:
        b = _vec(bias, 6 * h, who, "bias")
        b_ih, b_hh = b[: 3 * h], b[3 * h :]
    y, hs = F.gru(v, _state(H0, n, h, who, "H0"), w, r, b_ih, b_hh)
    return _seq_out(y, x, has_b, has_t), _final(hs, x, has_b)


def _nlc(x: _In, who: str):
    """(N, L, C): batch first, every S/T position in one sequence axis, channels last."""
    c = x.axis("C", who)
    if x.axes("U"):
        raise ValueError(f"{who}: U dimensions are not supported ({x.fmt!r})")
    b = x.axes("B")
    seq = x.axes("S") + x.axes("T")
    shape = _shape(x.value)
    perm = b + seq + [c]
    v = x.value if tuple(perm) == tuple(range(len(perm))) else wnp.transpose(x.value, perm)
    n = shape[b[0]] if b else 1
    return wnp.reshape(v, (n, -1, shape[c])), b, seq


def attention(
    queries: Any, keys: Any, values: Any, num_heads: int, *, data_format: str | None = None,
    scale: Any = "auto", padding_mask: Any = None, attention_mask: Any = "none",
    dropout_probability: float = 0.0, return_weights: bool = False,
) -> Any:  # fmt: skip
    """Multi-head scaled dot-product attention: the channels of queries, keys and values
    split into ``num_heads`` contiguous blocks; per head softmax(scale·kᵀq)·v.  Sequence
    positions are the S/T dimensions, observations B.  ``attention_mask``: "none",
    "causal" or an array numKeys×numQueries(×numObservations), nonzero = attend;
    ``padding_mask``: nonzero at the keys' real (non-padding) positions, the keys' shape
    (channels optional).  Returns Y in the queries' format (the values' channel count), and
    with ``return_weights=True`` also the weights numKeys×numQueries×numHeads×numObservations.
    """
    who = "attention"
    q = _In(queries, data_format, who)
    k = _In(keys, data_format, who)
    vv = _In(values, data_format, who)
    qn, qb, qseq = _nlc(q, who)
    kn, _, kseq = _nlc(k, who)
    vn, _, _ = _nlc(vv, who)
    n, lq, dq = _shape(qn)
    lk = _shape(kn)[1]
    dv = _shape(vn)[2]
    if dq % num_heads or dv % num_heads or _shape(kn)[2] != dq:
        raise ValueError(
            f"{who}: queries and keys need the same channel count, and it and the values' must "
            f"divide by num_heads={num_heads}; got {dq}, {_shape(kn)[2]}, {dv}"
        )

    def heads(a, length, dim):
        return wnp.transpose(wnp.reshape(a, (n, length, num_heads, dim // num_heads)), (0, 2, 1, 3))

    allowed = None
    causal = False
    if isinstance(attention_mask, str):
        if attention_mask.lower() == "causal":
            causal = True
        elif attention_mask.lower() != "none":
            raise ValueError(f"{who}: attention_mask must be 'none', 'causal' or an array")
    elif attention_mask is not None:
        m = _np.asarray(primal_value(_val(attention_mask))) != 0
        if m.ndim == 2:
            allowed = m.T[None, None]
        elif m.ndim == 3:
            allowed = _np.transpose(m, (2, 1, 0))[:, None]
        else:
            raise ValueError(f"{who}: attention_mask must be numKeys×numQueries(×numObservations)")
    if padding_mask is not None:
        pm = _padding_mask(padding_mask, k, who)
        keep = pm.reshape(n, lk)[:, None, None, :]
        allowed = keep if allowed is None else allowed & keep
    sc = None if isinstance(scale, str) and scale.lower() == "auto" else float(scale)
    rng = _np.random.default_rng() if dropout_probability else None
    out = F.attention(heads(qn, lq, dq), heads(kn, lk, dq), heads(vn, lk, dv), mask=allowed,
                      causal=causal, dropout_p=dropout_probability, rng=rng, scale=sc,
                      return_weights=return_weights)  # fmt: skip
    y, wts = out if return_weights else (out, None)
    y = wnp.reshape(wnp.transpose(y, (0, 2, 1, 3)), (n, lq, dv))  # (N, Lq, dv)
    # back to the queries' layout: (B..., seq..., C) then canonical
    qshape = _shape(q.value)
    lead = tuple(qshape[i] for i in qb + qseq)
    y = wnp.reshape(y, lead + (dv,))
    labels = [q.fmt[i] for i in qb + qseq] + ["C"]
    p = _canon_perm(labels)
    y = wnp.transpose(y, p) if p != tuple(range(len(p))) else y
    res = q.out(y, "".join(labels[i] for i in p))
    if not return_weights:
        return res
    return res, _wrap(wnp.transpose(wts, (3, 2, 1, 0)), "")


def _padding_mask(pm: Any, k: _In, who: str) -> _np.ndarray:
    """(N, Lk) booleans, True at real keys."""
    if isinstance(pm, dlarray) and pm._fmt:
        fmt, m = pm._fmt, _np.asarray(primal_value(pm._value))
    else:
        m = _np.asarray(primal_value(_val(pm)))
        if m.ndim == len(k.fmt):
            m = _np.asarray(primal_value(k.like(pm, who, "padding_mask")))
            fmt = k.fmt
        elif m.ndim == len(k.fmt) - 1:
            fmt = k.fmt.replace("C", "")
        else:
            raise ValueError(f"{who}: padding_mask must have the keys' shape (channels optional)")
    if "C" in fmt:
        m = _np.any(m != 0, axis=fmt.index("C"))
        fmt = fmt.replace("C", "")
    order = [i for i, c in enumerate(fmt) if c == "B"] + [i for i, c in enumerate(fmt) if c in "ST"]
    return _np.transpose(m != 0, order).reshape(m.shape[order[0]] if "B" in fmt else 1, -1)


def embed(X: Any, weights: Any, *, data_format: str | None = None) -> dlarray:
    """Embedding: each (0-based, integer-valued) index of X replaced by its column of
    ``weights`` (embeddingDimension×numWords), along a C dimension of that size (X's C
    dimension, if any, must have size 1)."""
    who = "embed"
    x = _In(X, data_format, who)
    v = _np.asarray(primal_value(x.value))
    c = x.axis("C", who, required=False)
    fmt = x.fmt
    if c is not None:
        if v.shape[c] != 1:
            raise ValueError(
                f"{who}: the C dimension of the indices must have size 1, got {v.shape[c]}"
            )
        v = _np.squeeze(v, c)
        fmt = fmt.replace("C", "")
    if v.dtype.kind == "f":
        if not _np.all(v == _np.round(v)):
            raise ValueError(f"{who}: X must hold integer indices")
        v = v.astype(_np.int64)
    elif v.dtype.kind not in "iu":
        raise TypeError(f"{who}: X must hold integer indices, got dtype {v.dtype}")
    w = _val(weights)
    y = F.embedding(v, wnp.transpose(w))  # (..., D)
    labels = list(fmt) + ["C"]
    p = _canon_perm(labels)
    y = wnp.transpose(y, p) if p != tuple(range(len(p))) else y
    out_fmt = "".join(labels[i] for i in p)
    if x.user is None:
        return _wrap(y, out_fmt)
    return _wrap(y, "")


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------


def _elementwise(f, X: Any) -> dlarray:
    if isinstance(X, dlarray):
        return _wrap(f(X._value), X._fmt)
    return _wrap(f(_val(X)), "")


def relu(X: Any) -> dlarray:
    """max(X, 0), element-wise; the format is kept."""
    return _elementwise(F.relu, X)


def leakyrelu(X: Any, scale_factor: float = 0.01) -> dlarray:
    """X where X > 0, ``scale_factor``·X elsewhere."""
    return _elementwise(lambda v: F.leaky_relu(v, scale_factor), X)


def gelu(X: Any, *, approximation: str = "none") -> dlarray:
    """x·Φ(x); ``approximation="tanh"`` for the tanh approximation."""
    if approximation.lower() not in ("none", "tanh"):
        raise ValueError(f"gelu: approximation must be 'none' or 'tanh', not {approximation!r}")
    return _elementwise(lambda v: F.gelu(v, approximate=approximation.lower()), X)


def sigmoid(X: Any) -> dlarray:
    """1 / (1 + e⁻ˣ), element-wise."""
    return _elementwise(F.sigmoid, X)


def softmax(X: Any, *, data_format: str | None = None) -> dlarray:
    """Softmax over the channel (C) dimension."""
    x = _In(X, data_format, "softmax")
    c = x.axis("C", "softmax")
    return x.out(F.softmax(x.value, axis=c), x.fmt)


# ---------------------------------------------------------------------------------------------
# Losses (unformatted scalar results)
# ---------------------------------------------------------------------------------------------


def _num_obs(x: _In) -> int:
    b = x.axes("B")
    return _shape(x.value)[b[0]] if b else 1


def _weights_full(W: Any, x: _In, who: str, name: str) -> Any:
    """Element weights broadcast against the predictions' canonical layout."""
    if W is None:
        return None
    if isinstance(W, dlarray) and W._fmt:
        from wengert.dl._dlarray import _expand_to

        if any(W._fmt.count(ch) > x.fmt.count(ch) for ch in set(W._fmt)):
            raise ValueError(
                f"{who}: {name} format {W._fmt!r} has labels the predictions ({x.fmt!r}) lack"
            )
        return _expand_to(W._value, W._fmt, x.fmt)
    v = _val(W)
    if len(_shape(v)) == len(x.fmt):
        return x.like(W, who, name)
    if _prod(_shape(v)) == 1:
        return wnp.reshape(v, ())
    raise ValueError(
        f"{who}: {name} of shape {_shape(v)} is ambiguous; give it the predictions' dimensions "
        "or labels (dlarray(w, fmt))."
    )


def _normalize(total, x: _In, mask, factor: str, who: str):
    f = factor.lower()
    if f in ("batch-size", "batch"):
        return total / _num_obs(x)
    if f == "all-elements":
        return total / _prod(_shape(x.value))
    if f == "mask-included":
        cnt = (
            _prod(_shape(x.value))
            if mask is None
            else float(_np.sum(_np.asarray(primal_value(mask)) != 0))
        )
        return total / max(cnt, 1)
    if f == "none":
        return total
    raise ValueError(
        f"{who}: normalization_factor must be 'batch-size', 'all-elements', 'mask-included' or 'none', not {factor!r}"
    )


def _scalar(v) -> dlarray:
    return _wrap(v if is_traced(v) else _np.asarray(v), "")


def _finish_loss(el, x: _In, mask, factor, reduction, who):
    """Element (or observation) losses → MATLAB's reduction and normalisation."""
    r = reduction.lower()
    if r == "none":
        return x.out(el, x.fmt) if len(_shape(el)) == len(x.fmt) else _wrap(el, "")
    if r != "sum":
        raise ValueError(f"{who}: reduction must be 'sum' or 'none', not {reduction!r}")
    return _scalar(_normalize(wnp.sum(el), x, mask, factor, who))


def _class_weights(weights: Any, x: _In, k: int, who: str):
    """(class weights (K,) or None, element weights in x's layout or None)."""
    if weights is None:
        return None, None
    wv = _val(weights)
    formatted = isinstance(weights, dlarray) and weights._fmt
    if not formatted and _prod(_shape(wv)) == k and len(_shape(wv)) <= 2 and len(x.fmt) > 1:
        return wnp.reshape(wv, (k,)), None
    return None, _weights_full(weights, x, who, "weights")


def _xent(x: _In, t, cw, ew, mask, mode, normalization_factor, reduction, who):
    """Cross-entropy of probabilities ``x`` and targets ``t`` (x's canonical layout)."""
    c = x.axis("C", who)
    k = _shape(x.value)[c]
    m = None if mask is None else _weights_full(mask, x, who, "mask")
    if mode in ("single-label", "exclusive"):
        tt = t
        for f in (ew, m):
            if f is not None:
                tt = tt * f
        if cw is not None:
            tt = tt * wnp.reshape(cw, tuple(k if i == c else 1 for i in range(len(x.fmt))))
        el = L.cross_entropy_from_probs(x.value, tt, reduction="none", axis=c)
        el = wnp.expand_dims(el, c)  # per-observation losses, C kept with size 1
    elif mode in ("multilabel", "independent"):
        w = None
        cwb = (
            None
            if cw is None
            else wnp.reshape(cw, tuple(k if i == c else 1 for i in range(len(x.fmt))))
        )
        for f in (ew, m, cwb):
            if f is not None:
                w = f if w is None else w * f
        el = L.binary_cross_entropy(x.value, t, weights=w, reduction="none")
    else:
        raise ValueError(
            f"{who}: classification_mode must be 'single-label' or 'multilabel', not {mode!r}"
        )
    return _finish_loss(el, x, m, normalization_factor, reduction, who)


def crossentropy(
    Y: Any, targets: Any, weights: Any = None, *, data_format: str | None = None,
    mask: Any = None, normalization_factor: str = "batch-size",
    classification_mode: str = "single-label", target_categories: str | None = None,
    reduction: str = "sum",
) -> dlarray:  # fmt: skip
    """Cross-entropy of predicted probabilities Y (e.g. after ``softmax``) and targets:
    single-label −(1/N)·Σ T·ln Y, multilabel −(1/N)·Σ [T·ln Y + (1 − T)·ln(1 − Y)], summed over
    channels, time and space, N the number of observations (Y is clipped at the dtype's
    machine epsilon, so no log 0).  ``weights``: one per class (numChannels elements) or
    element weights in Y's layout/format; ``mask`` likewise.  ``target_categories``
    ("exclusive"/"independent") is the older name of ``classification_mode``.  Returns an
    unformatted scalar (``reduction="none"``: the losses summed over the channels only, in
    Y's format with a size-1 C dimension)."""
    who = "crossentropy"
    x = _In(Y, data_format, who)
    k = _shape(x.value)[x.axis("C", who)]
    mode = (target_categories or classification_mode).lower()
    cw, ew = _class_weights(weights, x, k, who)
    return _xent(x, x.like(targets, who), cw, ew, mask, mode, normalization_factor, reduction, who)


def indexcrossentropy(
    Y: Any, targets: Any, weights: Any = None, *, data_format: str | None = None,
    mask: Any = None, normalization_factor: str = "batch-size", reduction: str = "sum",
) -> dlarray:  # fmt: skip
    """Cross-entropy of predicted probabilities Y and integer class indices ``targets``
    (0-based; Y's shape without its channel dimension, or with it of size 1):
    −(1/N)·Σ w·ln Y[target].  ``weights`` one per class or per element (Y's layout)."""
    who = "indexcrossentropy"
    x = _In(Y, data_format, who)
    c = x.axis("C", who)
    k = _shape(x.value)[c]
    want = _shape(x.value)[:c] + _shape(x.value)[c + 1 :]
    if isinstance(targets, dlarray) and targets._fmt:
        tv = _np.asarray(primal_value(targets._value))
        if "C" in targets._fmt:
            tv = _np.squeeze(tv, targets._fmt.index("C"))
        if targets._fmt.replace("C", "") != x.fmt.replace("C", ""):
            raise ValueError(f"{who}: targets have format {targets._fmt!r}, predictions {x.fmt!r}")
    else:
        tv = _np.asarray(_plain(targets))
        if tv.ndim == len(x.fmt):
            tv = _np.squeeze(_np.asarray(primal_value(x.like(tv, who))), c)
        elif x.perm is not None and tv.ndim == len(x.fmt) - 1:  # data_format's order minus C
            tv = _np.transpose(tv, _order(x.user.replace("C", ""), x.fmt.replace("C", "")))
    if tv.shape != want:
        raise ValueError(
            f"{who}: targets must have shape {want} (Y without its C dimension), got {tv.shape}"
        )
    if tv.dtype.kind == "f":
        if not _np.all(tv == _np.round(tv)):
            raise ValueError(f"{who}: targets must hold integer class indices")
        tv = tv.astype(_np.int64)
    if tv.size and (tv.min() < 0 or tv.max() >= k):
        raise ValueError(
            f"{who}: targets must lie in [0, {k}) (0-based), got [{tv.min()}, {tv.max()}]"
        )
    onehot = F.one_hot(tv, k, dtype=_np.dtype(x.value.dtype), axis=c)
    cw, ew = _class_weights(weights, x, k, who)
    return _xent(x, onehot, cw, ew, mask, "single-label", normalization_factor, reduction, who)


def _regression(
    kind, Y, targets, weights, data_format, mask, normalization_factor, reduction, who, **kw
):
    x = _In(Y, data_format, who)
    t = x.like(targets, who)
    el = kind(x.value, t, reduction="none", **kw)
    for f in (_weights_full(weights, x, who, "weights"), _weights_full(mask, x, who, "mask")):
        if f is not None:
            el = el * f
    m = None if mask is None else _weights_full(mask, x, who, "mask")
    return _finish_loss(el, x, m, normalization_factor, reduction, who)


def mse(Y: Any, targets: Any, *, data_format: str | None = None) -> dlarray:
    """Half mean squared error: Σ (Y − T)² / (2N), N the number of observations (the size of
    the B dimension); an unformatted scalar."""
    x = _In(Y, data_format, "mse")
    total = L.l2(x.value, x.like(targets, "mse"), reduction="sum")
    return _scalar(total * (0.5 / _num_obs(x)))


def l1loss(
    Y: Any, targets: Any, weights: Any = None, *, data_format: str | None = None, mask: Any = None,
    normalization_factor: str = "batch-size", reduction: str = "sum",
) -> dlarray:  # fmt: skip
    """L1 loss Σ w·|Y − T| / N (``normalization_factor``: "batch-size", "all-elements",
    "mask-included" or "none")."""
    return _regression(
        L.l1, Y, targets, weights, data_format, mask, normalization_factor, reduction, "l1loss"
    )


def l2loss(
    Y: Any, targets: Any, weights: Any = None, *, data_format: str | None = None, mask: Any = None,
    normalization_factor: str = "batch-size", reduction: str = "sum",
) -> dlarray:  # fmt: skip
    """L2 loss Σ w·(Y − T)² / N."""
    return _regression(
        L.l2, Y, targets, weights, data_format, mask, normalization_factor, reduction, "l2loss"
    )


def huber(
    Y: Any, targets: Any, weights: Any = None, *, transition_point: float = 1.0,
    data_format: str | None = None, mask: Any = None, normalization_factor: str = "batch-size",
    reduction: str = "sum",
) -> dlarray:  # fmt: skip
    """Huber loss Σ w·z / N with z = ½d² for |d| ≤ δ, δ(|d| − ½δ) beyond (d = Y − T, δ the
    ``transition_point``)."""
    return _regression(L.huber, Y, targets, weights, data_format, mask, normalization_factor,
                       reduction, "huber", delta=transition_point)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# One-hot encoding
# ---------------------------------------------------------------------------------------------


def _type_dtype(type_name: Any):
    if isinstance(type_name, str):
        names = {"single": _np.float32, "double": _np.float64, "logical": bool}
        if type_name.lower() in names:
            return _np.dtype(names[type_name.lower()])
    return _np.dtype(type_name)


def _categories(B: Any) -> tuple[_np.ndarray, _np.ndarray] | None:
    """``(categories, codes)`` of a categorical array (an object with ``categories`` and
    integer ``codes``, −1 for undefined, as ``pandas.Categorical``; or a pandas Series of
    category dtype through its ``.cat``), else None."""
    for obj in (getattr(B, "cat", None), B):
        if obj is not None and hasattr(obj, "categories") and hasattr(obj, "codes"):
            codes = _np.asarray(obj.codes)
            if codes.dtype.kind in "iu":
                return _np.asarray(obj.categories), codes.astype(_np.int64)
    return None


def onehotencode(
    B: Any, feature_dim: int, type_name: Any = "single", *, class_names: Any = None
) -> _np.ndarray:
    """MATLAB's ``onehotencode(A, featureDim, typename, ClassNames=classes)``: one-hot encode
    the labels ``B`` along axis ``feature_dim`` (0-based; B has size 1 there, or fewer
    dimensions): a K-long vector with 1 at the label's class, in the order of
    ``class_names``.

    ``class_names`` is required for numeric, logical and text labels, as MATLAB requires
    ``ClassNames`` for non-categorical input: the classes present in one mini-batch may be
    fewer than the problem's, which would silently give fewer rows.  A categorical array
    (``pandas.Categorical``, a Series of category dtype, or any object with ``categories``
    and integer ``codes``) brings its own classes: all its categories, in their order, used or
    not, as MATLAB's ``categories(A)``; ``class_names`` then selects and orders them.  Labels
    outside the classes, and undefined categorical entries, give NaN vectors, as MATLAB's
    ``<undefined>`` (an error for "logical" and integer types, which cannot hold NaN).
    ``type_name``: "single" (default), "double", "logical" or a dtype.
    """
    cat = _categories(B)
    if cat is not None:
        categories, codes = cat
        if class_names is None:
            classes = categories
            b = codes
            codes_given = True
        else:
            b = _np.where(codes >= 0, categories[_np.clip(codes, 0, None)], None)
            b = _np.asarray(b, object)
            classes = _np.asarray(class_names)
            codes_given = False
    else:
        if class_names is None:
            raise ValueError(
                "onehotencode: give class_names=[...] for labels that are not categorical (MATLAB "
                "requires ClassNames for numeric and text labels): the classes found in one "
                "batch may be fewer than the problem's, e.g. class_names=range(10) for the "
                "digits 0-9"
            )
        b = _np.asarray(_plain(B))
        classes = _np.asarray(class_names)
        codes_given = False
    if b.ndim > feature_dim:
        if b.shape[feature_dim] != 1:
            raise ValueError(
                f"onehotencode: B must have size 1 along feature_dim={feature_dim}, got shape {b.shape}"
            )
        b = _np.squeeze(b, feature_dim)
    if classes.ndim != 1:
        classes = classes.reshape(-1)
    dt = _type_dtype(type_name)
    if codes_given:
        idx = b
    else:
        idx = _np.full(b.shape, -1, dtype=_np.int64)
        for i, cl in enumerate(classes):
            idx[b == cl] = i
    bad = idx < 0
    if bad.any() and dt.kind not in "fc":
        raise ValueError(
            f"onehotencode: {int(bad.sum())} label(s) are undefined or not among the classes, "
            f"and their NaN vectors cannot be {dt} (MATLAB refuses NaN as logical too); give "
            "every class in class_names, or a floating type_name"
        )
    out = F.one_hot(_np.where(bad, 0, idx), len(classes), dtype=_np.float64, axis=-1)
    if bad.any():
        out[bad] = _np.nan
    if b.ndim < feature_dim:
        b_shape = b.shape + (1,) * (feature_dim - b.ndim)
        out = out.reshape(b_shape + (len(classes),))
    out = _np.moveaxis(out, -1, feature_dim)
    return out.astype(dt)


def onehotdecode(A: Any, classes: Any, feature_dim: int) -> _np.ndarray:
    """The class of each one-hot (or probability) vector of ``A`` along axis ``feature_dim``
    (0-based): ``classes[argmax]``, keeping that axis with size 1 as MATLAB."""
    a = _np.asarray(_plain(A))
    classes = _np.asarray(classes)
    if a.shape[feature_dim] != len(classes):
        raise ValueError(
            f"onehotdecode: A has {a.shape[feature_dim]} entries along feature_dim={feature_dim} "
            f"but {len(classes)} classes were given"
        )
    return classes[_np.argmax(a, axis=feature_dim)][
        tuple(slice(None) if i != feature_dim else None for i in range(a.ndim))
    ]


def _plain(x: Any) -> Any:
    """Plain (untraced) data of a dlarray, tracer or array."""
    if isinstance(x, dlarray):
        return _np.asarray(primal_value(x._value))
    return primal_value(x)
