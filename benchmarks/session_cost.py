"""Session creation time and peak memory, pyengine against onnxruntime.

Each measurement runs in a fresh process (so peak RSS belongs to one engine
and one model): load the model, create the session, run it once, report the
creation time and the process's peak resident memory (VmHWM), minus the
peak of a process that only imported the engine. Medians over --repeat.

    python benchmarks/session_cost.py [--models resnet18,mobilenetv2,...] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import onnx

sys.path.insert(0, os.path.dirname(__file__))
from common import machine, table  # noqa: E402
from models import collect  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np

def peak_kb():
    # VmHWM belongs to this process image (ru_maxrss would include the parent's peak, inherited over fork)
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM")).split()[1])

engine, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
if engine == "pyengine":
    import pyengine as rt
    opts = rt.SessionOptions(); opts.intra_op_num_threads = 1
    make = lambda: rt.InferenceSession(path, opts)
else:
    import onnxruntime as rt
    opts = rt.SessionOptions(); opts.intra_op_num_threads = 1
    make = lambda: rt.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
base = peak_kb()
if mode == "import":
    print(json.dumps({"rss_kb": base})); sys.exit()
feeds = dict(np.load(path + ".npz"))
t0 = time.perf_counter(); sess = make(); t1 = time.perf_counter()
sess.run(None, feeds)
print(json.dumps({"create_s": t1 - t0, "rss_kb": peak_kb(), "base_kb": base}))
"""


def measure(engine, path, repeat):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD, engine, path, "run"], capture_output=True,
                                      text=True, check=True, env=env).stdout) for _ in range(repeat)]
    create = statistics.median(r["create_s"] for r in runs)
    peak_mb = statistics.median(r["rss_kb"] - r["base_kb"] for r in runs) / 1024
    return create, peak_mb


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mlp,lenet,resnet18,mobilenetv2,digits_cnn,resnet50")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    import numpy as np
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, make_feeds, _) in collect(args.models.split(",")).items():
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(model, path)
            np.savez(path + ".npz", **make_feeds(model, 1, np.random.default_rng(0)))
            (pc, pm), (oc, om) = measure("pyengine", path, args.repeat), measure("onnxruntime", path, args.repeat)
            rows.append([name, f"{pc * 1e3:.1f} ms", f"{oc * 1e3:.1f} ms", f"{pc / oc:.2f}x",
                         f"{pm:.1f} MB", f"{om:.1f} MB", f"{pm / max(om, 1e-9):.2f}x"])
            print(f"  {name}: done", file=sys.stderr)
    print(f"Machine: {machine()}; 1 thread, fresh process per measurement, median of {args.repeat}\n")
    print(table(["model", "pyengine create", "onnxruntime create", "ratio", "pyengine peak RSS",
                 "onnxruntime peak RSS", "ratio"], rows))


if __name__ == "__main__":
    main()
