// AVX2/FMA vector math: exp, log, tanh, sigmoid, erf, the activations built
// on them, and the float reductions softmax and Reduce* use along the
// contiguous axis.
//
// Accuracy, measured against float64 NumPy over wide ranges including
// denormals, +-inf and NaN (tests/test_vmath.py enforces the bounds in
// brackets; measured maxima first):
//   exp      rel err 1.2e-7 [2e-7] for normal results (x in [-87.3, 88.7]);
//            denormal results within 1 denormal ulp; x > 88.73 -> +inf,
//            x < -104 -> 0; NaN -> NaN.
//   log      rel err 7.7e-8 [1.5e-7] (abs err near x = 1); denormal inputs
//            handled; 0 -> -inf, x < 0 -> NaN, +inf -> +inf.
//   tanh     rel err 1.4e-7 [2e-7]; +-inf -> +-1.
//   sigmoid  rel err 1.8e-7 [2.5e-7] for results above 1e-37.
//   erf      abs err 3.8e-7 [4e-7] (grows towards |x| = 4; +-1 beyond).
// The scalar reference table uses libm and is exact to float rounding.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/dispatch.h"

namespace pyengine {

namespace {

inline __m256 set1(float v) { return _mm256_set1_ps(v); }

// 2^n for integer n in [-126, 127], built in the exponent field.
inline __m256 pow2i(__m256i n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
}

// e^x = 2^n * e^r with n = round(x / ln2) and |r| <= ln2 / 2 (Cody-Waite
// reduction, ln2 in two parts so r is exact). e^r from a degree-7 minimax
// polynomial (Cephes expf). 2^n is applied in two halves so results in the
// denormal range and the overflow to inf are rounded once, correctly.
inline __m256 exp256(__m256 x) {
  // Below -104 the result is +0: those lanes compute exp(0) and are zeroed at
  // the end, because a product that underflows costs a microcode assist
  // (~100+ cycles) per instruction - masked attention scores (-1e4) hit it.
  const __m256 zero = _mm256_cmp_ps(x, set1(-104.f), _CMP_LT_OQ);
  __m256 xc = _mm256_andnot_ps(zero, _mm256_min_ps(x, set1(89.f)));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, set1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, set1(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, set1(-2.12194440e-4f), r);
  __m256 p = set1(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, set1(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, set1(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, set1(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, set1(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, set1(5.0000001201E-1f));
  __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, set1(1.f)));
  __m256i ni = _mm256_cvtps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1);
  __m256i n2 = _mm256_sub_epi32(ni, n1);
  __m256 y = _mm256_andnot_ps(zero, _mm256_mul_ps(_mm256_mul_ps(p, pow2i(n1)), pow2i(n2)));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN stays NaN
}

// log(x) = e*ln2 + log(m), m in [sqrt(1/2), sqrt(2)), log(m) from the Cephes
// logf polynomial in f = m - 1. Denormal inputs are scaled by 2^23 first.
inline __m256 log256(__m256 x) {
  __m256 tiny = _mm256_cmp_ps(x, set1(1.17549435e-38f), _CMP_LT_OQ);
  __m256 xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, set1(8388608.f)), tiny);
  __m256 eadj = _mm256_and_ps(tiny, set1(23.f));
  __m256i bits = _mm256_castps_si256(xs);
  __m256 e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
  e = _mm256_sub_ps(e, eadj);
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)),
                                                  _mm256_set1_epi32(0x3f000000)));  // [0.5, 1)
  __m256 lt = _mm256_cmp_ps(m, set1(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_sub_ps(e, _mm256_and_ps(lt, set1(1.f)));
  __m256 f = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(lt, m)), set1(1.f));
  __m256 z = _mm256_mul_ps(f, f);
  __m256 p = set1(7.0376836292E-2f);
  p = _mm256_fmadd_ps(p, f, set1(-1.1514610310E-1f));
  p = _mm256_fmadd_ps(p, f, set1(1.1676998740E-1f));
  p = _mm256_fmadd_ps(p, f, set1(-1.2420140846E-1f));
  p = _mm256_fmadd_ps(p, f, set1(1.4249322787E-1f));
  p = _mm256_fmadd_ps(p, f, set1(-1.6668057665E-1f));
  p = _mm256_fmadd_ps(p, f, set1(2.0000714765E-1f));
  p = _mm256_fmadd_ps(p, f, set1(-2.4999993993E-1f));
  p = _mm256_fmadd_ps(p, f, set1(3.3333331174E-1f));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
  y = _mm256_fmadd_ps(e, set1(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(set1(0.5f), z, y);
  __m256 r = _mm256_add_ps(f, y);
  r = _mm256_fmadd_ps(e, set1(0.693359375f), r);
  // Special values: x == 0 -> -inf, x < 0 or NaN -> NaN, +inf -> +inf.
  const float inf = INFINITY;
  r = _mm256_blendv_ps(r, set1(-inf), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_EQ_OQ));
  r = _mm256_blendv_ps(r, set1(inf), _mm256_cmp_ps(x, set1(inf), _CMP_EQ_OQ));
  r = _mm256_blendv_ps(r, set1(NAN), _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NGE_UQ));  // x < 0 or NaN
  return r;
}

