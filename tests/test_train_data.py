"""The fixed digits split and the shift augmentation."""
from __future__ import annotations

import numpy as np
import pytest

from pyengine.train import data

pytest.importorskip("sklearn")


def test_split_is_fixed_disjoint_and_stratified():
    _, y = data._raw()
    parts = data.split_indices(y)
    sizes = {k: len(v) for k, v in parts.items()}
    assert sizes == {"train": 1079, "val": 359, "test": 359}  # the documented split
    assert sizes["test"] >= 0.2 * len(y) - 1
    allidx = np.concatenate(list(parts.values()))
    assert len(np.unique(allidx)) == len(y) == 1797
    for k in ("val", "test"):
        frac = np.bincount(y[parts[k]], minlength=10) / np.bincount(y, minlength=10)
        assert np.all(np.abs(frac - 0.2) < 0.02)
    again = data.split_indices(y)
    for k in parts:
        np.testing.assert_array_equal(parts[k], again[k])
    # Pinned: the first test indices must never change (models and cards depend on them).
    assert parts["test"][:8].tolist() == [5, 9, 12, 14, 16, 17, 19, 23]
    assert parts["val"][:8].tolist() == [0, 1, 6, 10, 11, 15, 20, 25]


def test_load_digits_shapes_and_scaling():
    X, y = data.load_digits("test")
    assert X.shape == (359, 1, 8, 8) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    Xf, yf = data.load_digits("test", flat=True)
    np.testing.assert_array_equal(Xf, X.reshape(359, 64))
    np.testing.assert_array_equal(y, yf)
    with pytest.raises(ValueError, match="split"):
        data.load_digits("holdout")


def test_shift_augment():
    X = np.zeros((50, 1, 8, 8), np.float32)
    X[:, 0, 4, 4] = 1.0
    out = data.shift_augment(X, np.random.default_rng(0))
    assert out.shape == X.shape and out.dtype == np.float32
    assert np.all(out.sum(axis=(1, 2, 3)) == 1.0)  # the pixel moved, never lost
    pos = np.argwhere(out[:, 0] == 1.0)[:, 1:]
    assert np.all(np.abs(pos - 4) <= 1) and len(np.unique(pos, axis=0)) > 3
    flat = data.shift_augment(X.reshape(50, 64), np.random.default_rng(0))
    np.testing.assert_array_equal(flat, out.reshape(50, 64))


def test_toy_data():
    X, y = data.xor_data()
    assert y.ravel().tolist() == [0, 1, 1, 0]
    Xn, yn = data.neuron_data(100, 0)
    assert Xn.shape == (100, 2) and set(np.unique(yn)) == {0.0, 1.0}
    np.testing.assert_array_equal(yn[:, 0], 2 * Xn[:, 0] - Xn[:, 1] > 0.25)
