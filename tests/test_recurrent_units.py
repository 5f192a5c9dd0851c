"""The recurrent kernel's step-unit path (csrc/ops/recurrent.cpp,
run_units_path): with constant weights, no sequence_lens, and LSTM, RNN or
GRU with linear_before_reset, the hidden units are split into one slice per
thread (H >= 64), each step's GEMM and cell math run per slice, and the
slices of a step synchronize through a counter. Checked on every ISA against
onnxruntime, and bit-identical across 1, 2 and 3 threads, for hidden sizes
that give 1, 2 and 3 uneven slices, batches 1..20 (the GEMM's few-rows path
covers up to 24 rows) and the cell options handled per slice."""
from __future__ import annotations

import numpy as np
import pytest

import pyengine
from test_recurrent import build


def run_threads(case, threads):
    so = pyengine.SessionOptions()
    so.intra_op_num_threads = threads
    return pyengine.InferenceSession(case.model.SerializeToString(), so).run(None, case.feeds)


def check_threads(case, counts=(1, 2, 3), rtol=1e-4, atol=2e-5):
    outs = [run_threads(case, t) for t in counts]
    for t, other in zip(counts[1:], outs[1:]):
        for i, (a, b) in enumerate(zip(outs[0], other)):
            np.testing.assert_array_equal(a, b, err_msg=f"output {i}: {t} threads differ from {counts[0]}")
    case.check(rtol=rtol, atol=atol)


CELLS = [("LSTM", {}), ("RNN", {}), ("GRU", {"linear_before_reset": 1})]


