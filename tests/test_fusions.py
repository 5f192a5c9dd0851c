"""The transformer fusion passes (LayerNorm, GELU, attention): each pattern
variant is rewritten into the one node (node counts before/after), patterns
that must not fuse stay, and the fused graph - exported back to ONNX - gives
onnxruntime's outputs on the original model (run by pyengine, and by
onnxruntime itself where the fused graph has only standard ops)."""
from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

import pyengine
from oracle import make_model
from pyengine.graph.passes import constant_folding, dead_nodes, fuse_attention, fuse_gelu, fuse_layernorm
from pyengine.onnx_import.convert import to_graph
from pyengine.onnx_import.loader import load_model

_ONNX_TYPES = {np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.int64): onnx.TensorProto.INT64,
               np.dtype(np.int32): onnx.TensorProto.INT32, np.dtype(np.bool_): onnx.TensorProto.BOOL}


def graph_to_model(graph) -> onnx.ModelProto:
    """The IR graph as an ONNX model (opset raised to what its nodes need)."""
    nodes = [helper.make_node(n.op_type, n.inputs, n.outputs, name=n.name, domain=n.domain or None,
                              **{k: v for k, v in n.attrs.items()}) for n in graph.nodes]
    opset = max([graph.opset] + [n.opset for n in graph.nodes if not n.domain])

    def vi(name):
        info = graph.infos.get(name)
        shape = None if info is None or info.shape is None else list(info.shape)
        return helper.make_tensor_value_info(name, _ONNX_TYPES[np.dtype(info.dtype)], shape)

    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in graph.constants.items()]
    g = helper.make_graph(nodes, "fused", [vi(n) for n in graph.inputs], [vi(n) for n in graph.outputs], inits)
    imports = [helper.make_opsetid("", opset)]
    if any(n.domain == "pyengine" for n in graph.nodes):
        imports.append(helper.make_opsetid("pyengine", 1))
    model = helper.make_model(g, opset_imports=imports)
    model.ir_version = 8
    return model


def fused(model, *passes):
    graph = to_graph(load_model(model))
    before = graph.op_counts()
    for p in passes + (dead_nodes,):
        p.run(graph)
    return graph, before, graph.op_counts()


def ort_run(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def check_outputs(original, graph, feeds, rtol=1e-4, atol=1e-5, ort_fused=True):
    """Fused graph vs onnxruntime on the original model: through pyengine
    (skipped while an op of the fused graph is not merged yet) and through
    onnxruntime when the fused graph has standard ops only."""
    expected = ort_run(original, feeds)
    model = graph_to_model(graph)
    if ort_fused and not any(n.domain for n in graph.nodes):
        for g, e in zip(ort_run(model, feeds), expected):
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
    try:
        got = pyengine.InferenceSession(model.SerializeToString()).run(None, feeds)
    except pyengine.UnsupportedOperatorError as e:
        pytest.skip(f"fused graph not runnable by pyengine yet: {e}")
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)


def f32(*a):
    return np.array(a, np.float32).reshape(()) if len(a) == 1 else np.array(a, np.float32)


# ---------------------------------------------------------------- LayerNorm

def layernorm_nodes(square="pow", div="div", gamma=True, beta=True, axes=(-1,), opset=17, gamma_first=False):
    ax = {"axes": list(axes)} if opset < 18 else {}
    ax_in = ["axes"] if opset >= 18 else []
    nodes = [helper.make_node("ReduceMean", ["x"] + ax_in, ["mean"], **ax),
             helper.make_node("Sub", ["x", "mean"], ["d"])]
    nodes.append(helper.make_node("Pow", ["d", "two"], ["sq"]) if square == "pow" else
                 helper.make_node("Mul", ["d", "d"], ["sq"]))
    nodes += [helper.make_node("ReduceMean", ["sq"] + ax_in, ["var"], **ax),
              helper.make_node("Add", ["var", "eps"], ["ve"]),
              helper.make_node("Sqrt", ["ve"], ["std"])]
    if div == "div":
        nodes.append(helper.make_node("Div", ["d", "std"], ["n"]))
    else:
        nodes += [helper.make_node("Reciprocal", ["std"], ["r"]), helper.make_node("Mul", ["d", "r"], ["n"])]
    out = "n"
    if gamma:
        nodes.append(helper.make_node("Mul", ["gamma", out] if gamma_first else [out, "gamma"], ["g"]))
        out = "g"
    if beta:
        nodes.append(helper.make_node("Add", ["beta", out], ["y"]))
        out = "y"
    return nodes, out