// tanh: odd polynomial (Cephes tanhf) for |x| < 0.625, else
// sign(x) * (1 - 2 / (e^{2|x|} + 1)).
inline __m256 tanh256(__m256 x) {
  const __m256 sign = set1(-0.f);
  __m256 ax = _mm256_andnot_ps(sign, x);
  __m256 z = _mm256_mul_ps(x, x);
  __m256 p = set1(-5.70498872745E-3f);
  p = _mm256_fmadd_ps(p, z, set1(2.06390887954E-2f));
  p = _mm256_fmadd_ps(p, z, set1(-5.37397155531E-2f));
  p = _mm256_fmadd_ps(p, z, set1(1.33314422036E-1f));
  p = _mm256_fmadd_ps(p, z, set1(-3.33332819422E-1f));
  __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  __m256 t = exp256(_mm256_add_ps(ax, ax));
  __m256 big = _mm256_sub_ps(set1(1.f), _mm256_div_ps(set1(2.f), _mm256_add_ps(t, set1(1.f))));
  big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
  return _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, set1(0.625f), _CMP_LT_OQ));
}

inline __m256 sigmoid256(__m256 x) {
  __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(set1(1.f), _mm256_add_ps(set1(1.f), e));
}

// erf: x * P(x^2) / Q(x^2) on [-4, 4] (odd rational minimax), +-1 beyond.
inline __m256 erf256(__m256 x) {
  __m256 xc = _mm256_min_ps(_mm256_max_ps(x, set1(-4.f)), set1(4.f));
  __m256 x2 = _mm256_mul_ps(xc, xc);
  __m256 p = set1(-2.72614225801306e-10f);
  p = _mm256_fmadd_ps(p, x2, set1(2.77068142495902e-08f));
  p = _mm256_fmadd_ps(p, x2, set1(-2.10102402082508e-06f));
  p = _mm256_fmadd_ps(p, x2, set1(-5.69250639462346e-05f));
  p = _mm256_fmadd_ps(p, x2, set1(-7.34990630326855e-04f));
  p = _mm256_fmadd_ps(p, x2, set1(-2.95459980854025e-03f));
  p = _mm256_fmadd_ps(p, x2, set1(-1.60960333262415e-02f));
  p = _mm256_mul_ps(p, xc);
  __m256 q = set1(-1.45660718464996e-05f);
  q = _mm256_fmadd_ps(q, x2, set1(-2.13374055278905e-04f));
  q = _mm256_fmadd_ps(q, x2, set1(-1.68282697438203e-03f));
  q = _mm256_fmadd_ps(q, x2, set1(-7.37332916720468e-03f));
  q = _mm256_fmadd_ps(q, x2, set1(-1.42647390514189e-02f));
  __m256 y = _mm256_div_ps(p, q);
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// Applies a vector function to n floats; the tail goes through a padded
// register so every element sees the same code (ISA results are consistent).
template <class F>
inline void map256(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t r = n - i;
    for (int64_t k = 0; k < r; ++k) buf[k] = x[i + k];
    _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
    for (int64_t k = 0; k < r; ++k) y[i + k] = buf[k];
  }
}

void exp_avx2(const float* x, float* y, int64_t n) { map256(x, y, n, exp256); }
void log_avx2(const float* x, float* y, int64_t n) { map256(x, y, n, log256); }
void tanh_avx2(const float* x, float* y, int64_t n) { map256(x, y, n, tanh256); }
void sigmoid_avx2(const float* x, float* y, int64_t n) { map256(x, y, n, sigmoid256); }
void erf_avx2(const float* x, float* y, int64_t n) { map256(x, y, n, erf256); }

