"""`pyengine info MODEL`: what a model holds and whether pyengine can run it."""
from __future__ import annotations

import os

import numpy as np
import onnx

from ._common import Style, human, load_onnx, parse_dims, table

#: Ops whose FLOPs are computed exactly from shapes; the rest count one per output element.
MATMUL_LIKE = ("Conv", "ConvTranspose", "Gemm", "MatMul")
#: Ops that only move or describe data: no FLOPs.
NO_ARITHMETIC = frozenset({
    "Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split",
    "Slice", "Gather", "GatherElements", "GatherND", "Shape", "Size", "Cast", "CastLike", "Expand", "Tile",
    "Pad", "ConstantOfShape", "DepthToSpace", "SpaceToDepth", "ScatterND", "ScatterElements", "Range"})


def register(sub):
    from . import add_command
    p = add_command(sub, "info", "show a model's inputs, operators, size, FLOPs and support",
                    "Prints inputs and outputs (names, types, shapes), opsets, an operator\n"
                    "histogram with FLOPs, the parameter count, and which operators pyengine\n"
                    "does not support. FLOPs are per sample, with symbolic dims set by --dim\n"
                    "(default 1); Conv/ConvTranspose/Gemm/MatMul count 2 per multiply-add,\n"
                    "data movement (Reshape, Concat, Gather...) and nodes computed from\n"
                    "constants only none, other operators one per output element.",
                    "  pyengine info models/digits_cnn.onnx\n  pyengine info bert.onnx --dim seq=128")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--dim", action="append", metavar="NAME=VALUE",
                   help="value of a symbolic dimension for FLOPs (repeatable; default 1)")
    p.set_defaults(func=run)


def run(args) -> int:
    style = Style()
    model = load_onnx(args.model)
    dims = parse_dims(args.dim)
    g = model.graph
    size = os.path.getsize(args.model)
    opsets = ", ".join(f"{imp.domain or 'ai.onnx'} {imp.version}" for imp in model.opset_import)
    print(f"{style.head('model')}     {args.model} ({human(size, 'B')}), IR version {model.ir_version}, "
          f"opset {opsets}" + (f", producer {model.producer_name} {model.producer_version}".rstrip()
                               if model.producer_name else ""))

    inits = {t.name for t in g.initializer}
    io_rows = [["input", vi.name, _type_str(vi), _shape_str(vi)] for vi in g.input if vi.name not in inits]
    io_rows += [["output", vi.name, _type_str(vi), _shape_str(vi)] for vi in g.output]
    print()
    print(table(["", "name", "type", "shape"], io_rows, style))

    support = operator_support(model)
    flops = node_flops(model, dims)
    hist: dict = {}
    for node, f in zip(g.node, flops):
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        count, total = hist.get(key, (0, 0))
        hist[key] = (count + 1, None if total is None or f is None else total + f)
    batch = _batch_of(model, dims)
    rows = []
    for key, (count, total) in sorted(hist.items(), key=lambda kv: (-kv[1][0], kv[0])):
        reason = support.get(key)
        ok = style.ok("yes") if reason is None else style.bad("no")
        rows.append([key, count, "?" if total is None else human(total / batch), ok])
    print()
    print(f"{style.head('operators')} ({len(g.node)} nodes)")
    print(table(["op", "count", "FLOPs/sample", "supported"], rows, style, right={1, 2}))

    n_params, n_bytes = parameter_count(model)
    known = [f for f in flops if f is not None]
    mm = sum(f for n, f in zip(g.node, flops) if f is not None and n.op_type in MATMUL_LIKE)
    print()
    print(f"{style.head('parameters')}  {n_params:,} ({human(n_bytes, 'B')})")
    flop_line = f"{human(sum(known) / batch)} ({human(mm / batch)} in {'/'.join(MATMUL_LIKE)})"
    if len(known) < len(flops):
        flop_line += f"; {len(flops) - len(known)} node(s) without known shapes not counted"
    print(f"{style.head('FLOPs')}       {flop_line} per sample")
    if not support:
        print(f"{style.head('pyengine')}    {style.ok('supports every operator in this model')}")
    else:
        print(f"{style.head('pyengine')}    {style.bad('does not support')} {len(support)} operator(s):")
        for key, reason in sorted(support.items()):
            print(f"  {key}: {reason}")
    return 0


