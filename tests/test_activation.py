"""Unary math, activations, Clip, Gelu and the Softmax family against
onnxruntime on every ISA: odd sizes and vector tails, empty tensors, wide
input ranges, every opset form of Clip and Softmax, 1 and 2 threads."""
import math

import numpy as np
import pytest

import pyengine
from onnx import helper

from oracle import assert_matches_ort, make_model

SHAPES = [(1,), (7,), (3, 17), (2, 0, 5), (4, 3, 33), (1, 1, 1)]


def _run(op, arrays, opset=17, rtol=1e-5, atol=1e-6, threads=1, inputs=None, inits=None, **attrs):
    names = inputs or [f"x{i}" for i in range(len(arrays))]
    node = helper.make_node(op, names, ["y"], **attrs)
    feeds = dict(zip([n for n in names if n], arrays))
    model = make_model([node], feeds, ["y"], initializers=inits, opset=opset)
    assert_matches_ort(model, feeds, rtol=rtol, atol=atol, threads=threads)


UNARY = {
    # op: (input range, attrs, opset)
    "Sqrt": ((0.0, 50.0), {}, 17), "Exp": ((-80.0, 80.0), {}, 17), "Log": ((1e-3, 1e4), {}, 17),
    "Abs": ((-5, 5), {}, 17), "Neg": ((-5, 5), {}, 17), "Reciprocal": ((0.5, 4), {}, 17),
    "Floor": ((-5, 5), {}, 17), "Ceil": ((-5, 5), {}, 17), "Round": ((-5, 5), {}, 17),
    "Sign": ((-2, 2), {}, 17), "Erf": ((-5, 5), {}, 17), "Sin": ((-6, 6), {}, 17), "Cos": ((-6, 6), {}, 17),
    "Softplus": ((-30, 30), {}, 17), "Softsign": ((-9, 9), {}, 17), "Relu": ((-3, 3), {}, 17),
    "LeakyRelu": ((-3, 3), {"alpha": 0.13}, 17), "Elu": ((-8, 3), {"alpha": 0.7}, 17),
    "Selu": ((-8, 3), {"alpha": 1.5, "gamma": 1.1}, 17), "Sigmoid": ((-30, 30), {}, 17),
    "HardSigmoid": ((-6, 6), {"alpha": 0.3, "beta": 0.4}, 17), "HardSwish": ((-6, 6), {}, 17),
    "Tanh": ((-12, 12), {}, 17), "Gelu": ((-8, 8), {}, 20), "Celu": ((-5, 5), {"alpha": 0.8}, 17),
    "ThresholdedRelu": ((-3, 3), {"alpha": 0.5}, 17), "Atan": ((-5, 5), {}, 17),
}


@pytest.mark.parametrize("op", sorted(UNARY))
@pytest.mark.parametrize("shape", SHAPES)
def test_unary_f32(isa, rng, op, shape):
    (lo, hi), attrs, opset = UNARY[op]
    x = rng.uniform(lo, hi, size=shape).astype(np.float32)
    if op == "Round" and x.size:
        x.reshape(-1)[: min(4, x.size)] = np.array([0.5, 1.5, -2.5, 2.5], np.float32)[: min(4, x.size)]
    _run(op, [x], opset=opset, **attrs)


_ERF = np.vectorize(math.erf)
F64_REF = {"Exp": np.exp, "Log": np.log, "Tanh": np.tanh, "Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Erf": _ERF,
           "Sqrt": np.sqrt, "Relu": lambda v: np.maximum(v, 0), "Abs": np.abs,
           "Gelu": lambda v: 0.5 * v * (1 + _ERF(v / math.sqrt(2))), "Softplus": lambda v: np.log1p(np.exp(v))}


@pytest.mark.parametrize("op", sorted(F64_REF))
def test_unary_f64(rng, op):
    """float64 uses exact libm math (onnxruntime lacks several double kernels: NumPy is the oracle)."""
    (lo, hi), attrs, opset = UNARY[op]
    x = rng.uniform(lo, hi, size=(5, 13))
    model = make_model([helper.make_node(op, ["x"], ["y"])], {"x": x}, ["y"], opset=opset)
    (y,) = pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, F64_REF[op](x), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("op", ["Abs", "Neg", "Sign", "Relu"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int8])
def test_unary_int(rng, op, dtype):
    if dtype == np.int8 and op in ("Abs", "Neg", "Sign"):
        dtype = np.int32
    if op == "Relu" and dtype == np.int64:
        pytest.skip("onnxruntime has no int64 Relu")
    _run(op, [rng.integers(-50, 50, size=(3, 11)).astype(dtype)])


def test_special_values(isa):
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-40, 100.0, -100.0], np.float32)
    for op in ("Exp", "Tanh", "Sigmoid", "Erf", "Relu", "Abs", "Sqrt", "Softsign"):
        with np.errstate(all="ignore"):
            _run(op, [x])


@pytest.mark.parametrize("approx", ["none", "tanh"])
@pytest.mark.parametrize("n", [1, 9, 17, 1000])
def test_gelu(isa, rng, approx, n):
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    _run("Gelu", [x], opset=20, approximate=approx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8])
@pytest.mark.parametrize("bounds", ["both", "min", "max", "none"])
@pytest.mark.parametrize("const", [False, True])
def test_clip(isa, rng, dtype, bounds, const):
    x = (rng.standard_normal((3, 19)) * 10).astype(dtype)
    lo, hi = np.array(-3 if np.dtype(dtype).kind != "u" else 3, dtype), np.array(4 if np.dtype(dtype).kind != "u" else 9, dtype)
    names = {"both": ["x", "lo", "hi"], "min": ["x", "lo"], "max": ["x", "", "hi"], "none": ["x"]}[bounds]
    values = {"x": x, "lo": lo, "hi": hi}
    if const:
        feeds = [x]
        inits = {n: values[n] for n in names[1:] if n}
        node = helper.make_node("Clip", names, ["y"])
        assert_matches_ort(make_model([node], {"x": x}, ["y"], initializers=inits), {"x": x})
    else:
        _run("Clip", [values[n] for n in names if n], inputs=names)


@pytest.mark.parametrize("attrs", [{}, {"min": -0.5}, {"max": 0.3}, {"min": -0.2, "max": 0.4}])
def test_clip_opset6(isa, rng, attrs):
    _run("Clip", [rng.standard_normal((4, 9)).astype(np.float32)], opset=6, **attrs)


SOFTMAX_SHAPES = [((7,), -1), ((3, 17), 1), ((3, 17), 0), ((2, 3, 5), 1), ((2, 3, 5), -1), ((4, 1, 9), 1),
                  ((2, 0, 3), 2), ((1, 1000), -1), ((5, 33, 9), 1), ((2, 3, 4, 5), 0)]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("shape,axis", SOFTMAX_SHAPES)
@pytest.mark.parametrize("opset", [11, 13])
def test_softmax(isa, rng, op, shape, axis, opset):
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    _run(op, [x], opset=opset, axis=axis)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset", [11, 13])
def test_softmax_default_axis_and_extremes(isa, op, opset, rng):
    x = (rng.standard_normal((2, 3, 4)) * 5).astype(np.float32)
    x[0, 0, 0] = 80.0
    x[1, 2, :] = -1e30
    _run(op, [x], opset=opset, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads(rng, threads):
    x = (rng.standard_normal((64, 1001)) * 3).astype(np.float32)
    _run("Softmax", [x], threads=threads)
    _run("Gelu", [x], opset=20, threads=threads)
    _run("Sigmoid", [x], threads=threads)
    _run("Softmax", [x], threads=threads, axis=0)
