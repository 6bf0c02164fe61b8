"""wengert.dl networks: MATLAB layer constructors, names, layouts and formats, the learnables
Table, and dlnetwork forward/predict/initialize against the equivalent wengert.nn Network."""

import contextvars
import copy

import numpy as np
import pytest

import wengert
import wengert.numpy as wnp
from wengert.dl import (
    Table,
    averagePooling2dLayer,
    batchNormalizationLayer,
    convolution2dLayer,
    dlarray,
    dlnetwork,
    dlupdate,
    dropoutLayer,
    featureInputLayer,
    flattenLayer,
    forward,
    fullyConnectedLayer,
    globalAveragePooling2dLayer,
    gruLayer,
    imageInputLayer,
    initialize,
    layerNormalizationLayer,
    leakyReluLayer,
    lstmLayer,
    maxPooling2dLayer,
    predict,
    projectAndReshapeLayer,
    reluLayer,
    resetState,
    rng,
    sequenceInputLayer,
    sigmoidLayer,
    softmaxLayer,
    tanhLayer,
    transposedConv2dLayer,
)
from wengert.nn import Network
from wengert.nn import functional as F
from wengert.nn import layers as L


def _rng(seed=0):
    return np.random.default_rng(seed)


def _img(h=8, w=8, c=1, n=5, seed=0):
    return dlarray(_rng(seed).standard_normal((h, w, c, n)).astype(np.float32), "SSCB")


def _cnn(**kw):
    return dlnetwork(
        [
            imageInputLayer([8, 8, 1], normalization="none"),
            convolution2dLayer(3, 4, padding="same"),
            batchNormalizationLayer(),
            reluLayer(),
            maxPooling2dLayer(2, stride=2),
            fullyConnectedLayer(10),
            softmaxLayer(),
        ],
        rng=0,
        **kw,
    )


def _vals(t):
    return [np.asarray(v._value) for v in t.value]


# ---------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------


def test_table_rows_columns_and_indexing():
    a, b, c = (dlarray(np.full((2, 1), k, np.float32)) for k in range(3))
    t = Table(["fc", "fc", "bn"], ["Weights", "Bias", "Scale"], [a, b, c])
    assert len(t) == 3
    rows = list(t)
    assert rows[1].layer == "fc" and rows[1].parameter == "Bias" and rows[1].value is b
    layer, parameter, value = t[-1]
    assert (layer, parameter, value) == ("bn", "Scale", c)
    assert t.layer == ["fc", "fc", "bn"] and t["Parameter"] == ["Weights", "Bias", "Scale"]
    assert t["fc", "Bias"] is b and t.get("nope", "x") is None
    assert len(t[1:]) == 2 and t[[2, 0]].layer == ["bn", "fc"]
    assert t[np.array(t.layer) == "fc"].parameter == ["Weights", "Bias"]
    assert t.where(parameter="Scale").layer == ["bn"]
    assert "3×3 Table" in repr(t) and "2×1 dlarray" in repr(t)
    with pytest.raises(KeyError):
        t["fc", "Offset"]
    with pytest.raises(IndexError):
        t[3]
    with pytest.raises(ValueError):
        Table(["a"], ["b"], [])


def test_table_map_dlarrays_is_a_copy():
    a = dlarray(np.ones((2, 2), np.float32))
    t = Table(["l"], ["p"], [a])
    u = t._map_dlarrays(lambda x: dlarray(x._value * 2))
    assert np.all(u.value[0]._value == 2) and t.value[0] is a and u is not t


def test_table_is_a_pytree():
    t = Table(["l", "l"], ["a", "b"], [np.ones(2), np.zeros(3)])
    leaves, tdef = wengert.tree_flatten(t)
    assert len(leaves) == 2
    u = wengert.tree_unflatten(tdef, [x + 1 for x in leaves])
    assert isinstance(u, Table) and u.parameter == ["a", "b"] and np.all(u.value[1] == 1)


def _fc_net():
    return dlnetwork(
        [featureInputLayer(3), fullyConnectedLayer(4), reluLayer(), fullyConnectedLayer(2)],
        rng=0,
    )


def test_table_row_assignment_matlab_idiom():
    # MATLAB: idx = learnables.Parameter == "Weights";
    #         gradients(idx,:) = dlupdate(@(g, w) g + l2*w, gradients(idx,:), learnables(idx,:))
    net = _fc_net()
    learnables = net.learnables
    grads = learnables.with_values([dlarray(np.ones_like(v._value)) for v in learnables.value])
    idx = np.array(learnables.parameter) == "Weights"
    before = list(grads.value)
    grads[idx] = dlupdate(lambda g, w: g + 0.5 * w, grads[idx], learnables[idx])
    for k in (0, 2):
        np.testing.assert_allclose(
            grads.value[k]._value, 1 + 0.5 * learnables.value[k]._value, rtol=1e-6
        )
        assert grads.value[k]._value.dtype == np.float32
    assert grads.value[1] is before[1] and grads.value[3] is before[3]  # other rows kept
    assert grads.layer == learnables.layer and grads.parameter == learnables.parameter
    assert net.learnables is learnables  # the network was not touched by changing grads


