"""The fused pyengine.Attention kernel, run through a model holding the node
directly, against a NumPy reference: layouts (permutations), masks with
broadcasting, odd and empty sizes, both ISAs, 1 and 2 threads."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

import pyengine


def reference(q, kt, v, mask, scale, perms):
    qp, kp, vp, op = perms
    ql = q.transpose(qp).astype(np.float64)
    ktl = kt.transpose(kp).astype(np.float64)
    vl = v.transpose(vp).astype(np.float64)
    s = ql @ ktl * scale
    if mask is not None:
        s = s + mask
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ vl).transpose(op).astype(np.float32)


def attention_model(q, kt, v, mask, attrs, factors=(), out_rank=None):
    inputs = {"q": q, "kt": kt, "v": v}
    if mask is not None:
        inputs["mask"] = mask
    g_inputs = [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, list(a.shape)) for n, a in inputs.items()]
    inits = [onnx.numpy_helper.from_array(np.asarray(f, np.float32), f"f{i}") for i, f in enumerate(factors)]
    node = helper.make_node("Attention", ["q", "kt", "v", "mask" if mask is not None else ""]
                            + [f"f{i}" for i in range(len(factors))], ["y"], domain="pyengine", **attrs)
    graph = helper.make_graph([node], "attn", g_inputs,
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [None] * (out_rank or q.ndim))],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("pyengine", 1)])
    model.ir_version = 8
    return model, inputs


def run_engine(model, feeds, threads=1):
    so = pyengine.SessionOptions()
    so.intra_op_num_threads = threads
    return pyengine.InferenceSession(model.SerializeToString(), so).run(None, feeds)[0]


def inv(p):
    return list(np.argsort(p))


CASES = [
    # (batch dims, Sq, Sk, D, Dv)
    ((2, 3), 5, 7, 4, 6),
    ((1, 2), 1, 1, 1, 1),
    ((3,), 17, 9, 8, 8),
    ((2, 1), 130, 33, 16, 5),   # more than one query block, tails
    ((1, 1), 9, 300, 3, 7),
    ((), 13, 17, 9, 9),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", CASES)
def test_attention_plain(isa, rng, case, threads):
    batch, sq, sk, d, dv = case
    q = rng.standard_normal(batch + (sq, d)).astype(np.float32)
    kt = rng.standard_normal(batch + (d, sk)).astype(np.float32)
    v = rng.standard_normal(batch + (sk, dv)).astype(np.float32)
    scale = 1 / np.sqrt(max(d, 1))
    model, feeds = attention_model(q, kt, v, None, {"scale": scale})
    ident = list(range(len(batch) + 2))
    expected = reference(q, kt, v, None, scale, (ident, ident, ident, ident))
    np.testing.assert_allclose(run_engine(model, feeds, threads), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mask_kind", ["full", "key_padding", "per_query", "scalar_row", "none"])
def test_attention_multihead_layout(isa, rng, mask_kind, threads):
    """[B, S, H, D] tensors read as [B, H, S, D]; output written as [B, S, H, Dv]."""
    b, h, sq, sk, d, dv = 2, 3, 11, 9, 5, 7
    q = rng.standard_normal((b, sq, h, d)).astype(np.float32)
    k = rng.standard_normal((b, sk, h, d)).astype(np.float32)    # kt = k.transpose(0, 2, 3, 1)
    v = rng.standard_normal((b, sk, h, dv)).astype(np.float32)
    shapes = {"full": (b, h, sq, sk), "key_padding": (b, 1, 1, sk), "per_query": (sq, sk), "scalar_row": (b, 1, sq, 1)}
    mask = None
    if mask_kind != "none":
        mask = rng.standard_normal(shapes[mask_kind]).astype(np.float32)
        if mask_kind == "key_padding":
            mask[..., -2:] = -1e4
    perms = ([0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3], [0, 2, 1, 3])
    attrs = {"scale": 0.5, "q_perm": perms[0], "k_perm": perms[1], "v_perm": perms[2], "out_perm": perms[3]}
    model, feeds = attention_model(q, k, v, mask, attrs)
    expected = reference(q, k, v, mask, 0.5, perms)
    got = run_engine(model, feeds, threads)
    assert got.shape == (b, sq, h, dv)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_attention_transposed_operands(isa, rng):
    """Q stored [D, Sq] (trans A), K stored [Sk, D] read as k^T, V stored [Dv, Sk]."""
    sq, sk, d, dv = 6, 10, 4, 3
    q = rng.standard_normal((2, d, sq)).astype(np.float32)
    k = rng.standard_normal((2, sk, d)).astype(np.float32)
    v = rng.standard_normal((2, dv, sk)).astype(np.float32)
    perms = ([0, 2, 1], [0, 2, 1], [0, 2, 1], [0, 1, 2])
    attrs = {"scale": 0.3, "q_perm": perms[0], "k_perm": perms[1], "v_perm": perms[2]}
    model, feeds = attention_model(q, k, v, None, attrs)
    np.testing.assert_allclose(run_engine(model, feeds), reference(q, k, v, None, 0.3, perms), rtol=1e-4, atol=1e-5)


def test_attention_broadcast_batch_and_factors(rng):
    """K/V shared across heads (batch broadcast); runtime scale factors folded at compile time."""
    q = rng.standard_normal((2, 4, 5, 8)).astype(np.float32)
    kt = rng.standard_normal((2, 1, 8, 6)).astype(np.float32)
    v = rng.standard_normal((6, 3)).astype(np.float32)
    attrs = {"scale": 2.0, "scale_ops": [1, -1]}
    model, feeds = attention_model(q, kt, v, None, attrs, factors=(np.array(0.5), np.array([4.0])))
    ident4 = [0, 1, 2, 3]
    expected = reference(q, kt, v, None, 0.25, (ident4, ident4, [0, 1], ident4))
    np.testing.assert_allclose(run_engine(model, feeds), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dims", [(0, 5, 3, 2), (4, 0, 3, 2), (4, 5, 0, 2), (4, 5, 3, 0)])
def test_attention_empty(rng, dims):
    sq, sk, d, dv = dims
    q = rng.standard_normal((2, sq, d)).astype(np.float32)
    kt = rng.standard_normal((2, d, sk)).astype(np.float32)
    v = rng.standard_normal((2, sk, dv)).astype(np.float32)
    model, feeds = attention_model(q, kt, v, None, {"scale": 1.0})
    got = run_engine(model, feeds)
    assert got.shape == (2, sq, dv)
    if sk == 0:
        np.testing.assert_array_equal(got, 0)
    else:
        ident = [0, 1, 2]
        np.testing.assert_allclose(got, reference(q, kt, v, None, 1.0, (ident,) * 4), rtol=1e-5, atol=1e-6)


def test_attention_fully_masked_row_is_nan(rng):
    """Like Softmax, a row whose keys are all -inf gives NaN; other rows are unaffected."""
    q = rng.standard_normal((1, 3, 4)).astype(np.float32)
    kt = rng.standard_normal((1, 4, 5)).astype(np.float32)
    v = rng.standard_normal((1, 5, 2)).astype(np.float32)
    mask = np.zeros((3, 5), np.float32)
    mask[1] = -np.inf
    mask[2, :3] = -np.inf
    model, feeds = attention_model(q, kt, v, mask, {"scale": 1.0})
    got = run_engine(model, feeds)
    assert np.isnan(got[0, 1]).all()
    ident = [0, 1, 2]
    expected = reference(q, kt, v, np.where(np.isinf(mask), -1e30, mask).astype(np.float32), 1.0, (ident,) * 4)
    np.testing.assert_allclose(got[0, [0, 2]], expected[0, [0, 2]], rtol=1e-5, atol=1e-6)


def test_attention_shape_errors(rng):
    q = rng.standard_normal((2, 3, 4)).astype(np.float32)
    kt = rng.standard_normal((2, 5, 6)).astype(np.float32)   # D mismatch
    v = rng.standard_normal((2, 6, 2)).astype(np.float32)
    model, feeds = attention_model(q, kt, v, None, {"scale": 1.0})
    with pytest.raises(ValueError, match="do not chain"):
        run_engine(model, feeds)
