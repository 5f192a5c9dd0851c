"""onnx_import/wire.py: a model's large raw_data initializers are read from
the file (or bytes) straight into arrays while everything else becomes a
small skeleton message. The skeleton plus the arrays must equal the model;
anything the splitter does not handle is left for the normal parse; the
load's peak memory stays near one copy of the weights."""
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import pyengine
from oracle import assert_matches_ort, make_model
from pyengine.onnx_import import loader, wire
from subproc import PACKAGE_PARENT, child_env

MIN = loader._SKELETON_MAX_BYTES
DIRECT = loader._DIRECT_NP


def _model(rng, strings=True):
    """Large tensors of several types (split), small ones (kept), a string tensor, a Constant node's tensor."""
    inits = {
        "w": rng.standard_normal((40, 30)).astype(np.float32),
        "idx": rng.integers(0, 30, (300,)).astype(np.int64),
        "half": rng.standard_normal((700,)).astype(np.float16),
        "flags": rng.integers(0, 2, (2000,)).astype(np.bool_),
        "small": rng.standard_normal((5,)).astype(np.float32),
        "scalar": np.array(3.0, np.float32),
    }
    tensors = [numpy_helper.from_array(v, k) for k, v in inits.items()]
    if strings:  # (the engine rejects string initializers; the splitter keeps them)
        tensors.append(helper.make_tensor("names", onnx.TensorProto.STRING, [2], [b"a", b"b"]))
    x = rng.standard_normal((2, 40)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]),
             helper.make_node("Constant", [], ["k"],
                              value=numpy_helper.from_array(rng.standard_normal((300,)).astype(np.float32)))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 40])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 30])], tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="test")
    model.metadata_props.add(key="k", value="v")
    return model, inits


def _without_split_data(model, names):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        if t.name in names:
            t.ClearField("raw_data")
    return m


@pytest.mark.parametrize("via", ["file", "bytes"])
def test_skeleton_plus_arrays_is_the_model(rng, tmp_path, via):
    model, inits = _model(rng)
    data = model.SerializeToString()
    arrays = {}
    if via == "file":
        path = tmp_path / "m.onnx"
        path.write_bytes(data)
        skeleton = wire.split_file(str(path), MIN, DIRECT, arrays)
    else:
        skeleton = wire.split_bytes(data, MIN, DIRECT, arrays)
    assert set(arrays) == {"w", "idx", "half", "flags"}  # over MIN bytes, fixed-size types
    for name, arr in arrays.items():
        assert arr.dtype == inits[name].dtype and not arr.flags.writeable
        np.testing.assert_array_equal(arr, inits[name])
    parsed = onnx.ModelProto()
    parsed.ParseFromString(skeleton)
    assert parsed == _without_split_data(model, set(arrays))
    assert len(skeleton) < len(data) - sum(a.nbytes for a in arrays.values()) + 64


def test_session_from_file_matches(rng, tmp_path):
    model, _ = _model(rng, strings=False)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    x = rng.standard_normal((2, 40)).astype(np.float32)
    got = pyengine.InferenceSession(str(path)).run(None, {"x": x})[0]
    assert_matches_ort(model, {"x": x})
    np.testing.assert_allclose(got, x @ numpy_helper.to_array(model.graph.initializer[0]), rtol=1e-5, atol=1e-5)


def _tensor_field(name, raw: bytes) -> bytes:
    """A serialized TensorProto float [len/4] with the given raw_data."""
    return numpy_helper.from_array(np.frombuffer(raw, np.float32), name).SerializeToString()


