"""The separable float32 2-D Max/AveragePool kernels (kernels/*/pool_*.cpp,
table entry pool2d_f32) against onnxruntime on randomized windows that reach
each of their paths: two output rows per register (rows of <= 8 outputs),
strips (rows reduced horizontally once: rows of <= 32 outputs), row by row
(wide rows, 7x7 windows on 7x7 planes, planes taller than the strip buffer),
and the fallbacks (stride 3, more than 16 taps). Widths shorter than a vector
(1..7), just above (9, 17, 33), tall/narrow and size-1 planes, asymmetric
pads up to kernel - 1, ceil_mode, batch > 1, every ISA, 1 and 2 threads.
MaxPool must match exactly; inputs are far below zero (a padding value of 0
or a window reading outside the row would win) or hold a few huge values."""
import numpy as np
import pytest
from onnx import helper

from oracle import assert_matches_ort, assert_same_bits_across_threads, make_model

WIDTHS = [1, 2, 3, 4, 5, 6, 7, 9, 13, 17, 27, 33, 56, 70]


def pool_model(op, x, **attrs):
    node = helper.make_node(op, ["x"], ["y"], **attrs)
    return make_model([node], {"x": x}, ["y"], opset=19), {"x": x}


def random_case(rng):
    k = [int(rng.choice([1, 2, 3, 5])), int(rng.choice([2, 3, 5]))]
    if rng.random() < 0.1:
        k[1] = int(rng.choice([7, 16, 17]))
    s = [int(rng.choice([1, 2, 3])), int(rng.choice([1, 2, 2, 3]))]
    pads = [int(rng.integers(0, k[i % 2])) for i in range(4)]
    w = int(rng.choice(WIDTHS))
    h = int(rng.choice([1, 2, 5, 6, 13, 28, 200])) if rng.random() < 0.3 else int(rng.integers(1, 30))
    # the window must fit the padded plane
    h = max(h, k[0] - pads[0] - pads[2])
    w = max(w, k[1] - pads[1] - pads[3])
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 6))
    return (n, c, h, w), k, s, pads


def random_input(rng, shape, seed):
    x = rng.standard_normal(shape).astype(np.float32)
    if seed % 3 == 0:
        x = -np.abs(x) * 1e30 - 1e30  # far below zero: padding must never win
    elif seed % 3 == 1:
        x[rng.random(shape) < 0.05] = 3e38  # a few huge values
    return x


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_separable_random(isa, seed, op):
    rng = np.random.default_rng(1000 + seed)
    shape, k, s, pads = random_case(rng)
    x = random_input(rng, shape, seed)
    attrs = dict(kernel_shape=k, strides=s, pads=pads, ceil_mode=int(seed % 2))
    if op == "AveragePool":
        attrs["count_include_pad"] = int(seed // 2 % 2)
        x = np.clip(x, -1e30, 1e30)  # sums stay finite
    model, feeds = pool_model(op, x, **attrs)
    tol = dict(rtol=0, atol=0) if op == "MaxPool" else dict(rtol=1e-5, atol=1e-6)
    assert_matches_ort(model, feeds, threads=1 + seed % 2, **tol)


# The shapes of the models' pools (GoogLeNet, SqueezeNet, ResNet stems, the
# average pools before the classifier), with a few channels.
MODEL_POOLS = [
    ((1, 3, 112, 112), [3, 3], [2, 2], [1, 1, 1, 1], 0),
    ((1, 3, 111, 111), [3, 3], [2, 2], [0, 0, 0, 0], 1),
    ((1, 3, 55, 55), [3, 3], [2, 2], [0, 0, 0, 0], 1),
    ((1, 3, 27, 27), [3, 3], [1, 1], [1, 1, 1, 1], 0),
    ((1, 3, 27, 27), [3, 3], [2, 2], [0, 0, 0, 0], 1),
    ((1, 3, 28, 28), [3, 3], [1, 1], [1, 1, 1, 1], 0),
    ((1, 3, 14, 14), [3, 3], [2, 2], [0, 0, 1, 1], 0),
    ((1, 3, 13, 13), [3, 3], [1, 1], [1, 1, 1, 1], 0),
    ((1, 3, 13, 13), [3, 3], [2, 2], [0, 0, 0, 0], 1),
    ((1, 3, 7, 7), [3, 3], [1, 1], [1, 1, 1, 1], 0),
    ((1, 3, 6, 6), [3, 3], [1, 1], [1, 1, 1, 1], 0),
    ((1, 3, 7, 7), [7, 7], [1, 1], [0, 0, 0, 0], 0),
    ((1, 3, 6, 6), [6, 6], [1, 1], [0, 0, 1, 1], 0),
    ((2, 3, 28, 28), [2, 2], [2, 2], [0, 0, 0, 0], 0),
    ((2, 3, 27, 27), [2, 2], [2, 2], [0, 0, 0, 0], 1),
]


@pytest.mark.parametrize("case", MODEL_POOLS)
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_separable_model_shapes(isa, rng, case, op):
    shape, k, s, pads, ceil = case
    x = -np.abs(rng.standard_normal(shape).astype(np.float32)) - 100.0
    model, feeds = pool_model(op, x, kernel_shape=k, strides=s, pads=pads, ceil_mode=ceil)
    tol = dict(rtol=0, atol=0) if op == "MaxPool" else dict(rtol=1e-5, atol=1e-5)
    assert_matches_ort(model, feeds, **tol)


@pytest.mark.parametrize("shape,k,s,pads", [
    ((2, 7, 6, 6), [3, 3], [1, 1], [1, 1, 1, 1]),      # two rows per register
    ((2, 7, 27, 27), [3, 3], [2, 2], [0, 0, 0, 0]),    # strips
    ((1, 5, 40, 112), [3, 3], [2, 2], [1, 1, 1, 1]),   # row by row
])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_separable_threads_bit_identical(rng, shape, k, s, pads, op):
    x = rng.standard_normal(shape).astype(np.float32)
    model, feeds = pool_model(op, x, kernel_shape=k, strides=s, pads=pads)
    assert_same_bits_across_threads(model, feeds)
