"""graph/passes/fuse_residual.py: `Conv -> Add(other) [-> Relu]` becomes one
Conv with a residual input (Y = relu(conv + bias + other)), checked against
onnxruntime on every Conv path (Winograd F(4x4) and F(2x2), im2col with
stride 2, 1x1, depthwise, grouped), both Add operand orders, with and
without bias and Relu, Sum in place of Add, a shortcut computed after the
Conv in node order, every ISA and 1-3 threads; and the cases that must not
fuse."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, assert_same_bits_across_threads, make_model

TOL = dict(rtol=1e-4, atol=1e-4)


def session_ops(model):
    return [n.op_type for n in pyengine.InferenceSession(model.SerializeToString())._graph.nodes]


def residual_model(rng, n, c, h, w, m, k, s, group=1, bias=True, swap=False, act="Relu", add="Add"):
    pad = k // 2
    oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    z = rng.standard_normal((n, m, oh, ow)).astype(np.float32)
    inits = {"w": (rng.standard_normal((m, c // group, k, k)) / np.sqrt(c // group * k * k)).astype(np.float32)}
    ins = ["x", "w"]
    if bias:
        inits["b"] = rng.standard_normal(m).astype(np.float32)
        ins.append("b")
    nodes = [helper.make_node("Conv", ins, ["c"], kernel_shape=[k, k], strides=[s, s], pads=[pad] * 4, group=group),
             helper.make_node(add, ["z", "c"] if swap else ["c", "z"], ["a" if act else "y"])]
    if act:
        nodes.append(helper.make_node(act, ["a"], ["y"]))
    return make_model(nodes, {"x": x, "z": z}, ["y"], inits), {"x": x, "z": z}


CASES = [
    # (n, c, h, w, m, k, s, group)
    (1, 16, 30, 27, 24, 3, 1, 1),   # Winograd F(4x4)
    (1, 20, 11, 13, 16, 3, 1, 1),   # Winograd F(2x2)
    (2, 16, 12, 12, 20, 3, 1, 1),   # F(4x4), two images
    (2, 5, 17, 15, 7, 3, 2, 1),     # im2col, stride 2
    (1, 3, 23, 21, 8, 7, 2, 1),     # 7x7/2 stem
    (2, 9, 7, 9, 13, 1, 1, 1),      # 1x1
    (1, 12, 9, 11, 12, 3, 1, 12),   # depthwise
    (1, 8, 9, 10, 6, 3, 1, 2),      # grouped
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias,swap", [(True, False), (False, True)])
def test_residual_fused_matches_ort(isa, rng, case, bias, swap):
    n, c, h, w, m, k, s, g = case
    model, feeds = residual_model(rng, n, c, h, w, m, k, s, g, bias=bias, swap=swap)
    assert session_ops(model) == ["Conv"]
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("case", [CASES[0], CASES[3], CASES[5]])
@pytest.mark.parametrize("add,act", [("Sum", "Relu"), ("Add", None), ("Sum", None)])
def test_sum_and_no_relu_fused(isa, rng, case, add, act):
    n, c, h, w, m, k, s, g = case
    model, feeds = residual_model(rng, n, c, h, w, m, k, s, g, act=act, add=add)
    assert session_ops(model) == ["Conv"]
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("case", [CASES[0], CASES[3]])
def test_residual_threads_bit_identical(rng, case):
    n, c, h, w, m, k, s, g = case
    model, feeds = residual_model(rng, n, c, h, w, m, k, s, g)
    assert_same_bits_across_threads(model, feeds)


def test_shortcut_computed_after_conv(rng):
    """ResNet's downsampling block: the 1x1 shortcut conv is listed after the
    main conv, so the fused Conv must move behind it."""
    x = rng.standard_normal((1, 16, 14, 14)).astype(np.float32)
    inits = {"w1": (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32),
             "w2": (rng.standard_normal((16, 16, 1, 1)) * 0.1).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Conv", ["x", "w2"], ["sc"], kernel_shape=[1, 1]),
             helper.make_node("Add", ["c", "sc"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], inits)
    assert session_ops(model) == ["Conv", "Conv"]
    assert_matches_ort(model, {"x": x}, **TOL)


def test_not_fused(rng):
    x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    w = (rng.standard_normal((4, 4, 3, 3)) * 0.3).astype(np.float32)
    conv = helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1] * 4)
    # broadcasting addend
    zb = rng.standard_normal((1, 4, 1, 8)).astype(np.float32)
    model = make_model([conv, helper.make_node("Add", ["c", "z"], ["a"]), helper.make_node("Relu", ["a"], ["y"])],
                       {"x": x, "z": zb}, ["y"], {"w": w})
    assert "Add" in session_ops(model)
    assert_matches_ort(model, {"x": x, "z": zb}, **TOL)
    # the conv output also read elsewhere
    z = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    model = make_model([conv, helper.make_node("Add", ["c", "z"], ["a"]), helper.make_node("Relu", ["a"], ["y"])],
                       {"x": x, "z": z}, ["y", "c"], {"w": w})
    assert "Add" in session_ops(model)
    assert_matches_ort(model, {"x": x, "z": z}, **TOL)
    # a Sum of three inputs
    model = make_model([conv, helper.make_node("Sum", ["c", "z", "z"], ["y"])], {"x": x, "z": z}, ["y"], {"w": w})
    assert "Sum" in session_ops(model)
    assert_matches_ort(model, {"x": x, "z": z}, **TOL)
    # Relu before the Add (fused into the Conv first): the add cannot move inside
    model = make_model([conv, helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Add", ["r", "z"], ["a"]),
                        helper.make_node("Relu", ["a"], ["y"])], {"x": x, "z": z}, ["y"], {"w": w})
    assert "Add" in session_ops(model)
    assert_matches_ort(model, {"x": x, "z": z}, **TOL)
