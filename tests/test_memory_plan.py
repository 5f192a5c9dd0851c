"""The static memory planner: tensors alive at the same time never share
bytes, and a chain reuses memory."""
import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import make_model
from pyengine.runtime import memory


@pytest.mark.parametrize("seed", range(20))
def test_random_lifetimes_never_overlap(seed):
    rng = np.random.default_rng(seed)
    bufs = []
    for i in range(int(rng.integers(1, 60))):
        first = int(rng.integers(0, 50))
        bufs.append(memory.Buffer(f"t{i}", int(rng.integers(0, 5000)), first, first + int(rng.integers(0, 10))))
    total = memory.plan_offsets(bufs)
    memory.check_no_overlap(bufs)
    assert all(b.offset % memory.ALIGN == 0 for b in bufs)
    assert total <= sum(memory.align(max(b.nbytes, 1)) for b in bufs)
    peak = max(sum(memory.align(max(b.nbytes, 1)) for b in bufs if b.first <= t <= b.last) for t in range(61))
    assert total >= peak


def test_chain_reuses_buffers():
    """Ten Relu steps over a 1 MiB tensor need two buffers, not nine."""
    x = np.zeros((256, 1024), np.float32)
    nodes = [helper.make_node("Relu", [f"t{i}" if i else "x"], [f"t{i + 1}" if i < 9 else "y"]) for i in range(10)]
    sess = pyengine.InferenceSession(make_model(nodes, {"x": x}, ["y"]).SerializeToString())
    (plan,) = sess._plans.values()
    assert plan.num_steps == 10
    assert plan.arena_bytes == 2 * x.nbytes
    np.testing.assert_array_equal(sess.run(None, {"x": x - 1})[0], np.zeros_like(x))
