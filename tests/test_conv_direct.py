"""The direct convolution path of small networks (ops/conv_direct.cpp:
stride 1, 1-D/2-D, one group, constant weights, small per-image work)
against onnxruntime: both layouts (positions in lanes for few output
channels, channels in lanes for 16+), tails of 1..17 channels and positions,
asymmetric and large pads, dilations, size-1 and empty dims, bias or not,
fused activations, every ISA, 1 and 2 threads (including the split of one
image's channels), bit-identical results across thread counts, inputs
against a guard page. Also the float32 row path of MaxPool/AveragePool."""
import ctypes
import mmap

import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, assert_same_bits_across_threads, make_model

TOL = dict(rtol=1e-4, atol=1e-4)


def conv_model(x, w, b=None, act=None, **attrs):
    inputs = ["x", "w"] + (["b"] if b is not None else [])
    nodes = [helper.make_node("Conv", inputs, ["y"], **attrs)]
    out = "y"
    if act is not None:
        nodes.append(helper.make_node(act[0], ["y"], ["z"], **act[1]))
        out = "z"
    inits = {"w": w}
    if b is not None:
        inits["b"] = b
    return make_model(nodes, {"x": x}, [out], inits), {"x": x}


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def random_case(rng, chan):
    """A random shape on the direct path: few output channels on larger planes
    (positions in lanes) or 16+ channels on small planes (channels in lanes)."""
    k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    if k == (1, 1):
        k = (1, 2)
    d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pads = [int(rng.integers(0, 4)) for _ in range(4)]
    if chan:
        m, h, w = int(rng.integers(16, 70)), int(rng.integers(1, 10)), int(rng.integers(1, 10))
    else:
        m, h, w = int(rng.integers(1, 18)), int(rng.integers(1, 30)), int(rng.integers(1, 30))
    # keep the output non-empty
    h = max(h, (k[0] - 1) * d[0] + 1 - pads[0] - pads[2])
    w = max(w, (k[1] - 1) * d[1] + 1 - pads[1] - pads[3])
    n, c = int(rng.integers(1, 4)), int(rng.integers(1, 8))
    return n, c, h, w, m, k, d, pads


@pytest.mark.parametrize("chan", [False, True], ids=["pos_lanes", "chan_lanes"])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threads", [1, 2])
def test_direct_random(isa, chan, seed, threads):
    rng = np.random.default_rng(1000 + seed + 100 * chan)
    n, c, h, w_, m, k, d, pads = random_case(rng, chan)
    x = rand(rng, n, c, h, w_)
    w = rand(rng, m, c, *k)
    b = rand(rng, m) if seed % 2 else None
    model, feeds = conv_model(x, w, b, kernel_shape=list(k), dilations=list(d), pads=pads)
    assert_matches_ort(model, feeds, threads=threads, **TOL)


