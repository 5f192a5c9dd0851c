"""What pyengine knows about each ONNX operator, on the Python side.

An OpDef answers, for one op type: is this node supported (check), what are
its outputs' types and shapes for concrete inputs (infer), and which
attributes its native kernel receives (kernel_attrs). Opset differences
(inputs that became attributes and the reverse, changed defaults) are resolved
here, once, so the C++ kernels see one canonical form.

Shapes given to infer() are always concrete: the plan is specialized for
actual input shapes. Where an output depends on the *value* of an input (the
target shape of Reshape, the starts of Slice), infer() reads `ins[i].value`
and raises NotConstantError if it is not known when the plan is compiled.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from ..graph.ir import Node, TensorInfo

_REGISTRY: dict = {}


class NotConstantError(ValueError):
    """An input that must be known when the plan is compiled is computed at run time."""


class OpDef:
    op_type: str = ""
    domain: str = ""
    #: The native kernel that runs the node; None for ops handled in Python only.
    kernel: Optional[str] = None
    #: Output 0 is input 0's memory seen with another shape (no kernel runs).
    view: bool = False
    #: Element types input 0 may have (None: any the runtime holds).
    dtypes: Optional[frozenset] = None
    #: Whether constant inputs may be folded by running the op at compile time.
    foldable: bool = True

    def check(self, node: Node) -> Optional[str]:
        """Reason this node cannot run (unsupported attribute value...), or None."""
        return None

    def infer(self, node: Node, ins: Sequence[Optional[TensorInfo]]) -> list:
        raise NotImplementedError(f"{self.op_type}: no shape inference")

    def kernel_attrs(self, node: Node, ins: Sequence[Optional[TensorInfo]]) -> dict:
        """Attributes handed to the native kernel: plain ints, floats, strings and lists of them."""
        return {k: v for k, v in node.attrs.items() if isinstance(v, (int, float, str, list, tuple))}

    def compute(self, node: Node, ins: Sequence[Optional[TensorInfo]], outs: Sequence[TensorInfo]) -> list:
        """Output values for constant inputs (constant folding). The default
        runs the native kernel (views just reshape); ops without a kernel
        override this with NumPy."""
        if self.view:
            return [np.ascontiguousarray(ins[0].value).reshape(outs[0].shape)]
        from ..runtime.native import run_node  # late import: runtime depends on ops
        return run_node(self, node, ins, outs)


def register(cls):
    """Class decorator: registers an OpDef subclass under cls.op_type (and cls.aliases)."""
    inst = cls()
    for name in [cls.op_type] + list(getattr(cls, "aliases", ())):
        _REGISTRY[(cls.domain, name)] = inst if name == cls.op_type else _renamed(cls, name)
    return cls


def _renamed(cls, name):
    sub = type(f"{cls.__name__}_{name}", (cls,), {"op_type": name})
    if cls.kernel == cls.op_type:
        sub.kernel = name
    return sub()


def get_opdef(op_type: str, domain: str = "") -> Optional[OpDef]:
    _ensure_loaded()
    return _REGISTRY.get(("" if domain == "ai.onnx" else domain, op_type))


def supported_ops(domain: str = "") -> list:
    _ensure_loaded()
    return sorted(name for (d, name) in _REGISTRY if d == domain)


_loaded = False


def _ensure_loaded():
    global _loaded
    if not _loaded:
        _loaded = True
        from . import load_all  # noqa: F401  (imports every family module)
        load_all()


# ---- helpers shared by op families ---------------------------------------

def broadcast_shapes(*shapes: Sequence[int], node: Optional[Node] = None) -> tuple:
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(rank):
        dims = {s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            where = f" in node '{node.name}' ({node.op_type})" if node else ""
            raise ValueError(f"shapes {[tuple(s) for s in shapes]} cannot be broadcast{where}")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axis(axis: int, rank: int, node: Node, what: str = "axis") -> int:
    if not -rank <= axis < max(rank, 1):
        raise ValueError(f"node '{node.name}' ({node.op_type}): {what} {axis} is out of range for rank {rank}")
    return axis + rank if axis < 0 else axis


def const_input(node: Node, ins, i: int, what: str) -> Optional[np.ndarray]:
    """Value of optional input i, which must be a compile-time constant when present."""
    if i >= len(ins) or ins[i] is None:
        return None
    if ins[i].value is None:
        raise NotConstantError(
            f"node '{node.name}' ({node.op_type}): input '{what}' must be known when the plan is compiled "
            "(computed from constants or input shapes), but it depends on input data")
    return ins[i].value


def same_as_input(node: Node, ins, i: int = 0) -> list:
    return [TensorInfo(ins[i].dtype, tuple(ins[i].shape))]


FLOAT_TYPES = frozenset({np.dtype(np.float32)})
NUMERIC_TYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8,
                                                  np.int16, np.uint16, np.uint32, np.uint64))
