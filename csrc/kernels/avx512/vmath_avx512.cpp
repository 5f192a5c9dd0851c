// AVX-512 vector math: sigmoid and tanh (the recurrent cells' gate
// functions), exp, erf, and softmax's max / exp-shift-sum reductions (the
// attention kernel's inner loop), sum / sum of squares (LayerNorm), and the
// exact Gelu activation. log and the other activations stay with the AVX2
// entries.
//
// Same algorithms as kernels/avx2/vmath_avx2.cpp, 16 lanes wide, with two
// changes that matter more than the width: the division 1/d is a 14-bit
// reciprocal plus one Newton step (vdivps on zmm is a ~10-cycle-throughput
// instruction and was the bottleneck of both functions), and 2^n is applied
// with vscalefps (one rounding, inf on overflow). Bounds enforced by
// tests/test_vmath.py as for AVX2: tanh rel err [2e-7]; sigmoid [2.5e-7]
// for results above 1e-37; exp [2e-7]; erf abs err [4e-7].
#include <immintrin.h>

#include <cmath>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/dispatch.h"

namespace pyengine {

namespace {

inline __m512 set1(float v) { return _mm512_set1_ps(v); }

// e^x for x <= 89 (callers clamp); below -104 the result is +0 without
// computing a product that underflows (a microcode assist per instruction).
inline __m512 exp512(__m512 x) {
  const __mmask16 zero = _mm512_cmp_ps_mask(x, set1(-104.f), _CMP_LT_OQ);
  const __m512 xc = _mm512_mask_mov_ps(_mm512_min_ps(x, set1(89.f)), zero, _mm512_setzero_ps());
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, set1(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, set1(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), r);
  __m512 p = set1(1.9875691500E-4f);
  p = _mm512_fmadd_ps(p, r, set1(1.3981999507E-3f));
  p = _mm512_fmadd_ps(p, r, set1(8.3334519073E-3f));
  p = _mm512_fmadd_ps(p, r, set1(4.1665795894E-2f));
  p = _mm512_fmadd_ps(p, r, set1(1.6666665459E-1f));
  p = _mm512_fmadd_ps(p, r, set1(5.0000001201E-1f));
  const __m512 r2 = _mm512_mul_ps(r, r);
  p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, set1(1.f)));
  const __m512 y = _mm512_scalef_ps(p, n);
  return _mm512_mask_mov_ps(y, zero, _mm512_setzero_ps());
}

// 1/d for finite d >= 1: rcp14 has 14 bits, one Newton step
// r + r(1 - dr) brings it to float precision.
inline __m512 recip(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, set1(1.f)), r);
}

