"""Long fuzz run over mutated models (see pyengine/testing/fuzz.py); prints
the outcome counts and any crash. Results go into RELIABILITY.md.

    python benchmarks/fuzz.py [--cases 50000] [--seed 0]
"""
import argparse
import json

from pyengine.testing.fuzz import run_cases

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=50000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(run_cases(args.cases, seed=args.seed, timeout=3600), indent=1))
