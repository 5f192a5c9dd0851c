"""Broadcasting elementwise operators against onnxruntime on every ISA:
odd sizes, vector tails, size-1 and empty dims, every broadcast pattern,
several element types, and thread-count independence."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, make_model

SHAPES = [((7,), (7,)), ((3, 17), (17,)), ((3, 1), (1, 9)), ((2, 3, 4), ()), ((), (5, 1)), ((1,), (33,)),
          ((2, 0, 3), (3,)), ((4, 1, 5), (1, 6, 1)), ((2, 3, 1, 9), (3, 8, 1)), ((1, 1), (1, 1))]
DTYPES = [np.float32, np.float64, np.int32, np.int64]


def _rand(rng, shape, dtype, positive=False):
    if np.issubdtype(dtype, np.integer):
        lo = 1 if positive else -20
        return np.asarray(rng.integers(lo, 20, size=shape)).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    return np.asarray(np.abs(x) + 0.5 if positive else x, dtype=dtype)


def _run(op, arrays, rng, opset=17, rtol=1e-6, atol=1e-6, threads=1, **attrs):
    names = [f"x{i}" for i in range(len(arrays))]
    node = helper.make_node(op, names, ["y"], **attrs)
    feeds = dict(zip(names, arrays))
    assert_matches_ort(make_model([node], feeds, ["y"], opset=opset), feeds, rtol=rtol, atol=atol, threads=threads)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("a_shape,b_shape", SHAPES)
def test_arith_f32(isa, rng, op, a_shape, b_shape):
    _run(op, [_rand(rng, a_shape, np.float32), _rand(rng, b_shape, np.float32, positive=op == "Div")], rng)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Sum"])
@pytest.mark.parametrize("dtype", DTYPES[1:] + [np.int8, np.uint8])
def test_arith_types(rng, op, dtype):
    if op == "Sum" and dtype != np.float64:
        pytest.skip("onnxruntime's Sum takes float types only")
    if dtype in (np.int8, np.uint8) and op in ("Add", "Sub", "Mul", "Div", "Sum"):
        pytest.skip("onnxruntime lacks these 8-bit kernels")
    a, b = _rand(rng, (3, 1, 5), dtype, op == "Div"), _rand(rng, (4, 1), dtype, op == "Div")
    _run(op, [a, b], rng)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_div_integer_truncates(rng, dtype):
    a = np.array([7, -7, 7, -7, 0, 5], dtype)
    b = np.array([2, 2, -2, -2, 3, 5], dtype)
    _run("Div", [a, b], rng)


@pytest.mark.parametrize("a_shape,b_shape", SHAPES[:6])
@pytest.mark.parametrize("bt", [np.float32, np.int32, np.int64, np.float64])
@pytest.mark.parametrize("at", [np.float32, np.int64])
def test_pow(isa, rng, a_shape, b_shape, at, bt):
    a = _rand(rng, a_shape, at, positive=True)
    if np.issubdtype(bt, np.integer):
        b = rng.integers(0, 4, size=b_shape).astype(bt)
    else:
        b = rng.uniform(-2, 3, size=b_shape).astype(bt)
    _run("Pow", [a, b], rng, rtol=1e-5)


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_mod(rng, fmod, dtype):
    if not fmod and not np.issubdtype(dtype, np.integer):
        pytest.skip("fmod=0 requires integers")
    a = _rand(rng, (5, 7), dtype) * 3
    b = _rand(rng, (7,), dtype, positive=True) * np.where(np.arange(7) % 2, 1, -1).astype(dtype)
    _run("Mod", [a, b], rng, fmod=fmod)


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
@pytest.mark.parametrize("a_shape,b_shape", SHAPES[1:5])
def test_compare(rng, op, dtype, a_shape, b_shape):
    a = rng.integers(-3, 3, size=a_shape).astype(dtype)
    b = rng.integers(-3, 3, size=b_shape).astype(dtype)
    _run(op, [a, b], rng)


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
@pytest.mark.parametrize("a_shape,b_shape", SHAPES[:5])
def test_logic(rng, op, a_shape, b_shape):
    _run(op, [np.asarray(rng.random(a_shape) < 0.5), np.asarray(rng.random(b_shape) < 0.5)], rng)


def test_not(rng):
    _run("Not", [rng.random((3, 17)) < 0.5], rng)


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
@pytest.mark.parametrize("shapes", [[(5,)], [(3, 4), (4,)], [(2, 1, 3), (4, 1), (1,)], [(0, 3), (3,), (1, 3)],
                                    [(9,), (9,), (9,), (9,)]])
def test_variadic(isa, rng, op, shapes):
    _run(op, [_rand(rng, s, np.float32) for s in shapes], rng)


@pytest.mark.parametrize("shape", [(3,), (2, 5), (4, 1, 7)])
def test_prelu(isa, rng, shape):
    x = _rand(rng, (2,) + shape, np.float32)
    _run("PRelu", [x, _rand(rng, shape, np.float32)], rng)
    _run("PRelu", [x, _rand(rng, (shape[-1],), np.float32)], rng)
    _run("PRelu", [x, _rand(rng, (1,), np.float32)], rng)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.float16, np.int8, np.float64])
@pytest.mark.parametrize("shapes", [[(5,), (5,), (5,)], [(3, 1), (1, 4), (4,)], [(), (2, 3), ()], [(0, 2), (2,), (1,)]])
def test_where(rng, dtype, shapes):
    c = np.asarray(rng.random(shapes[0]) < 0.5)
    x = np.asarray(rng.standard_normal(shapes[1]) * 10).astype(dtype)
    y = np.asarray(rng.standard_normal(shapes[2]) * 10).astype(dtype)
    _run("Where", [c, x, y], rng)


CAST_TYPES = [np.float32, np.float64, np.float16, np.int8, np.uint8, np.int32, np.int64, np.bool_]


@pytest.mark.parametrize("src", CAST_TYPES)
@pytest.mark.parametrize("dst", CAST_TYPES)
def test_cast(rng, src, dst):
    from pyengine import _dtypes
    x = rng.uniform(-100, 100, size=(3, 37))
    if src == np.bool_:
        x = x > 0
    elif not np.issubdtype(np.dtype(dst), np.floating) and dst != np.bool_:
        x = np.clip(x, 0 if np.dtype(dst).kind == "u" else -100, 100)
    if np.dtype(src).kind == "u":
        x = np.abs(x)
    x = x.astype(src)
    _run("Cast", [x], rng, to=_dtypes.to_onnx(dst))


def test_cast_float16_specials(rng):
    """Rounding to nearest even, overflow to inf, subnormals, NaN."""
    x = np.array([65504, 65519, 65520, 1e6, -1e6, 6e-8, 3e-8, 2.9e-8, 1e-5, 1.00048828125, 1.0009765625 * 1.5,
                  np.inf, -np.inf, np.nan, 0.0, -0.0], np.float32)
    _run("Cast", [x], rng, to=10)
    h = (rng.standard_normal(1000) * 100).astype(np.float16)
    _run("Cast", [h], rng, to=1)


def test_isnan_isinf(rng):
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -3.0], np.float32)
    _run("IsNaN", [x], rng)
    for pos, neg in [(1, 1), (1, 0), (0, 1)]:
        _run("IsInf", [x], rng, detect_positive=pos, detect_negative=neg)


@pytest.mark.parametrize("threads", [1, 2])
def test_large_broadcast_threads(rng, threads):
    """Long rows are split over threads; the results do not change."""
    a = rng.standard_normal((3, 70001)).astype(np.float32)
    b = rng.standard_normal((70001,)).astype(np.float32)
    _run("Add", [a, b], rng, threads=threads)
    _run("Max", [a, b], rng, threads=threads)
    _run("Where", [a > 0, a, b], rng, threads=threads)


def test_opset7_broadcast(rng):
    _run("Add", [_rand(rng, (2, 3), np.float32), _rand(rng, (3,), np.float32)], rng, opset=7)
    _run("Mul", [_rand(rng, (2, 3), np.float32), _rand(rng, (2, 3), np.float32)], rng, opset=7)


def test_mismatched_types_rejected(rng):
    a = rng.standard_normal(3).astype(np.float32)
    b = np.arange(3, dtype=np.int64)
    g = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "t",
                          [helper.make_tensor_value_info("a", 1, [3]), helper.make_tensor_value_info("b", 7, [3])],
                          [helper.make_tensor_value_info("y", 1, [3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(Exception, match="different element types"):
        pyengine.InferenceSession(m.SerializeToString()).run(None, {"a": a, "b": b})
