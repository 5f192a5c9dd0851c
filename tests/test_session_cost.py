"""Session memory: plans read the session's (aligned) constants in place
instead of holding a second copy, the ModelProto is not kept, and sessions
still specialize correctly for new input shapes afterwards."""
import gc
import os

import numpy as np
import onnx
import pytest
from onnx import helper

import pyengine
from oracle import make_model
from pyengine.graph.ir import ALIGN, BORROW_MIN_BYTES, aligned
from pyengine.onnx_import import loader
from pyengine.runtime import session as session_mod


def _mlp(rng, k=96, n=160, m=72):
    """x[batch, k] -> MatMul W1 -> Add b1 -> Relu -> MatMul W2 (W2 also a graph output)."""
    w1 = rng.standard_normal((k, n)).astype(np.float32)
    b1 = rng.standard_normal(n).astype(np.float32)
    w2 = rng.standard_normal((n, m)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])]
    x = rng.standard_normal((2, k)).astype(np.float32)
    model = make_model(nodes, {"x": x}, ["y"], {"w1": w1, "b1": b1, "w2": w2}, input_shapes={"x": ["batch", k]})
    return model, (w1, b1, w2)


def _reference(x, w1, b1, w2):
    return np.maximum(x @ w1 + b1, 0) @ w2


def test_plan_holds_one_copy_of_large_weights(rng):
    model, (w1, b1, w2) = _mlp(rng)
    sess = pyengine.InferenceSession(model.SerializeToString())
    x = rng.standard_normal((3, w1.shape[0])).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], _reference(x, w1, b1, w2), rtol=1e-4, atol=1e-4)
    (plan,) = sess._plans.values()
    held = plan.constant_bytes
    large = w1.nbytes + w2.nbytes
    # The large weights are read in place from the session's arrays, not copied into the plan ...
    assert held["borrowed"] >= large
    assert held["owned"] < BORROW_MIN_BYTES
    # ... so the plan holds no more constant data than the model has (no second copy).
    assert held["owned"] + held["borrowed"] <= w1.nbytes + b1.nbytes + w2.nbytes
    for name in ("w1", "w2"):
        assert sess._graph.constants[name].ctypes.data % ALIGN == 0


def test_new_batch_sizes_after_creation_and_eviction(rng, monkeypatch):
    """Plans for new shapes are built from the same constants after earlier
    plans were compiled and evicted; every shape gives the right result."""
    monkeypatch.setattr(session_mod, "_PLAN_CACHE_SIZE", 2)
    model, weights = _mlp(rng)
    sess = pyengine.InferenceSession(model.SerializeToString())
    for batch in (1, 5, 2, 7, 1, 5, 0, 3):
        x = rng.standard_normal((batch, weights[0].shape[0])).astype(np.float32)
        gc.collect()
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], _reference(x, *weights), rtol=1e-4, atol=1e-4)
    assert len(sess._plans) <= 2


def test_plan_keeps_borrowed_constants_alive(rng):
    """A compiled plan outlives its session: the arrays it borrows stay valid."""
    model, weights = _mlp(rng)
    sess = pyengine.InferenceSession(model.SerializeToString())
    x = rng.standard_normal((4, weights[0].shape[0])).astype(np.float32)
    expected = sess.run(None, {"x": x})[0]
    (plan,) = sess._plans.values()
    del sess
    gc.collect()
    junk = [np.full(w.shape, 7.0, np.float32) for w in weights for _ in range(3)]  # reuse freed memory, if any
    np.testing.assert_array_equal(plan.run([x])[0], expected)
    del junk


