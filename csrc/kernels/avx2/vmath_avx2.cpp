// AVX2 activations. Relu/LeakyRelu/Clip/HardSigmoid are exact; the
// transcendental ones fall back to the reference until vector exp/tanh land.
#include <immintrin.h>

#include <algorithm>

#include "kernels/dispatch.h"

namespace pyengine {

namespace {

void activation_avx2(const float* x, float* y, int64_t n, const Activation& a) {
  int64_t i = 0;
  switch (a.kind) {
    case Activation::Relu: {
      __m256 z = _mm256_setzero_ps();
      for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_max_ps(_mm256_loadu_ps(x + i), z));
      for (; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
      return;
    }
    case Activation::LeakyRelu: {
      __m256 al = _mm256_set1_ps(a.alpha), z = _mm256_setzero_ps();
      for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 neg = _mm256_mul_ps(v, al);
        _mm256_storeu_ps(y + i, _mm256_blendv_ps(v, neg, _mm256_cmp_ps(v, z, _CMP_LT_OQ)));
      }
      for (; i < n; ++i) y[i] = x[i] >= 0.f ? x[i] : x[i] * a.alpha;
      return;
    }
    case Activation::Clip: {
      __m256 lo = _mm256_set1_ps(a.alpha), hi = _mm256_set1_ps(a.beta);
      for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(x + i), lo), hi));
      for (; i < n; ++i) y[i] = std::min(std::max(x[i], a.alpha), a.beta);
      return;
    }
    default:
      kernels_for(Isa::Scalar).activation(x, y, n, a);
  }
}

}  // namespace

void fill_vmath_avx2(KernelTable& t) { t.activation = activation_avx2; }

}  // namespace pyengine
