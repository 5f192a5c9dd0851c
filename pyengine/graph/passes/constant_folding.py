"""Constant folding: nodes whose inputs are all constants are computed once,
with the same kernels that would run them, and replaced by their results.
(Values that depend on input shapes are folded later, when the plan is
specialized for concrete shapes; see graph/specialize.py.)"""
from __future__ import annotations

from ...ops.registry import get_opdef
from ..ir import TensorInfo
from ..specialize import MAX_FOLDED_BYTES, _numel, infer_node, node_error


def run(graph) -> bool:
    folded = []
    for node in graph.nodes:
        opdef = get_opdef(node.op_type, node.domain)
        if opdef is None or not opdef.foldable or not node.inputs:
            continue
        if not all(not i or graph.is_const(i) for i in node.inputs):
            continue
        ins = [TensorInfo.of(graph.constants[i]) if i else None for i in node.inputs]
        outs = infer_node(node, opdef, ins)
        if sum(o.dtype.itemsize * _numel(o.shape) for o in outs) > MAX_FOLDED_BYTES:
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
