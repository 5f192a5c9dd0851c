"""Turns a failure deep inside a model into a message about the inputs.

When a run fails because of what was fed (a mask one position longer than
the tokens, a sequence longer than the positional table, a token id past the
embedding), the first error comes from some node far from the inputs: a
Gather, an attention kernel's broadcast. The user needs to know which of
*their* arrays is at fault. This runs only on the error path, so it costs
nothing on a successful run.
"""
from __future__ import annotations

import re
from typing import Optional

_NODE_IN_MESSAGE = re.compile(r"node '([^']*)'")


def dim_conflicts(names: list, declared: list, shapes: list) -> Optional[str]:
    """Inputs that share a named dimension (ONNX dim_param, e.g. 'seq') but
    were given different sizes for it; None when they all agree."""
    seen = {}  # dim_param -> (input name, axis, size)
    for name, decl, shape in zip(names, declared, shapes):
        if decl is None:
            continue
        for axis, (d, size) in enumerate(zip(decl, shape)):
            if not isinstance(d, str) or not d:
                continue
            first = seen.setdefault(d, (name, axis, size))
            if first[2] != size:
                return (f"input '{name}' has {size} in dimension {axis} ('{d}') but input "
                        f"'{first[0]}' has {first[2]} in its dimension {first[1]} ('{d}'), "
                        f"and the model declares both as the same size '{d}'")
    return None


def inputs_behind(graph, node_name: str, input_names: list) -> list:
    """Graph inputs that the node named `node_name` depends on, in the
    order of the model's inputs; [] when no such node exists."""
    producers = {out: n for n in graph.nodes for out in n.outputs}
    node = next((n for n in graph.nodes if n.name == node_name), None)
    if node is None:
        return []
    wanted = set(input_names)
    found, stack, visited = set(), list(node.inputs), set()
    while stack:
        value = stack.pop()
        if not value or value in visited:
            continue
        visited.add(value)
        if value in wanted:
            found.add(value)
        producer = producers.get(value)
        if producer is not None:
            stack.extend(producer.inputs)
    return [n for n in input_names if n in found]


def explain(message: str, graph, names: list, declared: list, shapes: list) -> str:
    """`message` with what the inputs have to do with it appended."""
    conflict = dim_conflicts(names, declared, shapes)
    if conflict:
        return f"{conflict} ({message})"
    match = _NODE_IN_MESSAGE.search(message)
    behind = inputs_behind(graph, match.group(1), names) if match else []
    if not behind:
        return message
    given = {n: s for n, s in zip(names, shapes)}
    parts = ", ".join(f"'{n}' with shape {list(given[n])}" for n in behind)
    return f"{message}; the node is computed from input(s) {parts}"
