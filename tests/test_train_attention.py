"""Attention layers of pyengine.train: gradients against central finite
differences (float64), a direct NumPy reference of attention, and export
parity with onnxruntime and pyengine at batch 1 and 5."""
from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import pyengine
from pyengine.train.attention import (ClsToken, MultiHeadSelfAttention, PatchEmbed, PositionalEmbedding,
                                      TokenPool, TransformerEncoderBlock, _Dense, _GELU, _LayerNorm)
from pyengine.train.base import Layer, Sequential
from pyengine.train.export import OPSET, ExportContext, to_onnx

F64 = np.float64


# ---- finite-difference gradient check -------------------------------------------
def _rel_err(a, b):
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    if scale < 1e-6:
        # A gradient that is zero in exact arithmetic (the key bias: softmax ignores
        # a per-row constant) leaves only rounding noise; judge it absolutely.
        return np.linalg.norm(a - b) * 1e2
    return np.linalg.norm(a - b) / scale


def check_gradients(layer, x, mask=None, seed=0, eps=1e-6, tol=1e-6):
    """backward() vs central differences of sum(forward(x) * G), for x and every parameter."""
    rng = np.random.default_rng(seed)

    def fwd():
        return layer.forward(x) if mask is None else layer.forward(x, mask)

    g = rng.standard_normal(fwd().shape)
    layer.zero_grad()
    dx = layer.backward(g)

    def numeric(arr):
        num = np.zeros_like(arr)
        flat, nflat = arr.reshape(-1), num.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = np.sum(fwd() * g)
            flat[i] = old - eps
            down = np.sum(fwd() * g)
            flat[i] = old
            nflat[i] = (up - down) / (2 * eps)
        return num

    assert dx.shape == x.shape
    err = _rel_err(dx, numeric(x))
    assert err < tol, f"input gradient: relative error {err:.2e}"
    assert layer.parameters() or isinstance(layer, (_GELU, TokenPool))
    for p in layer.parameters():
        err = _rel_err(p.grad, numeric(p.data))
        assert err < tol, f"parameter {p.name} {p.shape}: relative error {err:.2e}"


def _randomize(layer, rng, scale=0.5):
    """Non-trivial values for parameters that start at 0 or 1 (biases, norms)."""
    for p in layer.parameters():
        p.data[...] += rng.standard_normal(p.shape) * scale
    return layer


def _vit(dtype, rng, image=8, patch=4, d=8, heads=2, depth=2, readout="first", classes=10):
    layers = [PatchEmbed(image, patch, 1, d, dtype, rng)]
    tokens = (image // patch) ** 2
    if readout == "first":
        layers.append(ClsToken(d, dtype, rng))
        tokens += 1
    layers.append(PositionalEmbedding(tokens, d, dtype, rng))
    layers += [TransformerEncoderBlock(d, heads, 2 * d, dtype=dtype, rng=rng) for _ in range(depth)]
    layers += [_LayerNorm(d, dtype=dtype), TokenPool(readout), _Dense(d, classes, dtype, rng, "head")]
    return Sequential(*layers)


# ---- gradients ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 5), (2, 1, 7), (1, 1, 1)])
def test_gradients_private_pieces(shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    check_gradients(_randomize(_Dense(shape[-1], 3, F64, rng), rng), x)
    check_gradients(_randomize(_LayerNorm(shape[-1], dtype=F64), rng), x if shape[-1] > 1 else x + 0.0)
    check_gradients(_GELU(), x * 2)


@pytest.mark.parametrize("n,t,d,heads", [(2, 4, 6, 2), (3, 1, 4, 4), (1, 5, 9, 3), (2, 3, 5, 1)])
def test_gradients_attention(n, t, d, heads):
    rng = np.random.default_rng(n + t + d + heads)
    layer = _randomize(MultiHeadSelfAttention(d, heads, F64, rng), rng)
    check_gradients(layer, rng.standard_normal((n, t, d)))


def test_gradients_attention_with_mask():
    rng = np.random.default_rng(5)
    layer = _randomize(MultiHeadSelfAttention(6, 3, F64, rng), rng)
    mask = np.array([[True, True, False, True, False], [True, False, False, False, False]])
    check_gradients(layer, rng.standard_normal((2, 5, 6)), mask=mask)


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("t", [1, 4])
def test_gradients_encoder_block(with_mask, t):
    rng = np.random.default_rng(t)
    block = _randomize(TransformerEncoderBlock(6, 2, mlp_hidden=7, dtype=F64, rng=rng), rng, 0.3)
    mask = None
    if with_mask:
        mask = rng.random((2, t)) > 0.4
        mask[:, 0] = True
    check_gradients(block, rng.standard_normal((2, t, 6)), mask=mask)


def test_gradients_token_layers():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4, 5))
    check_gradients(PositionalEmbedding(6, 5, F64, rng), x)  # T < max_len: only 4 rows get gradient
    check_gradients(ClsToken(5, F64, rng), x)
    check_gradients(TokenPool("mean"), x)
    check_gradients(TokenPool("first"), x)


