"""The Cython im2col/col2im agree with the NumPy fallback, and col2im is
the adjoint of im2col (<im2col(x), c> == <x, col2im(c)>)."""
from __future__ import annotations

import numpy as np
import pytest

from pyengine.train import im2col as I

GEOMETRIES = [  # (N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw)
    (2, 3, 5, 6, 3, 3, 1, 1, 0, 0, 1, 1),
    (1, 2, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1),
    (3, 1, 8, 5, 2, 3, 1, 2, 1, 0, 1, 1),
    (2, 2, 9, 9, 3, 3, 1, 1, 2, 2, 2, 2),
    (1, 4, 4, 4, 4, 4, 1, 1, 0, 0, 1, 1),
    (1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1),
    (2, 1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1),
    (0, 2, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1),   # empty batch
    (1, 2, 2, 2, 3, 3, 1, 1, 0, 0, 1, 1),   # window larger than the image: no output
]


@pytest.mark.parametrize("geom", GEOMETRIES, ids=str)
def test_adjoint(geom, rng):
    n, c, h, w, *k = geom
    x = rng.normal(size=(n, c, h, w))
    cols = I.im2col_numpy(x, *k)
    r = rng.normal(size=cols.shape)
    np.testing.assert_allclose(np.sum(cols * r), np.sum(x * I.col2im_numpy(r, h, w, *k[2:])), rtol=1e-10,
                               atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", GEOMETRIES, ids=str)
def test_cython_matches_numpy(geom, dtype, rng):
    if not I.HAVE_CYTHON:
        pytest.skip("pyengine.train._im2col is not built (scripts/dev_build.sh builds it)")
    n, c, h, w, *k = geom
    x = rng.normal(size=(n, c, h, w)).astype(dtype)
    cols = I._native.im2col(x, *k)
    ref = I.im2col_numpy(x, *k)
    assert cols.dtype == dtype and cols.shape == ref.shape
    np.testing.assert_array_equal(cols, ref)
    r = rng.normal(size=ref.shape).astype(dtype)
    back = I._native.col2im(r, h, w, *k[2:])
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, I.col2im_numpy(r, h, w, *k[2:]))  # same summation order


def test_dispatch_falls_back_for_other_dtypes():
    x = np.arange(16, dtype=np.int32).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(I.im2col(x, 2, 2, 2, 2), I.im2col_numpy(x, 2, 2, 2, 2))


def test_layers_give_same_numbers_with_numpy_fallback(monkeypatch, rng):
    from pyengine import train as T
    T.seed(3)
    model = T.Sequential(T.Conv2D(2, 4, 3, stride=2, padding=1, groups=2), T.MaxPool2D(2), T.AvgPool2D(1))
    x = rng.normal(size=(3, 2, 9, 8)).astype(np.float32)
    y1 = model.forward(x)
    g1 = model.backward(np.ones_like(y1))
    monkeypatch.setattr(I, "_native", None)
    y2 = model.forward(x)
    g2 = model.backward(np.ones_like(y2))
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(g1, g2)
