"""Activation functions: elementwise float32 ops that Conv/Gemm/MatMul
epilogues can also apply (see graph/passes/fuse_activation.py)."""
from __future__ import annotations

from .registry import FLOAT_TYPES, OpDef, register, same_as_input


class Activation(OpDef):
    dtypes = FLOAT_TYPES

    def infer(self, node, ins):
        return same_as_input(node, ins)


@register
class Relu(Activation):
    op_type = kernel = "Relu"
