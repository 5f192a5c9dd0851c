"""Helpers to build small ONNX models and compare pyengine with onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

import pyengine

_NP_TO_ONNX = {np.dtype(k): v for k, v in {
    np.float32: onnx.TensorProto.FLOAT, np.float64: onnx.TensorProto.DOUBLE,
    np.int32: onnx.TensorProto.INT32, np.int64: onnx.TensorProto.INT64,
    np.int8: onnx.TensorProto.INT8, np.uint8: onnx.TensorProto.UINT8,
    np.bool_: onnx.TensorProto.BOOL, np.float16: onnx.TensorProto.FLOAT16,
}.items()}


def make_model(nodes, inputs: dict, outputs, initializers: dict | None = None, opset: int = 17,
               input_shapes: dict | None = None) -> onnx.ModelProto:
    """`inputs`: name -> sample array (its dtype and shape are declared, unless
    input_shapes gives a symbolic shape). `outputs`: names (types inferred)."""
    input_shapes = input_shapes or {}
    g_inputs = [helper.make_tensor_value_info(n, _NP_TO_ONNX[a.dtype], input_shapes.get(n, list(a.shape)))
                for n, a in inputs.items()]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()]
    # Output types come from ONNX shape inference (as an exporter would write them).
    probe = helper.make_model(helper.make_graph(nodes, "test", g_inputs, [], inits),
                              opset_imports=[helper.make_opsetid("", opset)])
    inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(probe).graph.value_info}
    g_outputs = []
    for n in outputs:
        vi = inferred.get(n)
        if vi is None and n in (initializers or {}):
            arr = np.asarray(initializers[n])
            vi = helper.make_tensor_value_info(n, _NP_TO_ONNX[arr.dtype], list(arr.shape))
        g_outputs.append(vi if vi is not None else helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "test", g_inputs, g_outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)
    return model


def run_both(model: onnx.ModelProto, feeds: dict, threads: int = 1, level=None):
    data = model.SerializeToString()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    expected = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(None, feeds)
    po = pyengine.SessionOptions()
    po.intra_op_num_threads = threads
    if level is not None:
        po.graph_optimization_level = level
    got = pyengine.InferenceSession(data, po).run(None, feeds)
    return got, expected


def assert_matches_ort(model, feeds: dict, rtol=1e-5, atol=1e-5, threads: int = 1, level=None):
    got, expected = run_both(model, feeds, threads, level)
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == e.dtype, f"output {i}: dtype {g.dtype} != onnxruntime's {e.dtype}"
        assert g.shape == e.shape, f"output {i}: shape {g.shape} != onnxruntime's {e.shape}"
        np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"output {i}")
    return got


def assert_same_bits_across_threads(model, feeds: dict, threads=(1, 2, 3)) -> list:
    """Runs the model with each thread count; every output must be the same
    bits as with the first. Returns the first run's outputs."""
    data = model.SerializeToString()
    runs = []
    for t in threads:
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = t
        runs.append(pyengine.InferenceSession(data, so).run(None, feeds))
    for t, outs in zip(threads[1:], runs[1:]):
        for i, (a, b) in enumerate(zip(runs[0], outs)):
            np.testing.assert_array_equal(a, b, err_msg=f"output {i}: {threads[0]} vs {t} threads")
    return runs[0]
