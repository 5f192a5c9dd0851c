"""Activation functions, Clip, Gelu and the Softmax family. Relu, LeakyRelu,
Clip, Sigmoid, Tanh, HardSigmoid and Elu can also be fused into Conv/Gemm/
MatMul epilogues (see graph/passes/fuse_activation.py).

Opset notes resolved here: Clip's bounds are attributes before opset 11 and
optional inputs (constant or computed at run time) after; Softmax/LogSoftmax/
Hardmax before opset 13 flatten to 2-D at `axis` (default 1), from 13 they
work along one axis (default -1); Gelu's `approximate` (opset 20).
"""
from __future__ import annotations

import numpy as np

from ..graph.ir import TensorInfo
from .registry import NUMERIC_TYPES, OpDef, normalize_axis, register, same_as_input

FLOAT32 = frozenset({np.dtype(np.float32)})
FLOATS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})
SIGNED = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))


class Activation(OpDef):
    dtypes = FLOATS
    attrs = ()  # float attributes the kernel reads (defaults live in the kernel)

    def infer(self, node, ins):
        return same_as_input(node, ins)

    def kernel_attrs(self, node, ins):
        return {k: float(node.attrs[k]) for k in self.attrs if k in node.attrs}


_ACTIVATIONS = {
    "Relu": ((), FLOATS | SIGNED),
    "LeakyRelu": (("alpha",), FLOATS),
    "Elu": (("alpha",), FLOATS),
    "Selu": (("alpha", "gamma"), FLOATS),
    "Celu": (("alpha",), FLOATS),
    "Sigmoid": ((), FLOATS),
    "HardSigmoid": (("alpha", "beta"), FLOATS),
    "HardSwish": ((), FLOATS),
    "Tanh": ((), FLOATS),
    "Softplus": ((), FLOATS),
    "Softsign": ((), FLOATS),
    "ThresholdedRelu": (("alpha",), FLOATS),
    "Mish": ((), FLOATS),
}

for _name, (_attrs, _types) in _ACTIVATIONS.items():
    register(type(_name, (Activation,), {"op_type": _name, "kernel": _name, "attrs": _attrs, "dtypes": _types}))


@register
class Gelu(Activation):
    op_type = kernel = "Gelu"

    def check(self, node):
        if node.attrs.get("approximate", "none") not in ("none", "tanh"):
            return f"approximate='{node.attrs['approximate']}' (expected 'none' or 'tanh')"
        return None

    def kernel_attrs(self, node, ins):
        return {"approximate": str(node.attrs.get("approximate", "none"))}


@register
class Clip(OpDef):
    op_type = kernel = "Clip"
    dtypes = NUMERIC_TYPES

    def infer(self, node, ins):
        for i in (1, 2):
            if i < len(ins) and ins[i] is not None:
                if ins[i].dtype != ins[0].dtype:
                    raise TypeError(f"node '{node.name}' (Clip): input {i} is {ins[i].dtype}, X is {ins[0].dtype}")
                if int(np.prod(ins[i].shape)) != 1:
                    raise ValueError(f"node '{node.name}' (Clip): min/max must be scalars, got {ins[i].shape}")
        return same_as_input(node, ins)

    def kernel_attrs(self, node, ins):
        if node.opset < 11:
            f32 = np.finfo(np.float32)
            return {"min": float(node.attrs.get("min", float(f32.min))),
                    "max": float(node.attrs.get("max", float(f32.max)))}
        return {}


class SoftmaxBase(OpDef):
    dtypes = FLOAT32

    def infer(self, node, ins):
        return same_as_input(node, ins)

    def kernel_attrs(self, node, ins):
        rank = len(ins[0].shape)
        legacy = node.opset < 13
        axis = node.attrs.get("axis", 1 if legacy else -1)
        if rank == 0:
            return {"axis": 0, "coerce": 1}
        return {"axis": normalize_axis(int(axis), rank, node), "coerce": int(legacy)}


@register
class Softmax(SoftmaxBase):
    op_type = kernel = "Softmax"


@register
class LogSoftmax(SoftmaxBase):
    op_type = kernel = "LogSoftmax"


@register
class Hardmax(SoftmaxBase):
    op_type = kernel = "Hardmax"
