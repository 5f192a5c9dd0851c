"""Session creation time and peak memory, pyengine against onnxruntime.

Each measurement runs in a fresh process (so peak RSS belongs to one engine
and one model), after one discarded warm-up process per engine and model
(the model file is in the page cache and Python's bytecode cache is written
for both engines, as in an installed package; PYTHONDONTWRITEBYTECODE is
dropped for the children). Medians over --repeat. Columns:

- import: `import pyengine` / `import onnxruntime` (after NumPy), not part of
  create. pyengine loads its operator tables and onnx's schemas lazily, at the
  first session, so they count in its create; onnxruntime does that work in
  its import.
- create: the InferenceSession(...) call.
- ready: create plus the first run() (pyengine compiles the plan for a
  dynamic-shaped input at the first run, onnxruntime at creation).
- peak RSS: the process's peak resident memory (VmHWM) after creating the
  session and running it once, minus VmHWM right after the import.

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
t_import = time.perf_counter()
if engine == "pyengine":
    import pyengine as rt
    opts = rt.SessionOptions(); opts.intra_op_num_threads = 1
    make = lambda: rt.InferenceSession(path, opts)
else:
    import onnxruntime as rt
    opts = rt.SessionOptions(); opts.intra_op_num_threads = 1
    make = lambda: rt.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
t_import = time.perf_counter() - t_import
base = peak_kb()
if mode == "import":
    print(json.dumps({"rss_kb": base})); sys.exit()
feeds = dict(np.load(path + ".npz"))
t0 = time.perf_counter(); sess = make(); t1 = time.perf_counter()
sess.run(None, feeds); t2 = time.perf_counter()
print(json.dumps({"import_s": t_import, "create_s": t1 - t0, "ready_s": t2 - t0, "rss_kb": peak_kb(),
                  "base_kb": base}))
"""


def measure(engine, path, repeat):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["OMP_NUM_THREADS"] = "1"

    def child():
        return json.loads(subprocess.run([sys.executable, "-c", CHILD, engine, path, "run"], capture_output=True,
                                         text=True, check=True, env=env).stdout)

    child()  # warm-up: page cache, bytecode cache
    runs = [child() for _ in range(repeat)]
    out = {k: statistics.median(r[k] for r in runs) for k in ("import_s", "create_s", "ready_s")}
    out["peak_mb"] = statistics.median(r["rss_kb"] - r["base_kb"] for r in runs) / 1024
    return out


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
            p, o = measure("pyengine", path, args.repeat), measure("onnxruntime", path, args.repeat)
            row = [name]
            for key in ("import_s", "create_s", "ready_s"):
                row += [f"{p[key] * 1e3:.1f} / {o[key] * 1e3:.1f} ms", f"{p[key] / o[key]:.2f}x"]
            row += [f"{p['peak_mb']:.1f} / {o['peak_mb']:.1f} MB", f"{p['peak_mb'] / max(o['peak_mb'], 1e-9):.2f}x"]
            rows.append(row)
            print(f"  {name}: done", file=sys.stderr)
    print(f"Machine: {machine()}; 1 thread, fresh process per measurement, median of {args.repeat}\n")
    print("pyengine / onnxruntime in each cell; see the module docstring for what each column measures\n")
    print(table(["model", "import", "ratio", "create", "ratio", "ready (create + 1st run)", "ratio",
                 "peak RSS", "ratio"], rows))


if __name__ == "__main__":
    main()
