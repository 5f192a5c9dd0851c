"""RNN / LSTM / GRU of pyengine.train: BPTT gradients against central finite
differences (float64), a NumPy reference of the ONNX operator equations, and
export parity with onnxruntime and pyengine at batch 1 and 5."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import pyengine
from pyengine.train.export import to_onnx
from pyengine.train.base import Sequential
from pyengine.train.recurrent import GRU, LSTM, RNN, Bidirectional, ImageRows

LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


# ---- finite-difference gradient check -------------------------------------
def _rel_err(a, b):
    scale = max(np.linalg.norm(a), np.linalg.norm(b), 1e-12)
    return np.linalg.norm(a - b) / scale


def check_gradients(layer, x, seed=0, eps=1e-6, tol=1e-6):
    """Compares backward() with central differences of sum(forward(x) * G)
    for the input and every parameter."""
    rng = np.random.default_rng(seed)
    out = layer.forward(x)
    g = rng.standard_normal(out.shape)
    layer.zero_grad()
    dx = layer.backward(g)

    def loss():
        return float(np.sum(layer.forward(x) * g))

    def numeric(arr):
        num = np.zeros_like(arr)
        flat, nflat = arr.reshape(-1), num.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            nflat[i] = (up - down) / (2 * eps)
        return num

    err = _rel_err(dx, numeric(x))
    assert err < tol, f"input gradient: relative error {err:.2e}"
    for p in layer.parameters():
        err = _rel_err(p.grad, numeric(p.data))
        assert err < tol, f"parameter {p.name} {p.shape}: relative error {err:.2e}"


# ---- NumPy reference of the ONNX operator equations ------------------------
def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def reference(kind, layer, x):
    """Straightforward per-step evaluation of the ONNX equations (zero initial state)."""
    w, r, wb, rb = (p.data.astype(np.float64) for p in (layer.W, layer.R, layer.Wb, layer.Rb))
    n, t, _ = x.shape
    hid = layer.hidden_size
    h = np.zeros((n, hid))
    c = np.zeros((n, hid))
    ys = []
    for s in range(t):
        xt = x[:, s].astype(np.float64)
        if kind == "rnn":
            h = np.tanh(xt @ w.T + h @ r.T + wb + rb)
        elif kind == "lstm":
            a = xt @ w.T + h @ r.T + wb + rb
            i, o, f, cc = np.split(a, 4, axis=1)
            c = _sig(f) * c + _sig(i) * np.tanh(cc)
            h = _sig(o) * np.tanh(c)
        else:
            wz, wr, wh = np.split(w, 3)
            rz, rr, rh = np.split(r, 3)
            bz, br, bh = np.split(wb, 3)
            cz, cr, ch = np.split(rb, 3)
            z = _sig(xt @ wz.T + h @ rz.T + bz + cz)
            rg = _sig(xt @ wr.T + h @ rr.T + br + cr)
            hh = np.tanh(xt @ wh.T + bh + rg * (h @ rh.T + ch))
            h = (1 - z) * hh + z * h
        ys.append(h)
    y = np.stack(ys, axis=1)
    return y if layer.return_sequences else y[:, -1]


# ---- tests -------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("n,t,f,h", [(2, 4, 3, 5), (3, 1, 2, 3), (1, 3, 1, 1)])
def test_gradients(kind, return_sequences, n, t, f, h):
    rng = np.random.default_rng(n * 100 + t * 10 + h)
    layer = LAYERS[kind](f, h, return_sequences=return_sequences, dtype=np.float64, rng=rng)
    x = rng.standard_normal((n, t, f))
    check_gradients(layer, x, seed=t)


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False])
def test_forward_matches_onnx_equations(kind, return_sequences):
    rng = np.random.default_rng(7)
    layer = LAYERS[kind](4, 7, return_sequences=return_sequences, dtype=np.float64, rng=rng)
    # Large weights drive the gates into saturation too.
    for p in layer.parameters():
        p.data *= 3
    x = rng.standard_normal((3, 6, 4)) * 2
    np.testing.assert_allclose(layer.forward(x), reference(kind, layer, x), rtol=1e-12, atol=1e-12)


def test_stacked_layers_gradients():
    rng = np.random.default_rng(3)
    model = Sequential(LSTM(3, 4, return_sequences=True, dtype=np.float64, rng=rng),
                       GRU(4, 3, return_sequences=False, dtype=np.float64, rng=rng))
    check_gradients(model, rng.standard_normal((2, 3, 3)))


def test_backward_accumulates_and_checks_shapes():
    rng = np.random.default_rng(1)
    layer = LSTM(2, 3, return_sequences=False, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 3, 2))
    layer.forward(x)
    layer.backward(np.ones((2, 3)))
    g1 = layer.W.grad.copy()
    layer.forward(x)
    layer.backward(np.ones((2, 3)))
    np.testing.assert_allclose(layer.W.grad, 2 * g1)
    with pytest.raises(ValueError, match="expected input"):
        layer.forward(rng.standard_normal((2, 3, 5)))
    with pytest.raises(ValueError, match="gradient shape"):
        layer.forward(x)
        layer.backward(np.ones((2, 4)))


def test_float32_default_and_dtype_follows():
    layer = GRU(3, 4)
    assert layer.W.data.dtype == np.float32
    assert layer.forward(np.zeros((2, 2, 3), np.float32)).dtype == np.float32
    layer64 = GRU(3, 4, dtype=np.float64)
    assert layer64.forward(np.zeros((2, 2, 3), np.float32)).dtype == np.float64


def _export(layer, f, t, rng):
    return to_onnx(layer, None, rng.standard_normal((2, t, f)).astype(np.float32))


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("t", [1, 6])
def test_export_parity_onnxruntime(kind, return_sequences, t):
    rng = np.random.default_rng(11 + t)
    layer = LAYERS[kind](5, 9, return_sequences=return_sequences, rng=rng)
    sess = ort.InferenceSession(_export(layer, 5, t, rng).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = rng.standard_normal((batch, t, 5)).astype(np.float32)
        want = layer.forward(x)
        got = sess.run(None, {"input": x})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False])
def test_export_parity_pyengine(kind, return_sequences):
    rng = np.random.default_rng(5)
    layer = LAYERS[kind](5, 9, return_sequences=return_sequences, rng=rng)
    sess = pyengine.InferenceSession(_export(layer, 5, 4, rng).SerializeToString())
    for batch in (1, 5):
        x = rng.standard_normal((batch, 4, 5)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"input": x})[0], layer.forward(x), rtol=1e-5, atol=1e-5)


def test_export_single_recurrent_node():
    for kind, cls in LAYERS.items():
        proto = to_onnx(cls(3, 4), None, np.zeros((1, 2, 3), np.float32))
        ops = [n.op_type for n in proto.graph.node]
        assert ops.count(kind.upper()) == 1, ops
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_image_rows():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5))
    y = ImageRows().forward(x)
    assert y.shape == (2, 4, 15)
    np.testing.assert_array_equal(y[1, 2], x[1, :, 2, :].reshape(-1))
    model = Sequential(ImageRows(), LSTM(15, 3, return_sequences=False, dtype=np.float64, rng=rng))
    check_gradients(model, x)
    model32 = Sequential(ImageRows(), GRU(8, 6, return_sequences=False, rng=rng))
    sess = ort.InferenceSession(to_onnx(model32, None, np.zeros((1, 1, 8, 8), np.float32)).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        xb = rng.standard_normal((batch, 1, 8, 8)).astype(np.float32)
        np.testing.assert_allclose(sess.run(None, {"input": xb})[0], model32.forward(xb), rtol=1e-5, atol=1e-5)


def test_digits_lstm_script_smoke(tmp_path):
    """One epoch of models/train_digits_lstm.py, export and onnxruntime check
    (skips until the trainer's data/loss/optimizer/loop modules are merged)."""
    for mod in ("data", "losses", "optim", "loop", "layers"):
        pytest.importorskip(f"pyengine.train.{mod}")
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "models" / "train_digits_lstm.py"
    spec = importlib.util.spec_from_file_location("train_digits_lstm", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "digits_lstm.onnx"
    assert script.main(["--epochs", "1", "--hidden", "16", "--quiet", "--target", "0", "--out", str(out)]) == 0
    assert out.exists()


# ---- Bidirectional ------------------------------------------------------------
def _bi(kind, f, h, return_sequences, rng, dtype=np.float32):
    cls = LAYERS[kind]
    return Bidirectional(cls(f, h, return_sequences=return_sequences, dtype=dtype, rng=rng),
                         cls(f, h, return_sequences=return_sequences, dtype=dtype, rng=rng))


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_gradients(kind, return_sequences):
    rng = np.random.default_rng(21)
    layer = _bi(kind, 3, 4, return_sequences, rng, np.float64)
    check_gradients(layer, rng.standard_normal((2, 5, 3)), seed=4)


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_forward_is_reversed_reference(kind, return_sequences):
    """Forward half: the ONNX equations in time order; reverse half: the same
    equations run over the reversed sequence (its states put back in input
    order; the final state is the one after time step 0)."""
    rng = np.random.default_rng(8)
    layer = _bi(kind, 4, 5, return_sequences, rng, np.float64)
    x = rng.standard_normal((3, 6, 4)) * 2
    want_f = reference(kind, layer.fwd, x)
    want_b = reference(kind, layer.bwd, x[:, ::-1])
    if return_sequences:
        want_b = want_b[:, ::-1]
    got = layer.forward(x)
    assert got.shape == ((3, 6, 10) if return_sequences else (3, 10))
    np.testing.assert_allclose(got, np.concatenate([want_f, want_b], axis=-1), rtol=1e-12, atol=1e-12)


def test_bidirectional_rejects_mismatched_layers():
    with pytest.raises(TypeError, match="one type"):
        Bidirectional(LSTM(3, 4), GRU(3, 4))
    with pytest.raises(ValueError, match="differ"):
        Bidirectional(LSTM(3, 4), LSTM(3, 5))
    with pytest.raises(ValueError, match="differ"):
        Bidirectional(LSTM(3, 4, return_sequences=False), LSTM(3, 4))


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("t", [1, 6])
def test_bidirectional_export_parity(kind, return_sequences, t):
    """One ONNX node (direction=bidirectional); onnxruntime and pyengine
    match the trainer at batch 1 and 5, also inside a stack."""
    rng = np.random.default_rng(31 + t)
    layer = _bi(kind, 5, 9, return_sequences, rng)
    proto = _export(layer, 5, t, rng)
    nodes = [n for n in proto.graph.node if n.op_type == kind.upper()]
    assert len(nodes) == 1 and any(a.name == "direction" and a.s == b"bidirectional" for a in nodes[0].attribute)
    ort_sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    pe_sess = pyengine.InferenceSession(proto.SerializeToString())
    for batch in (1, 5):
        x = rng.standard_normal((batch, t, 5)).astype(np.float32)
        want = layer.forward(x)
        for sess in (ort_sess, pe_sess):
            got = sess.run(None, {"input": x})[0]
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_bidirectional_stack_gradients_and_export():
    rng = np.random.default_rng(4)
    model = Sequential(ImageRows(), _bi("lstm", 8, 3, True, rng, np.float64), _bi("lstm", 6, 2, False, rng, np.float64))
    check_gradients(model, rng.standard_normal((2, 1, 8, 8)))
    model32 = Sequential(ImageRows(), _bi("lstm", 8, 6, True, rng), _bi("lstm", 12, 4, False, rng))
    proto = to_onnx(model32, None, np.zeros((1, 1, 8, 8), np.float32))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    xb = rng.standard_normal((5, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(sess.run(None, {"input": xb})[0], model32.forward(xb), rtol=1e-5, atol=1e-5)
