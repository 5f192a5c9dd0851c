"""Losses: values against direct formulas, gradients against central finite
differences in float64, accuracies."""
from __future__ import annotations

import numpy as np
import pytest

from pyengine import train as T
from train_core_helpers import numeric_grad, rel_error


def _targets(name, rng, shape):
    if name == "ce":
        return rng.integers(0, shape[1], shape[0])
    if name == "mse":
        return rng.normal(size=shape)
    return rng.integers(0, 2, shape).astype(np.float64)


LOSSES = {"ce": T.SoftmaxCrossEntropy, "bce_logits": T.BCEWithLogits, "bce": T.BCE, "mse": T.MSE}


@pytest.mark.parametrize("name", list(LOSSES))
def test_loss_gradient(name, rng):
    loss = LOSSES[name]()
    out = rng.normal(size=(5, 4))
    if name == "bce":
        out = rng.uniform(0.05, 0.95, size=(5, 4))
    t = _targets(name, rng, out.shape)
    loss.forward(out, t)
    g = loss.backward()
    assert rel_error(g, numeric_grad(lambda: loss.forward(out, t), out)) < 1e-6


def test_loss_values(rng):
    z = rng.normal(size=(6, 3)) * 3
    y = rng.integers(0, 3, 6)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    assert T.SoftmaxCrossEntropy()(z, y) == pytest.approx(-np.log(p[np.arange(6), y]).mean())
    t = rng.integers(0, 2, z.shape).astype(np.float64)
    s = 1 / (1 + np.exp(-z))
    bce = -(t * np.log(s) + (1 - t) * np.log(1 - s)).mean()
    assert T.BCEWithLogits()(z, t) == pytest.approx(bce)
    assert T.BCE()(s, t) == pytest.approx(bce)
    assert T.MSE()(z, t) == pytest.approx(((z - t) ** 2).mean())


def test_losses_are_stable_for_extreme_logits():
    z = np.array([[1000.0, -1000.0, 0.0]])
    assert np.isfinite(T.SoftmaxCrossEntropy()(z, np.array([1])))
    assert T.SoftmaxCrossEntropy()(z, np.array([1])) == pytest.approx(2000.0)
    bl = T.BCEWithLogits()
    assert bl(np.array([[800.0], [-800.0]]), np.array([[0.0], [1.0]])) == pytest.approx(800.0)
    assert np.all(np.isfinite(bl.backward()))


def test_accuracies():
    z = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]])
    assert T.SoftmaxCrossEntropy().accuracy(z, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert T.BCEWithLogits().accuracy(np.array([[1.0], [-1.0]]), np.array([1, 1])) == 0.5
    assert T.BCE().accuracy(np.array([[0.7], [0.2]]), np.array([1, 0])) == 1.0
    assert T.MSE().accuracy(np.array([[0.9], [0.6]]), np.array([1, 0])) == 0.5


def test_cross_entropy_checks_shapes():
    with pytest.raises(ValueError, match="labels"):
        T.SoftmaxCrossEntropy()(np.zeros((3, 2)), np.zeros(4, int))
