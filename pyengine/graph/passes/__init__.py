"""Graph optimization passes, one per module, each `run(graph) -> bool`
(True when it changed something). `optimize` applies them by level, the
levels being onnxruntime's GraphOptimizationLevel values."""
from __future__ import annotations

from . import constant_folding, dead_nodes, eliminate_identity, fold_batchnorm, fuse_activation, fuse_bias
from . import fuse_attention, fuse_gelu, fuse_layernorm, fuse_residual
from . import fold_affine

BASIC = [constant_folding, eliminate_identity, dead_nodes]
EXTENDED = [fold_batchnorm, fold_affine, fuse_layernorm, fuse_gelu, fuse_attention, fuse_bias, fuse_residual, fuse_activation, dead_nodes]


def passes_for_level(level: int) -> list:
    if level <= 0:
        return []
    return BASIC + (EXTENDED if level >= 2 else [])


def optimize(graph, level: int = 99):
    """Returns an optimized copy of `graph` (the input is left untouched)."""
    graph = graph.copy()
    for _ in range(4):  # to a fixed point; passes enable each other rarely and shallowly
        changed = False
        for p in passes_for_level(level):
            changed |= bool(p.run(graph))
        if not changed:
            break
    graph.prune_constants()
    return graph