def _type_str(vi) -> str:
    from .._dtypes import to_numpy
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type"):
        return vi.type.WhichOneof("value") or "?"
    try:
        return str(np.dtype(to_numpy(t.elem_type)))
    except Exception:  # noqa: BLE001
        return onnx.TensorProto.DataType.Name(t.elem_type).lower()


def _shape_str(vi) -> str:
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return "?"
    dims = [str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
    return "[" + ", ".join(dims) + "]"


def operator_support(model) -> dict:
    """{op key: reason} for every operator pyengine cannot run (empty: all supported)."""
    from ..ops.registry import get_opdef
    from ..runtime.session import _dtype_problem
    from ..onnx_import.convert import to_graph
    try:
        graph = to_graph(model)
    except Exception as e:  # noqa: BLE001 - e.g. string tensors: report, don't fail
        return {"(model)": str(e)}
    missing: dict = {}
    for node in graph.nodes:
        key = node.op_type if not node.domain else f"{node.domain}.{node.op_type}"
        opdef = get_opdef(node.op_type, node.domain)
        if opdef is None:
            missing.setdefault(key, "not implemented")
            continue
        try:
            reason = opdef.check(node) or _dtype_problem(graph, node, opdef)
        except Exception as e:  # noqa: BLE001
            reason = f"check failed: {e}"
        if reason and key not in missing:
            missing[key] = f"node '{node.name}': {reason}"
    return missing


def parameter_count(model) -> tuple:
    """Elements and bytes of the floating-point initializers (and Constant tensors)."""
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == "Constant":
            tensors.extend(a.t for a in node.attribute if a.name == "value")
    count = nbytes = 0
    for t in tensors:
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                           onnx.TensorProto.BFLOAT16):
            count += n
        nbytes += n * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize \
            if t.data_type != onnx.TensorProto.STRING else 0
    return count, nbytes


def _concrete_model(model, dims: dict):
    """A copy whose input dims are concrete, shape-inferred: every tensor gets a static shape."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in m.graph.input:
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                value = dims.get(d.dim_param, 1)
                d.Clear()
                d.dim_value = value
    del m.graph.value_info[:]
    try:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - keep what the declared shapes tell
        pass
    return m


def _batch_of(model, dims) -> int:
    inits = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.tensor_type.HasField("shape"):
            continue
        shape = vi.type.tensor_type.shape.dim
        if len(shape) >= 2:
            d = shape[0]
            return max(d.dim_value if d.HasField("dim_value") else dims.get(d.dim_param, 1), 1)
    return 1


def node_flops(model, dims: dict) -> list:
    """FLOPs of each node (None where shapes are unknown), for the whole batch."""
    m = _concrete_model(model, dims)
    shapes = {}
    for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape") and \
                all(d.HasField("dim_value") for d in t.shape.dim):
            shapes[vi.name] = tuple(d.dim_value for d in t.shape.dim)
    for t in m.graph.initializer:
        shapes[t.name] = tuple(t.dims)
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    shapes[node.output[0]] = tuple(a.t.dims)
    # Nodes computed from constants only are folded when the model loads: they cost nothing per run.
    const = {t.name for t in m.graph.initializer}
    flops = []
    for node in m.graph.node:
        if node.op_type == "Constant" or all(not i or i in const for i in node.input):
            const.update(node.output)
            flops.append(0)
        elif node.op_type in NO_ARITHMETIC:
            flops.append(0)
        else:
            flops.append(_flops(node, shapes))
    return flops


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _flops(node, shapes):
    ins = [shapes.get(i) if i else None for i in node.input]
    out = shapes.get(node.output[0]) if node.output else None
    if node.op_type == "Constant":
        return 0
    if out is None:
        return None
    n_out = int(np.prod(out)) if out else 1
    op = node.op_type
    if op == "Conv" and len(ins) > 1 and ins[1] is not None:
        return 2 * n_out * int(np.prod(ins[1][1:]))
    if op == "ConvTranspose" and ins[0] is not None and len(ins) > 1 and ins[1] is not None:
        return 2 * int(np.prod(ins[0])) * int(np.prod(ins[1][1:]))
    if op == "Gemm" and ins[0] is not None and len(ins[0]) == 2:
        k = ins[0][0] if _attr(node, "transA", 0) else ins[0][1]
        return 2 * n_out * k + (n_out if len(ins) > 2 and node.input[2] else 0)
    if op == "MatMul" and ins[0] is not None and len(ins[0]) >= 1:
        return 2 * n_out * ins[0][-1]
    return n_out
