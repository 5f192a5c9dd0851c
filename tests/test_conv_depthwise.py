"""Depthwise Conv (group == C) against onnxruntime on randomized shapes: every
ISA's plane kernel (AVX-512: masked loads, stride 1/2 along W, 8-row blocks;
AVX2: padded copy; others fall back), widths around the 16-lane chunks, rows
around the 8-row blocks, strides/dilations/asymmetric pads, kernel sizes
other than 3x3, fused activations applied inside the kernel (Relu, Clip,
LeakyRelu) and outside it (Sigmoid), 1 and 2 threads."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, make_model

TOL = dict(rtol=1e-4, atol=1e-4)


def dw_model(x, w, b, act=None, **attrs):
    c = x.shape[1] if x.ndim > 1 else 0
    nodes = [helper.make_node("Conv", ["x", "w"] + (["b"] if b is not None else []), ["y"], group=c, **attrs)]
    out, inits = "y", {"w": w}
    if b is not None:
        inits["b"] = b
    if act is not None:
        name, aattrs, extra = act
        nodes.append(helper.make_node(name, ["y"] + list(extra), ["z"], **aattrs))
        for k in extra:
            inits[k] = np.array(extra[k], np.float32)
        out = "z"
    return make_model(nodes, {"x": x}, [out], inits, opset=13)


ACTS = {
    "none": None,
    "relu": ("Relu", {}, {}),
    "clip": ("Clip", {}, {"lo": 0.0, "hi": 0.5}),
    "leaky": ("LeakyRelu", {"alpha": 0.07}, {}),
    "sigmoid": ("Sigmoid", {}, {}),
}


def random_case(rng, stride_w):
    """A 2-D depthwise geometry with odd sizes; output width often just off a multiple of 16."""
    k = [int(rng.choice([1, 2, 3, 3, 3, 5])), int(rng.choice([1, 2, 3, 3, 3, 5, 7]))]
    s = [int(rng.integers(1, 3)), stride_w]
    d = [int(rng.choice([1, 1, 2])), int(rng.choice([1, 1, 2]))]
    pads = [int(rng.integers(0, k[0])), int(rng.integers(0, k[1])), int(rng.integers(0, k[0])),
            int(rng.integers(0, k[1]))]
    ow = int(rng.choice([1, 2, 7, 9, 15, 16, 17, 31, 33, 40]))
    oh = int(rng.integers(1, 20))
    ext = [(k[i] - 1) * d[i] + 1 for i in range(2)]
    h = max(1, (oh - 1) * s[0] + ext[0] - pads[0] - pads[2])
    w = max(1, (ow - 1) * s[1] + ext[1] - pads[1] - pads[3])
    # keep the window no larger than the padded input
    h = max(h, ext[0] - pads[0] - pads[2])
    w = max(w, ext[1] - pads[1] - pads[3])
    return k, s, d, pads, h, w


@pytest.mark.parametrize("stride_w", [1, 2, 3])
@pytest.mark.parametrize("trial", range(6))
def test_depthwise_random(isa, rng, stride_w, trial):
    k, s, d, pads, h, w = random_case(rng, stride_w)
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 6))
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((c, 1, *k)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32) if trial % 2 else None
    act = ACTS[list(ACTS)[trial % len(ACTS)]]
    model = dw_model(x, wt, b, act, kernel_shape=k, strides=s, dilations=d, pads=pads)
    assert_matches_ort(model, {"x": x}, threads=1 + trial % 2, **TOL)


@pytest.mark.parametrize("hw,s", [((7, 7), 1), ((14, 14), 2), ((13, 33), 1), ((9, 47), 2), ((16, 16), 1),
                                  ((17, 17), 2), ((1, 1), 1), ((3, 70), 1), ((2, 5), 2)])
@pytest.mark.parametrize("act", ["none", "relu", "clip", "leaky", "sigmoid"])
def test_depthwise_mobilenet_like(isa, rng, hw, s, act):
    """3x3, pads 1: the MobileNet layer, on widths around the chunks and heights around the row blocks."""
    c = 19
    x = rng.standard_normal((1, c, *hw)).astype(np.float32)
    wt = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    model = dw_model(x, wt, b, ACTS[act], kernel_shape=[3, 3], strides=[s, s], pads=[1, 1, 1, 1])
    for threads in (1, 2):
        assert_matches_ort(model, {"x": x}, threads=threads, **TOL)


def test_depthwise_empty(isa, rng):
    wt = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    x = rng.standard_normal((0, 3, 5, 5)).astype(np.float32)
    assert_matches_ort(dw_model(x, wt, None, None, kernel_shape=[3, 3], pads=[1, 1, 1, 1]), {"x": x}, **TOL)


@pytest.mark.parametrize("k", [1, 3, 4])
def test_depthwise_1d_and_3d(isa, rng, k):
    x = rng.standard_normal((2, 4, 23)).astype(np.float32)
    wt = rng.standard_normal((4, 1, k)).astype(np.float32)
    assert_matches_ort(dw_model(x, wt, None, ACTS["relu"], kernel_shape=[k], strides=[2], pads=[1, 1]), {"x": x},
                       **TOL)
    x3 = rng.standard_normal((1, 3, 4, 6, 9)).astype(np.float32)
    w3 = rng.standard_normal((3, 1, 2, k, 3)).astype(np.float32)
    assert_matches_ort(dw_model(x3, w3, None, ACTS["clip"], kernel_shape=[2, k, 3], pads=[1, 0, 1, 0, 1, 1]),
                       {"x": x3}, **TOL)


@pytest.mark.parametrize("hw,k,d", [((7, 7), 3, 1), ((14, 14), 3, 1), ((5, 9), 5, 1), ((8, 8), 3, 2), ((11, 13), 1, 1),
                                    ((16, 16), 3, 1), ((2, 3), 3, 1), ((6, 5), [3, 1], 1)])
def test_depthwise_same_size_planes(isa, rng, hw, k, d):
    """Stride 1, output size == input size, many channels: the flat small-plane path."""
    kh, kw = (k, k) if isinstance(k, int) else k
    ph, pw = (kh - 1) * d // 2, (kw - 1) * d // 2
    c = 23
    x = rng.standard_normal((2, c, *hw)).astype(np.float32)
    wt = rng.standard_normal((c, 1, kh, kw)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    model = dw_model(x, wt, b, ACTS["clip"], kernel_shape=[kh, kw], dilations=[d, d], pads=[ph, pw, ph, pw])
    for threads in (1, 2):
        assert_matches_ort(model, {"x": x}, threads=threads, **TOL)


@pytest.mark.parametrize("hw,s", [((7, 7), 1), ((14, 14), 1), ((28, 28), 2), ((56, 56), 1)])
def test_depthwise_same_bits_any_thread_count(isa, rng, hw, s):
    """Planes are batched per call differently on 1, 2 and 3 threads (and the
    flat path needs 4 planes in a call): the bits must not change."""
    c = 37
    x = rng.standard_normal((1, c, *hw)).astype(np.float32)
    wt = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    data = dw_model(x, wt, b, ACTS["clip"], kernel_shape=[3, 3], strides=[s, s], pads=[1, 1, 1, 1]).SerializeToString()
    outs = []
    for threads in (1, 2, 3):
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = threads
        outs.append(pyengine.InferenceSession(data, so).run(None, {"x": x})[0])
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize("hw,pads", [((112, 112), [1, 1, 1, 1]), ((67, 101), [0, 1, 1, 0]), ((9, 113), [1, 0, 0, 1]),
                                     ((30, 66), [0, 0, 0, 0])])
def test_depthwise_wide_rows_stride_2(isa, rng, hw, pads):
    """Stride 2 with more than 32 output columns: the AVX-512 kernel's
    masked loads now take these rows too (the AVX2 kernel copied the plane)."""
    c = 5
    x = rng.standard_normal((2, c, *hw)).astype(np.float32)
    wt = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    model = dw_model(x, wt, b, ACTS["clip"], kernel_shape=[3, 3], strides=[2, 2], pads=pads)
    for threads in (1, 2):
        assert_matches_ort(model, {"x": x}, threads=threads, **TOL)
