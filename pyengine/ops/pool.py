"""Pooling: MaxPool (with Indices), AveragePool, LpPool and their Global forms.

Every op reaches one of three native kernels (MaxPool, AveragePool, LpPool)
with explicit geometry: `kernel_shape`, `strides`, `dilations`, `pads`
(begins, then ends) resolved from auto_pad/ceil_mode by conv.window_geometry.
Global pools pass `global = 1`: one window over all spatial axes, any rank.
"""
from __future__ import annotations

import numpy as np

from ..graph.ir import TensorInfo
from .conv import check_auto_pad, spatial_attr, window_geometry
from .registry import OpDef, register

MAX_TYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int8, np.uint8))
AVG_TYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64))


class _WindowPool(OpDef):
    ceil_mode_since = 10  # ceil_mode exists from this opset on

    def check(self, node):
        reason = check_auto_pad(node)
        if reason:
            return reason
        if "kernel_shape" not in node.attrs:
            return "kernel_shape is required"
        return None

    def _geometry(self, node, ins):
        x = ins[0].shape
        if len(x) < 3 or len(x) > 5:
            raise NotImplementedError(f"{node.op_type} on rank-{len(x)} input {x} (1-D to 3-D pooling only)")
        r = len(x) - 2
        kernel = spatial_attr(node, "kernel_shape", r, None)
        strides = spatial_attr(node, "strides", r, 1)
        dilations = spatial_attr(node, "dilations", r, 1)
        ceil_mode = bool(node.attrs.get("ceil_mode", 0))
        out, pads = window_geometry(node, list(x[2:]), kernel, strides, dilations, ceil_mode)
        return (x[0], x[1], *out), dict(kernel_shape=kernel, strides=strides, dilations=dilations, pads=pads)

    def infer(self, node, ins):
        shape, _ = self._geometry(node, ins)
        return [TensorInfo(ins[0].dtype, tuple(shape))]

    def kernel_attrs(self, node, ins):
        return self._geometry(node, ins)[1]


@register
class MaxPool(_WindowPool):
    op_type = kernel = "MaxPool"
    dtypes = MAX_TYPES

    def infer(self, node, ins):
        shape, _ = self._geometry(node, ins)
        outs = [TensorInfo(ins[0].dtype, tuple(shape))]
        if len(node.outputs) > 1 and node.outputs[1]:
            outs.append(TensorInfo(np.dtype(np.int64), tuple(shape)))
        return outs

    def kernel_attrs(self, node, ins):
        attrs = self._geometry(node, ins)[1]
        attrs["storage_order"] = int(node.attrs.get("storage_order", 0))
        return attrs


@register
class AveragePool(_WindowPool):
    op_type = kernel = "AveragePool"
    dtypes = AVG_TYPES

    def kernel_attrs(self, node, ins):
        attrs = self._geometry(node, ins)[1]
        attrs["count_include_pad"] = int(node.attrs.get("count_include_pad", 0))
        return attrs


def _lp_p(node):
    p = node.attrs.get("p", 2)
    if float(p) <= 0:
        raise ValueError(f"node '{node.name}' ({node.op_type}): p must be positive, got {p}")
    return float(p)


@register
class LpPool(_WindowPool):
    op_type = kernel = "LpPool"
    dtypes = AVG_TYPES

    def kernel_attrs(self, node, ins):
        attrs = self._geometry(node, ins)[1]
        attrs["p"] = _lp_p(node)
        return attrs


class _GlobalPool(OpDef):
    def infer(self, node, ins):
        x = ins[0].shape
        if len(x) < 3:
            raise ValueError(f"node '{node.name}' ({node.op_type}): input must be N x C x spatial..., got {x}")
        return [TensorInfo(ins[0].dtype, (x[0], x[1]) + (1,) * (len(x) - 2))]

    def kernel_attrs(self, node, ins):
        return {"global": 1}


@register
class GlobalMaxPool(_GlobalPool):
    op_type = "GlobalMaxPool"
    kernel = "MaxPool"
    dtypes = MAX_TYPES


@register
class GlobalAveragePool(_GlobalPool):
    op_type = "GlobalAveragePool"
    kernel = "AveragePool"
    dtypes = AVG_TYPES


@register
class GlobalLpPool(_GlobalPool):
    op_type = "GlobalLpPool"
    kernel = "LpPool"
    dtypes = AVG_TYPES

    def kernel_attrs(self, node, ins):
        return {"global": 1, "p": _lp_p(node)}

