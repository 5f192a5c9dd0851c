"""Small transformers exported from PyTorch (scripts/make_transformer_fixtures.py
made tests/fixtures/transformer_*.onnx/.npz; torch is not needed here): the
fusion passes must turn their attention, LayerNorm and GELU into single nodes,
and pyengine must give onnxruntime's and torch's outputs.

What the legacy exporter (opset 17) writes, before fusion:
- nn.TransformerEncoder (fast path switched off for export): LayerNormalization
  nodes (opset 17 has the op), GELU as Div(sqrt 2)/Erf/Add/Mul/Mul, and
  F.scaled_dot_product_attention decomposed as Mul(q, sqrt(scale)),
  Mul(k^T, sqrt(scale)), MatMul, [Add mask], Softmax, MatMul, where scale =
  1/sqrt(head dim) is computed at run time from Shape(q) (Shape/Slice/Cast/
  Sqrt/Div), so the fused Attention takes it as factor inputs folded when the
  plan is compiled. Heads are laid out the (S, B*H, D) way of
  F.multi_head_attention_forward: Transposes around Reshapes that stay, except
  the one after the attention, which the fused node absorbs. The padding mask
  becomes Where(pad, -inf, 0) added to the scores.
- the hand-written BERT: LayerNorm as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/
  Div/Mul/Add, erf-GELU, attention with Div(sqrt(dh)) and Add((1-m)*-1e4),
  and [B, S, H, D] Transposes that the fused node all absorbs.
"""
from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest

import pyengine
from pyengine.graph import passes
from pyengine.onnx_import.convert import to_graph
from pyengine.onnx_import.loader import load_model

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")

# name -> node counts expected after optimization (and op types that must be gone);
# "MatMul+Gelu": MatMul nodes with the Gelu fused into their epilogue.
EXPECTED = {
    "transformer_encoder": ({"Attention": 2, "LayerNormalization": 4, "MatMul+Gelu": 2}, ("Softmax", "Erf", "Gelu")),
    "transformer_encoder_padmask": ({"Attention": 2, "LayerNormalization": 4, "MatMul+Gelu": 2}, ("Softmax", "Erf", "Gelu")),
    "transformer_bert": ({"Attention": 2, "LayerNormalization": 5, "MatMul+Gelu": 2},
                         ("Softmax", "Erf", "Gelu", "ReduceMean", "Pow", "Sqrt", "Transpose")),
}


def load(name):
    path = os.path.join(FIXTURES, name + ".onnx")
    data = dict(np.load(os.path.join(FIXTURES, name + ".npz")))
    outputs = [data.pop(k) for k in sorted(k for k in data if k.startswith("out"))]
    return path, data, outputs


def op_counts(graph):
    counts = dict(graph.op_counts())
    counts["MatMul+Gelu"] = sum(n.op_type == "MatMul" and n.attrs.get("activation") == "Gelu" for n in graph.nodes)
    return counts


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fusions_applied(name):
    path, _, _ = load(name)
    graph = passes.optimize(to_graph(load_model(path)))
    counts = op_counts(graph)
    want, gone = EXPECTED[name]
    for op, n in want.items():
        assert counts.get(op, 0) == n, f"{name}: {op} x{counts.get(op, 0)}, expected {n} ({counts})"
    for op in gone:
        assert op not in counts, f"{name}: {op} left after fusion ({counts})"


def session(path, threads=1):
    so = pyengine.SessionOptions()
    so.intra_op_num_threads = threads
    try:
        return pyengine.InferenceSession(path, so)
    except pyengine.UnsupportedOperatorError as e:
        pytest.skip(f"an operator of the model is not merged yet: {e}")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_model_outputs(name, threads):
    path, feeds, torch_outs = load(name)
    sess = session(path, threads)
    counts = op_counts(sess._graph)
    for op, n in EXPECTED[name][0].items():
        assert counts.get(op, 0) == n
    got = sess.run(None, feeds)
    expected = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    assert len(got) == len(expected) == len(torch_outs)
    for g, e, t in zip(got, expected, torch_outs):
        assert g.shape == e.shape == t.shape
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4, err_msg="vs onnxruntime")
        np.testing.assert_allclose(g, t, rtol=1e-4, atol=1e-4, err_msg="vs torch")


def test_bert_other_sequence_length(rng):
    """The BERT export has dynamic batch/sequence axes: a new shape re-plans."""
    path, feeds, _ = load("transformer_bert")
    sess = session(path)
    ids = rng.integers(0, 50, (3, 13)).astype(np.int64)
    types = (np.arange(13)[None, :] >= 6).astype(np.int64).repeat(3, 0)
    mask = np.ones((3, 13), np.int64)
    mask[1, 4:] = 0
    feeds = {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}
    got = sess.run(None, feeds)[0]
    expected = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_exported_graphs_unfused_match_torch():
    """The fixtures themselves are sound: onnxruntime on the exported model gives torch's outputs."""
    for name in EXPECTED:
        path, feeds, torch_outs = load(name)
        expected = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
        for e, t in zip(expected, torch_outs):
            np.testing.assert_allclose(e, t, rtol=1e-4, atol=1e-4)
