"""Gemm and MatMul (float32). The fusion pass may give either a fused
activation (attributes `activation`, `activation_alpha`, `activation_beta`)
and MatMul an extra bias input."""
from __future__ import annotations

from ..graph.ir import TensorInfo
from .registry import FLOAT_TYPES, OpDef, broadcast_shapes, register


@register
class Gemm(OpDef):
    op_type = kernel = "Gemm"
    dtypes = FLOAT_TYPES

    def infer(self, node, ins):
        a, b = ins[0].shape, ins[1].shape
        if len(a) != 2 or len(b) != 2:
            raise ValueError(f"node '{node.name}' (Gemm): A and B must be 2-D, got {a} and {b}")
        ta, tb = node.attrs.get("transA", 0), node.attrs.get("transB", 0)
        m, k = (a[1], a[0]) if ta else a
        k2, n = (b[1], b[0]) if tb else b
        if k != k2:
            raise ValueError(f"node '{node.name}' (Gemm): inner dimensions differ, A {a} (transA={ta}) "
                             f"and B {b} (transB={tb})")
        if len(ins) > 2 and ins[2] is not None:
            if broadcast_shapes(ins[2].shape, (m, n), node=node) != (m, n):
                raise ValueError(f"node '{node.name}' (Gemm): C {ins[2].shape} does not broadcast to {(m, n)}")
        return [TensorInfo(ins[0].dtype, (m, n))]

    def kernel_attrs(self, node, ins):
        attrs = super().kernel_attrs(node, ins)
        if node.opset < 7 and "broadcast" in attrs:
            attrs.pop("broadcast")
        return attrs


@register
class MatMul(OpDef):
    op_type = kernel = "MatMul"
    dtypes = FLOAT_TYPES

    def infer(self, node, ins):
        a, b = tuple(ins[0].shape), tuple(ins[1].shape)
        if not a or not b:
            raise ValueError(f"node '{node.name}' (MatMul): inputs must have rank >= 1, got {a} and {b}")
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        if a2[-1] != b2[-2]:
            raise ValueError(f"node '{node.name}' (MatMul): inner dimensions differ, {a} @ {b}")
        batch = broadcast_shapes(a2[:-2], b2[:-2], node=node)
        out = batch + (a2[-2], b2[-1])
        if len(a) == 1:
            out = out[:-2] + out[-1:]
        if len(b) == 1:
            out = out[:-1]
        return [TensorInfo(ins[0].dtype, out)]
