"""Shared fixtures: every kernel test runs once per instruction set the CPU
has (PYENGINE's dispatch is switched with pyengine.set_isa), and results are
compared with onnxruntime, the oracle."""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import pyengine

ALL_ISAS = ["scalar", "avx2", "avx512"]


@pytest.fixture(params=ALL_ISAS)
def isa(request):
    """Runs the test with the kernels of one ISA; skips ISAs this CPU lacks."""
    name = request.param
    if name not in pyengine.available_isas():
        pytest.skip(f"ISA {name} not available on this CPU/build")
    pyengine.set_isa(name)
    yield name
    pyengine.set_isa("auto")


@pytest.fixture
def rng(request):
    # A seed per test, stable across runs: failures reproduce.
    # (crc32, not hash(): str hashes are randomized per process.)
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


def pytest_terminal_summary(terminalreporter):
    """Prints how many ONNX backend node tests passed, failed and were skipped."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for outcome in counts:
        for rep in terminalreporter.stats.get(outcome, []):
            if "test_onnx_node.py::test_node" in getattr(rep, "nodeid", ""):
                counts[outcome] += 1
    if sum(counts.values()):
        terminalreporter.write_line(
            f"ONNX backend node tests: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped (unsupported operators)")
