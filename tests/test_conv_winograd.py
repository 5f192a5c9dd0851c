"""Winograd 3x3 stride-1 convolutions against onnxruntime.

ConvKernel picks F(4x4, 3x3) when the output has >= 32 tiles of 4x4 (all
images together) and C * M <= 128 * 128 or the output plane is >= 28 x 28,
else F(2x2, 3x3) when it has >= 32 tiles of 2x2, else im2col. Randomized shapes: odd planes (cut tiles at the right and bottom),
widths from one tile up to more than one 32-tile chunk and past one 16-lane
vector, channels that are not multiples of 16, asymmetric pads, batch > 1,
fused activations, every ISA, and 128- and 512-channel layers for the
accuracy of the transforms (weights at the He scale of a trained ResNet, so
outputs are O(1), compared with a 1e-4 absolute bound)."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, assert_same_bits_across_threads, make_model

TOL = dict(rtol=1e-4, atol=1e-4)


def conv3x3(rng, n, c, h, w, m, pads, bias=True, act=None):
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((m, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(np.float32)
    inits = {"w": wt}
    inputs = ["x", "w"]
    if bias:
        inits["b"] = (rng.standard_normal(m) * 0.1).astype(np.float32)
        inputs.append("b")
    nodes = [helper.make_node("Conv", inputs, ["y"], kernel_shape=[3, 3], pads=pads)]
    out = "y"
    if act:
        nodes.append(helper.make_node(act, ["y"], ["z"]))
        out = "z"
    return make_model(nodes, {"x": x}, [out], inits, opset=17), {"x": x}


def tiles(n, h, w, pads, e):
    oh, ow = h + pads[0] + pads[2] - 2, w + pads[1] + pads[3] - 2
    return n * -(-oh // e) * -(-ow // e)


@pytest.mark.parametrize("seed", range(10))
def test_winograd43_random(isa, seed):
    rng = np.random.default_rng(100 + seed)
    while True:
        n = int(rng.integers(1, 4))
        h, w = (int(v) for v in rng.integers(5, 72, 2))
        pads = [int(v) for v in rng.integers(0, 3, 4)]
        if tiles(n, h, w, pads, 4) >= 32 and n * h * w <= 12000:
            break
    c, m = (int(v) for v in rng.choice([16, 17, 23, 32, 40], 2))
    act = [None, "Relu", "Sigmoid"][seed % 3]
    model, feeds = conv3x3(rng, n, c, h, w, m, pads, bias=seed % 2 == 0, act=act)
    assert_matches_ort(model, feeds, **TOL)


# Right at the thresholds: F(4x4) with exactly 32 tiles, F(2x2) just below it,
# im2col below both; one-tile-wide planes; a plane 2 chunks wide.
@pytest.mark.parametrize("n,h,w,pads", [
    (1, 15, 31, [1, 1, 1, 1]),   # 4 x 8 tiles of 4x4: F(4x4)
    (1, 15, 27, [1, 1, 1, 1]),   # 4 x 7 of 4x4 -> F(2x2)
    (1, 9, 9, [1, 1, 1, 1]),     # 3 x 3 of 4x4, 5 x 5 of 2x2 -> im2col
    (8, 4, 4, [1, 1, 1, 1]),     # 8 tiles of 4x4, 32 of 2x2 -> F(2x2)
    (32, 6, 6, [0, 0, 0, 0]),    # one 4x4 tile per image: F(4x4)
    (1, 6, 150, [0, 1, 0, 2]),   # 1 tile row, 38 tiles: 2 chunks, tails
    (2, 70, 5, [2, 0, 1, 2]),    # 1-2 tiles per row, many rows
])
def test_winograd_thresholds(isa, rng, n, h, w, pads):
    model, feeds = conv3x3(rng, n, 19, h, w, 21, pads)
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("n,c,h", [
    (1, 128, 28),   # F(4x4) at its largest channel count
    (1, 512, 14),   # F(2x2)
    (2, 512, 14),   # F(2x2): 32 tiles of 4x4, but 512 x 512 channels
    (2, 136, 12),   # F(2x2): C * M just above F(4x4)'s limit
    (1, 160, 28),   # F(4x4) again: above the limit but a 28 x 28 plane
])
def test_winograd_accuracy(isa, rng, n, c, h):
    model, feeds = conv3x3(rng, n, c, h, h, c, [1, 1, 1, 1], act="Relu")
    x = np.abs(feeds["x"])  # post-ReLU activations, as in a ResNet
    feeds = {"x": x}
    assert_matches_ort(model, feeds, rtol=0, atol=1e-4)


@pytest.mark.parametrize("n,c,h,w", [
    (1, 32, 30, 30),   # one block: the transforms and GEMMs thread inside it
    (6, 16, 64, 61),   # many blocks spread over the threads
    # Block counts are made even and block sizes differ by at most one tile
    # row (two threads get equal shares): 14 tile rows, 3 -> 4 blocks of 3-4
    # rows (a ResNet-18 first stage plane); 60 rows, 5 -> 6 blocks; 2 blocks
    # of 7 rows, each threaded inside.
    (1, 64, 56, 56),
    (4, 16, 60, 56),
    (1, 16, 55, 55),
])
def test_winograd43_threads_bit_identical(rng, n, c, h, w):
    model, feeds = conv3x3(rng, n, c, h, w, 24, [1, 1, 1, 1], act="Relu")
    assert_same_bits_across_threads(model, feeds)
    assert_matches_ort(model, feeds, **TOL)