def test_table_row_assignment_keys_and_values():
    a, b, c = (dlarray(np.full((2, 1), k, np.float32), "") for k in range(3))
    t = Table(["fc", "fc", "bn"], ["Weights", "Bias", "Scale"], [a, b, c])
    z = np.zeros((2, 1), np.float32)
    t[0] = z  # one row: the value itself; a plain array becomes a dlarray
    assert isinstance(t.value[0], dlarray) and np.all(t.value[0]._value == 0)
    t[-1] = dlarray(np.full((2, 1), 7, np.float32))
    assert t.value[2]._value[0, 0] == 7
    t["fc", "Bias"] = z + 5  # (layer, parameter)
    assert t["fc", "Bias"]._value[0, 0] == 5
    t[1:] = [z + 1, z + 2]  # slice: a list of values
    assert [float(v._value[0, 0]) for v in t.value] == [0, 1, 2]
    t[[2, 0]] = (z + 9, z + 8)  # a list of rows, in that order
    assert [float(v._value[0, 0]) for v in t.value] == [8, 1, 9]
    t[np.array([False, True, False])] = [z + 4]  # a mask
    assert float(t.value[1]._value[0, 0]) == 4
    t[[]] = []  # nothing selected, nothing given
    t[1:3] = t[1:3].with_values([z, z])  # a table with the same row names
    assert float(t.value[2]._value[0, 0]) == 0
    t["value"] = [z, z, z]  # the whole column (MATLAB's t.Value = ...)
    r = t[1]._replace(value=dlarray(z + 3))
    t[1] = r  # a Row (what t[i] gives) into its own row
    assert float(t.value[1]._value[0, 0]) == 3
    with pytest.raises(ValueError, match="same single row"):
        t[0] = r
    with pytest.raises(ValueError, match="same single row"):
        t[0:2] = r
    # a formatted value keeps the old format when given as a plain array
    u = Table(["l"], ["p"], [dlarray(np.ones((3, 2), np.float32), "CB")])
    u[0] = np.zeros((3, 2), np.float32)
    assert u.value[0].fmt == "CB"
    # plain-array tables stay plain; None rows take any size
    w = Table(["l", "l"], ["a", "b"], [np.ones(2), None])
    w[0] = [5.0, 6.0]
    w[1] = np.ones((4, 4))
    assert isinstance(w.value[0], np.ndarray) and w.value[1].shape == (4, 4)


def test_table_row_assignment_errors_change_nothing():
    z = np.zeros((2, 1), np.float32)
    t = Table(["fc", "fc", "bn"], ["Weights", "Bias", "Scale"], [dlarray(z)] * 3)
    before = list(t.value)
    with pytest.raises(ValueError, match=r"size \(2, 1\).*size \(3, 1\)"):
        t[1] = np.zeros((3, 1), np.float32)
    with pytest.raises(ValueError, match="2 row\\(s\\) selected but 1 value"):
        t[[0, 1]] = [z]
    with pytest.raises(ValueError, match="2 row\\(s\\) selected but the table assigned has 3"):
        t[0:2] = t
    with pytest.raises(ValueError, match="must be the selected rows"):
        t[[0, 1]] = t[[1, 0]]
    with pytest.raises(TypeError, match="float32 values; the new value is float64"):
        t[0] = np.zeros((2, 1))
    with pytest.raises(ValueError, match="size"):  # checked before anything is written
        t[0:2] = [z + 1, np.zeros((5,), np.float32)]
    with pytest.raises(TypeError, match="list of values"):
        t[0:2] = z
    with pytest.raises(TypeError, match="takes an array"):
        t[0] = "weights"
    with pytest.raises(IndexError, match="more than once"):
        t[[0, 0]] = [z, z]
    with pytest.raises(IndexError, match="out of range"):
        t[3] = z
    with pytest.raises(IndexError, match="out of range"):
        t[[0, 5]] = [z, z]
    with pytest.raises(IndexError, match="mask"):
        t[np.array([True, False])] = [z]
    with pytest.raises(KeyError, match="no row"):
        t["fc", "Offset"] = z
    with pytest.raises(KeyError, match="only the 'value' column"):
        t["layer"] = ["a", "b", "c"]
    with pytest.raises(TypeError, match="index with"):
        t[1.5] = z
    assert all(x is y for x, y in zip(t.value, before))


def test_networks_never_share_a_table():
    net = _fc_net()
    w0 = np.array(net.learnables.value[0]._value)
    # copies that updates and friends make own their tables
    for other in (
        resetState(net), initialize(net), copy.copy(net),
        dlupdate(lambda w: w, net),
    ):  # fmt: skip
        assert other.learnables is not net.learnables and other.state is not net.state
        other.learnables[0] = np.zeros((4, 3), np.float32)
        np.testing.assert_array_equal(net.learnables.value[0]._value, w0)
    # assigning a table stores a copy: changing the table later leaves the network alone
    t = net.learnables.copy()
    net2 = resetState(net)
    net2.learnables = t
    t[0] = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(net2.learnables.value[0]._value, w0)
    # net.learnables[idx] = ... changes that network (MATLAB's net.Learnables(idx,:) = ...)
    net2.learnables["fc_1", "Weights"] = np.full((4, 3), 2, np.float32)
    y = predict(net2, dlarray(np.ones((3, 1), np.float32), "CB"))
    assert np.all(net2.learnables.value[0]._value == 2) and y.shape == (2, 1)
    np.testing.assert_array_equal(net.learnables.value[0]._value, w0)
    # a pytree round trip gives a network with its own tables
    leaves, tdef = wengert.tree_flatten(net)
    net3 = wengert.tree_unflatten(tdef, leaves)
    net3.learnables[0] = np.zeros((4, 3), np.float32)
    assert net3.learnables is not net.learnables
    np.testing.assert_array_equal(net.learnables.value[0]._value, w0)


