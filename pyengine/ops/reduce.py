"""Reductions and ArgMax/ArgMin.

Opset notes resolved here: `axes` is an attribute up to opset 12 for
ReduceSum and up to 17 for the others, then an optional input (which must be
a constant: the output's shape depends on it); `noop_with_empty_axes` (with
the axes input) makes empty axes mean "reduce nothing" instead of "reduce
everything". The kernel gets the normalized, sorted list of reduced axes.
"""
from __future__ import annotations

import numpy as np

from ..graph.ir import TensorInfo
from .registry import NUMERIC_TYPES, OpDef, const_input, normalize_axis, register

REDUCE_TYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8,
                                                np.uint32, np.uint64))


class Reduce(OpDef):
    dtypes = REDUCE_TYPES
    axes_input_from = 18  # first opset where axes is an input

    def _axes(self, node, ins):
        rank = len(ins[0].shape)
        if node.opset >= self.axes_input_from:
            value = const_input(node, ins, 1, "axes")
            axes = None if value is None else [int(a) for a in np.asarray(value).reshape(-1)]
        else:
            axes = node.attrs.get("axes")
            axes = None if axes is None else [int(a) for a in axes]
        if not axes:
            if node.opset >= self.axes_input_from and node.attrs.get("noop_with_empty_axes", 0):
                return []
            return list(range(rank))
        norm = sorted({normalize_axis(a, rank, node, "axes entry") for a in axes})
        if len(norm) != len(axes):
            raise ValueError(f"node '{node.name}' ({node.op_type}): repeated axes {axes}")
        return norm

    def infer(self, node, ins):
        axes = self._axes(node, ins)
        shape = tuple(ins[0].shape)
        if node.attrs.get("keepdims", 1):
            out = tuple(1 if d in axes else s for d, s in enumerate(shape))
        else:
            out = tuple(s for d, s in enumerate(shape) if d not in axes)
        return [TensorInfo(ins[0].dtype, out)]

    def kernel_attrs(self, node, ins):
        return {"axes": self._axes(node, ins)}


for _name in ("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1", "ReduceL2",
              "ReduceLogSum", "ReduceLogSumExp"):
    register(type(_name, (Reduce,), {"op_type": _name, "kernel": _name}))


@register
class ReduceSum(Reduce):
    op_type = kernel = "ReduceSum"
    axes_input_from = 13


class ArgReduce(OpDef):
    dtypes = NUMERIC_TYPES

    def _axis(self, node, ins):
        rank = len(ins[0].shape)
        if rank == 0:
            raise ValueError(f"node '{node.name}' ({node.op_type}): input must have rank >= 1")
        return normalize_axis(int(node.attrs.get("axis", 0)), rank, node)

    def infer(self, node, ins):
        axis = self._axis(node, ins)
        shape = tuple(ins[0].shape)
        if shape[axis] == 0:
            raise ValueError(f"node '{node.name}' ({node.op_type}): axis {axis} of {shape} is empty")
        if node.attrs.get("keepdims", 1):
            out = shape[:axis] + (1,) + shape[axis + 1:]
        else:
            out = shape[:axis] + shape[axis + 1:]
        return [TensorInfo(np.dtype(np.int64), out)]

    def kernel_attrs(self, node, ins):
        return {"axis": self._axis(node, ins),
                "select_last_index": int(node.attrs.get("select_last_index", 0))}


@register
class ArgMax(ArgReduce):
    op_type = kernel = "ArgMax"


@register
class ArgMin(ArgReduce):
    op_type = kernel = "ArgMin"
