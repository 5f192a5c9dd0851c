"""im2col/col2im: the Cython version when it is built, else pure NumPy.

For x (N, C, H, W) the columns are (N, C, kh, kw, oh, ow):
cols[n, c, i, j, y, x] = x[n, c, y*sh - ph + i*dh, x*sw - pw + j*dw], zero
outside the image. Conv2D reshapes them to (N, C*kh*kw, oh*ow) and multiplies
by the weights; the pools reduce over (kh, kw). col2im is the adjoint (it adds
overlapping windows back), used by the backward passes. Both implementations
visit the kernel offsets (i, j) in the same order, so they agree bit for bit.
"""
from __future__ import annotations

import numpy as np

try:  # built by CMake from _im2col.pyx; optional
    from . import _im2col as _native
except ImportError:  # pragma: no cover - depends on the build
    _native = None

HAVE_CYTHON = _native is not None


def out_size(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def im2col_numpy(x, kh, kw, sh=1, sw=1, ph=0, pw=0, dh=1, dw=1):
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    cols = np.zeros((n, c, kh, kw, max(oh, 0), max(ow, 0)), dtype=x.dtype)
    if oh <= 0 or ow <= 0:
        return cols
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw
            cols[:, :, i, j] = xp[:, :, y0:y0 + sh * (oh - 1) + 1:sh, x0:x0 + sw * (ow - 1) + 1:sw]
    return cols


def col2im_numpy(cols, h, w, sh=1, sw=1, ph=0, pw=0, dh=1, dw=1):
    n, c, kh, kw, oh, ow = cols.shape
    # Padded canvas large enough for every window, cropped at the end.
    hp = max(h + 2 * ph, (kh - 1) * dh + sh * (oh - 1) + 1)
    wp = max(w + 2 * pw, (kw - 1) * dw + sw * (ow - 1) + 1)
    xp = np.zeros((n, c, hp, wp), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            y0, x0 = i * dh, j * dw
            xp[:, :, y0:y0 + sh * (oh - 1) + 1:sh, x0:x0 + sw * (ow - 1) + 1:sw] += cols[:, :, i, j]
    return np.ascontiguousarray(xp[:, :, ph:ph + h, pw:pw + w])


def _native_ok(a) -> bool:
    return _native is not None and a.dtype in (np.float32, np.float64)


def im2col(x, kh, kw, sh=1, sw=1, ph=0, pw=0, dh=1, dw=1):
    if _native_ok(x):
        return _native.im2col(np.ascontiguousarray(x), kh, kw, sh, sw, ph, pw, dh, dw)
    return im2col_numpy(x, kh, kw, sh, sw, ph, pw, dh, dw)


def col2im(cols, h, w, sh=1, sw=1, ph=0, pw=0, dh=1, dw=1):
    if _native_ok(cols):
        return _native.col2im(np.ascontiguousarray(cols), h, w, sh, sw, ph, pw, dh, dw)
    return col2im_numpy(cols, h, w, sh, sw, ph, pw, dh, dw)
