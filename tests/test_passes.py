"""Each graph pass: the graph changes as intended and the model's outputs are
the same as onnxruntime's on the original model."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, make_model
from pyengine.graph import passes
from pyengine.graph.passes import (constant_folding, dead_nodes, eliminate_identity, fold_batchnorm,
                                   fuse_activation, fuse_bias)
from pyengine.onnx_import.convert import to_graph
from pyengine.onnx_import.loader import load_model


def ops_after(model, *pass_modules):
    graph = to_graph(load_model(model))
    for p in pass_modules:
        p.run(graph)
    return [n.op_type for n in graph.nodes]


def session_ops(model, level=99):
    so = pyengine.SessionOptions()
    so.graph_optimization_level = level
    return [n.op_type for n in pyengine.InferenceSession(model.SerializeToString(), so)._graph.nodes]


def test_constant_folding(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    c1, c2 = rng.standard_normal((4,)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32)
    nodes = [helper.make_node("Mul", ["c1", "c2"], ["c"]), helper.make_node("Add", ["c", "c1"], ["d"]),
             helper.make_node("Add", ["x", "d"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], {"c1": c1, "c2": c2})
    assert ops_after(model, constant_folding) == ["Add"]
    assert_matches_ort(model, {"x": x})


def _large_constant_model(rng, consumer):
    """A 16x24 ConstantOfShape value (1536 bytes) read by `consumer`."""
    x = rng.standard_normal((2, 16)).astype(np.float32)
    shape = np.array([16, 24], dtype=np.int64)
    fill = helper.make_tensor("v", 1, [1], [0.25])
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["w"], value=fill)]
    if consumer == "Gemm":
        nodes.append(helper.make_node("Gemm", ["x", "w"], ["y"]))
    elif consumer == "Transpose+MatMul":  # a rearranged weight
        nodes += [helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
                  helper.make_node("Transpose", ["wt"], ["w2"], perm=[1, 0]),
                  helper.make_node("MatMul", ["x", "w2"], ["y"])]
    elif consumer == "Gemm+Add":  # also read as data: stays a node
        x = rng.standard_normal((16, 16)).astype(np.float32)
        nodes += [helper.make_node("Gemm", ["x", "w"], ["g"]), helper.make_node("Add", ["g", "w"], ["y"])]
    else:  # "MatMul as A": the large value is the data operand
        x = rng.standard_normal((24, 5)).astype(np.float32)
        nodes.append(helper.make_node("MatMul", ["w", "x"], ["y"]))
    return make_model(nodes, {"x": x}, ["y"], {"s": shape}), {"x": x}


@pytest.mark.parametrize("consumer,folds", [("Gemm", True), ("Transpose+MatMul", True),
                                            ("Gemm+Add", False), ("MatMul as A", False)])
def test_large_weights_fold_other_large_values_do_not(rng, monkeypatch, consumer, folds):
    """Folded values are capped in size (an Expand to a huge shape is cheaper
    to run than to store) except weights a kernel packs anyway: computing
    those on every run is the expensive choice."""
    monkeypatch.setattr(constant_folding, "MAX_FOLDED_BYTES", 1024)
    model, feeds = _large_constant_model(rng, consumer)
    ops = session_ops(model)
    assert ("ConstantOfShape" not in ops) == folds, ops
    assert_matches_ort(model, feeds)
    monkeypatch.setattr(constant_folding, "MAX_FOLDED_WEIGHT_BYTES", 1024)
    assert "ConstantOfShape" in session_ops(model)


def test_identity_and_dropout_removed(rng):
    x = rng.standard_normal((2, 5)).astype(np.float32)
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Dropout", ["a"], ["b"], ratio=0.5),
             helper.make_node("Relu", ["b"], ["c"]), helper.make_node("Identity", ["c"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], opset=10)
    # the final Identity names a graph output, so it stays (compiled as a copy)
    assert ops_after(model, eliminate_identity) == ["Relu", "Identity"]
    assert_matches_ort(model, {"x": x})


def test_dead_nodes_removed(rng):
    x = rng.standard_normal((2, 5)).astype(np.float32)
    nodes = [helper.make_node("Relu", ["x"], ["unused"]), helper.make_node("Add", ["x", "x"], ["y"]),
             helper.make_node("Mul", ["unused", "x"], ["unused2"])]
    model = make_model(nodes, {"x": x}, ["y"])
    assert ops_after(model, dead_nodes) == ["Add"]
    assert_matches_ort(model, {"x": x})


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("with_c", [False, True])
def test_batchnorm_folded_into_gemm(rng, trans_b, with_c):
    x = rng.standard_normal((5, 6)).astype(np.float32)
    w = rng.standard_normal((7, 6) if trans_b else (6, 7)).astype(np.float32)
    bn = {"s": rng.uniform(0.5, 2, 7), "b": rng.standard_normal(7), "m": rng.standard_normal(7),
          "v": rng.uniform(0.5, 2, 7)}
    inits = {"w": w, **{k: v.astype(np.float32) for k, v in bn.items()}}
    gemm_inputs = ["x", "w"]
    if with_c:
        inits["c"] = rng.standard_normal(7).astype(np.float32)
        gemm_inputs.append("c")
    nodes = [helper.make_node("Gemm", gemm_inputs, ["g"], transB=trans_b, beta=0.5, alpha=1.5),
             helper.make_node("BatchNormalization", ["g", "s", "b", "m", "v"], ["y"], epsilon=1e-3)]
    model = make_model(nodes, {"x": x}, ["y"], inits)
    assert ops_after(model, fold_batchnorm) == ["Gemm"]
    assert_matches_ort(model, {"x": x}, rtol=1e-4, atol=1e-4)


ACTIVATIONS = [
    ("Relu", {}, 17), ("LeakyRelu", {"alpha": 0.3}, 17), ("Sigmoid", {}, 17), ("Tanh", {}, 17),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 17), ("Elu", {"alpha": 0.7}, 17),
    ("Gelu", {}, 20), ("Clip", {"min": -0.5, "max": 0.7}, 10), ("Clip", {"inputs": ["lo", "hi"]}, 13), ("Clip", {"inputs": ["", "hi"]}, 13),
]


@pytest.mark.parametrize("producer", ["Gemm", "MatMul"])
@pytest.mark.parametrize("act,attrs,opset", ACTIVATIONS, ids=[f"{a[0]}-{a[2]}-{i}" for i, a in enumerate(ACTIVATIONS)])
def test_activation_fused(isa, rng, producer, act, attrs, opset):
    x = rng.standard_normal((4, 9)).astype(np.float32)
    w = rng.standard_normal((9, 17)).astype(np.float32)
    attrs = dict(attrs)
    extra = attrs.pop("inputs", [])
    inits = {"w": w, "lo": np.array(-0.4, np.float32), "hi": np.array(0.6, np.float32),
             "c0": rng.standard_normal(17).astype(np.float32)}
    needs_c = producer == "Gemm" and opset < 11  # C became optional in opset 11
    nodes = [helper.make_node(producer, ["x", "w"] + (["c0"] if needs_c else []), ["h"]),
             helper.make_node(act, ["h"] + extra, ["y"], **attrs)]
    model = make_model(nodes, {"x": x}, ["y"], inits, opset=opset)
    assert ops_after(model, fuse_activation) == [producer]
    assert_matches_ort(model, {"x": x}, rtol=1e-5, atol=1e-5)


def test_matmul_bias_then_relu_fused(isa, rng):
    x = rng.standard_normal((2, 3, 9)).astype(np.float32)
    w = rng.standard_normal((9, 5)).astype(np.float32)
    b = rng.standard_normal((5,)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["b", "h"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], {"w": w, "b": b})
    assert ops_after(model, fuse_bias, fuse_activation) == ["MatMul"]
    assert session_ops(model) == ["MatMul"]
    assert session_ops(model, level=1) == ["MatMul", "Add", "Relu"]
    assert_matches_ort(model, {"x": x})


def test_no_fusion_when_intermediate_is_needed(rng):
    x = rng.standard_normal((4, 9)).astype(np.float32)
    w = rng.standard_normal((9, 5)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y", "h"], {"w": w})
    assert ops_after(model, fuse_activation) == ["MatMul", "Relu"]
    assert_matches_ort(model, {"x": x})
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Add", ["h", "r"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], {"w": w})
    assert ops_after(model, fuse_activation) == ["MatMul", "Relu", "Add"]
    assert_matches_ort(model, {"x": x})


def test_optimize_does_not_touch_input_graph(rng):
    x = rng.standard_normal((4, 9)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], {"w": rng.standard_normal((9, 5)).astype(np.float32)})
    graph = to_graph(load_model(model))
    optimized = passes.optimize(graph, 99)
    assert [n.op_type for n in graph.nodes] == ["MatMul", "Relu"]
    assert [n.op_type for n in optimized.nodes] == ["MatMul"]