inline __m512 sigmoid512(__m512 x) {
  // -x is clamped to 88 so 1 + e^-x stays finite (recip(inf) would be
  // inf * 0 = NaN); below x = -88 the result (< 7e-39) is +0.
  const __m512 e = exp512(_mm512_min_ps(_mm512_sub_ps(_mm512_setzero_ps(), x), set1(88.f)));
  const __m512 y = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, set1(-88.f), _CMP_GE_OQ),
                                       recip(_mm512_add_ps(set1(1.f), e)));
  // NaN: exp(NaN) would be clamped by min() to a number; keep NaN.
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// exp with NaN kept (exp512's min() turns NaN into 89).
inline __m512 exp512n(__m512 x) {
  return _mm512_mask_mov_ps(exp512(x), _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// erf: the AVX2 rational approximation x * P(x^2) / Q(x^2) on [-4, 4]. The
// quotient is rcp14 + one Newton step, then one residual correction
// y + r(p - qy): as accurate as a division (the bound is 4e-7 absolute,
// the approximation alone uses 3.8e-7) without vdivps' throughput.
inline __m512 erf512(__m512 x) {
  const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, set1(-4.f)), set1(4.f));
  const __m512 x2 = _mm512_mul_ps(xc, xc);
  __m512 p = set1(-2.72614225801306e-10f);
  p = _mm512_fmadd_ps(p, x2, set1(2.77068142495902e-08f));
  p = _mm512_fmadd_ps(p, x2, set1(-2.10102402082508e-06f));
  p = _mm512_fmadd_ps(p, x2, set1(-5.69250639462346e-05f));
  p = _mm512_fmadd_ps(p, x2, set1(-7.34990630326855e-04f));
  p = _mm512_fmadd_ps(p, x2, set1(-2.95459980854025e-03f));
  p = _mm512_fmadd_ps(p, x2, set1(-1.60960333262415e-02f));
  p = _mm512_mul_ps(p, xc);
  __m512 q = set1(-1.45660718464996e-05f);
  q = _mm512_fmadd_ps(q, x2, set1(-2.13374055278905e-04f));
  q = _mm512_fmadd_ps(q, x2, set1(-1.68282697438203e-03f));
  q = _mm512_fmadd_ps(q, x2, set1(-7.37332916720468e-03f));
  q = _mm512_fmadd_ps(q, x2, set1(-1.42647390514189e-02f));
  // q is in [-0.0143, -0.0042]: finite, nonzero, no denormals.
  __m512 r = _mm512_rcp14_ps(q);
  r = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(q, r, set1(1.f)), r);
  __m512 y = _mm512_mul_ps(p, r);
  y = _mm512_fmadd_ps(r, _mm512_fnmadd_ps(q, y, p), y);
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// tanh: odd polynomial (Cephes tanhf) for |x| < 0.625, else
// sign(x) * (1 - 2 / (e^{2|x|} + 1)).
inline __m512 tanh512(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 z = _mm512_mul_ps(x, x);
  __m512 p = set1(-5.70498872745E-3f);
  p = _mm512_fmadd_ps(p, z, set1(2.06390887954E-2f));
  p = _mm512_fmadd_ps(p, z, set1(-5.37397155531E-2f));
  p = _mm512_fmadd_ps(p, z, set1(1.33314422036E-1f));
  p = _mm512_fmadd_ps(p, z, set1(-3.33332819422E-1f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
  const __m512 t = exp512(_mm512_min_ps(_mm512_add_ps(ax, ax), set1(88.f)));  // 1 - 2/(e^88 + 1) = 1
  __m512 big = _mm512_fnmadd_ps(set1(2.f), recip(_mm512_add_ps(t, set1(1.f))), set1(1.f));
  // sign of x onto |big|; NaN: |x| < 0.625 is false, and big is clamped, so take x.
  big = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(big), _mm512_castps_si512(x),
                                                      _mm512_set1_epi32(0x80000000), 0xD8));
  __m512 y = _mm512_mask_mov_ps(big, _mm512_cmp_ps_mask(ax, set1(0.625f), _CMP_LT_OQ), small);
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// Tail through a masked load/store: every element sees the same code.
template <class F>
inline void map512(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, f(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void tanh_avx512(const float* x, float* y, int64_t n) { map512(x, y, n, tanh512); }
void sigmoid_avx512(const float* x, float* y, int64_t n) { map512(x, y, n, sigmoid512); }
void exp_avx512(const float* x, float* y, int64_t n) { map512(x, y, n, exp512n); }

// Gelu here (the GEMM epilogue's activation for a fused MatMul + Gelu); the
// other kinds are the AVX2 entries this table started with.
ActivationFn g_activation_avx2 = nullptr;

void activation_avx512(const float* x, float* y, int64_t n, const Activation& a) {
  if (a.kind != Activation::Gelu) return g_activation_avx2(x, y, n, a);
  const __m512 h = set1(0.5f), one = set1(1.f), rs2 = set1(0.70710678118654752440f);
  map512(x, y, n, [&](__m512 v) {
    return _mm512_mul_ps(_mm512_mul_ps(h, v), _mm512_add_ps(one, erf512(_mm512_mul_ps(v, rs2))));
  });
}
void erf_avx512(const float* x, float* y, int64_t n) { map512(x, y, n, erf512); }



// Max/min propagate NaN (any NaN in the row gives NaN), as the reference
// does; the masked tail loads the identity (-inf / +inf) in unused lanes.
template <bool MAX>
float reduce_ext_avx512(const float* x, int64_t n) {
  const __m512 init = set1(MAX ? -INFINITY : INFINITY);
  __m512 a0 = init, a1 = init;
  __mmask16 nan = 0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    nan |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q);
    a0 = MAX ? _mm512_max_ps(a0, v0) : _mm512_min_ps(a0, v0);
    a1 = MAX ? _mm512_max_ps(a1, v1) : _mm512_min_ps(a1, v1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = avx512::lanes(n - i);
    const __m512 v = _mm512_mask_loadu_ps(init, m, x + i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    a0 = MAX ? _mm512_max_ps(a0, v) : _mm512_min_ps(a0, v);
  }
  if (nan) return NAN;
  return MAX ? _mm512_reduce_max_ps(_mm512_max_ps(a0, a1)) : _mm512_reduce_min_ps(_mm512_min_ps(a0, a1));
}

// Sums with four accumulators and a masked tail; the lane order is fixed,
// so a result depends only on the data, never on threading.
template <bool SQ>
float reduce_add_avx512(const float* x, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  auto acc = [](__m512 a, __m512 v) { return SQ ? _mm512_fmadd_ps(v, v, a) : _mm512_add_ps(a, v); };
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = acc(a0, _mm512_loadu_ps(x + i));
    a1 = acc(a1, _mm512_loadu_ps(x + i + 16));
    a2 = acc(a2, _mm512_loadu_ps(x + i + 32));
    a3 = acc(a3, _mm512_loadu_ps(x + i + 48));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = avx512::lanes(n - i);
    a0 = acc(a0, _mm512_maskz_loadu_ps(m, x + i));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

float exp_shift_sum_avx512(const float* x, float shift, float* y, int64_t n) {
  const __m512 sh = set1(shift);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 e0 = exp512n(_mm512_sub_ps(_mm512_loadu_ps(x + i), sh));
    const __m512 e1 = exp512n(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), sh));
    _mm512_storeu_ps(y + i, e0);
    _mm512_storeu_ps(y + i + 16, e1);
    a0 = _mm512_add_ps(a0, e0);
    a1 = _mm512_add_ps(a1, e1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = avx512::lanes(n - i);
    const __m512 e = exp512n(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh));
    _mm512_mask_storeu_ps(y + i, m, e);
    a0 = _mm512_mask_add_ps(a0, m, a0, e);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

}  // namespace

void fill_vmath_avx512(KernelTable& t) {
  t.tanh = tanh_avx512;
  t.sigmoid = sigmoid_avx512;
  t.exp = exp_avx512;
  if (t.activation != activation_avx512) g_activation_avx2 = t.activation;
  t.activation = activation_avx512;
  t.erf = erf_avx512;
  t.reduce_max = reduce_ext_avx512<true>;
  t.reduce_min = reduce_ext_avx512<false>;
  t.exp_shift_sum = exp_shift_sum_avx512;
  t.reduce_sum = reduce_add_avx512<false>;
  t.reduce_sumsq = reduce_add_avx512<true>;
}

}  // namespace pyengine
