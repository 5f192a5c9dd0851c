"""The small graph IR every pass works on.

A Graph is a list of Nodes in topological order plus what is known about each
value: its element type, its shape and, for constants, its data. Passes
rewrite it in place; the importer builds it from ONNX and the compiler turns
it into a native plan.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Iterable, Optional

import numpy as np


@dataclasses.dataclass
class TensorInfo:
    """What is known about one value. Shape entries are ints when known,
    strings for symbolic dims and None for unknown ones; `shape` itself is
    None when even the rank is unknown."""

    dtype: Optional[np.dtype] = None
    shape: Optional[tuple] = None
    value: Optional[np.ndarray] = None  # set for constants

    @staticmethod
    def of(array: np.ndarray) -> "TensorInfo":
        array = np.asarray(array)
        return TensorInfo(array.dtype, tuple(array.shape), array)

    @property
    def is_const(self) -> bool:
        return self.value is not None

    @property
    def static(self) -> bool:
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)


@dataclasses.dataclass
class Node:
    op_type: str
    inputs: list  # value names; '' marks an absent optional input
    outputs: list
    attrs: dict = dataclasses.field(default_factory=dict)
    name: str = ""
    domain: str = ""
    opset: int = 13  # version of the node's domain the model imports

    def input(self, i: int) -> str:
        return self.inputs[i] if i < len(self.inputs) else ""

    def __repr__(self) -> str:
        return f"Node({self.op_type} '{self.name}': {self.inputs} -> {self.outputs})"


class Graph:
    def __init__(self, nodes: list, inputs: list, outputs: list, constants: dict,
                 infos: Optional[dict] = None, opset: int = 13, name: str = "graph"):
        self.nodes: list[Node] = list(nodes)
        self.inputs: list[str] = list(inputs)      # runtime inputs only
        self.outputs: list[str] = list(outputs)
        self.constants: dict[str, np.ndarray] = dict(constants)
        self.infos: dict[str, TensorInfo] = dict(infos or {})  # declared/inferred types
        self.opset = opset
        self.name = name
        self._counter = itertools.count()

    # ---- queries -------------------------------------------------------
    def producers(self) -> dict:
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict:
        uses: dict[str, list[Node]] = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    uses.setdefault(name, []).append(node)
        return uses

    def is_const(self, name: str) -> bool:
        return name in self.constants

    def const(self, name: str) -> Optional[np.ndarray]:
        return self.constants.get(name)

    def fresh_name(self, base: str) -> str:
        while True:  # (no set of every name built per call: passes call this once per fusion)
            name = f"{base}__{next(self._counter)}"
            if name not in self.constants and name not in self.inputs and \
                    not any(name in n.outputs for n in self.nodes):
                return name

    def add_constant(self, base: str, array: np.ndarray) -> str:
        name = self.fresh_name(base)
        self.constants[name] = np.asarray(array)
        return name

    # ---- rewrites ------------------------------------------------------
    def replace_uses(self, old: str, new: str) -> None:
        """Make every reader of `old` read `new` instead (graph outputs included)."""
        for node in self.nodes:
            node.inputs = [new if i == old else i for i in node.inputs]
        self.outputs = [new if o == old else o for o in self.outputs]

    def remove_nodes(self, dead: Iterable[Node]) -> None:
        dead_ids = {id(n) for n in dead}
        self.nodes = [n for n in self.nodes if id(n) not in dead_ids]

    def prune_constants(self) -> None:
        used = {i for n in self.nodes for i in n.inputs} | set(self.outputs)
        self.constants = {k: v for k, v in self.constants.items() if k in used}

    def copy(self) -> "Graph":
        g = Graph([dataclasses.replace(n, inputs=list(n.inputs), outputs=list(n.outputs), attrs=dict(n.attrs))
                   for n in self.nodes],
                  self.inputs, self.outputs, self.constants, self.infos, self.opset, self.name)
        return g

    def op_counts(self) -> dict:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
        return counts

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes, inputs={self.inputs}, outputs={self.outputs})"


# Constants at least this large are kept C-contiguous and 16-byte aligned
# (what malloc and NumPy give anyway), so native plans read them in place
# (borrow) instead of holding a second copy.
ALIGN = 16
BORROW_MIN_BYTES = 4096


def aligned(array: np.ndarray) -> np.ndarray:
    """`array` itself when it is small or already aligned and C-contiguous,
    else an aligned read-only copy (the caller drops the original)."""
    array = np.asarray(array)
    if array.nbytes < BORROW_MIN_BYTES or (array.flags.c_contiguous and array.ctypes.data % ALIGN == 0):
        return array
    buf = np.empty(array.nbytes + ALIGN, dtype=np.uint8)
    start = -buf.ctypes.data % ALIGN
    out = buf[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    out.flags.writeable = False
    return out


def attr_value(node: Node, name: str, default: Any = None) -> Any:
    return node.attrs.get(name, default)