# (N, C, H, W, M, k, pads): the small-network layers and tails around the vector widths
CASES = [
    (1, 1, 28, 28, 6, 5, [2, 2, 2, 2]),    # LeNet conv1
    (2, 6, 14, 14, 16, 5, [2, 2, 2, 2]),   # LeNet conv2
    (1, 1, 8, 8, 32, 3, [1, 1, 1, 1]),     # digits CNN
    (3, 32, 8, 8, 64, 3, [1, 1, 1, 1]),
    (1, 64, 4, 4, 64, 3, [1, 1, 1, 1]),
    (1, 3, 1, 1, 17, 3, [1, 1, 1, 1]),     # 1x1 plane, all taps but one padding
    (2, 2, 1, 17, 9, 3, [1, 0, 1, 0]),     # one row, 17 positions
    (1, 5, 9, 1, 33, 3, [0, 1, 2, 1]),     # one column
    (1, 4, 5, 7, 1, 2, [0, 0, 0, 0]),      # one output channel, no pads
    (1, 2, 4, 4, 3, 3, [4, 0, 0, 4]),      # pads larger than the kernel
    (0, 3, 6, 6, 4, 3, [1, 1, 1, 1]),      # empty batch
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("threads", [1, 2])
def test_direct_cases(isa, rng, case, threads):
    n, c, h, w_, m, k, pads = case
    x = rand(rng, n, c, h, w_)
    # weights scaled as trained networks' are (outputs of order 1): the
    # digits shapes take the Winograd path (test_conv_wino_small.py), whose
    # error is relative to the output's scale
    w = rand(rng, m, c, k, k) / np.float32(np.sqrt(c * k * k))
    model, feeds = conv_model(x, w, rand(rng, m), kernel_shape=[k, k], pads=pads)
    assert_matches_ort(model, feeds, threads=threads, **TOL)


@pytest.mark.parametrize("shape,k,d,pads", [((2, 3, 17), 3, 1, [1, 2]), ((1, 1, 5), 5, 1, [2, 2]),
                                            ((1, 20, 9), 4, 2, [0, 3])])
def test_direct_1d(isa, rng, shape, k, d, pads):
    x = rand(rng, *shape)
    model, feeds = conv_model(x, rand(rng, 7, shape[1], k), rand(rng, 7), kernel_shape=[k], dilations=[d], pads=pads)
    assert_matches_ort(model, feeds, **TOL)


ACTS = [("Relu", {}), ("LeakyRelu", {"alpha": 0.2}), ("Sigmoid", {}), ("Tanh", {})]


@pytest.mark.parametrize("act", ACTS, ids=[a[0] for a in ACTS])
@pytest.mark.parametrize("m", [6, 32])
def test_direct_fused_activation(isa, rng, act, m):
    x = rand(rng, 2, 3, 7, 9)
    model, feeds = conv_model(x, rand(rng, m, 3, 3, 3), rand(rng, m), act=act, pads=[1, 1, 1, 1])
    sess = pyengine.InferenceSession(model.SerializeToString())
    assert sess._graph.op_counts() == {"Conv": 1}, f"activation not fused: {sess._graph.op_counts()}"
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("case", [
    (1, 8, 24, 24, 64, 3, [1, 1, 1, 1]),   # one image, channels split over the threads
    (1, 6, 30, 30, 40, 3, [1, 1, 1, 1]),
    (5, 6, 14, 14, 16, 5, [2, 2, 2, 2]),   # images spread
    (3, 32, 8, 8, 64, 3, [1, 1, 1, 1]),
])
def test_direct_threads_bit_identical(isa, rng, case):
    n, c, h, w_, m, k, pads = case
    x = rand(rng, n, c, h, w_)
    w = rand(rng, m, c, k, k) / np.float32(np.sqrt(c * k * k))  # as in test_direct_cases
    model, feeds = conv_model(x, w, rand(rng, m), kernel_shape=[k, k], pads=pads)
    assert_same_bits_across_threads(model, feeds)
    assert_matches_ort(model, feeds, threads=2, **TOL)


_PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def guarded(values: np.ndarray) -> np.ndarray:
    """A float32 copy of `values` ending right before a PROT_NONE page."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    pages = (values.nbytes + _PAGE - 1) // _PAGE
    buf = mmap.mmap(-1, (pages + 1) * _PAGE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    if _libc.mprotect(addr + pages * _PAGE, _PAGE, 0) != 0:
        pytest.skip("mprotect unavailable")
    arr = np.frombuffer(buf, dtype=np.float32, count=values.size, offset=pages * _PAGE - values.nbytes)
    arr = arr.reshape(values.shape)
    arr[...] = values
    return arr


@pytest.mark.parametrize("op,case", [
    ("Conv", (1, 1, 28, 28, 6, 5, [2, 2, 2, 2])),
    ("Conv", (2, 5, 3, 7, 33, 3, [0, 2, 1, 1])),
    ("MaxPool", (2, 3, 9, 11)),
    ("AveragePool", (1, 2, 7, 5)),
])
def test_inputs_against_guard_page(isa, rng, op, case):
    """Inputs end at an unreadable page: a read past them crashes the test."""
    if op == "Conv":
        n, c, h, w_, m, k, pads = case
        x = guarded(rand(rng, n, c, h, w_))
        model, _ = conv_model(x, rand(rng, m, c, k, k), rand(rng, m), kernel_shape=[k, k], pads=pads)
    else:
        x = guarded(rand(rng, *case))
        model = make_model([helper.make_node(op, ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 2])],
                           {"x": x}, ["y"])
    assert_matches_ort(model, {"x": x}, threads=2, **TOL)


# --- float32 MaxPool / AveragePool row path ---

def random_pool(rng):
    k = [int(rng.integers(1, 5)), int(rng.integers(1, 5))]
    s = [int(rng.integers(1, 4)), int(rng.integers(1, 4))]
    pads = [int(rng.integers(0, k[0])), int(rng.integers(0, k[1]))] * 2
    pads[2], pads[3] = int(rng.integers(0, k[0])), int(rng.integers(0, k[1]))
    h, w = int(rng.integers(k[0], 20)), int(rng.integers(k[1], 40))
    return (int(rng.integers(1, 4)), int(rng.integers(1, 6)), h, w), k, s, pads


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("threads", [1, 2])
def test_pool_rows_random(isa, op, seed, threads):
    rng = np.random.default_rng(2000 + seed)
    shape, k, s, pads = random_pool(rng)
    attrs = dict(kernel_shape=k, strides=s, pads=pads, ceil_mode=seed % 2)
    if op == "AveragePool":
        attrs["count_include_pad"] = (seed // 2) % 2
    x = rand(rng, *shape)
    model = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": x}, ["y"], opset=19)
    assert_matches_ort(model, {"x": x}, threads=threads, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("shape", [(1, 6, 28, 28), (64, 16, 14, 14), (3, 64, 8, 8), (1, 1, 1, 1), (2, 3, 1, 17),
                                   (1, 2, 17, 1), (0, 3, 4, 4), (2, 5, 33)])
def test_pool_2x2(isa, rng, op, shape):
    x = rand(rng, *shape)
    r = len(shape) - 2
    model = make_model([helper.make_node(op, ["x"], ["y"], kernel_shape=[min(2, d) for d in shape[2:]],
                                         strides=[2] * r)], {"x": x}, ["y"])
    assert_matches_ort(model, {"x": x}, threads=2, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("m", [5, 48])
def test_direct_bias_computed(isa, rng, m):
    """Constant weights, bias fed at run time (copied per run, not packed)."""
    x, w, b = rand(rng, 2, 3, 6, 7), rand(rng, m, 3, 3, 3), rand(rng, m)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])
    model = make_model([node], {"x": x, "b": b}, ["y"], {"w": w})
    assert_matches_ort(model, {"x": x, "b": b}, threads=2, **TOL)
