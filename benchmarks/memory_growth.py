"""Resident memory over many runs (issue 7): 10,000 runs of one model at a
fixed shape, then 1,000 runs with changing batch sizes (more distinct shapes
than the 32 plans a session caches, so plans are compiled and evicted all
along). Prints RSS (from /proc/self/statm) after warm-up, at the end, the
peak and the growth; results go into RELIABILITY.md.

    python benchmarks/memory_growth.py [--runs 10000] [--batch-runs 1000] [--threads 2]
"""
import argparse
import json
import os
import sys

import glob

# A checkout with an in-place build (scripts/dev_build.sh) is used before an installed pyengine.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(_ROOT, "pyengine", "_engine*.so")):
    sys.path.insert(0, _ROOT)
import pyengine  # noqa: E402

import numpy as np

from pyengine.testing.memory import cnn_model, growth, rss_bytes

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--batch-runs", type=int, default=1000)
    ap.add_argument("--distinct-batches", type=int, default=48, help="> 32 forces plan eviction")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    opts = pyengine.SessionOptions()
    opts.intra_op_num_threads = args.threads
    rng = np.random.default_rng(0)
    report = {"rss_at_start_mib": rss_bytes() / 2**20}
    sess = pyengine.InferenceSession(cnn_model().SerializeToString(), opts)
    x = rng.standard_normal((4, 3, 16, 16)).astype(np.float32)
    report["fixed_shape"] = growth(sess, lambda i: {"x": x}, runs=args.runs, warmup=200)

    sess = pyengine.InferenceSession(cnn_model().SerializeToString(), opts)
    xs = [rng.standard_normal((b, 3, 16, 16)).astype(np.float32) for b in range(1, args.distinct_batches + 1)]
    feeds = lambda i: {"x": xs[i % len(xs)]}  # noqa: E731
    report["changing_batch"] = growth(sess, feeds, runs=args.batch_runs, warmup=2 * len(xs))
    report["changing_batch"]["distinct_batch_sizes"] = len(xs)
    report["changing_batch"]["plans_cached_at_end"] = len(sess._plans)

    # Sessions created and dropped: everything they own must be returned.
    def churn(n):
        for _ in range(n):
            s = pyengine.InferenceSession(cnn_model().SerializeToString(), opts)
            s.run(None, {"x": x})
    churn(20)
    before = rss_bytes()
    churn(200)
    report["session_churn"] = {"sessions": 200, "growth_mib": (rss_bytes() - before) / 2**20}
    print(json.dumps(report, indent=1))
