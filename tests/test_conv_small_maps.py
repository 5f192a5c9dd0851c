"""Convolutions on small output planes through the transposed product
(ops/conv_transposed_gemm.cpp): C^T[pixels, Cout] = cols^T @ W^T, then back
to NCHW with the residual sum and the activation. ConvKernel takes it for
constant weights, one group, no Winograd, output planes up to 14 x 14 (196
pixels) on the AVX-512 table and 7 x 7 (49) on the others;
PYENGINE_CONV_TGEMM=<max pixels> overrides the limit (0: never), which the
tests use to run the same shapes through both paths on every ISA.

Shapes avoid the other small-layer paths (direct 1x1 below 64 channels each
side, the small-cnn direct kernel for stride-1 non-1x1 convs with a
reduction <= 1024): pointwise and strided 1x1, strided 3x3, 3x3 stride 1
with too few tiles for Winograd; odd output channel counts (1, 15, 17, 33)
that leave a partial 16/32-lane panel; batch > 1; planes on both sides of
the thresholds."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, assert_same_bits_across_threads, make_model

TOL = dict(rtol=1e-4, atol=1e-4)
ON = "100000"  # PYENGINE_CONV_TGEMM: any plane


def conv_model(rng, n, c, h, w, m, k, s, pads, bias=True, act=None, residual=False):
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    # He-scaled weights (a trained, BN-folded network): O(1) outputs
    inits = {"w": (rng.standard_normal((m, c, k, k)) * np.sqrt(2.0 / (c * k * k))).astype(np.float32)}
    ins = ["x", "w"]
    if bias:
        inits["b"] = (rng.standard_normal(m) * 0.5).astype(np.float32)
        ins.append("b")
    nodes = [helper.make_node("Conv", ins, ["c"], kernel_shape=[k, k], strides=[s, s], pads=pads)]
    feeds = {"x": x}
    out = "c"
    if residual:
        oh = (h + pads[0] + pads[2] - k) // s + 1
        ow = (w + pads[1] + pads[3] - k) // s + 1
        feeds["z"] = rng.standard_normal((n, m, oh, ow)).astype(np.float32)
        nodes.append(helper.make_node("Add", ["c", "z"], ["a"]))
        out = "a"
    if act:
        kw = {"alpha": 0.1} if act == "LeakyRelu" else {}
        nodes.append(helper.make_node(act, [out], ["y"], **kw))
        out = "y"
    return make_model(nodes, feeds, [out], inits, opset=17), feeds


CASES = [
    # (n, c, h, w, m, k, s, pads)
    (1, 70, 7, 7, 33, 1, 1, [0] * 4),      # 1x1 on 7x7: 32 + 1 output channels
    (1, 70, 7, 7, 1, 1, 1, [0] * 4),       # one output channel
    (2, 70, 7, 7, 15, 1, 1, [0] * 4),      # under one vector, two images
    (3, 65, 6, 8, 17, 1, 1, [0] * 4),      # 48 pixels: 4 full 12-row tiles
    (1, 70, 14, 14, 48, 1, 1, [0] * 4),    # 196 pixels (AVX-512 limit)
    (1, 70, 15, 14, 48, 1, 1, [0] * 4),    # 210 pixels: above every limit
    (1, 80, 13, 13, 40, 1, 2, [0] * 4),    # 1x1 stride 2 (im2col)
    (3, 24, 13, 13, 40, 3, 2, [1] * 4),    # strided 3x3, 3 images in one GEMM
    (1, 24, 28, 28, 48, 3, 2, [1] * 4),    # strided 3x3 to 14x14
    (2, 20, 11, 9, 33, 3, 2, [0, 1, 2, 1]),  # asymmetric pads, odd plane
    (1, 130, 7, 7, 33, 3, 1, [1] * 4),     # 3x3 s1 on 7x7, reduction 1170
    (1, 120, 5, 6, 64, 3, 1, [1] * 4),     # 30 pixels, two full panels
]


def ids(case):
    n, c, h, w, m, k, s, _ = case
    return f"n{n}_{c}x{h}x{w}_to{m}_k{k}s{s}"


@pytest.mark.parametrize("case", CASES, ids=ids)
@pytest.mark.parametrize("forced", [False, True])
def test_matches_ort(isa, rng, monkeypatch, case, forced):
    if forced:
        monkeypatch.setenv("PYENGINE_CONV_TGEMM", ON)
    n, c, h, w, m, k, s, pads = case
    model, feeds = conv_model(rng, n, c, h, w, m, k, s, pads, bias=m % 2 == 1, act="Relu")
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("act", [None, "Sigmoid", "LeakyRelu", "Clip"])
@pytest.mark.parametrize("case", [CASES[0], CASES[7]], ids=ids)
def test_activations(isa, rng, monkeypatch, case, act):
    monkeypatch.setenv("PYENGINE_CONV_TGEMM", ON)
    n, c, h, w, m, k, s, pads = case
    if act == "Clip":  # Clip with constant bounds (opset 11+: inputs)
        model, feeds = conv_model(rng, n, c, h, w, m, k, s, pads)
        model.graph.node.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
        model.graph.initializer.extend([helper.make_tensor("lo", 1, [], [-0.5]), helper.make_tensor("hi", 1, [], [0.7])])
        model.graph.output[0].name = "y"
    else:
        model, feeds = conv_model(rng, n, c, h, w, m, k, s, pads, act=act)
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4], CASES[7], CASES[9], CASES[10]], ids=ids)
@pytest.mark.parametrize("bias", [True, False])
def test_residual_sum(isa, rng, monkeypatch, case, bias):
    """Conv -> Add(z) -> Relu fused into one Conv: the sum is added while
    transposing back, the activation after it."""
    monkeypatch.setenv("PYENGINE_CONV_TGEMM", ON)
    n, c, h, w, m, k, s, pads = case
    model, feeds = conv_model(rng, n, c, h, w, m, k, s, pads, bias=bias, act="Relu", residual=True)
    ops = [nd.op_type for nd in pyengine.InferenceSession(model.SerializeToString())._graph.nodes]
    assert ops == ["Conv"]
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("case", [CASES[0], CASES[4], CASES[7], CASES[10]], ids=ids)
@pytest.mark.parametrize("residual", [False, True])
def test_threads_bit_identical(isa, rng, case, residual):
    n, c, h, w, m, k, s, pads = case
    model, feeds = conv_model(rng, n, c, h, w, m, k, s, pads, act="Relu", residual=residual)
    assert_same_bits_across_threads(model, feeds, threads=(1, 2, 3))


def test_same_as_other_path_resnet_stage(rng, monkeypatch):
    """ResNet-50's last-stage shapes (512 and 2048 channels on 7x7): the
    transposed product against onnxruntime with a 1e-4 bound (long
    reductions: 4608 terms), one output channel block of each."""
    for c, m, k in [(512, 96, 1), (2048, 64, 1), (512, 64, 3)]:
        model, feeds = conv_model(rng, 1, c, 7, 7, m, k, 1, [k // 2] * 4, act="Relu")
        assert_matches_ort(model, feeds, **TOL)


def test_override_off(rng, monkeypatch):
    monkeypatch.setenv("PYENGINE_CONV_TGEMM", "0")
    model, feeds = conv_model(rng, 1, 70, 7, 7, 33, 1, 1, [0] * 4, act="Relu")
    assert_matches_ort(model, feeds, **TOL)
