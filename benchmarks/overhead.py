"""Fixed cost of one run() call: pyengine against onnxruntime on tiny models
where the arithmetic is negligible, batch 1, 1 thread. Prints a Markdown table.

    python benchmarks/overhead.py [--rounds 30]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(__file__))
from common import fmt_time, interleaved, machine, median, table  # noqa: E402


def mlp(din=16, dh=32, dout=4):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in [("w1", (din, dh)), ("b1", (dh,)), ("w2", (dh, dout)), ("b2", (dout,))]]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"])]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, din])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, dout])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), {"x": np.ones((1, din), np.float32)}


def relu_only():
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), {"x": np.ones((1, 4), np.float32)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    import onnxruntime as ort

    import pyengine
    rows = []
    for name, (model, feeds) in {"single Relu (1x4)": relu_only(), "MLP 16-32-4, batch 1": mlp()}.items():
        data = model.SerializeToString()
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        theirs = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        po = pyengine.SessionOptions()
        po.intra_op_num_threads = 1
        ours = pyengine.InferenceSession(data, po)
        s = interleaved({"pyengine": lambda: ours.run(None, feeds), "onnxruntime": lambda: theirs.run(None, feeds)},
                        rounds=args.rounds, min_time=0.05)
        a, b = median(s["pyengine"]), median(s["onnxruntime"])
        rows.append([name, fmt_time(a), fmt_time(b), f"{a / b:.2f}x"])
    print(f"Machine: {machine()}; pyengine {pyengine.__version__}, onnxruntime {ort.__version__}; "
          f"1 thread, median of {args.rounds} interleaved rounds\n")
    print(table(["model", "pyengine run()", "onnxruntime run()", "ratio"], rows))


if __name__ == "__main__":
    main()
