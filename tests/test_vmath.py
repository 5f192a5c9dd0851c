"""The dispatched vector math kernels against float64 NumPy: the error bounds
documented in csrc/kernels/avx2/vmath_avx2.cpp, on wide ranges including
denormals, huge values, +-inf and NaN, with every tail length."""
import math

import numpy as np
import pytest

import pyengine
from pyengine import _engine

T = _engine.testing
ISAS = [i for i in ("scalar", "avx2", "avx512") if i in pyengine.available_isas()]
TINY = np.float32(np.finfo(np.float32).tiny)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _inputs(rng, lo, hi, n=20000):
    x = np.concatenate([rng.uniform(lo, hi, n), np.linspace(lo, hi, 4001), rng.standard_normal(2000),
                        rng.standard_normal(500) * 1e-3, [0.0, -0.0, 1.0, -1.0]])
    return x.astype(np.float32)


def _specials():
    return np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-45, -1e-45, 1e-40, 3.4e38, -3.4e38], np.float32)


# fn: (reference on float64, input range, max relative error, absolute floor below which abs error counts)
CASES = {
    "exp": (np.exp, (-87.0, 88.7), 2e-7, 0.0),
    "log": (np.log, (1e-30, 1e30), 1.5e-7, 1e-7),
    "tanh": (np.tanh, (-12.0, 12.0), 2e-7, 0.0),
    "sigmoid": (lambda v: 1.0 / (1.0 + np.exp(-v)), (-80.0, 30.0), 2.5e-7, 1e-37),
    "erf": (_erf, (-6.0, 6.0), 0.0, 4e-7),
}


def _check(isa, fn, x, ref, rtol, atol):
    y = T.vmath(isa, fn, x).astype(np.float64)
    err = np.abs(y - ref)
    bad = ~((err <= rtol * np.abs(ref)) | (err <= atol)) & ~(np.isnan(ref) & np.isnan(y))
    bad |= np.isnan(y) != np.isnan(ref)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        pytest.fail(f"{fn}[{isa}]({x[i]!r}) = {y[i]!r}, expected {ref[i]!r} "
                    f"(rel err {err[i] / max(abs(ref[i]), 1e-300):.3g})")
    return float(np.max(err / np.maximum(np.abs(ref), atol if atol else 1e-300), initial=0))


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("fn", sorted(CASES))
def test_vmath_bounds(rng, isa, fn):
    ref_fn, (lo, hi), rtol, atol = CASES[fn]
    x = _inputs(rng, lo, hi)
    if fn == "log":  # whole exponent range plus denormal inputs
        x = np.concatenate([x, (10.0 ** rng.uniform(-45, 38, 20000)).astype(np.float32),
                            rng.uniform(0.5, 2.0, 5000).astype(np.float32)])
        x = x[x > 0]
    with np.errstate(all="ignore"):
        ref = ref_fn(x.astype(np.float64))
    _check(isa, fn, x, ref, rtol, atol)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("fn", sorted(CASES))
def test_vmath_special_values(isa, fn):
    ref_fn = CASES[fn][0]
    x = _specials()
    with np.errstate(all="ignore"):
        ref = ref_fn(x.astype(np.float64))
    y = T.vmath(isa, fn, x).astype(np.float64)
    ref32 = ref.astype(np.float32).astype(np.float64)  # what float32 can represent
    for xi, yi, ri in zip(x, y, ref32):
        if np.isnan(ri):
            assert np.isnan(yi), f"{fn}[{isa}]({xi}) = {yi}, expected NaN"
        elif np.isinf(ri) or ri == 0:
            assert yi == ri or abs(yi - ri) < 1e-44, f"{fn}[{isa}]({xi}) = {yi}, expected {ri}"
        else:
            floor = CASES[fn][3] or 1e-44  # erf's bound is absolute
            assert abs(yi - ri) <= 2.5e-7 * abs(ri) + floor, f"{fn}[{isa}]({xi}) = {yi}, expected {ri}"


@pytest.mark.parametrize("isa", ISAS)
def test_exp_extremes(isa):
    """Overflow to inf, underflow through the denormals to 0."""
    x = np.array([88.72, 88.73, 89.0, 100.0, -87.5, -95.0, -100.0, -103.2, -104.0, -110.0], np.float32)
    y = T.vmath(isa, "exp", x).astype(np.float64)
    with np.errstate(over="ignore"):
        ref = np.exp(x.astype(np.float64)).astype(np.float32).astype(np.float64)
    min_denorm = 1.401298464324817e-45
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))
    fin = ~np.isinf(ref)
    assert np.all(np.abs(y[fin] - ref[fin]) <= 3e-7 * ref[fin] + min_denorm)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("fn", sorted(CASES))
