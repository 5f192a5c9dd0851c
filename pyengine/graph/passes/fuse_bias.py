"""Fuses `MatMul -> Add(constant bias over the last axis)` into MatMul with a
bias input, and `Conv -> Add(constant per-channel)` into the Conv's bias, so
the add happens while the result is still in registers."""
from __future__ import annotations

import numpy as np

from ._match import single_consumer


def _other_input(add, value):
    a, b = add.inputs[0], add.inputs[1]
    return b if a == value else a if b == value else None


def _matmul_bias(graph, mm, add) -> bool:
    if len(mm.inputs) != 2 or not graph.is_const(mm.inputs[1]):
        return False
    w = graph.const(mm.inputs[1])
    bias_name = _other_input(add, mm.outputs[0])
    if bias_name is None or not graph.is_const(bias_name) or w.ndim < 2:
        return False
    bias = graph.const(bias_name)
    n = w.shape[-1]
    if bias.dtype != np.float32 or bias.size != n or any(d != 1 for d in bias.shape[:-1]):
        return False
    if bias.ndim > 1 and bias.ndim > _out_rank(graph, mm):
        return False  # the add would raise the rank
    mm.inputs = mm.inputs + [graph.add_constant(mm.name + "_bias", bias.reshape(n))]
    return True


def _out_rank(graph, mm):
    a = graph.infos.get(mm.inputs[0])
    return len(a.shape) if a is not None and a.shape is not None else 0


def _conv_bias(graph, conv, add) -> bool:
    if len(conv.inputs) < 2 or not graph.is_const(conv.inputs[1]):
        return False
    cout = graph.const(conv.inputs[1]).shape[0]
    bias_name = _other_input(add, conv.outputs[0])
    if bias_name is None or not graph.is_const(bias_name):
        return False
    extra = graph.const(bias_name)
    rank = graph.const(conv.inputs[1]).ndim
    # per-channel: shape (C, 1, ..., 1) or (1, C, 1, ..., 1), no rank increase
    if extra.dtype != np.float32 or extra.size != cout or extra.ndim > rank:
        return False
    shape = (1,) * (rank - extra.ndim) + extra.shape
    if shape[1] != cout:
        return False
    old = graph.const(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else np.zeros(cout, np.float32)
    if len(conv.inputs) > 2 and conv.inputs[2] and not graph.is_const(conv.inputs[2]):
        return False
    conv.inputs = conv.inputs[:2] + [graph.add_constant(conv.name + "_bias", (old + extra.reshape(cout)).astype(np.float32))]
    return True


def run(graph) -> bool:
    consumers = graph.consumers()
    removed = []
    for node in graph.nodes:
        if node.domain or node.op_type not in ("MatMul", "Conv") or "activation" in node.attrs:
            continue
        add = single_consumer(graph, node.outputs[0], consumers)
        if add is None or add.op_type != "Add" or add.domain:
            continue
        fuse = _matmul_bias if node.op_type == "MatMul" else _conv_bias
        if fuse(graph, node, add):
            node.outputs = [add.outputs[0]]
            removed.append(add)
            # `consumers` stays valid for every output still to be matched (the
            # Add's output keeps its readers): not rebuilt (quadratic).
    graph.remove_nodes(removed)
    return bool(removed)
