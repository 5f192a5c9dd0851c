"""Fuses scaled dot-product attention into one pyengine.Attention node:

    S = MatMul(Q', K') [* c | / c] [+ mask]     Q' = Q [*|/ scalar], K' = K^T [*|/ scalar]
    Y = MatMul(Softmax(S, last axis), V) [-> Transpose]

with the Transposes of multi-head attention around it absorbed: Q, K^T and V
are read through a permutation of the tensor that precedes their Transpose
(e.g. [B, S, H, D] seen as [B, H, S, D]) and the output is written straight
in the layout of a following Transpose, so none of those copies runs. Scalar
factors that are constants go into the `scale` attribute; runtime scalars
(torch's exporter computes 1/sqrt(D) from Shape) become extra inputs folded
when the plan is compiled (they depend only on shapes).

The fused node (see pyengine/ops/attention.py):
    Attention(Q, KT, V, mask or '', factor...) attrs scale, scale_ops,
    q_perm, k_perm, v_perm, out_perm.
"""
from __future__ import annotations

from ._match import compose_perm, const_scalar, is_float32, is_op, known_rank, remove_unused, single_consumer


def _scalar_factor(graph, node, producers):
    """(value_name, other_name, op) when `node` multiplies/divides by a one-element value."""
    if not is_op(node, ("Mul", "Div")):
        return None
    sides = ((0, 1), (1, 0)) if node.op_type == "Mul" else ((0, 1),)
    for keep, fac in sides:
        f = node.input(fac)
        if graph.is_const(f):
            if graph.const(f).size == 1 and graph.const(f).ndim <= 2 and const_scalar(graph, f) is not None:
                return node.input(keep), f, node.op_type
            continue
        info = graph.infos.get(f)
        if info is not None and info.shape is not None and len(info.shape) <= 2 and all(d == 1 for d in info.shape):
            return node.input(keep), f, node.op_type
    return None


class _Operand:
    """A value read through a permutation, with the scalar factors peeled off it."""

    def __init__(self, graph, name, producers, factors, allow_scale=True):
        self.perm = None  # None: identity
        self.visited = []
        while True:
            node = producers.get(name)
            if node is not None:
                self.visited.append(node)
            peeled = _scalar_factor(graph, node, producers) if allow_scale else None
            if peeled is not None:
                name, f, op = peeled
                factors.append((f, op))
                continue
            if is_op(node, "Transpose"):
                perm = node.attrs.get("perm")
                if perm is None:
                    r = known_rank(graph, node.input(0), producers)
                    if r is None:
                        break
                    perm = list(range(r))[::-1]
                perm = [int(p) for p in perm]
                self.perm = perm if self.perm is None else compose_perm(perm, self.perm)
                name = node.input(0)
                continue
            break
        self.name = name
        self.rank = len(self.perm) if self.perm is not None else known_rank(graph, name, producers)


def _reaches_matmul(graph, name, producers, consumers) -> bool:
    node = producers.get(name)
    while True:
        if node is None or single_consumer(graph, node.outputs[0], consumers) is None:
            return False
        if is_op(node, "MatMul"):
            return True
        peeled = _scalar_factor(graph, node, producers)
        if peeled is None:
            return False
        node = producers.get(peeled[0])


def _softmax_last(graph, sm, rank) -> bool:
    axis = int(sm.attrs.get("axis", -1 if sm.opset >= 13 else 1))
    return axis == -1 or (rank is not None and axis == rank - 1)


