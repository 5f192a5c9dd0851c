"""Pre-packed SGEMM with few rows (M <= 24), the recurrent cells' per-step
product: on AVX-512 A is read in place and the rows go in balanced groups of
at most 12 (16 = 8 + 8), split between threads by columns only. Every ISA,
M = 1..25 with wide odd N, K across the 256 block, beta = 1 into C (as the
LSTM step accumulates into its xw rows), biases; results checked against
NumPy and bit-identical across 1, 2 and 3 threads."""
from __future__ import annotations

import numpy as np
import pytest

from test_gemm_kernel import TRANS, run_case


@pytest.mark.parametrize("M", list(range(1, 26)))
def test_few_rows_packed(isa, rng, M):
    N = int(rng.integers(33, 1100)) | 1
    K = int(rng.choice([3, 17, 255, 256, 257, 600]))
    ta, tb = TRANS[int(rng.integers(len(TRANS)))]
    outs = [run_case(isa, rng_t, M, N, K, ta, tb, beta=1.0, bias=True, bias_row=bool(M % 2), packed=True,
                     threads=t)
            for t, rng_t in ((t, np.random.default_rng(M)) for t in (1, 2, 3))]
    for t, o in zip((2, 3), outs[1:]):
        np.testing.assert_array_equal(outs[0], o, err_msg=f"M={M} N={N} K={K}: {t} threads differ from 1")


@pytest.mark.parametrize("M,N,K", [(16, 1024, 256), (16, 512, 256), (13, 1000, 520), (24, 777, 300), (20, 96, 40)])
def test_few_rows_shapes_of_cells(isa, rng, M, N, K):
    """The benchmark's cell shapes (batch 16, hidden 256, 4 or 2 slices) and odd ones, all transposes."""
    for ta, tb in TRANS:
        run_case(isa, rng, M, N, K, ta, tb, alpha=0.75, beta=1.0, bias=True, act="Relu", packed=True,
                 threads=int(rng.integers(1, 4)))
