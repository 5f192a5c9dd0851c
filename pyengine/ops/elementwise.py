"""Broadcasting elementwise operators: arithmetic, variadic, comparison and
logic ops, Where, Cast, and the unary math functions (Sqrt, Exp, ...).

Opset notes resolved here: before opset 7 binary ops had `broadcast`/`axis`
attributes (only the numpy-compatible cases are accepted); Pow's exponent may
have its own type from opset 12; Mod's `fmod`; Cast's `saturate` (float8 only,
ignored); IsInf's detect_* attributes.
"""
from __future__ import annotations

import numpy as np

from .. import _dtypes
from ..graph.ir import TensorInfo
from .registry import NUMERIC_TYPES, OpDef, broadcast_shapes, register

BOOL = np.dtype(np.bool_)
FLOATS = frozenset({np.dtype(np.float32), np.dtype(np.float64)})
SIGNED = frozenset(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
POW_TYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64))


def _legacy_broadcast(node, ins):
    """Opset < 7 `broadcast=1` with `axis`: numpy-compatible only when B's dims
    line up with A's trailing dims."""
    if node.opset >= 7 or not node.attrs.get("broadcast", 0) or "axis" not in node.attrs:
        return
    a, b = ins[0].shape, ins[1].shape
    axis = node.attrs["axis"]
    axis = axis + len(a) if axis < 0 else axis
    if axis + len(b) != len(a):
        raise NotImplementedError(f"legacy broadcast with axis={node.attrs['axis']} of {b} onto {a}")


def _same_types(node, ins):
    types = {i.dtype for i in ins if i is not None}
    if len(types) > 1:
        raise TypeError(f"node '{node.name}' ({node.op_type}): inputs have different element types "
                        f"{sorted(str(t) for t in types)}")


class Binary(OpDef):
    """Two inputs of one element type, numpy broadcasting (opset >= 7)."""
    dtypes = NUMERIC_TYPES
    out_dtype = None  # None: the inputs' type

    def infer(self, node, ins):
        if len(ins) != 2 or ins[0] is None or ins[1] is None:
            raise ValueError(f"node '{node.name}' ({node.op_type}): two inputs expected")
        _same_types(node, ins)
        _legacy_broadcast(node, ins)
        shape = broadcast_shapes(ins[0].shape, ins[1].shape, node=node)
        return [TensorInfo(self.out_dtype or ins[0].dtype, shape)]

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


@register
class Pow(Binary):
    op_type = kernel = "Pow"
    dtypes = POW_TYPES

    def infer(self, node, ins):
        if ins[1].dtype not in POW_TYPES:
            raise NotImplementedError(f"Pow exponent of element type {ins[1].dtype}")
        if node.opset < 12:
            _same_types(node, ins)
        _legacy_broadcast(node, ins)
        return [TensorInfo(ins[0].dtype, broadcast_shapes(ins[0].shape, ins[1].shape, node=node))]


@register
class Mod(Binary):
    op_type = kernel = "Mod"

    def kernel_attrs(self, node, ins):
        return {"fmod": int(node.attrs.get("fmod", 0))}


@register
class PRelu(Binary):
    """Slope broadcasts onto X (unidirectionally)."""
    op_type = kernel = "PRelu"
    dtypes = FLOATS | frozenset({np.dtype(np.int32), np.dtype(np.int64)})

    def infer(self, node, ins):
        x, slope = ins[0], ins[1]
        _same_types(node, ins)
        shape = tuple(x.shape)
        if node.opset < 7 and len(slope.shape) == 1 and len(shape) >= 2 and slope.shape[0] == shape[1] \
                and slope.shape[0] != shape[-1]:
            raise NotImplementedError("PRelu opset < 7 channel slope")
        if broadcast_shapes(shape, slope.shape, node=node) != shape:
            raise ValueError(f"node '{node.name}' (PRelu): slope {slope.shape} does not broadcast to X {shape}")
        return [TensorInfo(x.dtype, shape)]


class Compare(Binary):
    out_dtype = BOOL
    dtypes = NUMERIC_TYPES | {BOOL}


for _name in ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
    register(type(_name, (Compare,), {"op_type": _name, "kernel": _name}))


class Logic(Binary):
    out_dtype = BOOL
    dtypes = frozenset({BOOL})


for _name in ("And", "Or", "Xor"):
    register(type(_name, (Logic,), {"op_type": _name, "kernel": _name}))