def _match(graph, sm, producers, consumers):
    """Walks from a Softmax up to the scores MatMul and down to the output MatMul."""
    nodes = [sm]
    factors = []  # (name, "Mul" | "Div") applied to the scores
    mask = ""
    cur = producers.get(sm.input(0))
    if is_op(cur, "Add"):
        if single_consumer(graph, cur.outputs[0], consumers) is not sm:
            return None
        # The scores side is the one computed by MatMul (maybe through scalings).
        sides = [i for i in (0, 1) if _reaches_matmul(graph, cur.input(i), producers, consumers)]
        if len(sides) != 1:
            return None
        mask = cur.input(1 - sides[0])
        nodes.append(cur)
        cur = producers.get(cur.input(sides[0]))
    while True:
        peeled = _scalar_factor(graph, cur, producers)
        if peeled is None or single_consumer(graph, cur.outputs[0], consumers) is None:
            break
        name, f, op = peeled
        if not is_op(producers.get(name), ("MatMul", "Mul", "Div")):
            return None
        factors.append((f, op))
        nodes.append(cur)
        cur = producers.get(name)
    if not is_op(cur, "MatMul") or len(cur.inputs) != 2 or single_consumer(graph, cur.outputs[0], consumers) is None:
        return None
    nodes.append(cur)
    q = _Operand(graph, cur.input(0), producers, factors)
    kt = _Operand(graph, cur.input(1), producers, factors)
    # Softmax output read only by the second MatMul, as its left operand.
    pv = single_consumer(graph, sm.outputs[0], consumers)
    if not is_op(pv, "MatMul") or pv.input(0) != sm.outputs[0] or len(pv.inputs) != 2:
        return None
    v = _Operand(graph, pv.input(1), producers, factors, allow_scale=False)
    if any(r is None or r < 2 for r in (q.rank, kt.rank, v.rank)):
        return None
    scores_rank = max(q.rank, kt.rank)
    if mask:
        mr = known_rank(graph, mask, producers)
        scores_rank = None if mr is None else max(scores_rank, mr)
    if not _softmax_last(graph, sm, scores_rank):
        return None
    if not all(is_float32(graph, n) for n in (q.name, kt.name, v.name) + ((mask,) if mask else ())):
        return None
    out_perm, last = None, pv
    tr = single_consumer(graph, pv.outputs[0], consumers)
    if is_op(tr, "Transpose") and tr.attrs.get("perm") is not None:
        perm = [int(p) for p in tr.attrs["perm"]]
        if perm[-1] == len(perm) - 1:  # the kernel writes rows of Dv contiguously
            out_perm, last = perm, tr
    return dict(q=q, kt=kt, v=v, mask=mask, factors=factors, out_perm=out_perm, last=last,
                nodes=nodes + [pv] + ([tr] if last is tr else []) + q.visited + kt.visited + v.visited)


def run(graph) -> bool:
    changed = False
    for sm in list(graph.nodes):
        if not is_op(sm, "Softmax") or not any(n is sm for n in graph.nodes):
            continue
        producers, consumers = graph.producers(), graph.consumers()
        m = _match(graph, sm, producers, consumers)
        if m is None:
            continue
        scale, inputs, ops = 1.0, [], []
        for f, op in m["factors"]:
            c = const_scalar(graph, f)
            if c is not None:
                if op == "Div" and c == 0.0:
                    break  # leave a division by zero to the original graph
                scale = scale * c if op == "Mul" else scale / c
            else:
                inputs.append(f)
                ops.append(1 if op == "Mul" else -1)
        else:
            attrs = {"scale": float(scale)}
            if ops:
                attrs["scale_ops"] = ops
            for key, operand in (("q_perm", m["q"]), ("k_perm", m["kt"]), ("v_perm", m["v"])):
                if operand.perm is not None:
                    attrs[key] = operand.perm
            if m["out_perm"] is not None:
                attrs["out_perm"] = m["out_perm"]
            last = m["last"]
            pattern = [n for n in graph.nodes if any(n is p for p in m["nodes"]) and n is not last]
            # The fused node takes the last node's place: all it reads is computed before.
            last.op_type, last.domain, last.opset = "Attention", "pyengine", 1
            last.inputs = [m["q"].name, m["kt"].name, m["v"].name, m["mask"]] + inputs
            last.attrs = attrs
            last.name = sm.name + "_attention"
            remove_unused(graph, pattern)
            changed = True
    return changed