@pytest.mark.parametrize("image,patch,channels,flat", [(8, 2, 1, False), (8, 4, 1, True), (4, 2, 3, False)])
def test_gradients_patch_embed(image, patch, channels, flat):
    rng = np.random.default_rng(image + patch)
    layer = _randomize(PatchEmbed(image, patch, channels, 3, F64, rng), rng)
    x = rng.standard_normal((2, channels, image, image))
    check_gradients(layer, x.reshape(2, -1) if flat else x)


@pytest.mark.parametrize("readout", ["first", "mean"])
def test_gradients_tiny_vit(readout):
    rng = np.random.default_rng(3)
    model = _randomize(_vit(F64, rng, image=4, patch=2, d=4, heads=2, depth=1, readout=readout, classes=3),
                       rng, 0.3)
    check_gradients(model, rng.standard_normal((2, 1, 4, 4)))


# ---- forward references ------------------------------------------------------------------
def test_attention_matches_reference():
    """Per-head loops, straight from the definition."""
    rng = np.random.default_rng(0)
    n, t, d, h = 2, 5, 12, 3
    layer = _randomize(MultiHeadSelfAttention(d, h, F64, rng), rng)
    x = rng.standard_normal((n, t, d))
    mask = np.array([[True] * 5, [True, True, True, False, False]])
    dk = d // h
    wq, wk, wv, wo = (m.W.data for m in (layer.q, layer.k, layer.v, layer.out))
    bq, bk, bv, bo = (m.b.data for m in (layer.q, layer.k, layer.v, layer.out))
    want = np.zeros((n, t, d))
    for b in range(n):
        heads = []
        keep = np.flatnonzero(mask[b])
        for i in range(h):
            cols = slice(i * dk, (i + 1) * dk)
            q = x[b] @ wq[:, cols] + bq[cols]
            k = (x[b] @ wk[:, cols] + bk[cols])[keep]
            v = (x[b] @ wv[:, cols] + bv[cols])[keep]
            s = q @ k.T / math.sqrt(dk)
            p = np.exp(s - s.max(axis=1, keepdims=True))
            heads.append(p / p.sum(axis=1, keepdims=True) @ v)
        want[b] = np.concatenate(heads, axis=1) @ wo + bo
    np.testing.assert_allclose(layer.forward(x, mask), want, rtol=1e-12, atol=1e-12)


