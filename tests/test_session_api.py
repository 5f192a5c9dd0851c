"""The onnxruntime-compatible API: loading, metadata, run(), input checking,
outputs owned by the caller, dynamic shapes, threads."""
from __future__ import annotations

import os
import threading

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import pyengine
from oracle import make_model


def mlp_model(batch="N", din=8, dh=16, dout=4, seed=0):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((din, dh)).astype(np.float32)
    b1 = rng.standard_normal(dh).astype(np.float32)
    w2 = rng.standard_normal((dh, dout)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    x = np.zeros((1, din), np.float32)
    return make_model(nodes, {"x": x}, ["y"], {"w1": w1, "b1": b1, "w2": w2}, input_shapes={"x": [batch, din]})


def reference_mlp(model, x):
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return np.maximum(x @ inits["w1"] + inits["b1"], 0) @ inits["w2"]


def test_metadata_matches_onnxruntime():
    import onnxruntime as ort
    data = mlp_model().SerializeToString()
    ours, theirs = pyengine.InferenceSession(data), ort.InferenceSession(data)
    for a, b in zip(ours.get_inputs() + ours.get_outputs(), theirs.get_inputs() + theirs.get_outputs()):
        assert (a.name, a.shape, a.type) == (b.name, b.shape, b.type)
    assert ours.get_providers() == ["CPUExecutionProvider"]
    assert "CPUExecutionProvider" in pyengine.get_available_providers()
    assert isinstance(pyengine.__version__, str) and pyengine.__version__.count(".") == 2


def test_drop_in_code_runs_unchanged(tmp_path):
    """The typical onnxruntime snippet, with `import pyengine as ort`."""
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), str(path))
    import pyengine as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    out = sess.run([sess.get_outputs()[0].name], {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(out[0], reference_mlp(mlp_model(), x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("source", ["path", "pathlike", "bytes", "proto"])
def test_load_sources(tmp_path, source):
    model = mlp_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    src = {"path": str(path), "pathlike": path, "bytes": model.SerializeToString(), "proto": model}[source]
    x = np.ones((2, 8), np.float32)
    np.testing.assert_allclose(pyengine.InferenceSession(src).run(None, {"x": x})[0], reference_mlp(model, x),
                               rtol=1e-5, atol=1e-5)


def test_external_data_next_to_model(tmp_path):
    model = mlp_model()
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").exists()
    x = np.ones((1, 8), np.float32)
    got = pyengine.InferenceSession(str(tmp_path / "ext.onnx")).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, reference_mlp(mlp_model(), x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/passwd", "link.bin"])
def test_external_data_outside_model_folder_is_refused(tmp_path, location):
    model = mlp_model()
    folder = tmp_path / "m"
    folder.mkdir()
    onnx.save(model, str(folder / "ext.onnx"), save_as_external_data=True, location="w.bin", size_threshold=0)
    (tmp_path / "outside.bin").write_bytes((folder / "w.bin").read_bytes())
    os.symlink(tmp_path / "outside.bin", folder / "link.bin")
    m = onnx.load(str(folder / "ext.onnx"), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    onnx.save(m, str(folder / "ext.onnx"))
    with pytest.raises(pyengine.InvalidModelError, match="outside the model's folder|not a relative path"):
        pyengine.InferenceSession(str(folder / "ext.onnx"))


def test_external_data_range_beyond_file_is_refused(tmp_path):
    onnx.save(mlp_model(), str(tmp_path / "ext.onnx"), save_as_external_data=True, location="w.bin",
              size_threshold=0)
    m = onnx.load(str(tmp_path / "ext.onnx"), load_external_data=False)
    for e in m.graph.initializer[0].external_data:
        if e.key == "offset":
            e.value = str(10**9)
    onnx.save(m, str(tmp_path / "ext.onnx"))
    with pytest.raises(pyengine.InvalidModelError, match="exceeds"):
        pyengine.InferenceSession(str(tmp_path / "ext.onnx"))


def test_bad_files(tmp_path):
    good = mlp_model().SerializeToString()
    with pytest.raises(FileNotFoundError):
        pyengine.InferenceSession(str(tmp_path / "missing.onnx"))
    for name, data in [("truncated", good[: len(good) // 2]), ("garbage", b"\x00\xffnot a model" * 10),
                       ("empty", b""), ("text", b"hello world, definitely not protobuf")]:
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(data)
        with pytest.raises(pyengine.InvalidModelError):
            pyengine.InferenceSession(str(path))
    with pytest.raises(pyengine.InvalidModelError):
        pyengine.InferenceSession(str(tmp_path))
    with pytest.raises(TypeError):
        pyengine.InferenceSession(12345)


def test_unsupported_ops_listed_together():
    x = np.zeros((2, 3), np.float32)
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Det", ["a"], ["b"], name="det1"),
             helper.make_node("Unique", ["x"], ["c"], name="uniq"),
             helper.make_node("Det", ["a"], ["d"], name="det2")]
    model = make_model(nodes, {"x": np.zeros((3, 3), np.float32)}, ["b", "c", "d"])
    with pytest.raises(pyengine.UnsupportedOperatorError) as info:
        pyengine.InferenceSession(model.SerializeToString())
    msg = str(info.value)
    for word in ("Det", "Unique", "det1", "det2", "uniq"):
        assert word in msg
    assert info.value.unsupported == {"Det": ["det1", "det2"], "Unique": ["uniq"]}
    del x


def test_input_errors_name_the_problem_and_leave_session_usable():
    sess = pyengine.InferenceSession(mlp_model().SerializeToString())
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match=r"missing input\(s\) \['x'\]"):
        sess.run(None, {})
    with pytest.raises(ValueError, match=r"unknown input name\(s\) \['y'\]"):
        sess.run(None, {"x": x, "y": x})
    with pytest.raises(TypeError, match=r"input 'x': expected element type tensor\(float\).*got float64"):
        sess.run(None, {"x": x.astype(np.float64)})
    with pytest.raises(ValueError, match=r"input 'x': expected rank 2.*got shape \[8\]"):
        sess.run(None, {"x": np.ones(8, np.float32)})
    with pytest.raises(ValueError, match=r"input 'x': dimension 1 must be 8.*got shape \[2, 7\]"):
        sess.run(None, {"x": np.ones((2, 7), np.float32)})
    with pytest.raises(ValueError, match="unknown output name 'nope'"):
        sess.run(["nope"], {"x": x})
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], reference_mlp(mlp_model(), x), rtol=1e-5, atol=1e-5)


def test_outputs_are_fresh_caller_owned_arrays():
    sess = pyengine.InferenceSession(mlp_model().SerializeToString())
    x = np.ones((2, 8), np.float32)
    a = sess.run(None, {"x": x})[0]
    b = sess.run(None, {"x": x * 2})[0]
    assert a.flags.owndata and a.flags.writeable and not np.shares_memory(a, b)
    np.testing.assert_allclose(a, reference_mlp(mlp_model(), x), rtol=1e-5, atol=1e-5)


def test_non_contiguous_and_list_inputs():
    sess = pyengine.InferenceSession(mlp_model().SerializeToString())
    big = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    x = big[:, ::2]
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], reference_mlp(mlp_model(), x), rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="input 'x'"):  # a list of Python floats is float64, as in onnxruntime
        sess.run(None, {"x": x.tolist()})


def test_dynamic_batch_plans_are_cached():
    model = mlp_model()
    sess = pyengine.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(3)
    for n in (1, 5, 1, 0, 17, 5):
        x = rng.standard_normal((n, 8)).astype(np.float32)
        y = sess.run(None, {"x": x})[0]
        assert y.shape == (n, 4)
        np.testing.assert_allclose(y, reference_mlp(model, x), rtol=1e-4, atol=1e-4)
    assert set(sess._plans) == {((1, 8),), ((5, 8),), ((0, 8),), ((17, 8),)}


def test_outputs_that_are_inputs_constants_or_repeated():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    c = np.full((2,), 7, np.float32)
    nodes = [helper.make_node("Identity", ["x"], ["same"]), helper.make_node("Relu", ["x"], ["r"])]
    model = make_model(nodes, {"x": x}, ["same", "r", "cst"], {"cst": c})
    model.graph.output.append(model.graph.output[1])  # 'r' listed twice
    sess = pyengine.InferenceSession(model.SerializeToString())
    same, r, cst, r2 = sess.run(None, {"x": x})
    np.testing.assert_array_equal(same, x)
    assert not np.shares_memory(same, x)
    np.testing.assert_array_equal(r, x)
    np.testing.assert_array_equal(r2, x)
    assert not np.shares_memory(r, r2)
    np.testing.assert_array_equal(cst, c)


def test_concurrent_runs_from_many_threads():
    model = mlp_model(din=64, dh=256, dout=32)
    so = pyengine.SessionOptions()
    so.intra_op_num_threads = 2
    sess = pyengine.InferenceSession(model.SerializeToString(), so)
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((int(rng.integers(1, 9)), 64)).astype(np.float32) for _ in range(32)]
    expected = [sess.run(None, {"x": x})[0] for x in xs]
    results = [None] * len(xs)
    errors = []

    def worker(k):
        try:
            for _ in range(5):
                for i in range(k, len(xs), 8):
                    out = sess.run(None, {"x": xs[i]})[0]
                    if results[i] is None:
                        results[i] = out
                    elif not np.array_equal(results[i], out):
                        errors.append(i)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for got, exp in zip(results, expected):
        np.testing.assert_array_equal(got, exp)


def test_optimization_level_switches_passes_off():
    model = mlp_model()
    full = pyengine.InferenceSession(model.SerializeToString())
    so = pyengine.SessionOptions()
    so.graph_optimization_level = pyengine.GraphOptimizationLevel.ORT_DISABLE_ALL
    raw = pyengine.InferenceSession(model.SerializeToString(), so)
    assert [n.op_type for n in raw._graph.nodes] == ["Gemm", "Relu", "MatMul"]
    assert [n.op_type for n in full._graph.nodes] == ["Gemm", "MatMul"]
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    np.testing.assert_allclose(raw.run(None, {"x": x})[0], full.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)


def test_isa_env_var_is_validated():
    import subprocess
    import sys
    from subproc import PACKAGE_PARENT, child_env
    r = subprocess.run([sys.executable, "-c", "import pyengine"], env=child_env({"PYENGINE_ISA": "sse9"}),
                       capture_output=True, text=True, cwd=PACKAGE_PARENT)
    assert r.returncode != 0 and "PYENGINE_ISA" in r.stderr
    r = subprocess.run([sys.executable, "-c", "import pyengine; print(pyengine.current_isa())"],
                       env=child_env({"PYENGINE_ISA": "scalar"}), capture_output=True, text=True, cwd=PACKAGE_PARENT)
    assert r.returncode == 0 and r.stdout.strip() == "scalar"


def test_output_view_of_reused_buffer_is_copied_before_reuse():
    """A graph output that is a view (here an Identity/Reshape of an
    intermediate) is copied after all steps; its buffer must stay live until then."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Identity", ["a"], ["out_a"]),
             helper.make_node("Add", ["a", "a"], ["b"]), helper.make_node("Add", ["b", "b"], ["c"]),
             helper.make_node("Add", ["c", "c"], ["d"]), helper.make_node("Add", ["d", "d"], ["y"])]
    model = make_model(nodes, {"x": x}, ["out_a", "y"])
    out_a, y = pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    np.testing.assert_array_equal(out_a, x)
    np.testing.assert_array_equal(y, 16 * x)


def test_scalar_constants_stay_0d():
    """0-d initializers keep rank 0 through import, folding and the plan."""
    x = np.array(2.0, np.float32)
    nodes = [helper.make_node("Add", ["x", "c"], ["y"]), helper.make_node("Mul", ["c", "c"], ["cc"]),
             helper.make_node("Add", ["y", "cc"], ["z"])]
    model = make_model(nodes, {"x": x}, ["z"], {"c": np.array(3.0, np.float32)})
    (z,) = pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    assert z.shape == () and z == 14.0
