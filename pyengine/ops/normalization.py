"""Normalization: BatchNormalization (inference), InstanceNormalization, LRN,
LayerNormalization (with its Mean/InvStdDev outputs) and GroupNormalization.

Opset differences are resolved here: BatchNormalization's `spatial` (opsets
7-8; 0 means one parameter per element of C x spatial) becomes the kernel
attribute `per_element`, training mode (attribute from opset 14, extra
outputs before) is reported unsupported, and GroupNormalization's per-group
scale of opset 18 becomes `per_group_scale`.
"""
from __future__ import annotations

import numpy as np

from ..graph.ir import TensorInfo
from .registry import OpDef, normalize_axis, register, same_as_input

FLOATS = frozenset(np.dtype(t) for t in (np.float32, np.float64))


def _numel(shape):
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _same_dtype(node, ins, names):
    for i, what in enumerate(names, start=1):
        if i < len(ins) and ins[i] is not None and ins[i].dtype != ins[0].dtype:
            raise NotImplementedError(f"{what} of type {ins[i].dtype} with input of type {ins[0].dtype} "
                                      "(mixed precision)")


@register
class BatchNormalization(OpDef):
    op_type = kernel = "BatchNormalization"
    dtypes = FLOATS

    def check(self, node):
        if node.attrs.get("training_mode", 0):
            return "training_mode=1 (training) is not supported; only inference"
        if any(o for o in node.outputs[1:]):
            return "the training outputs (running mean/var, saved mean/var) are not supported"
        return None

    def _per_element(self, node, ins):
        x = ins[0].shape
        if len(x) < 2:
            raise ValueError(f"node '{node.name}' (BatchNormalization): input must be N x C x ..., got {x}")
        spatial = node.attrs.get("spatial", 1) if node.opset < 9 else 1
        c = x[1]
        per_element = False
        for i, what in enumerate(("scale", "B", "mean", "var"), start=1):
            n = _numel(ins[i].shape)
            if not spatial and n == _numel(x[1:]) and n != c:
                per_element = True
            elif n != c:
                raise ValueError(f"node '{node.name}' (BatchNormalization): {what} has shape {ins[i].shape}, "
                                 f"expected ({c},)" + ("" if spatial else f" or {tuple(x[1:])}"))
        return per_element

    def infer(self, node, ins):
        if len(ins) < 5 or any(i is None for i in ins[1:5]):
            raise ValueError(f"node '{node.name}' (BatchNormalization): needs inputs X, scale, B, mean, var")
        _same_dtype(node, ins, ("scale", "B", "mean", "var"))
        self._per_element(node, ins)
        return same_as_input(node, ins)

    def kernel_attrs(self, node, ins):
        attrs = {"epsilon": float(node.attrs.get("epsilon", 1e-5)),
                 "per_element": int(self._per_element(node, ins))}
        # An activation fused by graph/passes/fuse_activation.py (BN + Relu in one pass).
        for k in ("activation", "activation_alpha", "activation_beta"):
            if k in node.attrs:
                attrs[k] = node.attrs[k]
        return attrs


@register
class InstanceNormalization(OpDef):
    op_type = kernel = "InstanceNormalization"
    dtypes = FLOATS

    def infer(self, node, ins):
        x = ins[0].shape
        if len(x) < 3:
            raise ValueError(f"node '{node.name}' (InstanceNormalization): input must be N x C x D1..., got {x}")
        for i, what in ((1, "scale"), (2, "B")):
            if tuple(ins[i].shape) != (x[1],):
                raise ValueError(f"node '{node.name}' (InstanceNormalization): {what} shape {ins[i].shape} "
                                 f"must be ({x[1]},)")
        _same_dtype(node, ins, ("scale", "B"))
        return same_as_input(node, ins)

    def kernel_attrs(self, node, ins):
        return {"epsilon": float(node.attrs.get("epsilon", 1e-5))}