def test_patch_order_and_layer_norm_and_gelu():
    x = np.arange(2 * 64, dtype=F64).reshape(2, 1, 8, 8)
    pe = PatchEmbed(8, 4, 1, 16, F64)
    pe.proj.W.data[...] = np.eye(16)
    out = pe.forward(x)
    np.testing.assert_array_equal(out[1, 1], x[1, 0, :4, 4:].reshape(-1))  # top-right patch
    np.testing.assert_array_equal(out[0, 2], x[0, 0, 4:, :4].reshape(-1))  # bottom-left patch
    y = _LayerNorm(5, dtype=F64).forward(np.arange(10.0).reshape(2, 5))
    np.testing.assert_allclose(y.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=-1), 1 / (1 + 1e-5 / 2), rtol=1e-9)
    g = _GELU().forward(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_allclose(g, [-0.15865525393145707, 0.0, 1.9544997361036416], rtol=1e-12)


def test_bad_shapes():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(10, 3)
    with pytest.raises(ValueError, match="mask shape"):
        MultiHeadSelfAttention(4, 2).forward(np.zeros((2, 3, 4), np.float32), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="T <= 3"):
        PositionalEmbedding(3, 4).forward(np.zeros((1, 4, 4), np.float32))
    with pytest.raises(ValueError, match="1x8x8"):
        PatchEmbed(8, 2, 1, 4).forward(np.zeros((2, 1, 7, 7), np.float32))


def test_float32_by_default():
    model = _vit(np.float32, np.random.default_rng(0))
    assert all(p.data.dtype == np.float32 for p in model.parameters())
    assert model.forward(np.zeros((2, 1, 8, 8), np.float32)).dtype == np.float32


# ---- export parity ------------------------------------------------------------------------
def _check_sessions(proto, model, make_inputs, uses_mask=False):
    """onnxruntime and pyengine must both match the trainer."""
    data = proto.SerializeToString()
    sessions = [("onnxruntime", ort.InferenceSession(data, providers=["CPUExecutionProvider"])),
                ("pyengine", pyengine.InferenceSession(data))]
    for batch in (1, 5):
        feeds = make_inputs(batch)
        want = model.forward(*feeds.values()) if uses_mask else model.forward(feeds["input"])
        for name, sess in sessions:
            got = sess.run(None, feeds)[0]
            assert got.shape == want.shape, name
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


def _export_parity(model, shape, rng):
    proto = to_onnx(model, None, rng.standard_normal((2,) + shape).astype(np.float32))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    _check_sessions(proto, model, lambda b: {"input": rng.standard_normal((b,) + shape).astype(np.float32)})


def _export_with_mask(layer, t, d):
    """A two-input graph (tokens, bool key-padding mask) from the layer's export(ctx, x, mask)."""
    ctx = ExportContext()
    x, m = ctx.fresh("input"), ctx.fresh("mask")
    y = layer.export(ctx, x, m)
    ctx.nodes.append(helper.make_node("Identity", [y], ["output"]))
    graph = helper.make_graph(ctx.nodes, "masked", [
        helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", t, d]),
        helper.make_tensor_value_info(m, TensorProto.BOOL, ["batch", t])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", t, d])], ctx.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = 8
    onnx.checker.check_model(proto, full_check=True)
    return proto


CASES = {
    "attention": (lambda r: MultiHeadSelfAttention(12, 3, rng=r), (5, 12)),
    "attention_len1": (lambda r: MultiHeadSelfAttention(6, 2, rng=r), (1, 6)),
    "encoder_block": (lambda r: TransformerEncoderBlock(8, 2, rng=r), (6, 8)),
    "positional": (lambda r: PositionalEmbedding(7, 4, rng=r), (5, 4)),
    "patch2": (lambda r: PatchEmbed(8, 2, 1, 6, rng=r), (1, 8, 8)),
    "patch4_flat": (lambda r: PatchEmbed(8, 4, 1, 6, rng=r), (64,)),
    "cls_token": (lambda r: ClsToken(4, rng=r), (3, 4)),
    "pool_mean": (lambda r: TokenPool("mean"), (3, 4)),
    "pool_first": (lambda r: TokenPool("first"), (3, 4)),
    "vit_cls": (lambda r: _vit(np.float32, r, patch=2, readout="first"), (1, 8, 8)),
    "vit_mean": (lambda r: _vit(np.float32, r, patch=4, readout="mean"), (1, 8, 8)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_export_parity_onnxruntime(case):
    rng = np.random.default_rng(len(case))
    build, shape = CASES[case]
    model = build(rng)
    _randomize(model, rng, 0.2) if isinstance(model, Layer) and model.parameters() else None
    _export_parity(model, shape, rng)  # asserts onnxruntime and pyengine parity


@pytest.mark.parametrize("case", ["attention", "encoder_block", "vit_cls"])
def test_export_parity_pyengine(case):
    rng = np.random.default_rng(1)
    build, shape = CASES[case]
    _export_parity(build(rng), shape, rng)  # onnxruntime and pyengine both checked


@pytest.mark.parametrize("layer_kind", ["attention", "block"])
def test_export_parity_with_mask(layer_kind):
    rng = np.random.default_rng(4)
    t, d = 5, 8
    layer = (MultiHeadSelfAttention(d, 4, rng=rng) if layer_kind == "attention"
             else TransformerEncoderBlock(d, 2, rng=rng))
    _randomize(layer, rng, 0.2)

    def inputs(b):
        mask = rng.random((b, t)) > 0.5
        mask[:, 0] = True
        return {"input": rng.standard_normal((b, t, d)).astype(np.float32), "mask": mask}

    _check_sessions(_export_with_mask(layer, t, d), layer, inputs, uses_mask=True)


def test_export_ops_are_opset17_standard():
    proto = to_onnx(_vit(np.float32, np.random.default_rng(0)), None, np.zeros((1, 1, 8, 8), np.float32))
    ops = {n.op_type for n in proto.graph.node}
    assert {"LayerNormalization", "Softmax", "Erf", "MatMul"} <= ops
    assert "Gelu" not in ops
    assert all(n.domain == "" for n in proto.graph.node)


def test_digits_transformer_script_smoke(tmp_path):
    """One epoch of models/train_digits_transformer.py, export and onnxruntime
    check (skips until the trainer's data/loss/optimizer/loop modules are merged)."""
    for mod in ("data", "losses", "optim", "loop", "layers"):
        pytest.importorskip(f"pyengine.train.{mod}")
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "models" / "train_digits_transformer.py"
    spec = importlib.util.spec_from_file_location("train_digits_transformer", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "digits_transformer.onnx"
    assert script.main(["--epochs", "1", "--d-model", "16", "--depth", "1", "--quiet", "--target", "0",
                        "--out", str(out)]) == 0
    assert out.exists()
