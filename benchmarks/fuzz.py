"""Long fuzz run over mutated models and hostile inputs (see
pyengine/testing/fuzz.py); prints the outcome counts, any crash and any
unexpected exception type. Results go into RELIABILITY.md.

    python benchmarks/fuzz.py [--cases 50000] [--seed 0]

Exits non-zero when a case crashed, hung or ended in an unexpected exception.
"""
import argparse
import json
import os
import sys
import time

import glob

# A checkout with an in-place build (scripts/dev_build.sh) is used before an installed pyengine.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(_ROOT, "pyengine", "_engine*.so")):
    sys.path.insert(0, _ROOT)
import pyengine  # noqa: E402

from pyengine.testing.fuzz import run_cases  # noqa: E402

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--case-timeout", type=float, default=60.0, help="seconds before one case counts as hung")
    args = ap.parse_args()
    t0 = time.time()
    report = run_cases(args.cases, seed=args.seed, timeout=3600, case_timeout=args.case_timeout)
    report["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(report, indent=1))
    sys.exit(1 if report["crashes"] or report["unexpected"] else 0)
