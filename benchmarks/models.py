"""Whole-model latency and throughput: pyengine against onnxruntime in one
process, interleaved, at 1 and 2 threads, batch 1 and a larger batch.
Prints a Markdown table (medians; ratio = pyengine / onnxruntime, lower is
better).

    python benchmarks/models.py [--models mlp,lenet,...] [--threads 1,2] [--rounds 10]
"""
from __future__ import annotations

import argparse
import glob
import os
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(__file__))
from common import fmt_time, interleaved, machine, median, table  # noqa: E402
from model_builders import BUILT  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
BATCH = {"mlp": 64, "lenet": 64, "resnet18": 8, "mobilenetv2": 8}


def collect(names):
    """name -> (ModelProto, per-sample input shape or None for fixed-shape models, batch)."""
    found = {}
    for name, fn in BUILT.items():
        model, sample = fn()
        found[name] = (model, sample, BATCH[name])
    for path in sorted(glob.glob(os.path.join(ROOT, "models", "*.onnx"))):
        name = os.path.basename(path)[:-5]
        model = onnx.load(path)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        found[name] = (model, tuple(d.dim_value for d in dims[1:]), 64)
    for path in sorted(glob.glob(os.path.join(LIGHT, "light_*.onnx"))):
        found[os.path.basename(path)[6:-5]] = (onnx.load(path), None, 1)
    if names:
        missing = [n for n in names if n not in found]
        if missing:
            raise SystemExit(f"unknown model(s) {missing}; available: {sorted(found)}")
        found = {n: found[n] for n in names}
    return found


def feeds_for(model, sample, batch, rng):
    vi = model.graph.input[0]
    if sample is None:
        shape = tuple(d.dim_value or 1 for d in vi.type.tensor_type.shape.dim)
    else:
        shape = (batch,) + tuple(sample)
    return {vi.name: rng.standard_normal(shape).astype(np.float32)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="", help="comma-separated subset")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--check", action="store_true", help="also report the max abs difference of the outputs")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    import pyengine
    rng = np.random.default_rng(0)
    rows = []
    for name, (model, sample, big) in collect([m for m in args.models.split(",") if m]).items():
        data = model.SerializeToString()
        for threads in [int(t) for t in args.threads.split(",")]:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            theirs = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
            po = pyengine.SessionOptions()
            po.intra_op_num_threads = threads
            try:
                ours = pyengine.InferenceSession(data, po)
            except pyengine.UnsupportedOperatorError as e:
                rows.append([name, threads, "-", "unsupported", "", "", str(e).split(":")[1][:60]])
                break
            for batch in sorted({1, big}) if sample is not None else [1]:
                feeds = feeds_for(model, sample, batch, rng)
                diff = ""
                if args.check:
                    diff = f"{np.max(np.abs(ours.run(None, feeds)[0] - theirs.run(None, feeds)[0])):.1e}"
                s = interleaved({"ours": lambda: ours.run(None, feeds), "ort": lambda: theirs.run(None, feeds)},
                                rounds=args.rounds, min_time=0.05)
                a, b = median(s["ours"]), median(s["ort"])
                rows.append([name, threads, batch, fmt_time(a), fmt_time(b), f"{a / b:.2f}x",
                             f"{batch / a:.1f}/s" + (f" (diff {diff})" if diff else "")])
                print(f"  {name} t={threads} b={batch}: {a / b:.2f}x", file=sys.stderr)
    print(f"Machine: {machine()}; pyengine {pyengine.__version__} (ISA {pyengine.current_isa()}), "
          f"onnxruntime {ort.__version__}; median of {args.rounds} interleaved rounds\n")
    print(table(["model", "threads", "batch", "pyengine", "onnxruntime", "ratio", "pyengine throughput"], rows))


if __name__ == "__main__":
    main()
