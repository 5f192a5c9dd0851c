"""Shape-only operators. Reshape, Flatten, Squeeze and Unsqueeze are views
(the output is the input's memory with another shape; no kernel runs).
ConstantOfShape fills a tensor of a compile-time shape; Range is computed
here since its bounds must be constants anyway."""
from __future__ import annotations

import math

import numpy as np

from ..graph.ir import TensorInfo
from ..runtime.limits import check_tensor, memory_limit
from .registry import OpDef, const_input, register


def _ints(node, ins, i, what):
    v = const_input(node, ins, i, what)
    return None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]


def _axes(node, ins, what="axes"):
    """Axes from the attribute (opset < 13) or input 1 (opset >= 13)."""
    if "axes" in node.attrs:
        return [int(a) for a in node.attrs["axes"]]
    return _ints(node, ins, 1, what)


def _norm_axes(node, axes, rank):
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"node '{node.name}' ({node.op_type}): axis {a} is out of range for rank {rank}")
        out.append(a + rank if a < 0 else a)
    if len(set(out)) != len(out):
        raise ValueError(f"node '{node.name}' ({node.op_type}): repeated axes {axes}")
    return out


class _View(OpDef):
    view = True

    def compute(self, node, ins, outs):
        return [np.ascontiguousarray(ins[0].value).reshape(outs[0].shape)]

    def kernel_attrs(self, node, ins):
        return {}


def reshape_target(node, in_shape, shape, allowzero=False) -> tuple:
    in_shape = tuple(int(d) for d in in_shape)
    out = []
    infer_at = None
    for i, d in enumerate(shape):
        if d == -1:
            if infer_at is not None:
                raise ValueError(f"node '{node.name}' (Reshape): more than one -1 in shape {list(shape)}")
            infer_at = i
            out.append(1)
        elif d == 0 and not allowzero:
            if i >= len(in_shape):
                raise ValueError(f"node '{node.name}' (Reshape): shape {list(shape)} copies dim {i} (0) "
                                 f"but the input {in_shape} has rank {len(in_shape)}")
            out.append(in_shape[i])
        elif d < 0:
            raise ValueError(f"node '{node.name}' (Reshape): invalid dim {d} in shape {list(shape)}")
        else:
            out.append(d)
    total = math.prod(in_shape)
    if infer_at is not None:
        known = math.prod(out)
        if known == 0 or total % known:
            raise ValueError(f"node '{node.name}' (Reshape): cannot reshape input {in_shape} to {list(shape)}")
        out[infer_at] = total // known
    if math.prod(out) != total:
        raise ValueError(f"node '{node.name}' (Reshape): cannot reshape input {in_shape} ({total} elements) "
                         f"to {list(shape)} ({math.prod(out)} elements)")
    return tuple(out)


@register
class Reshape(_View):
    op_type = "Reshape"

    def infer(self, node, ins):
        shape = _ints(node, ins, 1, "shape")
        if shape is None:
            shape = [int(d) for d in node.attrs.get("shape", [])]  # opset < 5
        allowzero = bool(node.attrs.get("allowzero", 0))
        if allowzero and 0 in shape and -1 in shape:
            raise ValueError(f"node '{node.name}' (Reshape): allowzero with both 0 and -1 in shape {shape}")
        return [TensorInfo(ins[0].dtype, reshape_target(node, ins[0].shape, shape, allowzero))]


@register
class Flatten(_View):
    op_type = "Flatten"

    def infer(self, node, ins):
        shape = tuple(ins[0].shape)
        rank = len(shape)
        axis = int(node.attrs.get("axis", 1))
        if not -rank <= axis <= rank:
            raise ValueError(f"node '{node.name}' (Flatten): axis {axis} is out of range for rank {rank}")
        if axis < 0:
            axis += rank
        return [TensorInfo(ins[0].dtype, (math.prod(shape[:axis]), math.prod(shape[axis:])))]


@register
class Squeeze(_View):
    op_type = "Squeeze"

    def infer(self, node, ins):
        shape = tuple(ins[0].shape)
        axes = _axes(node, ins)
        if axes is None:
            out = tuple(d for d in shape if d != 1)
        else:
            axes = _norm_axes(node, axes, len(shape))
            for a in axes:
                if shape[a] != 1:
                    raise ValueError(f"node '{node.name}' (Squeeze): dim {a} of input {shape} is not 1")
            out = tuple(d for i, d in enumerate(shape) if i not in axes)
        return [TensorInfo(ins[0].dtype, out)]


@register
class Unsqueeze(_View):
    op_type = "Unsqueeze"

    def infer(self, node, ins):
        shape = list(ins[0].shape)
        axes = _axes(node, ins)
        if axes is None:
            raise ValueError(f"node '{node.name}' (Unsqueeze): axes are required")
        rank = len(shape) + len(axes)
        axes = sorted(_norm_axes(node, axes, rank))
        for a in axes:
            shape.insert(a, 1)
        return [TensorInfo(ins[0].dtype, tuple(shape))]


def value_bits(value, dtype) -> int:
    """The raw bytes of one element of `dtype`, as the int64 the Fill/Pad kernels take."""
    raw = np.asarray(value).astype(dtype).reshape(-1)[:1].tobytes().ljust(8, b"\0")
    return int(np.frombuffer(raw, dtype=np.int64)[0])


@register
class ConstantOfShape(OpDef):
    op_type = kernel = "ConstantOfShape"

    def _value(self, node):
        v = node.attrs.get("value")
        if v is None:
            return np.zeros(1, dtype=np.float32)
        v = np.asarray(v)
        if v.size != 1:
            raise ValueError(f"node '{node.name}' (ConstantOfShape): value must have one element, got {v.size}")
        return v.reshape(1)

    def infer(self, node, ins):
        shape = _ints(node, ins, 0, "shape")
        if any(d < 0 for d in shape):
            raise ValueError(f"node '{node.name}' (ConstantOfShape): negative dim in shape {shape}")
        return [TensorInfo(self._value(node).dtype, tuple(shape))]

    def kernel_attrs(self, node, ins):
        v = self._value(node)
        return {"value_bits": value_bits(v, v.dtype)}


@register
class Range(OpDef):
    op_type = "Range"
    dtypes = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int16, np.int32, np.int64))

    def infer(self, node, ins):
        vals = [const_input(node, ins, i, w) for i, w in enumerate(("start", "limit", "delta"))]
        dtype = ins[0].dtype
        start, limit, delta = (np.asarray(v).reshape(-1)[0] for v in vals)
        if delta == 0:
            raise ValueError(f"node '{node.name}' (Range): delta is 0")
        if not all(math.isfinite(float(v)) for v in (start, limit, delta)):
            raise ValueError(f"node '{node.name}' (Range): start {start}, limit {limit} and delta {delta} "
                             "must be finite")
        n = max(int(math.ceil((float(limit) - float(start)) / float(delta))), 0)
        if dtype.kind == "i":
            n = max(-((int(start) - int(limit)) // int(delta)), 0)
        # The value is computed here, at compile time: refuse a huge one before allocating it.
        check_tensor(node.outputs[0], f"output of node '{node.name}' (Range), {n} elements", n * dtype.itemsize,
                     memory_limit())
        if dtype.kind == "i":
            value = (int(start) + np.arange(n, dtype=np.int64) * int(delta)).astype(dtype)
        else:
            # onnxruntime accumulates start + i * delta in the element type.
            value = (dtype.type(start) + np.arange(n).astype(dtype) * dtype.type(delta)).astype(dtype)
        return [TensorInfo(dtype, (n,), value)]

    def compute(self, node, ins, outs):
        return [outs[0].value]
