// AVX-512 direct convolution: 16 positions per vector, blocks of up to 8
// output channels x 3 vectors (24 accumulators of the 32 registers);
// channels in lanes: 6 positions x 4 vectors of 16 channels, [P][M] results
// transposed in 16x16 register tiles.
#include <immintrin.h>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/conv_direct_impl.h"

namespace pyengine {

namespace {
struct Avx512 {
  using reg = __m512;
  static constexpr int64_t kLanes = 16;
  static constexpr int kMaxMB = 4, kMaxPB = 6;  // conv_direct_cl
  static constexpr int kMaxCB = 8, kMaxNV = 3;
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
  static reg set1(float v) { return _mm512_set1_ps(v); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg gather(const float* p, int64_t stride) {
    const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                           _mm512_set1_epi32(static_cast<int>(stride)));
    return _mm512_i32gather_ps(idx, p, 4);
  }
  static constexpr bool kTile16 = true;
  static void transpose16(const float* src, int64_t src_ld, float* dst, int64_t dst_ld) {
    avx512::transpose16(src, src_ld, dst, dst_ld);  // kernels/avx512/simd_avx512.h
  }
};
}  // namespace

void fill_conv_direct_avx512(KernelTable& t) {
  t.conv_direct = conv_direct_detail::conv_direct<Avx512>;
  t.conv_direct_cl = conv_direct_detail::conv_direct_cl<Avx512>;
}

}  // namespace pyengine
