"""Gemm and MatMul against onnxruntime, on every ISA, with odd sizes, size-1
and empty dims, all transposes, every C broadcast, and fused epilogues."""
import numpy as np
import pytest
from onnx import helper

from oracle import assert_matches_ort, make_model

SIZES = [(1, 1, 1), (3, 5, 7), (17, 13, 9), (64, 33, 31), (1, 300, 129), (6, 16, 16), (7, 0, 5), (0, 4, 3)]


@pytest.mark.parametrize("m,k,n", SIZES)
@pytest.mark.parametrize("ta,tb", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("const_b", [False, True])
def test_gemm(isa, rng, m, k, n, ta, tb, const_b):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    c = rng.standard_normal((n,)).astype(np.float32)
    node = helper.make_node("Gemm", ["a", "b", "c"], ["y"], transA=ta, transB=tb, alpha=0.7, beta=1.3)
    feeds = {"a": a} if const_b else {"a": a, "b": b}
    model = make_model([node], feeds, ["y"], {"c": c, **({"b": b} if const_b else {})})
    assert_matches_ort(model, feeds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cshape", [None, (), (1,), (5,), (1, 5), (4, 1), (4, 5)])
def test_gemm_c_broadcast(isa, rng, cshape):
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((3, 5)).astype(np.float32)
    inputs = ["a", "b"] + (["c"] if cshape is not None else [])
    inits = {"c": rng.standard_normal(cshape).astype(np.float32)} if cshape is not None else {}
    model = make_model([helper.make_node("Gemm", inputs, ["y"], beta=0.5)], {"a": a, "b": b}, ["y"], inits)
    assert_matches_ort(model, {"a": a, "b": b}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ashape,bshape", [
    ((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
    ((2, 3, 4), (2, 4, 5)), ((1, 3, 4), (6, 4, 5)), ((2, 1, 3, 4), (1, 5, 4, 2)), ((2, 3, 0), (0, 5)),
    ((1, 1, 7), (7, 1)), ((5, 1, 129), (129, 33)),
])
@pytest.mark.parametrize("const_b", [False, True])
def test_matmul(isa, rng, ashape, bshape, const_b):
    a = rng.standard_normal(ashape).astype(np.float32)
    b = rng.standard_normal(bshape).astype(np.float32)
    feeds = {"a": a} if const_b else {"a": a, "b": b}
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], feeds, ["y"], {"b": b} if const_b else {})
    assert_matches_ort(model, feeds, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_gemm_threads_bit_identical(rng, threads):
    """Results do not depend on the thread count."""
    import pyengine
    a = rng.standard_normal((37, 50)).astype(np.float32)
    b = rng.standard_normal((50, 41)).astype(np.float32)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], {"a": a}, ["y"], {"b": b})
    outs = []
    for t in (1, threads):
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = t
        outs.append(pyengine.InferenceSession(model.SerializeToString(), so).run(None, {"a": a})[0])
    np.testing.assert_array_equal(outs[0], outs[1])
