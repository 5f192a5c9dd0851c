"""The row-separable 2-D float32 MaxPool path (csrc/ops/pool.cpp, max2d_plane)
against onnxruntime, exactly: randomized odd plane sizes, 3x3 stride 1/2
(its unrolled branch) and other windows, asymmetric pads, ceil_mode windows
that start in the padding, all-negative inputs (padding must never win),
batch > 1, 1-3 threads bit-identical."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, assert_same_bits_across_threads, make_model


def pool_model(x, **attrs):
    node = helper.make_node("MaxPool", ["x"], ["y"], **attrs)
    return make_model([node], {"x": x}, ["y"], opset=19), {"x": x}


def random_window(rng):
    if rng.random() < 0.5:
        k, s, d = [3, 3], [int(rng.integers(1, 3))] * 2, [1, 1]
    else:
        k = [int(v) for v in rng.integers(1, 5, 2)]
        s = [int(v) for v in rng.integers(1, 4, 2)]
        d = [int(v) for v in rng.integers(1, 3, 2)]
    pads = [int(rng.integers(0, (k[i % 2] - 1) * d[i % 2] // 2 + 1)) for i in range(4)]
    h, w = (int(v) for v in rng.integers(max(k) * max(d), 40, 2))
    return (int(rng.integers(1, 3)), int(rng.integers(1, 6)), h, w), k, s, d, pads


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ceil_mode", [0, 1])
def test_maxpool2d_random(isa, seed, ceil_mode):
    rng = np.random.default_rng(seed)
    shape, k, s, d, pads = random_window(rng)
    x = rng.standard_normal(shape).astype(np.float32)
    if seed % 3 == 0:
        x = -np.abs(x) - 1.0
    model, feeds = pool_model(x, kernel_shape=k, strides=s, dilations=d, pads=pads, ceil_mode=ceil_mode)
    assert_matches_ort(model, feeds, rtol=0, atol=0)


@pytest.mark.parametrize("stride", [1, 2])
def test_maxpool2d_resnet_stem(isa, rng, stride):
    x = -np.abs(rng.standard_normal((2, 3, 23, 17)).astype(np.float32))
    model, feeds = pool_model(x, kernel_shape=[3, 3], strides=[stride] * 2, pads=[1, 1, 1, 1])
    assert_matches_ort(model, feeds, rtol=0, atol=0)


def test_maxpool2d_threads_bit_identical(rng):
    x = rng.standard_normal((2, 7, 33, 29)).astype(np.float32)
    model, feeds = pool_model(x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    assert_same_bits_across_threads(model, feeds)
