"""The MATLAB deep-learning ops of wengert.dl against wengert.nn.functional / losses:
values, shapes, labels, float32, errors, and derivatives (both modes, order 2)."""

import numpy as np
import pytest

import wengert
import wengert.nn.functional as F
from wengert.dl import (
    attention,
    avgpool,
    batchnorm,
    crossentropy,
    dlarray,
    dlconv,
    dltranspconv,
    embed,
    extractdata,
    fullyconnect,
    gelu,
    groupnorm,
    gru,
    huber,
    indexcrossentropy,
    instancenorm,
    l1loss,
    l2loss,
    layernorm,
    leakyrelu,
    lstm,
    maxpool,
    mse,
    onehotdecode,
    onehotencode,
    relu,
    sigmoid,
    softmax,
    stripdims,
)

rng = np.random.default_rng(1)


def r(*shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def close(a, b, **kw):
    np.testing.assert_allclose(
        extractdata(a), np.asarray(b), **{"rtol": 1e-10, "atol": 1e-12, **kw}
    )


# MATLAB layouts ↔ nn layouts for 2-D images: (H, W, C, N) ↔ (N, C, H, W)
def to_nchw(a):
    return np.transpose(a, (3, 2, 0, 1))


def from_nchw(a):
    return np.transpose(a, (2, 3, 1, 0))


# ---------------------------------------------------------------------------------------------
# fullyconnect
# ---------------------------------------------------------------------------------------------


def test_fullyconnect_cb():
    x, w, b = r(4, 5), r(3, 4), r(3)
    y = fullyconnect(dlarray(x, "CB"), w, b)
    assert y.fmt == "CB" and y.shape == (3, 5)
    close(y, F.fully_connect(x.T, w, b).T)


def test_fullyconnect_image_flattens_column_major():
    x, w, b = r(2, 3, 4, 5), r(6, 24), r(6, 1)  # SSCB; bias given as a MATLAB column
    y = fullyconnect(dlarray(x, "SSCB"), w, b)
    assert y.fmt == "CB" and y.shape == (6, 5)
    close(y, w @ x.reshape(24, 5, order="F") + b)
    # weights given as outputSize×H×W×C flatten the same way
    w4 = w.reshape(6, 2, 3, 4, order="F")
    close(fullyconnect(dlarray(x, "SSCB"), w4, b), extractdata(y))


def test_fullyconnect_sequence_and_unformatted():
    x, w, b = r(4, 2, 3), r(5, 4), r(5)
    y = fullyconnect(dlarray(x, "CBT"), w, b)
    assert y.fmt == "CBT" and y.shape == (5, 2, 3)
    close(y, np.einsum("oc,cbt->obt", w, x) + b[:, None, None])
    u = fullyconnect(x.transpose(1, 0, 2), w, b, data_format="BCT")  # unformatted in, out too
    assert u.fmt == "" and u.shape == (2, 5, 3)  # same labels: data_format's order
    close(u, extractdata(y).transpose(1, 0, 2))
    with pytest.raises(ValueError, match="inputSize = 4"):
        fullyconnect(dlarray(x, "CBT"), r(5, 3), b)


# ---------------------------------------------------------------------------------------------
# dlconv / dltranspconv
# ---------------------------------------------------------------------------------------------


def test_dlconv_matches_conv2d():
    x, w, b = r(6, 7, 3, 2), r(3, 2, 3, 4), r(4)  # filterSize × numChannels × numFilters
    y = dlconv(dlarray(x, "SSCB"), w, b, stride=(2, 1), dilation_factor=1, padding="same")
    ref = F.conv2d(to_nchw(x), np.transpose(w, (3, 2, 0, 1)), b, stride=(2, 1), padding="same")
    assert y.fmt == "SSCB" and y.shape == (3, 7, 4, 2)
    close(y, from_nchw(ref))


def test_dlconv_padding_matrix_dilation_groups():
    x = r(7, 6, 4, 2)
    w = r(3, 3, 2, 3, 2)  # filter × channelsPerGroup × filtersPerGroup × groups
    pad = np.array([[1, 0], [2, 1]])  # [before; after] per spatial dimension
    y = dlconv(dlarray(x, "SSCB"), w, 0, padding=pad, dilation_factor=2)
    wn = np.transpose(w, (4, 3, 2, 0, 1)).reshape(6, 2, 3, 3)
    ref = F.conv2d(to_nchw(x), wn, None, padding=((1, 2), (0, 1)), dilation=2, groups=2)
    assert y.shape == (ref.shape[2], ref.shape[3], 6, 2)
    close(y, from_nchw(ref))


def test_dlconv_padding_values():
    x, w = r(5, 4, 2, 1), r(3, 3, 2, 2)
    wn = np.transpose(w, (3, 2, 0, 1))
    for value, mode in (("replicate", "edge"), ("symmetric-include-edge", "symmetric"),
                        ("symmetric-exclude-edge", "reflect"), (2.5, "constant")):  # fmt: skip
        kw = {"constant_values": 2.5} if mode == "constant" else {}
        xp = np.pad(to_nchw(x), ((0, 0), (0, 0), (1, 1), (1, 1)), mode=mode, **kw)
        y = dlconv(dlarray(x, "SSCB"), w, None, padding=1, padding_value=value)
        close(y, from_nchw(F.conv2d(xp, wn)))


def test_dlconv_1d_over_time_and_unformatted():
    x, w = r(3, 2, 9), r(2, 3, 4)  # CBT data, a 2-tap filter over T
    y = dlconv(dlarray(x, "CBT"), w, np.zeros(4))
    assert y.fmt == "CBT" and y.shape == (4, 2, 8)
    ref = F.conv1d(np.transpose(x, (1, 0, 2)), np.transpose(w, (2, 1, 0)))
    close(y, np.transpose(ref, (1, 0, 2)))
    u = dlconv(x, w, 0, data_format="CBT")
    assert u.fmt == "" and u.shape == (4, 2, 8)
    close(u, extractdata(y))
    with pytest.raises(ValueError, match="numChannels"):
        dlconv(dlarray(x, "CBT"), r(2, 5, 4), 0)


def test_dlconv_weights_format_and_grouped_layouts():
    x, w = r(3, 2, 9), r(2, 3, 4)
    ref = dlconv(dlarray(x, "CBT"), w, 0)
    close(dlconv(dlarray(x, "CBT"), w, 0, weights_format="TCU"), extractdata(ref))
    close(dlconv(dlarray(x, "CBT"), np.transpose(w, (1, 0, 2)), 0, weights_format="CTU"),
          extractdata(ref))  # fmt: skip
    close(dlconv(dlarray(x, "CBT"), dlarray(w, "TCU"), 0), extractdata(ref))  # formatted weights
    with pytest.raises(ValueError, match="does not fit"):
        dlconv(dlarray(r(4, 3, 2, 5), "SCBT"), w, 0, weights_format="TCU")
    xi = r(5, 5, 3, 2)
    dw = r(3, 3, 1, 2, 3)  # depthwise: 1 channel per group, 2 filters per group, 3 groups
    y = dlconv(dlarray(xi, "SSCB"), dw, 0, padding="same")
    wn = np.transpose(dw, (4, 3, 2, 0, 1)).reshape(6, 1, 3, 3)
    close(y, from_nchw(F.conv2d(to_nchw(xi), wn, padding="same", groups=3)))
    g1 = r(3, 3, 3, 4, 1)  # grouped layout with one group = plain convolution
    close(
        dlconv(dlarray(xi, "SSCB"), g1, 0), extractdata(dlconv(dlarray(xi, "SSCB"), g1[..., 0], 0))
    )
    wt = r(2, 2, 2, 3, 1)  # dltranspconv: filter × filtersPerGroup × channelsPerGroup × groups
    close(dltranspconv(dlarray(xi, "SSCB"), wt, 0, stride=2),
          extractdata(dltranspconv(dlarray(xi, "SSCB"), wt[..., 0], 0, stride=2)))  # fmt: skip


def test_pool_format_over_time():
    s = r(3, 2, 8)
    y = maxpool(dlarray(s, "CBT"), 2, stride=2, pool_format="T")
    assert y.fmt == "CBT" and y.shape == (3, 2, 4)
    close(y, s.reshape(3, 2, 4, 2).max(-1))
    a = avgpool(dlarray(s, "CBT"), "global", pool_format="T")
    close(a, s.mean(2, keepdims=True))
    with pytest.raises(ValueError, match="pool_format"):
        maxpool(dlarray(s, "CBT"), 2, pool_format="C")


def test_dltranspconv_matches_conv_transpose2d():
    x, w, b = r(4, 5, 3, 2), r(3, 3, 2, 3), r(2)  # filter × numFilters × numChannels
    y = dltranspconv(dlarray(x, "SSCB"), w, b, stride=2, cropping=1)
    ref = F.conv_transpose2d(to_nchw(x), np.transpose(w, (3, 2, 0, 1)), b, stride=2, padding=1)
    assert y.fmt == "SSCB"
    close(y, from_nchw(ref))
    s = dltranspconv(dlarray(x, "SSCB"), w, b, stride=2, cropping="same")
    assert s.shape == (8, 10, 2, 2)
    s1 = dltranspconv(dlarray(x, "SSCB"), r(1, 1, 2, 3), 0, stride=3, cropping="same")
    assert s1.shape == (12, 15, 2, 2)


def test_dltranspconv_is_the_adjoint_of_dlconv():
    x, w, g = r(5, 5, 2, 1), r(3, 3, 2, 3), r(3, 3, 3, 1)
    conv = lambda v: dlconv(dlarray(v, "SSCB"), w, 0, stride=2, padding=1)._value  # noqa: E731
    _, pull = wengert.vjp(conv, x)
    (gx,) = pull(g)
    close(dltranspconv(dlarray(g, "SSCB"), w, 0, stride=2, cropping=1), gx, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------


def test_batchnorm_modes():
    x = r(4, 3, 2, 5)
    off, sc = r(2), r(2)
    X = dlarray(x, "SSCB")
    y = batchnorm(X, off, sc)
    m = x.mean((0, 1, 3), keepdims=True)
    v = x.var((0, 1, 3), keepdims=True)
    ref = (x - m) / np.sqrt(v + 1e-5) * sc[None, None, :, None] + off[None, None, :, None]
    assert y.fmt == "SSCB"
    close(y, ref)
    rm, rv = np.full((2, 1), 0.5), np.full((2, 1), 2.0)  # MATLAB columns: returned as given
    y2, nm, nv = batchnorm(X, off, sc, rm, rv, mean_decay=0.3, variance_decay=0.2)
    close(y2, ref)
    n = 4 * 3 * 5
    assert nm.shape == (2, 1)
    np.testing.assert_allclose(nm, 0.7 * rm + 0.3 * m.reshape(2, 1))
    np.testing.assert_allclose(nv, 0.8 * rv + 0.2 * v.reshape(2, 1) * n / (n - 1))
    yi = batchnorm(X, off, sc, rm, rv, training=False)
    close(yi, (x - 0.5) / np.sqrt(2.0 + 1e-5) * sc[None, None, :, None] + off[None, None, :, None])
    ys, mu, s2 = batchnorm(X, off, sc, return_stats=True)
    np.testing.assert_allclose(mu, m.reshape(2))
    with pytest.raises(ValueError, match="both"):
        batchnorm(X, off, sc, rm)


def test_layernorm_modes():
    x, off, sc = r(3, 2, 4), r(3), r(3)
    y = layernorm(dlarray(x, "CBT"), off, sc)  # auto: channel-only for sequences
    ref = F.layer_norm(np.transpose(x, (1, 2, 0)), gamma=sc, beta=off)
    close(y, np.transpose(ref, (2, 0, 1)))
    xi = r(3, 4, 2, 2)
    yi = layernorm(dlarray(xi, "SSCB"), r(2) * 0, np.ones(2))  # auto: spatial-channel
    mu = xi.mean((0, 1, 2), keepdims=True)
    sd = np.sqrt(xi.var((0, 1, 2), keepdims=True) + 1e-5)
    close(yi, (xi - mu) / sd)
    yb = layernorm(dlarray(x, "CBT"), np.zeros(3), np.ones(3), operation_dimension="batch-excluded")
    close(yb, (x - x.mean((0, 2), keepdims=True)) / np.sqrt(x.var((0, 2), keepdims=True) + 1e-5))
    with pytest.raises(ValueError, match="operation_dimension"):
        layernorm(dlarray(x, "CBT"), off, sc, operation_dimension="x")


def test_instancenorm_and_groupnorm():
    x, off, sc = r(3, 4, 4, 2), r(4), r(4)
    X = dlarray(x, "SSCB")
    close(instancenorm(X, off, sc), from_nchw(F.instance_norm(to_nchw(x), sc, off)))
    close(groupnorm(X, 2, off, sc), from_nchw(F.group_norm(to_nchw(x), 2, sc, off)))
    close(groupnorm(X, "channel-wise", off, sc), extractdata(instancenorm(X, off, sc)))
    close(groupnorm(X, "all-channels", off, sc), from_nchw(F.group_norm(to_nchw(x), 1, sc, off)))


# ---------------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------------


def test_maxpool_and_avgpool():
    x = r(6, 5, 2, 3)
    X = dlarray(x, "SSCB")
    y = maxpool(X, 2, stride=2)
    close(y, from_nchw(F.max_pool2d(to_nchw(x), 2, 2)))
    assert maxpool(X, [3, 2]).shape == (4, 4, 2, 3)  # MATLAB's default stride is 1
    y, idx, size = maxpool(X, 2, stride=2, padding="same", return_indices=True)
    assert idx.shape == y.shape and size == x.shape
    g = maxpool(X, "global")
    assert g.fmt == "SSCB" and g.shape == (1, 1, 2, 3)
    close(g, x.max((0, 1), keepdims=True))
    a = avgpool(X, 3, stride=1, padding=1, padding_value="mean")
    ref = F.avg_pool2d(to_nchw(x), 3, 1, 1, count_include_pad=False)
    close(a, from_nchw(ref))
    close(avgpool(X, 2, stride=2), from_nchw(F.avg_pool2d(to_nchw(x), 2, 2)))
    close(avgpool(X, "global"), x.mean((0, 1), keepdims=True))
    s = dlarray(r(3, 2, 8), "CBT")
    assert maxpool(s, 2, stride=2).shape == (3, 2, 4)  # 1-D pooling over time
    assert avgpool(dlarray(r(6, 2), "SB"), 2, stride=2).fmt == "SB"  # no channel dimension


# ---------------------------------------------------------------------------------------------
# recurrent, attention, embedding
# ---------------------------------------------------------------------------------------------


def test_lstm_matches_nn():
    c, n, t, h = 3, 2, 4, 5
    x, w, rw, b = r(c, n, t), r(4 * h, c), r(4 * h, h), r(4 * h)
    h0, c0 = r(h, 1), r(h, n)
    y, hs, cs = lstm(dlarray(x, "CBT"), h0, c0, w, rw, b)
    ry, rh, rc = F.lstm(x.transpose(1, 2, 0), np.repeat(h0.T, n, 0), c0.T, w, rw, b)
    assert (y.fmt, y.shape, hs.fmt, hs.shape, cs.fmt) == ("CBT", (h, n, t), "CB", (h, n), "CB")
    close(y, ry.transpose(2, 0, 1))
    close(hs, rh.T)
    close(cs, rc.T)
    with pytest.raises(NotImplementedError, match="softsign"):
        lstm(dlarray(x, "CBT"), h0, c0, w, rw, b, state_activation_function="softsign")


def test_gru_modes():
    c, n, t, h = 3, 2, 4, 2
    x, w, rw = r(c, n, t), r(3 * h, c), r(3 * h, h)
    b = r(3 * h)
    y, hs = gru(dlarray(x, "CBT"), np.zeros(h), w, rw, b)
    ry, rh = F.gru(x.transpose(1, 2, 0), np.zeros((n, h)), w, rw, b, None)
    close(y, ry.transpose(2, 0, 1))
    close(hs, rh.T)
    b6 = r(6 * h)
    y6, _ = gru(
        dlarray(x, "CBT"),
        np.zeros(h),
        w,
        rw,
        b6,
        reset_gate_mode="recurrent-bias-after-multiplication",
    )
    ry6, _ = F.gru(x.transpose(1, 2, 0), np.zeros((n, h)), w, rw, b6[: 3 * h], b6[3 * h :])
    close(y6, ry6.transpose(2, 0, 1))
    with pytest.raises(NotImplementedError, match="before-multiplication"):
        gru(dlarray(x, "CBT"), np.zeros(h), w, rw, b, reset_gate_mode="before-multiplication")
    y1, _ = gru(dlarray(x[:, :, 0], "CB"), np.zeros(h), w, rw, b)  # no T: one step
    assert y1.fmt == "CB" and y1.shape == (h, n)


def test_attention_matches_nn():
    heads, c, n, tq, tk = 2, 4, 3, 5, 6
    q, k, v = r(c, n, tq), r(c, n, tk), r(6, n, tk)
    y, wts = attention(
        dlarray(q, "CBT"), dlarray(k, "CBT"), dlarray(v, "CBT"), heads, return_weights=True
    )
    assert y.fmt == "CBT" and y.shape == (6, n, tq)
    assert wts.shape == (tk, tq, heads, n)

    def split(a, d):  # (C, N, T) → (N, heads, T, C/heads)
        return a.transpose(1, 2, 0).reshape(n, -1, heads, d // heads).transpose(0, 2, 1, 3)

    ref, rw = F.attention(split(q, c), split(k, c), split(v, 6), return_weights=True)
    close(y, ref.transpose(0, 2, 1, 3).reshape(n, tq, 6).transpose(2, 0, 1))
    close(wts, rw.transpose(3, 2, 1, 0))
    # causal: query i attends to keys ≤ i
    qs = dlarray(q, "CBT")
    _, wc = attention(qs, qs, qs, heads, attention_mask="causal", return_weights=True)
    assert np.all(extractdata(wc)[np.tril_indices(tq, -1)] == 0)  # [key, query]
    # padding mask: the last two keys are padding
    pm = np.ones((n, tk))
    pm[:, -2:] = 0
    _, wp = attention(
        qs, dlarray(k, "CBT"), dlarray(v, "CBT"), heads, padding_mask=pm, return_weights=True
    )
    assert np.all(extractdata(wp)[-2:] == 0)
    # an explicit numKeys × numQueries mask equal to causal
    m = np.triu(np.ones((tq, tq)))
    _, wm = attention(qs, qs, qs, heads, attention_mask=m, return_weights=True)
    close(wm, extractdata(wc))


def test_embed():
    w = r(4, 6)  # embeddingDimension × numWords
    idx = np.array([[[0, 5, 2]], [[1, 1, 3]]]).transpose(1, 0, 2).astype(float)  # C(1) × B × T
    y = embed(dlarray(idx, "CBT"), w)
    assert y.fmt == "CBT" and y.shape == (4, 2, 3)
    close(y, w[:, idx[0].astype(int)])
    yb = embed(dlarray(idx[0], "BT"), w)  # no C dimension: one is added
    assert yb.fmt == "CBT"
    with pytest.raises(ValueError, match="integer"):
        embed(dlarray(idx + 0.5, "CBT"), w)


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------


def test_activations_keep_format():
    x = r(3, 4)
    X = dlarray(x, "CB")
    for out, ref in ((relu(X), F.relu(x)), (leakyrelu(X, 0.2), F.leaky_relu(x, 0.2)),
                     (leakyrelu(X), F.leaky_relu(x, 0.01)), (sigmoid(X), F.sigmoid(x)),
                     (gelu(X), F.gelu(x)), (gelu(X, approximation="tanh"), F.gelu(x, True))):  # fmt: skip
        assert out.fmt == "CB"
        close(out, ref)
    s = softmax(X)
    close(s, F.softmax(x, axis=0))
    u = softmax(x.T, data_format="BC")  # unformatted: over the C of data_format
    assert u.fmt == ""
    close(u, F.softmax(x.T, axis=1))
    assert relu(x).fmt == ""


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------


def _probs(k, n, t=None):
    z = r(k, n) if t is None else r(k, n, t)
    e = np.exp(z)
    return e / e.sum(0, keepdims=True)


def test_crossentropy():
    p = _probs(4, 5)
    lab = rng.integers(0, 4, 5)
    t = onehotencode(lab[None, :], 0, "double", class_names=range(4))
    loss = crossentropy(dlarray(p, "CB"), t)
    assert loss.fmt == "" and loss.shape == ()
    ref = -np.sum(t * np.log(p)) / 5
    close(loss, ref)
    close(indexcrossentropy(dlarray(p, "CB"), lab), ref)
    close(indexcrossentropy(dlarray(p, "CB"), lab[None, :]), ref)  # C of size 1 accepted
    cw = np.array([1.0, 2.0, 0.5, 3.0])
    close(crossentropy(dlarray(p, "CB"), t, cw), -np.sum(cw[:, None] * t * np.log(p)) / 5)
    close(indexcrossentropy(dlarray(p, "CB"), lab, cw), -np.sum(cw[:, None] * t * np.log(p)) / 5)
    mask = np.ones((4, 5))
    mask[:, 0] = 0
    close(crossentropy(dlarray(p, "CB"), t, mask=mask), -np.sum(mask * t * np.log(p)) / 5)
    close(crossentropy(dlarray(p, "CB"), t, normalization_factor="all-elements"), ref * 5 / 20)
    close(crossentropy(dlarray(p, "CB"), t, normalization_factor="none"), ref * 5)
    per = crossentropy(dlarray(p, "CB"), t, reduction="none")
    assert per.fmt == "CB" and per.shape == (1, 5)
    close(per, -np.sum(t * np.log(p), 0, keepdims=True))
    tm = (r(4, 5) > 0).astype(float)
    close(crossentropy(dlarray(p, "CB"), tm, classification_mode="multilabel"),
          -np.sum(tm * np.log(p) + (1 - tm) * np.log(1 - p)) / 5)  # fmt: skip
    close(crossentropy(dlarray(p, "CB"), tm, target_categories="independent"),
          extractdata(crossentropy(dlarray(p, "CB"), tm, classification_mode="multilabel")))  # fmt: skip
    # sequences: summed over time, divided by the number of observations
    ps = _probs(3, 2, 4)
    ts = onehotencode(rng.integers(0, 3, (1, 2, 4)), 0, class_names=range(3)).astype(float)
    close(crossentropy(dlarray(ps, "CBT"), ts), -np.sum(ts * np.log(ps)) / 2)
    # unformatted with data_format (targets in the same order)
    close(crossentropy(p.T, t.T, data_format="BC"), ref)


def test_regression_losses():
    y, t = r(3, 4, 2), r(3, 4, 2)
    Y = dlarray(y, "CBT")
    close(mse(Y, t), np.sum((y - t) ** 2) / (2 * 4))
    close(l2loss(Y, t), np.sum((y - t) ** 2) / 4)
    close(l1loss(Y, t), np.sum(np.abs(y - t)) / 4)
    d = y - t
    hub = np.where(np.abs(d) <= 0.5, 0.5 * d**2, 0.5 * (np.abs(d) - 0.25))
    close(huber(Y, t, transition_point=0.5), hub.sum() / 4)
    w = dlarray(np.array([1.0, 2.0, 3.0]), "C")  # weights aligned by label
    close(l2loss(Y, t, w), np.sum(np.array([1, 2, 3])[:, None, None] * d**2) / 4)
    close(l1loss(Y, t, normalization_factor="all-elements"), np.sum(np.abs(d)) / d.size)
    m = (r(3, 4, 2) > 0).astype(float)
    close(
        l1loss(Y, t, mask=m, normalization_factor="mask-included"), np.sum(m * np.abs(d)) / m.sum()
    )
    per = l2loss(Y, t, reduction="none")
    assert per.fmt == "CBT"
    close(per, d**2)
    with pytest.raises(ValueError, match="normalization_factor"):
        l2loss(Y, t, normalization_factor="x")


def test_onehot_round_trip():
    lab = np.array([["b", "a", "c", "a"]])
    a = onehotencode(lab, 0, class_names=["a", "b", "c"])
    assert a.dtype == np.float32 and a.shape == (3, 4)
    np.testing.assert_array_equal(a[:, 1], [1, 0, 0])
    np.testing.assert_array_equal(onehotdecode(a, ["a", "b", "c"], 0), lab)
    col = onehotencode(lab.T, 1, "double", class_names=["c", "b", "a"])
    assert col.shape == (4, 3) and col.dtype == np.float64
    np.testing.assert_array_equal(col[0], [0, 1, 0])
    u = onehotencode(np.array([[1, 7]]), 0, class_names=[1, 2])  # undefined → NaN
    assert np.all(np.isnan(u[:, 1]))
    assert onehotdecode(dlarray(a, "CB"), ["a", "b", "c"], 0).shape == (1, 4)
    assert onehotencode(np.array([0, 1, 1]), 1, class_names=[0, 1]).shape == (3, 2)  # fewer dims


def test_onehot_numeric_and_text_labels_need_class_names():
    # a mini-batch without class 2 must still get 3 rows: MATLAB requires ClassNames here
    for labels in (np.array([[0, 1, 1, 0]]), np.array([["a", "b"]]), np.array([[True, False]])):
        with pytest.raises(ValueError, match="class_names"):
            onehotencode(labels, 0)
    t = onehotencode(np.array([[0, 1, 1, 0]]), 0, class_names=range(3))
    assert t.shape == (3, 4) and np.all(t[2] == 0)
    with pytest.raises(ValueError, match="class_names"):
        onehotencode(dlarray(np.array([[1.0, 2.0]]), "CB"), 0)
    lg = onehotencode(np.array([[1, 0]]), 0, "logical", class_names=[0, 1])
    assert lg.dtype == bool and lg.tolist() == [[False, True], [True, False]]
    with pytest.raises(ValueError, match="NaN"):  # an unknown label cannot be logical
        onehotencode(np.array([[1, 7]]), 0, "logical", class_names=[0, 1])


class _Categorical:
    """The categorical interface onehotencode reads (as pandas.Categorical has it)."""

    def __init__(self, values, categories):
        self.categories = np.asarray(categories)
        self.codes = np.array([-1 if v is None else categories.index(v) for v in values])


def test_onehot_categorical_uses_all_its_categories():
    c = _Categorical(["red", "blue", None, "red"], ["blue", "green", "red"])
    a = onehotencode(c, 1)  # unused "green" still gets its column, as MATLAB's categories(A)
    assert a.shape == (4, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a[0], [0, 0, 1])
    np.testing.assert_array_equal(a[1], [1, 0, 0])
    assert np.all(np.isnan(a[2]))  # <undefined> → NaN
    assert np.all(a[[0, 1, 3], 1] == 0)
    b = onehotencode(c, 1, "double", class_names=["red", "blue"])  # select and order
    np.testing.assert_array_equal(b[[0, 1, 3]], [[1, 0], [0, 1], [1, 0]])
    assert np.all(np.isnan(b[2])) and b.dtype == np.float64
    np.testing.assert_array_equal(onehotdecode(a[[0, 1, 3]], c.categories, 1).ravel(),
                                  ["red", "blue", "red"])  # fmt: skip


def test_onehot_pandas_categorical():
    pd = pytest.importorskip("pandas")
    c = pd.Categorical(["x", "y", "x"], categories=["x", "y", "z"])
    a = onehotencode(c, 1)
    assert a.shape == (3, 3) and np.all(a[:, 2] == 0)
    s = pd.Series(["y", "x"], dtype=pd.CategoricalDtype(["x", "y"]))
    np.testing.assert_array_equal(onehotencode(s, 1), [[0, 1], [1, 0]])


# ---------------------------------------------------------------------------------------------
# formats, errors, float32
# ---------------------------------------------------------------------------------------------


def test_data_format_errors():
    x = r(3, 4)
    with pytest.raises(ValueError, match="data_format"):
        fullyconnect(x, r(2, 3), r(2))
    with pytest.raises(ValueError, match="already has format"):
        softmax(dlarray(x, "CB"), data_format="CB")
    with pytest.raises(ValueError, match="no 'C' dimension"):
        softmax(dlarray(x, "SB"))
    with pytest.raises(ValueError, match="unknown label"):
        softmax(x, data_format="XB")
    with pytest.raises(ValueError, match="S dimension"):
        dlconv(dlarray(r(5, 5, 2, 1), "SSCB"), r(3, 2, 4), 0)


def test_unformatted_output_keeps_data_format_order():
    x = r(2, 3, 5, 6)  # data_format "BCSS": N, C, H, W (PyTorch's layout)
    w = r(3, 3, 3, 4)
    y = dlconv(x, w, 0, padding="same", data_format="BCSS")
    assert y.fmt == "" and y.shape == (2, 4, 5, 6)
    ref = dlconv(dlarray(x, "BCSS"), w, 0, padding="same")
    close(y, np.transpose(extractdata(ref), (3, 2, 0, 1)))


F32_CASES = {
    "fullyconnect": lambda X: fullyconnect(X, r(3, 24, dtype=np.float32), r(3, dtype=np.float32)),
    "dlconv": lambda X: dlconv(X, r(3, 3, 2, 2, dtype=np.float32), r(2, dtype=np.float32), padding="same"),
    "dltranspconv": lambda X: dltranspconv(X, r(2, 2, 3, 2, dtype=np.float32), 0, stride=2),
    "batchnorm": lambda X: batchnorm(X, np.zeros(2, np.float32), np.ones(2, np.float32)),
    "layernorm": lambda X: layernorm(X, np.zeros(2, np.float32), np.ones(2, np.float32)),
    "instancenorm": lambda X: instancenorm(X, np.zeros(2, np.float32), np.ones(2, np.float32)),
    "groupnorm": lambda X: groupnorm(X, 1, np.zeros(2, np.float32), np.ones(2, np.float32)),
    "maxpool": lambda X: maxpool(X, 2),
    "avgpool": lambda X: avgpool(X, 2, padding_value="mean", padding=1),
    "relu": relu, "sigmoid": sigmoid, "gelu": gelu, "leakyrelu": leakyrelu, "softmax": softmax,
    "mse": lambda X: mse(X, np.zeros(X.shape, np.float32)),
    "huber": lambda X: huber(X, np.zeros(X.shape, np.float32)),
    "crossentropy": lambda X: crossentropy(softmax(X), np.full(X.shape, 0.5, np.float32)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(F32_CASES))
def test_float32_kept(name):
    X = dlarray(r(3, 4, 2, 2, dtype=np.float32), "SSCB")
    out = F32_CASES[name](X)
    assert out.dtype == np.float32, name


def test_float32_recurrent_and_attention():
    f = lambda *s: r(*s, dtype=np.float32)  # noqa: E731
    x = dlarray(f(3, 2, 4), "CBT")
    y, h, c = lstm(x, f(2), f(2), f(8, 3), f(8, 2), f(8))
    assert y.dtype == h.dtype == c.dtype == np.float32
    assert gru(x, f(2), f(6, 3), f(6, 2), f(6))[0].dtype == np.float32
    assert attention(x, x, x, 1).dtype == np.float32
    assert embed(dlarray(np.ones((1, 2)), "CB"), f(3, 4)).dtype == np.float32


# ---------------------------------------------------------------------------------------------
# derivatives
# ---------------------------------------------------------------------------------------------


def test_grad_through_dl_ops_with_plain_grad():
    x0, w0 = r(4, 3), r(2, 4)
    t = onehotencode(np.array([[0, 1, 1]]), 0, "double", class_names=[0, 1])

    def loss(w):
        y = softmax(fullyconnect(dlarray(x0, "CB"), w, np.zeros(2)))
        return crossentropy(y, t)._value

    g = wengert.grad(loss)(w0)
    z = w0 @ x0
    p = np.exp(z) / np.exp(z).sum(0)
    np.testing.assert_allclose(g, (p - t) @ x0.T / 3, rtol=1e-10)


def test_grad_through_dlfeval_if_available():
    trace = pytest.importorskip("wengert.dl._trace")
    if not hasattr(trace, "dlfeval"):
        pytest.skip("dlfeval not available")
    x0, w0 = r(4, 3), r(2, 4)

    def model(w, x):
        loss = mse(relu(fullyconnect(x, w, np.zeros(2))), np.ones((2, 3)))
        return loss, trace.dlgradient(loss, w)

    loss, g = trace.dlfeval(model, dlarray(w0), dlarray(x0, "CB"))
    ref = wengert.grad(
        lambda w: mse(relu(fullyconnect(dlarray(x0, "CB"), w, np.zeros(2))), np.ones((2, 3)))._value
    )(w0)
    np.testing.assert_allclose(extractdata(g), ref, rtol=1e-10)
    assert float(loss) > 0


def _conv_net(x, w, b):
    X = dlarray(x, "SSCB")
    y = dlconv(X, w, b, padding="same", stride=(1, 2))
    y = batchnorm(y, np.array([0.1, -0.2]), np.array([1.5, 0.5]))
    y = avgpool(maxpool(relu(y) + 0.3 * y, 2, padding=1), 2, padding_value="mean", padding=1)
    y = layernorm(y, np.zeros(2), np.ones(2))
    return fullyconnect(
        groupnorm(y, 2, np.ones(2), np.zeros(2)), np.ones((1, int(np.prod(y.shape[:3])))), 0
    )._value


def _transp_net(x, w):
    X = dlarray(x, "SSCB")
    y = dltranspconv(X, w, 0, stride=2, cropping="same")
    y = instancenorm(y, np.zeros(2), np.ones(2))
    return np.sum(y * y, axis=(0, 1))._value


def _seq_net(x, w, rw, wq):
    X = dlarray(x, "CBT")
    y, h, _ = lstm(X, np.zeros(2), np.zeros(2), w, rw, np.zeros(8))
    z, _ = gru(y, h, wq[:6], wq[6:], np.zeros(6))
    a = attention(z, z, y, 2, attention_mask="causal")
    return (
        mse(a, np.zeros(a.shape))
        + l1loss(z, np.ones(z.shape))
        + huber(z, np.zeros(z.shape), transition_point=0.2)
    )


def _class_net(x, w):
    p = softmax(fullyconnect(dlarray(x, "CB"), w, 0) * gelu(dlarray(x[:3], "CB")))
    t = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]])
    return (
        crossentropy(p, t)
        + indexcrossentropy(p, np.array([2, 0, 1]))
        + 0.5 * l2loss(sigmoid(leakyrelu(p, 0.1)), t)
    )._value


def _embed_net(w):
    return embed(dlarray(np.array([[0.0, 2, 1, 2]]), "CB"), w)._value


GRAD_CASES = {
    "conv": (_conv_net, lambda: (r(4, 4, 2, 2), r(3, 3, 2, 2), r(2))),
    "transp": (_transp_net, lambda: (r(2, 2, 2, 1), r(3, 3, 2, 2))),
    "seq": (lambda *a: _seq_net(*a)._value, lambda: (r(2, 2, 3), r(8, 2), r(8, 2), r(12, 2))),
    "class": (_class_net, lambda: (r(3, 3), r(3, 3))),
    "embed": (_embed_net, lambda: (r(2, 3),)),
}


@pytest.mark.parametrize("mode", ["fwd", "rev"])
@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_check_grads_through_dl_ops(name, mode):
    f, args = GRAD_CASES[name]
    wengert.check_grads(f, args(), order=2, modes=(mode,))


def test_unformatted_roundtrip_through_stripdims():
    x = dlarray(r(3, 4), "CB")
    y = softmax(stripdims(x), data_format="CB")
    close(y, extractdata(softmax(x)))


def test_jacfwd_matches_jacrev_through_dl_ops():
    f, args = GRAD_CASES["conv"]
    a = args()
    g = lambda x: f(x, *a[1:])  # noqa: E731
    np.testing.assert_allclose(wengert.jacfwd(g)(a[0]), wengert.jacrev(g)(a[0]), atol=1e-12)
