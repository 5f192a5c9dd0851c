"""Removes Identity nodes and inference-mode Dropout: readers of the output
read the input directly."""
from __future__ import annotations

import numpy as np


def _removable(node, graph) -> bool:
    if node.op_type == "Identity":
        return True
    if node.op_type != "Dropout":
        return False
    if len(node.outputs) > 1 and node.outputs[1]:
        return False  # the mask is read
    if len(node.inputs) > 2 and node.inputs[2]:
        mode = graph.const(node.inputs[2])
        return mode is not None and not bool(np.asarray(mode).reshape(-1)[0])
    return True


def run(graph) -> bool:
    removed = []
    for node in graph.nodes:
        if node.domain or not _removable(node, graph):
            continue
        src, dst = node.inputs[0], node.outputs[0]
        if dst in graph.outputs:
            continue  # the graph's output keeps its name; compile turns this into a copy
        graph.replace_uses(dst, src)
        removed.append(node)
    graph.remove_nodes(removed)
    return bool(removed)
