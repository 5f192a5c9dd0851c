// AVX-512 direct convolution: 16 positions per vector, blocks of up to 8
// output channels x 3 vectors (24 accumulators of the 32 registers);
// channels in lanes: 6 positions x 4 vectors of 16 channels, [P][M] results
// transposed in 16x16 register tiles.
#include <immintrin.h>

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
  // dst row j (16 floats) = column j of the 16 src rows: unpack pairs of
  // rows, then pairs of pairs (as doubles), then 128-bit lanes twice.
  static constexpr bool kTile16 = true;
  static void transpose16(const float* src, int64_t src_ld, float* dst, int64_t dst_ld) {
    __m512 r[16], a[16], b[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * src_ld);
    for (int i = 0; i < 8; ++i) {
      a[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
      a[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {  // b[4i + j], 128-bit lane k: column 4k + j of rows 4i..4i+3
      const __m512d a0 = _mm512_castps_pd(a[4 * i]), a1 = _mm512_castps_pd(a[4 * i + 1]);
      const __m512d a2 = _mm512_castps_pd(a[4 * i + 2]), a3 = _mm512_castps_pd(a[4 * i + 3]);
      b[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
      b[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
      b[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
      b[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
    }
    for (int j = 0; j < 4; ++j) {
      const __m512 e0 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0x88), e1 = _mm512_shuffle_f32x4(b[j], b[4 + j], 0xdd);
      const __m512 f0 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0x88);
      const __m512 f1 = _mm512_shuffle_f32x4(b[8 + j], b[12 + j], 0xdd);
      _mm512_storeu_ps(dst + j * dst_ld, _mm512_shuffle_f32x4(e0, f0, 0x88));
      _mm512_storeu_ps(dst + (4 + j) * dst_ld, _mm512_shuffle_f32x4(e1, f1, 0x88));
      _mm512_storeu_ps(dst + (8 + j) * dst_ld, _mm512_shuffle_f32x4(e0, f0, 0xdd));
      _mm512_storeu_ps(dst + (12 + j) * dst_ld, _mm512_shuffle_f32x4(e1, f1, 0xdd));
    }
  }
};
}  // namespace

void fill_conv_direct_avx512(KernelTable& t) {
  t.conv_direct = conv_direct_detail::conv_direct<Avx512>;
  t.conv_direct_cl = conv_direct_detail::conv_direct_cl<Avx512>;
}

}  // namespace pyengine
