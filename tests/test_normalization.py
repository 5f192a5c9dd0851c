"""Normalization ops against onnxruntime: BatchNormalization (every opset
form, constant and computed parameters, spatial=0), InstanceNormalization,
LRN, LayerNormalization (axes, broadcast Scale/B, Mean/InvStdDev outputs),
GroupNormalization; odd sizes, batch > 1, float64, thread-count independence."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, make_model

TOL = dict(rtol=1e-4, atol=1e-5)


def rand(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def bn_params(rng, c, dtype=np.float32):
    return {"s": rand(rng, c, dtype=dtype), "b": rand(rng, c, dtype=dtype), "m": rand(rng, c, dtype=dtype),
            "v": rng.uniform(0.1, 2.0, c).astype(dtype)}


@pytest.mark.parametrize("shape", [(2, 3), (1, 5, 7), (2, 3, 9, 11), (1, 1, 1, 1), (3, 4, 2, 3, 5), (1, 17, 33, 1)])
@pytest.mark.parametrize("opset", [7, 9, 14, 15])
def test_batchnorm(isa, rng, shape, opset):
    x = rand(rng, *shape)
    p = bn_params(rng, shape[1])
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=1e-3)
    model = make_model([node], {"x": x}, ["y"], p, opset=opset)
    assert_matches_ort(model, {"x": x}, **TOL)


def test_batchnorm_computed_params_float64(isa, rng):
    x = rand(rng, 2, 3, 4, 5, dtype=np.float64)
    p = bn_params(rng, 3, np.float64)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    feeds = {"x": x, **p}
    model = make_model([node], feeds, ["y"])
    assert_matches_ort(model, feeds, rtol=1e-10, atol=1e-10)


def test_batchnorm_spatial0_opset7(rng):
    """spatial=0: one parameter set per element of C x H x W (checked with NumPy;
    onnxruntime dropped this mode)."""
    x = rand(rng, 2, 3, 4, 5)
    p = {k: v.reshape(3, 4, 5) for k, v in bn_params(rng, 60).items()}
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], spatial=0, epsilon=1e-4)
    model = make_model([node], {"x": x}, ["y"], p, opset=7)
    got = pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    want = (x - p["m"]) / np.sqrt(p["v"] + 1e-4) * p["s"] + p["b"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_batchnorm_training_unsupported(rng):
    x = rand(rng, 2, 3, 4)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], training_mode=1)
    model = make_model([node], {"x": x}, ["y", "rm", "rv"], bn_params(rng, 3), opset=15)
    with pytest.raises(pyengine.errors.UnsupportedOperatorError, match="training"):
        pyengine.InferenceSession(model.SerializeToString())


@pytest.mark.parametrize("shape", [(1, 3, 7), (2, 5, 9, 11), (3, 1, 2, 3, 4), (2, 4, 1, 2)])
def test_instancenorm(isa, rng, shape):
    x = rand(rng, *shape) * 3 + 2
    c = shape[1]
    node = helper.make_node("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-4)
    model = make_model([node], {"x": x}, ["y"], {"s": rand(rng, c), "b": rand(rng, c)})
    assert_matches_ort(model, {"x": x}, **TOL)


def lrn_ref(x, size, alpha, beta, bias):
    sq = np.zeros_like(x, dtype=np.float64)
    c = x.shape[1]
    for i in range(c):
        lo, hi = max(0, i - (size - 1) // 2), min(c - 1, i + size - 1 - (size - 1) // 2)
        sq[:, i] = (x[:, lo:hi + 1].astype(np.float64) ** 2).sum(axis=1)
    return (x / (bias + alpha / size * sq) ** beta).astype(x.dtype)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("shape", [(1, 7, 5, 6), (2, 3, 9), (1, 1, 4, 4), (2, 6, 3, 2, 3)])
def test_lrn(isa, rng, size, shape):
    x = rand(rng, *shape)
    node = helper.make_node("LRN", ["x"], ["y"], size=size, alpha=0.002, beta=0.6, bias=1.5)
    model = make_model([node], {"x": x}, ["y"])
    if size % 2 and len(shape) == 4:
        assert_matches_ort(model, {"x": x}, **TOL)
    else:  # onnxruntime supports odd sizes on 4-D input only
        got = pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
        np.testing.assert_allclose(got, lrn_ref(x, size, 0.002, 0.6, 1.5), **TOL)


@pytest.mark.parametrize("shape,axis,sshape", [
    ((2, 7), -1, (7,)), ((3, 5, 17), -1, (17,)), ((2, 3, 4, 5), 1, (3, 4, 5)), ((2, 3, 4, 5), -2, (4, 5)),
    ((2, 3, 4, 5), 2, (1, 5)), ((4, 9), 0, (4, 9)), ((1, 1, 1), -1, (1,)),
])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("stats", [False, True])
def test_layernorm(isa, rng, shape, axis, sshape, bias, stats):
    x = rand(rng, *shape) * 2 + 1
    inputs = ["x", "s"] + (["b"] if bias else [])
    outputs = ["y"] + (["mean", "inv"] if stats else [])
    node = helper.make_node("LayerNormalization", inputs, outputs, axis=axis, epsilon=1e-3)
    inits = {"s": rand(rng, *sshape), **({"b": rand(rng, *sshape)} if bias else {})}
    model = make_model([node], {"x": x}, outputs, inits)
    assert_matches_ort(model, {"x": x}, **TOL)


@pytest.mark.parametrize("shape,groups", [((2, 6, 5, 7), 3), ((1, 4, 9), 4), ((3, 5, 2, 2), 1), ((1, 8, 3, 3, 3), 2)])
def test_groupnorm(isa, rng, shape, groups):
    """Checked with NumPy (onnxruntime's CPU provider lacks GroupNormalization).
    Opset 21: one scale/bias per channel (the per-group form of opset 18 is
    deprecated and rejected by the ONNX checker)."""
    opset = 21
    x = rand(rng, *shape) + 1
    c = shape[1]
    pc = groups if opset == 18 else c
    s, b = rand(rng, pc), rand(rng, pc)
    node = helper.make_node("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=groups, epsilon=1e-4)
    model = make_model([node], {"x": x}, [], {"s": s, "b": b}, opset=opset)
    model.graph.output.append(helper.make_tensor_value_info("y", 1, list(shape)))
    got = pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    xg = x.reshape(shape[0], groups, -1).astype(np.float64)
    norm = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-4)).reshape(shape)
    if opset == 18:
        s, b = np.repeat(s, c // groups), np.repeat(b, c // groups)
    bshape = (1, c) + (1,) * (len(shape) - 2)
    np.testing.assert_allclose(got, norm * s.reshape(bshape) + b.reshape(bshape), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["BatchNormalization", "InstanceNormalization", "LRN", "LayerNormalization"])
def test_norm_threads_bit_identical(rng, op):
    x = rand(rng, 2, 6, 11, 13)
    if op == "BatchNormalization":
        node, inits = helper.make_node(op, ["x", "s", "b", "m", "v"], ["y"]), bn_params(rng, 6)
    elif op == "InstanceNormalization":
        node, inits = helper.make_node(op, ["x", "s", "b"], ["y"]), {"s": rand(rng, 6), "b": rand(rng, 6)}
    elif op == "LRN":
        node, inits = helper.make_node(op, ["x"], ["y"], size=3), {}
    else:
        node, inits = helper.make_node(op, ["x", "s"], ["y"], axis=2), {"s": rand(rng, 11, 13)}
    model = make_model([node], {"x": x}, ["y"], inits)
    outs = []
    for t in (1, 2):
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = t
        outs.append(pyengine.InferenceSession(model.SerializeToString(), so).run(None, {"x": x})[0])
    np.testing.assert_array_equal(outs[0], outs[1])
    assert_matches_ort(model, {"x": x}, **TOL)
