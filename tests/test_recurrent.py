"""LSTM, GRU and RNN against onnxruntime on every ISA: odd sizes, every
direction, sequence_lens, initial states, both layouts, every subset of the
outputs, GRU linear_before_reset, LSTM peepholes and input_forget, clip,
non-default activations, weights given at run time, and 1 vs 2 threads
bit-identical. Then PyTorch-exported models from tests/fixtures/."""
from __future__ import annotations

import itertools
import pathlib

import numpy as np
import pytest
from onnx import helper

import pyengine
from oracle import assert_matches_ort, make_model
from pyengine.errors import UnsupportedOperatorError

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
OPS = list(GATES)
DIRECTIONS = ["forward", "reverse", "bidirectional"]
# (seq, batch, input, hidden)
SIZES = [(1, 1, 1, 1), (7, 5, 13, 17), (7, 1, 1, 3), (1, 5, 13, 33), (3, 5, 13, 1), (2, 3, 9, 8)]
FIXTURES = pathlib.Path(__file__).parent / "fixtures"


class Case:
    """One recurrent node: the model, its feeds and, for layout 1 (which
    onnxruntime does not run), the same node in layout 0 as the oracle."""

    def __init__(self, model, feeds, ref=None):
        self.model, self.feeds, self.ref = model, feeds, ref

    def check(self, rtol=1e-4, atol=1e-5, threads=1):
        if self.ref is None:
            return assert_matches_ort(self.model, self.feeds, rtol=rtol, atol=atol, threads=threads)
        import onnxruntime as ort
        ref_model, ref_feeds = self.ref
        expected = ort.InferenceSession(ref_model.SerializeToString(),
                                        providers=["CPUExecutionProvider"]).run(None, ref_feeds)
        # [seq, dirs, batch, hidden] -> [batch, seq, dirs, hidden]; [dirs, batch, hidden] -> [batch, dirs, hidden]
        expected = [e.transpose(2, 0, 1, 3) if e.ndim == 4 else e.transpose(1, 0, 2) for e in expected]
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = threads
        got = pyengine.InferenceSession(self.model.SerializeToString(), so).run(None, self.feeds)
        assert len(got) == len(expected)
        for i, (g, e) in enumerate(zip(got, expected)):
            assert g.shape == e.shape, f"output {i}: shape {g.shape} != expected {e.shape}"
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"output {i}")
        return got


def build(rng, op, seq, batch, isz, hidden, direction="forward", layout=0, bias=True, lens=None, h0=False,
          c0=False, peep=False, outputs=None, const_weights=True, opset=17, **attrs) -> Case:
    """One recurrent node with random weights and inputs. `lens`: lengths or
    None. `outputs`: which of Y, Y_h(, Y_c) the node names (default all)."""
    d = 2 if direction == "bidirectional" else 1
    g = GATES[op]
    scale = 1.0 / np.sqrt(max(hidden, 1))

    def rand(*shape, s=1.0):
        return (rng.standard_normal(shape) * s).astype(np.float32)

    weights = {"W": rand(d, g * hidden, isz, s=scale), "R": rand(d, g * hidden, hidden, s=scale)}
    if bias:
        weights["B"] = rand(d, 2 * g * hidden, s=0.5)
    feeds = {"X": rand(seq, batch, isz)}  # layout 0 here, transposed below for layout 1
    names = ["X", "W", "R", "B" if bias else ""]
    if lens is not None:
        feeds["L"] = np.asarray(lens, dtype=np.int32)
    names.append("L" if lens is not None else "")
    if h0:
        feeds["H0"] = rand(d, batch, hidden)
    names.append("H0" if h0 else "")
    if op == "LSTM":
        if c0:
            feeds["C0"] = rand(d, batch, hidden)
        names.append("C0" if c0 else "")
        if peep:
            weights["P"] = rand(d, 3 * hidden, s=0.5)
        names.append("P" if peep else "")
    while names and not names[-1]:
        names.pop()
    all_outs = ["Y", "Y_h", "Y_c"][:3 if op == "LSTM" else 2]
    node_outs = [o if outputs is None or o in outputs else "" for o in all_outs]
    while not node_outs[-1]:
        node_outs.pop()

    def model_for(layout_, feeds_):
        a = dict(attrs)
        if opset >= 14:
            a["layout"] = layout_
        node = helper.make_node(op, names, node_outs, hidden_size=hidden, direction=direction, **a)
        if const_weights:
            return make_model([node], feeds_, [o for o in node_outs if o], weights, opset=opset), feeds_
        feeds_ = {**feeds_, **weights}
        return make_model([node], feeds_, [o for o in node_outs if o], {}, opset=opset), feeds_

    if layout == 0:
        return Case(*model_for(0, feeds))
    batchwise = {k: (v.transpose(1, 0, 2) if k in ("X", "H0", "C0") else v) for k, v in feeds.items()}
    return Case(*model_for(1, batchwise), ref=model_for(0, feeds))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("seq,batch,isz,hidden", SIZES)
