"""The SGEMM kernels of every ISA (scalar reference, AVX2/FMA and AVX-512),
called directly through pyengine._engine.testing.sgemm and checked against
NumPy in float64: shapes around the microkernel tiles (AVX2 6x16, AVX-512
12x32) and the cache blocks (KC = 256, MC = 48, NC = 2048 / 1024), all
transpose combinations, alpha/beta, fused bias and activation, pre-packed B,
and results bit-identical across thread counts.
Inputs sit against an unreadable guard page, so any read past the end of an
operand crashes the test instead of passing silently."""
from __future__ import annotations

import ctypes
import mmap

import numpy as np
import pytest

from pyengine._engine import testing

ACTS = {
    "": lambda x, a, b: x,
    "Relu": lambda x, a, b: np.maximum(x, 0),
    "LeakyRelu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "Clip": lambda x, a, b: np.clip(x, a, b),
    "Sigmoid": lambda x, a, b: 1 / (1 + np.exp(-x)),
    "Tanh": lambda x, a, b: np.tanh(x),
    "HardSigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1),
    "Elu": lambda x, a, b: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1)),
}
ACT_PARAMS = {"LeakyRelu": (0.1, 0.0), "Clip": (-0.5, 0.7), "HardSigmoid": (0.2, 0.5), "Elu": (0.9, 0.0)}

_PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def guarded(values: np.ndarray) -> np.ndarray:
    """A float32 copy of `values` whose last element is the last readable
    float before a PROT_NONE page: over-reads fault instead of going unseen."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    nbytes = values.nbytes
    pages = (nbytes + _PAGE - 1) // _PAGE
    buf = mmap.mmap(-1, (pages + 1) * _PAGE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    if _libc.mprotect(addr + pages * _PAGE, _PAGE, 0) != 0:
        pytest.skip("mprotect unavailable")
    arr = np.frombuffer(buf, dtype=np.float32, count=values.size, offset=pages * _PAGE - nbytes)
    arr = arr.reshape(values.shape)
    arr[...] = values
    return arr


def reference(ta, tb, alpha, a, b, beta, c, bias, bias_row, act, aa, ab):
    A = (a.T if ta else a).astype(np.float64)
    B = (b.T if tb else b).astype(np.float64)
    y = alpha * (A @ B)
    scale = abs(alpha) * (np.abs(A) @ np.abs(B))
    if beta != 0:
        y += beta * c.astype(np.float64)
        scale += abs(beta) * np.abs(c.astype(np.float64))
    if bias is not None:
        y += bias[None, :]
        scale += np.abs(bias)[None, :]
    if bias_row is not None:
        y += bias_row[:, None]
        scale += np.abs(bias_row)[:, None]
    return ACTS[act](y, aa, ab), scale


def run_case(isa, rng, M, N, K, ta=False, tb=False, alpha=1.0, beta=0.0, bias=False, bias_row=False,
             act="", packed=False, threads=1, check=True):
    """Runs one product on guarded inputs and checks it; returns the result."""
    a = guarded(rng.standard_normal((K, M) if ta else (M, K)))
    b = guarded(rng.standard_normal((N, K) if tb else (K, N)))
    c0 = rng.standard_normal((M, N)).astype(np.float32)
    # beta == 0 must overwrite C without reading it: NaN would leak through.
    c = guarded(c0 if beta != 0 else np.full((M, N), np.nan, np.float32))
    bc = guarded(rng.standard_normal(N)) if bias else None
    br = guarded(rng.standard_normal(M)) if bias_row else None
    aa, ab = ACT_PARAMS.get(act, (0.0, 0.0))
    testing.sgemm(isa, ta, tb, alpha, a, b, beta, c, bias=bc, activation=act, act_alpha=aa, act_beta=ab,
                  packed=packed, threads=threads, bias_row=br)
    if check:
        want, scale = reference(ta, tb, alpha, a, b, beta, c0, bc, br, act, aa, ab)
        # Float32 accumulation error bound (K products summed, blocked) plus
        # the activation's own rounding.
        tol = 2.4e-7 * (K + 8) * scale + 2e-6 * (np.abs(want) + 1)
        err = np.abs(c.astype(np.float64) - want)
        bad = ~(err <= tol)  # also catches NaN
        if bad.any():
            i, j = np.argwhere(bad)[0]
            pytest.fail(f"{isa} M={M} N={N} K={K} ta={ta} tb={tb} alpha={alpha} beta={beta} bias={bias} "
                        f"bias_row={bias_row} act={act!r} packed={packed} threads={threads}: C[{i},{j}]="
                        f"{c[i, j]!r}, expected {want[i, j]!r} (tol {tol[i, j]:.3g}); {int(bad.sum())} bad")
    return np.array(c)


# Values around the microkernel tiles (MR=6/12, NR=16/32) and the cache blocks
# (MC=48 rows, KC=256, NC=2048/1024 columns) plus 0, 1 and off-by-{1,3,7,15}.
M_SWEEP = [0, 1, 2, 3, 5, 6, 7, 9, 11, 12, 13, 21, 23, 24, 25, 33, 41, 45, 47, 48, 49, 51, 55, 63, 95, 96, 97, 143,
           144, 145, 159, 191, 192, 193]
N_SWEEP = [0, 1, 2, 7, 8, 9, 15, 16, 17, 19, 23, 31, 32, 33, 47, 63, 64, 65, 79, 95, 96, 97]
K_SWEEP = [0, 1, 2, 5, 9, 17, 255, 256, 257, 259, 263, 271, 241, 513]
TRANS = [(False, False), (False, True), (True, False), (True, True)]


# The AVX2 kernel reads A in place for products up to 128 columns wide and
# packs it beyond: sweeps use both a narrow and a wide N.
NARROW_WIDE = [(1, 40), (129, 170)]


@pytest.mark.parametrize("packed", [False, True], ids=["unpacked", "packed"])
def test_sweep_m(isa, rng, packed):
    for M in M_SWEEP:
        for ta, tb in TRANS:
            for lo, hi in NARROW_WIDE:
                run_case(isa, rng, M, int(rng.integers(lo, hi)), int(rng.integers(1, 40)), ta, tb, packed=packed)


@pytest.mark.parametrize("packed", [False, True], ids=["unpacked", "packed"])
def test_sweep_n(isa, rng, packed):
    for N in N_SWEEP:
        for ta, tb in TRANS:
            for M in (1, 4, 11):  # M == 1 takes the matrix-vector path
                run_case(isa, rng, M, N, int(rng.integers(1, 40)), ta, tb, packed=packed)


@pytest.mark.parametrize("packed", [False, True], ids=["unpacked", "packed"])
def test_sweep_k(isa, rng, packed):
    for K in K_SWEEP:
        for ta, tb in TRANS:
            for M in (1, 8, 50):
                for lo, hi in NARROW_WIDE:
                    run_case(isa, rng, M, int(rng.integers(lo, hi)), K, ta, tb, packed=packed)


@pytest.mark.parametrize("M,N,K", [(150, 70, 520), (7, 2048 + 19, 9), (1, 2048 + 77, 33), (1, 4096 + 77, 6),
                                   (290, 33, 300)])
def test_multi_block(isa, rng, M, N, K):
    """Several MC, NC and KC blocks at once, with beta and the epilogue."""
    for ta, tb in TRANS:
        for packed in (False, True):
            run_case(isa, rng, M, N, K, ta, tb, alpha=0.75, beta=0.5, bias=True, act="Relu", packed=packed)


def test_vector_shapes(isa, rng):
    """M == 1 (row vector @ B) and N == 1 (A @ column vector) have own paths."""
    for n in (1, 2, 15, 16, 17, 33, 64, 65, 100):
        for K in (1, 7, 15, 16, 17, 40):
            for ta, tb in TRANS:
                packed = bool(rng.integers(2))
                run_case(isa, rng, 1, n, K, ta, tb, alpha=0.5, beta=0.5, bias=True, bias_row=True, act="Elu",
                         packed=packed)
                run_case(isa, rng, n, 1, K, ta, tb, alpha=0.5, beta=0.5, bias=True, bias_row=True, act="Relu",
                         packed=packed)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (1.0, 1.0), (-0.5, 2.0), (2.5, -1.0), (0.0, 0.5), (0.3, 0.0)])
def test_alpha_beta(isa, rng, alpha, beta):
    for M, N, K in [(1, 37, 19), (5, 16, 300), (13, 23, 7), (20, 70, 260), (3, 5, 0)]:
        for ta, tb in TRANS:
            for packed in (False, True):
                run_case(isa, rng, M, N, K, ta, tb, alpha=alpha, beta=beta, packed=packed)


@pytest.mark.parametrize("act", list(ACTS))
def test_bias_and_activation(isa, rng, act):
    for M, N, K in [(1, 70, 33), (1, 9, 5), (7, 19, 270), (14, 33, 12), (4, 3, 0)]:
        for bias, bias_row in [(True, False), (False, True), (True, True), (False, False)]:
            for packed in (False, True):
                ta, tb = TRANS[int(rng.integers(4))]
                run_case(isa, rng, M, N, K, ta, tb, alpha=1.25, beta=0.5 if bias_row else 0.0, bias=bias,
                         bias_row=bias_row, act=act, packed=packed)


@pytest.mark.parametrize("M,N,K", [(97, 301, 270), (300, 40, 100), (5, 500, 130), (1, 1000, 300), (1, 777, 64),
                                   (61, 2100, 20), (260, 260, 530), (300, 1, 70), (1, 4100, 9)])
def test_threads_bit_identical(isa, M, N, K):
    """Each C element is reduced in the same order whatever the thread split."""
    for ta, tb in TRANS:
        for packed in (False, True):
            results = []
            for threads in (1, 2, 3, 16):
                rng = np.random.default_rng(M * 1000 + N + K)  # same inputs for each thread count
                results.append(run_case(isa, rng, M, N, K, ta, tb, alpha=0.9, beta=0.0, bias=True, act="Tanh",
                                        packed=packed, threads=threads, check=threads == 1))
            for threads, r in zip((2, 3, 16), results[1:]):
                assert np.array_equal(r, results[0]), (
                    f"{isa} M={M} N={N} K={K} ta={ta} tb={tb} packed={packed}: threads={threads} differs from 1")


def test_random_shapes(isa, rng):
    for _ in range(40):
        M, N, K = (int(v) for v in rng.integers(0, 90, 3))
        N += int(rng.choice([0, 120]))  # narrow and wide products
        ta, tb = TRANS[int(rng.integers(4))]
        act = list(ACTS)[int(rng.integers(len(ACTS)))]
        run_case(isa, rng, M, N, K, ta, tb, alpha=float(rng.uniform(-2, 2)), beta=float(rng.choice([0.0, 0.7])),
                 bias=bool(rng.integers(2)), bias_row=bool(rng.integers(2)), act=act,
                 packed=bool(rng.integers(2)), threads=int(rng.integers(1, 4)))


def test_shape_errors():
    a = np.zeros((3, 4), np.float32)
    b = np.zeros((5, 6), np.float32)
    c = np.zeros((3, 6), np.float32)
    with pytest.raises(ValueError, match="shape mismatch"):
        testing.sgemm("scalar", False, False, 1.0, a, b, 0.0, c)