LN_VARIANTS = [
    dict(),
    dict(square="mul", gamma=False, beta=False),
    dict(div="reciprocal", beta=False, gamma_first=True),
    dict(gamma=False, beta=True),
    dict(axes=(-2, -1)),
    dict(opset=18),
]


@pytest.mark.parametrize("variant", LN_VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "default")
def test_layernorm_fused(rng, variant):
    shape = (2, 3, 7) if variant.get("axes", (-1,)) == (-1,) else (2, 5, 3)
    k = len(variant.get("axes", (-1,)))
    nodes, out = layernorm_nodes(**variant)
    x = rng.standard_normal(shape).astype(np.float32) * 3 + 1
    inits = {"two": f32(2.0), "eps": f32(1e-5), "gamma": rng.standard_normal(shape[-k:]).astype(np.float32),
             "beta": rng.standard_normal(shape[-k:]).astype(np.float32)}
    if variant.get("opset", 17) >= 18:
        inits["axes"] = np.array(variant.get("axes", (-1,)), np.int64)
    model = make_model(nodes, {"x": x}, [out], inits, opset=variant.get("opset", 17))
    graph, before, after = fused(model, fuse_layernorm)
    assert before["ReduceMean"] == 2
    assert after == {"LayerNormalization": 1}
    ln = graph.nodes[0]
    assert ln.attrs["axis"] == -k and ln.attrs["epsilon"] == pytest.approx(1e-5)
    assert len(ln.inputs) == (3 if variant.get("beta", True) else 2)
    check_outputs(model, graph, {"x": x})


def test_layernorm_not_fused(rng):
    x = rng.standard_normal((2, 4, 6)).astype(np.float32)
    inits = {"two": f32(2.0), "eps": f32(1e-5), "gamma": np.ones(6, np.float32), "beta": np.zeros(6, np.float32)}
    # the centered value is also a graph output: it must stay computed
    nodes, out = layernorm_nodes()
    model = make_model(nodes, {"x": x}, [out, "d"], inits)
    assert fused(model, fuse_layernorm)[2].get("LayerNormalization") is None
    # reduction over a middle axis is no LayerNormalization
    nodes, out = layernorm_nodes(axes=(1,))
    model = make_model(nodes, {"x": x}, [out], inits)
    assert fused(model, fuse_layernorm)[2].get("LayerNormalization") is None
    # Pow with exponent 3 is no variance
    nodes, out = layernorm_nodes()
    model = make_model(nodes, {"x": x}, [out], dict(inits, two=f32(3.0)))
    assert fused(model, fuse_layernorm)[2].get("LayerNormalization") is None
    # epsilon computed at run time
    nodes, out = layernorm_nodes()
    model = make_model(nodes, {"x": x, "eps": f32(1e-5)}, [out], {k: v for k, v in inits.items() if k != "eps"})
    assert fused(model, fuse_layernorm)[2].get("LayerNormalization") is None


# --------------------------------------------------------------------- GELU

