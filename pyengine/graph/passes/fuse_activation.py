"""Fuses an activation that follows Conv, Gemm, MatMul, ConvTranspose (or
an inference BatchNormalization: BN + Relu in one pass over memory) into
that node's epilogue: attributes `activation`, `activation_alpha`,
`activation_beta`, read by the native kernels. Exact Gelu (a transformer
feed-forward's) is fused into Gemm and MatMul only."""
from __future__ import annotations

import numpy as np

from ._match import single_consumer

PRODUCERS = {"Conv", "Gemm", "MatMul", "ConvTranspose", "BatchNormalization"}
# Fused only where the epilogue is the GEMM's (the transformer feed-forward).
GEMM_ONLY = {"Gelu"}
FLOAT_MAX = float(np.finfo(np.float32).max)


def activation_params(graph, act):
    """(name, alpha, beta) for a fusible activation node, else None."""
    op = act.op_type
    if op in ("Relu", "Sigmoid", "Tanh"):
        return op, 0.0, 0.0
    if op == "LeakyRelu":
        return op, float(act.attrs.get("alpha", 0.01)), 0.0
    if op == "HardSigmoid":
        return op, float(act.attrs.get("alpha", 0.2)), float(act.attrs.get("beta", 0.5))
    if op == "Elu":
        return op, float(act.attrs.get("alpha", 1.0)), 0.0
    if op == "Gelu" and act.attrs.get("approximate", "none") == "none":
        return op, 0.0, 0.0
    if op == "Clip":
        if act.opset < 11:
            return op, float(act.attrs.get("min", -FLOAT_MAX)), float(act.attrs.get("max", FLOAT_MAX))
        bounds = []
        for i, default in ((1, -FLOAT_MAX), (2, FLOAT_MAX)):
            name = act.input(i)
            if not name:
                bounds.append(default)
            elif graph.is_const(name) and graph.const(name).size == 1:
                bounds.append(float(graph.const(name).reshape(-1)[0]))
            else:
                return None
        return op, bounds[0], bounds[1]
    return None


def run(graph) -> bool:
    consumers = graph.consumers()
    removed = []
    for node in graph.nodes:
        if node.domain or node.op_type not in PRODUCERS or "activation" in node.attrs:
            continue
        act = single_consumer(graph, node.outputs[0], consumers)
        if act is None or act.domain or act.inputs[0] != node.outputs[0]:
            continue
        params = activation_params(graph, act)
        if params is None or (params[0] in GEMM_ONLY and node.op_type not in ("Gemm", "MatMul")):
            continue
        info = graph.infos.get(node.outputs[0])
        if info is not None and info.dtype is not None and info.dtype != np.float32:
            continue
        node.attrs["activation"], node.attrs["activation_alpha"], node.attrs["activation_beta"] = params
        node.outputs = [act.outputs[0]]
        removed.append(act)
        # `consumers` stays valid for every output still to be matched (the
        # activation's output keeps its readers): not rebuilt (quadratic).
    graph.remove_nodes(removed)
    return bool(removed)
