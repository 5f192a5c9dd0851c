# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled im2col/col2im for Conv2D and the pools.

Layout (shared with the NumPy fallback in conv_utils.py): for an input
(N, C, H, W), `cols` is (N, C, kh, kw, oh, ow), i.e. cols[n, c, i, j, y, x] =
x[n, c, y*sh - ph + i*dh, x*sw - pw + j*dw] (0 outside the image). col2im adds
the columns back in the same (i, j) order as the NumPy version, so both give
bit-identical results.
"""
import numpy as np

ctypedef fused real:
    float
    double


def im2col(const real[:, :, :, ::1] x, int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw):
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t oh = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    cdef Py_ssize_t ow = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    dtype = np.float32 if real is float else np.float64
    out = np.zeros((N, C, kh, kw, max(oh, 0), max(ow, 0)), dtype=dtype)
    if oh <= 0 or ow <= 0:
        return out
    cdef real[:, :, :, :, :, ::1] cols = out
    cdef Py_ssize_t n, c, i, j, y, xx, iy, ix
    with nogil:
        for n in range(N):
            for c in range(C):
                for i in range(kh):
                    for j in range(kw):
                        for y in range(oh):
                            iy = y * sh - ph + i * dh
                            if iy < 0 or iy >= H:
                                continue
                            for xx in range(ow):
                                ix = xx * sw - pw + j * dw
                                if 0 <= ix < W:
                                    cols[n, c, i, j, y, xx] = x[n, c, iy, ix]
    return out


def col2im(const real[:, :, :, :, :, ::1] cols, int H, int W, int sh, int sw, int ph, int pw, int dh, int dw):
    cdef Py_ssize_t N = cols.shape[0], C = cols.shape[1], kh = cols.shape[2], kw = cols.shape[3]
    cdef Py_ssize_t oh = cols.shape[4], ow = cols.shape[5]
    dtype = np.float32 if real is float else np.float64
    out = np.zeros((N, C, H, W), dtype=dtype)
    cdef real[:, :, :, ::1] x = out
    cdef Py_ssize_t n, c, i, j, y, xx, iy, ix
    with nogil:
        for n in range(N):
            for c in range(C):
                for i in range(kh):
                    for j in range(kw):
                        for y in range(oh):
                            iy = y * sh - ph + i * dh
                            if iy < 0 or iy >= H:
                                continue
                            for xx in range(ow):
                                ix = xx * sw - pw + j * dw
                                if 0 <= ix < W:
                                    x[n, c, iy, ix] += cols[n, c, i, j, y, xx]
    return out
