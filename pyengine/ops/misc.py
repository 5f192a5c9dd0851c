"""Identity-like operators and shape queries."""
from __future__ import annotations

import numpy as np

from ..graph.ir import TensorInfo
from .registry import OpDef, register, same_as_input


@register
class Identity(OpDef):
    op_type = "Identity"
    kernel = "Identity"  # used when a copy is really needed (graph outputs)
    view = True

    def infer(self, node, ins):
        return same_as_input(node, ins)

    def compute(self, node, ins, outs):
        return [ins[0].value]

    def kernel_attrs(self, node, ins):
        return {}


@register
class Dropout(OpDef):
    """Inference mode: output = input, mask = all true."""
    op_type = "Dropout"
    view = True

    def infer(self, node, ins):
        if len(ins) > 2 and ins[2] is not None:
            if ins[2].value is None or bool(np.asarray(ins[2].value).reshape(-1)[0]):
                raise NotImplementedError("Dropout in training mode (training_mode must be a constant false)")
        outs = same_as_input(node, ins)
        if len(node.outputs) > 1 and node.outputs[1]:
            outs.append(TensorInfo(np.dtype(np.bool_), tuple(ins[0].shape),
                                   np.ones(ins[0].shape, dtype=np.bool_)))
        return outs

    def compute(self, node, ins, outs):
        res = [ins[0].value]
        if len(outs) > 1:
            res.append(np.ones(ins[0].shape, dtype=np.bool_))
        return res


@register
class Shape(OpDef):
    op_type = "Shape"

    def infer(self, node, ins):
        shape = np.array(ins[0].shape, dtype=np.int64)
        rank = len(shape)
        start = node.attrs.get("start", 0)
        end = node.attrs.get("end", rank)
        start = min(max(start + rank if start < 0 else start, 0), rank)
        end = min(max(end + rank if end < 0 else end, 0), rank)
        value = shape[start:end]
        return [TensorInfo(np.dtype(np.int64), value.shape, value)]

    def compute(self, node, ins, outs):
        return [outs[0].value]


@register
class Size(OpDef):
    op_type = "Size"

    def infer(self, node, ins):
        value = np.array(int(np.prod(ins[0].shape, dtype=np.int64)), dtype=np.int64)
        return [TensorInfo(np.dtype(np.int64), (), value)]

    def compute(self, node, ins, outs):
        return [outs[0].value]
