"""Pooling ops against onnxruntime: 1-D/2-D/3-D windows, strides, dilations,
asymmetric pads, every auto_pad, ceil_mode, count_include_pad, Indices with
both storage orders, integer MaxPool, the Global forms, both ISAs and
thread-count independence."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, make_model

TOL = dict(rtol=1e-5, atol=1e-5)


def pool_model(op, x, outputs=("y",), opset=19, **attrs):
    node = helper.make_node(op, ["x"], list(outputs), **attrs)
    return make_model([node], {"x": x}, list(outputs), opset=opset), {"x": x}


WINDOWS = [
    # (shape, kernel, strides, dilations, pads)
    ((1, 3, 9, 11), [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
    ((2, 5, 13, 7), [3, 2], [2, 2], [1, 1], [0, 1, 1, 0]),
    ((1, 2, 17, 16), [5, 5], [3, 2], [1, 1], [2, 2, 2, 1]),
    ((1, 4, 12, 12), [3, 3], [2, 2], [2, 2], [1, 0, 2, 1]),
    ((1, 1, 1, 1), [1, 1], [1, 1], [1, 1], [0, 0, 0, 0]),
    ((3, 3, 7, 9), [7, 7], [1, 1], [1, 1], [3, 3, 3, 3]),
    ((2, 3, 19), [4], [3], [1], [1, 2]),
    ((1, 2, 6, 7, 5), [3, 3, 2], [2, 1, 2], [1, 1, 1], [1, 0, 1, 1, 1, 0]),
]


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_maxpool(isa, rng, window, ceil_mode):
    shape, k, s, d, pads = window
    x = rng.standard_normal(shape).astype(np.float32)
    model, feeds = pool_model("MaxPool", x, kernel_shape=k, strides=s, dilations=d, pads=pads, ceil_mode=ceil_mode)
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("include", [0, 1])
def test_averagepool(isa, rng, window, ceil_mode, include):
    shape, k, s, d, pads = window
    x = rng.standard_normal(shape).astype(np.float32)
    model, feeds = pool_model("AveragePool", x, kernel_shape=k, strides=s, pads=pads, ceil_mode=ceil_mode,
                              count_include_pad=include)
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool", "LpPool"])
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("k,s", [(3, 1), (2, 2), (3, 2), (4, 3)])
def test_pool_auto_pad(isa, rng, op, auto_pad, k, s):
    x = rng.standard_normal((1, 3, 10, 7)).astype(np.float32)
    model, feeds = pool_model(op, x, opset=17 if op == "LpPool" else 19, kernel_shape=[k, k], strides=[s, s],
                              auto_pad=auto_pad)
    assert_matches_ort(model, feeds, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("shape,k,s,pads", [((2, 3, 8, 9), [3, 3], [2, 2], [1, 1, 1, 1]),
                                            ((1, 2, 7, 5), [2, 3], [1, 2], [0, 1, 1, 0])])
def test_maxpool_indices(isa, rng, storage_order, shape, k, s, pads):
    # distinct values: the argmax is unique
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32)
    model, feeds = pool_model("MaxPool", x, outputs=("y", "i"), kernel_shape=k, strides=s, pads=pads,
                              storage_order=storage_order)
    assert_matches_ort(model, feeds)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.float64])
def test_maxpool_types(isa, rng, dtype):
    x = rng.integers(-100 if dtype == np.int8 else 0, 100, (2, 3, 7, 8)).astype(dtype)
    model, feeds = pool_model("MaxPool", x, kernel_shape=[3, 3], strides=[2, 1], pads=[1, 1, 1, 0])
    assert_matches_ort(model, feeds)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lppool(isa, rng, p):
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    model, feeds = pool_model("LpPool", x, opset=18, kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1], p=p)
    assert_matches_ort(model, feeds, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
@pytest.mark.parametrize("shape", [(1, 3, 7, 7), (2, 5, 1, 1), (3, 4, 9), (1, 2, 3, 4, 5), (2, 17, 13, 11)])
def test_global_pool(isa, rng, op, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    model, feeds = pool_model(op, x, opset=17)
    assert_matches_ort(model, feeds, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_threads_bit_identical(rng, op):
    x = rng.standard_normal((2, 5, 21, 19)).astype(np.float32)
    model, feeds = pool_model(op, x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    outs = []
    for t in (1, 2):
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = t
        outs.append(pyengine.InferenceSession(model.SerializeToString(), so).run(None, feeds)[0])
    np.testing.assert_array_equal(outs[0], outs[1])
