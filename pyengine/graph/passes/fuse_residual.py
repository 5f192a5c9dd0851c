"""Fuses the residual connection of ResNet-style blocks,
`Conv -> Add(other) [-> Relu]`, into the Conv: a fourth input `sum` (the
other addend) and the Relu, when there is one, as the fused activation, so
the kernel computes relu(conv + bias + sum) while the conv's output rows are
still in cache instead of one or two more passes over the tensor. A Sum of
two inputs (Caffe2-era exports such as the zoo's ResNet-50) counts as Add.

Only when the other addend is known to have exactly the Conv's output shape
(no broadcasting), both are float32, and the Conv has no fused activation
yet (an activation before the add cannot move after it)."""
from __future__ import annotations

import numpy as np

from ._match import is_op, other_input, single_consumer


def _same_shape(graph, a: str, b: str) -> bool:
    ia, ib = graph.infos.get(a), graph.infos.get(b)
    if ia is None or ib is None or ia.shape is None or ib.shape is None:
        return False
    if any(d is None for d in ia.shape) or tuple(ia.shape) != tuple(ib.shape):
        return False
    return all(i.dtype is not None and np.dtype(i.dtype) == np.float32 for i in (ia, ib))


def run(graph) -> bool:
    consumers = graph.consumers()
    removed = []
    moved = {}  # id(Add) -> the Conv taking its place in the node order
    for conv in graph.nodes:
        if not is_op(conv, "Conv") or "activation" in conv.attrs or len(conv.inputs) > 3:
            continue
        y = conv.outputs[0]
        add = single_consumer(graph, y, consumers)
        if not is_op(add, {"Add", "Sum"}) or len(add.inputs) != 2 or add.inputs[0] == add.inputs[1]:
            continue
        other = other_input(add, y)
        if not other or not _same_shape(graph, y, other):
            continue
        relu = single_consumer(graph, add.outputs[0], consumers)
        bias = conv.input(2)
        conv.inputs = [conv.inputs[0], conv.inputs[1], bias, other]
        if is_op(relu, "Relu"):
            conv.attrs["activation"], conv.attrs["activation_alpha"], conv.attrs["activation_beta"] = "Relu", 0.0, 0.0
            conv.outputs = [relu.outputs[0]]
            removed.append(relu)
        else:
            conv.outputs = [add.outputs[0]]
        moved[id(add)] = conv
        consumers = graph.consumers()
    if moved:
        # The other addend may be computed after the Conv (a shortcut branch
        # listed later): the Conv moves to the Add's place, after both.
        fused = {id(c) for c in moved.values()}
        graph.nodes = [moved.get(id(n), n) for n in graph.nodes if id(n) not in fused]
    graph.remove_nodes(removed)
    return bool(moved)
