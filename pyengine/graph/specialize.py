"""Specialization: the graph for one concrete set of input shapes.

Walks the nodes in order with the input shapes known, infers every value's
type and shape, and folds every node whose inputs are all known (constants,
and values such as Shape's output that depend only on shapes). What is left
is the list of steps the native plan will run.
"""
from __future__ import annotations

import dataclasses

from ..errors import InvalidModelError, UnsupportedOperatorError
from ..graph.ir import Graph, Node, TensorInfo
from ..ops.registry import NotConstantError, get_opdef

# Constant folding must not turn a small model into a huge one (Expand or
# Tile of a constant to a large shape is cheaper to run than to store).
MAX_FOLDED_BYTES = 64 << 20


@dataclasses.dataclass
class Step:
    node: Node
    opdef: object
    ins: list   # TensorInfo or None per input
    outs: list  # TensorInfo per output


@dataclasses.dataclass
class Specialized:
    steps: list
    env: dict  # value name -> TensorInfo (value set for constants)


def node_error(node: Node, e: Exception) -> Exception:
    """The error re-raised with the node named, keeping a fitting type."""
    msg = str(e)
    if f"'{node.name}'" not in msg:
        msg = f"node '{node.name}' ({node.op_type}): {msg}"
    if isinstance(e, (NotImplementedError, NotConstantError)):
        return UnsupportedOperatorError(msg, {node.op_type: [node.name]})
    if isinstance(e, TypeError):
        return InvalidModelError(msg) if not isinstance(e, InvalidModelError) else e
    return InvalidModelError(msg)


def infer_node(node: Node, opdef, ins: list) -> list:
    if opdef.dtypes is not None and ins and ins[0] is not None and ins[0].dtype not in opdef.dtypes:
        raise UnsupportedOperatorError(
            f"node '{node.name}' ({node.op_type}): element type {ins[0].dtype} is not supported "
            f"(supported: {sorted(str(d) for d in opdef.dtypes)})", {node.op_type: [node.name]})
    try:
        outs = opdef.infer(node, ins)
    except (ValueError, TypeError, NotImplementedError, IndexError, KeyError, ArithmeticError) as e:
        raise node_error(node, e) from None
    if len(outs) < len(node.outputs):
        raise InvalidModelError(f"node '{node.name}' ({node.op_type}) declares {len(node.outputs)} outputs, "
                                f"the operator gives {len(outs)}")
    return outs


def specialize(graph: Graph, inputs: dict, fold: bool = True) -> Specialized:
    """`inputs` maps each graph input name to a TensorInfo with a concrete shape."""
    env: dict = {name: TensorInfo.of(v) for name, v in graph.constants.items()}
    env.update(inputs)
    steps = []
    for node in graph.nodes:
        opdef = get_opdef(node.op_type, node.domain)
        ins = []
        for name in node.inputs:
            if not name:
                ins.append(None)
            elif name in env:
                ins.append(env[name])
            else:
                raise InvalidModelError(f"node '{node.name}' ({node.op_type}) reads '{name}', which no node produces")
        outs = infer_node(node, opdef, ins)
        known = all(o.value is not None for o in outs)
        foldable = opdef.foldable and all(i is None or i.value is not None for i in ins)
        small = sum(o.dtype.itemsize * _numel(o.shape) for o in outs) <= MAX_FOLDED_BYTES
        if not known and fold and foldable and small:
            try:
                outs = [TensorInfo.of(v) for v in opdef.compute(node, ins, outs)]
            except (ValueError, TypeError, NotImplementedError, IndexError, ArithmeticError) as e:
                raise node_error(node, e) from None
            known = True
        if not known:
            steps.append(Step(node, opdef, ins, outs))
        for name, info in zip(node.outputs, outs):
            if name:
                env[name] = info
    steps = _live_steps(steps, graph.outputs)
    return Specialized(steps, env)


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _live_steps(steps: list, outputs: list) -> list:
    """Drops steps whose outputs nobody reads (dead after folding)."""
    needed = set(outputs)
    live = []
    for step in reversed(steps):
        if any(o in needed for o in step.node.outputs if o):
            live.append(step)
            needed.update(i for i in step.node.inputs if i)
    live.reverse()
    return live