# ---------------------------------------------------------------------------------------------
# The global generator: MATLAB's rng
# ---------------------------------------------------------------------------------------------


def _in_fresh_context(fn):
    return contextvars.Context().run(fn)


def test_rng_without_argument_returns_the_current_generator():
    def body():
        g = rng()  # none yet: one is made and kept
        assert isinstance(g, np.random.Generator) and rng() is g
        g.random(3)  # drawing does not replace it
        assert rng() is g
        g2 = rng(5)
        assert g2 is not g and rng() is g2
        return True

    assert _in_fresh_context(body)


def test_rng_seed_default_shuffle_generator_and_state():
    def body():
        a = rng(7).random(4)
        np.testing.assert_array_equal(a, np.random.default_rng(7).random(4))
        b = rng(np.int64(7)).random(4)
        np.testing.assert_array_equal(a, b)
        d = rng("default").random(3)
        np.testing.assert_array_equal(d, np.random.default_rng(0).random(3))
        np.testing.assert_array_equal(rng("Default").random(3), d)
        s1, s2 = rng("shuffle").random(4), rng("shuffle").random(4)
        assert not np.array_equal(s1, s2)  # from entropy
        mine = np.random.default_rng(3)
        assert rng(mine) is mine and rng() is mine  # a Generator is taken as is
        # MATLAB's s = rng; ...; rng(s): the state dict restores the stream
        s = rng().bit_generator.state
        first = rng().random(5)
        g = rng(s)
        np.testing.assert_array_equal(g.random(5), first)
        mt = np.random.Generator(np.random.MT19937(1))
        np.testing.assert_array_equal(
            rng(mt.bit_generator.state).random(2),
            np.random.Generator(np.random.MT19937(1)).random(2),
        )
        return True

    assert _in_fresh_context(body)


def test_rng_drives_initialisation_and_bad_arguments():
    def body():
        rng(11)
        n1 = _plain_net()
        rng(11)
        n2 = _plain_net()
        rng("default")
        n3 = _plain_net()
        for a, b in zip(n1.learnables.value, n2.learnables.value):
            np.testing.assert_array_equal(a._value, b._value)
        assert not np.array_equal(n1.learnables.value[0]._value, n3.learnables.value[0]._value)
        for bad, err, msg in (
            (-1, ValueError, "non-negative"),
            ("twister", ValueError, "default.*shuffle"),
            (1.5, TypeError, "non-negative integer seed"),
            (True, TypeError, "non-negative integer seed"),
            ({"bit_generator": "Nope"}, ValueError, "bit_generator"),
            ({"bit_generator": "PCG64", "state": {}}, ValueError, "not valid"),
        ):
            with pytest.raises(err, match=msg):
                rng(bad)
        return True

    assert _in_fresh_context(body)


def _plain_net():
    return dlnetwork([featureInputLayer(3), fullyConnectedLayer(4)])


# ---------------------------------------------------------------------------------------------
# Names, layouts, formats
# ---------------------------------------------------------------------------------------------


def test_matlab_auto_names_and_user_layers_untouched():
    layers = [
        imageInputLayer([8, 8, 1]),
        convolution2dLayer(3, 4),
        reluLayer(),
        convolution2dLayer(3, 4, name="mine"),
        convolution2dLayer(3, 4),
        reluLayer(),
        fullyConnectedLayer(3),
        softmaxLayer(),
    ]
    net = dlnetwork(layers, initialize=False)
    names = [ly.name for ly in net.layers]
    assert names == ["imageinput", "conv_1", "relu_1", "mine", "conv_2", "relu_2", "fc", "softmax"]
    assert [ly.name for ly in layers][:3] == ["", "", ""]
    assert net.learnables.layer == [
        "conv_1",
        "conv_1",
        "mine",
        "mine",
        "conv_2",
        "conv_2",
        "fc",
        "fc",
    ]
    with pytest.raises(ValueError, match="unique"):
        dlnetwork([featureInputLayer(2, name="a"), reluLayer(name="a")])


def test_learnable_layouts_are_matlabs():
    net = dlnetwork(
        [
            imageInputLayer([9, 7, 3]),
            convolution2dLayer([3, 2], 5),
            batchNormalizationLayer(),
            transposedConv2dLayer(4, 6, stride=2),
            layerNormalizationLayer(),
            fullyConnectedLayer(4),
        ],
        rng=1,
    )
    shapes = {(a, b): v.shape for a, b, v in net.learnables}
    assert shapes[("conv", "Weights")] == (3, 2, 3, 5)
    assert shapes[("conv", "Bias")] == (1, 1, 5)
    assert shapes[("batchnorm", "Offset")] == (1, 1, 5)
    assert shapes[("transposed-conv", "Weights")] == (4, 4, 6, 5)
    assert shapes[("layernorm", "Scale")] == (1, 1, 6)
    # conv: 7×6; transposed (stride 2, no cropping): (7−1)·2 + 4 = 16, (6−1)·2 + 4 = 14
    assert shapes[("fc", "Weights")] == (4, 16 * 14 * 6) and shapes[("fc", "Bias")] == (4, 1)
    assert [v.shape for v in net.state.value] == [(1, 1, 5), (1, 1, 5)]
    assert all(v.dtype == np.float32 and v.fmt == "" for v in net.learnables.value)
    assert np.all(net.state["batchnorm", "TrainedVariance"]._value == 1)
    net64 = dlnetwork([featureInputLayer(3), fullyConnectedLayer(2)], dtype=np.float64)
    assert net64.learnables.value[0].dtype == np.float64


