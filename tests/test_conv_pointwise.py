"""1x1 Conv with few channels (the AVX-512 direct kernel, run_direct1x1 in
ops/conv.cpp; the GEMM elsewhere) against onnxruntime: output channels
around the 8-row tiles (1..17), pixel counts around the 32-pixel steps and
256-pixel tasks, groups, batches, bias or none, constant or computed
weights, fused activations (in the kernel: Relu, Clip, LeakyRelu; after it:
Sigmoid), every ISA, 1 and 2 threads, and the size limits (64 / 65)."""
import numpy as np
import pytest
from onnx import helper

from oracle import assert_matches_ort, make_model

TOL = dict(rtol=1e-4, atol=1e-4)
ACTS = [None, ("Relu", {}), ("Clip", {"lo": -0.3, "hi": 0.4}), ("LeakyRelu", {"alpha": 0.1}), ("Sigmoid", {})]


def pw_model(x, w, b, act, group, const_w=True):
    nodes = [helper.make_node("Conv", ["x", "w"] + (["b"] if b is not None else []), ["y"], kernel_shape=[1, 1],
                              group=group)]
    feeds, inits, out = {"x": x}, {}, "y"
    (inits if const_w else feeds)["w"] = w
    if b is not None:
        inits["b"] = b
    if act is not None:
        name, attrs = act
        if name == "Clip":
            nodes.append(helper.make_node("Clip", ["y", "lo", "hi"], ["z"]))
            inits["lo"], inits["hi"] = np.float32(attrs["lo"]), np.float32(attrs["hi"])
        else:
            nodes.append(helper.make_node(name, ["y"], ["z"], **attrs))
        out = "z"
    return make_model(nodes, feeds, [out], inits, opset=13), feeds


@pytest.mark.parametrize("trial", range(10))
def test_pointwise_random(isa, rng, trial):
    k = int(rng.choice([1, 3, 8, 16, 24, 33, 64]))
    m = int(rng.choice([1, 2, 5, 7, 8, 9, 15, 16, 17, 32, 64]))
    hw = [(1, 1), (1, 17), (3, 11), (4, 8), (5, 13), (7, 7), (16, 17), (13, 23)][trial % 8]
    n = int(rng.integers(1, 3))
    x = rng.standard_normal((n, k, *hw)).astype(np.float32)
    w = (rng.standard_normal((m, k, 1, 1)) / np.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32) if trial % 3 else None
    model, feeds = pw_model(x, w, b, ACTS[trial % len(ACTS)], 1, const_w=trial % 4 != 0)
    for threads in (1, 2):
        assert_matches_ort(model, feeds, threads=threads, **TOL)


@pytest.mark.parametrize("k,m,g", [(64, 64, 1), (65, 16, 1), (16, 65, 1), (12, 20, 2), (30, 9, 3), (32, 16, 1)])
@pytest.mark.parametrize("act", [None, ("Clip", {"lo": 0.0, "hi": 6.0})])
def test_pointwise_limits_and_groups(isa, rng, k, m, g, act):
    x = rng.standard_normal((2, k, 9, 31)).astype(np.float32)  # 279 pixels: one full task and a tail
    w = (rng.standard_normal((m, k // g, 1, 1)) / np.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    model, feeds = pw_model(x, w, b, act, g)
    for threads in (1, 2):
        assert_matches_ort(model, feeds, threads=threads, **TOL)


def test_pointwise_empty_batch(isa, rng):
    x = rng.standard_normal((0, 8, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 8, 1, 1)).astype(np.float32)
    model, feeds = pw_model(x, w, None, None, 1)
    assert_matches_ort(model, feeds, **TOL)