def test_folded_constants_are_aligned_and_borrowed(rng):
    """Weights the passes create (BatchNorm folded into Conv) are realigned, so the plan borrows them too."""
    c, k = 16, 24
    w = rng.standard_normal((k, c, 3, 3)).astype(np.float32)
    bn = [rng.uniform(0.5, 1.5, k).astype(np.float32), rng.standard_normal(k).astype(np.float32),
          rng.standard_normal(k).astype(np.float32), rng.uniform(0.5, 1.5, k).astype(np.float32)]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"])]
    x = rng.standard_normal((1, c, 9, 9)).astype(np.float32)
    model = make_model(nodes, {"x": x}, ["y"], dict(zip("wgbmv", [w] + bn)))
    sess = pyengine.InferenceSession(model.SerializeToString())
    assert "BatchNormalization" not in [n.op_type for n in sess._graph.nodes]
    from oracle import assert_matches_ort
    assert_matches_ort(model, {"x": x}, rtol=1e-4, atol=1e-4)
    (plan,) = sess._plans.values()
    assert plan.constant_bytes["borrowed"] >= w.nbytes
    assert plan.constant_bytes["owned"] < BORROW_MIN_BYTES


def test_model_proto_not_kept_and_source_untouched(rng):
    model, weights = _mlp(rng)
    model.producer_name = "cost-test"
    model.doc_string = "doc"
    helper.set_model_props(model, {"k": "v"})
    before = model.SerializeToString()
    sess = pyengine.InferenceSession(model)
    assert model.SerializeToString() == before
    assert not any(isinstance(v, onnx.ModelProto) for v in vars(sess).values())
    meta = sess.get_modelmeta()
    assert (meta.producer_name, meta.description, meta.custom_metadata_map) == ("cost-test", "doc", {"k": "v"})
    x = rng.standard_normal((2, weights[0].shape[0])).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], _reference(x, *weights), rtol=1e-4, atol=1e-4)


def test_skeleton_keeps_every_field_but_large_initializers(rng):
    model, _ = _mlp(rng)
    model.doc_string = "doc"
    helper.set_model_props(model, {"k": "v"})
    model.graph.doc_string = "graph doc"
    model.graph.value_info.append(helper.make_tensor_value_info("h", onnx.TensorProto.FLOAT, ["batch", 160]))
    small = onnx.numpy_helper.from_array(np.arange(4, dtype=np.int64), "small")
    model.graph.initializer.append(small)
    skeleton = loader._skeleton(model)
    assert skeleton is not model
    assert [t.name for t in skeleton.graph.initializer] == ["b1", "small"]  # b1: 640 bytes
    assert {"w1", "w2"} <= {vi.name for vi in skeleton.graph.input}
    expected = onnx.ModelProto()
    expected.CopyFrom(model)
    del expected.graph.initializer[:]
    expected.graph.initializer.extend(t for t in model.graph.initializer if t.name in ("b1", "small"))
    for t in model.graph.initializer:
        if t.name in ("w1", "w2"):
            expected.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    assert skeleton == expected


@pytest.mark.parametrize("shape,dtype", [((), np.float32), ((0, 5), np.float32), ((3,), np.int64),
                                         ((33, 65), np.float32), ((1025,), np.float16), ((7, 9, 31), np.int8)])
def test_aligned(shape, dtype, rng):
    a = np.asarray(rng.standard_normal(shape) * 50).astype(dtype)
    for src in (a, np.frombuffer(b"\0" + a.tobytes(), dtype=np.uint8)[1:].view(dtype).reshape(shape)):
        out = aligned(src)
        assert out.shape == a.shape and out.dtype == a.dtype
        np.testing.assert_array_equal(out, a)
        if a.nbytes >= BORROW_MIN_BYTES:
            assert out.ctypes.data % ALIGN == 0 and out.flags.c_contiguous
            if src.ctypes.data % ALIGN:
                assert not out.flags.writeable
        else:
            assert out is src
    if a.ndim == 2 and a.nbytes >= BORROW_MIN_BYTES:
        t = aligned(a.T)  # non-contiguous: a contiguous aligned copy
        assert t.flags.c_contiguous and t.ctypes.data % ALIGN == 0
        np.testing.assert_array_equal(t, a.T)