@register
class LRN(OpDef):
    op_type = kernel = "LRN"
    dtypes = FLOATS

    def check(self, node):
        if int(node.attrs.get("size", 0)) < 1:
            return "attribute size (>= 1) is required"
        return None

    def infer(self, node, ins):
        if len(ins[0].shape) < 2:
            raise ValueError(f"node '{node.name}' (LRN): input must be N x C x ..., got {ins[0].shape}")
        return same_as_input(node, ins)

    def kernel_attrs(self, node, ins):
        return {"size": int(node.attrs["size"]), "alpha": float(node.attrs.get("alpha", 1e-4)),
                "beta": float(node.attrs.get("beta", 0.75)), "bias": float(node.attrs.get("bias", 1.0))}


def _stash_dtype(node):
    return np.dtype(np.float64) if int(node.attrs.get("stash_type", 1)) == 11 else np.dtype(np.float32)


def _check_broadcast(node, shape, target, what):
    if len(shape) > len(target) or any(s not in (1, t) for s, t in zip(shape[::-1], target[::-1])):
        raise ValueError(f"node '{node.name}' ({node.op_type}): {what} shape {tuple(shape)} does not broadcast "
                         f"to the normalized shape {tuple(target)}")


@register
class LayerNormalization(OpDef):
    op_type = kernel = "LayerNormalization"
    dtypes = FLOATS

    def check(self, node):
        if int(node.attrs.get("stash_type", 1)) not in (1, 11):
            return f"stash_type {node.attrs.get('stash_type')} (only 1 = float32 and 11 = float64)"
        return None

    def infer(self, node, ins):
        x = tuple(ins[0].shape)
        axis = normalize_axis(int(node.attrs.get("axis", -1)), len(x), node)
        for i, what in ((1, "Scale"), (2, "B")):
            if i < len(ins) and ins[i] is not None:
                _check_broadcast(node, ins[i].shape, x[axis:], what)
        _same_dtype(node, ins, ("Scale", "B"))
        outs = same_as_input(node, ins)
        stat_shape = x[:axis] + (1,) * (len(x) - axis)
        for _ in node.outputs[1:3]:
            outs.append(TensorInfo(_stash_dtype(node), stat_shape))
        return outs

    def kernel_attrs(self, node, ins):
        return {"axis": normalize_axis(int(node.attrs.get("axis", -1)), len(ins[0].shape), node),
                "epsilon": float(node.attrs.get("epsilon", 1e-5))}


@register
class GroupNormalization(OpDef):
    op_type = kernel = "GroupNormalization"
    dtypes = FLOATS

    def check(self, node):
        if "num_groups" not in node.attrs:
            return "attribute num_groups is required"
        return None

    def _per_group(self, node, ins):
        x = ins[0].shape
        g = int(node.attrs["num_groups"])
        if len(x) < 2 or g < 1 or x[1] % g:
            raise ValueError(f"node '{node.name}' (GroupNormalization): {x[1] if len(x) > 1 else '?'} channels "
                             f"not divisible into {g} groups (input {x})")
        per_group = False
        for i, what in ((1, "scale"), (2, "bias")):
            n = _numel(ins[i].shape)
            if n == g and n != x[1] and node.opset < 21:
                per_group = True
            elif n != x[1]:
                raise ValueError(f"node '{node.name}' (GroupNormalization): {what} shape {ins[i].shape} must "
                                 f"be ({x[1]},)" + (f" or ({g},)" if node.opset < 21 else ""))
        return per_group

    def infer(self, node, ins):
        self._per_group(node, ins)
        _same_dtype(node, ins, ("scale", "bias"))
        return same_as_input(node, ins)

    def kernel_attrs(self, node, ins):
        return {"num_groups": int(node.attrs["num_groups"]), "epsilon": float(node.attrs.get("epsilon", 1e-5)),
                "per_group_scale": int(self._per_group(node, ins))}
