"""Model fuzzing: mutate valid ONNX models, load and run each mutant, and
check that every case ends either in results or in an ordinary Python
exception - never a crash, a hang or an out-of-memory kill.

Cases run in a child process (`run_cases`), so a crash is observed rather
than suffered; the parent reports the seed of the case that killed it.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRUCTURAL = ("attr_type", "drop_input", "bad_dim", "cycle", "duplicate_output", "short_initializer",
              "unknown_dtype", "rename_input", "wrong_op", "extra_input", "huge_constant_of_shape",
              "negative_attr", "drop_initializer")


def seed_models() -> list:
    """Small valid models covering the common op families."""
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    models = []

    def model(nodes, inputs, outputs, inits):
        g = helper.make_graph(nodes, "fuzz", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in inits.items()])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return m

    vi = helper.make_tensor_value_info
    models.append(model([helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
                         helper.make_node("Relu", ["h"], ["r"]), helper.make_node("MatMul", ["r", "w2"], ["y"])],
                        [vi("x", TensorProto.FLOAT, ["N", 6])], [vi("y", TensorProto.FLOAT, ["N", 3])],
                        {"w": f(5, 6), "b": f(5), "w2": f(5, 3)}))
    models.append(model([helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                         helper.make_node("Relu", ["c"], ["r"]),
                         helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                         helper.make_node("Flatten", ["p"], ["fl"]),
                         helper.make_node("Gemm", ["fl", "w2"], ["y"])],
                        [vi("x", TensorProto.FLOAT, [1, 2, 6, 6])], [vi("y", TensorProto.FLOAT, [1, 4])],
                        {"w": f(3, 2, 3, 3), "b": f(3), "w2": f(27, 4)}))
    models.append(model([helper.make_node("Shape", ["x"], ["s"]),
                         helper.make_node("Reshape", ["x", "shp"], ["r"]),
                         helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0]),
                         helper.make_node("Concat", ["t", "t"], ["c"], axis=0),
                         helper.make_node("Softmax", ["c"], ["y"], axis=-1),
                         helper.make_node("Gather", ["s", "idx"], ["g"], axis=0)],
                        [vi("x", TensorProto.FLOAT, [2, 3, 4])],
                        [vi("y", TensorProto.FLOAT, [24, 2]), vi("g", TensorProto.INT64, [])],
                        {"shp": np.array([2, 12], np.int64), "idx": np.array(1, np.int64)}))
    models.append(model([helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"]),
                         helper.make_node("Add", ["bn", "x"], ["a"]),
                         helper.make_node("ReduceMean", ["a"], ["y"], axes=[2, 3], keepdims=1)],
                        [vi("x", TensorProto.FLOAT, [2, 3, 4, 5])], [vi("y", TensorProto.FLOAT, [2, 3, 1, 1])],
                        {"s": f(3), "b": f(3), "m": f(3), "v": np.abs(f(3)) + 0.5}))
    return models


def _rand_attr_value(rng):
    return [b"junk", 3.5, [1, 2], -7, onnx.helper.make_tensor("t", TensorProto.FLOAT, [1], [1.0])][int(rng.integers(5))]


def mutate(model: onnx.ModelProto, rng) -> bytes:
    """One mutant of `model`, serialized (byte-level or structural)."""
    if rng.random() < 0.4:
        data = bytearray(model.SerializeToString())
        kind = int(rng.integers(3))
        if kind == 0 and data:
            for _ in range(int(rng.integers(1, 8))):
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
        elif kind == 1:
            data = data[: int(rng.integers(len(data) + 1))]
        else:
            pos = int(rng.integers(len(data) + 1))
            data[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 16))).tolist())
        return bytes(data)
    m = copy.deepcopy(model)
    g = m.graph
    kind = STRUCTURAL[int(rng.integers(len(STRUCTURAL)))]
    node = g.node[int(rng.integers(len(g.node)))] if len(g.node) else None
    if kind == "attr_type" and node is not None and node.attribute:
        a = node.attribute[int(rng.integers(len(node.attribute)))]
        name = a.name
        node.attribute.remove(a)
        node.attribute.append(helper.make_attribute(name, _rand_attr_value(rng)))
    elif kind == "drop_input" and node is not None and node.input:
        del node.input[int(rng.integers(len(node.input)))]
    elif kind == "bad_dim":
        targets = list(g.input) + list(g.output)
        vi = targets[int(rng.integers(len(targets)))]
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[int(rng.integers(len(dims)))].dim_value = int(rng.choice([-1, -100, 0, 2**40, 2**62]))
        elif g.initializer:
            g.initializer[0].dims.append(int(rng.choice([-3, 2**40])))
    elif kind == "cycle" and len(g.node) >= 1:
        last = g.node[len(g.node) - 1]
        if node.input:
            node.input[0] = last.output[0]
    elif kind == "duplicate_output" and len(g.node) >= 2:
        g.node[0].output[0] = g.node[1].output[0]
    elif kind == "short_initializer" and g.initializer:
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        arr = numpy_helper.to_array(t)
        t.ClearField("float_data")
        t.ClearField("int64_data")
        t.raw_data = arr.tobytes()[: max(0, arr.nbytes - int(rng.integers(1, 9)))]
    elif kind == "unknown_dtype" and g.initializer:
        g.initializer[int(rng.integers(len(g.initializer)))].data_type = int(rng.choice([0, 8, 99, 17, 40]))
    elif kind == "rename_input" and node is not None and node.input:
        node.input[0] = "does_not_exist"
    elif kind == "wrong_op" and node is not None:
        node.op_type = str(rng.choice(["Conv", "Gemm", "Softmax", "Reshape", "NotAnOp", "Concat", "Gather"]))
    elif kind == "extra_input" and node is not None:
        node.input.append(g.input[0].name)
    elif kind == "huge_constant_of_shape":
        shape_name = "huge_shape"
        g.initializer.append(numpy_helper.from_array(np.array([2**20, 2**20, 64], np.int64), shape_name))
        g.node.append(helper.make_node("ConstantOfShape", [shape_name], ["huge"]))
        g.node.append(helper.make_node("Add", ["huge", "huge"], ["huge2"]))
        g.output.append(helper.make_tensor_value_info("huge2", TensorProto.FLOAT, None))
    elif kind == "negative_attr" and node is not None:
        ints = [a for a in node.attribute if a.type == onnx.AttributeProto.INTS or a.type == onnx.AttributeProto.INT]
        if ints:
            a = ints[int(rng.integers(len(ints)))]
            if a.type == onnx.AttributeProto.INT:
                a.i = int(rng.choice([-1, -(2**40), 2**40, 0]))
            elif a.ints:
                a.ints[int(rng.integers(len(a.ints)))] = int(rng.choice([-1, -5, 0, 2**40]))
    elif kind == "drop_initializer" and g.initializer:
        del g.initializer[int(rng.integers(len(g.initializer)))]
    return m.SerializeToString()


def random_feeds(sess, rng) -> dict:
    feeds = {}
    for arg in sess.get_inputs():
        shape = [d if isinstance(d, int) and 0 <= d <= 64 else 2 for d in (arg.shape or [])]
        dtype = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                 "tensor(double)": np.float64, "tensor(bool)": np.bool_}.get(arg.type, np.float32)
        feeds[arg.name] = (rng.standard_normal(shape) * 3).astype(dtype)
    return feeds


def run_one(data: bytes, rng) -> str:
    """Loads and runs one mutant in this process; returns 'ok' or the exception type."""
    import pyengine
    try:
        sess = pyengine.InferenceSession(data)
        sess.run(None, random_feeds(sess, rng))
        return "ok"
    except Exception as e:  # noqa: BLE001 - any Python exception is an acceptable outcome
        if not str(e).strip():
            return f"{type(e).__name__}:EMPTY_MESSAGE"
        return type(e).__name__


def _child(start: int, count: int, seed: int) -> None:
    models = seed_models()
    outcomes = {}
    for i in range(start, start + count):
        rng = np.random.default_rng([seed, i])
        base = models[i % len(models)]
        data = mutate(base, rng)
        print(f"CASE {i}", flush=True)
        kind = run_one(data, rng)
        outcomes[kind] = outcomes.get(kind, 0) + 1
    print("DONE " + json.dumps(outcomes), flush=True)


# The child must import the same pyengine as this process (an installed one,
# or an in-place build), whatever its working directory holds.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child_env() -> dict:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONFAULTHANDLER": "1",
            "PYTHONPATH": _PACKAGE_ROOT + (os.pathsep + path if path else "")}


def run_cases(count: int, seed: int = 0, timeout: float = 600.0, memory_limit_gb: float = 8.0) -> dict:
    """Runs `count` cases in child processes; returns a report dict with the
    outcomes and any crashes (case index and how the child died). A crashed
    child is restarted after the failing case."""
    report = {"cases": count, "outcomes": {}, "crashes": []}
    start = 0
    while start < count:
        cmd = [sys.executable, "-c",
               "import sys, resource;"
               f"resource.setrlimit(resource.RLIMIT_AS, ({int(memory_limit_gb * 2**30)}, {int(memory_limit_gb * 2**30)}));"
               "from pyengine.testing.fuzz import _child;"
               f"_child({start}, {count - start}, {seed})"]
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env(),
                                  cwd=os.path.dirname(_PACKAGE_ROOT))
            out, rc, hung = proc.stdout, proc.returncode, False
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            rc, hung = None, True
        last = start - 1
        for line in out.splitlines():
            if line.startswith("CASE "):
                last = int(line.split()[1])
            elif line.startswith("DONE "):
                for k, v in json.loads(line[5:]).items():
                    report["outcomes"][k] = report["outcomes"].get(k, 0) + v
        if rc == 0 and "DONE " in out:
            break
        report["crashes"].append({"case": last, "returncode": rc, "hung": hung,
                                  "seconds": round(time.time() - t0, 1),
                                  "stderr": (proc.stderr[-2000:] if not hung else "")})
        start = last + 1
    return report


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(json.dumps(run_cases(n), indent=1))
