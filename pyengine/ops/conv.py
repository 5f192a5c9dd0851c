"""Conv and ConvTranspose (float32, 1-D to 3-D).

The window geometry of every ONNX opset (auto_pad, pads, strides,
dilations, ceil_mode, output_shape/output_padding) is resolved here into
explicit per-axis pads, so the kernels (csrc/ops/conv.cpp) see one form:
`kernel_shape`, `strides`, `dilations`, `pads` (all begins, then all ends),
`group`, and the concrete output shape. The pooling ops reuse the same
helpers (pool.py).
"""
from __future__ import annotations

from ..graph.ir import TensorInfo
from .registry import FLOAT_TYPES, OpDef, register

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
FUSED_ATTRS = ("activation", "activation_alpha", "activation_beta")


def _auto_pad(node) -> str:
    ap = node.attrs.get("auto_pad", "NOTSET")
    if isinstance(ap, bytes):
        ap = ap.decode()
    return ap or "NOTSET"


def check_auto_pad(node):
    ap = _auto_pad(node)
    if ap not in AUTO_PADS:
        return f"auto_pad must be one of {', '.join(AUTO_PADS)}, got '{ap}'"
    return None


def spatial_attr(node, name, rank, default):
    """A per-spatial-axis attribute, checked for length; `default` when absent."""
    v = node.attrs.get(name)
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return [default] * rank
    v = [int(x) for x in v]
    if len(v) != rank:
        raise ValueError(f"node '{node.name}' ({node.op_type}): {name} {v} must have {rank} entries "
                         f"(one per spatial axis)")
    return v


