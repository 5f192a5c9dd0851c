"""Reductions and ArgMax/ArgMin against onnxruntime on every ISA: every
axes form (attribute, input, empty, noop), negative axes, keepdims, row and
column layouts, odd and empty dims, several element types, 1 and 2 threads."""
import numpy as np
import pytest
from onnx import helper

from oracle import assert_matches_ort, make_model

OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1",
       "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"]
CASES = [((7,), [0]), ((3, 17), [1]), ((3, 17), [0]), ((2, 3, 5), [0, 2]), ((2, 3, 5), [-1, -2]),
         ((4, 1, 9), [1]), ((2, 3, 4, 5), [1, 2]), ((2, 3, 4, 5), [0, 3]), ((3, 1000), [1]), ((5, 2, 0), [1]),
         ((2, 0, 3), [1]), ((6, 5), None), ((1, 1, 1), [2])]


def _model(op, x, axes, keepdims, opset, noop=None):
    inputs, inits = ["x"], {}
    attrs = {"keepdims": keepdims}
    axes_as_input = opset >= (13 if op == "ReduceSum" else 18)
    if axes is not None:
        if axes_as_input:
            inputs.append("axes")
            inits["axes"] = np.array(axes, np.int64)
        else:
            attrs["axes"] = axes
    if noop is not None:
        attrs["noop_with_empty_axes"] = noop
    node = helper.make_node(op, inputs, ["y"], **attrs)
    return make_model([node], {"x": x}, ["y"], initializers=inits, opset=opset)


def _data(rng, shape, dtype, op):
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-3 if op != "ReduceProd" else 1, 4, size=shape).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    return (np.abs(x) * 0.5 + 0.75).astype(dtype) if op in ("ReduceProd", "ReduceLogSum") else x


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape,axes", CASES)
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("opset", [11, 18])
def test_reduce_f32(isa, rng, op, shape, axes, keepdims, opset):
    x = _data(rng, shape, np.float32, op)
    assert_matches_ort(_model(op, x, axes, keepdims, opset), {"x": x}, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"])
@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64])
@pytest.mark.parametrize("shape,axes", [((3, 17), [1]), ((2, 3, 5), [0, 2]), ((4, 6), None)])
def test_reduce_types(rng, op, dtype, shape, axes):
    x = _data(rng, shape, dtype, op)
    assert_matches_ort(_model(op, x, axes, 1, 18), {"x": x}, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceSumSquare", "ReduceLogSumExp"])
@pytest.mark.parametrize("noop", [0, 1])
def test_reduce_empty_axes(rng, op, noop):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=1, noop_with_empty_axes=noop)
    model = make_model([node], {"x": x}, ["y"], initializers={"axes": np.array([], np.int64)}, opset=18)
    assert_matches_ort(model, {"x": x}, rtol=1e-5, atol=1e-6)


def test_reduce_nan_and_inf(isa, rng):
    x = rng.standard_normal((4, 9)).astype(np.float32)
    x[1, 3] = np.nan
    x[2, :] = -np.inf
    for op in ("ReduceSum", "ReduceLogSumExp"):
        for axes in ([1], [0]):
            with np.errstate(all="ignore"):
                assert_matches_ort(_model(op, x, axes, 1, 18), {"x": x}, rtol=1e-5, atol=1e-6)
    # Max/Min propagate NaN in every layout (as NumPy; onnxruntime's depends on the layout).
    import pyengine
    for op, ref in (("ReduceMax", np.max), ("ReduceMin", np.min)):
        for axis in (0, 1):
            (y,) = pyengine.InferenceSession(_model(op, x, [axis], 0, 18).SerializeToString()).run(None, {"x": x})
            np.testing.assert_array_equal(y, ref(x, axis=axis))


@pytest.mark.parametrize("threads", [1, 2])
def test_reduce_threads(rng, threads):
    x = rng.standard_normal((64, 37, 41)).astype(np.float32)
    for axes in ([2], [1], [0, 2]):
        assert_matches_ort(_model("ReduceMean", x, axes, 1, 18), {"x": x}, rtol=1e-5, atol=1e-6, threads=threads)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 17), 1), ((3, 17), -2), ((2, 3, 5), 1), ((4, 1, 9), 1),
                                        ((2, 0, 3), 2)])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("last", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_arg(rng, op, shape, axis, keepdims, last, dtype):
    x = rng.integers(-2, 3, size=shape).astype(dtype)  # many ties: select_last_index matters
    node = helper.make_node(op, ["x"], ["y"], axis=axis, keepdims=keepdims, select_last_index=last)
    assert_matches_ort(make_model([node], {"x": x}, ["y"], opset=13), {"x": x})
