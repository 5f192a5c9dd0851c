"""Data-movement operators: every opset difference, negative axis and
clamping rule is resolved here, so the native kernels (csrc/ops/tensor.cpp,
csrc/ops/resize.cpp) get canonical attributes. Transpose, Slice, Expand,
Tile, DepthToSpace and SpaceToDepth all become one StridedCopy: output dims
walked in order, with the input stride of each and a start offset."""
from __future__ import annotations

import math

import numpy as np

from ..graph.ir import TensorInfo
from .registry import OpDef, broadcast_shapes, const_input, normalize_axis, register
from .shape import _ints, value_bits

INDEX_TYPES = frozenset({np.dtype(np.int32), np.dtype(np.int64)})


def _strides(shape) -> list:
    st, acc = [], 1
    for d in reversed(shape):
        st.append(acc)
        acc *= int(d)
    return st[::-1]


def _err(node, msg):
    return ValueError(f"node '{node.name}' ({node.op_type}): {msg}")


class _Strided(OpDef):
    """Subclasses define plan(node, ins) -> (out_shape, dims, strides, offset)."""
    kernel = "StridedCopy"

    def infer(self, node, ins):
        return [TensorInfo(ins[0].dtype, tuple(self.plan(node, ins)[0]))]

    def kernel_attrs(self, node, ins):
        _, dims, strides, offset = self.plan(node, ins)
        return {"dims": [int(d) for d in dims], "strides": [int(s) for s in strides], "offset": int(offset)}


@register
class Transpose(_Strided):
    op_type = "Transpose"

    def plan(self, node, ins):
        shape = tuple(ins[0].shape)
        perm = node.attrs.get("perm")
        perm = list(range(len(shape)))[::-1] if perm is None else [int(p) for p in perm]
        if sorted(perm) != list(range(len(shape))):
            raise _err(node, f"perm {perm} is not a permutation of the {len(shape)} input dims")
        st = _strides(shape)
        out = [shape[p] for p in perm]
        return out, out, [st[p] for p in perm], 0


