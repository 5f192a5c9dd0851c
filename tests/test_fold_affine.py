"""fold_affine: per-channel constant Mul/Add/Sub/Div chains after Conv,
ConvTranspose, Gemm and BatchNormalization fold into their parameters; the
BatchNormalization kernel with a fused activation. Each case checks the graph
(node types before and after) and the outputs against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, assert_same_bits_across_threads, make_model
from pyengine.graph.passes import fold_affine, fold_batchnorm, fuse_activation
from pyengine.onnx_import.convert import to_graph
from pyengine.onnx_import.loader import load_model

TOL = {"rtol": 1e-4, "atol": 1e-4}


def ops_after(model, *pass_modules):
    graph = to_graph(load_model(model))
    for p in pass_modules:
        p.run(graph)
    return [n.op_type for n in graph.nodes]


def session_ops(model):
    return [n.op_type for n in pyengine.InferenceSession(model.SerializeToString())._graph.nodes]


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def conv_model(rng, tail, consts, c=7, outputs=("y",), extra_inits=None):
    """x [2,3,9,11] -> Conv(c out channels, bias) -> `tail` nodes (reading 'h')."""
    x = f32(rng, 2, 3, 9, 11)
    inits = {"w": f32(rng, c, 3, 3, 3), "b": f32(rng, c), **consts, **(extra_inits or {})}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["h"], pads=[1, 1, 1, 1])] + tail
    model = make_model(nodes, {"x": x}, list(outputs), inits)
    return model, {"x": x}


# (tail op types, nodes, constant shapes) for Conv -> chain cases that fold completely.
def _chain(kind, c):
    mk = helper.make_node
    if kind == "mul_add_relu":
        return [mk("Mul", ["h", "m"], ["p"]), mk("Add", ["p", "a"], ["q"]), mk("Relu", ["q"], ["y"])], \
            {"m": (c, 1, 1), "a": (c, 1, 1)}
    if kind == "mul_only":
        return [mk("Mul", ["h", "m"], ["y"])], {"m": (1, c, 1, 1)}
    if kind == "add_only":
        return [mk("Add", ["h", "a"], ["y"])], {"a": (c, 1, 1)}
    if kind == "const_left":
        return [mk("Mul", ["m", "h"], ["p"]), mk("Add", ["a", "p"], ["y"])], {"m": (c, 1, 1), "a": (1, c, 1, 1)}
    if kind == "scalar":
        return [mk("Mul", ["h", "m"], ["p"]), mk("Add", ["p", "a"], ["y"])], {"m": (), "a": (1,)}
    if kind == "sub_div":
        return [mk("Sub", ["h", "a"], ["p"]), mk("Div", ["p", "m"], ["q"]), mk("Sub", ["a2", "q"], ["y"])], \
            {"a": (c, 1, 1), "m": (1, c, 1, 1), "a2": (1, 1, 1)}
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["mul_add_relu", "mul_only", "add_only", "const_left", "scalar", "sub_div"])
@pytest.mark.parametrize("c", [1, 7, 17])
def test_conv_chain_folded(rng, kind, c):
    tail, shapes = _chain(kind, c)
    consts = {k: rng.uniform(0.5, 2.0, s).astype(np.float32) * rng.choice([-1, 1], s).astype(np.float32)
              for k, s in shapes.items()}
    model, feeds = conv_model(rng, tail, consts, c=c)
    before = ops_after(model)
    after = ops_after(model, fold_batchnorm, fold_affine)
    assert before == ["Conv"] + [n.op_type for n in tail]
    assert after == ["Conv"] + (["Relu"] if kind == "mul_add_relu" else [])
    assert session_ops(model) == ["Conv"]
    assert_matches_ort(model, feeds, **TOL)


def test_conv_batchnorm_then_affine_folded(rng):
    c = 5
    bn = {"s": rng.uniform(0.5, 2, c), "bb": rng.standard_normal(c), "mu": rng.standard_normal(c),
          "var": rng.uniform(0.5, 2, c)}
    consts = {k: v.astype(np.float32) for k, v in bn.items()}
    consts.update(m=f32(rng, c, 1, 1), a=f32(rng, c, 1, 1))
    mk = helper.make_node
    tail = [mk("BatchNormalization", ["h", "s", "bb", "mu", "var"], ["n"]), mk("Mul", ["n", "m"], ["p"]),
            mk("Add", ["p", "a"], ["q"]), mk("Relu", ["q"], ["y"])]
    model, feeds = conv_model(rng, tail, consts, c=c)
    assert ops_after(model, fold_batchnorm, fold_affine) == ["Conv", "Relu"]
    assert session_ops(model) == ["Conv"]
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("shape", [(1, 1, 9, 11), (7, 9, 11), (9, 1), (1, 1, 7, 1, 1), (2, 7, 1, 1)])
def test_not_per_channel_constant_left_alone(rng, shape):
    tail = [helper.make_node("Mul", ["h", "m"], ["y"])]
    model, feeds = conv_model(rng, tail, {"m": f32(rng, *shape)})
    assert ops_after(model, fold_affine) == ["Conv", "Mul"]
    assert_matches_ort(model, feeds, **TOL)


def test_non_float32_or_non_finite_left_alone(rng):
    mk = helper.make_node
    tail = [mk("Mul", ["h", "m"], ["y"])]
    m = f32(rng, 7, 1, 1)
    m[3] = np.inf
    model, feeds = conv_model(rng, tail, {"m": m})
    assert ops_after(model, fold_affine) == ["Conv", "Mul"]
    tail = [mk("Div", ["h", "d"], ["y"])]
    model, feeds = conv_model(rng, tail, {"d": np.array([1.0, 2.0, 0.0, 1.0, 1.0, 3.0, 1.0], np.float32)
                                          .reshape(7, 1, 1)})
    assert ops_after(model, fold_affine) == ["Conv", "Div"]
    tail = [mk("Div", ["d", "h"], ["y"])]  # d / x is not affine
    model, feeds = conv_model(rng, tail, {"d": rng.uniform(1, 2, (7, 1, 1)).astype(np.float32)})
    assert ops_after(model, fold_affine) == ["Conv", "Div"]


def test_two_consumers_not_folded(rng):
    mk = helper.make_node
    # the conv output is also read by a Relu: the Mul must stay
    tail = [mk("Mul", ["h", "m"], ["p"]), mk("Relu", ["h"], ["r"]), mk("Add", ["p", "r"], ["y"])]
    model, feeds = conv_model(rng, tail, {"m": f32(rng, 7, 1, 1)})
    assert ops_after(model, fold_affine) == ["Conv", "Mul", "Relu", "Add"]
    assert_matches_ort(model, feeds, **TOL)
    # the conv output is a graph output
    model, feeds = conv_model(rng, [mk("Mul", ["h", "m"], ["y"])], {"m": f32(rng, 7, 1, 1)}, outputs=("y", "h"))
    assert ops_after(model, fold_affine) == ["Conv", "Mul"]
    assert_matches_ort(model, feeds, **TOL)
    # the Mul's output is read twice: the Mul folds, the Add after it does not
    tail = [mk("Mul", ["h", "m"], ["p"]), mk("Add", ["p", "a"], ["q"]), mk("Sub", ["q", "p"], ["y"])]
    model, feeds = conv_model(rng, tail, {"m": f32(rng, 7, 1, 1), "a": f32(rng, 7, 1, 1)})
    assert ops_after(model, fold_affine) == ["Conv", "Add", "Sub"]
    assert_matches_ort(model, feeds, **TOL)


def test_not_folded_across_activation(rng):
    mk = helper.make_node
    tail = [mk("Relu", ["h"], ["r"]), mk("Mul", ["r", "m"], ["y"])]
    model, feeds = conv_model(rng, tail, {"m": f32(rng, 7, 1, 1)})
    assert ops_after(model, fuse_activation, fold_affine) == ["Conv", "Mul"]
    assert session_ops(model) == ["Conv", "Mul"]
    assert_matches_ort(model, feeds, **TOL)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("with_c", [False, True])
def test_gemm_chain_folded(rng, trans_b, with_c):
    x = f32(rng, 5, 6)
    inits = {"w": f32(rng, 9, 6) if trans_b else f32(rng, 6, 9), "m": f32(rng, 9), "a": f32(rng, 1, 9)}
    ins = ["x", "w"]
    if with_c:
        inits["c"] = f32(rng, 9)
        ins.append("c")
    mk = helper.make_node
    nodes = [mk("Gemm", ins, ["g"], transB=trans_b, alpha=1.5, beta=0.5), mk("Mul", ["g", "m"], ["p"]),
             mk("Add", ["a", "p"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], inits)
    assert ops_after(model, fold_affine) == ["Gemm"]
    assert_matches_ort(model, {"x": x}, **TOL)
    # per row ([M, 1]) is not per output column
    inits["m"] = f32(rng, 5, 1)
    model = make_model(nodes, {"x": x}, ["y"], inits)
    assert ops_after(model, fold_affine) == ["Gemm", "Mul", "Add"]
    assert_matches_ort(model, {"x": x}, **TOL)


@pytest.mark.parametrize("group", [1, 2])
def test_conv_transpose_chain_folded(rng, group):
    x = f32(rng, 2, 4, 5, 6)
    cout = 3 * group  # W: [Cin, Cout / group, kh, kw]
    inits = {"w": f32(rng, 4, 3, 3, 3), "m": f32(rng, cout, 1, 1), "a": f32(rng, cout, 1, 1)}
    mk = helper.make_node
    nodes = [mk("ConvTranspose", ["x", "w"], ["h"], group=group, strides=[2, 2]), mk("Mul", ["h", "m"], ["p"]),
             mk("Sub", ["p", "a"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], inits)
    assert ops_after(model, fold_affine) == ["ConvTranspose"]
    assert_matches_ort(model, {"x": x}, **TOL)


def bn_inits(rng, c):
    return {"s": rng.uniform(0.5, 2, c).astype(np.float32), "bb": f32(rng, c), "mu": f32(rng, c),
            "var": rng.uniform(0.5, 2, c).astype(np.float32)}


@pytest.mark.parametrize("c", [1, 7, 19])
def test_batchnorm_chain_folded_and_relu_fused(rng, c):
    # BN of a Concat (no conv to fold into), as in DenseNet
    x1, x2 = f32(rng, 2, 3, 5, 9), f32(rng, 2, c - 1, 5, 9) if c > 1 else None
    mk = helper.make_node
    inits = {**bn_inits(rng, c), "m": f32(rng, c, 1, 1), "a": f32(rng, 1, c, 1, 1)}
    if c > 1:
        feeds = {"x1": x1[:, :1], "x2": x2}
        first = [mk("Concat", ["x1", "x2"], ["cat"], axis=1)]
    else:
        feeds, first = {"x1": x1[:, :1]}, [mk("Identity", ["x1"], ["cat"])]
    nodes = first + [mk("BatchNormalization", ["cat", "s", "bb", "mu", "var"], ["n"], epsilon=1e-3),
                     mk("Mul", ["n", "m"], ["p"]), mk("Add", ["p", "a"], ["q"]), mk("Relu", ["q"], ["y"])]
    model = make_model(nodes, feeds, ["y"], inits)
    head = [first[0].op_type]
    assert ops_after(model, fold_batchnorm, fold_affine) == head + ["BatchNormalization", "Relu"]
    assert ops_after(model, fold_batchnorm, fold_affine, fuse_activation) == head + ["BatchNormalization"]
    assert session_ops(model)[-1:] == ["BatchNormalization"]
    assert_matches_ort(model, feeds, **TOL)


def test_batchnorm_unknown_rank_or_variable_scale_left_alone(rng):
    c = 6
    x = f32(rng, 2, c, 4, 5)
    mk = helper.make_node
    inits = bn_inits(rng, c)
    scale = inits.pop("s")
    nodes = [mk("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["n"]), mk("Mul", ["n", "m"], ["y"])]
    model = make_model(nodes, {"x": x, "s": scale}, ["y"], {**inits, "m": f32(rng, c, 1, 1)})
    assert ops_after(model, fold_affine) == ["BatchNormalization", "Mul"]
    assert_matches_ort(model, {"x": x, "s": scale}, **TOL)
    # [C, 1, 1] against a rank-3 input runs along axis 0 ([1, C, 1, 1] after broadcasting): not per channel
    x3 = f32(rng, c, c, 5)
    model = make_model(nodes, {"x": x3}, ["y"], {**inits, "s": scale, "m": f32(rng, c, 1, 1)})
    assert ops_after(model, fold_affine) == ["BatchNormalization", "Mul"]
    assert_matches_ort(model, {"x": x3}, **TOL)


BN_ACTS = [("Relu", {}, 17), ("LeakyRelu", {"alpha": 0.3}, 17), ("Sigmoid", {}, 17), ("Tanh", {}, 17),
           ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 17), ("Elu", {"alpha": 0.7}, 17),
           ("Clip", {"min": -0.5, "max": 0.7}, 10)]


@pytest.mark.parametrize("act,attrs,opset", BN_ACTS, ids=[a[0] for a in BN_ACTS])
@pytest.mark.parametrize("shape", [(2, 7, 9, 11), (1, 5, 3), (3, 9), (1, 3, 0, 4), (1, 3, 2063)])
def test_batchnorm_activation_kernel(isa, rng, act, attrs, opset, shape):
    c = shape[1]
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    mk = helper.make_node
    nodes = [mk("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["n"], epsilon=1e-3),
             mk(act, ["n"], ["y"], **attrs)]
    model = make_model(nodes, {"x": x}, ["y"], bn_inits(rng, c), opset=opset)
    assert session_ops(model) == ["BatchNormalization"]
    assert_matches_ort(model, {"x": x}, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
def test_batchnorm_relu_threads_and_float64(rng, threads):
    mk = helper.make_node
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((2, 13, 17, 19)).astype(dtype)
        nodes = [mk("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["n"]), mk("Relu", ["n"], ["y"])]
        inits = {k: v.astype(dtype) for k, v in bn_inits(rng, 13).items()}
        model = make_model(nodes, {"x": x}, ["y"], inits)
        # fuse_activation leaves float64 alone (the table's activations are float32)
        assert session_ops(model) == ["BatchNormalization"] + (["Relu"] if dtype == np.float64 else [])
        assert_matches_ort(model, {"x": x}, threads=threads)
    assert_same_bits_across_threads(model, {"x": x})


def test_batchnorm_per_element_with_relu(rng):
    # opset 7 spatial = 0: one parameter set per (channel, position)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    inits = {"s": f32(rng, 4, 5), "bb": f32(rng, 4, 5), "mu": f32(rng, 4, 5),
             "var": rng.uniform(0.5, 2, (4, 5)).astype(np.float32)}
    mk = helper.make_node
    nodes = [mk("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["n"], spatial=0), mk("Relu", ["n"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], inits, opset=7)
    assert session_ops(model) == ["BatchNormalization"]
    got = pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    s = inits["s"] / np.sqrt(inits["var"] + 1e-5)
    ref = np.maximum(x * s + (inits["bb"] - inits["mu"] * s), 0)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
