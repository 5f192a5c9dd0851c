"""Hostile models: thousands of mutants of valid models (protobuf bytes and
structure: wrong attribute types, missing inputs, bad dims, cycles, duplicate
names, short initializers, unknown types...) each end in results or a Python
exception with a message - never a crash, a hang or an out-of-memory kill.
The long run is `python -m pyengine.testing.fuzz N` (see RELIABILITY.md)."""
from pyengine.testing.fuzz import run_cases


def test_mutated_models_never_crash():
    report = run_cases(3000, seed=1, timeout=300)
    assert report["crashes"] == [], report["crashes"]
    assert not [k for k in report["outcomes"] if k.endswith("EMPTY_MESSAGE")], report["outcomes"]
    assert sum(report["outcomes"].values()) == 3000
    assert report["outcomes"].get("ok", 0) > 0  # some mutants stay valid and really run
