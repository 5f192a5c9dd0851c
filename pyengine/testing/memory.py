"""Resident-memory measurements for the leak checks (tests/test_reliability.py
and benchmarks/memory_growth.py): a model run many times, or with changing
batch sizes (which creates and evicts shape-specialized plans), must not
grow the process."""
from __future__ import annotations

import gc
import os

import numpy as np
from onnx import TensorProto, helper, numpy_helper

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process (second field of /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def cnn_model(channels: int = 8, size: int = 16, seed: int = 0):
    """Conv + Relu + MaxPool + Conv + GlobalAveragePool + Gemm on [N, 3, size, size]."""
    rng = np.random.default_rng(seed)
    f = lambda *s: (rng.standard_normal(s) * 0.3).astype(np.float32)  # noqa: E731
    c = channels
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("AveragePool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["fl"]),
             helper.make_node("Gemm", ["fl", "w3", "b3"], ["y"], transB=1)]
    inits = {"w1": f(c, 3, 3, 3), "b1": f(c), "w2": f(2 * c, c // 2, 3, 3), "b2": f(2 * c),
             "w3": f(10, 2 * c), "b3": f(10)}
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                           ["N", 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def growth(sess, feeds_for, runs: int, warmup: int) -> dict:
    """Runs `sess` `warmup` times, then `runs` times; `feeds_for(i)` gives run
    i's feeds. Returns RSS after warm-up, at the end, and the growth."""
    for i in range(warmup):
        sess.run(None, feeds_for(i))
    gc.collect()
    before = rss_bytes()
    peak = before
    for i in range(runs):
        sess.run(None, feeds_for(warmup + i))
        if i % 64 == 0:
            peak = max(peak, rss_bytes())
    gc.collect()
    after = rss_bytes()
    return {"runs": runs, "rss_before_mib": before / 2**20, "rss_after_mib": after / 2**20,
            "rss_peak_mib": max(peak, after) / 2**20, "growth_mib": (after - before) / 2**20}
