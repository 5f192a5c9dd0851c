"""Folds the per-channel constant Mul / Add / Sub / Div chain that follows a
Conv, ConvTranspose or Gemm into its weights and bias, and the one that
follows an inference BatchNormalization into its scale and B (light zoo
models put such an extra scale/shift after every normalization; DenseNet
then runs it on a BatchNormalization of a Concat, which has no conv to fold
into).

All these producers compute y = x * s + t per output channel, so another
y * m + a per channel only changes s and t. It folds only when the constant
really broadcasts along the channel axis (shape [C,1,1], [1,C,1,1], [1],
scalar..., never one that would change the output's shape), it is float32
and finite, the intermediate has no other reader, and no activation is fused
yet (a scale cannot move across an activation)."""
from __future__ import annotations

import numpy as np

from ._match import is_op, known_rank, other_input, single_consumer
from .fold_batchnorm import conv_out_channels, gemm_out_channels, scale_shift_conv, scale_shift_gemm

AFFINE_OPS = {"Mul", "Add", "Sub", "Div"}
# Ops whose output has the rank of their first input (to find a BatchNormalization's rank).
_SAME_RANK = {"BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "MaxPool", "AveragePool",
              "LRN", "InstanceNormalization", "Dropout", "Identity", "Elu", "HardSigmoid", "Concat"}


def _rank(graph, name, producers, depth=0):
    rank = known_rank(graph, name, producers)
    if rank is not None or depth > 16:
        return rank
    node = producers.get(name)
    if node is None or not is_op(node, _SAME_RANK | {"Conv", "ConvTranspose"}):
        return None
    if node.op_type in ("Conv", "ConvTranspose"):
        w = node.input(1)
        return graph.const(w).ndim if w and graph.is_const(w) else None
    for i in node.inputs if node.op_type == "Concat" else node.inputs[:1]:
        rank = _rank(graph, i, producers, depth + 1) if i else None
        if rank is not None:
            return rank
    return None


def per_channel(shape, rank: int, channels: int) -> bool:
    """True when a constant of `shape` broadcast against a [N, C, ...] value
    of `rank` dims (C = channels) is one value per channel, or one value,
    and leaves the value's shape as it is."""
    if rank < 2 or len(shape) > rank:
        return False
    padded = (1,) * (rank - len(shape)) + tuple(shape)
    return all(d == 1 for i, d in enumerate(padded) if i != 1) and padded[1] in (1, channels)


def affine_of(graph, node, value: str, rank: int, channels: int):
    """(m, a), float64 arrays of `channels` entries, when `node` computes
    value * m + a with per-channel constants; else None."""
    if not is_op(node, AFFINE_OPS) or len(node.inputs) != 2:
        return None
    const = other_input(node, value)
    if const is None or const == value or not graph.is_const(const):
        return None
    c = graph.const(const)
    if c.dtype != np.float32 or not per_channel(c.shape, rank, channels) or not np.all(np.isfinite(c)):
        return None
    v = np.broadcast_to(c.astype(np.float64).reshape(-1), (channels,))
    ones, zeros = np.ones(channels), np.zeros(channels)
    const_first = node.inputs[0] == const
    op = node.op_type
    if op == "Mul":
        return v, zeros
    if op == "Add":
        return ones, v
    if op == "Sub":
        return (-ones, v) if const_first else (ones, -v)
    if const_first or np.any(v == 0):  # Div: c / x is not affine
        return None
    return 1.0 / v, zeros


def _bn_channels(graph, bn):
    """Channels of an inference BatchNormalization with constant float32
    scale and B of one entry per channel, else None."""
    if bn.attrs.get("training_mode", 0) or any(o for o in bn.outputs[1:]) or len(bn.inputs) < 5:
        return None
    if bn.opset < 9 and not bn.attrs.get("spatial", 1):
        return None  # parameters per element, not per channel
    scale, bias = bn.input(1), bn.input(2)
    if not (graph.is_const(scale) and graph.is_const(bias)):
        return None
    s, b = graph.const(scale), graph.const(bias)
    if s.dtype != np.float32 or b.dtype != np.float32 or s.ndim != 1 or b.shape != s.shape:
        return None
    return s.shape[0]


def _scale_shift_bn(graph, bn, m, a) -> None:
    """(x - mean) / sqrt(var + eps) * scale + B, then * m + a: scale * m and B * m + a."""
    scale = graph.const(bn.input(1)).astype(np.float64)
    bias = graph.const(bn.input(2)).astype(np.float64)
    bn.inputs = list(bn.inputs)
    bn.inputs[1] = graph.add_constant(bn.name + "_scale_affine", (scale * m).astype(np.float32))
    bn.inputs[2] = graph.add_constant(bn.name + "_bias_affine", (bias * m + a).astype(np.float32))


def _target(graph, node, producers):
    """(rank, channels, fold function) for a node the pass folds into, else None."""
    if node.attrs.get("activation"):
        return None
    if is_op(node, {"Conv", "ConvTranspose"}):
        cout = conv_out_channels(graph, node)
        return None if cout is None else (graph.const(node.input(1)).ndim, cout, scale_shift_conv)
    if is_op(node, "Gemm"):
        n = gemm_out_channels(graph, node)
        return None if n is None else (2, n, scale_shift_gemm)
    if is_op(node, "BatchNormalization"):
        c = _bn_channels(graph, node)
        rank = _rank(graph, node.input(0), producers) if c is not None else None
        return None if rank is None else (rank, c, _scale_shift_bn)
    return None


def run(graph) -> bool:
    consumers, producers = graph.consumers(), graph.producers()
    removed = []
    for node in graph.nodes:
        if not is_op(node, {"Conv", "ConvTranspose", "Gemm", "BatchNormalization"}) or not node.outputs:
            continue
        target = _target(graph, node, producers)
        if target is None:
            continue
        rank, channels, fold = target
        m, a = np.ones(channels), np.zeros(channels)
        chain = []
        out = node.outputs[0]
        while True:
            nxt = single_consumer(graph, out, consumers)
            step = affine_of(graph, nxt, out, rank, channels) if nxt is not None else None
            if step is None:
                break
            m, a = m * step[0], a * step[0] + step[1]
            chain.append(nxt)
            out = nxt.outputs[0]
        if not chain:
            continue
        fold(graph, node, m, a)
        # The chain's last output keeps its readers, so `consumers` stays valid
        # for every node still to be matched (not rebuilt: quadratic).
        node.outputs = [out] + list(node.outputs[1:])
        removed.extend(chain)
    graph.remove_nodes(removed)
    return bool(removed)
