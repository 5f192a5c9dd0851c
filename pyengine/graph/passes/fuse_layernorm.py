"""Fuses LayerNorm written out with primitive ops (what exporters emit before
opset 17, and what hand-written models contain) into one LayerNormalization:

    mean = ReduceMean(x, last k axes)     d = Sub(x, mean)
    var  = ReduceMean(Pow(d, 2) | Mul(d, d), same axes)
    y    = Div(d, Sqrt(Add(var, eps)))    | Mul(d, Reciprocal(Sqrt(...)))
    [y = Mul(y, gamma)] [y = Add(y, beta)]   gamma, beta constants

Every intermediate must be read only by the pattern (and be no graph
output), so nothing computed is lost."""
from __future__ import annotations

import numpy as np

from ._match import close, const_scalar, is_float32, is_op, other_input, single_consumer


def _reduce_axes(graph, node):
    """Axes of a keepdims ReduceMean as a sorted list, or None."""
    if int(node.attrs.get("keepdims", 1)) != 1:
        return None
    if node.opset >= 18:
        if not node.input(1) or not graph.is_const(node.input(1)):
            return None
        axes = graph.const(node.input(1)).reshape(-1).tolist()
    else:
        axes = node.attrs.get("axes")
    if not axes:
        return None
    return sorted(int(a) for a in axes)


def _last_axes(graph, x, axes):
    """k when `axes` are exactly the last k axes of x, else None."""
    if all(a < 0 for a in axes):
        k = len(axes)
        return k if axes == list(range(-k, 0)) else None
    info = graph.infos.get(x)
    if info is None or info.shape is None:
        return None
    r = len(info.shape)
    norm = sorted(a + r if a < 0 else a for a in axes)
    k = len(norm)
    return k if norm == list(range(r - k, r)) else None


def _param(graph, name, k):
    """A constant gamma/beta reshaped to at most k dims (leading 1s dropped), or None."""
    if not graph.is_const(name):
        return None
    p = graph.const(name)
    if p.dtype != np.float32:
        return None
    while p.ndim > k and p.shape[0] == 1:
        p = p.reshape(p.shape[1:])
    return p if p.ndim <= k else None


def _match(graph, mean, consumers):
    x = mean.input(0)
    axes = _reduce_axes(graph, mean)
    if axes is None or not is_float32(graph, x):
        return None
    sub = single_consumer(graph, mean.outputs[0], consumers)
    if not is_op(sub, "Sub") or sub.inputs != [x, mean.outputs[0]]:
        return None
    d = sub.outputs[0]
    if d in graph.outputs:
        return None
    readers = consumers.get(d, [])
    sq = next((n for n in readers if is_op(n, "Pow") and n.inputs[0] == d
               and close(const_scalar(graph, n.input(1)), 2.0, 0)), None)
    if sq is None:
        sq = next((n for n in readers if is_op(n, "Mul") and n.inputs == [d, d]), None)
    div = next((n for n in readers if is_op(n, ("Div", "Mul")) and n.inputs[0] == d and n is not sq), None)
    if sq is None or div is None or len({id(n) for n in readers}) != 2:
        return None
    var = single_consumer(graph, sq.outputs[0], consumers)
    if not is_op(var, "ReduceMean") or var.inputs[0] != sq.outputs[0] or _reduce_axes(graph, var) != axes:
        return None
    add = single_consumer(graph, var.outputs[0], consumers)
    if not is_op(add, "Add"):
        return None
    eps_name = other_input(add, var.outputs[0])
    eps = const_scalar(graph, eps_name)
    if eps is None or graph.const(eps_name).dtype != np.float32:
        return None
    sqrt = single_consumer(graph, add.outputs[0], consumers)
    if not is_op(sqrt, "Sqrt"):
        return None
    chain = [mean, sub, sq, var, add, sqrt]
    std = sqrt.outputs[0]
    if div.op_type == "Mul":  # d * Reciprocal(std)
        rec = single_consumer(graph, std, consumers)
        if not is_op(rec, "Reciprocal") or div.input(1) != rec.outputs[0]:
            return None
        chain.append(rec)
        std = rec.outputs[0]
    if div.input(1) != std or single_consumer(graph, std, consumers) is not div:
        return None
    chain.append(div)
    k = _last_axes(graph, x, axes)
    if k is None:
        return None
    gamma = beta = None
    out = div.outputs[0]
    nxt = single_consumer(graph, out, consumers)
    if is_op(nxt, "Mul"):
        gamma = _param(graph, other_input(nxt, out) or "", k)
        if gamma is not None:
            chain.append(nxt)
            out = nxt.outputs[0]
            nxt = single_consumer(graph, out, consumers)
    if is_op(nxt, "Add"):
        beta = _param(graph, other_input(nxt, out) or "", k)
        if beta is not None:
            chain.append(nxt)
            out = nxt.outputs[0]
    return x, k, eps, gamma, beta, chain, out


def run(graph) -> bool:
    changed = False
    consumers = graph.consumers()
    for mean in list(graph.nodes):
        if not is_op(mean, "ReduceMean"):
            continue
        m = _match(graph, mean, consumers)
        if m is None:
            continue
        x, k, eps, gamma, beta, chain, out = m
        if gamma is None:
            gamma = np.ones((1,) * k, np.float32)  # broadcast over the normalized shape
        last = chain[-1]
        inputs = [x, graph.add_constant(mean.name + "_scale", gamma)]
        if beta is not None:
            inputs.append(graph.add_constant(mean.name + "_bias", beta))
        # The fused node takes the place of the last node of the pattern:
        # everything it reads is computed before that point.
        last.op_type, last.domain, last.opset = "LayerNormalization", "", 17
        last.inputs, last.outputs = inputs, [out]
        last.attrs = {"axis": -k, "epsilon": float(eps)}
        last.name = mean.name + "_layernorm"
        graph.remove_nodes(chain[:-1])
        consumers = graph.consumers()
        changed = True
    return changed
