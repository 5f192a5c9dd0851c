"""Broadcasting elementwise operators."""
from __future__ import annotations

from ..graph.ir import TensorInfo
from .registry import NUMERIC_TYPES, OpDef, broadcast_shapes, register


class Binary(OpDef):
    """Two inputs of one element type, numpy broadcasting (opset >= 7)."""
    dtypes = NUMERIC_TYPES

    def check(self, node):
        if node.opset < 7 and node.attrs.get("broadcast", 0) and "axis" in node.attrs:
            return "legacy broadcast with an axis attribute (opset < 7)"
        return None

    def infer(self, node, ins):
        a, b = ins[0], ins[1]
        if a.dtype != b.dtype:
            raise TypeError(f"node '{node.name}' ({node.op_type}): inputs have different element types "
                            f"{a.dtype} and {b.dtype}")
        return [TensorInfo(a.dtype, broadcast_shapes(a.shape, b.shape, node=node))]

    def kernel_attrs(self, node, ins):
        return {}


@register
class Add(Binary):
    op_type = kernel = "Add"


@register
class Sub(Binary):
    op_type = kernel = "Sub"


@register
class Mul(Binary):
    op_type = kernel = "Mul"


@register
class Div(Binary):
    op_type = kernel = "Div"