def test_output_formats_and_named_outputs():
    net = _cnn()
    X = _img()
    Y, state = forward(net, X)
    assert Y.fmt == "CB" and Y.shape == (10, 5) and Y.dtype == np.float32
    np.testing.assert_allclose(np.asarray(Y._value).sum(axis=0), 1, rtol=1e-5)
    r, f = predict(net, X, outputs=["relu", "fc"])
    assert r.fmt == "SSCB" and r.shape == (8, 8, 4, 5) and f.shape == (10, 5)
    y1, y2, st = net.forward(X, outputs=["maxpool", "softmax"])
    assert y1.shape == (4, 4, 4, 5) and isinstance(st, Table)
    with pytest.raises(ValueError, match="no layer named"):
        predict(net, X, outputs="nope")


def test_plain_and_unformatted_inputs():
    net = _cnn()
    X = _img()
    y = np.asarray(predict(net, X)._value)
    plain = np.asarray(X._value).astype(np.float64)  # cast to the network's float32
    np.testing.assert_allclose(np.asarray(predict(net, plain)._value), y, rtol=1e-6)
    bchw = np.asarray(X._value).transpose(3, 2, 0, 1)  # "BCSS" permuted to canonical SSCB
    out = predict(net, dlarray(bchw), data_format="BCSS")
    np.testing.assert_allclose(np.asarray(out._value), y, rtol=1e-6)
    with pytest.raises(ValueError, match="takes 'SSCB'"):
        predict(net, dlarray(np.ones((64, 5), np.float32), "CB"))
    with pytest.raises(ValueError, match="size"):
        predict(net, dlarray(np.ones((7, 8, 1, 2), np.float32), "SSCB"))


def test_flatten_and_fc_use_matlab_column_major_order():
    h, w, c, n = 3, 4, 2, 5
    X = _img(h, w, c, n)
    net = dlnetwork([imageInputLayer([h, w, c], normalization="none"), flattenLayer()])
    Y = predict(net, X)
    assert Y.fmt == "CB"
    np.testing.assert_array_equal(
        np.asarray(Y._value), np.reshape(np.asarray(X._value), (h * w * c, n), order="F")
    )
    W = _rng(1).standard_normal((3, h * w * c)).astype(np.float32)
    b = _rng(2).standard_normal((3, 1)).astype(np.float32)
    fc = dlnetwork(
        [
            imageInputLayer([h, w, c], normalization="none"),
            fullyConnectedLayer(3, weights=W, bias=b),
        ]
    )
    ref = W @ np.reshape(np.asarray(X._value), (h * w * c, n), order="F") + b
    np.testing.assert_allclose(np.asarray(predict(fc, X)._value), ref, rtol=1e-5, atol=1e-5)


def test_project_and_reshape_is_matlabs_reshape():
    rng = _rng(3)
    Z = rng.standard_normal((5, 4)).astype(np.float32)
    net = dlnetwork([featureInputLayer(5), projectAndReshapeLayer([3, 2, 4], name="proj")], rng=0)
    W = np.asarray(net.learnables["proj", "Weights"]._value)
    b = np.asarray(net.learnables["proj", "Bias"]._value)
    assert W.shape == (24, 5) and b.shape == (24, 1)
    Y = predict(net, dlarray(Z, "CB"))
    assert Y.fmt == "SSCB" and Y.shape == (3, 2, 4, 4)
    np.testing.assert_allclose(
        np.asarray(Y._value), np.reshape(W @ Z + b, (3, 2, 4, 4), order="F"), rtol=1e-5, atol=1e-6
    )


def test_spatial_sizes_padding_cropping_pooling():
    X = _img(9, 7, 2, 3)

    def size(*layers):
        net = dlnetwork([imageInputLayer([9, 7, 2], normalization="none"), *layers], rng=0)
        return predict(net, X).shape

    assert size(convolution2dLayer(3, 4, stride=2, padding="same")) == (5, 4, 4, 3)
    assert size(convolution2dLayer(3, 4, padding=[1, 0, 2, 1])) == (8, 8, 4, 3)
    assert size(convolution2dLayer(3, 4, dilation_factor=2)) == (5, 3, 4, 3)
    assert size(transposedConv2dLayer(4, 3, stride=2, cropping="same")) == (18, 14, 3, 3)
    assert size(transposedConv2dLayer(3, 3, stride=2)) == (19, 15, 3, 3)
    assert size(maxPooling2dLayer(3)) == (7, 5, 2, 3)  # MATLAB's stride 1
    assert size(maxPooling2dLayer(2, stride=2)) == (4, 3, 2, 3)
    assert size(averagePooling2dLayer(2, stride=2, padding="same")) == (5, 4, 2, 3)
    assert size(globalAveragePooling2dLayer()) == (1, 1, 2, 3)
    g = predict(
        dlnetwork(
            [imageInputLayer([9, 7, 2], normalization="none"), globalAveragePooling2dLayer()]
        ),
        X,
    )
    assert g.fmt == "SSCB"
    np.testing.assert_allclose(
        np.asarray(g._value)[0, 0], np.asarray(X._value).mean(axis=(0, 1)), rtol=1e-5
    )


