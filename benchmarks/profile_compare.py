"""Where a model's time goes, per operator type, in pyengine and in
onnxruntime: both engines' own per-node profiles (SessionOptions.
enable_profiling) over the same runs of a whole model. Unlike one-node
benchmarks (benchmarks/conv.py) this sees each engine's layout choices:
onnxruntime runs convolutions in its blocked NCHWc layout inside a model,
paying the reorders once instead of around every layer.

    PYTHONPATH=. python benchmarks/profile_compare.py resnet50 [--threads 1] [--runs 10] [--op Conv]

--op lists that operator's nodes in run order beside onnxruntime's (the
k-th node of that type in each engine's run order; fusions differ, so check
the shapes when the counts differ).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from common import table  # noqa: E402
from models import collect  # noqa: E402


def _profile(make_session, feeds, warmup, runs, prefix):
    sess = make_session(prefix)
    for _ in range(warmup):
        sess.run(None, feeds)
    for _ in range(runs):
        sess.run(None, feeds)
    from pyengine.runtime import profiling
    return profiling.drop_first_runs(profiling.load(sess.end_profiling()), warmup)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a model name of benchmarks/models.py")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--op", help="list this operator's nodes in run order")
    args = ap.parse_args(argv)
    import onnxruntime as ort

    import pyengine
    from pyengine.runtime import profiling
    model, make_feeds, _ = collect([args.model])[args.model]
    feeds = make_feeds(model, 1, np.random.default_rng(0)) if callable(make_feeds) else make_feeds
    data = model.SerializeToString()
    tmp = tempfile.mkdtemp(prefix="pyengine_profile_")

    def ours(prefix):
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.enable_profiling = True
        so.profile_file_prefix = prefix
        return pyengine.InferenceSession(data, so)

    def theirs(prefix):
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.enable_profiling = True
        so.profile_file_prefix = prefix
        so.log_severity_level = 3
        return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])

    ev = {"pyengine": _profile(ours, feeds, args.warmup, args.runs, os.path.join(tmp, "pe")),
          "onnxruntime": _profile(theirs, feeds, args.warmup, args.runs, os.path.join(tmp, "ort"))}
    sums = {k: profiling.summarize(v) for k, v in ev.items()}
    per_run = {k: {op: (us / s["runs"], n // s["runs"]) for op, us, n in s["ops"]} for k, s in sums.items()}
    ops = sorted(set(per_run["pyengine"]) | set(per_run["onnxruntime"]),
                 key=lambda o: -max(per_run["pyengine"].get(o, (0, 0))[0], per_run["onnxruntime"].get(o, (0, 0))[0]))
    rows = []
    for op in ops:
        a, na = per_run["pyengine"].get(op, (0.0, 0))
        b, nb = per_run["onnxruntime"].get(op, (0.0, 0))
        rows.append([op, na, f"{a / 1000:.3f}", nb, f"{b / 1000:.3f}", f"{a / b:.2f}x" if a and b else "-"])
    run_ms = {k: s["run_us"] / max(s["runs"], 1) / 1000 for k, s in sums.items()}
    rows.append(["(whole run)", "", f"{run_ms['pyengine']:.3f}", "", f"{run_ms['onnxruntime']:.3f}",
                 f"{run_ms['pyengine'] / run_ms['onnxruntime']:.2f}x"])
    print(f"{args.model}, {args.threads} thread(s), ms per run (median-free: mean of {args.runs} runs)")
    print(table(["op", "nodes", "pyengine ms", "ort nodes", "ort ms", "ratio"], rows))
    if args.op:
        seqs = {}
        for k, events in ev.items():
            nodes = [e for e in events if e.get("cat") == "Node" and e["args"].get("op_name") == args.op]
            n = len(nodes) // args.runs
            tot = [0.0] * n
            for i, e in enumerate(nodes[:n * args.runs]):
                tot[i % n] += e["dur"] / args.runs
            seqs[k] = (tot, [e["name"].removesuffix("_kernel_time") for e in nodes[:n]])
        (a, an), (b, bn) = seqs["pyengine"], seqs["onnxruntime"]
        rows = [[i, an[i][:24], f"{a[i]:.1f}", bn[i][:24] if i < len(b) else "", f"{b[i]:.1f}" if i < len(b) else "",
                 f"{a[i] / b[i]:.2f}x" if i < len(b) and b[i] else "-"] for i in range(len(a))]
        print(table(["#", "node", "pyengine us", "ort node", "ort us", "ratio"], rows))


if __name__ == "__main__":
    main()
