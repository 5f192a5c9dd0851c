"""Folds inference BatchNormalization into the Conv or Gemm before it:
BN(y) = s * y + t with s = gamma / sqrt(var + eps), t = beta - mean * s, so
the weights are scaled by s per output channel and t joins the bias."""
from __future__ import annotations

import numpy as np

from ._match import single_consumer


def _bn_params(graph, bn):
    if len(bn.inputs) < 5 or not all(graph.is_const(i) for i in bn.inputs[1:5]):
        return None
    if len(bn.outputs) > 1 and any(bn.outputs[1:]):
        return None  # training outputs requested
    if bn.attrs.get("training_mode", 0):
        return None
    gamma, beta, mean, var = (graph.const(i).astype(np.float64) for i in bn.inputs[1:5])
    eps = float(bn.attrs.get("epsilon", 1e-5))
    s = gamma / np.sqrt(var + eps)
    return s, beta - mean * s


def _scaled(w, s):
    """float32 w times float64 s, rounded once to float32 (as through a
    float64 copy of w, but in NumPy's small buffers: no float64 copy of the
    weights, several times faster on large ones)."""
    out = np.empty(w.shape, np.float32)
    np.multiply(w, s, out=out, casting="unsafe")
    return out


def _fold_conv(graph, conv, bn) -> bool:
    if len(conv.inputs) < 2 or not graph.is_const(conv.inputs[1]):
        return False
    w = graph.const(conv.inputs[1])
    if w.dtype != np.float32:
        return False
    params = _bn_params(graph, bn)
    if params is None:
        return False
    s, t = params
    cout = w.shape[0]
    if s.shape != (cout,):
        return False
    b = graph.const(conv.inputs[2]).astype(np.float64) if len(conv.inputs) > 2 and conv.inputs[2] else 0.0
    if len(conv.inputs) > 2 and conv.inputs[2] and not graph.is_const(conv.inputs[2]):
        return False
    new_w = _scaled(w, s.reshape((cout,) + (1,) * (w.ndim - 1)))
    new_b = (b * s + t).astype(np.float32)
    conv.inputs = [conv.inputs[0], graph.add_constant(conv.inputs[1] + "_bnfold", new_w),
                   graph.add_constant(conv.name + "_bias_bnfold", new_b)]
    return True


def _fold_gemm(graph, gemm, bn) -> bool:
    if not graph.is_const(gemm.inputs[1]):
        return False
    b = graph.const(gemm.inputs[1])
    params = _bn_params(graph, bn)
    if params is None or b.dtype != np.float32 or b.ndim != 2:
        return False
    s, t = params
    trans_b = gemm.attrs.get("transB", 0)
    n = b.shape[0] if trans_b else b.shape[1]
    if s.shape != (n,):
        return False
    beta = float(gemm.attrs.get("beta", 1.0))
    c = 0.0
    if len(gemm.inputs) > 2 and gemm.inputs[2]:
        if not graph.is_const(gemm.inputs[2]):
            return False
        c = graph.const(gemm.inputs[2]).astype(np.float64)
        if c.size not in (1, n) or (c.ndim == 2 and c.shape[0] != 1):
            return False
        c = c.reshape(-1)
    new_b = _scaled(b, s[:, None] if trans_b else s[None, :])
    new_c = beta * c * s + t
    gemm.inputs = [gemm.inputs[0], graph.add_constant(gemm.inputs[1] + "_bnfold", new_b),
                   graph.add_constant(gemm.name + "_bias_bnfold", np.asarray(new_c, dtype=np.float32).reshape(n))]
    gemm.attrs["beta"] = 1.0
    return True


def run(graph) -> bool:
    consumers = graph.consumers()
    removed = []
    for node in graph.nodes:
        if node.domain or node.op_type not in ("Conv", "Gemm"):
            continue
        bn = single_consumer(graph, node.outputs[0], consumers)
        if bn is None or bn.op_type != "BatchNormalization" or bn.domain or bn.inputs[0] != node.outputs[0]:
            continue
        fold = _fold_conv if node.op_type == "Conv" else _fold_gemm
        if fold(graph, node, bn):
            node.outputs = [bn.outputs[0]]
            removed.append(bn)
            # `consumers` stays valid for every output still to be matched (the
            # BN output keeps its readers), so it is not rebuilt: that was
            # quadratic in the graph size.
    graph.remove_nodes(removed)
    return bool(removed)