def test_cells(isa, rng, op, direction, seq, batch, isz, hidden):
    build(rng, op, seq, batch, isz, hidden, direction, h0=True, c0=True).check()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("layout", [0, 1])
def test_sequence_lens(isa, rng, op, direction, layout):
    """Varied lengths (one of them 0, one full): outputs past a sequence's end
    are zero and the final states are those of each sequence's last step."""
    build(rng, op, 7, 5, 13, 17, direction, layout, lens=[7, 3, 1, 0, 5], h0=True, c0=True).check()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("seq,batch,isz,hidden", [(7, 5, 13, 17), (1, 1, 1, 3), (3, 5, 1, 33)])
def test_layout_batchwise(isa, rng, op, direction, seq, batch, isz, hidden):
    build(rng, op, seq, batch, isz, hidden, direction, layout=1, h0=True, c0=True).check()


def _subsets(op):
    outs = ["Y", "Y_h", "Y_c"][:3 if op == "LSTM" else 2]
    return [(op, list(c)) for r in range(1, len(outs) + 1) for c in itertools.combinations(outs, r)]


@pytest.mark.parametrize("op,outputs", [s for op in OPS for s in _subsets(op)])
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_output_subsets(isa, rng, op, outputs, direction):
    build(rng, op, 4, 3, 5, 9, direction, lens=[4, 2, 3], h0=True, outputs=outputs).check()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("bias,h0", [(False, False), (True, False), (False, True)])
def test_optional_inputs(isa, rng, op, bias, h0):
    build(rng, op, 5, 3, 4, 6, "bidirectional", bias=bias, h0=h0).check()


@pytest.mark.parametrize("lbr", [0, 1])
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("lens", [None, [2, 7, 4, 1, 6]])
def test_gru_linear_before_reset(isa, rng, lbr, direction, lens):
    build(rng, "GRU", 7, 5, 13, 17, direction, lens=lens, h0=True, linear_before_reset=lbr).check()


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("input_forget", [0, 1])
@pytest.mark.parametrize("clip", [None, 0.7])
def test_lstm_peepholes(isa, rng, direction, input_forget, clip):
    attrs = {"input_forget": input_forget}
    if clip is not None:
        attrs["clip"] = clip
    build(rng, "LSTM", 7, 5, 13, 17, direction, lens=[7, 2, 5, 1, 3], h0=True, c0=True, peep=True,
          **attrs).check()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("clip", [0.25, 1.5])
def test_clip(isa, rng, op, clip):
    build(rng, op, 6, 5, 13, 17, "bidirectional", h0=True, clip=clip).check()


