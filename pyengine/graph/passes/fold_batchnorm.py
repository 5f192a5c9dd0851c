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


def conv_out_channels(graph, conv):
    """Output channels of a Conv/ConvTranspose whose weights are a float32
    constant and whose bias is constant or absent (the ones a per-channel
    scale can fold into), else None."""
    if len(conv.inputs) < 2 or not graph.is_const(conv.inputs[1]):
        return None
    if len(conv.inputs) > 2 and conv.inputs[2] and not graph.is_const(conv.inputs[2]):
        return None
    w = graph.const(conv.inputs[1])
    if w.dtype != np.float32 or w.ndim < 3:
        return None
    if conv.op_type == "Conv":
        return w.shape[0]
    group = int(conv.attrs.get("group", 1))
    return w.shape[1] * group if group >= 1 and w.shape[0] % group == 0 else None


def scale_shift_conv(graph, conv, s, t) -> None:
    """Makes `conv` (checked by conv_out_channels) compute conv(x) * s + t,
    s and t float64 per output channel: weights scaled by s, bias b * s + t."""
    w = graph.const(conv.inputs[1])
    cout = conv_out_channels(graph, conv)
    has_bias = len(conv.inputs) > 2 and conv.inputs[2]
    b = graph.const(conv.inputs[2]).astype(np.float64) if has_bias else 0.0
    if conv.op_type == "Conv":
        new_w = _scaled(w, s.reshape((cout,) + (1,) * (w.ndim - 1)))
    else:  # ConvTranspose: W is [Cin, Cout / group, k...], input channels grouped like the output ones
        group = int(conv.attrs.get("group", 1))
        grouped = w.reshape((group, w.shape[0] // group) + w.shape[1:])
        s_g = s.reshape((group, 1, w.shape[1]) + (1,) * (w.ndim - 2))
        new_w = _scaled(grouped, s_g).reshape(w.shape)
    new_b = (b * s + t).astype(np.float32)
    conv.inputs = [conv.inputs[0], graph.add_constant(conv.inputs[1] + "_bnfold", new_w),
                   graph.add_constant(conv.name + "_bias_bnfold", new_b)]


def gemm_out_channels(graph, gemm):
    """Columns N of a Gemm whose B is a float32 matrix constant and whose C
    is absent or a constant of 1 or N elements (one row), else None."""
    if len(gemm.inputs) < 2 or not graph.is_const(gemm.inputs[1]):
        return None
    b = graph.const(gemm.inputs[1])
    if b.dtype != np.float32 or b.ndim != 2:
        return None
    n = b.shape[0] if gemm.attrs.get("transB", 0) else b.shape[1]
    if len(gemm.inputs) > 2 and gemm.inputs[2]:
        if not graph.is_const(gemm.inputs[2]):
            return None
        c = graph.const(gemm.inputs[2])
        if c.size not in (1, n) or (c.ndim == 2 and c.shape[0] != 1) or c.ndim > 2:
            return None
    return n


def scale_shift_gemm(graph, gemm, s, t) -> None:
    """Makes `gemm` (checked by gemm_out_channels) compute gemm(...) * s + t
    with s, t float64 per output column."""
    b = graph.const(gemm.inputs[1])
    trans_b = gemm.attrs.get("transB", 0)
    n = gemm_out_channels(graph, gemm)
    beta = float(gemm.attrs.get("beta", 1.0))
    c = 0.0
    if len(gemm.inputs) > 2 and gemm.inputs[2]:
        c = graph.const(gemm.inputs[2]).astype(np.float64).reshape(-1)
    new_b = _scaled(b, s[:, None] if trans_b else s[None, :])
    new_c = beta * c * s + t
    gemm.inputs = [gemm.inputs[0], graph.add_constant(gemm.inputs[1] + "_bnfold", new_b),
                   graph.add_constant(gemm.name + "_bias_bnfold",
                                      np.broadcast_to(np.asarray(new_c, dtype=np.float32), (n,)).copy())]
    gemm.attrs["beta"] = 1.0


def _fold_conv(graph, conv, bn) -> bool:
    cout = conv_out_channels(graph, conv)
    params = _bn_params(graph, bn) if conv.op_type == "Conv" and cout is not None else None
    if params is None or params[0].shape != (cout,):
        return False
    scale_shift_conv(graph, conv, *params)
    return True


def _fold_gemm(graph, gemm, bn) -> bool:
    n = gemm_out_channels(graph, gemm)
    params = _bn_params(graph, bn) if n is not None else None
    if params is None or params[0].shape != (n,):
        return False
    scale_shift_gemm(graph, gemm, *params)
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