void activation_avx2(const float* x, float* y, int64_t n, const Activation& a) {
  const __m256 z = _mm256_setzero_ps();
  switch (a.kind) {
    case Activation::None:
      if (x != y) std::copy(x, x + n, y);
      return;
    case Activation::Relu:
      return map256(x, y, n, [&](__m256 v) { return _mm256_max_ps(z, v); });  // NaN, -0 pass through like the reference
    case Activation::LeakyRelu: {
      __m256 al = set1(a.alpha);
      return map256(x, y, n, [&](__m256 v) {
        return _mm256_blendv_ps(v, _mm256_mul_ps(v, al), _mm256_cmp_ps(v, z, _CMP_LT_OQ));
      });
    }
    case Activation::Clip: {
      __m256 lo = set1(a.alpha), hi = set1(a.beta);
      // max(lo, v) then min(hi, .): operand order keeps NaN inputs NaN, like the reference.
      return map256(x, y, n, [&](__m256 v) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); });
    }
    case Activation::Sigmoid: return map256(x, y, n, sigmoid256);
    case Activation::Tanh: return map256(x, y, n, tanh256);
    case Activation::HardSigmoid: {
      __m256 al = set1(a.alpha), be = set1(a.beta), one = set1(1.f);
      return map256(x, y, n, [&](__m256 v) { return _mm256_max_ps(z, _mm256_min_ps(one, _mm256_fmadd_ps(al, v, be))); });
    }
    case Activation::Elu: {
      __m256 al = set1(a.alpha), one = set1(1.f);
      return map256(x, y, n, [&](__m256 v) {
        __m256 neg = _mm256_mul_ps(al, _mm256_sub_ps(exp256(_mm256_min_ps(v, z)), one));
        return _mm256_blendv_ps(v, neg, _mm256_cmp_ps(v, z, _CMP_LT_OQ));
      });
    }
    case Activation::Gelu: {
      const __m256 h = set1(0.5f), one = set1(1.f), rs2 = set1(0.70710678118654752440f);
      return map256(x, y, n, [&](__m256 v) {
        return _mm256_mul_ps(_mm256_mul_ps(h, v), _mm256_add_ps(one, erf256(_mm256_mul_ps(v, rs2))));
      });
    }
  }
}

// Horizontal reductions. Four accumulators; the lane order is fixed, so a
// result depends only on the data, never on threading.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

float reduce_sum_avx2(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < n; ++i) s += x[i];
  return s;
}

float reduce_sumsq_avx2(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_fmadd_ps(v0, v0, a0);
    a1 = _mm256_fmadd_ps(v1, v1, a1);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    a0 = _mm256_fmadd_ps(v, v, a0);
  }
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

// Max/min propagate NaN (any NaN in the row gives NaN), as the reference does.
template <bool MAX>
float reduce_ext_avx2(const float* x, int64_t n) {
  const float init = MAX ? -INFINITY : INFINITY;
  __m256 a = set1(init), nan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    a = MAX ? _mm256_max_ps(a, v) : _mm256_min_ps(a, v);
  }
  alignas(32) float buf[8];
  _mm256_store_ps(buf, a);
  float r = init;
  for (float b : buf) r = MAX ? std::max(r, b) : std::min(r, b);
  bool has_nan = _mm256_movemask_ps(nan) != 0;
  for (; i < n; ++i) {
    if (x[i] != x[i]) has_nan = true;
    r = MAX ? std::max(r, x[i]) : std::min(r, x[i]);
  }
  return has_nan ? NAN : r;
}

float exp_shift_sum_avx2(const float* x, float shift, float* y, int64_t n) {
  __m256 sh = set1(shift), acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), sh));
    _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float s = hsum(acc);
  if (i < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t r = n - i;
    for (int64_t k = 0; k < r; ++k) buf[k] = x[i + k];
    _mm256_store_ps(buf, exp256(_mm256_sub_ps(_mm256_load_ps(buf), sh)));
    for (int64_t k = 0; k < r; ++k) {
      y[i + k] = buf[k];
      s += buf[k];
    }
  }
  return s;
}

}  // namespace

void fill_vmath_avx2(KernelTable& t) {
  t.activation = activation_avx2;
  t.exp = exp_avx2;
  t.log = log_avx2;
  t.tanh = tanh_avx2;
  t.sigmoid = sigmoid_avx2;
  t.erf = erf_avx2;
  t.reduce_sum = reduce_sum_avx2;
  t.reduce_sumsq = reduce_sumsq_avx2;
  t.reduce_max = reduce_ext_avx2<true>;
  t.reduce_min = reduce_ext_avx2<false>;
  t.exp_shift_sum = exp_shift_sum_avx2;
}

}  // namespace pyengine