def test_average_pooling_padding_value():
    X = dlarray(np.ones((4, 4, 1, 1), np.float32), "SSCB")
    inp = imageInputLayer([4, 4, 1], normalization="none")
    zero = predict(dlnetwork([inp, averagePooling2dLayer(3, padding=1)]), X)
    mean = predict(dlnetwork([inp, averagePooling2dLayer(3, padding=1, padding_value="mean")]), X)
    assert np.asarray(zero._value)[0, 0, 0, 0] == pytest.approx(4 / 9)
    np.testing.assert_allclose(np.asarray(mean._value), 1)


def test_activation_layers():
    x = _rng(4).standard_normal((3, 6)).astype(np.float32)
    X = dlarray(x, "CB")

    def run(layer):
        return np.asarray(predict(dlnetwork([featureInputLayer(3), layer]), X)._value)

    np.testing.assert_allclose(run(reluLayer()), np.maximum(x, 0))
    np.testing.assert_allclose(run(leakyReluLayer(0.2)), np.where(x > 0, x, 0.2 * x), rtol=1e-6)
    np.testing.assert_allclose(run(tanhLayer()), np.tanh(x), rtol=1e-6)
    np.testing.assert_allclose(run(sigmoidLayer()), 1 / (1 + np.exp(-x)), rtol=1e-6)
    e = np.exp(x - x.max(axis=0))
    np.testing.assert_allclose(run(softmaxLayer()), e / e.sum(axis=0), rtol=1e-5)


def test_softmax_over_channels_of_images():
    X = _img(3, 3, 4, 2)
    net = dlnetwork([imageInputLayer([3, 3, 4], normalization="none"), softmaxLayer()])
    y = np.asarray(predict(net, X)._value)
    np.testing.assert_allclose(y.sum(axis=2), 1, rtol=1e-5)


