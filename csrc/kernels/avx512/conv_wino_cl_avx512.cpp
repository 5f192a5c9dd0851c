// AVX-512 Winograd F(4x4, 3x3) with output channels in the lanes: blocks of
// 6 tiles x 4 vectors (24 accumulators, 4 weight vectors, 1 broadcast).
#include <immintrin.h>

#include "kernels/conv_wino_cl_impl.h"

namespace pyengine {

namespace {
struct Avx512 {
  using reg = __m512;
  static constexpr int64_t kLanes = 16;
  static constexpr int kMaxPB = 6, kMaxMB = 4;
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static reg mul(reg a, reg b) { return _mm512_mul_ps(a, b); }
};
}  // namespace

void fill_conv_wino_cl_avx512(KernelTable& t) { t.conv_wino_cl = wino_cl_detail::conv_wino_cl<Avx512>; }

}  // namespace pyengine