@pytest.mark.parametrize("n", [0, 1, 3, 7, 8, 9, 17, 31])
def test_vmath_tails(isa, fn, n, rng):
    """Every length agrees with the same values computed in a long vector."""
    x = rng.uniform(0.1, 3.0, n).astype(np.float32)
    full = T.vmath(isa, fn, np.concatenate([x, np.ones(16, np.float32)]))[:n]
    np.testing.assert_array_equal(T.vmath(isa, fn, x), full)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n", [0, 1, 5, 8, 15, 33, 1000, 4099])
def test_reductions(isa, n, rng):
    x = rng.standard_normal(n).astype(np.float32)
    x64 = x.astype(np.float64)
    tol = 1e-6 * max(n, 1) ** 0.5 + 1e-6
    assert abs(T.vreduce(isa, "sum", x) - x64.sum()) <= tol * (np.abs(x64).sum() + 1)
    assert abs(T.vreduce(isa, "sumsq", x) - (x64 * x64).sum()) <= tol * ((x64 * x64).sum() + 1)
    assert T.vreduce(isa, "max", x) == (x.max() if n else -np.inf)
    assert T.vreduce(isa, "min", x) == (x.min() if n else np.inf)
    if n:
        xn = x.copy()
        xn[rng.integers(n)] = np.nan
        assert np.isnan(T.vreduce(isa, "max", xn)) and np.isnan(T.vreduce(isa, "min", xn))
    y, s = T.exp_shift_sum(isa, x, 0.5)
    ref = np.exp(x64 - 0.5)
    np.testing.assert_allclose(y, ref, rtol=3e-7, atol=0)
    assert abs(s - ref.sum()) <= 1e-6 * ref.sum() + 1e-6


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("act,alpha,beta", [("Relu", 0, 0), ("LeakyRelu", 0.1, 0), ("Clip", -0.5, 0.7),
                                            ("Sigmoid", 0, 0), ("Tanh", 0, 0), ("HardSigmoid", 0.2, 0.5),
                                            ("Elu", 1.3, 0)])
def test_activation_kernel(isa, act, alpha, beta, rng):
    x = np.concatenate([rng.standard_normal(1037) * 4, [0.0, -0.0, 50.0, -50.0]]).astype(np.float32)
    v = x.astype(np.float64)
    ref = {"Relu": np.maximum(v, 0), "LeakyRelu": np.where(v >= 0, v, alpha * v),
           "Clip": np.clip(v, alpha, beta), "Sigmoid": 1 / (1 + np.exp(-v)), "Tanh": np.tanh(v),
           "HardSigmoid": np.clip(alpha * v + beta, 0, 1), "Elu": np.where(v >= 0, v, alpha * np.expm1(v))}[act]
    y = T.activation(isa, act, alpha, beta, x)
    np.testing.assert_allclose(y, ref, rtol=5e-7, atol=3e-7)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n", [0, 1, 7, 9, 17, 1041])
def test_activation_kernel_gelu(isa, n, rng):
    """Exact Gelu (fused MatMul/Gemm epilogue): x/2 (1 + erf(x/sqrt 2)); the
    error is erf's absolute bound scaled by |x|/2, and tails agree with the
    same values in a long vector."""
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    if n > 4:
        x[:4] = [0.0, -0.0, 50.0, -50.0]
    v = x.astype(np.float64)
    ref = 0.5 * v * (1 + _erf(v / math.sqrt(2))) if n else v
    y = T.activation(isa, "Gelu", 0, 0, x).astype(np.float64)
    err = np.abs(y - ref)
    bound = 0.5 * np.abs(v) * 4e-7 + 2.5e-7 * np.abs(ref) + 1e-30
    assert np.all(err <= bound), f"Gelu[{isa}] worst at x={x[np.argmax(err / bound)]}"
    full = T.activation(isa, "Gelu", 0, 0, np.concatenate([x, np.ones(16, np.float32)]))[:n]
    np.testing.assert_array_equal(T.activation(isa, "Gelu", 0, 0, x), full)
