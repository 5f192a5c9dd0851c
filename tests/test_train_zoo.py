"""The zoo models in models/ reach their stated accuracies: each .onnx is
loaded and run by onnxruntime and pyengine on its test data; the sequence
models' architectures (built by their scripts) also run in pyengine at parity
with the trainer's own forward pass."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import onnx
import pytest

from pyengine.train.data import NEURON_SPLITS, load_digits, neuron_data, xor_data
import pyengine
from pyengine import train as T
from train_core_helpers import run_ort

MODELS = Path(__file__).resolve().parent.parent / "models"


def _test_data(name):
    if name == "digits_mlp":
        return load_digits("test", flat=True)
    if name in ("digits_cnn", "digits_lstm", "digits_transformer"):
        return load_digits("test")
    if name == "xor":
        return xor_data()
    return neuron_data(*NEURON_SPLITS["test"])


def _accuracy(out, y):
    pred = out.argmax(axis=1) if out.shape[1] > 1 else (out[:, 0] > 0.5)
    return float((pred == np.asarray(y).reshape(-1)).mean())


# name -> required test accuracy
TARGETS = {"digits_mlp": 0.97, "digits_cnn": 0.985, "xor": 1.0, "neuron": 0.99,
           "digits_lstm": 0.97, "digits_transformer": 0.96}


@pytest.mark.parametrize("name", list(TARGETS))
def test_zoo_model_reaches_target(name):
    path = MODELS / f"{name}.onnx"
    assert path.exists(), f"{path} missing: run models/train_{name}.py"
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    X, y = _test_data(name)
    acc = _accuracy(run_ort(path, X), y)
    # The card states the accuracy measured here, and the curves exist.
    card = (MODELS / f"{name}.md").read_text()
    split = "train" if name == "xor" else "test"
    stated = re.search(rf"^\| {split} \| \d+ \| ([\d.]+)% \|", card, re.M)
    assert stated and float(stated.group(1)) == pytest.approx(acc * 100, abs=0.006)
    assert "## Reproduce" in card and (MODELS / f"{name}_curves.csv").exists()
    pictures = [f"{name}_curves.png"] + ([f"{name}_filters.png"] if name == "digits_cnn" else [])
    for png in pictures:
        assert (MODELS / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png in card
    if name in ("digits_lstm", "digits_transformer"):
        assert path.stat().st_size < 1 << 20, f"{name}.onnx is over 1 MB"
    assert acc >= TARGETS[name], f"{name}: test accuracy {acc:.4f} < target {TARGETS[name]}"


@pytest.mark.parametrize("name", list(TARGETS))
def test_zoo_model_in_pyengine(name):
    path = MODELS / f"{name}.onnx"
    X, _ = _test_data(name)
    sess = pyengine.InferenceSession(str(path))  # every zoo model must run: no skip
    got = sess.run(None, {sess.get_inputs()[0].name: X})[0]
    np.testing.assert_allclose(got, run_ort(path, X), rtol=1e-5, atol=1e-5)


def _script(name):
    spec = importlib.util.spec_from_file_location(f"train_{name}", MODELS / f"train_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name,options", [("digits_lstm", {}), ("digits_lstm", {"readout": "flatten"}),
                                          ("digits_lstm", {"bidir": 1, "hidden": 64}), ("digits_transformer", {})])
def test_zoo_sequence_model_pyengine_matches_trainer(name, options):
    """The scripts' architectures (default sizes, and digits_lstm's other
    options; weights perturbed so every gate and bias matters) exported and
    run by pyengine equal the trainer's eval-mode forward pass, on digits and
    on random inputs, batch 1 and 7."""
    rng = np.random.default_rng(3)
    body = _script(name).build(seed=1, **options)
    for p in body.parameters():
        p.data += (0.1 * rng.standard_normal(p.data.shape)).astype(p.data.dtype)
    model = T.Sequential(*body.layers, T.Softmax()).eval()
    X = load_digits("test")[0]
    sess = pyengine.InferenceSession(T.to_onnx(model, None, X[:1]).SerializeToString())
    logits = pyengine.InferenceSession(T.to_onnx(body, None, X[:1]).SerializeToString())
    for x in (X[:1], X[:7], rng.standard_normal((7, 1, 8, 8)).astype(np.float32), X):
        np.testing.assert_allclose(sess.run(None, {"input": x})[0], model.forward(x), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(logits.run(None, {"input": x})[0], body.forward(x), rtol=1e-4, atol=1e-4)


def test_digits_lstm_affine_augment():
    """Without rotation or zoom it is a whole-pixel shift (as shift_augment);
    with them it keeps shape, dtype and range, and moves the image."""
    augment = _script("digits_lstm").affine_augment
    X = load_digits("val")[0][:40]
    out = augment(X, np.random.default_rng(0), max_shift=1, rot=0.0, scale=0.0)
    padded = np.pad(X[:, 0], ((0, 0), (1, 1), (1, 1)))
    for i in range(len(X)):
        shifts = [padded[i, 1 - dy:9 - dy, 1 - dx:9 - dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        assert any(np.array_equal(out[i, 0], s) for s in shifts), i
    np.testing.assert_array_equal(augment(X, np.random.default_rng(0), 0, 0.0, 0.0), X)
    out = augment(X, np.random.default_rng(1), max_shift=1, rot=10.0, scale=0.1)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6 and not np.allclose(out, X)