@pytest.mark.parametrize("op,attrs", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("trial", range(4))
def test_units_random_shapes(isa, rng, op, attrs, trial):
    hidden = int(rng.choice([64, 67, 96, 130, 161]))
    batch = int(rng.integers(1, 21))
    seq = int(rng.integers(1, 5))
    isz = int(rng.integers(1, 40))
    direction = ["forward", "reverse", "bidirectional"][trial % 3]
    check_threads(build(rng, op, seq, batch, isz, hidden, direction, h0=True, c0=True, **attrs))


@pytest.mark.parametrize("batch", [1, 2, 7, 12, 13, 16, 20, 24, 25])
def test_units_batch_rows(isa, rng, batch):
    """Every row count of the few-rows GEMM (balanced groups of <= 12) and past it."""
    check_threads(build(rng, "LSTM", 3, batch, 9, 96, h0=True, c0=True), counts=(1, 2))


@pytest.mark.parametrize("input_forget", [0, 1])
@pytest.mark.parametrize("clip", [None, 0.7])
def test_units_lstm_options(isa, rng, input_forget, clip):
    attrs = {"input_forget": input_forget}
    if clip is not None:
        attrs["clip"] = clip
    check_threads(build(rng, "LSTM", 4, 5, 13, 80, "bidirectional", h0=True, c0=True, peep=True, **attrs))


@pytest.mark.parametrize("op,attrs", CELLS, ids=[c[0] for c in CELLS])
def test_units_layout_batchwise(isa, rng, op, attrs):
    check_threads(build(rng, op, 4, 6, 11, 70, "forward", layout=1, h0=True, **attrs))


@pytest.mark.parametrize("op,attrs", CELLS, ids=[c[0] for c in CELLS])
def test_units_clip_and_acts(isa, rng, op, attrs):
    acts = {"LSTM": ["HardSigmoid", "Tanh", "Relu"], "GRU": ["Sigmoid", "Relu"], "RNN": ["Relu"]}[op]
    check_threads(build(rng, op, 3, 4, 6, 65, "forward", clip=0.9, activations=acts, **attrs))


def test_units_output_subsets(rng):
    """Only Y_h wanted (the benchmarks' last layer) and only Y."""
    check_threads(build(rng, "LSTM", 5, 3, 8, 64, outputs=["Y_h"]))
    check_threads(build(rng, "GRU", 5, 3, 8, 64, outputs=["Y"], linear_before_reset=1))


def test_units_long_sequence_many_threads(rng):
    """Many steps through the step counter, more threads than slices."""
    case = build(rng, "LSTM", 40, 3, 5, 64, h0=True, c0=True)
    outs = [run_threads(case, t) for t in (1, 2, 3, 4)]
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            np.testing.assert_array_equal(a, b)
    case.check()


# Batch groups: with >= 8 batch rows per thread the rows are split between
# the threads (each group runs its whole sequence alone) instead of the
# hidden units; still bit-identical to 1 thread.
@pytest.mark.parametrize("op,attrs", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("batch", [15, 16, 17, 24, 33])
def test_batch_groups(isa, rng, op, attrs, batch):
    hidden = int(rng.choice([1, 3, 17, 33, 70]))
    check_threads(build(rng, op, 5, batch, int(rng.integers(1, 12)), hidden, h0=True, c0=True, **attrs),
                  counts=(1, 2, 3, 4))


@pytest.mark.parametrize("op,attrs", CELLS, ids=[c[0] for c in CELLS])
@pytest.mark.parametrize("direction", ["reverse", "bidirectional"])
def test_batch_groups_layouts(isa, rng, op, attrs, direction):
    for layout in (0, 1):
        check_threads(build(rng, op, 4, 16, 7, 40, direction, layout=layout, h0=True, c0=True, **attrs),
                      counts=(1, 2, 3))


@pytest.mark.parametrize("clip", [None, 0.5])
def test_batch_groups_lstm_options(isa, rng, clip):
    attrs = {} if clip is None else {"clip": clip}
    check_threads(build(rng, "LSTM", 3, 16, 6, 20, h0=True, c0=True, peep=True, input_forget=1, **attrs),
                  counts=(1, 2))


def test_batch_groups_outputs_and_long_sequence(rng):
    check_threads(build(rng, "LSTM", 33, 16, 8, 64, outputs=["Y_h"]), counts=(1, 2))
    check_threads(build(rng, "GRU", 33, 17, 8, 64, outputs=["Y"], linear_before_reset=1), counts=(1, 2))


def test_batch_groups_or_units_by_thread_count(rng):
    """Batch 16, hidden 130: 2 threads take batch groups, 4 threads hidden-unit slices."""
    for op, attrs in CELLS:
        check_threads(build(rng, op, 6, 16, 5, 130, h0=True, c0=True, **attrs), counts=(1, 2, 4))


# The fused cell math (AVX-512 lstm_cell / gru_cell, kernels/avx512/rnn_avx512.cpp)
# uses a cheaper sigmoid with an absolute (not relative) error bound. One
# step with weights, inputs and initial states on coarse binary grids makes
# every pre-activation exact in float32, so the outputs differ from a
# float64 reference only by the cell math: bounded by 1e-6 absolute over
# pre-activations from -60 to 60 (saturation included), clip, and hidden
# sizes that leave vector tails.
def _one_step_case(rng, op, hidden, batch, clip):
    from onnx import TensorProto, helper, numpy_helper
    g = {"LSTM": 4, "GRU": 3}[op]
    isz = 4
    W = rng.integers(-4, 5, (1, g * hidden, isz)).astype(np.float32)
    R = (rng.integers(-4, 5, (1, g * hidden, hidden)) / 8).astype(np.float32)
    B = (rng.integers(-16, 17, (1, 2 * g * hidden)) / 4).astype(np.float32)
    X = (rng.integers(-24, 25, (1, batch, isz)) / 8).astype(np.float32)  # |x W^T| up to 12 * 4
    H0 = (rng.integers(-8, 9, (1, batch, hidden)) / 8).astype(np.float32)
    C0 = (rng.integers(-16, 17, (1, batch, hidden)) / 8).astype(np.float32)
    attrs = {"hidden_size": hidden}
    if clip:
        attrs["clip"] = clip
    ins = ["X", "W", "R", "B", "", "H0"] + (["C0"] if op == "LSTM" else [])
    if op == "GRU":
        attrs["linear_before_reset"] = 1
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    node = helper.make_node(op, ins, outs, **attrs)
    feeds = {"X": X, "H0": H0, **({"C0": C0} if op == "LSTM" else {})}
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in feeds.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, [1, 1, batch, hidden][-3 if o != "Y" else -4:])
         for o in outs],
        [numpy_helper.from_array(W, "W"), numpy_helper.from_array(R, "R"), numpy_helper.from_array(B, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    # float64 reference
    x, w, r, b, h0 = (a.astype(np.float64) for a in (X[0], W[0], R[0], B[0], H0[0]))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    cl = (lambda v: np.clip(v, -clip, clip)) if clip else (lambda v: v)  # noqa: E731
    H = hidden
    if op == "LSTM":
        pre = x @ w.T + h0 @ r.T + b[:g * H] + b[g * H:]
        i, o, f, c = (pre[:, k * H:(k + 1) * H] for k in range(4))
        c1 = sig(cl(f)) * C0[0] + sig(cl(i)) * np.tanh(cl(c))
        h1 = sig(cl(o)) * np.tanh(c1)
        ref = [h1, c1]
    else:
        xw = x @ w.T + b[:g * H]
        hr = h0 @ r.T + b[g * H:]
        z = sig(cl(xw[:, :H] + hr[:, :H]))
        rr = sig(cl(xw[:, H:2 * H] + hr[:, H:2 * H]))
        hh = np.tanh(cl(xw[:, 2 * H:] + rr * hr[:, 2 * H:]))
        ref = [(1 - z) * hh + z * h0]
    return model, feeds, ref


@pytest.mark.parametrize("op", ["LSTM", "GRU"])
@pytest.mark.parametrize("hidden", [1, 3, 17, 33, 64])
@pytest.mark.parametrize("clip", [None, 2.5])
def test_cell_math_absolute_error(isa, rng, op, hidden, clip):
    model, feeds, ref = _one_step_case(rng, op, hidden, 5, clip)
    for threads in (1, 2):
        so = pyengine.SessionOptions()
        so.intra_op_num_threads = threads
        got = pyengine.InferenceSession(model.SerializeToString(), so).run(None, feeds)
        np.testing.assert_allclose(got[1][0], ref[0], rtol=0, atol=1e-6)
        if op == "LSTM":
            np.testing.assert_allclose(got[2][0], ref[1], rtol=0, atol=1e-6)
