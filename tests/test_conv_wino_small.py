"""ops/conv_wino_small.cpp: Winograd F(4x4, 3x3) with output channels in the
vector lanes, for 3x3 stride-1 convolutions on small planes. Checked
against onnxruntime on every ISA (the scalar table runs the same code over
one-lane vectors) for odd channel counts (lane tails of the input and output
channels), planes that are not multiples of the 4x4 tile, every padding the
path accepts, batches, bias and fused activations, 1-3 threads; and the
shapes the path must leave to the others."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, assert_same_bits_across_threads, make_model

TOL = dict(rtol=1e-4, atol=1e-4)


def conv_model(rng, n, c, h, w, m, pads=(1, 1, 1, 1), bias=True, act=None, k=3, stride=1, group=1):
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    inits = {"w": (rng.standard_normal((m, c // group, k, k)) / np.sqrt(c * k * k)).astype(np.float32)}
    ins = ["x", "w"]
    if bias:
        inits["b"] = rng.standard_normal(m).astype(np.float32)
        ins.append("b")
    nodes = [helper.make_node("Conv", ins, ["c" if act else "y"], kernel_shape=[k, k], pads=list(pads),
                              strides=[stride, stride], group=group)]
    if act == "LeakyRelu":
        nodes.append(helper.make_node(act, ["c"], ["y"], alpha=0.1))
    elif act:
        nodes.append(helper.make_node(act, ["c"], ["y"]))
    return make_model(nodes, {"x": x}, ["y"], inits), {"x": x}


def conv_paths(model):
    sess = pyengine.InferenceSession(model.SerializeToString())
    (compiled,) = sess._plans.values()
    return [path for _, op, path in compiled.plan.node_paths() if op == "Conv"]


SHAPES = [
    # (n, c, h, w, m, pads)
    (1, 32, 8, 8, 64, (1, 1, 1, 1)),    # the digits CNN's second conv
    (1, 64, 4, 4, 64, (1, 1, 1, 1)),    # its third: one tile
    (1, 8, 1, 1, 8, (1, 1, 1, 1)),      # a 1x1 plane
    (2, 9, 7, 5, 17, (1, 1, 1, 1)),     # odd everything, tiles cut at the plane's edge
    (1, 17, 13, 16, 33, (1, 1, 1, 1)),  # 4x4 tiles over 13x16
    (3, 16, 10, 9, 15, (0, 0, 0, 0)),   # no padding: 8x7 output
    (1, 12, 6, 6, 20, (2, 2, 2, 2)),    # pads of 2: 8x8 output
    (1, 24, 9, 11, 16, (0, 2, 2, 0)),   # asymmetric pads
    (2, 33, 16, 14, 48, (1, 1, 1, 1)),  # the largest plane taken: 16x14
]


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_ort(isa, rng, shape):
    n, c, h, w, m, pads = shape
    model, feeds = conv_model(rng, n, c, h, w, m, pads)
    assert conv_paths(model) == ["winograd_cl"]
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("act", ["Relu", "LeakyRelu", "Sigmoid"])
@pytest.mark.parametrize("bias", [True, False])
def test_bias_and_fused_activation(isa, rng, act, bias):
    model, feeds = conv_model(rng, 2, 20, 8, 8, 40, bias=bias, act=act)
    assert conv_paths(model) == ["winograd_cl"]
    assert_matches_ort(model, feeds, **TOL)


def test_large_values_relative_error(rng):
    """Winograd's error grows with the values; it stays within 1e-4 relative
    to the output's scale on inputs a thousand times larger."""
    model, feeds = conv_model(rng, 1, 32, 8, 8, 64)
    feeds = {"x": feeds["x"] * 1000}
    ours = pyengine.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    import onnxruntime as ort
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert np.abs(ours - ref).max() <= 1e-4 * np.abs(ref).max()


def test_threads_bit_identical(rng):
    model, feeds = conv_model(rng, 5, 32, 8, 8, 64, act="Relu")
    assert_same_bits_across_threads(model, feeds)


@pytest.mark.parametrize("case", [
    dict(c=32, h=20, w=20, m=32),          # 5x5 = 25 tiles: the planar paths
    dict(c=128, h=8, w=8, m=128),          # transformed weights past L2
    dict(c=4, h=8, w=8, m=32),             # too few input channels
    dict(c=16, h=8, w=8, m=16, k=5, pads=(2, 2, 2, 2)),
    dict(c=16, h=9, w=9, m=16, stride=2),
    dict(c=16, h=8, w=8, m=16, group=2),
    dict(c=16, h=8, w=8, m=16, pads=(3, 3, 3, 3)),
])
def test_other_shapes_take_other_paths(rng, case):
    kw = dict(case)
    model, feeds = conv_model(rng, 1, kw.pop("c"), kw.pop("h"), kw.pop("w"), kw.pop("m"), **kw)
    assert conv_paths(model) != ["winograd_cl"]
    assert_matches_ort(model, feeds, **TOL)


def test_input_against_guard_page(isa, rng):
    """The input ends at an unreadable page: a read past it crashes the test."""
    from test_conv_direct import guarded
    model, feeds = conv_model(rng, 2, 9, 7, 5, 17)
    x = guarded(feeds["x"])
    assert_matches_ort(model, {"x": x}, threads=2, **TOL)


def test_bias_fed_at_run_time(isa, rng):
    x = rng.standard_normal((2, 16, 8, 8)).astype(np.float32)
    w = (rng.standard_normal((24, 16, 3, 3)) * 0.1).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    model = make_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])],
                       {"x": x, "b": b}, ["y"], {"w": w})
    assert conv_paths(model) == ["winograd_cl"]
    assert_matches_ort(model, {"x": x, "b": b}, **TOL)


@pytest.mark.parametrize("n,hw", [(13, 4), (25, 3), (7, 8), (5, 13)])
def test_batches_grouped(rng, n, hw):
    """Images are grouped so their tiles share each pass over the weights
    (12 one-tile images per call, 3 images of four tiles, ...): partial last
    groups, every ISA's result against onnxruntime, same bits on 1-3 threads."""
    model, feeds = conv_model(rng, n, 24, hw, hw, 40, act="Relu")
    assert conv_paths(model) == ["winograd_cl"]
    for isa in pyengine.available_isas():
        pyengine.set_isa(isa)
        try:
            assert_matches_ort(model, feeds, **TOL)
        finally:
            pyengine.set_isa("auto")
    assert_same_bits_across_threads(model, feeds)