ACTIVATION_CASES = [
    ("RNN", "forward", ["Relu"], {}),
    ("RNN", "forward", ["Sigmoid"], {}),
    ("RNN", "bidirectional", ["LeakyRelu", "Tanh"], {"activation_alpha": [0.2]}),
    ("RNN", "forward", ["Elu"], {}),
    ("GRU", "forward", ["HardSigmoid", "Tanh"], {"activation_alpha": [0.3], "activation_beta": [0.4]}),
    ("GRU", "reverse", ["Sigmoid", "Relu"], {}),
    # alpha goes to the first function that takes one (LeakyRelu here).
    ("GRU", "forward", ["Tanh", "LeakyRelu"], {"activation_alpha": [0.3]}),
    ("GRU", "bidirectional", ["Sigmoid", "Tanh", "HardSigmoid", "Relu"], {}),
    ("LSTM", "forward", ["HardSigmoid", "LeakyRelu", "Tanh"], {"activation_alpha": [0.3, 0.2], "activation_beta": [0.6]}),
    ("LSTM", "bidirectional", ["Sigmoid", "Tanh", "Tanh", "Sigmoid", "Relu", "Sigmoid"], {}),
    ("LSTM", "forward", ["sigmoid", "tanh", "relu"], {}),  # names are not case-sensitive
]


@pytest.mark.parametrize("op,direction,acts,extra", ACTIVATION_CASES)
def test_activations(isa, rng, op, direction, acts, extra):
    build(rng, op, 5, 3, 7, 9, direction, h0=True, activations=acts, **extra).check(atol=1e-4)


@pytest.mark.parametrize("act", ["Softsign", "Affine", "ScaledTanh"])
def test_unsupported_activation(rng, act):
    model = build(rng, "RNN", 2, 1, 3, 4, activations=[act]).model
    with pytest.raises(UnsupportedOperatorError, match=act):
        pyengine.InferenceSession(model.SerializeToString())


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("direction", ["forward", "bidirectional"])
def test_runtime_weights(isa, rng, op, direction):
    """W, R, B (and P) computed at run time: the unpacked GEMM path."""
    build(rng, op, 7, 5, 13, 17, direction, lens=[7, 3, 1, 6, 2], h0=True, c0=True, peep=op == "LSTM",
          const_weights=False).check()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("opset", [7, 14, 22])
def test_opsets(rng, op, opset):
    build(rng, op, 4, 2, 3, 5, "bidirectional", opset=opset, h0=True).check()


@pytest.mark.parametrize("op", OPS)
def test_empty_sequence(isa, rng, op):
    """seq = 0: Y is empty and the final states are zero, as for a
    sequence_lens entry of 0. (onnxruntime is no oracle here: its GRU aborts,
    its LSTM returns uninitialized Y_c.)"""
    case = build(rng, op, 0, 3, 4, 5, "bidirectional", h0=True, c0=True)
    got = pyengine.InferenceSession(case.model.SerializeToString()).run(None, case.feeds)
    assert got[0].shape == (0, 2, 3, 5)
    for state in got[1:]:
        np.testing.assert_array_equal(state, np.zeros((2, 3, 5), np.float32))


@pytest.mark.parametrize("op", OPS)
def test_empty_batch(isa, rng, op):
    # onnxruntime aborts on batch 0, so only shapes are checked here.
    case = build(rng, op, 3, 0, 4, 5, "bidirectional", h0=True, c0=True)
    got = pyengine.InferenceSession(case.model.SerializeToString()).run(None, case.feeds)
    assert [g.shape for g in got] == [(3, 2, 0, 5)] + [(2, 0, 5)] * (len(got) - 1)


def test_hidden_size_from_weights(rng):
    """hidden_size is optional in ONNX: then R's shape gives it."""
    case = build(rng, "LSTM", 4, 3, 5, 6, h0=True)
    expected = pyengine.InferenceSession(case.model.SerializeToString()).run(None, case.feeds)
    attrs = case.model.graph.node[0].attribute
    attrs.remove(next(a for a in attrs if a.name == "hidden_size"))
    got = pyengine.InferenceSession(case.model.SerializeToString()).run(None, case.feeds)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)


def test_wrong_activation_count(rng):
    model = build(rng, "GRU", 2, 1, 3, 4, "bidirectional", activations=["Sigmoid", "Tanh"]).model
    with pytest.raises(ValueError, match="expected 4"):
        pyengine.InferenceSession(model.SerializeToString()).run(None, {"X": np.zeros((2, 1, 3), np.float32)})


