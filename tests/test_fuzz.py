"""Hostile models and inputs: thousands of mutants of valid models (protobuf
bytes and structure: wrong attribute types and values, missing inputs, bad,
negative, huge and overflowing dims, cycles, duplicate names, short or
reshaped initializers, unknown types, other opsets, huge ConstantOfShape /
Expand / Range) and valid models run with hostile inputs (NaN/inf, empty
dims, batches beyond the memory limit, out-of-range indices, wrong types)
each end in results or a Python exception with a message - never a crash, a
hang, an out-of-memory kill or an unexpected exception type.
The long run is `python benchmarks/fuzz.py` (see RELIABILITY.md)."""
from pyengine.testing.fuzz import run_cases


def test_mutated_models_and_hostile_inputs_never_crash():
    report = run_cases(3000, seed=1, timeout=300)
    assert report["crashes"] == [], report["crashes"]
    assert report["unexpected"] == [], report["unexpected"]
    assert not [k for k in report["outcomes"] if k.endswith("EMPTY_MESSAGE")], report["outcomes"]
    assert sum(report["outcomes"].values()) == 3000
    assert report["outcomes"].get("ok", 0) > 100  # many mutants stay valid and really run
    assert report["outcomes"].get("ResourceLimitError", 0) > 0  # huge tensors are refused, not allocated
