"""Pre-packed A operand (pack_a + sgemm_packed_a, used for constant convolution
weights): for every ISA the result must be bit-identical to the plain sgemm
(and to sgemm_packed when B is pre-packed too) on the same operands, on 1, 2
and 3 threads, and match NumPy. Shapes sweep M, N, K around the microkernel
tiles (AVX2 6x16, AVX-512 12x32) and the blocks (KC = 256, MC = 48): base +0,
+1, +3, +7, +15. Operands sit against a guard page (over-reads crash)."""
from __future__ import annotations

import numpy as np
import pytest

from pyengine._engine import testing
from test_gemm_kernel import ACT_PARAMS, guarded, reference

OFFSETS = (0, 1, 3, 7, 15)


def run(isa, ta, tb, alpha, a, b, beta, c0, bias, bias_row, act, packed_a, packed_b, threads):
    c = guarded(c0).copy()
    aa, ab = ACT_PARAMS.get(act, (0.0, 0.0))
    testing.sgemm(isa, ta, tb, alpha, a, b, beta, c, bias=bias, activation=act, act_alpha=aa, act_beta=ab,
                  packed=packed_b, threads=threads, bias_row=bias_row, packed_a=packed_a)
    return c


def check(isa, rng, M, N, K, ta=False, tb=False, alpha=1.0, beta=0.0, bias=False, bias_row=False, act="",
          packed_b=False, threads=(1, 2, 3)):
    a = guarded(rng.standard_normal((K, M) if ta else (M, K)))
    b = guarded(rng.standard_normal((N, K) if tb else (K, N)))
    c0 = rng.standard_normal((M, N)).astype(np.float32)
    bc = guarded(rng.standard_normal(N)) if bias else None
    br = guarded(rng.standard_normal(M)) if bias_row else None
    args = (isa, ta, tb, alpha, a, b, beta, c0, bc, br, act)
    want = run(*args, False, packed_b, 1)
    what = f"{isa} M={M} N={N} K={K} ta={ta} tb={tb} alpha={alpha} beta={beta} act={act} packed_b={packed_b}"
    for t in threads:
        got = run(*args, True, packed_b, t)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), f"{what} threads={t}: packed A differs"
    # and the common result is right (guards against both paths being wrong alike)
    y, scale = reference(ta, tb, alpha, a, b, beta, c0, bc, br, act, *ACT_PARAMS.get(act, (0.0, 0.0)))
    tol = 1e-5 * (scale + 1) * max(1, K) ** 0.5
    assert np.all(np.abs(want - y) <= tol), what


@pytest.mark.parametrize("packed_b", [False, True])
def test_sweep_m(isa, rng, packed_b):
    for base in (6, 12, 48):
        for off in OFFSETS:
            M = base + off - (1 if off == 0 else 0)
            ta, tb = bool(rng.integers(2)), bool(rng.integers(2))
            check(isa, rng, M, int(rng.integers(20, 300)), int(rng.integers(1, 40)), ta, tb, packed_b=packed_b)


@pytest.mark.parametrize("packed_b", [False, True])
def test_sweep_n(isa, rng, packed_b):
    for base in (16, 32, 128, 256):
        for off in OFFSETS:
            ta, tb = bool(rng.integers(2)), bool(rng.integers(2))
            check(isa, rng, int(rng.integers(13, 60)), base + off, int(rng.integers(1, 40)), ta, tb,
                  packed_b=packed_b)


@pytest.mark.parametrize("packed_b", [False, True])
def test_sweep_k(isa, rng, packed_b):
    for base in (1, 8, 256, 512):
        for off in OFFSETS:
            ta, tb = bool(rng.integers(2)), bool(rng.integers(2))
            check(isa, rng, int(rng.integers(13, 60)), int(rng.integers(100, 200)), base + off, ta, tb,
                  packed_b=packed_b, threads=(1, 2))


def test_small_and_vector_shapes(isa, rng):
    # M == 1 / N == 1 take the matrix-vector paths (plain A); 0 sizes do nothing;
    # few rows with packed B and K > 256: the few-row paths (AVX2 reads the
    # packed A from row m0 of each K block when the threads split the rows)
    for M, N, K in [(1, 70, 33), (70, 1, 33), (1, 1, 5), (5, 3, 2), (0, 5, 3), (5, 0, 3), (5, 7, 0), (24, 200, 300),
                    (13, 150, 513), (7, 100, 300), (12, 64, 520), (24, 40, 600)]:
        for ta in (False, True):
            for packed_b in (False, True):
                check(isa, rng, M, N, K, ta, bool(rng.integers(2)), alpha=0.5, beta=0.5, bias=True, bias_row=True,
                      act="Relu", packed_b=packed_b)


@pytest.mark.parametrize("act", ["", "Relu", "Clip", "Sigmoid", "Elu"])
def test_epilogues(isa, rng, act):
    for alpha, beta in [(1.0, 0.0), (-0.75, 0.5)]:
        check(isa, rng, 53, 171, 300, bool(rng.integers(2)), bool(rng.integers(2)), alpha=alpha, beta=beta,
              bias=bool(rng.integers(2)), bias_row=True, act=act, packed_b=bool(rng.integers(2)))


def test_conv_like_shapes(isa, rng):
    # weights as A (M x K row-major), wide B: the convolution GEMMs
    for M, N, K in [(64, 784, 576), (96, 3136, 24), (40, 130, 27)]:
        check(isa, rng, M, N, K, bias_row=True, act="Relu", threads=(1, 2))
