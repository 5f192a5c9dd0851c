"""Small helpers for pattern-matching passes."""
from __future__ import annotations


def single_consumer(graph, value: str, consumers: dict):
    """The only node reading `value`, or None when it has several readers or
    is a graph output (then it must stay materialized)."""
    if value in graph.outputs:
        return None
    readers = consumers.get(value, [])
    if len(readers) != 1:
        return None
    return readers[0]


def is_op(node, op_type) -> bool:
    """True when `node` is a standard-domain node of `op_type` (a str or a set)."""
    if node is None or node.domain not in ("", "ai.onnx"):
        return False
    return node.op_type == op_type if isinstance(op_type, str) else node.op_type in op_type


def other_input(node, value: str):
    """The input of a two-input node that is not `value` (None if `value` is not read)."""
    a, b = node.input(0), node.input(1)
    if a == value:
        return b
    if b == value:
        return a
    return None


def const_scalar(graph, name: str):
    """The float value of a constant holding one element, else None."""
    if not name or not graph.is_const(name):
        return None
    c = graph.const(name)
    if c.size != 1 or c.dtype.kind not in "fiu":
        return None
    return float(c.reshape(-1)[0])


def close(value, target: float, rel: float = 1e-4) -> bool:
    return value is not None and abs(value - target) <= rel * max(abs(target), 1e-12)


def known_rank(graph, name: str, producers: dict, depth: int = 0):
    """Rank of `value` when it can be told without shapes: declared or
    inferred type, constant, or a producer that fixes it. None if unknown."""
    if graph.is_const(name):
        return graph.const(name).ndim
    info = graph.infos.get(name)
    if info is not None and info.shape is not None:
        return len(info.shape)
    node = producers.get(name)
    if node is None or depth > 8 or node.domain not in ("", "ai.onnx"):
        return None
    op = node.op_type
    if op == "Transpose" and node.attrs.get("perm") is not None:
        return len(node.attrs["perm"])
    if op == "Reshape" and graph.is_const(node.input(1)):
        return int(graph.const(node.input(1)).size)
    if op in ("Add", "Sub", "Mul", "Div", "Pow", "Where", "Relu", "Tanh", "Erf", "Sqrt", "Softmax", "Cast",
              "Neg", "Transpose", "Identity", "Dropout", "Equal", "Not"):
        ranks = [known_rank(graph, i, producers, depth + 1) for i in node.inputs[:3 if op == "Where" else 2] if i]
        if op in ("Dropout", "Identity", "Transpose", "Relu", "Tanh", "Erf", "Sqrt", "Softmax", "Cast", "Neg",
                  "Not"):
            ranks = ranks[:1]
        return None if not ranks or None in ranks else max(ranks)
    if op == "MatMul":
        ranks = [known_rank(graph, i, producers, depth + 1) for i in node.inputs[:2]]
        return None if None in ranks or min(ranks) < 2 else max(ranks)
    return None


def compose_perm(inner, outer):
    """Perm of transpose(transpose(x, inner), outer) as one transpose of x."""
    return [int(inner[p]) for p in outer]


def is_float32(graph, name: str) -> bool:
    """False only when the value is known not to be float32."""
    import numpy as np
    info = graph.infos.get(name)
    if info is not None and info.dtype is not None:
        return info.dtype == np.float32
    if graph.is_const(name):
        return graph.const(name).dtype == np.float32
    return True


def remove_unused(graph, nodes) -> None:
    """Removes those of `nodes` whose outputs nobody reads any more (latest first,
    so a chain goes at once); nodes still read elsewhere stay."""
    dead, uses = [], graph.consumers()
    for node in reversed(list(nodes)):
        dead_ids = {id(d) for d in dead}
        if any(o in graph.outputs or any(id(u) not in dead_ids for u in uses.get(o, [])) for o in node.outputs if o):
            continue
        dead.append(node)
    graph.remove_nodes(dead)
