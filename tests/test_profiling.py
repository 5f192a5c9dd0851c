"""SessionOptions.enable_profiling / InferenceSession.end_profiling(): one
event per node per run and one `model_run` per run, written as a Chrome
trace (as onnxruntime writes it), nothing recorded when profiling is off."""
from __future__ import annotations

import json
import os
import threading

import numpy as np
from onnx import helper

import pyengine
from oracle import make_model
from pyengine.runtime import profiling


def _model(rng):
    x = rng.standard_normal((2, 8)).astype(np.float32)
    inits = {"w": rng.standard_normal((8, 6)).astype(np.float32), "b": rng.standard_normal(6).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Tanh", ["a"], ["t"]), helper.make_node("Softmax", ["t"], ["y"], axis=-1)]
    model = make_model(nodes, {"x": x}, ["y"], inits)
    # a symbolic batch so that two input shapes give two compiled plans
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    return model, x


def _session(model, tmp_path, on=True):
    so = pyengine.SessionOptions()
    so.enable_profiling = on
    so.profile_file_prefix = str(tmp_path / "prof")
    return pyengine.InferenceSession(model.SerializeToString(), so)


def test_events_per_node_and_run(rng, tmp_path):
    model, x = _model(rng)
    sess = _session(model, tmp_path)
    ops = [n.op_type for n in sess._graph.nodes]
    assert sess.get_profiling_start_time_ns() > 0
    for _ in range(3):
        sess.run(None, {"x": x})
    sess.run(None, {"x": np.concatenate([x, x, x])})  # a second plan
    path = sess.end_profiling()
    assert os.path.dirname(path) == str(tmp_path) and os.path.basename(path).startswith("prof_")
    with open(path) as f:
        events = json.load(f)
    runs = [e for e in events if e["cat"] == "Session" and e["name"] == "model_run"]
    nodes = [e for e in events if e["cat"] == "Node"]
    assert len(runs) == 4
    assert len(nodes) == 4 * len(ops)
    assert sorted(e["args"]["op_name"] for e in nodes) == sorted(ops * 4)
    assert all(e["ph"] == "X" and e["dur"] >= 0 and e["ts"] >= 0 for e in events)
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    # every node event lies inside one run's span
    for e in nodes:
        assert any(r["ts"] - 1 <= e["ts"] and e["ts"] + e["dur"] <= r["ts"] + r["dur"] + 1 for r in runs), e
    summary = profiling.summarize(profiling.load(path))
    assert summary["runs"] == 4
    assert sorted(op for op, _, _ in summary["ops"]) == sorted(set(ops))
    assert all(calls == 4 for _, _, _, calls in summary["nodes"])
    assert sum(us for _, us, _ in summary["ops"]) <= summary["run_us"] + 1


def test_end_profiling_stops_recording(rng, tmp_path):
    model, x = _model(rng)
    sess = _session(model, tmp_path)
    sess.run(None, {"x": x})
    first = sess.end_profiling()
    sess.run(None, {"x": x})
    assert sess.end_profiling() == ""
    assert sess.get_profiling_start_time_ns() == 0
    assert len([e for e in profiling.load(first) if e["cat"] == "Session"]) == 1
    assert all(not c.plan.take_profile() for c in sess._plans.values())


def test_off_by_default(rng, tmp_path):
    model, x = _model(rng)
    sess = _session(model, tmp_path, on=False)
    sess.run(None, {"x": x})
    assert sess.end_profiling() == ""
    assert all(not c.plan.take_profile() for c in sess._plans.values())
    assert not os.listdir(tmp_path)


def test_concurrent_runs_all_recorded(rng, tmp_path):
    model, x = _model(rng)
    sess = _session(model, tmp_path)
    n_nodes = len(sess._graph.nodes)

    def work():
        for _ in range(20):
            sess.run(None, {"x": x})

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = profiling.load(sess.end_profiling())
    assert len([e for e in events if e["cat"] == "Node"]) == 60 * n_nodes
    assert len([e for e in events if e["cat"] == "Session"]) == 60


def test_summarize_adds_up():
    ev = [{"cat": "Session", "name": "model_run", "dur": 10.0, "ts": 0},
          {"cat": "Node", "name": "a_kernel_time", "dur": 4.0, "ts": 0, "args": {"op_name": "Conv"}},
          {"cat": "Node", "name": "b_kernel_time", "dur": 5.0, "ts": 4, "args": {"op_name": "Conv"}},
          {"cat": "Node", "name": "a_kernel_time", "dur": 2.0, "ts": 12, "args": {"op_name": "Conv"}},
          {"cat": "Node", "name": "c_kernel_time", "dur": 1.0, "ts": 14, "args": {"op_name": "Relu"}}]
    s = profiling.summarize(ev)
    assert s["runs"] == 1 and s["run_us"] == 10.0
    assert s["ops"] == [("Conv", 11.0, 3), ("Relu", 1.0, 1)]
    assert s["nodes"][0] == ("a", "Conv", 6.0, 2)


def test_drop_first_runs():
    ev = [{"cat": "Session", "name": "model_run", "dur": 5.0, "ts": t} for t in (0, 10, 20)]
    ev += [{"cat": "Node", "name": "a_kernel_time", "dur": 1.0, "ts": t + 1, "args": {"op_name": "Relu"}}
           for t in (0, 10, 20)]
    kept = profiling.drop_first_runs(ev, 2)
    assert [e["ts"] for e in kept] == [20, 21]
    assert len(profiling.drop_first_runs(ev, 0)) == 6
    assert len(profiling.drop_first_runs(ev, 3)) == 6  # not that many runs: everything