def window_geometry(node, in_spatial, kernel, strides, dilations, ceil_mode=False):
    """(output spatial sizes, pads [begins..., ends...]) of a sliding window,
    with auto_pad and ceil_mode applied exactly as ONNX specifies."""
    r = len(in_spatial)
    for name, vals in (("strides", strides), ("dilations", dilations), ("kernel_shape", kernel)):
        if any(v < 1 for v in vals):
            raise ValueError(f"node '{node.name}' ({node.op_type}): {name} must be >= 1, got {list(vals)}")
    ap = _auto_pad(node)
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if ap in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-i // s) for i, s in zip(in_spatial, strides)]
        begins, ends = [], []
        for o, i, s, e in zip(out, in_spatial, strides, eff):
            total = max(0, (o - 1) * s + e - i)
            small = total // 2
            begins.append(small if ap == "SAME_UPPER" else total - small)
            ends.append(total - begins[-1])
        return out, begins + ends
    if ap == "VALID":
        pads = [0] * (2 * r)
    else:
        pads = [int(p) for p in node.attrs.get("pads", [0] * (2 * r))] or [0] * (2 * r)
        if len(pads) != 2 * r:
            raise ValueError(f"node '{node.name}' ({node.op_type}): pads {pads} must have {2 * r} entries")
        if any(p < 0 for p in pads):
            raise NotImplementedError(f"negative pads {pads}")
    out = []
    for a in range(r):
        span = in_spatial[a] + pads[a] + pads[a + r] - eff[a]
        if span < 0:
            raise ValueError(f"node '{node.name}' ({node.op_type}): the window ({eff[a]} wide with dilation) "
                             f"does not fit the padded input along spatial axis {a} "
                             f"(size {in_spatial[a]}, pads {pads[a]}+{pads[a + r]})")
        if ceil_mode:
            o = -(-span // strides[a]) + 1
            # A last window starting inside the end padding is dropped.
            if (o - 1) * strides[a] >= in_spatial[a] + pads[a]:
                o -= 1
        else:
            o = span // strides[a] + 1
        out.append(o)
    return out, pads


def _fused(node, attrs):
    for k in FUSED_ATTRS:
        if k in node.attrs:
            attrs[k] = node.attrs[k]
    return attrs


class _ConvBase(OpDef):
    dtypes = FLOAT_TYPES

    def check(self, node):
        return check_auto_pad(node)

    def _common(self, node, ins):
        x, w = ins[0].shape, ins[1].shape
        if len(x) < 3 or len(x) > 5:
            raise NotImplementedError(f"{node.op_type} on rank-{len(x)} input {x} (1-D to 3-D only)")
        if len(w) != len(x):
            raise ValueError(f"node '{node.name}' ({node.op_type}): weight rank {len(w)} ({w}) differs "
                             f"from input rank {len(x)} ({x})")
        r = len(x) - 2
        group = int(node.attrs.get("group", 1))
        if group < 1:
            raise ValueError(f"node '{node.name}' ({node.op_type}): group must be >= 1, got {group}")
        kernel = spatial_attr(node, "kernel_shape", r, None)
        if kernel[0] is None:
            kernel = list(w[2:])
        elif kernel != list(w[2:]):
            raise ValueError(f"node '{node.name}' ({node.op_type}): kernel_shape {kernel} differs from the "
                             f"weight's spatial shape {list(w[2:])}")
        strides = spatial_attr(node, "strides", r, 1)
        dilations = spatial_attr(node, "dilations", r, 1)
        return x, w, r, group, kernel, strides, dilations

    def _bias_ok(self, node, ins, m):
        if len(ins) > 2 and ins[2] is not None and tuple(ins[2].shape) != (m,):
            raise ValueError(f"node '{node.name}' ({node.op_type}): bias shape {ins[2].shape} must be ({m},)")


@register
class Conv(_ConvBase):
    op_type = kernel = "Conv"

    def _geometry(self, node, ins):
        x, w, r, group, kernel, strides, dilations = self._common(node, ins)
        if x[1] != w[1] * group:
            raise ValueError(f"node '{node.name}' (Conv): input has {x[1]} channels, weight {w} with group "
                             f"{group} expects {w[1] * group}")
        if w[0] % group:
            raise ValueError(f"node '{node.name}' (Conv): {w[0]} output channels not divisible by group {group}")
        out, pads = window_geometry(node, list(x[2:]), kernel, strides, dilations)
        return (x[0], w[0], *out), dict(kernel_shape=kernel, strides=strides, dilations=dilations, pads=pads,
                                         group=group)

    def infer(self, node, ins):
        shape, _ = self._geometry(node, ins)
        self._bias_ok(node, ins, shape[1])
        # Input 3 (`sum`, set only by graph/passes/fuse_residual.py): added
        # before the fused activation, same shape as the output.
        if len(ins) > 3 and ins[3] is not None and tuple(ins[3].shape) != tuple(shape):
            raise ValueError(f"node '{node.name}' (Conv): residual input shape {tuple(ins[3].shape)} must equal "
                             f"the output shape {tuple(shape)}")
        return [TensorInfo(ins[0].dtype, tuple(shape))]

    def kernel_attrs(self, node, ins):
        return _fused(node, self._geometry(node, ins)[1])


@register
class ConvTranspose(_ConvBase):
    op_type = kernel = "ConvTranspose"

    def _geometry(self, node, ins):
        x, w, r, group, kernel, strides, dilations = self._common(node, ins)
        if x[1] != w[0]:
            raise ValueError(f"node '{node.name}' (ConvTranspose): input has {x[1]} channels, weight {w} "
                             f"expects {w[0]}")
        if x[1] % group:
            raise ValueError(f"node '{node.name}' (ConvTranspose): {x[1]} input channels not divisible by "
                             f"group {group}")
        m = w[1] * group
        out_pad = spatial_attr(node, "output_padding", r, 0)
        eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
        full = [s * (i - 1) + op + e for s, i, op, e in zip(strides, x[2:], out_pad, eff)]
        ap = _auto_pad(node)
        out_shape = node.attrs.get("output_shape")
        if out_shape:
            out_shape = [int(v) for v in out_shape]
            if len(out_shape) == r + 2:  # some exporters write N and C too
                out_shape = out_shape[2:]
            if len(out_shape) != r:
                raise ValueError(f"node '{node.name}' (ConvTranspose): output_shape {out_shape} must have {r} "
                                 "entries")
        elif ap in ("SAME_UPPER", "SAME_LOWER"):
            out_shape = [i * s for i, s in zip(x[2:], strides)]
        if out_shape:
            begins, ends = [], []
            for f, o in zip(full, out_shape):
                total = f - o  # negative: the output extends past the full result (zeros + bias)
                small = total // 2
                begins.append(small if ap == "SAME_UPPER" else total - small)
                ends.append(total - begins[-1])
            pads = begins + ends
            out = out_shape
        else:
            pads = [0] * (2 * r) if ap == "VALID" else [int(p) for p in node.attrs.get("pads", [0] * (2 * r))]
            if len(pads) != 2 * r:
                raise ValueError(f"node '{node.name}' (ConvTranspose): pads {pads} must have {2 * r} entries")
            out = [f - pads[a] - pads[a + r] for a, f in enumerate(full)]
            if any(o < 0 for o in out) or any(p < 0 for p in pads):
                raise ValueError(f"node '{node.name}' (ConvTranspose): pads {pads} leave an empty output")
        return (x[0], m, *out), dict(kernel_shape=kernel, strides=strides, dilations=dilations, pads=pads,
                                      group=group)

    def infer(self, node, ins):
        shape, _ = self._geometry(node, ins)
        self._bias_ok(node, ins, shape[1])
        # Input 3 (`sum`, set only by graph/passes/fuse_residual.py): added
        # before the fused activation, same shape as the output.
        if len(ins) > 3 and ins[3] is not None and tuple(ins[3].shape) != tuple(shape):
            raise ValueError(f"node '{node.name}' (Conv): residual input shape {tuple(ins[3].shape)} must equal "
                             f"the output shape {tuple(shape)}")
        return [TensorInfo(ins[0].dtype, tuple(shape))]

    def kernel_attrs(self, node, ins):
        return _fused(node, self._geometry(node, ins)[1])

