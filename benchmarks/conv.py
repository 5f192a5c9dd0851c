"""Per-layer Conv timings: every distinct Conv of the benchmark models, as a
one-node model (bias + fused Relu, as after BN folding), pyengine against
onnxruntime, interleaved. Shows where whole-model time goes.

    python benchmarks/conv.py [--models resnet18,mobilenetv2,...] [--threads 1] [--batch 1]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from common import fmt_time, interleaved, median, table  # noqa: E402
from models import collect  # noqa: E402


def conv_layers(model, batch):
    """(cin, h, w, cout, k, stride, pad, group) -> count, from shape inference."""
    m = model
    dims = m.graph.input[0].type.tensor_type.shape.dim
    if not dims[0].dim_value:
        m = onnx.ModelProto()
        m.CopyFrom(model)
        m.graph.input[0].type.tensor_type.shape.dim[0].dim_value = batch
    m = onnx.shape_inference.infer_shapes(m)
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
              for v in list(m.graph.value_info) + list(m.graph.input)}
    inits = {t.name: t for t in m.graph.initializer}
    found = {}
    for n in m.graph.node:
        if n.op_type != "Conv":
            continue
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        # The light zoo makes its weights with ConstantOfShape: take the
        # shape inference's answer for those.
        xs = shapes[n.input[0]]
        ws = tuple(inits[n.input[1]].dims) if n.input[1] in inits else shapes[n.input[1]]
        key = (xs[1], xs[2], xs[3], ws[0], ws[2], a.get("strides", [1, 1])[0], a.get("pads", [0] * 4)[0],
               a.get("group", 1))
        found[key] = found.get(key, 0) + 1
    return found


def one_conv(cin, h, w, cout, k, s, p, g, batch, rng):
    wt = numpy_helper.from_array((rng.standard_normal((cout, cin // g, k, k)) * 0.1).astype(np.float32), "w")
    b = numpy_helper.from_array((rng.standard_normal(cout) * 0.1).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4,
                              group=g), helper.make_node("Relu", ["c"], ["y"])]
    gr = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (batch, cin, h, w))],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [wt, b])
    m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return onnx.shape_inference.infer_shapes(m)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet18,mobilenetv2,lenet,digits_cnn")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    import pyengine
    rng = np.random.default_rng(0)
    rows, tot = [], {}
    for name, (model, _, _) in collect(args.models.split(",")).items():
        for key, count in conv_layers(model, args.batch).items():
            cin, h, w, cout, k, s, p, g = key
            data = one_conv(*key, args.batch, rng).SerializeToString()
            so = ort.SessionOptions()
            so.intra_op_num_threads = args.threads
            theirs = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
            po = pyengine.SessionOptions()
            po.intra_op_num_threads = args.threads
            ours = pyengine.InferenceSession(data, po)
            feeds = {"x": rng.standard_normal((args.batch, cin, h, w)).astype(np.float32)}
            smp = interleaved({"ours": lambda: ours.run(None, feeds), "ort": lambda: theirs.run(None, feeds)},
                              rounds=args.rounds, min_time=0.02)
            a, b = median(smp["ours"]), median(smp["ort"])
            oh = (h + 2 * p - k) // s + 1
            ow = (w + 2 * p - k) // s + 1
            gf = 2.0 * args.batch * cout * oh * ow * (cin // g) * k * k / a / 1e9
            t = tot.setdefault(name, [0.0, 0.0])
            t[0] += a * count
            t[1] += b * count
            rows.append([name, f"{cin}x{h}x{w}->{cout} k{k}s{s}p{p}g{g}", count, fmt_time(a), fmt_time(b),
                         f"{a / b:.2f}x", f"{gf:.1f}", fmt_time((a - b) * count)])
    print(table(["model", "conv", "n", "pyengine", "onnxruntime", "ratio", "GFLOP/s", "excess x n"], rows))
    for name, (a, b) in tot.items():
        print(f"{name}: conv total {fmt_time(a)} vs {fmt_time(b)} ({a / b:.2f}x)")


if __name__ == "__main__":
    main()
