"""Fuses GELU written out with primitive ops into one Gelu node (opset 20):

    exact: x * 0.5 * (1 + Erf(x / sqrt(2)))      (Div by sqrt 2 or Mul by 1/sqrt 2)
    tanh:  0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))

The three factors x, 0.5 and (1 + ...) may be multiplied in any order and
grouping, as exporters and hand-written models do."""
from __future__ import annotations

import math

from ._match import close, const_scalar, is_float32, is_op, other_input, remove_unused, single_consumer

SQRT2 = math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
KAPPA = 0.044715


def _scaled(graph, name, producers, factor):
    """x when `name` is x * factor (Mul, either order) or x / (1/factor) (Div), else None."""
    node = producers.get(name)
    if is_op(node, "Mul"):
        for i in (0, 1):
            if close(const_scalar(graph, node.input(1 - i)), factor):
                return node.input(i)
    if is_op(node, "Div") and close(const_scalar(graph, node.input(1)), 1.0 / factor):
        return node.input(0)
    return None


def _is_cube(graph, name, x, producers) -> bool:
    node = producers.get(name)
    if is_op(node, "Pow"):
        return node.input(0) == x and close(const_scalar(graph, node.input(1)), 3.0, 0)
    if is_op(node, "Mul"):
        a, b = node.input(0), node.input(1)
        for sq_name, other in ((a, b), (b, a)):
            sq = producers.get(sq_name)
            if other == x and is_op(sq, "Mul") and sq.inputs == [x, x]:
                return True
    return False


def _erf_input(graph, act, producers):
    return _scaled(graph, act.input(0), producers, 1.0 / SQRT2)


def _tanh_input(graph, act, producers):
    inner = _scaled(graph, act.input(0), producers, SQRT_2_OVER_PI)
    add = producers.get(inner) if inner else None
    if not is_op(add, "Add"):
        return None
    for i in (0, 1):
        x, cubed = add.input(i), add.input(1 - i)
        cube = _scaled(graph, cubed, producers, KAPPA)
        if cube is not None and _is_cube(graph, cube, x, producers):
            return x
    return None


def _tail(graph, one_plus, x, consumers, producers):
    """The node computing x * 0.5 * one_plus (any order), with the nodes in between."""
    m1 = single_consumer(graph, one_plus, consumers)
    if not is_op(m1, "Mul"):
        return None
    o = other_input(m1, one_plus)
    if o == x or close(const_scalar(graph, o), 0.5):
        want_x = o != x
        m2 = single_consumer(graph, m1.outputs[0], consumers)
        if not is_op(m2, "Mul"):
            return None
        o2 = other_input(m2, m1.outputs[0])
        if (o2 == x) if want_x else close(const_scalar(graph, o2), 0.5):
            return m2, [m1]
        return None
    half = producers.get(o)
    if is_op(half, "Mul") and ((half.input(0) == x and close(const_scalar(graph, half.input(1)), 0.5))
                               or (half.input(1) == x and close(const_scalar(graph, half.input(0)), 0.5))):
        return m1, [half]
    return None


def run(graph) -> bool:
    changed = False
    for act in list(graph.nodes):
        if not is_op(act, ("Erf", "Tanh")) or not any(n is act for n in graph.nodes):
            continue
        producers, consumers = graph.producers(), graph.consumers()
        x = (_erf_input if act.op_type == "Erf" else _tanh_input)(graph, act, producers)
        if x is None or not is_float32(graph, x):
            continue
        add = single_consumer(graph, act.outputs[0], consumers)
        if not is_op(add, "Add") or not close(const_scalar(graph, other_input(add, act.outputs[0]) or ""), 1.0):
            continue
        tail = _tail(graph, add.outputs[0], x, consumers, producers)
        if tail is None:
            continue
        last, between = tail
        # Everything from x to the last node, in graph order, for clean-up.
        pattern = [n for n in graph.nodes if n is not last and
                   (n is act or n is add or any(n is b for b in between) or _feeds(n, act, producers, x))]
        last.op_type, last.domain, last.opset = "Gelu", "", 20
        last.inputs = [x]
        last.attrs = {"approximate": "none" if act.op_type == "Erf" else "tanh"}
        last.name = act.name + "_gelu"
        remove_unused(graph, pattern)
        changed = True
    return changed


def _feeds(node, act, producers, x) -> bool:
    """True when `node` lies on a path from x to `act` (the Erf/Tanh argument)."""
    stack, seen = [act.input(0)], set()
    while stack:
        name = stack.pop()
        if name == x or name in seen:
            continue
        seen.add(name)
        p = producers.get(name)
        if p is None:
            continue
        if p is node:
            return True
        stack.extend(i for i in p.inputs if i)
    return False
