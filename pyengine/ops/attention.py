"""pyengine.Attention: fused scaled dot-product attention, made by the
fuse_attention pass (never found in a model file).

Inputs: Q, KT, V, mask (optional, '' when absent), then scalar factors.
Logical views (numpy's transpose with the attribute permutations, identity
when absent):
    q  = Q.transpose(q_perm)   [..., Sq, D]
    kt = KT.transpose(k_perm)  [..., D, Sk]   (K already transposed, as MatMul reads it)
    v  = V.transpose(v_perm)   [..., Sk, Dv]
    y  = softmax((q @ kt) * scale + mask, axis=-1) @ v      [..., Sq, Dv]
Output: y.transpose(out_perm). Batch dims broadcast as in MatMul; the mask
broadcasts to the scores. scale = attribute `scale` times each factor input
(multiplied when its scale_ops entry is 1, divided when -1); the factors must
be known when the plan is compiled.
"""
from __future__ import annotations

import numpy as np

from ..graph.ir import TensorInfo
from .registry import FLOAT_TYPES, OpDef, broadcast_shapes, const_input, register


def _perm(node, key, rank):
    perm = node.attrs.get(key)
    if perm is None:
        return list(range(rank))
    perm = [int(p) for p in perm]
    if sorted(perm) != list(range(rank)):
        raise ValueError(f"node '{node.name}' (Attention): {key} {perm} is not a permutation of rank {rank}")
    return perm


def _view(node, key, shape):
    perm = _perm(node, key, len(shape))
    return tuple(shape[p] for p in perm)


@register
class Attention(OpDef):
    op_type = kernel = "Attention"
    domain = "pyengine"
    dtypes = FLOAT_TYPES

    def infer(self, node, ins):
        q = _view(node, "q_perm", ins[0].shape)
        kt = _view(node, "k_perm", ins[1].shape)
        v = _view(node, "v_perm", ins[2].shape)
        for what, s, t in (("Q", q, ins[0]), ("KT", kt, ins[1]), ("V", v, ins[2])):
            if len(s) < 2:
                raise ValueError(f"node '{node.name}' (Attention): {what} must have rank >= 2, got {s}")
            if t.dtype != np.float32:
                raise TypeError(f"node '{node.name}' (Attention): {what} must be float32, got {t.dtype}")
        if q[-1] != kt[-2] or kt[-1] != v[-2]:
            raise ValueError(f"node '{node.name}' (Attention): shapes do not chain: q {q}, k^T {kt}, v {v}")
        scores = broadcast_shapes(q[:-2], kt[:-2], node=node) + (q[-2], kt[-1])
        mask = ins[3] if len(ins) > 3 else None
        if mask is not None:
            if mask.dtype != np.float32:
                raise TypeError(f"node '{node.name}' (Attention): mask must be float32, got {mask.dtype}")
            scores = broadcast_shapes(scores, mask.shape, node=node)
            if scores[-2:] != (q[-2], kt[-1]):
                raise ValueError(f"node '{node.name}' (Attention): mask {mask.shape} widens the scores {scores}")
        logical = broadcast_shapes(scores[:-2], v[:-2], node=node) + (q[-2], v[-1])
        out_perm = _perm(node, "out_perm", len(logical))
        if out_perm[-1] != len(logical) - 1:
            raise NotImplementedError(f"node '{node.name}' (Attention): out_perm {out_perm} must keep the last axis")
        return [TensorInfo(ins[0].dtype, tuple(logical[p] for p in out_perm))]

    def kernel_attrs(self, node, ins):
        scale = float(node.attrs.get("scale", 1.0))
        ops = list(node.attrs.get("scale_ops", []))
        for i, op in enumerate(ops):
            f = const_input(node, ins, 4 + i, f"scale factor {i}")
            f = float(np.asarray(f, dtype=np.float64).reshape(-1)[0])
            scale = scale * f if op == 1 else scale / f
        attrs = {"scale": scale}
        for key, idx in (("q_perm", 0), ("k_perm", 1), ("v_perm", 2)):
            attrs[key] = _perm(node, key, len(ins[idx].shape))
        out_rank = len(self.infer(node, ins)[0].shape)
        attrs["out_perm"] = _perm(node, "out_perm", out_rank)
        return attrs