def test_input_normalizations():
    x = _rng(5).standard_normal((2, 2, 3, 4)).astype(np.float32)
    X = dlarray(x, "SSCB")
    mean = np.array([1.0, 2.0, 3.0]).reshape(1, 1, 3)
    std = np.array([2.0, 4.0, 8.0]).reshape(1, 1, 3)
    zc = dlnetwork([imageInputLayer([2, 2, 3], mean=mean)])
    np.testing.assert_allclose(np.asarray(predict(zc, X)._value), x - mean[..., None], rtol=1e-6)
    zs = dlnetwork(
        [imageInputLayer([2, 2, 3], normalization="zscore", mean=mean, standard_deviation=std)]
    )
    ref = (x - mean[..., None]) / std[..., None]
    np.testing.assert_allclose(np.asarray(predict(zs, X)._value), ref, rtol=1e-6)
    ident = dlnetwork([imageInputLayer([2, 2, 3])])  # zerocenter with no mean: zeros
    np.testing.assert_allclose(np.asarray(predict(ident, X)._value), x)
    f = dlnetwork([featureInputLayer(3, normalization="rescale-zero-one", min=-1, max=3)])
    z = np.asarray(predict(f, dlarray(x[0, 0], "CB"))._value)
    np.testing.assert_allclose(z, (x[0, 0] + 1) / 4, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Against wengert.nn
# ---------------------------------------------------------------------------------------------


def _nn_twin(net):
    """The wengert.nn Network with the same weights (converted from MATLAB's layouts)."""
    lv = {(a, b): np.asarray(v._value) for a, b, v in net.learnables}
    W = lv[("fc", "Weights")]  # columns in MATLAB's (h, w, c) column-major order
    w_nn = W.reshape(10, 4, 4, 4).transpose(0, 1, 3, 2).reshape(10, 64)
    params = {
        "conv": {
            "weight": lv[("conv", "Weights")].transpose(3, 2, 0, 1),
            "bias": lv[("conv", "Bias")].ravel(),
        },
        "bn": {
            "gamma": lv[("batchnorm", "Scale")].ravel(),
            "beta": lv[("batchnorm", "Offset")].ravel(),
        },
        "fc": {"weight": w_nn, "bias": lv[("fc", "Bias")].ravel()},
    }
    state = {"bn": {"mean": np.zeros(4, np.float32), "var": np.ones(4, np.float32)}}
    model = L.Sequential(
        ("conv", L.Conv2d(4, 3, padding="same")),
        ("bn", L.BatchNorm()),
        ("relu", L.ReLU()),
        ("pool", L.MaxPool2d(2)),
        ("flat", L.Flatten()),
        ("fc", L.Linear(10)),
        ("sm", L.Softmax()),
    )
    return Network(model, (1, 8, 8), params=params, state=state), w_nn


def test_cnn_matches_wengert_nn_network():
    net = _cnn()
    nn_net, _ = _nn_twin(net)
    X = _img(n=6)
    x_nn = np.asarray(X._value).transpose(3, 2, 0, 1)
    Y, state = forward(net, X)
    y_nn, s_nn = nn_net.forward(x_nn)
    np.testing.assert_allclose(np.asarray(Y._value).T, y_nn, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        state["batchnorm", "TrainedMean"]._value.ravel(), s_nn["bn"]["mean"], rtol=1e-6
    )
    np.testing.assert_allclose(
        state["batchnorm", "TrainedVariance"]._value.ravel(), s_nn["bn"]["var"], rtol=1e-6
    )
    assert state["batchnorm", "TrainedMean"].shape == (1, 1, 4)
    net.state = state
    p = predict(net, X)
    p_nn = nn_net.with_state(s_nn).predict(x_nn)
    np.testing.assert_allclose(np.asarray(p._value).T, p_nn, rtol=1e-5, atol=1e-7)


def test_cnn_gradients_match_wengert_nn_in_matlab_layout():
    net = _cnn()
    nn_net, _ = _nn_twin(net)
    X = _img(n=4)
    x_nn = np.asarray(X._value).transpose(3, 2, 0, 1)
    T = np.eye(10, dtype=np.float32)[:, [1, 5, 7, 2]]

    def loss_dl(vals):
        n2 = net._copy(learnables=net.learnables.with_values([dlarray(v) for v in vals]))
        Y, _ = forward(n2, X)
        return -wnp.sum(T * wnp.log(Y._value))

    def loss_nn(params):
        y, _ = nn_net.apply(params, nn_net.state, x_nn, training=True)
        return -wnp.sum(T.T * wnp.log(y))

    g = wengert.grad(loss_dl)(_vals(net.learnables))
    g_nn = wengert.grad(loss_nn)(nn_net.params)
    assert [a.shape for a in g] == [v.shape for v in net.learnables.value]
    np.testing.assert_allclose(
        g[0], g_nn["conv"]["weight"].transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(g[3].ravel(), g_nn["bn"]["gamma"], rtol=1e-4, atol=1e-6)
    gw = g[4].reshape(10, 4, 4, 4).transpose(0, 1, 3, 2).reshape(10, 64)
    np.testing.assert_allclose(gw, g_nn["fc"]["weight"], rtol=1e-4, atol=1e-6)


def test_batchnorm_separate_decays_and_sequences():
    x = _rng(6).standard_normal((3, 5, 4)).astype(np.float32)  # C=3, N=5, T=4
    net = dlnetwork(
        [sequenceInputLayer(3), batchNormalizationLayer(mean_decay=0.3, variance_decay=0.6)]
    )
    Y, state = forward(net, dlarray(x, "CBT"))
    assert Y.fmt == "CBT"
    mu = x.mean(axis=(1, 2))
    var = x.var(axis=(1, 2))
    np.testing.assert_allclose(
        np.asarray(Y._value),
        (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5),
        rtol=1e-4,
        atol=1e-5,
    )
    m = state["batchnorm", "TrainedMean"]._value
    v = state["batchnorm", "TrainedVariance"]._value
    assert m.shape == (3, 1)
    np.testing.assert_allclose(m.ravel(), 0.3 * mu, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(v.ravel(), 0.4 + 0.6 * var * 20 / 19, rtol=1e-5)


def test_layer_normalization_per_channel_affine():
    x = _rng(7).standard_normal((2, 3, 4, 5)).astype(np.float32)
    off = _rng(8).standard_normal((1, 1, 4)).astype(np.float32)
    sc = _rng(9).standard_normal((1, 1, 4)).astype(np.float32)
    net = dlnetwork(
        [
            imageInputLayer([2, 3, 4], normalization="none"),
            layerNormalizationLayer(offset=off, scale=sc),
        ]
    )
    y = np.asarray(predict(net, dlarray(x, "SSCB"))._value)
    mu = x.mean(axis=(0, 1, 2), keepdims=True)
    sd = np.sqrt(x.var(axis=(0, 1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(
        y, (x - mu) / sd * sc[..., None] + off[..., None], rtol=1e-4, atol=1e-5
    )
    seq = _rng(10).standard_normal((4, 2, 3)).astype(np.float32)
    net2 = dlnetwork([sequenceInputLayer(4), layerNormalizationLayer()])
    ys = np.asarray(predict(net2, dlarray(seq, "CBT"))._value)
    ref = (seq - seq.mean(axis=0)) / np.sqrt(seq.var(axis=0) + 1e-5)
    np.testing.assert_allclose(ys, ref, rtol=1e-4, atol=1e-5)


def test_dropout_trains_and_predicts():
    x = np.ones((50, 8), np.float32)
    net = dlnetwork([featureInputLayer(50), dropoutLayer(0.4)])
    y1, _ = forward(net, dlarray(x, "CB"), rng=3)
    y2, _ = forward(net, dlarray(x, "CB"), rng=3)
    a = np.asarray(y1._value)
    np.testing.assert_array_equal(a, np.asarray(y2._value))
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.6)} and 0 < (a == 0).mean() < 1
    np.testing.assert_array_equal(np.asarray(predict(net, dlarray(x, "CB"))._value), x)


# ---------------------------------------------------------------------------------------------
# Recurrent layers
# ---------------------------------------------------------------------------------------------


def test_lstm_layer_matches_functional_and_carries_state():
    c, h, n, t = 3, 5, 4, 6
    x = _rng(11).standard_normal((c, n, t)).astype(np.float32)
    net = dlnetwork([sequenceInputLayer(c), lstmLayer(h)], rng=0)
    lv = {b: np.asarray(v._value) for _, b, v in net.learnables}
    assert lv["InputWeights"].shape == (4 * h, c) and lv["RecurrentWeights"].shape == (4 * h, h)
    np.testing.assert_array_equal(
        lv["Bias"].ravel(), np.r_[np.zeros(h), np.ones(h), np.zeros(2 * h)]
    )
    Y, state = forward(net, dlarray(x, "CBT"))
    ys, hT, cT = F.lstm(
        x.transpose(1, 2, 0),
        None,
        None,
        lv["InputWeights"],
        lv["RecurrentWeights"],
        lv["Bias"].ravel(),
    )
    assert Y.fmt == "CBT" and Y.shape == (h, n, t)
    np.testing.assert_allclose(np.asarray(Y._value), ys.transpose(2, 0, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["lstm", "HiddenState"]._value, hT.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["lstm", "CellState"]._value, cT.T, rtol=1e-5, atol=1e-6)
    net.state = state  # the final states become the next initial states (MATLAB's behaviour)
    Y2, _ = forward(net, dlarray(x, "CBT"))
    ys2, _, _ = F.lstm(
        x.transpose(1, 2, 0), hT, cT, lv["InputWeights"], lv["RecurrentWeights"], lv["Bias"].ravel()
    )
    np.testing.assert_allclose(np.asarray(Y2._value), ys2.transpose(2, 0, 1), rtol=1e-5, atol=1e-6)
    fresh = resetState(net)
    assert np.all(fresh.state["lstm", "HiddenState"]._value == 0)
    assert fresh.state["lstm", "HiddenState"].shape == (h, 1)
    last = dlnetwork([sequenceInputLayer(c), lstmLayer(h, output_mode="last")], rng=0)
    yl = predict(last, dlarray(x, "CBT"))
    assert yl.fmt == "CB" and yl.shape == (h, n)
    np.testing.assert_allclose(np.asarray(yl._value), hT.T, rtol=1e-5, atol=1e-6)


def test_gru_layer_matches_functional():
    c, h, n, t = 2, 3, 4, 5
    x = _rng(12).standard_normal((c, n, t)).astype(np.float32)
    net = dlnetwork([sequenceInputLayer(c), gruLayer(h, output_mode="last")], rng=0)
    lv = {b: np.asarray(v._value) for _, b, v in net.learnables}
    assert lv["Bias"].shape == (3 * h, 1) and net.state.parameter == ["HiddenState"]
    bias = _rng(13).standard_normal((3 * h, 1)).astype(np.float32)
    net.learnables = net.learnables.with_values(
        [net.learnables.value[0], net.learnables.value[1], dlarray(bias)]
    )
    y = np.asarray(predict(net, dlarray(x, "CBT"))._value)
    _, hT = F.gru(
        x.transpose(1, 2, 0), None, lv["InputWeights"], lv["RecurrentWeights"], bias.ravel(), None
    )
    np.testing.assert_allclose(y, hT.T, rtol=1e-5, atol=1e-6)
    two = dlnetwork(
        [sequenceInputLayer(c), gruLayer(h, reset_gate_mode="recurrent-bias-after-multiplication")]
    )
    assert two.learnables["gru", "Bias"].shape == (3 * h, 2)
    assert predict(two, dlarray(x, "CBT")).shape == (h, n, t)


# ---------------------------------------------------------------------------------------------
# Initialisation, state, containers
# ---------------------------------------------------------------------------------------------


def test_uninitialized_network_and_initialize():
    layers = [featureInputLayer(4), fullyConnectedLayer(3), reluLayer()]
    net = dlnetwork(layers, initialize=False)
    assert not net.initialized and net.learnables.value == [None, None]
    assert "[]" in repr(net.learnables)
    with pytest.raises(RuntimeError, match="not initialised"):
        predict(net, np.ones((4, 2), np.float32))
    net2 = initialize(net, rng=0)
    assert net2.initialized and not net.initialized
    assert net2.learnables["fc", "Weights"].shape == (3, 4)
    ex = dlnetwork(
        [fullyConnectedLayer(3), tanhLayer()], dlarray(np.ones((4, 2), np.float32), "CB")
    )
    assert ex.learnables.value[0].shape == (3, 4) and ex.input_names == ["fc"]
    with pytest.raises(ValueError, match="example"):
        dlnetwork([fullyConnectedLayer(3)])
    late = initialize(
        dlnetwork([fullyConnectedLayer(3)], initialize=False), dlarray(np.ones((5, 1)), "CB")
    )
    assert late.learnables.value[0].shape == (3, 5)


def test_given_weights_and_initializers():
    w = np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3)
    net = dlnetwork(
        [
            imageInputLayer([4, 4, 2]),
            convolution2dLayer(2, 3, weights=w, bias_initializer="ones"),
            convolution2dLayer(1, 2, weights_initializer=lambda sz: np.full(sz, 0.5)),
        ]
    )
    np.testing.assert_array_equal(net.learnables["conv_1", "Weights"]._value, w)
    assert np.all(net.learnables["conv_1", "Bias"]._value == 1)
    assert np.all(net.learnables["conv_2", "Weights"]._value == 0.5)
    with pytest.raises(ValueError, match="size"):
        dlnetwork([imageInputLayer([4, 4, 2]), convolution2dLayer(3, 3, weights=w)])
    with pytest.raises(ValueError, match="initializer"):
        convolution2dLayer(3, 3, weights_initializer="nope")


def test_state_assignment_and_map_dlarrays():
    net = _cnn()
    _, state = forward(net, _img())
    net.state = state
    assert net.state is not state and net.state.value[0] is state.value[0]
    with pytest.raises(ValueError, match="rows"):
        net.state = state[:1]
    doubled = net._map_dlarrays(lambda v: dlarray(v._value * 2))
    np.testing.assert_array_equal(
        doubled.learnables.value[0]._value, 2 * net.learnables.value[0]._value
    )
    assert doubled.state.value[0] is not net.state.value[0]
    assert isinstance(doubled, dlnetwork) and doubled.layers[1].name == "conv"
    assert "dlnetwork with 7 layers" in repr(net)


def test_errors_are_clear():
    with pytest.raises(TypeError, match="not a layer"):
        dlnetwork([featureInputLayer(2), L.ReLU()])
    with pytest.raises(ValueError, match="must come first"):
        dlnetwork([reluLayer(), featureInputLayer(2)])
    net = dlnetwork([featureInputLayer(3), lstmLayer(2)], initialize=False)
    with pytest.raises(ValueError, match="'CBT'"):
        initialize(net)
    with pytest.raises(NotImplementedError):
        gruLayer(3, reset_gate_mode="before-multiplication")


# ---------------------------------------------------------------------------------------------
# With dlfeval / dlgradient
# ---------------------------------------------------------------------------------------------


def test_dlgradient_of_network_learnables_is_a_table():
    tr = pytest.importorskip("wengert.dl._trace")
    net = _cnn()
    X = _img(n=4)
    T = dlarray(np.eye(10, dtype=np.float32)[:, [1, 5, 7, 2]], "CB")

    def model_loss(net, X, T):
        Y, state = forward(net, X)
        loss = dlarray(-wnp.sum(T._value * wnp.log(Y._value)))
        return loss, tr.dlgradient(loss, net.learnables), state

    loss, grads, state = tr.dlfeval(model_loss, net, X, T)
    assert isinstance(grads, Table) and grads.layer == net.learnables.layer
    assert [g.shape for g in grads.value] == [v.shape for v in net.learnables.value]

    def ref(vals):
        n2 = net._copy(learnables=net.learnables.with_values([dlarray(v) for v in vals]))
        Y, _ = forward(n2, X)
        return -wnp.sum(T._value * wnp.log(Y._value))

    g = wengert.grad(ref)(_vals(net.learnables))
    for a, b in zip(grads.value, g):
        np.testing.assert_allclose(np.asarray(a._value), b, rtol=1e-5, atol=1e-7)
    assert isinstance(state, Table)


def test_pinn_second_derivative_through_network():
    tr = pytest.importorskip("wengert.dl._trace")
    net = dlnetwork(
        [featureInputLayer(1), fullyConnectedLayer(8), tanhLayer(), fullyConnectedLayer(1)],
        rng=0,
        dtype=np.float64,
    )
    x = np.linspace(-1, 1, 7).reshape(1, 7)

    def f(net, X):
        U = predict(net, X)
        dU = tr.dlgradient(dlarray(wnp.sum(U._value)), X, enable_higher_derivatives=True)
        d2U = tr.dlgradient(dlarray(wnp.sum(dU._value)), X)
        return U, d2U

    U, d2U = tr.dlfeval(f, net, dlarray(x, "CB"))
    W1, b1, W2 = (np.asarray(net.learnables.value[k]._value) for k in range(3))
    z = W1 @ x + b1
    th = np.tanh(z)
    ref = W2 @ (W1 * (-2 * th * (1 - th**2)) * W1)
    np.testing.assert_allclose(np.asarray(d2U._value), ref, rtol=1e-8, atol=1e-10)


def test_gan_generator_and_discriminator_compose():
    gen = dlnetwork(
        [
            featureInputLayer(10),
            projectAndReshapeLayer([2, 2, 16], name="proj"),
            transposedConv2dLayer(3, 8, stride=2, cropping="same"),
            batchNormalizationLayer(),
            reluLayer(),
            transposedConv2dLayer(3, 1, stride=2, cropping="same"),
            tanhLayer(),
        ],
        rng=0,
    )
    Z = dlarray(_rng(14).standard_normal((10, 6)).astype(np.float32), "CB")
    Xg, state = forward(gen, Z)
    assert Xg.fmt == "SSCB" and Xg.shape == (8, 8, 1, 6) and np.abs(Xg._value).max() <= 1
    assert state.layer == ["batchnorm", "batchnorm"]
    disc = dlnetwork(
        [
            imageInputLayer([8, 8, 1], normalization="none"),
            dropoutLayer(0.5),
            convolution2dLayer(3, 4, stride=2, padding="same"),
            leakyReluLayer(0.2),
            convolution2dLayer(4, 1),
            sigmoidLayer(),
        ],
        rng=0,
    )
    Y, _ = forward(disc, Xg, rng=0)
    assert Y.fmt == "SSCB" and Y.shape == (1, 1, 1, 6)