@register
class Slice(_Strided):
    op_type = "Slice"

    def plan(self, node, ins):
        shape = tuple(ins[0].shape)
        rank = len(shape)
        if node.opset < 10:
            starts = [int(v) for v in node.attrs.get("starts", [])]
            ends = [int(v) for v in node.attrs.get("ends", [])]
            axes = node.attrs.get("axes")
            steps = None
        else:
            starts = _ints(node, ins, 1, "starts")
            ends = _ints(node, ins, 2, "ends")
            axes = _ints(node, ins, 3, "axes")
            steps = _ints(node, ins, 4, "steps")
        axes = list(range(len(starts))) if axes is None else [int(a) for a in axes]
        steps = [1] * len(starts) if steps is None else steps
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise _err(node, f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length")
        first = [0] * rank
        step = [1] * rank
        count = list(shape)
        seen = set()
        for s, e, a, k in zip(starts, ends, axes, steps):
            a = normalize_axis(a, rank, node)
            if a in seen:
                raise _err(node, f"axis {a} repeated in axes {axes}")
            seen.add(a)
            if k == 0:
                raise _err(node, "a step is 0")
            r = range(*slice(s, e, k).indices(shape[a]))  # ONNX clamps exactly like Python slices
            first[a], step[a], count[a] = (r.start if len(r) else 0), k, len(r)
        st = _strides(shape)
        offset = sum(f * s for f, s in zip(first, st)) if all(c > 0 for c in count) else 0
        return count, count, [k * s for k, s in zip(step, st)], offset


@register
class Expand(_Strided):
    op_type = "Expand"

    def plan(self, node, ins):
        shape = tuple(ins[0].shape)
        target = _ints(node, ins, 1, "shape")
        out = broadcast_shapes(shape, tuple(target), node=node)
        st = _strides(shape)
        strides = [0] * len(out)
        for i in range(len(shape)):
            o = len(out) - len(shape) + i
            strides[o] = st[i] if shape[i] != 1 else 0
        return out, out, strides, 0


@register
class Tile(_Strided):
    op_type = "Tile"

    def plan(self, node, ins):
        shape = tuple(ins[0].shape)
        reps = _ints(node, ins, 1, "repeats")
        if len(reps) != len(shape) or any(r < 0 for r in reps):
            raise _err(node, f"repeats {reps} must be {len(shape)} non-negative values")
        st = _strides(shape)
        dims, strides = [], []
        for d, r, s in zip(shape, reps, st):  # output (r0, d0, r1, d1...) is the tiled layout
            dims += [r, d]
            strides += [0, s]
        return [d * r for d, r in zip(shape, reps)], dims, strides, 0


class _BlockOp(_Strided):
    def _check(self, node, ins):
        shape = tuple(ins[0].shape)
        if len(shape) != 4:
            raise _err(node, f"input must be 4-D, got {shape}")
        b = int(node.attrs.get("blocksize", 0))
        if b <= 0:
            raise _err(node, f"blocksize must be positive, got {b}")
        return shape, b


class _BlockOp2(_BlockOp):
    def check(self, node):
        mode = node.attrs.get("mode", "DCR")
        return None if mode in ("DCR", "CRD") else f"mode '{mode}' is not supported"


@register
class DepthToSpace(_BlockOp2):
    op_type = "DepthToSpace"

    def plan(self, node, ins):
        (n, c, h, w), b = self._check(node, ins)
        if c % (b * b):
            raise _err(node, f"channels {c} not divisible by blocksize^2 = {b * b}")
        c2 = c // (b * b)
        if node.attrs.get("mode", "DCR") == "DCR":
            tmp, perm = (n, b, b, c2, h, w), (0, 3, 4, 1, 5, 2)
        else:
            tmp, perm = (n, c2, b, b, h, w), (0, 1, 4, 2, 5, 3)
        st = _strides(tmp)
        return (n, c2, h * b, w * b), [tmp[p] for p in perm], [st[p] for p in perm], 0


@register
class SpaceToDepth(_BlockOp2):
    op_type = "SpaceToDepth"

    def plan(self, node, ins):
        (n, c, h, w), b = self._check(node, ins)
        if h % b or w % b:
            raise _err(node, f"spatial dims {h}x{w} not divisible by blocksize {b}")
        tmp = (n, c, h // b, b, w // b, b)
        perm = (0, 3, 5, 1, 2, 4) if node.attrs.get("mode", "DCR") == "DCR" else (0, 1, 3, 5, 2, 4)
        st = _strides(tmp)
        return (n, c * b * b, h // b, w // b), [tmp[p] for p in perm], [st[p] for p in perm], 0


@register
class Concat(OpDef):
    op_type = kernel = "Concat"

    def _axis(self, node, ins):
        ref = next((i for i in ins if i is not None), None)
        if ref is None:
            raise _err(node, "no inputs")
        if "axis" not in node.attrs:
            raise _err(node, "attribute 'axis' is required")
        return normalize_axis(int(node.attrs["axis"]), len(ref.shape), node), ref

    def infer(self, node, ins):
        axis, ref = self._axis(node, ins)
        total = 0
        for i in ins:
            if i is None:
                continue
            s = tuple(i.shape)
            if len(s) != len(ref.shape) or s[:axis] + s[axis + 1:] != tuple(ref.shape[:axis] + ref.shape[axis + 1:]):
                raise _err(node, f"input shapes {[tuple(x.shape) for x in ins if x]} differ outside axis {axis}")
            if i.dtype != ref.dtype:
                raise TypeError(f"node '{node.name}' (Concat): inputs have different element types")
            total += s[axis]
        out = list(ref.shape)
        out[axis] = total
        value = None
        if all(i is not None and i.value is not None for i in ins) and total * math.prod(out) < 4096:
            value = np.concatenate([np.asarray(i.value) for i in ins], axis=axis)  # keeps shape arithmetic foldable
        return [TensorInfo(ref.dtype, tuple(out), value)]

    def kernel_attrs(self, node, ins):
        return {"axis": self._axis(node, ins)[0]}

    def compute(self, node, ins, outs):
        return [np.concatenate([np.asarray(i.value) for i in ins], axis=self._axis(node, ins)[0])]


@register
class Split(OpDef):
    op_type = kernel = "Split"

    def _sizes(self, node, ins):
        shape = tuple(ins[0].shape)
        axis = normalize_axis(int(node.attrs.get("axis", 0)), len(shape), node)
        dim = shape[axis]
        split = node.attrs.get("split") if node.opset < 13 else _ints(node, ins, 1, "split")
        n = len(node.outputs)
        if split is not None and len(split) > 0:
            split = [int(s) for s in split]
            if sum(split) != dim or len(split) != n or any(s < 0 for s in split):
                raise _err(node, f"split {split} does not divide dim {dim} into {n} outputs")
        else:
            n = int(node.attrs.get("num_outputs", n))
            if n != len(node.outputs):
                raise _err(node, f"num_outputs {n} but {len(node.outputs)} outputs")
            chunk = -(-dim // n) if n else 0
            if node.opset < 18 and dim % n:
                raise _err(node, f"dim {dim} cannot be split evenly into {n} outputs")
            split = [max(0, min(chunk, dim - i * chunk)) for i in range(n)]
        return axis, split

    def infer(self, node, ins):
        axis, split = self._sizes(node, ins)
        shape = list(ins[0].shape)
        return [TensorInfo(ins[0].dtype, tuple(shape[:axis] + [s] + shape[axis + 1:])) for s in split]

    def kernel_attrs(self, node, ins):
        return {"axis": self._sizes(node, ins)[0]}


@register
class Gather(OpDef):
    op_type = kernel = "Gather"

    def infer(self, node, ins):
        shape = tuple(ins[0].shape)
        if ins[1].dtype not in INDEX_TYPES:
            raise TypeError(f"node '{node.name}' (Gather): indices must be int32 or int64, got {ins[1].dtype}")
        axis = normalize_axis(int(node.attrs.get("axis", 0)), len(shape), node)
        out = shape[:axis] + tuple(ins[1].shape) + shape[axis + 1:]
        value = None
        # Gathers on shapes (Shape -> Gather) stay known, so shape arithmetic folds.
        if ins[0].value is not None and ins[1].value is not None and math.prod(out) <= 64:
            value = self._numpy(node, ins, axis)
        return [TensorInfo(ins[0].dtype, out, value)]

    def _numpy(self, node, ins, axis):
        n = ins[0].shape[axis]
        idx = np.asarray(ins[1].value).astype(np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            bad = idx[(idx < -n) | (idx >= n)].reshape(-1)[0]
            raise _err(node, f"index {bad} is out of range [{-n}, {n - 1}] for axis {axis}")
        return np.take(np.asarray(ins[0].value), np.where(idx < 0, idx + n, idx), axis=axis)

    def kernel_attrs(self, node, ins):
        return {"axis": normalize_axis(int(node.attrs.get("axis", 0)), len(ins[0].shape), node)}


@register
class GatherElements(OpDef):
    op_type = kernel = "GatherElements"

    def infer(self, node, ins):
        d, i = tuple(ins[0].shape), tuple(ins[1].shape)
        if ins[1].dtype not in INDEX_TYPES:
            raise TypeError(f"node '{node.name}' (GatherElements): indices must be int32 or int64")
        axis = normalize_axis(int(node.attrs.get("axis", 0)), len(d), node)
        if len(d) != len(i) or any(a > b for k, (a, b) in enumerate(zip(i, d)) if k != axis):
            raise _err(node, f"indices {i} do not fit data {d}")
        return [TensorInfo(ins[0].dtype, i)]

    def kernel_attrs(self, node, ins):
        return {"axis": normalize_axis(int(node.attrs.get("axis", 0)), len(ins[0].shape), node)}


@register
class ScatterND(OpDef):
    op_type = kernel = "ScatterND"

    def check(self, node):
        r = node.attrs.get("reduction", "none")
        return None if r in ("none", "add", "mul", "max", "min") else f"reduction '{r}' is not supported"

    def infer(self, node, ins):
        d, i, u = tuple(ins[0].shape), tuple(ins[1].shape), tuple(ins[2].shape)
        if ins[1].dtype != np.dtype(np.int64):
            raise TypeError(f"node '{node.name}' (ScatterND): indices must be int64")
        if not i or i[-1] > len(d) or u != i[:-1] + d[i[-1]:]:
            raise _err(node, f"updates {u} do not fit data {d} and indices {i}")
        if node.attrs.get("reduction", "none") != "none" and ins[0].dtype == np.dtype(np.bool_):
            raise NotImplementedError("ScatterND reductions on bool")
        return [TensorInfo(ins[0].dtype, d)]

    def kernel_attrs(self, node, ins):
        return {"reduction": node.attrs.get("reduction", "none")}


@register
class Trilu(OpDef):
    op_type = kernel = "Trilu"

    def infer(self, node, ins):
        if len(ins[0].shape) < 2:
            raise _err(node, f"input must have rank >= 2, got {tuple(ins[0].shape)}")
        k = const_input(node, ins, 1, "k")
        if k is not None and np.asarray(k).size != 1:
            raise _err(node, f"k must be a single value, got shape {np.asarray(k).shape}")
        return [TensorInfo(ins[0].dtype, tuple(ins[0].shape))]

    def kernel_attrs(self, node, ins):
        k = const_input(node, ins, 1, "k")
        k = 0 if k is None else int(np.asarray(k).reshape(-1)[0])
        big = 1 << 40  # clamps huge k without overflow in the kernel
        return {"upper": int(node.attrs.get("upper", 1)), "k": max(-big, min(big, k))}


@register
class CumSum(OpDef):
    op_type = kernel = "CumSum"
    dtypes = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.int32, np.int64, np.uint32, np.uint64))

    def infer(self, node, ins):
        self.kernel_attrs(node, ins)
        return [TensorInfo(ins[0].dtype, tuple(ins[0].shape))]

    def kernel_attrs(self, node, ins):
        axis = int(np.asarray(const_input(node, ins, 1, "axis")).reshape(-1)[0])
        return {"axis": normalize_axis(axis, len(ins[0].shape), node),
                "exclusive": int(node.attrs.get("exclusive", 0)), "reverse": int(node.attrs.get("reverse", 0))}


# ---- Pad ----------------------------------------------------------------------

def _pad_map(n_in: int, before: int, n_out: int, mode: str) -> np.ndarray:
    x = np.arange(n_out, dtype=np.int64) - before
    inside = (x >= 0) & (x < n_in)
    if mode == "constant" or n_in == 0:
        return np.where(inside, x, -1)
    if mode == "edge":
        return np.clip(x, 0, n_in - 1)
    if mode == "wrap":
        return np.mod(x, n_in)
    if n_in == 1:  # reflect
        return np.zeros_like(x)
    period = 2 * (n_in - 1)
    x = np.mod(x, period)
    return np.where(x >= n_in, period - x, x)


@register
class Pad(OpDef):
    op_type = "Pad"
    kernel = "MapGather"

    def check(self, node):
        mode = node.attrs.get("mode", "constant")
        return None if mode in ("constant", "reflect", "edge", "wrap") else f"mode '{mode}' is not supported"

    def _pads(self, node, ins):
        shape = tuple(ins[0].shape)
        rank = len(shape)
        if node.opset < 11:
            pads = [int(p) for p in node.attrs.get("pads", node.attrs.get("paddings", []))]
            axes = list(range(rank))
        else:
            pads = _ints(node, ins, 1, "pads")
            axes = _ints(node, ins, 3, "axes")
            axes = list(range(rank)) if axes is None else [normalize_axis(a, rank, node) for a in axes]
        if len(pads) != 2 * len(axes):
            raise _err(node, f"pads {pads} must have 2 x {len(axes)} entries")
        begin, end = [0] * rank, [0] * rank
        for k, a in enumerate(axes):
            begin[a], end[a] = pads[k], pads[k + len(axes)]
        out = [d + b + e for d, b, e in zip(shape, begin, end)]
        if any(o < 0 for o in out):
            raise _err(node, f"pads {pads} remove more than the input {shape}")
        mode = node.attrs.get("mode", "constant")
        for d, o, b in zip(shape, out, begin):
            if mode != "constant" and d == 0 and o > 0:
                raise _err(node, f"cannot pad an empty dim in mode '{mode}'")
        return shape, begin, out, mode

    def infer(self, node, ins):
        _, _, out, _ = self._pads(node, ins)
        return [TensorInfo(ins[0].dtype, tuple(out))]

    def kernel_attrs(self, node, ins):
        shape, begin, out, mode = self._pads(node, ins)
        maps = np.concatenate([_pad_map(d, b, o, mode) for d, b, o in zip(shape, begin, out)] + [np.zeros(0, np.int64)])
        attrs = {"maps": [int(m) for m in maps], "value_bits": 0, "value_input": -1}
        if node.opset < 11:
            attrs["value_bits"] = value_bits(node.attrs.get("value", 0.0), ins[0].dtype)
        elif len(ins) > 2 and ins[2] is not None:
            if ins[2].value is not None:
                attrs["value_bits"] = value_bits(ins[2].value, ins[2].dtype)
            else:
                attrs["value_input"] = 2  # a scalar known only at run time
        return attrs


# ---- Resize / Upsample ----------------------------------------------------------

_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                "tf_half_pixel_for_nn", "tf_crop_and_resize")
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _original_coords(mode, n_in, n_out, scale, roi_start, roi_end):
    x = np.arange(n_out, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = n_out / (scale * n_in)
        offset = n_in / 2 * (1 - adjustment)
        return offset + (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(x)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + 0.5) / scale
    # tf_crop_and_resize
    if n_out > 1:
        return roi_start * (n_in - 1) + x * (roi_end - roi_start) * (n_in - 1) / (n_out - 1)
    return np.full_like(x, 0.5 * (roi_start + roi_end) * (n_in - 1))


def _nearest(x, mode):
    if mode == "round_prefer_floor":
        return np.where(x - np.floor(x) == 0.5, np.floor(x), np.round(x))
    if mode == "round_prefer_ceil":
        return np.where(x - np.floor(x) == 0.5, np.ceil(x), np.round(x))
    return np.floor(x) if mode == "floor" else np.ceil(x)


class _ResizeBase(OpDef):
    # One native entry point: nearest modes get index maps ("maps"), linear
    # ones two taps and a weight per output coordinate ("i0", "i1", "w1").
    kernel = "Resize"

    def settings(self, node, ins):
        """(out_shape, per-dim scales, mode, coordinate mode, nearest mode, roi, extrapolation)."""
        raise NotImplementedError

    def infer(self, node, ins):
        s = self.settings(node, ins)
        if s["mode"] == "linear" and ins[0].dtype != np.dtype(np.float32):
            raise NotImplementedError(f"{node.op_type} linear on {ins[0].dtype} (only float32)")
        return [TensorInfo(ins[0].dtype, tuple(s["out"]))]

    def kernel_attrs(self, node, ins):
        s = self.settings(node, ins)
        shape, out = tuple(ins[0].shape), s["out"]
        i0s, i1s, ws = [], [], []
        for d in range(len(shape)):
            n_in, n_out = shape[d], out[d]
            x = _original_coords(s["coord"], n_in, n_out, s["scales"][d], s["roi"][d], s["roi"][d + len(shape)])
            if n_in == n_out and s["scales"][d] == 1.0 and s["coord"] != "tf_crop_and_resize":
                x = np.arange(n_out, dtype=np.float64)  # an unscaled dim is copied (as onnxruntime does)
            outside = (x < 0) | (x > n_in - 1) if s["coord"] == "tf_crop_and_resize" else np.zeros(n_out, bool)
            if s["mode"] == "nearest":
                i0 = np.clip(_nearest(x, s["nearest"]), 0, max(n_in - 1, 0)).astype(np.int64)
                i1, w = i0, np.zeros(n_out)
            else:
                xc = np.clip(x, 0, max(n_in - 1, 0))
                i0 = np.floor(xc).astype(np.int64)
                i1 = np.minimum(i0 + 1, n_in - 1)
                w = xc - i0
            i0 = np.where(outside, -1, i0)
            i0s.append(i0)
            i1s.append(i1)
            ws.append(w)
        cat = lambda parts, t: [t(v) for p in parts for v in p]  # noqa: E731
        if s["mode"] == "nearest":
            return {"maps": cat(i0s, int), "value_bits": value_bits(s["extrapolation"], ins[0].dtype),
                    "value_input": -1}
        return {"i0": cat(i0s, int), "i1": cat(i1s, int), "w1": cat(ws, float),
                "extrapolation_value": float(s["extrapolation"])}



@register
class Resize(_ResizeBase):
    op_type = "Resize"

    def check(self, node):
        mode = node.attrs.get("mode", "nearest")
        if mode not in ("nearest", "linear"):
            return f"mode '{mode}' is not supported (nearest and linear are)"
        if node.attrs.get("coordinate_transformation_mode", "half_pixel") not in _COORD_MODES:
            return f"coordinate_transformation_mode '{node.attrs['coordinate_transformation_mode']}' is not supported"
        if node.attrs.get("coordinate_transformation_mode") == "tf_half_pixel_for_nn" and node.opset >= 13:
            return "coordinate_transformation_mode 'tf_half_pixel_for_nn' was removed in opset 13"
        if node.attrs.get("nearest_mode", "round_prefer_floor") not in _NEAREST_MODES:
            return f"nearest_mode '{node.attrs['nearest_mode']}' is not supported"
        if node.attrs.get("antialias", 0):
            return "antialias is not supported"
        return None

    def settings(self, node, ins):
        reason = self.check(node)
        if reason:
            raise NotImplementedError(f"Resize: {reason}")
        shape = tuple(ins[0].shape)
        rank = len(shape)
        if node.opset < 11:
            roi, scales, sizes = None, const_input(node, ins, 1, "scales"), None
            coord = "asymmetric"
        else:
            roi = const_input(node, ins, 1, "roi")
            scales = const_input(node, ins, 2, "scales")
            sizes = const_input(node, ins, 3, "sizes")
            coord = node.attrs.get("coordinate_transformation_mode", "half_pixel")
        axes = node.attrs.get("axes")
        axes = list(range(rank)) if axes is None else [normalize_axis(int(a), rank, node) for a in axes]
        scales = None if scales is None or np.asarray(scales).size == 0 else [float(v) for v in np.asarray(scales).reshape(-1)]
        sizes = None if sizes is None or np.asarray(sizes).size == 0 else [int(v) for v in np.asarray(sizes).reshape(-1)]
        full_scales = [1.0] * rank
        out = list(shape)
        if sizes is not None:
            if len(sizes) != len(axes):
                raise _err(node, f"sizes {sizes} must have {len(axes)} entries")
            policy = node.attrs.get("keep_aspect_ratio_policy", "stretch")
            if policy == "stretch":
                for a, s in zip(axes, sizes):
                    out[a] = s
                    full_scales[a] = s / shape[a] if shape[a] else 1.0
            else:
                ratios = [s / shape[a] for a, s in zip(axes, sizes)]
                r = min(ratios) if policy == "not_larger" else max(ratios)
                for a in axes:
                    out[a] = int(r * shape[a] + 0.5)
                    full_scales[a] = r
        elif scales is not None:
            if len(scales) != len(axes):
                raise _err(node, f"scales {scales} must have {len(axes)} entries")
            for a, s in zip(axes, scales):
                if s <= 0:
                    raise _err(node, f"scale {s} must be positive")
                full_scales[a] = s
                out[a] = int(math.floor(shape[a] * s))
                if coord == "align_corners" and shape[a] * s != out[a]:
                    # The spec divides by scale * length, onnxruntime by the integer output length.
                    raise NotImplementedError(
                        f"Resize align_corners with scale {s} on a dim of {shape[a]} (a fractional output length: "
                        "onnxruntime and the ONNX specification give different results; give sizes instead)")
        else:
            raise _err(node, "one of scales and sizes is required")
        full_roi = [0.0] * rank + [1.0] * rank
        if roi is not None and np.asarray(roi).size and coord == "tf_crop_and_resize":
            r = [float(v) for v in np.asarray(roi).reshape(-1)]
            if len(r) != 2 * len(axes):
                raise _err(node, f"roi {r} must have {2 * len(axes)} entries")
            for k, a in enumerate(axes):
                full_roi[a], full_roi[a + rank] = r[k], r[k + len(axes)]
        mode = node.attrs.get("mode", "nearest")
        return {"out": out, "scales": full_scales, "mode": mode, "coord": coord,
                "nearest": node.attrs.get("nearest_mode", "round_prefer_floor") if node.opset >= 11 else "floor",
                "roi": full_roi, "extrapolation": node.attrs.get("extrapolation_value", 0.0)}


@register
class Upsample(_ResizeBase):
    op_type = "Upsample"

    def check(self, node):
        mode = node.attrs.get("mode", "nearest")
        return None if mode in ("nearest", "linear", "bilinear") else f"mode '{mode}' is not supported"

    def settings(self, node, ins):
        shape = tuple(ins[0].shape)
        scales = node.attrs.get("scales") if node.opset < 9 else const_input(node, ins, 1, "scales")
        scales = [float(s) for s in np.asarray(scales).reshape(-1)]
        if len(scales) != len(shape):
            raise _err(node, f"scales {scales} must have {len(shape)} entries")
        mode = "nearest" if node.attrs.get("mode", "nearest") == "nearest" else "linear"
        out = [int(math.floor(d * s)) for d, s in zip(shape, scales)]
        return {"out": out, "scales": scales, "mode": mode, "coord": "asymmetric", "nearest": "floor",
                "roi": [0.0] * len(shape) + [1.0] * len(shape), "extrapolation": 0.0}
