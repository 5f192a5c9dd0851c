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
from model_builders import BUILT, SEQUENCE  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
BATCH = {"mlp": 64, "lenet": 64, "resnet18": 8, "mobilenetv2": 8, "lstm": 16, "gru": 16,
         "transformer_encoder": 8, "bert": 8}
# Built here in preference to the zoo's light models (fixed batch, repeated weights).
LAZY = {**BUILT, **SEQUENCE}


def _float_feeds(sample):
    def make(model, batch, rng):
        inits = {t.name for t in model.graph.initializer}
        vi = next(v for v in model.graph.input if v.name not in inits)
        if sample is None:  # fixed-shape model
            shape = tuple(d.dim_value or 1 for d in vi.type.tensor_type.shape.dim)
        else:
            shape = (batch,) + tuple(sample)
        return {vi.name: rng.standard_normal(shape).astype(np.float32)}
    return make


def _sequence_feeds(name):
    def make(model, batch, rng):
        if name in ("lstm", "gru"):  # (T, N, F): the batch is axis 1
            return {"x": rng.standard_normal((64, batch, 128)).astype(np.float32)}
        if name == "bert":
            mask = np.ones((batch, 128), np.int64)
            mask[:, 96:] = 0  # padded tail
            return {"x": rng.integers(0, 8000, (batch, 128)).astype(np.int64), "mask": mask}
        return {"x": rng.standard_normal((batch, 128, 256)).astype(np.float32)}
    return make


def collect(names):
    """name -> (ModelProto, feeds(model, batch, rng), larger batch or None when the batch is fixed)."""
    wanted = [n for n in names if n]
    found = {}
    for name, fn in LAZY.items():
        if wanted and name not in wanted:
            continue
        model, sample = fn()
        feeds = _sequence_feeds(name) if name in SEQUENCE else _float_feeds(sample)
        found[name] = (model, feeds, BATCH[name])
    for path in sorted(glob.glob(os.path.join(ROOT, "models", "*.onnx"))):
        name = os.path.basename(path)[:-5]
        if wanted and name not in wanted:
            continue
        model = onnx.load(path)
        dims = model.graph.input[0].type.tensor_type.shape.dim
        found[name] = (model, _float_feeds(tuple(d.dim_value for d in dims[1:])), 64)
    for path in sorted(glob.glob(os.path.join(LIGHT, "light_*.onnx"))):
        name = os.path.basename(path)[6:-5]
        if wanted and name not in wanted:
            continue
        found[name] = (onnx.load(path), _float_feeds(None), None)
    missing = [n for n in wanted if n not in found]
    if missing:
        raise SystemExit(f"unknown model(s) {missing}; available: {sorted(LAZY)} + models/ + light zoo")
    return {n: found[n] for n in (wanted or found)}


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
    for name, (model, make_feeds, big) in collect(args.models.split(",")).items():
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
                rows.append([name, threads, "-", "unsupported", "", "", str(e)[:60]])
                break
            for batch in sorted({1, big}) if big else [1]:
                feeds = make_feeds(model, batch, rng)
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