def test_unusual_tensors_left_to_protobuf(rng):
    """Two raw_data fields in one tensor (protobuf keeps the last), a payload
    shorter than the dims, external data: not split, decoded as protobuf does."""
    a, b = rng.standard_normal(400).astype(np.float32), rng.standard_normal(400).astype(np.float32)
    t = numpy_helper.from_array(a, "w2")
    twice = t.SerializeToString() + helper.make_tensor("w2", 1, [400], b.tobytes(), raw=True).SerializeToString()
    short = numpy_helper.from_array(a, "short")
    short.dims[0] = 500  # dims call for more than the payload holds
    ext = onnx.TensorProto(name="ext", data_type=1, dims=[400])
    ext.data_location = onnx.TensorProto.EXTERNAL
    ext.external_data.add(key="location", value="nowhere.bin")
    g = helper.make_graph([], "g", [], [], [short, ext])
    model = helper.make_model(g)
    # splice the doubled tensor into the graph's initializers at the wire level
    extra = onnx.GraphProto()
    extra.ParseFromString(b"\x2a" + wire._encode_varint(len(twice)) + twice)
    model.graph.initializer.extend(extra.initializer)
    data = model.SerializeToString()
    arrays = {}
    skeleton = wire.split_bytes(data, MIN, DIRECT, arrays)
    assert arrays == {}
    assert skeleton == data or onnx.load_from_string(skeleton) == onnx.load_from_string(data)
    assert onnx.load_from_string(data).graph.initializer[2].raw_data == b.tobytes()  # the last one


def test_duplicate_or_truncated_declined(rng, tmp_path):
    w = numpy_helper.from_array(rng.standard_normal(400).astype(np.float32), "w")
    dup = helper.make_model(helper.make_graph([], "g", [], [], [w, w]))
    assert wire.split_bytes(dup.SerializeToString(), MIN, DIRECT, {}) is None
    model, _ = _model(rng)
    data = model.SerializeToString()
    cut = data[: len(data) // 2]
    assert wire.split_bytes(cut, MIN, DIRECT, {}) is None
    path = tmp_path / "cut.onnx"
    path.write_bytes(cut)
    with pytest.raises(pyengine.InvalidModelError):
        pyengine.InferenceSession(str(path))


@pytest.mark.parametrize("seed", range(20))
def test_random_corruption_never_crashes(rng, seed):
    """Flipped bytes: the splitter declines or yields a skeleton; the session
    either loads or raises a pyengine error, never anything else."""
    model, _ = _model(rng, strings=False)
    data = bytearray(model.SerializeToString())
    r = np.random.default_rng(seed)
    for i in r.integers(0, len(data), 4):
        data[i] = int(r.integers(0, 256))
    try:
        wire.split_bytes(bytes(data), MIN, DIRECT, {})
        pyengine.InferenceSession(bytes(data))
    except pyengine.PyEngineError:
        pass


_PEAK = """
import json, resource, sys
import numpy as np, pyengine
from pyengine.onnx_import import loader
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) * 1024
before = hwm()
arrays = {}
model = loader.load_model(sys.argv[1], arrays)
print(json.dumps({"peak": hwm() - before, "arrays": sum(a.nbytes for a in arrays.values())}))
"""


@pytest.mark.skipif(bool(os.environ.get("PYENGINE_SANITIZED")), reason="RSS is meaningless under ASan")
def test_load_peak_near_one_copy(rng, tmp_path):
    """Loading a 48 MB model from its file peaks at about one copy of its
    weights (protobuf parsing of the whole file held two to three)."""
    ws = [numpy_helper.from_array(rng.standard_normal((1024, 1024)).astype(np.float32), f"w{i}") for i in range(12)]
    nodes = [helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", f"w{i}"], [f"h{i + 1}"]) for i in range(12)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1024])],
                          [helper.make_tensor_value_info("h12", onnx.TensorProto.FLOAT, [1, 1024])], ws)
    path = tmp_path / "big.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    out = subprocess.run([sys.executable, "-c", _PEAK, str(path)], cwd=PACKAGE_PARENT, env=child_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["arrays"] == 12 * 1024 * 1024 * 4
    assert r["peak"] < 1.4 * r["arrays"], r