def erf_gelu_nodes(form):
    """x * 0.5 * (1 + erf(x / sqrt 2)) in several operand orders."""
    arg = ([helper.make_node("Div", ["x", "sqrt2"], ["t"])] if form in ("torch", "half_first", "half_last")
           else [helper.make_node("Mul", ["inv_sqrt2", "x"], ["t"])])
    nodes = arg + [helper.make_node("Erf", ["t"], ["e"]), helper.make_node("Add", ["one", "e"], ["a"])]
    if form == "torch":        # Mul(Mul(x, a), 0.5)
        nodes += [helper.make_node("Mul", ["x", "a"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
    elif form == "half_first":  # Mul(Mul(x, 0.5), a)
        nodes += [helper.make_node("Mul", ["x", "half"], ["h"]), helper.make_node("Mul", ["h", "a"], ["y"])]
    elif form == "half_last":  # Mul(a, Mul(0.5, x))
        nodes += [helper.make_node("Mul", ["half", "x"], ["h"]), helper.make_node("Mul", ["a", "h"], ["y"])]
    else:                      # Mul(x, Mul(a, 0.5))
        nodes += [helper.make_node("Mul", ["a", "half"], ["m"]), helper.make_node("Mul", ["x", "m"], ["y"])]
    return nodes


GELU_CONSTS = {"sqrt2": f32(math.sqrt(2)), "inv_sqrt2": f32(1 / math.sqrt(2)), "one": f32(1.0), "half": f32(0.5),
               "c": f32(math.sqrt(2 / math.pi)), "kappa": f32(0.044715), "three": f32(3.0)}


@pytest.mark.parametrize("form", ["torch", "half_first", "half_last", "mul_arg"])
def test_gelu_erf_fused(rng, form):
    x = rng.standard_normal((3, 17)).astype(np.float32) * 3
    nodes = erf_gelu_nodes(form)
    model = make_model(nodes, {"x": x}, ["y"], {k: GELU_CONSTS[k] for k in ("sqrt2", "inv_sqrt2", "one", "half")})
    graph, before, after = fused(model, fuse_gelu)
    assert before["Erf"] == 1 and after == {"Gelu": 1}
    assert graph.nodes[0].attrs == {"approximate": "none"} and graph.nodes[0].inputs == ["x"]
    check_outputs(model, graph, {"x": x})


@pytest.mark.parametrize("cube", ["pow", "mul"])
def test_gelu_tanh_fused(rng, cube):
    x = rng.standard_normal((2, 3, 9)).astype(np.float32) * 3
    if cube == "pow":
        nodes = [helper.make_node("Pow", ["x", "three"], ["x3"])]
    else:
        nodes = [helper.make_node("Mul", ["x", "x"], ["x2"]), helper.make_node("Mul", ["x2", "x"], ["x3"])]
    nodes += [helper.make_node("Mul", ["kappa", "x3"], ["kx3"]), helper.make_node("Add", ["x", "kx3"], ["inner"]),
              helper.make_node("Mul", ["inner", "c"], ["u"]), helper.make_node("Tanh", ["u"], ["th"]),
              helper.make_node("Add", ["th", "one"], ["a"]), helper.make_node("Mul", ["half", "x"], ["hx"]),
              helper.make_node("Mul", ["hx", "a"], ["y"])]
    model = make_model(nodes, {"x": x}, ["y"], {k: GELU_CONSTS[k] for k in ("c", "kappa", "three", "one", "half")})
    graph, before, after = fused(model, fuse_gelu)
    assert before["Tanh"] == 1 and after == {"Gelu": 1}
    assert graph.nodes[0].attrs == {"approximate": "tanh"}
    check_outputs(model, graph, {"x": x})


def test_gelu_not_fused(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    consts = {k: GELU_CONSTS[k] for k in ("sqrt2", "inv_sqrt2", "one", "half")}
    # 0.6 instead of 0.5
    model = make_model(erf_gelu_nodes("torch"), {"x": x}, ["y"], dict(consts, half=f32(0.6)))
    assert "Gelu" not in fused(model, fuse_gelu)[2]
    # erf of x / 2
    model = make_model(erf_gelu_nodes("torch"), {"x": x}, ["y"], dict(consts, sqrt2=f32(2.0)))
    assert "Gelu" not in fused(model, fuse_gelu)[2]
    # the erf value is also read elsewhere
    model = make_model(erf_gelu_nodes("torch"), {"x": x}, ["y", "e"], consts)
    assert "Gelu" not in fused(model, fuse_gelu)[2]


def test_gelu_shared_argument_kept(rng):
    """x / sqrt 2 also feeds another node: Gelu is fused, the Div stays for that reader."""
    x = rng.standard_normal((4, 5)).astype(np.float32)
    nodes = erf_gelu_nodes("torch") + [helper.make_node("Relu", ["t"], ["z"])]
    model = make_model(nodes, {"x": x}, ["y", "z"], {k: GELU_CONSTS[k] for k in ("sqrt2", "one", "half")})
    graph, _, after = fused(model, fuse_gelu)
    assert after == {"Gelu": 1, "Div": 1, "Relu": 1}
    check_outputs(model, graph, {"x": x})


# ---------------------------------------------------------------- attention

def mha_model(rng, b=2, s=7, h=3, dh=4, mask="key_padding", scale_where="scores", mask_first=False):
    """Multi-head self-attention as exporters write it."""
    e = h * dh
    x = rng.standard_normal((b, s, e)).astype(np.float32)
    inits = {f"w{n}": (rng.standard_normal((e, e)) / np.sqrt(e)).astype(np.float32) for n in "qkvo"}
    inits.update(shape4=np.array([b, s, h, dh], np.int64), shape3=np.array([b, s, e], np.int64),
                 scale=f32(1 / np.sqrt(dh)), root=f32(dh ** -0.25), sqrt_d=f32(np.sqrt(dh)))
    nodes = []
    for n in "qkv":
        nodes += [helper.make_node("MatMul", ["x", f"w{n}"], [f"{n}p"]),
                  helper.make_node("Reshape", [f"{n}p", "shape4"], [f"{n}4"])]
    nodes += [helper.make_node("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]),
              helper.make_node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
              helper.make_node("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3])]
    if scale_where == "scores_div":
        nodes += [helper.make_node("MatMul", ["qh", "kt"], ["s0"]), helper.make_node("Div", ["s0", "sqrt_d"], ["s1"])]
    elif scale_where == "scores":
        nodes += [helper.make_node("MatMul", ["qh", "kt"], ["s0"]), helper.make_node("Mul", ["scale", "s0"], ["s1"])]
    else:  # pre-applied to both Q and K^T
        nodes += [helper.make_node("Mul", ["qh", "root"], ["qs"]), helper.make_node("Mul", ["kt", "root"], ["ks"]),
                  helper.make_node("MatMul", ["qs", "ks"], ["s1"])]
    feeds = {"x": x}
    scores = "s1"
    if mask is not None:
        shape = {"key_padding": (b, 1, 1, s), "full": (b, h, s, s), "causal": (s, s)}[mask]
        m = np.where(rng.random(shape) < 0.3, -1e4, 0).astype(np.float32)
        if mask == "causal":
            m = np.triu(np.full((s, s), -np.inf, np.float32), 1)
        feeds["mask"] = m
        nodes.append(helper.make_node("Add", ["mask", "s1"] if mask_first else ["s1", "mask"], ["s2"]))
        scores = "s2"
    nodes += [helper.make_node("Softmax", [scores], ["p"], axis=-1),
              helper.make_node("MatMul", ["p", "vh"], ["o"]),
              helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
              helper.make_node("Reshape", ["ot", "shape3"], ["o3"]),
              helper.make_node("MatMul", ["o3", "wo"], ["y"])]
    return make_model(nodes, feeds, ["y"], inits), feeds


@pytest.mark.parametrize("mask", [None, "key_padding", "full", "causal"])
@pytest.mark.parametrize("scale_where", ["scores", "scores_div", "qk"])
def test_attention_fused_multihead(rng, mask, scale_where):
    model, feeds = mha_model(rng, mask=mask, scale_where=scale_where, mask_first=scale_where == "qk")
    graph, before, after = fused(model, constant_folding, fuse_attention)
    assert before["Softmax"] == 1 and before["Transpose"] == 4
    assert after == {"MatMul": 4, "Reshape": 4, "Attention": 1}
    att = next(n for n in graph.nodes if n.op_type == "Attention")
    assert att.domain == "pyengine"
    assert att.attrs["q_perm"] == [0, 2, 1, 3] and att.attrs["k_perm"] == [0, 2, 3, 1]
    assert att.attrs["out_perm"] == [0, 2, 1, 3]
    assert att.attrs["scale"] == pytest.approx(0.5, rel=1e-6)
    assert bool(att.input(3)) == (mask is not None)
    check_outputs(model, graph, feeds)


def test_attention_fused_plain_3d(rng):
    """Single head, K transposed by a Transpose without perm (reverse of a known rank... here perm given)."""
    q = rng.standard_normal((2, 5, 8)).astype(np.float32)
    k = rng.standard_normal((2, 6, 8)).astype(np.float32)
    v = rng.standard_normal((2, 6, 3)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]), helper.make_node("Div", ["s", "c"], ["s1"]),
             helper.make_node("Softmax", ["s1"], ["p"]), helper.make_node("MatMul", ["p", "v"], ["y"])]
    model = make_model(nodes, {"q": q, "k": k, "v": v}, ["y"], {"c": f32(np.sqrt(8))})
    graph, _, after = fused(model, fuse_attention)
    assert after == {"Attention": 1}
    assert graph.nodes[0].attrs["k_perm"] == [0, 2, 1] and "q_perm" not in graph.nodes[0].attrs
    check_outputs(model, graph, {"q": q, "k": k, "v": v})


def test_attention_softmax_opset11_last_axis(rng):
    q = rng.standard_normal((3, 4, 5)).astype(np.float32)
    kt = rng.standard_normal((3, 5, 4)).astype(np.float32)
    v = rng.standard_normal((3, 4, 2)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["q", "kt"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=2),
             helper.make_node("MatMul", ["p", "v"], ["y"])]
    model = make_model(nodes, {"q": q, "kt": kt, "v": v}, ["y"], opset=11)
    graph, _, after = fused(model, fuse_attention)
    assert after == {"Attention": 1}
    check_outputs(model, graph, {"q": q, "kt": kt, "v": v})


def test_attention_runtime_scale(rng):
    """torch's exporter: scale = 1 / sqrt(D) computed from Shape(q), applied as sqrt(scale) to q and k^T."""
    q = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    k = rng.standard_normal((2, 3, 6, 8)).astype(np.float32)
    v = rng.standard_normal((2, 3, 6, 4)).astype(np.float32)
    nodes = [helper.make_node("Shape", ["q"], ["qs"], start=-1),
             helper.make_node("Cast", ["qs"], ["qsf"], to=onnx.TensorProto.FLOAT),
             helper.make_node("Sqrt", ["qsf"], ["sq"]), helper.make_node("Div", ["one", "sq"], ["scale"]),
             helper.make_node("Sqrt", ["scale"], ["rs"]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("Mul", ["q", "rs"], ["q2"]), helper.make_node("Mul", ["kt", "rs"], ["k2"]),
             helper.make_node("MatMul", ["q2", "k2"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y"])]
    feeds = {"q": q, "k": k, "v": v}
    model = make_model(nodes, feeds, ["y"], {"one": f32(1.0)})
    graph, _, after = fused(model, fuse_attention)
    assert after.get("Attention") == 1 and "Softmax" not in after and "MatMul" not in after
    att = next(n for n in graph.nodes if n.op_type == "Attention")
    assert att.attrs["scale_ops"] == [1, 1]
    check_outputs(model, graph, feeds)


def test_attention_not_fused(rng):
    q = rng.standard_normal((2, 4, 5)).astype(np.float32)
    kt = rng.standard_normal((2, 5, 4)).astype(np.float32)
    v = rng.standard_normal((2, 4, 3)).astype(np.float32)
    feeds = {"q": q, "kt": kt, "v": v}
    base = [helper.make_node("MatMul", ["q", "kt"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
            helper.make_node("MatMul", ["p", "v"], ["y"])]
    # softmax over the query axis
    nodes = [base[0], helper.make_node("Softmax", ["s"], ["p"], axis=1), base[2]]
    assert "Attention" not in fused(make_model(nodes, feeds, ["y"]), fuse_attention)[2]
    # probabilities are a graph output too
    assert "Attention" not in fused(make_model(base, feeds, ["y", "p"]), fuse_attention)[2]
    # scores scaled by a non-scalar
    nodes = [base[0], helper.make_node("Mul", ["s", "w"], ["s1"]), helper.make_node("Softmax", ["s1"], ["p"]), base[2]]
    model = make_model(nodes, feeds, ["y"], {"w": np.ones((4, 4), np.float32)})
    assert "Attention" not in fused(model, fuse_attention)[2]
    # probabilities as the right operand of the second MatMul
    nodes = base[:2] + [helper.make_node("MatMul", ["v2", "p"], ["y"])]
    model = make_model(nodes, dict(feeds, v2=rng.standard_normal((2, 3, 4)).astype(np.float32)), ["y"])
    assert "Attention" not in fused(model, fuse_attention)[2]


def test_attention_fused_in_session(rng):
    """The session applies the pass at the default level and not with optimizations off."""
    model, feeds = mha_model(rng, mask="key_padding")
    try:
        sess = pyengine.InferenceSession(model.SerializeToString())
    except pyengine.UnsupportedOperatorError as e:
        pytest.skip(f"an op of the original model is not merged yet: {e}")
    assert sess._graph.op_counts().get("Attention") == 1
    np.testing.assert_allclose(sess.run(None, feeds)[0], ort_run(model, feeds)[0], rtol=1e-4, atol=1e-5)
    so = pyengine.SessionOptions()
    so.graph_optimization_level = pyengine.GraphOptimizationLevel.ORT_DISABLE_ALL
    assert "Attention" not in pyengine.InferenceSession(model.SerializeToString(), so)._graph.op_counts()
