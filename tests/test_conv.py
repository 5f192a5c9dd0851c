"""Conv and ConvTranspose against onnxruntime: 1-D/2-D/3-D, every path of the
kernel (depthwise, 1x1 in place, tiled im2col, whole im2col), groups,
strides, dilations, asymmetric pads, every auto_pad, fused activations,
both ISAs and thread-count independence."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from pyengine.ops.registry import get_opdef
from oracle import assert_matches_ort, make_model

TOL = dict(rtol=1e-4, atol=1e-4)


def conv_model(x, w, b=None, op="Conv", const_w=True, act=None, opset=17, **attrs):
    inputs = ["x", "w"] + (["b"] if b is not None else [])
    nodes = [helper.make_node(op, inputs, ["y"], **attrs)]
    out = "y"
    if act is not None:
        name, aattrs = act
        nodes.append(helper.make_node(name, ["y"], ["z"], **aattrs))
        out = "z"
    feeds = {"x": x}
    inits = {}
    (inits if const_w else feeds)["w"] = w
    if b is not None:
        inits["b"] = b
    return make_model(nodes, feeds, [out], inits, opset=opset), feeds


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


CONV2D_CASES = [
    # (N, C, H, W, M, k, stride, dilation, pads, group)
    (1, 3, 17, 13, 5, 3, 1, 1, [1, 1, 1, 1], 1),
    (2, 4, 9, 11, 6, 3, 2, 1, [0, 1, 2, 0], 2),
    (1, 5, 12, 7, 7, 5, 1, 2, [2, 2, 2, 2], 1),
    (1, 3, 16, 16, 4, 7, 2, 1, [3, 3, 3, 3], 1),
    (3, 6, 5, 5, 9, 1, 1, 1, [0, 0, 0, 0], 3),     # grouped 1x1 in place
    (1, 8, 40, 40, 16, 1, 1, 1, [0, 0, 0, 0], 1),  # 1x1, tiled
    (2, 7, 6, 9, 3, 1, 2, 1, [0, 0, 0, 0], 1),     # strided 1x1 (im2col)
    (1, 5, 9, 9, 5, 3, 1, 1, [1, 1, 1, 1], 5),     # depthwise
    (2, 6, 13, 10, 12, 3, 2, 1, [1, 0, 0, 1], 6),  # depthwise, multiplier 2
    (1, 4, 11, 11, 4, 5, 3, 2, [2, 1, 3, 0], 4),   # depthwise, stride 3, dilation
    (1, 3, 1, 1, 2, 1, 1, 1, [0, 0, 0, 0], 1),     # size 1
    (1, 2, 30, 70, 3, 3, 1, 1, [1, 1, 1, 1], 1),   # many tiles
    (1, 16, 7, 7, 24, 3, 1, 1, [1, 1, 1, 1], 1),   # whole im2col, GEMM threads
    (2, 4, 6, 6, 4, 3, 3, 1, [2, 2, 2, 2], 2),
]


@pytest.mark.parametrize("case", CONV2D_CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_conv2d(isa, rng, case, bias):
    n, c, h, w_, m, k, s, d, pads, g = case
    x = rand(rng, n, c, h, w_)
    w = rand(rng, m, c // g, k, k)
    b = rand(rng, m) if bias else None
    model, feeds = conv_model(x, w, b, kernel_shape=[k, k], strides=[s, s], dilations=[d, d], pads=pads, group=g)
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("shape,k,s,d,pads,g", [
    ((2, 3, 17), 3, 1, 1, [1, 2], 1),
    ((1, 4, 31), 5, 2, 2, [0, 3], 2),
    ((1, 6, 9), 3, 1, 1, [1, 1], 6),
    ((1, 5, 8), 1, 1, 1, [0, 0], 1),
    ((1, 3, 5, 6, 7), 3, 1, 1, [1, 1, 1, 1, 1, 1], 1),
    ((2, 4, 4, 7, 5), 3, 2, 1, [0, 1, 1, 1, 0, 2], 2),
    ((1, 4, 5, 5, 5), 3, 1, 2, [2, 2, 2, 2, 2, 2], 4),
    ((1, 3, 3, 4, 5), 1, 1, 1, [0] * 6, 1),
])
def test_conv_1d_3d(isa, rng, shape, k, s, d, pads, g):
    r = len(shape) - 2
    x = rand(rng, *shape)
    m = 2 * g
    w = rand(rng, m, shape[1] // g, *([k] * r))
    model, feeds = conv_model(x, w, rand(rng, m), strides=[s] * r, dilations=[d] * r, pads=pads, group=g)
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"])
@pytest.mark.parametrize("k,s,d", [(3, 1, 1), (4, 2, 1), (3, 2, 2), (2, 3, 1)])
@pytest.mark.parametrize("g", [1, 3])
def test_conv_auto_pad(isa, rng, auto_pad, k, s, d, g):
    if d > 1 and auto_pad.startswith("SAME"):
        pytest.skip("onnxruntime rejects dilations with SAME auto_pad (the node tests cover it)")
    x = rand(rng, 1, 3, 10, 7)
    w = rand(rng, 3, 3 // g, k, k)
    model, feeds = conv_model(x, w, auto_pad=auto_pad, strides=[s, s], dilations=[d, d], group=g)
    assert_matches_ort(model, feeds, **TOL)


def test_conv_weight_not_constant(isa, rng):
    x, w = rand(rng, 2, 4, 9, 8), rand(rng, 6, 2, 3, 3)
    model, feeds = conv_model(x, w, rand(rng, 6), const_w=False, group=2, pads=[1, 0, 1, 2])
    assert_matches_ort(model, {**feeds, "w": w}, **TOL)


def test_conv_kernel_shape_default(isa, rng):
    x, w = rand(rng, 1, 2, 6, 6), rand(rng, 3, 2, 2, 3)
    model, feeds = conv_model(x, w)
    assert_matches_ort(model, feeds, **TOL)


ACTS = [("Relu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Sigmoid", {}), ("Tanh", {}),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("Elu", {"alpha": 0.7}), ("Clip", {})]


@pytest.mark.parametrize("act", ACTS, ids=[a[0] for a in ACTS])
@pytest.mark.parametrize("kind", ["general", "pointwise", "depthwise", "transpose"])
def test_conv_fused_activation(isa, rng, act, kind):
    if kind == "transpose":
        x, w, op, attrs = rand(rng, 1, 4, 5, 6), rand(rng, 4, 3, 3, 3), "ConvTranspose", dict(strides=[2, 2])
    elif kind == "pointwise":
        x, w, op, attrs = rand(rng, 1, 4, 5, 6), rand(rng, 5, 4, 1, 1), "Conv", {}
    elif kind == "depthwise":
        x, w, op, attrs = rand(rng, 1, 4, 5, 6), rand(rng, 4, 1, 3, 3), "Conv", dict(group=4, pads=[1, 1, 1, 1])
    else:
        x, w, op, attrs = rand(rng, 2, 4, 5, 6), rand(rng, 5, 4, 3, 3), "Conv", dict(pads=[1, 1, 0, 0])
    name, aattrs = act
    if get_opdef(name) is None:
        pytest.skip(f"{name} is not registered in this build (activation ops come from another family)")
    b = rand(rng, w.shape[0] if op == "Conv" else w.shape[1])
    model, feeds = conv_model(x, w, b, op=op, act=(name, aattrs), **attrs)
    if name == "Clip":  # opset 11+: bounds are inputs
        model.graph.node[1].input.extend(["lo", "hi"])
        model.graph.initializer.extend([helper.make_tensor("lo", 1, [], [-0.5]), helper.make_tensor("hi", 1, [], [0.7])])
    sess = pyengine.InferenceSession(model.SerializeToString())
    assert sess._graph.op_counts() == {op: 1}, f"activation not fused: {sess._graph.op_counts()}"
    assert sess._graph.nodes[0].attrs["activation"] == name
    assert_matches_ort(model, feeds, **TOL)


def test_conv_bn_relu_fused(isa, rng):
    """Conv -> BatchNormalization -> Relu becomes one Conv with a fused epilogue."""
    x, w = rand(rng, 2, 3, 8, 8), rand(rng, 4, 3, 3, 3)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["n"], epsilon=1e-3),
             helper.make_node("Relu", ["n"], ["y"])]
    inits = {"w": w, "s": rand(rng, 4), "bb": rand(rng, 4), "mu": rand(rng, 4),
             "var": rng.uniform(0.5, 2, 4).astype(np.float32)}
    model = make_model(nodes, {"x": x}, ["y"], inits)
    sess = pyengine.InferenceSession(model.SerializeToString())
    assert sess._graph.op_counts() == {"Conv": 1}
    assert_matches_ort(model, {"x": x}, **TOL)


CONVT_CASES = [
    # (shape, M, k, strides, dilations, pads, output_padding, group)
    ((1, 3, 5, 4), 2, 3, [1, 1], [1, 1], [0, 0, 0, 0], [0, 0], 1),
    ((2, 4, 5, 6), 6, 3, [2, 2], [1, 1], [1, 0, 1, 1], [1, 0], 2),
    ((1, 2, 7, 3), 3, 4, [3, 2], [2, 1], [0, 2, 1, 0], [2, 1], 1),
    ((1, 4, 3, 3), 4, 2, [2, 2], [1, 1], [0, 0, 0, 0], [0, 0], 4),
    ((2, 3, 9), 5, 3, [2], [1], [1, 0], [1], 1),
    ((1, 2, 3, 4, 3), 2, 3, [2, 1, 2], [1, 1, 1], [1, 0, 0, 1, 1, 0], [0, 0, 1], 2),
    ((1, 5, 1, 1), 3, 1, [1, 1], [1, 1], [0, 0, 0, 0], [0, 0], 1),
]


@pytest.mark.parametrize("case", CONVT_CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_conv_transpose(isa, rng, case, bias):
    shape, m, k, s, d, pads, op, g = case
    r = len(shape) - 2
    x = rand(rng, *shape)
    w = rand(rng, shape[1], m // g if m % g == 0 else m, *([k] * r))
    b = rand(rng, w.shape[1] * g) if bias else None
    model, feeds = conv_model(x, w, b, op="ConvTranspose", strides=s, dilations=d, pads=pads,
                              output_padding=op, group=g)
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"])
@pytest.mark.parametrize("s", [1, 2])
def test_conv_transpose_auto_pad(isa, rng, auto_pad, s):
    # Even total padding: onnxruntime and the ONNX reference place odd totals differently.
    x, w = rand(rng, 1, 2, 4, 5), rand(rng, 2, 3, 3, 3)
    model, feeds = conv_model(x, w, op="ConvTranspose", auto_pad=auto_pad, strides=[s, s],
                              output_padding=[s - 1, s - 1] if auto_pad != "VALID" else [0, 0])
    assert_matches_ort(model, feeds, **TOL)


def test_conv_transpose_output_shape(isa, rng):
    x, w = rand(rng, 1, 3, 4, 5), rand(rng, 3, 2, 3, 3)
    model, feeds = conv_model(x, w, rand(rng, 2), op="ConvTranspose", strides=[2, 2], output_shape=[9, 11])
    assert_matches_ort(model, feeds, **TOL)


# tiles_even: 784 columns in 4 tiles of 208/160 (were 224/112); tiles_odd:
# 9 tiles of 512 columns become 10 of 448 (an even count of near-equal tiles).
@pytest.mark.parametrize("case", ["tiles", "tiles_even", "tiles_odd", "whole", "depthwise", "depthwise_s2",
                                  "pointwise", "transpose"])
def test_conv_threads_bit_identical(rng, case):
    op, attrs = "Conv", {}
    if case == "tiles":
        x, w = rand(rng, 2, 5, 23, 29), rand(rng, 7, 5, 3, 3)
    elif case == "tiles_even":
        x, w, attrs = rand(rng, 1, 64, 56, 56), rand(rng, 24, 64, 3, 3), dict(strides=[2, 2], pads=[1] * 4)
    elif case == "tiles_odd":
        x, w, attrs = rand(rng, 1, 5, 64, 70), rand(rng, 9, 5, 3, 3), dict(pads=[1] * 4)
    elif case == "whole":
        x, w = rand(rng, 1, 32, 6, 7), rand(rng, 33, 32, 3, 3)
    elif case == "depthwise":
        x, w, attrs = rand(rng, 1, 6, 19, 21), rand(rng, 6, 1, 3, 3), dict(group=6)
    elif case == "depthwise_s2":
        x, w, attrs = rand(rng, 2, 5, 19, 45), rand(rng, 5, 1, 3, 3), dict(group=5, strides=[2, 2], pads=[1] * 4)
    elif case == "pointwise":
        x, w = rand(rng, 1, 20, 30, 30), rand(rng, 17, 20, 1, 1)
    else:
        x, w, op, attrs = rand(rng, 1, 8, 9, 9), rand(rng, 8, 6, 4, 4), "ConvTranspose", dict(strides=[2, 2])
    model, feeds = conv_model(x, w, op=op, **attrs)
    outs = []
    for t in (1, 2, 3):
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = t
        outs.append(pyengine.InferenceSession(model.SerializeToString(), so).run(None, feeds)[0])
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])
    assert_matches_ort(model, feeds, **TOL)


def test_conv_bad_auto_pad_is_unsupported(rng):
    x, w = rand(rng, 1, 2, 5, 5), rand(rng, 2, 2, 3, 3)
    model, _ = conv_model(x, w)
    model.graph.node[0].attribute.append(helper.make_attribute("auto_pad", "WEIRD"))
    with pytest.raises(pyengine.errors.UnsupportedOperatorError, match="auto_pad"):
        pyengine.InferenceSession(model.SerializeToString())


# Depthwise SIMD path: padded, stride-phase-split plane copy, 32/8-wide blocks
# and a masked tail; widths around the blocks, strides 1-3, dilation, 3x3 and
# 5x5 (unrolled) and 2x4 (generic tap loop), asymmetric and zero pads.
@pytest.mark.parametrize("hw,k,s,d,pads", [
    ((1, 1), (3, 3), 1, 1, [1, 1, 1, 1]),
    ((5, 7), (3, 3), 1, 1, [1, 1, 1, 1]),
    ((4, 8), (3, 3), 2, 1, [1, 1, 1, 1]),
    ((3, 9), (3, 3), 1, 1, [0, 0, 0, 0]),
    ((6, 17), (3, 3), 2, 1, [0, 1, 1, 0]),
    ((3, 33), (3, 3), 1, 1, [1, 1, 1, 1]),
    ((5, 40), (3, 3), 1, 2, [2, 2, 2, 2]),
    ((4, 71), (3, 3), 2, 1, [1, 1, 1, 1]),
    ((7, 70), (5, 5), 1, 1, [2, 2, 2, 2]),
    ((9, 31), (5, 5), 2, 1, [2, 1, 0, 2]),
    ((6, 37), (3, 3), 3, 1, [1, 0, 1, 2]),
    ((5, 12), (2, 4), 1, 1, [0, 1, 1, 2]),
    ((8, 66), (1, 1), 2, 1, [0, 0, 0, 0]),
])
@pytest.mark.parametrize("act", [None, ("Relu", {})])
def test_conv_depthwise_widths(isa, rng, hw, k, s, d, pads, act):
    c = 3
    x = rand(rng, 2, c, *hw)
    w = rand(rng, 2 * c, 1, *k)
    model, feeds = conv_model(x, w, rand(rng, 2 * c), act=act, kernel_shape=list(k), strides=[s, s],
                              dilations=[d, d], pads=pads, group=c)
    assert_matches_ort(model, feeds, **TOL)


def test_conv_depthwise_1d_and_empty(isa, rng):
    x, w = rand(rng, 1, 4, 45), rand(rng, 4, 1, 3)
    model, feeds = conv_model(x, w, kernel_shape=[3], strides=[2], pads=[1, 1], group=4)
    assert_matches_ort(model, feeds, **TOL)
    x, w = rand(rng, 0, 4, 9, 9), rand(rng, 4, 1, 3, 3)
    model, feeds = conv_model(x, w, kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4)
    out = pyengine.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    assert out.shape == (0, 4, 9, 9)


# Winograd F(2x2, 3x3): 3x3 stride 1, constant weights, >= 16 channels and
# >= 32 output tiles. Odd output sizes (cut tiles), asymmetric and large pads,
# tile rows of several images in one block, one block and many (threaded
# blocks), activations in and out of registers.
@pytest.mark.parametrize("n,c,h,w,m,pads", [
    (1, 16, 11, 13, 16, [1, 1, 1, 1]),
    (2, 17, 9, 11, 19, [0, 1, 2, 0]),
    (1, 24, 15, 8, 33, [0, 0, 0, 0]),
    (3, 16, 33, 35, 16, [1, 1, 1, 1]),
    (5, 20, 4, 4, 18, [1, 1, 1, 1]),
    (1, 16, 10, 150, 16, [2, 2, 1, 2]),
])
@pytest.mark.parametrize("bias", [False, True])
def test_conv_winograd(isa, rng, n, c, h, w, m, pads, bias):
    x, wt = rand(rng, n, c, h, w), rand(rng, m, c, 3, 3)
    model, feeds = conv_model(x, wt, rand(rng, m) if bias else None, kernel_shape=[3, 3], pads=pads)
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("act", [("Relu", {}), ("Sigmoid", {})])
def test_conv_winograd_fused_activation(isa, rng, act):
    x, wt = rand(rng, 2, 16, 13, 9), rand(rng, 20, 16, 3, 3)
    model, feeds = conv_model(x, wt, rand(rng, 20), act=act, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("n,h,w", [(1, 12, 14), (3, 33, 35)])
def test_conv_winograd_threads_bit_identical(rng, n, h, w):
    x, wt = rand(rng, n, 16, h, w), rand(rng, 24, 16, 3, 3)
    model, feeds = conv_model(x, wt, rand(rng, 24), kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    outs = []
    for t in (1, 2):
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = t
        outs.append(pyengine.InferenceSession(model.SerializeToString(), so).run(None, feeds)[0])
    np.testing.assert_array_equal(outs[0], outs[1])
    assert_matches_ort(model, feeds, **TOL)
