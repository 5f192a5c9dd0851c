"""Shared helpers of the trainer tests: finite-difference gradient checks and
ONNX parity runs (onnxruntime and pyengine)."""
from __future__ import annotations

import numpy as np
import pytest

EPS = 1e-6


def rel_error(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / denom) if denom > 1e-12 else 0.0


def numeric_grad(f, arr):
    """Central differences of scalar f() with respect to every element of arr (modified in place)."""
    g = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        fp = f()
        flat[i] = old - EPS
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * EPS)
    return g


def check_layer_grads(layer, x, rng, tol=1e-6, input_grad=True):
    """Compares a layer's backward (input and parameter gradients) with central
    differences of sum(forward(x) * g) in float64."""
    layer.astype(np.float64)
    if x.dtype.kind == "f":
        x = x.astype(np.float64)
    y = layer.forward(x)
    g = rng.normal(size=y.shape)
    layer.zero_grad()
    dx = layer.backward(g)

    def f():
        return float(np.sum(layer.forward(x) * g))

    if input_grad:
        err = rel_error(dx, numeric_grad(f, x))
        assert err < tol, f"{type(layer).__name__}: input gradient relative error {err:.2e}"
    for p in layer.parameters():
        analytic = p.grad.copy()
        err = rel_error(analytic, numeric_grad(f, p.data))
        assert err < tol, f"{type(layer).__name__}: gradient of {p.name} relative error {err:.2e}"
    return dx


def run_ort(path, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def run_pyengine(path, x):
    """pyengine's output, or a skip while pyengine lacks one of the model's operators."""
    import pyengine
    try:
        sess = pyengine.InferenceSession(str(path))
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]
    except pyengine.UnsupportedOperatorError as e:
        pytest.skip(f"pyengine does not support this model yet: {e}")