def test_external_initializers_are_read_straight_into_arrays(tmp_path, rng):
    """Large external initializers become NumPy arrays without passing through
    the ModelProto (one copy of the weights at load); small ones and
    attribute tensors still go through raw_data."""
    model, (w1, b1, w2) = _mlp(rng)
    big_c = rng.standard_normal((300, w2.shape[1])).astype(np.float32)  # a Constant node's tensor, large
    model.graph.node.extend([
        helper.make_node("Constant", [], ["k"], value=onnx.numpy_helper.from_array(big_c, "k")),
        helper.make_node("Slice", ["k", "s0", "s1"], ["ks"]),
        helper.make_node("Add", ["y", "ks"], ["z"])])
    model.graph.initializer.extend([onnx.numpy_helper.from_array(np.array([0], np.int64), "s0"),
                                    onnx.numpy_helper.from_array(np.array([1], np.int64), "s1")])
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("z", onnx.TensorProto.FLOAT, ["batch", 72]))
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
              size_threshold=0, convert_attribute=True)
    arrays = {}
    loaded = loader.load_model(str(path), arrays)
    assert set(arrays) == {"w1", "w2"}  # b1 (640 bytes) and the small ones are below the skeleton size
    for t in loaded.graph.initializer:
        assert t.data_location == onnx.TensorProto.DEFAULT and not t.external_data
        if t.name in arrays:
            assert not t.HasField("raw_data") and not t.float_data
    np.testing.assert_array_equal(arrays["w1"], w1)
    np.testing.assert_array_equal(arrays["w2"], w2)
    assert not arrays["w1"].flags.writeable
    x = rng.standard_normal((3, w1.shape[0])).astype(np.float32)
    expected = _reference(x, w1, b1, w2) + big_c[:1]
    sess = pyengine.InferenceSession(str(path))
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], expected, rtol=1e-4, atol=1e-4)
    (plan,) = sess._plans.values()
    # The MatMuls packed w1 and w2: the plan let go of them and so did the
    # session (test_packed_weights_released); a new shape reads them again.
    assert plan.constant_bytes["borrowed"] < w1.nbytes
    assert "w1" not in sess._graph.constants and "w2" not in sess._graph.constants
    x5 = rng.standard_normal((5, w1.shape[0])).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x5})[0], _reference(x5, w1, b1, w2) + big_c[:1],
                               rtol=1e-4, atol=1e-4)
    # Without a dict to receive them, the weights stay in the ModelProto (as before).
    plain = loader.load_model(str(path))
    assert {t.name for t in plain.graph.initializer if t.HasField("raw_data")} >= {"w1", "w2"}


def _saved_mlp(rng, tmp_path, **kw):
    model, weights = _mlp(rng, **kw)
    path = tmp_path / "mlp.onnx"
    onnx.save(model, str(path))
    return str(path), weights


def test_packed_weights_released(rng, tmp_path):
    """A session made from a file frees the weights its kernels packed once
    the plan is built (the arrays die: one copy of the weights, the packed
    one); plans for new shapes read them again from the file."""
    import weakref
    path, weights = _saved_mlp(rng, tmp_path)
    sess = pyengine.InferenceSession(path)
    alive = {n: weakref.ref(sess._graph.constants[n]) for n in ("w1", "w2")}
    x = rng.standard_normal((3, weights[0].shape[0])).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], _reference(x, *weights), rtol=1e-4, atol=1e-4)
    gc.collect()
    assert all(ref() is None for ref in alive.values())
    assert sess._plans[((3, weights[0].shape[0]),)].constant_bytes["borrowed"] < weights[0].nbytes
    for batch in (5, 3, 1):
        x = rng.standard_normal((batch, weights[0].shape[0])).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], _reference(x, *weights), rtol=1e-4, atol=1e-4)


def test_weights_kept_when_not_reloadable(rng):
    """From bytes there is no file to read them again: the weights stay."""
    model, weights = _mlp(rng)
    sess = pyengine.InferenceSession(model.SerializeToString())
    sess.run(None, {"x": rng.standard_normal((2, weights[0].shape[0])).astype(np.float32)})
    assert {"w1", "w2"} <= set(sess._graph.constants)


