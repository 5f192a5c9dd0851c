// AVX2/FMA direct convolution: 8 positions per vector, blocks of up to 6
// output channels x 2 vectors (12 accumulators, 2 inputs and a broadcast
// weight fit the 16 registers); channels in lanes: 6 positions x 2 vectors
// of 8 channels. The [P][M] results are transposed with gathers.
#include <immintrin.h>

#include "kernels/conv_direct_impl.h"

namespace pyengine {

namespace {
struct Avx2 {
  using reg = __m256;
  static constexpr int64_t kLanes = 8;
  static constexpr int kMaxMB = 2, kMaxPB = 6;  // conv_direct_cl
  static constexpr int kMaxCB = 6, kMaxNV = 2;
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
  static reg set1(float v) { return _mm256_set1_ps(v); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg gather(const float* p, int64_t stride) {
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32(static_cast<int>(stride)));
    return _mm256_i32gather_ps(p, idx, 4);
  }
  static constexpr bool kTile16 = false;
};
}  // namespace

void fill_conv_direct_avx2(KernelTable& t) {
  t.conv_direct = conv_direct_detail::conv_direct<Avx2>;
  t.conv_direct_cl = conv_direct_detail::conv_direct_cl<Avx2>;
}

}  // namespace pyengine
