"""Bad inputs to sequence models: each error names the caller's input that
is at fault, not only the node deep inside the model where it surfaced."""
import os

import numpy as np
import pytest
from onnx import TensorProto, helper

import pyengine
from pyengine.runtime import input_diagnosis

BERT = os.path.join(os.path.dirname(__file__), "fixtures", "transformer_bert.onnx")


@pytest.fixture(scope="module")
def bert():
    return pyengine.InferenceSession(BERT)


def _feeds(rng, batch=2, seq=8, dtype=np.int64, vocab=50, mask_shape=None):
    return {"input_ids": rng.integers(0, vocab, (batch, seq)).astype(dtype),
            "token_type_ids": np.zeros((batch, seq), dtype),
            "attention_mask": np.ones(mask_shape or (batch, seq), dtype)}


def test_valid_feeds_run(bert, rng):
    (y,) = bert.run(None, _feeds(rng))
    assert y.shape[:2] == (2, 8) and np.isfinite(y).all()


def test_token_id_past_the_embedding_names_the_input(bert, rng):
    feeds = _feeds(rng)
    feeds["input_ids"][1, 3] = 10_000
    with pytest.raises(ValueError, match=r"index 10000 is out of range.*input\(s\) 'input_ids'"):
        bert.run(None, feeds)


def test_sequence_longer_than_positions_names_the_input(bert, rng):
    with pytest.raises(ValueError, match=r"out of range.*'input_ids' with shape \[1, 500\]"):
        bert.run(None, _feeds(rng, batch=1, seq=500))


def test_mask_of_wrong_length_names_the_mask(bert, rng):
    with pytest.raises(ValueError, match=r"input 'attention_mask' has 9 in dimension 1 \('seq'\) "
                                         r"but input 'input_ids' has 8"):
        bert.run(None, _feeds(rng, mask_shape=(2, 9)))


def test_int32_where_int64_is_declared_names_the_input(bert, rng):
    with pytest.raises(TypeError, match=r"input 'input_ids': expected element type tensor\(int64\)"):
        bert.run(None, _feeds(rng, dtype=np.int32))


def test_session_still_runs_after_errors(bert, rng):
    feeds = _feeds(rng, seq=5)
    expected = bert.run(None, feeds)[0]
    with pytest.raises(ValueError):
        bert.run(None, _feeds(rng, seq=5, mask_shape=(2, 6)))
    np.testing.assert_array_equal(bert.run(None, feeds)[0], expected)


def test_dim_conflicts_only_for_shared_names():
    names = ["a", "b", "c"]
    declared = [("N", "T"), ("N", "T"), ("N", "S")]
    assert input_diagnosis.dim_conflicts(names, declared, [(2, 3), (2, 3), (2, 7)]) is None
    msg = input_diagnosis.dim_conflicts(names, declared, [(2, 3), (2, 4), (2, 7)])
    assert "input 'b' has 4 in dimension 1 ('T')" in msg and "input 'a' has 3" in msg
    # Fixed and unknown dimensions are not compared.
    assert input_diagnosis.dim_conflicts(["a", "b"], [(4, None), (5, None)], [(4, 1), (5, 2)]) is None


def test_inputs_behind_follows_only_the_nodes_ancestors():
    nodes = [helper.make_node("Relu", ["x"], ["rx"], name="r"),
             helper.make_node("Shape", ["y"], ["sy"], name="s"),
             helper.make_node("Cast", ["sy"], ["fy"], name="c", to=TensorProto.FLOAT),
             helper.make_node("Add", ["rx", "fy"], ["z"], name="add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2])
                                            for n in ("x", "y", "w")],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2])])
    from pyengine.onnx_import.convert import to_graph
    g = to_graph(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert input_diagnosis.inputs_behind(g, "r", ["x", "y", "w"]) == ["x"]
    assert input_diagnosis.inputs_behind(g, "add", ["x", "y", "w"]) == ["x", "y"]
    assert input_diagnosis.inputs_behind(g, "missing", ["x", "y", "w"]) == []
