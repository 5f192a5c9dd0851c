"""Small helpers for pattern-matching passes."""
from __future__ import annotations


def single_consumer(graph, value: str, consumers: dict):
    """The only node reading `value`, or None when it has several readers or
    is a graph output (then it must stay materialized)."""
    if value in graph.outputs:
        return None
    readers = consumers.get(value, [])
    if len(readers) != 1:
        return None
    return readers[0]
