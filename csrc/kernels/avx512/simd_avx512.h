// Small AVX-512 helpers shared by the kernel files of kernels/avx512/ (only
// included by files compiled with the AVX-512 flags): lane masks, the fused
// activations a store applies, and a 16x16 transpose (channels-in-lanes <->
// NCHW results of the direct and transposed-product convolutions).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "kernels/dispatch.h"

namespace pyengine {
namespace avx512 {

// Lanes [0, n) on, n in any range (<= 0: none, >= 16: all).
inline __mmask16 lanes(int64_t n) {
  return n <= 0 ? 0 : n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
}

// Lanes [lo, hi) on (clamped to 0..16): lane l of a vector starting at
// column c lies inside [0, n) for lanes_between(-c, n - c).
inline __mmask16 lanes_between(int64_t lo, int64_t hi) { return lanes(hi) & static_cast<__mmask16>(~lanes(lo)); }

// The activations SIMD stores apply themselves (p0/p1: Clip's bounds or
// LeakyRelu's slope broadcast); others return v for a separate pass.
inline __m512 activate(__m512 v, const Activation& a, __m512 p0, __m512 p1) {
  switch (a.kind) {
    case Activation::Relu: return _mm512_max_ps(_mm512_setzero_ps(), v);  // NaN passes through
    case Activation::Clip: return _mm512_min_ps(p1, _mm512_max_ps(p0, v));
    case Activation::LeakyRelu:
      return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), v, p0);
    default: return v;
  }
}

// r[i] = row i of a 16x16 block -> r[j] = column j: unpack pairs of rows,
// then pairs of pairs within 128-bit lanes, then the 128-bit lanes twice.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {  // 4x4 blocks within each 128-bit lane
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
}

// dst row j (16 floats) = column j of the 16 src rows.
inline void transpose16(const float* src, int64_t src_ld, float* dst, int64_t dst_ld) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * src_ld);
  transpose16(r);
  for (int j = 0; j < 16; ++j) _mm512_storeu_ps(dst + j * dst_ld, r[j]);
}

}  // namespace avx512
}  // namespace pyengine
