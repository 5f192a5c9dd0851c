"""`pyengine convert MODEL -o OUT`: an optimized ONNX of standard operators
(still runs in onnxruntime), optionally at another opset or with float16
weights; parity with the original is verified before anything is written."""
from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ._common import CLIError, Style, human, input_specs, load_onnx, ort_module, random_inputs, table
from .check import compare

#: pyengine passes whose results are standard ONNX (bias/activation fusion are not).
STANDARD_PASSES = ("constant_folding", "eliminate_identity", "fold_batchnorm", "dead_nodes")
FP16_MIN_ELEMENTS = 16   # smaller float tensors (scales, epsilons...) stay float32
FP16_MAX = float(np.finfo(np.float16).max)


def register(sub):
    from . import add_command
    p = add_command(sub, "convert", "write an optimized ONNX model (standard operators only)",
                    "Applies pyengine's graph passes that keep standard ONNX operators\n"
                    "(constant folding, Identity/Dropout and dead node removal, BatchNorm\n"
                    "folding into Conv/Gemm), optionally converts the opset (--opset) and\n"
                    "stores float weights as float16 (--fp16: float16 initializers, each read\n"
                    "through a Cast to float32, so the arithmetic stays float32). The result is\n"
                    "run in onnxruntime beside the original on random inputs and written only\n"
                    "when the outputs agree (looser tolerance with --fp16).\n"
                    "A trainer checkpoint (.npz from pyengine.train.save_checkpoint) is\n"
                    "exported to ONNX instead, given the function that builds its\n"
                    "architecture (--arch) and one input's shape (--input-shape).",
                    "  pyengine convert model.onnx -o model.opt.onnx\n"
                    "  pyengine convert ckpt.npz --arch models/train_digits_cnn.py:build \\\n"
                    "      --input-shape 1,1,8,8 -o digits_cnn.onnx\n"
                    "  pyengine convert model.onnx -o model.fp16.onnx --fp16 --opset 17")
    p.add_argument("model", help="ONNX model file, or a trainer checkpoint (.npz)")
    p.add_argument("--arch", help="with a checkpoint: 'file.py:function' or 'module:function' building the model")
    p.add_argument("--input-shape", help="with a checkpoint: shape of one input, e.g. 1,1,8,8")
    p.add_argument("-o", "--output", required=True, help="where to write the converted model")
    p.add_argument("--opset", type=int, help="target opset of the default domain (onnx.version_converter)")
    p.add_argument("--fp16", action="store_true", help="store float32 weights as float16")
    p.add_argument("--no-optimize", action="store_true", help="skip the graph passes")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime parity check")
    p.add_argument("--rtol", type=float, default=None, help="parity tolerance (default 1e-4, 1e-2 with --fp16)")
    p.add_argument("--dim", action="append", metavar="NAME=VALUE", help="symbolic dims for the check (default 1)")
    p.add_argument("--force", action="store_true", help="overwrite OUTPUT if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from ._common import parse_dims
    style = Style()
    if os.path.exists(args.output) and not args.force:
        raise CLIError(f"{args.output} exists; use --force to overwrite it")
    if args.model.endswith(".npz"):
        from .checkpoint import convert_checkpoint
        if not os.path.isfile(args.model):
            raise CLIError(f"checkpoint not found: {args.model}")
        if not args.arch:
            raise CLIError("converting a checkpoint needs --arch (the function that builds its architecture)")
        info = convert_checkpoint(args.model, args.arch, args.input_shape, args.output)
        err = "" if info["max_abs_err"] is None else f", max abs error vs the trainer {info['max_abs_err']:.2g}"
        print(f"wrote {args.output}: {info['nodes']} nodes{err}")
        return 0
    if os.path.abspath(args.output) == os.path.abspath(args.model):
        raise CLIError("the output must be another file than the input")
    original = load_onnx(args.model)
    model = original
    steps = []
    if not args.no_optimize:
        model = optimize(model)
        steps.append("optimized")
    if args.opset:
        model = convert_opset(model, args.opset)
        steps.append(f"opset {args.opset}")
    if args.fp16:
        model, n = to_fp16_weights(model)
        steps.append(f"{n} float16 initializers")
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 - our bug, but say it plainly
        raise CLIError(f"the converted model does not pass onnx.checker: {str(e).strip().splitlines()[0]}") from None

    rtol = args.rtol if args.rtol is not None else (1e-2 if args.fp16 else 1e-4)
    atol = rtol if args.fp16 else rtol / 10
    if not args.no_verify:
        rows, ok = verify(original, model, parse_dims(args.dim), rtol, atol, style)
        print(table(["output", "max abs err", "max rel err", "status"], rows, style, right={1, 2}))
        if not ok:
            raise CLIError(f"the converted model's outputs differ from the original's (rtol {rtol:g}); "
                           f"nothing written")
    onnx.save(model, args.output)
    before, after = len(original.graph.node), len(model.graph.node)
    size_in, size_out = os.path.getsize(args.model), os.path.getsize(args.output)
    print(f"{style.ok('wrote')} {args.output}: {', '.join(steps) or 'unchanged'}; nodes {before} -> {after}, "
          f"size {human(size_in, 'B')} -> {human(size_out, 'B')}")
    return 0


def optimize(model: onnx.ModelProto) -> onnx.ModelProto:
    import importlib
    from ..onnx_import.convert import to_graph
    graph = to_graph(model).copy()
    passes = [importlib.import_module(f"pyengine.graph.passes.{p}") for p in STANDARD_PASSES]
    for _ in range(4):
        if not any([bool(p.run(graph)) for p in passes]):
            break
    graph.prune_constants()
    return graph_to_model(graph, model)


def _attribute(name, value, attr_type):
    if isinstance(value, onnx.AttributeProto):
        out = onnx.AttributeProto()
        out.CopyFrom(value)
        out.name = name
        return out
    if isinstance(value, np.ndarray):
        value = numpy_helper.from_array(value)
    elif isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        value = [numpy_helper.from_array(v) for v in value]
    if isinstance(value, list) and not value and attr_type is None:
        attr_type = onnx.AttributeProto.INTS
    return helper.make_attribute(name, value, attr_type=attr_type)


def graph_to_model(graph, original: onnx.ModelProto) -> onnx.ModelProto:
    """Writes the IR back as ONNX, keeping the original's inputs, outputs, opsets and metadata."""
    attr_types = {}
    for i, n in enumerate(original.graph.node):
        attr_types[n.name or f"{n.op_type}_{i}"] = {a.name: a.type for a in n.attribute}
    nodes = []
    for node in graph.nodes:
        types = attr_types.get(node.name, {})
        if any(k in node.attrs for k in ("activation", "activation_alpha", "activation_beta")):
            raise CLIError(f"node '{node.name}' carries pyengine's fused attributes (not standard ONNX)")
        n = helper.make_node(node.op_type, node.inputs, node.outputs, name=node.name, domain=node.domain or None)
        n.attribute.extend(_attribute(k, v, types.get(k)) for k, v in node.attrs.items())
        nodes.append(n)
    # Graph outputs keep their names: a renamed one is re-exposed by an Identity.
    outputs = [vi.name for vi in original.graph.output]
    for new, old in zip(graph.outputs, outputs):
        if new != old:
            nodes.append(helper.make_node("Identity", [new], [old], name=f"{old}_output"))
    consts = dict(graph.constants)
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()]
    runtime_inputs = [vi for vi in original.graph.input if vi.name not in consts and vi.name in graph.inputs]
    if original.ir_version < 4:  # before IR 4 every initializer must also be a graph input
        runtime_inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in inits]
    g = helper.make_graph(nodes, original.graph.name or "graph", runtime_inputs, list(original.graph.output),
                          inits, doc_string=original.graph.doc_string or None)
    m = helper.make_model(g, opset_imports=list(original.opset_import))
    m.ir_version = original.ir_version
    for field in ("producer_name", "producer_version", "domain", "model_version", "doc_string"):
        setattr(m, field, getattr(original, field))
    m.metadata_props.extend(original.metadata_props)
    return m


