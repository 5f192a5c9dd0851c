// AVX-512 fused recurrent cell math (KernelTable::lstm_cell, gru_cell):
// the gate activations, the state update and the output of one batch row's
// slice of hidden units in one pass, with a cheaper sigmoid than the
// table's general one.
//
// Why a separate sigmoid: the table's sigmoid/tanh keep float precision
// relative to the result everywhere (tanh near 0, sigmoid down to 1e-37),
// which costs ~28 and ~45 vector operations. Gate values only enter
// products and sums with values of order 1, so an absolute error of a few
// 1e-8 is as good: sigmoid(x) = 1 / (1 + e^-x) with e^-x from a degree-5
// polynomial and vscalefps, reciprocal by rcp14 plus one Newton step (~16
// operations), and tanh(x) = 2 sigmoid(2x) - 1. Checked against float64 in
// tests/test_recurrent_units.py (absolute error bound) and against
// onnxruntime through the recurrent tests.
#include <immintrin.h>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/dispatch.h"

namespace pyengine {

namespace {

inline __m512 set1(float v) { return _mm512_set1_ps(v); }

// 1 / (1 + e^-x). x is clamped to [-88, 88]: e^88 is finite and the result
// at the clamp (5.5e-39 or 1 - 6e-39) is within the error bound of the true
// one. NaN propagates through the arithmetic (max/min return the NaN operand
// when it is the second one).
inline __m512 sigmoid_fast(__m512 x) {
  const __m512 xc = _mm512_max_ps(set1(-88.f), _mm512_min_ps(set1(88.f), x));
  // e^-x = 2^n e^r, n = round(-x / ln 2), r = -x - n ln 2 in [-0.35, 0.35].
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, set1(-1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, set1(-0.693359375f), _mm512_sub_ps(_mm512_setzero_ps(), xc));
  r = _mm512_fmadd_ps(n, set1(2.12194440e-4f), r);
  __m512 p = set1(1.3981999507E-3f);
  p = _mm512_fmadd_ps(p, r, set1(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, set1(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, set1(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, set1(5.0000001201E-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, set1(1.f)));
  const __m512 d = _mm512_add_ps(set1(1.f), _mm512_scalef_ps(p, n));
  const __m512 y = _mm512_rcp14_ps(d);
  return _mm512_fmadd_ps(y, _mm512_fnmadd_ps(d, y, set1(1.f)), y);
}

inline __m512 tanh_fast(__m512 x) {
  return _mm512_fmsub_ps(set1(2.f), sigmoid_fast(_mm512_add_ps(x, x)), set1(1.f));
}

inline __m512 clip512(__m512 x, float c) {
  return c > 0.f ? _mm512_min_ps(_mm512_max_ps(x, set1(-c)), set1(c)) : x;
}

using avx512::lanes;

void lstm_cell_avx512(float* g, float* c, float* h, int64_t w, float clip) {
  for (int64_t j = 0; j < w; j += 16) {
    const __mmask16 m = lanes(w - j);
    auto gate = [&](int k) { return clip512(_mm512_maskz_loadu_ps(m, g + k * w + j), clip); };
    const __m512 i = sigmoid_fast(gate(0)), o = sigmoid_fast(gate(1)), f = sigmoid_fast(gate(2));
    const __m512 z = tanh_fast(gate(3));
    const __m512 cn = _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(m, c + j), _mm512_mul_ps(i, z));
    _mm512_mask_storeu_ps(c + j, m, cn);
    _mm512_mask_storeu_ps(h + j, m, _mm512_mul_ps(o, tanh_fast(cn)));
  }
}

void gru_cell_avx512(const float* rg, const float* xg, const float* hprev, float* h, int64_t w, float clip) {
  for (int64_t j = 0; j < w; j += 16) {
    const __mmask16 m = lanes(w - j);
    auto ld = [m](const float* p) { return _mm512_maskz_loadu_ps(m, p); };
    const __m512 z = sigmoid_fast(clip512(_mm512_add_ps(ld(rg + j), ld(xg + j)), clip));
    const __m512 r = sigmoid_fast(clip512(_mm512_add_ps(ld(rg + w + j), ld(xg + w + j)), clip));
    const __m512 hh = tanh_fast(clip512(_mm512_fmadd_ps(r, ld(rg + 2 * w + j), ld(xg + 2 * w + j)), clip));
    // (1 - z) hh + z hprev = hh + z (hprev - hh)
    _mm512_mask_storeu_ps(h + j, m, _mm512_fmadd_ps(z, _mm512_sub_ps(ld(hprev + j), hh), hh));
  }
}

}  // namespace

void fill_rnn_avx512(KernelTable& t) {
  t.lstm_cell = lstm_cell_avx512;
  t.gru_cell = gru_cell_avx512;
}

}  // namespace pyengine
