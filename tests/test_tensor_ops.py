"""Data-movement kernels against onnxruntime: Transpose, Slice, Concat,
Split, Gather(Elements), ScatterND, Pad, Expand, Tile, CumSum, Trilu,
DepthToSpace/SpaceToDepth, Resize and Upsample, with odd, size-1 and empty
dims, negative axes, several element types and 1 or 2 threads."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, make_model

DTYPES = [np.float32, np.int64, np.uint8, np.bool_, np.int32, np.float64, np.int8]


def _rand(rng, shape, dtype):
    if dtype == np.bool_:
        return np.asarray(rng.random(shape) > 0.5)
    return (rng.standard_normal(shape) * 50).astype(dtype)


def _check(node, x, inits=None, opset=17, threads=1, more=None, **tol):
    feeds = {"x": x, **(more or {})}
    model = make_model([node], feeds, list(node.output), inits or {}, opset=opset)
    return assert_matches_ort(model, feeds, threads=threads, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,perm", [
    ((3, 5), None), ((2, 3, 4), (1, 0, 2)), ((2, 3, 4), (0, 2, 1)), ((1, 7, 9, 17), (0, 2, 3, 1)),
    ((1, 9, 17, 7), (0, 3, 1, 2)), ((2, 0, 3), (2, 1, 0)), ((4, 1, 1, 5), (3, 2, 1, 0)), ((5,), None),
    ((2, 3, 4, 5, 6), (4, 2, 0, 3, 1)), ((65, 33), (1, 0))])
def test_transpose(rng, dtype, shape, perm):
    x = _rand(rng, shape, dtype)
    node = helper.make_node("Transpose", ["x"], ["y"], **({"perm": list(perm)} if perm else {}))
    _check(node, x)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape,perm", [((1, 64, 67, 35), (0, 2, 3, 1)), ((130, 257), (1, 0)),
                                        ((8, 33, 70), (0, 2, 1)), ((3, 40, 50, 6), (2, 0, 1, 3))])
def test_transpose_big(rng, threads, shape, perm):
    x = rng.standard_normal(shape).astype(np.float32)
    _check(helper.make_node("Transpose", ["x"], ["y"], perm=list(perm)), x, threads=threads)


SLICES = [  # shape, starts, ends, axes, steps
    ((10,), [2], [8], None, None), ((10,), [-3], [100], [0], [1]), ((10,), [9], [-100], [0], [-2]),
    ((5, 7), [1, 0], [4, 7], [0, 1], [1, 3]), ((5, 7), [0], [2**63 - 1], [-1], [2]), ((5, 7), [3], [3], [0], [1]),
    ((4, 5, 6), [-1, 5], [-5, 0], [0, 2], [-1, -2]), ((3, 0, 4), [0], [2], [2], [1]), ((6, 6), [-100], [100], [1], [1]),
    ((3, 4, 5), [1], [-(2**63)], [1], [-1]), ((2, 3), [5], [10], [1], [1])]


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_, np.uint8])
@pytest.mark.parametrize("shape,starts,ends,axes,steps", SLICES)
def test_slice(rng, dtype, shape, starts, ends, axes, steps):
    x = _rand(rng, shape, dtype)
    names = ["x", "s", "e"] + (["a"] if axes is not None else []) + (["t"] if steps is not None else [])
    inits = {"s": np.array(starts, np.int64), "e": np.array(ends, np.int64)}
    if axes is not None:
        inits["a"] = np.array(axes, np.int64)
    if steps is not None:
        inits["t"] = np.array(steps, np.int64)
    if steps is not None and axes is None:
        names.insert(3, "")
    _check(helper.make_node("Slice", names, ["y"]), x, inits)


def test_slice_opset9(rng):
    x = rng.standard_normal((5, 6, 7)).astype(np.float32)
    node = helper.make_node("Slice", ["x"], ["y"], starts=[1, -4], ends=[1000, -1], axes=[0, 2])
    _check(node, x, opset=9)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("shapes,axis", [
    ([(2, 3), (2, 5)], 1), ([(2, 3), (4, 3), (1, 3)], 0), ([(2, 0, 4), (2, 3, 4)], -2), ([(7,), (9,)], 0),
    ([(1, 2, 3), (1, 2, 3), (1, 2, 3)], -1), ([(3, 0), (3, 0)], 1)])
def test_concat(rng, dtype, shapes, axis):
    feeds = {f"x{i}": _rand(rng, s, dtype) for i, s in enumerate(shapes)}
    node = helper.make_node("Concat", list(feeds), ["y"], axis=axis)
    assert_matches_ort(make_model([node], feeds, ["y"]), feeds)


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("shape,axis,split,n", [
    ((6, 4), 0, [1, 2, 3], 3), ((6, 4), -1, None, 2), ((3, 7), 1, None, 3), ((2, 9, 3), 1, [0, 9], 2),
    ((5,), 0, [2, 2, 1], 3), ((4, 0), 0, None, 2)])
def test_split(rng, opset, shape, axis, split, n):
    if split is None and shape[axis] % n and opset < 18:
        pytest.skip("uneven split needs opset 18")
    x = _rand(rng, shape, np.float32)
    outs = [f"y{i}" for i in range(n)]
    kw, inits, ins = {"axis": axis}, {}, ["x"]
    if split is not None:
        if opset < 13:
            kw["split"] = split
        else:
            ins.append("s")
            inits["s"] = np.array(split, np.int64)
    elif opset >= 18:
        kw["num_outputs"] = n
    _check(helper.make_node("Split", ins, outs, **kw), x, inits, opset=opset)


@pytest.mark.parametrize("idx_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8, np.bool_])
@pytest.mark.parametrize("shape,axis,ishape", [((5, 4), 0, (3,)), ((5, 4), 1, (2, 2)), ((3, 4, 5), -1, ()),
                                               ((3, 4, 5), 1, (0,)), ((7,), 0, (9,)), ((2, 6, 3), -2, (4, 1))])
def test_gather(rng, idx_dtype, dtype, shape, axis, ishape):
    x = _rand(rng, shape, dtype)
    n = shape[axis]
    idx = rng.integers(-n, n, size=ishape).astype(idx_dtype)
    _check(helper.make_node("Gather", ["x", "i"], ["y"], axis=axis), x, more={"i": idx})


def test_gather_out_of_range_is_an_error(rng):
    x = rng.standard_normal((4, 3)).astype(np.float32)
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=0)
    idx = np.array([0, 4], np.int64)
    model = make_model([node], {"x": x, "i": idx}, ["y"])
    sess = pyengine.InferenceSession(model.SerializeToString())
    with pytest.raises(ValueError, match=r"Gather.*index 4 is out of range"):
        sess.run(None, {"x": x, "i": idx})
    # And a constant index that is out of range fails when the plan is built.
    model = make_model([node], {"x": x}, ["y"], {"i": np.array([-5], np.int64)})
    with pytest.raises(ValueError, match="out of range"):
        pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("shape,ishape,axis", [((3, 4), (3, 2), 1), ((3, 4), (5, 4), 0), ((2, 3, 5), (2, 2, 5), -2),
                                               ((4,), (7,), 0), ((3, 0), (3, 0), 1)])
def test_gather_elements(rng, dtype, shape, ishape, axis):
    x = _rand(rng, shape, dtype)
    n = shape[axis]
    idx = rng.integers(-n, n, size=ishape).astype(np.int64) if n else np.zeros(ishape, np.int64)
    _check(helper.make_node("GatherElements", ["x", "i"], ["y"], axis=axis), x, more={"i": idx})


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@pytest.mark.parametrize("shape,ishape", [((4, 5, 6), (3, 2)), ((8,), (4, 1)), ((4, 5), (2, 3, 2)), ((3, 4), (0, 1))])
def test_scatter_nd(rng, reduction, dtype, shape, ishape):
    x = _rand(rng, shape, dtype)
    k = ishape[-1]
    rows = [rng.permutation(shape[j])[: max(ishape[0], 1)] for j in range(k)]
    count = int(np.prod(ishape[:-1]))
    flat = np.array([[rows[j][i % len(rows[j])] for j in range(k)] for i in range(count)], np.int64)
    # Unique index tuples, so the result does not depend on the update order.
    _, keep = np.unique(flat, axis=0, return_index=True) if count else (None, [])
    flat = flat[np.sort(keep)] if count else flat.reshape(0, k)
    idx = flat.reshape(ishape[:-1] if len(flat) == count else (len(flat),) + ishape[-1:-1] + (), ) if False else flat
    if len(flat) == count:
        idx = flat.reshape(ishape)
    upd = _rand(rng, idx.shape[:-1] + shape[k:], dtype)
    node = helper.make_node("ScatterND", ["x", "i", "u"], ["y"], reduction=reduction)
    _check(node, x, more={"i": idx, "u": upd}, opset=18)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.uint8])
@pytest.mark.parametrize("shape,pads,axes", [((3, 4), [1, 2, 2, 1], None), ((2, 3, 5), [0, 0, 3, 0, 1, 2], None),
                                             ((1, 2, 7, 9), [1, 0, 2, 3], [2, -1]), ((4, 5), [0, -1, -2, 2], None),
                                             ((6,), [0, 0], None)])
def test_pad(rng, mode, dtype, shape, pads, axes):
    if mode != "constant" and any(p < 0 for p in pads):
        pytest.skip("negative pads only with constant mode")
    x = _rand(rng, shape, dtype)
    ins = ["x", "p", "v"] + (["a"] if axes else [])
    inits = {"p": np.array(pads, np.int64), "v": np.array(7, dtype)}
    if axes:
        inits["a"] = np.array(axes, np.int64)
    _check(helper.make_node("Pad", ins, ["y"], mode=mode), x, inits, opset=19)


def test_pad_runtime_value_and_old_opset(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    node = helper.make_node("Pad", ["x", "p", "v"], ["y"])
    model = make_model([node], {"x": x, "v": np.array(2.5, np.float32)}, ["y"], {"p": np.array([1, 1, 0, 2], np.int64)})
    assert_matches_ort(model, {"x": x, "v": np.array(-3.25, np.float32)})
    _check(helper.make_node("Pad", ["x"], ["y"], pads=[0, 2, 1, 0], value=1.5), x, opset=10)
    _check(helper.make_node("Pad", ["x"], ["y"], pads=[2, 1, 2, 1], mode="reflect"), x, opset=10)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("shape,target", [((3, 1), (2, 1, 6)), ((1,), (4, 5)), ((2, 3), (1, 1)), ((4, 1, 5), (4, 3, 1)),
                                          ((0, 1), (0, 7)), ((5,), (5,))])
def test_expand(rng, dtype, shape, target):
    x = _rand(rng, shape, dtype)
    _check(helper.make_node("Expand", ["x", "s"], ["y"]), x, {"s": np.array(target, np.int64)})


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.bool_])
@pytest.mark.parametrize("shape,reps", [((2, 3), (2, 3)), ((5,), (4,)), ((1, 3, 2), (3, 1, 2)), ((2, 2), (0, 2)),
                                        ((3, 0), (2, 2))])
def test_tile(rng, dtype, shape, reps):
    x = _rand(rng, shape, dtype)
    _check(helper.make_node("Tile", ["x", "r"], ["y"]), x, {"r": np.array(reps, np.int64)})


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.float64])
@pytest.mark.parametrize("shape,axis", [((5,), 0), ((3, 4), 1), ((3, 4), -2), ((2, 0, 3), 2), ((2, 7, 3), 1)])
@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumsum(rng, dtype, shape, axis, exclusive, reverse):
    x = _rand(rng, shape, dtype)
    node = helper.make_node("CumSum", ["x", "a"], ["y"], exclusive=exclusive, reverse=reverse)
    _check(node, x, {"a": np.array(axis, np.int32)}, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 5, 3), (0, 3), (1, 1)])
@pytest.mark.parametrize("upper,k", [(1, None), (0, None), (1, 2), (0, -1), (1, -100), (0, 100)])
def test_trilu(rng, dtype, shape, upper, k):
    x = _rand(rng, shape, dtype)
    ins, inits = (["x"], {}) if k is None else (["x", "k"], {"k": np.array(k, np.int64)})
    _check(helper.make_node("Trilu", ins, ["y"], upper=upper), x, inits)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("shape,b", [((1, 8, 3, 5), 2), ((2, 9, 1, 2), 3), ((1, 4, 1, 1), 2)])
def test_depth_to_space(rng, mode, shape, b):
    x = rng.standard_normal(shape).astype(np.float32)
    _check(helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=b, mode=mode), x)


@pytest.mark.parametrize("shape,b", [((1, 3, 4, 6), 2), ((2, 1, 9, 3), 3)])
def test_space_to_depth(rng, shape, b):
    x = rng.standard_normal(shape).astype(np.uint8)
    _check(helper.make_node("SpaceToDepth", ["x"], ["y"], blocksize=b), x)


COORDS = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "tf_half_pixel_for_nn"]


@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("nearest", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
@pytest.mark.parametrize("shape,scales", [((1, 2, 5, 7), (1, 1, 2.0, 3.0)), ((1, 1, 9, 8), (1, 1, 0.5, 0.75)),
                                          ((2, 3, 4), (1, 1.7, 2.3))])
def test_resize_nearest(rng, coord, nearest, shape, scales):
    if coord == "align_corners" and any(d * f != int(d * f) for d, f in zip(shape, scales)):
        pytest.skip("fractional output length with align_corners is reported unsupported")
    x = rng.standard_normal(shape).astype(np.float32)
    node = helper.make_node("Resize", ["x", "r", "s"], ["y"], mode="nearest", coordinate_transformation_mode=coord,
                            nearest_mode=nearest)
    # tf_half_pixel_for_nn exists up to opset 12 only.
    _check(node, x, {"r": np.zeros(0, np.float32), "s": np.array(scales, np.float32)}, opset=11)


@pytest.mark.parametrize("coord", COORDS[:4])
@pytest.mark.parametrize("shape,sizes", [((1, 2, 5, 7), (1, 2, 10, 14)), ((1, 3, 9, 8), (1, 3, 4, 3)),
                                         ((2, 1, 1, 5), (2, 1, 3, 1)), ((1, 1, 6, 6), (1, 1, 13, 17))])
def test_resize_linear(isa, rng, coord, shape, sizes):
    x = rng.standard_normal(shape).astype(np.float32)
    node = helper.make_node("Resize", ["x", "", "", "s"], ["y"], mode="linear", coordinate_transformation_mode=coord)
    _check(node, x, {"s": np.array(sizes, np.int64)}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
def test_resize_linear_scales_threads(rng, threads):
    x = rng.standard_normal((1, 8, 33, 47)).astype(np.float32)
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="linear")
    _check(node, x, {"s": np.array([1, 1, 1.5, 2.0], np.float32)}, threads=threads, rtol=1e-5, atol=1e-5)


def test_resize_uint8_nearest_and_opset10(rng):
    x = rng.integers(0, 255, (1, 2, 3, 4)).astype(np.uint8)
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="nearest")
    _check(node, x, {"s": np.array([1, 1, 2, 1.5], np.float32)})
    xf = rng.standard_normal((1, 1, 3, 4)).astype(np.float32)
    for mode in ("nearest", "linear"):
        _check(helper.make_node("Resize", ["x", "s"], ["y"], mode=mode), xf,
               {"s": np.array([1, 1, 2, 3], np.float32)}, opset=10)


def test_resize_tf_crop_and_resize(rng):
    x = rng.standard_normal((1, 1, 6, 7)).astype(np.float32)
    for mode in ("nearest", "linear"):
        node = helper.make_node("Resize", ["x", "r", "", "s"], ["y"], mode=mode, extrapolation_value=-9.0,
                                coordinate_transformation_mode="tf_crop_and_resize")
        roi = np.array([0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3], np.float32)
        _check(node, x, {"r": roi, "s": np.array([1, 1, 5, 9], np.int64)}, rtol=1e-5, atol=1e-5)


def test_resize_align_corners_fractional_unsupported(rng):
    x = rng.standard_normal((1, 1, 2, 4)).astype(np.float32)
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="linear", coordinate_transformation_mode="align_corners")
    model = make_model([node], {"x": x}, ["y"], {"s": np.array([1, 1, 0.6, 0.6], np.float32)})
    with pytest.raises(NotImplementedError, match="align_corners"):
        pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})


def test_resize_cubic_unsupported(rng):
    x = rng.standard_normal((1, 1, 3, 4)).astype(np.float32)
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic")
    model = make_model([node], {"x": x}, ["y"], {"s": np.array([1, 1, 2, 2], np.float32)})
    with pytest.raises(pyengine.UnsupportedOperatorError if hasattr(pyengine, "UnsupportedOperatorError")
                       else NotImplementedError, match="cubic"):
        pyengine.InferenceSession(model.SerializeToString())


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample(rng, mode):
    x = rng.standard_normal((1, 2, 3, 5)).astype(np.float32)
    node = helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)
    _check(node, x, {"s": np.array([1, 1, 2, 3], np.float32)}, opset=9)