class Variadic(OpDef):
    """Sum, Mean, Max, Min: any number of inputs, numpy broadcasting."""
    dtypes = NUMERIC_TYPES

    def infer(self, node, ins):
        ins = [i for i in ins if i is not None]
        if not ins:
            raise ValueError(f"node '{node.name}' ({node.op_type}): at least one input expected")
        _same_types(node, ins)
        if node.opset < 8 and len({tuple(i.shape) for i in ins}) > 1:
            raise NotImplementedError(f"{node.op_type} opset < 8 requires equal shapes")
        return [TensorInfo(ins[0].dtype, broadcast_shapes(*[i.shape for i in ins], node=node))]

    def kernel_attrs(self, node, ins):
        return {}


@register
class Sum(Variadic):
    op_type = kernel = "Sum"


@register
class Mean(Variadic):
    op_type = kernel = "Mean"
    dtypes = FLOATS


@register
class Max(Variadic):
    op_type = kernel = "Max"


@register
class Min(Variadic):
    op_type = kernel = "Min"


@register
class Where(OpDef):
    op_type = kernel = "Where"
    dtypes = frozenset({BOOL})

    def infer(self, node, ins):
        c, x, y = ins
        if x.dtype != y.dtype:
            raise TypeError(f"node '{node.name}' (Where): X is {x.dtype}, Y is {y.dtype}")
        if x.dtype not in _dtypes.NATIVE_DTYPES:
            raise NotImplementedError(f"Where of element type {x.dtype}")
        return [TensorInfo(x.dtype, broadcast_shapes(c.shape, x.shape, y.shape, node=node))]

    def kernel_attrs(self, node, ins):
        return {}


class Predicate(OpDef):
    def infer(self, node, ins):
        return [TensorInfo(BOOL, tuple(ins[0].shape))]


@register
class Not(Predicate):
    op_type = kernel = "Not"
    dtypes = frozenset({BOOL})

    def kernel_attrs(self, node, ins):
        return {}


@register
class IsNaN(Predicate):
    op_type = kernel = "IsNaN"
    dtypes = FLOATS

    def kernel_attrs(self, node, ins):
        return {}


@register
class IsInf(Predicate):
    op_type = kernel = "IsInf"
    dtypes = FLOATS

    def kernel_attrs(self, node, ins):
        return {"detect_positive": int(node.attrs.get("detect_positive", 1)),
                "detect_negative": int(node.attrs.get("detect_negative", 1))}


@register
class Cast(OpDef):
    op_type = kernel = "Cast"
    dtypes = _dtypes.NATIVE_DTYPES

    def infer(self, node, ins):
        if "to" not in node.attrs:
            raise ValueError(f"node '{node.name}' (Cast): attribute 'to' is required")
        to = node.attrs["to"]
        if isinstance(to, str):  # opset 1-5 spelled the type as a string
            to = getattr(__import__("onnx").TensorProto, to.upper(), None)
        try:
            dtype = _dtypes.to_numpy(int(to))
        except (TypeError, ValueError) as e:
            raise NotImplementedError(f"Cast to {node.attrs['to']}: {e}") from None
        if dtype not in _dtypes.NATIVE_DTYPES:
            raise NotImplementedError(f"Cast to element type {dtype}")
        return [TensorInfo(dtype, tuple(ins[0].shape))]

    def kernel_attrs(self, node, ins):
        return {}


class Unary(OpDef):
    """Elementwise math; float32/float64 (and signed integers where `ints`)."""
    dtypes = FLOATS
    attrs = ()

    def infer(self, node, ins):
        return [TensorInfo(ins[0].dtype, tuple(ins[0].shape))]

    def kernel_attrs(self, node, ins):
        return {k: float(node.attrs[k]) for k in self.attrs if k in node.attrs}


for _name in ("Sqrt", "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Round", "Erf", "Sin", "Cos", "Tan",
              "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh"):
    register(type(_name, (Unary,), {"op_type": _name, "kernel": _name}))

for _name in ("Abs", "Neg", "Sign"):
    register(type(_name, (Unary,), {"op_type": _name, "kernel": _name, "dtypes": FLOATS | SIGNED}))


@register
class CastLike(Cast):
    """Cast to the element type of input 1."""
    op_type = "CastLike"
    kernel = "Cast"

    def infer(self, node, ins):
        if ins[1].dtype not in _dtypes.NATIVE_DTYPES:
            raise NotImplementedError(f"CastLike to element type {ins[1].dtype}")
        return [TensorInfo(ins[1].dtype, tuple(ins[0].shape))]

    def compute(self, node, ins, outs):
        return super().compute(node, ins[:1], outs)
