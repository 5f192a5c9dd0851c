"""The 8x8 handwritten digits bundled with scikit-learn (1,797 images, no
download) with ONE fixed split that every model and test uses.

Split (stratified by class, seed SPLIT_SEED = 0): within each class the
samples are shuffled by numpy.random.default_rng(0) (classes visited in order
0..9, one generator), then the first round(20%) go to test, the next
round(20%) to val and the rest to train: 1,079 train / 359 val / 359 test
(60/20/20). It is computed here with NumPy alone, so it does not depend on
scikit-learn's splitter. Pixels (0..16) are scaled to float32 in [0, 1].
"""
from __future__ import annotations

import numpy as np

SPLIT_SEED = 0
VAL_FRACTION = 0.2
TEST_FRACTION = 0.2
SPLITS = ("train", "val", "test")


def _raw():
    try:
        from sklearn.datasets import load_digits as _sk_load
    except ImportError as e:  # pragma: no cover - sklearn is in the train/test extras
        raise ImportError("load_digits needs scikit-learn: pip install 'pyengine[train]'") from e
    d = _sk_load()
    return d.images.astype(np.float32) / np.float32(16.0), d.target.astype(np.int64)


def split_indices(y, seed: int = SPLIT_SEED, val_fraction: float = VAL_FRACTION,
                  test_fraction: float = TEST_FRACTION) -> dict:
    """{'train','val','test'} -> sorted index arrays, stratified by label."""
    rng = np.random.default_rng(seed)
    parts = {s: [] for s in SPLITS}
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    return {s: np.sort(np.concatenate(v)) for s, v in parts.items()}


def load_digits(split: str = "train", flat: bool = False):
    """(X, y) of one split: X float32 in [0, 1], shaped (N, 1, 8, 8), or
    (N, 64) with flat=True; y int64 labels 0..9."""
    if split not in SPLITS:
        raise ValueError(f"load_digits: split must be one of {SPLITS}, got {split!r}")
    images, labels = _raw()
    idx = split_indices(labels)[split]
    X = images[idx][:, None, :, :]
    return (X.reshape(len(idx), 64) if flat else X), labels[idx]


def shift_augment(X, rng, max_shift: int = 1):
    """Moves each image by a random whole-pixel offset in [-max_shift,
    max_shift] along each axis, filling with zeros (background). Accepts
    (N, 1, 8, 8) or flat (N, 64) batches; meant for the training split only."""
    X = np.asarray(X)
    flat = X.ndim == 2
    imgs = X.reshape(len(X), -1, 8, 8) if flat else X
    n, c, h, w = imgs.shape
    s = max_shift
    padded = np.pad(imgs, ((0, 0), (0, 0), (s, s), (s, s)))
    dy = rng.integers(-s, s + 1, n)
    dx = rng.integers(-s, s + 1, n)
    rows = (np.arange(h)[None, :] + s - dy[:, None])  # (n, h): source row per output row
    cols = (np.arange(w)[None, :] + s - dx[:, None])
    out = padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]
    return out.reshape(X.shape).astype(X.dtype, copy=False)


# ---------------------------------------------------------------- toy problems
def xor_data():
    """The four XOR points (float32 (4, 2)) and their labels (float32 (4, 1))."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    return X, (X[:, :1] != X[:, 1:]).astype(np.float32)


NEURON_RULE = "y = 1 if 2*x0 - x1 > 0.25 else 0, with x uniform in [-1, 1]^2"
#: The neuron model's splits: name -> (samples, data seed).
NEURON_SPLITS = {"train": (400, 1), "val": (200, 2), "test": (400, 3)}


def neuron_data(n: int, seed: int):
    """Points for the single-neuron model: NEURON_RULE, a linearly separable
    rule. Points within 0.02 of the boundary are dropped so the rule is
    learnable to 100%. Returns X float32 (n, 2), y float32 (n, 1)."""
    rng = np.random.default_rng(seed)
    X = np.empty((0, 2), np.float32)
    while len(X) < n:
        pts = rng.uniform(-1, 1, (2 * n, 2)).astype(np.float32)
        margin = (2 * pts[:, 0] - pts[:, 1] - 0.25) / np.sqrt(5.0)
        X = np.concatenate([X, pts[np.abs(margin) > 0.02]])
    X = X[:n]
    return X, (2 * X[:, :1] - X[:, 1:] > 0.25).astype(np.float32)
