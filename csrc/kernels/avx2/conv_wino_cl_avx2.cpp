// AVX2/FMA Winograd F(4x4, 3x3) with output channels in the lanes: blocks of
// 6 tiles x 2 vectors (12 accumulators, 2 weight vectors, 1 broadcast).
#include <immintrin.h>

#include "kernels/conv_wino_cl_impl.h"

namespace pyengine {

namespace {
struct Avx2 {
  using reg = __m256;
  static constexpr int64_t kLanes = 8;
  static constexpr int kMaxPB = 6, kMaxMB = 2;
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm256_mul_ps(a, b); }
};
}  // namespace

void fill_conv_wino_cl_avx2(KernelTable& t) { t.conv_wino_cl = wino_cl_detail::conv_wino_cl<Avx2>; }

}  // namespace pyengine
