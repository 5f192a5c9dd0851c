"""Constant folding: nodes whose inputs are all constants are computed once,
with the same kernels that would run them, and replaced by their results.
(Values that depend on input shapes are folded later, when the plan is
specialized for concrete shapes; see graph/specialize.py.)"""
from __future__ import annotations

from ...ops.registry import get_opdef
from ..ir import TensorInfo
from ..specialize import MAX_FOLDED_BYTES, _numel, infer_node, node_error


# Operands a kernel packs once when the plan is built: a value that only
# feeds these is a weight, and computing it on every run costs far more than
# storing it (the light zoo's AlexNet builds its 150 MB FC weights with
# ConstantOfShape: 23 ms of a 55 ms run). Such values fold up to this size.
_WEIGHT_OPS = {"Conv": {1, 2}, "ConvTranspose": {1, 2}, "Gemm": {1, 2}, "MatMul": {1},
               "LSTM": {1, 2, 3, 6, 7}, "GRU": {1, 2, 3, 5}, "RNN": {1, 2, 3, 5}}
# Ops that only rearrange a weight on its way to one of those.
_WEIGHT_PREP = {"Transpose", "Reshape", "Cast", "Identity", "Squeeze", "Unsqueeze", "Flatten"}
MAX_FOLDED_WEIGHT_BYTES = 2 << 30


def _only_weight(graph, name: str, consumers: dict, depth: int = 0) -> bool:
    """True when every reader of `name` takes it as a packed weight operand,
    directly or through a few rearranging ops."""
    readers = consumers.get(name, [])
    if not readers or name in graph.outputs or depth > 4:
        return False
    for node in readers:
        if node.domain not in ("", "ai.onnx"):
            return False
        slots = _WEIGHT_OPS.get(node.op_type)
        if slots is not None:
            if not all(i in slots for i, x in enumerate(node.inputs) if x == name):
                return False
        elif node.op_type in _WEIGHT_PREP and node.input(0) == name:
            if not all(_only_weight(graph, o, consumers, depth + 1) for o in node.outputs if o):
                return False
        else:
            return False
    return True


def run(graph) -> bool:
    folded = []
    consumers = None
    for node in graph.nodes:
        opdef = get_opdef(node.op_type, node.domain)
        if opdef is None or not opdef.foldable or not node.inputs:
            continue
        if not all(not i or graph.is_const(i) for i in node.inputs):
            continue
        ins = [TensorInfo.of(graph.constants[i]) if i else None for i in node.inputs]
        outs = infer_node(node, opdef, ins)
        size = sum(o.dtype.itemsize * _numel(o.shape) for o in outs)
        if size > MAX_FOLDED_BYTES:
            consumers = consumers if consumers is not None else graph.consumers()
            if size > MAX_FOLDED_WEIGHT_BYTES or \
                    not all(_only_weight(graph, o, consumers) for o in node.outputs if o):
                continue
        try:
            values = [o.value for o in outs] if all(o.value is not None for o in outs) \
                else opdef.compute(node, ins, outs)
        except (ValueError, TypeError, NotImplementedError, IndexError, ArithmeticError) as e:
            raise node_error(node, e) from None
        for name, value in zip(node.outputs, values):
            if name:
                graph.constants[name] = value
        folded.append(node)
    graph.remove_nodes(folded)
    return bool(folded)