def test_sequence_lens_out_of_range(rng):
    case = build(rng, "GRU", 3, 2, 3, 4, lens=[3, 4])
    model, feeds = case.model, case.feeds
    sess = pyengine.InferenceSession(model.SerializeToString())
    with pytest.raises(ValueError, match="sequence_lens"):
        sess.run(None, feeds)


def test_bad_weight_shape(rng):
    case = build(rng, "LSTM", 3, 2, 3, 4)
    model, feeds = case.model, case.feeds
    next(a for a in model.graph.node[0].attribute if a.name == "hidden_size").i = 5  # W, R say 4
    with pytest.raises(ValueError, match="W must have shape"):
        pyengine.InferenceSession(model.SerializeToString()).run(None, feeds)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("direction,batch,hidden", [("bidirectional", 5, 17), ("forward", 128, 129),
                                                    ("reverse", 64, 97)])
def test_threads_bit_identical(rng, op, direction, batch, hidden):
    """Direction-parallel and row-parallel runs equal the 1-thread run exactly."""
    case = build(rng, op, 3, batch, 8, hidden, direction, lens=[i % 3 + 1 for i in range(batch)], h0=True)
    feeds = case.feeds
    data = case.model.SerializeToString()
    outs = []
    for t in (1, 2):
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = t
        outs.append(pyengine.InferenceSession(data, so).run(None, feeds))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    case.check(threads=2)


# ---- models exported from PyTorch (scripts/make_rnn_fixtures.py) ------------

FIXTURE_NAMES = ["lstm_classifier", "gru", "bilstm"]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_torch_fixture(isa, name):
    import onnxruntime as ort
    path = FIXTURES / f"{name}.onnx"
    data = np.load(FIXTURES / f"{name}.npz")
    feeds = {k[3:]: data[k] for k in data.files if k.startswith("in_")}
    expected = [data[f"out_{i}"] for i in range(sum(k.startswith("out_") for k in data.files))]
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)
    assert len(ref) == len(expected)
    for i, (r, e) in enumerate(zip(ref, expected)):  # the fixture itself is sound
        np.testing.assert_allclose(r, e, rtol=1e-4, atol=1e-4, err_msg=f"onnxruntime vs torch, output {i}")
    try:
        got = pyengine.InferenceSession(str(path)).run(None, feeds)
    except UnsupportedOperatorError as e:
        pytest.skip(f"needs operators not in this build: {str(e).splitlines()[0]}")
    assert len(got) == len(expected)
    for i, (g, r, e) in enumerate(zip(got, ref, expected)):
        assert g.shape == e.shape, f"output {i}: shape {g.shape} != torch's {e.shape}"
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4, err_msg=f"output {i} vs onnxruntime")
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4, err_msg=f"output {i} vs torch")


def _recurrent_node_cases(name):
    """The LSTM/GRU nodes of a fixture as one-node models, their inputs
    computed by onnxruntime from the fixture's inputs: checks the kernels on
    what the PyTorch exporter writes even while the surrounding ops are missing."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    model = onnx.load(str(FIXTURES / f"{name}.onnx"))
    data = np.load(FIXTURES / f"{name}.npz")
    feeds = {k[3:]: data[k] for k in data.files if k.startswith("in_")}
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    nodes = [n for n in model.graph.node if n.op_type in GATES]
    wanted = [i for n in nodes for i in n.input if i and i not in consts and i not in feeds]
    inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(model).graph.value_info}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(inferred[w] for w in wanted)
    values = dict(zip([o.name for o in probe.graph.output],
                      ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
                      .run(None, feeds)))
    values.update(feeds)
    for n in nodes:
        node = onnx.NodeProto()
        node.CopyFrom(n)
        runtime = {i: values[i] for i in n.input if i and i not in consts}
        inits = {i: consts[i] for i in n.input if i and i in consts}
        yield n.name, make_model([node], runtime, [o for o in n.output if o], inits, opset=OPSET_OF_FIXTURES), runtime


OPSET_OF_FIXTURES = 17


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_torch_fixture_recurrent_nodes(isa, name):
    cases = list(_recurrent_node_cases(name))
    assert cases
    for _, model, feeds in cases:
        assert_matches_ort(model, feeds, rtol=1e-4, atol=1e-5)
