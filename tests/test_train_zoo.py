"""The zoo models in models/ reach their stated accuracies: each .onnx is
loaded and run by onnxruntime (and pyengine, once it supports the model's
operators) on its test data."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest

from pyengine.train.data import NEURON_SPLITS, load_digits, neuron_data, xor_data
from train_core_helpers import run_ort, run_pyengine

MODELS = Path(__file__).resolve().parent.parent / "models"


def _test_data(name):
    if name == "digits_mlp":
        return load_digits("test", flat=True)
    if name == "digits_cnn":
        return load_digits("test")
    if name == "xor":
        return xor_data()
    return neuron_data(*NEURON_SPLITS["test"])


def _accuracy(out, y):
    pred = out.argmax(axis=1) if out.shape[1] > 1 else (out[:, 0] > 0.5)
    return float((pred == np.asarray(y).reshape(-1)).mean())


# name -> required test accuracy
TARGETS = {"digits_mlp": 0.97, "digits_cnn": 0.985, "xor": 1.0, "neuron": 0.99}


@pytest.mark.parametrize("name", list(TARGETS))
def test_zoo_model_reaches_target(name):
    path = MODELS / f"{name}.onnx"
    assert path.exists(), f"{path} missing: run models/train_{name}.py"
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    X, y = _test_data(name)
    acc = _accuracy(run_ort(path, X), y)
    assert acc >= TARGETS[name], f"{name}: test accuracy {acc:.4f} < target {TARGETS[name]}"
    # The card states the accuracy measured here, and the curves exist.
    card = (MODELS / f"{name}.md").read_text()
    split = "train" if name == "xor" else "test"
    stated = re.search(rf"^\| {split} \| \d+ \| ([\d.]+)% \|", card, re.M)
    assert stated and float(stated.group(1)) == pytest.approx(acc * 100, abs=0.006)
    assert "## Reproduce" in card and (MODELS / f"{name}_curves.csv").exists()


@pytest.mark.parametrize("name", list(TARGETS))
def test_zoo_model_in_pyengine(name):
    path = MODELS / f"{name}.onnx"
    X, _ = _test_data(name)
    np.testing.assert_allclose(run_pyengine(path, X), run_ort(path, X), rtol=1e-5, atol=1e-5)
