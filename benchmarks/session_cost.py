"""Session creation time and peak memory, pyengine against onnxruntime.

Each measurement runs in a fresh process (so peak RSS belongs to one engine
and one model; the two engines' processes alternate), after one discarded
warm-up process per engine and model (the model file is in the page cache
and Python's bytecode cache is written for both engines, as in an installed
package; PYTHONDONTWRITEBYTECODE is dropped for the children). NumPy is
imported first in every child. Medians over --repeat.

Time (ms):
- import: `import pyengine` / `import onnxruntime`.
- create: the InferenceSession(...) call, import excluded for both engines.
  pyengine initializes onnx's operator schemas (the checker and shape
  inference need them) and its own operator tables lazily, at the first
  session of the process; onnxruntime does the equivalent work in its
  import. So create also counts per-process one-time work for pyengine only.
- 2nd create: a second InferenceSession of the same model in the same
  process: the per-model cost alone.
- ready: create plus the first run() (pyengine compiles the plan of a
  dynamic-shaped input at its first run, onnxruntime at creation).
- cold: import + create + first run, the same accounting for both engines
  wherever each puts its one-time work.

Peak memory (MB):
- peak RSS: the process's peak resident memory (VmHWM) after creating the
  session and running it once, minus VmHWM right after the engine's import.
- cold peak: the same peak minus VmHWM before the engine's import (so the
  engine's own import and one-time initialization count for both).

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
pre = peak_kb()
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
rss = peak_kb()
t3 = time.perf_counter(); make(); t4 = time.perf_counter()
print(json.dumps({"import_s": t_import, "create_s": t1 - t0, "create2_s": t4 - t3, "ready_s": t2 - t0,
                  "cold_s": t_import + t2 - t0, "peak_kb": rss - base, "cold_peak_kb": rss - pre}))
"""


def measure(path, repeat):
    """Medians per engine; the engines' processes alternate, so a change in
    the machine's load hits both alike."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["OMP_NUM_THREADS"] = "1"

    def child(engine):
        return json.loads(subprocess.run([sys.executable, "-c", CHILD, engine, path, "run"], capture_output=True,
                                         text=True, check=True, env=env).stdout)

    engines = ("pyengine", "onnxruntime")
    for engine in engines:
        child(engine)  # warm-up: page cache, bytecode cache
    runs = {e: [] for e in engines}
    for _ in range(repeat):
        for engine in engines:
            runs[engine].append(child(engine))
    return [{k: statistics.median(r[k] for r in runs[e]) for k in runs[e][0]} for e in engines]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mlp,lenet,resnet18,mobilenetv2,digits_cnn,resnet50")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    import numpy as np
    times, mems = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, make_feeds, _) in collect(args.models.split(",")).items():
            path = os.path.join(tmp, name + ".onnx")
            onnx.save(model, path)
            np.savez(path + ".npz", **make_feeds(model, 1, np.random.default_rng(0)))
            p, o = measure(path, args.repeat)
            times.append([name] + [_cell(p[k] * 1e3, o[k] * 1e3, "ms") for k in TIME_KEYS])
            mems.append([name] + [_cell(p[k] / 1024, o[k] / 1024, "MB") for k in MEM_KEYS])
            print(f"  {name}: done", file=sys.stderr)
    print(f"Machine: {machine()}; 1 thread, fresh process per measurement, median of {args.repeat}")
    print("Cells: pyengine / onnxruntime (ratio); the module docstring says what each column measures.\n")
    print(table(["model", "import", "create", "2nd create", "ready (create + 1st run)",
                 "cold (import + create + run)"], times))
    print()
    print(table(["model", "peak RSS (after import)", "cold peak RSS (import included)"], mems))


TIME_KEYS = ("import_s", "create_s", "create2_s", "ready_s", "cold_s")
MEM_KEYS = ("peak_kb", "cold_peak_kb")


def _cell(a: float, b: float, unit: str) -> str:
    return f"{a:.1f} / {b:.1f} {unit} ({a / max(b, 1e-9):.2f}x)"


if __name__ == "__main__":
    main()