@pytest.mark.parametrize("change", ["deleted", "rewritten"])
def test_changed_file_is_refused_for_new_shapes(rng, tmp_path, change):
    """Weights freed after packing are read again only from the same file:
    a deleted or rewritten file gives a clear error; existing plans still run."""
    path, weights = _saved_mlp(rng, tmp_path)
    sess = pyengine.InferenceSession(path)
    x = rng.standard_normal((2, weights[0].shape[0])).astype(np.float32)
    expected = sess.run(None, {"x": x})[0]
    if change == "deleted":
        os.remove(path)
    else:
        other, _ = _mlp(np.random.default_rng(99))
        onnx.save(other, path)
    with pytest.raises(pyengine.InvalidModelError, match="create a new session"):
        sess.run(None, {"x": np.concatenate([x, x])})
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], expected)


def _conv_case(rng, c, m, hw, k, path, group=1, stride=1, transpose=False):
    w = (rng.standard_normal((c, m // group, k, k) if transpose else (m, c // group, k, k)) * 0.2).astype(np.float32)
    node = helper.make_node("ConvTranspose" if transpose else "Conv", ["x", "w"], ["y"], pads=[k // 2] * 4,
                            group=group, strides=[stride, stride])
    return node, w, ["batch", c, hw, hw], path


@pytest.mark.parametrize("kind", ["gemm", "winograd_cl", "direct", "winograd_4x4", "im2col_gemm", "gemm_1x1",
                                  "transposed_gemm", "grouped", "convtranspose"])
def test_packed_weights_released_per_kernel(rng, tmp_path, kind):
    """Every kernel that packs (or copies) its weights: the raw weights go
    once the plan is built, and new batch sizes still match onnxruntime
    (the weights are read again from the file)."""
    import weakref

    from oracle import assert_matches_ort
    if kind == "gemm":
        w = rng.standard_normal((48, 96)).astype(np.float32)
        node, shape, path = helper.make_node("Gemm", ["x", "w"], ["y"], transB=1), ["batch", 96], None
    else:
        node, w, shape, path = {
            "winograd_cl": lambda: _conv_case(rng, 16, 24, 8, 3, "winograd_cl"),
            "direct": lambda: _conv_case(rng, 3, 24, 8, 3, "direct"),
            "winograd_4x4": lambda: _conv_case(rng, 32, 32, 28, 3, "winograd_4x4"),
            "im2col_gemm": lambda: _conv_case(rng, 48, 32, 30, 5, "im2col_gemm"),
            "gemm_1x1": lambda: _conv_case(rng, 80, 72, 20, 1, "gemm_1x1"),
            "transposed_gemm": lambda: _conv_case(rng, 96, 128, 7, 1, "transposed_gemm"),
            "grouped": lambda: _conv_case(rng, 8, 16, 30, 5, "im2col_gemm", group=2),
            "convtranspose": lambda: _conv_case(rng, 8, 6, 9, 3, None, stride=2, transpose=True),
        }[kind]()
    x = rng.standard_normal([2] + shape[1:]).astype(np.float32)
    model = make_model([node], {"x": x}, ["y"], {"w": w}, input_shapes={"x": shape})
    file = tmp_path / "m.onnx"
    onnx.save(model, str(file))
    sess = pyengine.InferenceSession(str(file))
    alive = weakref.ref(sess._graph.constants["w"])
    sess.run(None, {"x": x})
    gc.collect()
    assert alive() is None
    if path:
        (plan,) = sess._plans.values()
        assert [p for _, op, p in plan.plan.node_paths() if op == "Conv"] == [path]
    for batch in (3, 1):
        xb = rng.standard_normal([batch] + shape[1:]).astype(np.float32)
        assert_matches_ort(model, {"x": xb}, rtol=1e-4, atol=1e-4)
        ref = pyengine.InferenceSession(model.SerializeToString()).run(None, {"x": xb})[0]
        np.testing.assert_allclose(sess.run(None, {"x": xb})[0], ref, rtol=1e-5, atol=1e-5)
