"""Views (Reshape, Flatten, Squeeze, Unsqueeze), ConstantOfShape and Range
against onnxruntime: every opset form, negative axes, size-1 and empty dims,
several dtypes, and view chains that must still return fresh arrays."""
import numpy as np
import pytest
from onnx import helper, numpy_helper

import pyengine
from oracle import assert_matches_ort, make_model

DTYPES = [np.float32, np.int64, np.uint8, np.bool_, np.float64, np.int8]


def _rand(rng, shape, dtype):
    if dtype == np.bool_:
        return np.asarray(rng.random(shape) > 0.5)
    return (rng.standard_normal(shape) * 50).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,target,allowzero", [
    ((2, 3, 4), (4, -1), 0), ((2, 3, 4), (0, 12), 0), ((2, 3, 4), (-1,), 0), ((1, 5, 1), (5,), 0),
    ((0, 3), (3, 0), 1), ((0, 3), (-1, 3), 0), ((7,), (1, 7, 1), 0), ((2, 3, 4), (0, 0, -1), 0), ((6,), (2, 3), 1),
])
def test_reshape(rng, dtype, shape, target, allowzero):
    x = _rand(rng, shape, dtype)
    node = helper.make_node("Reshape", ["x", "s"], ["y"], **({"allowzero": 1} if allowzero else {}))
    model = make_model([node], {"x": x}, ["y"], {"s": np.array(target, np.int64)}, opset=14 if allowzero else 13)
    assert_matches_ort(model, {"x": x})


def test_reshape_invalid():
    x = np.zeros((2, 3), np.float32)
    node = helper.make_node("Reshape", ["x", "s"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [2, 3])],
                              [helper.make_tensor_value_info("y", 1, ["a", "b"])],
                              [numpy_helper.from_array(np.array([4, -1], np.int64), "s")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    with pytest.raises(ValueError, match="Reshape"):
        pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})


@pytest.mark.parametrize("shape", [(2, 3, 4), (1, 0, 5), (5,), (3, 1, 1, 2)])
@pytest.mark.parametrize("axis", [0, 1, -1, "rank"])
def test_flatten(rng, shape, axis):
    axis = len(shape) if axis == "rank" else axis
    x = _rand(rng, shape, np.float32)
    model = make_model([helper.make_node("Flatten", ["x"], ["y"], axis=axis)], {"x": x}, ["y"])
    assert_matches_ort(model, {"x": x})


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("shape,axes", [((1, 3, 1, 2), [0, -2]), ((1, 3, 1, 2), None), ((3, 1), [1]),
                                        ((1, 0, 1), [-1]), ((1,), None)])
def test_squeeze(rng, opset, shape, axes):
    x = _rand(rng, shape, np.int64)
    if axes is None:
        node, inits = helper.make_node("Squeeze", ["x"], ["y"]), {}
    elif opset < 13:
        node, inits = helper.make_node("Squeeze", ["x"], ["y"], axes=axes), {}
    else:
        node, inits = helper.make_node("Squeeze", ["x", "a"], ["y"]), {"a": np.array(axes, np.int64)}
    assert_matches_ort(make_model([node], {"x": x}, ["y"], inits, opset=opset), {"x": x})


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("shape,axes", [((3, 2), [0]), ((3, 2), [-1, 0]), ((), [0, 1]), ((0, 4), [1, 3]),
                                        ((2,), [2, 0])])
def test_unsqueeze(rng, opset, shape, axes):
    x = _rand(rng, shape, np.bool_)
    if opset < 13:
        node, inits = helper.make_node("Unsqueeze", ["x"], ["y"], axes=axes), {}
    else:
        node, inits = helper.make_node("Unsqueeze", ["x", "a"], ["y"]), {"a": np.array(axes, np.int64)}
    assert_matches_ort(make_model([node], {"x": x}, ["y"], inits, opset=opset), {"x": x})


def test_view_chain_returns_fresh_arrays(rng):
    """Outputs that are views of the input (and of each other) must be
    correct, distinct arrays that do not alias the caller's input."""
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"], axis=1),
             helper.make_node("Unsqueeze", ["f", "a"], ["u"]),
             helper.make_node("Squeeze", ["u", "a"], ["q"]),
             helper.make_node("Transpose", ["q"], ["t"])]
    model = make_model(nodes, {"x": x}, ["r", "f", "q", "t"], {"s": np.array([6, 4], np.int64),
                                                                 "a": np.array([0], np.int64)})
    got = assert_matches_ort(model, {"x": x})
    for g in got:
        assert not np.shares_memory(g, x)
    assert not np.shares_memory(got[0], got[1])
    x_copy = x.copy()
    got[0][...] = 0
    np.testing.assert_array_equal(x, x_copy)


def test_view_of_computed_value(rng):
    """A Reshape of an intermediate inside the graph shares its memory (no copy) and stays correct."""
    x = rng.standard_normal((4, 6)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["x"], ["t"]),
             helper.make_node("Reshape", ["t", "s"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"], axis=0),
             helper.make_node("Concat", ["f", "f"], ["y"], axis=0)]
    model = make_model(nodes, {"x": x}, ["y"], {"s": np.array([3, 8], np.int64)})
    assert_matches_ort(model, {"x": x})


@pytest.mark.parametrize("value", [None, np.array([2.5], np.float32), np.array([-7], np.int64),
                                   np.array([True]), np.array([3], np.uint8), np.array([1.5], np.float64)])
@pytest.mark.parametrize("shape", [[2, 3], [0, 4], [], [5]])
def test_constant_of_shape(value, shape):
    x = np.zeros((1,), np.float32)
    kw = {} if value is None else {"value": numpy_helper.from_array(value)}
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["c"], **kw), helper.make_node("Shape", ["c"], ["sh"]),
             helper.make_node("Identity", ["x"], ["xi"])]
    # Shape-from-input variant: the constant is folded, so also check via a runtime consumer.
    model = make_model(nodes, {"x": x}, ["c", "xi"], {"s": np.array(shape, np.int64)})
    assert_matches_ort(model, {"x": x})


def test_constant_of_shape_from_input_shape(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("ConstantOfShape", ["s"], ["c"], value=numpy_helper.from_array(np.array([4], np.int32)))]
    assert_matches_ort(make_model(nodes, {"x": x}, ["c"]), {"x": x})


@pytest.mark.parametrize("dtype,start,limit,delta", [
    (np.float32, 0.5, 7.3, 0.7), (np.int64, 10, -3, -3), (np.int32, 0, 5, 1), (np.int64, 5, 0, 1),
    (np.float64, -1.0, 1.0, 0.25), (np.float32, 3.0, 3.0, 1.0)])
def test_range(dtype, start, limit, delta):
    x = np.zeros((1,), np.float32)
    nodes = [helper.make_node("Range", ["a", "b", "c"], ["r"]), helper.make_node("Identity", ["x"], ["xi"])]
    inits = {"a": np.array(start, dtype), "b": np.array(limit, dtype), "c": np.array(delta, dtype)}
    assert_matches_ort(make_model(nodes, {"x": x}, ["r", "xi"], inits), {"x": x})