def convert_opset(model, target: int) -> onnx.ModelProto:
    from onnx import version_converter
    try:
        out = version_converter.convert_version(model, target)
    except Exception as e:  # noqa: BLE001 - the converter's errors vary by op
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = msg.split("failed: ", 1)[-1].replace("Warning: ", "")  # drop the C++ assertion prefix
        raise CLIError(f"cannot convert to opset {target}: {msg}") from None
    return out


def to_fp16_weights(model) -> tuple:
    """Float32 initializers of FP16_MIN_ELEMENTS or more become float16, read through Cast nodes."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    casts, count = [], 0
    graph_inputs = {vi.name: vi for vi in g.input}
    for t in g.initializer:
        if t.data_type != onnx.TensorProto.FLOAT:
            continue
        if t.name in graph_inputs and m.ir_version >= 4:
            continue  # overridable initializers keep their declared type
        arr = numpy_helper.to_array(t)
        if arr.size < FP16_MIN_ELEMENTS:
            continue
        half_name = t.name + "_fp16"
        half = numpy_helper.from_array(np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16), half_name)
        t.CopyFrom(half)
        if t.name[:-5] in graph_inputs:  # IR < 4: the input entry follows its initializer
            vi = graph_inputs[t.name[:-5]]
            vi.name = half_name
            vi.type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
        casts.append(helper.make_node("Cast", [half_name], [half_name[:-5]], to=onnx.TensorProto.FLOAT,
                                      name=f"{half_name}_to_float"))
        count += 1
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    return m, count


def verify(original, converted, dims, rtol, atol, style) -> tuple:
    ort = ort_module()
    if ort is None:
        raise CLIError("verifying the converted model needs onnxruntime (pip install onnxruntime), "
                       "or pass --no-verify")
    feeds = random_inputs(input_specs(original), dims, seed=0)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        ref = ort.InferenceSession(original.SerializeToString(), so, providers=["CPUExecutionProvider"])
        new = ort.InferenceSession(converted.SerializeToString(), so, providers=["CPUExecutionProvider"])
        a, b = new.run(None, feeds), ref.run(None, feeds)
    except Exception as e:  # noqa: BLE001
        raise CLIError(f"onnxruntime cannot run the models for the parity check: "
                       f"{str(e).strip().splitlines()[0]}") from None
    rows, all_ok = [], True
    for o, x, y in zip(ref.get_outputs(), a, b):
        abs_err, rel_err, ok = compare(x, y, rtol, atol)
        all_ok &= ok
        rows.append([o.name, f"{abs_err:.3g}", f"{rel_err:.3g}", style.ok("ok") if ok else style.bad("MISMATCH")])
    return rows, all_ok
