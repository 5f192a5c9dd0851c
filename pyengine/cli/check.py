"""`pyengine check MODEL`: pyengine against onnxruntime, and on a mismatch
the first node whose output diverges."""
from __future__ import annotations

import numpy as np
import onnx

from ._common import Style, load_onnx, ort_session, pyengine_session, require_ort, table
from .run import make_feeds


def register(sub):
    from . import add_command
    p = add_command(sub, "check", "compare pyengine with onnxruntime; find the first diverging node",
                    "Runs pyengine and onnxruntime on the same inputs (random, or given with\n"
                    "--input) and prints the largest absolute and relative error per output.\n"
                    "On a mismatch (|a - b| > atol + rtol * |b| anywhere) every node output is\n"
                    "exposed as a graph output in a copy of the model, both engines run it with\n"
                    "graph optimizations disabled, and a per-node error table shows the first\n"
                    "node whose output diverges. Exit status 1 on mismatch.",
                    "  pyengine check model.onnx\n"
                    "  pyengine check model.onnx --input x=x.npy --rtol 1e-3 --per-node")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--input", "-i", action="append", metavar="NAME=FILE.npy",
                   help="input array from a .npy file (repeatable); others are random")
    p.add_argument("--dim", action="append", metavar="NAME=VALUE",
                   help="value of a symbolic dimension for random inputs (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    p.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    p.add_argument("--per-node", action="store_true",
                   help="print the per-node table even when the outputs match")
    p.add_argument("--threads", type=int, default=1, help="threads of both engines (default 1)")
    p.set_defaults(func=run, random=True)


def compare(got, ref, rtol: float, atol: float) -> tuple:
    """(max abs error, max rel error, ok). Shapes or dtypes that differ are a mismatch (inf)."""
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape:
        return float("inf"), float("inf"), False
    if got.size == 0:
        return 0.0, 0.0, True
    if not (np.issubdtype(got.dtype, np.number) or got.dtype == np.bool_):
        same = bool(np.all(got == ref))
        return (0.0, 0.0, True) if same else (float("inf"), float("inf"), False)
    a, b = got.astype(np.float64), ref.astype(np.float64)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if np.any(nan_a != nan_b):
        return float("nan"), float("nan"), False
    both = nan_a & nan_b
    diff = np.where(both, 0.0, np.abs(a - b))
    diff = np.where(np.isinf(a) & np.isinf(b) & (a == b), 0.0, diff)
    rel = diff / np.maximum(np.abs(b), np.finfo(np.float64).tiny)
    ok = bool(np.all(diff <= atol + rtol * np.abs(np.where(both, 0.0, b))))
    return float(diff.max()), float(np.where(diff == 0, 0.0, rel).max()), ok and got.dtype == ref.dtype


def _fmt(x: float) -> str:
    return "-" if x is None else f"{x:.3g}"


def expose_intermediates(model) -> tuple:
    """A copy of `model` whose every typed node output is a graph output; returns (model, names)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    typed = {vi.name: vi for vi in m.graph.value_info}
    present = {o.name for o in m.graph.output}
    added = []
    for node in m.graph.node:
        for out in node.output:
            if out and out not in present and out in typed and typed[out].type.HasField("tensor_type") \
                    and typed[out].type.tensor_type.elem_type:
                m.graph.output.append(typed[out])
                present.add(out)
                added.append(out)
    return m, added


def run(args) -> int:
    style = Style()
    require_ort("check")
    model = load_onnx(args.model)
    feeds = make_feeds(model, args)
    ours = pyengine_session(model, args.threads).run(None, feeds)
    ort_sess = ort_session(model, args.threads)
    names = [o.name for o in ort_sess.get_outputs()]
    theirs = ort_sess.run(None, feeds)

    rows, all_ok = [], True
    for name, a, b in zip(names, ours, theirs):
        abs_err, rel_err, ok = compare(a, b, args.rtol, args.atol)
        all_ok &= ok
        shape = "x".join(map(str, np.shape(b))) or "scalar"
        if np.shape(a) != np.shape(b) or np.asarray(a).dtype != np.asarray(b).dtype:
            shape = f"{shape} vs pyengine {np.asarray(a).dtype} {'x'.join(map(str, np.shape(a)))}"
        rows.append([name, shape, _fmt(abs_err), _fmt(rel_err), style.ok("ok") if ok else style.bad("MISMATCH")])
    print(f"pyengine vs onnxruntime on {', '.join(f'{k} {list(v.shape)}' for k, v in feeds.items())} "
          f"(rtol {args.rtol:g}, atol {args.atol:g})")
    print(table(["output", "shape", "max abs err", "max rel err", "status"], rows, style, right={2, 3}))
    if all_ok and not args.per_node:
        print(style.ok("outputs match"))
        return 0
    if not all_ok:
        print(style.bad("outputs differ") + ": looking for the first diverging node ...")
    per_node(model, feeds, args, style, all_ok)
    return 0 if all_ok else 1


def per_node(model, feeds, args, style, all_ok: bool) -> None:
    from ..runtime.options import GraphOptimizationLevel
    exposed, added = expose_intermediates(model)
    outputs = [o.name for o in exposed.graph.output]
    ours = pyengine_session(exposed, args.threads, level=GraphOptimizationLevel.ORT_DISABLE_ALL).run(None, feeds)
    theirs = ort_session(exposed, args.threads, disable_opt=True).run(None, feeds)
    ours, theirs = dict(zip(outputs, ours)), dict(zip(outputs, theirs))
    rows, first = [], None
    for i, node in enumerate(model.graph.node):
        if node.op_type == "Constant":
            continue
        for out in node.output:
            if out not in ours:
                continue
            abs_err, rel_err, ok = compare(ours[out], theirs[out], args.rtol, args.atol)
            if not ok and first is None:
                first = (i, node, out, abs_err)
            status = style.ok("ok") if ok else (style.bad("FIRST DIVERGENCE") if first and first[2] == out
                                                 else style.warn("diverges"))
            rows.append([i, node.name or f"#{i}", node.op_type, out,
                         "x".join(map(str, np.shape(theirs[out]))), _fmt(abs_err), _fmt(rel_err), status])
    limit = len(rows) if first is None or args.per_node else \
        min(len(rows), next(k for k, r in enumerate(rows) if r[3] == first[2]) + 4)
    print(table(["#", "node", "op", "output", "shape", "max abs err", "max rel err", "status"],
                rows[:limit], style, right={0, 5, 6}))
    if limit < len(rows):
        print(f"... {len(rows) - limit} more node output(s) (use --per-node for all)")
    if first is not None:
        i, node, out, err = first
        print(style.bad(f"first divergence: node '{node.name or f'#{i}'}' ({node.op_type}) output '{out}'"),
              f"max abs error {err:.3g}; its inputs match, so pyengine's {node.op_type} is the suspect")
    elif all_ok:
        print(style.ok("every node output matches"))
    elif len(rows) < sum(1 for n in model.graph.node if n.op_type != "Constant" for o in n.output if o):
        print("no compared intermediate diverges (some node outputs had no inferred type and were not "
              "compared); the mismatch may also come from pyengine's graph optimizations")
    else:
        print("no node diverges with graph optimizations disabled: the mismatch comes from pyengine's "
              "graph optimizations (fusion/folding); compare with `pyengine run` at lower levels")
