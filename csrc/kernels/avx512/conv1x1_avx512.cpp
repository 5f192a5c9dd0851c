// AVX-512 direct 1x1 convolution for few input channels (Conv1x1Args in
// kernels/dispatch.h). With K small the GEMM's packing of the input (K x N
// copied per call) costs about as much as the FMAs; here the input is read
// in place: 32 pixels (two vectors) x 8 output channels per step, 16
// accumulators, each input pair loaded once per 8 channels and each weight
// broadcast from memory. The bias starts the sum, channels k are added in
// order, the activation is applied before the (masked at the tail) store.
#include <immintrin.h>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/dispatch.h"

namespace pyengine {

namespace {

using avx512::activate;
using avx512::lanes;


// MR output channels [m0, m0 + MR) x 32 pixels from p (k0/k1: the pixels' lanes).
template <int MR>
void tile(const Conv1x1Args& a, int64_t m0, int64_t p, __mmask16 k0, __mmask16 k1) {
  // Two 1-D arrays with fully unrolled loops: GCC keeps them in registers
  // (a 2-D array of vectors was written back to the stack every step).
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) c0[r] = c1[r] = _mm512_set1_ps(a.bias ? a.bias[m0 + r] : 0.f);
  const int64_t K = a.K, ldx = a.ldx;
  const float* w = a.w + m0 * K;
  const float* x = a.x + p;
  for (int64_t k = 0; k < K; ++k, x += ldx) {
    const __m512 x0 = _mm512_maskz_loadu_ps(k0, x), x1 = _mm512_maskz_loadu_ps(k1, x + 16);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512 wv = _mm512_set1_ps(w[r * K + k]);
      c0[r] = _mm512_fmadd_ps(wv, x0, c0[r]);
      c1[r] = _mm512_fmadd_ps(wv, x1, c1[r]);
    }
  }
  const __m512 p0 = _mm512_set1_ps(a.act.alpha), p1 = _mm512_set1_ps(a.act.beta);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* y = a.y + (m0 + r) * a.ldy + p;
    _mm512_mask_storeu_ps(y, k0, activate(c0[r], a.act, p0, p1));
    _mm512_mask_storeu_ps(y + 16, k1, activate(c1[r], a.act, p0, p1));
  }
}

void conv1x1_f32_avx512(const Conv1x1Args& a) {
  for (int64_t p = 0; p < a.N; p += 32) {
    const __mmask16 k0 = lanes(a.N - p), k1 = lanes(a.N - p - 16);
    int64_t m = 0;
    for (; m + 8 <= a.M; m += 8) tile<8>(a, m, p, k0, k1);
    switch (a.M - m) {
      case 1: tile<1>(a, m, p, k0, k1); break;
      case 2: tile<2>(a, m, p, k0, k1); break;
      case 3: tile<3>(a, m, p, k0, k1); break;
      case 4: tile<4>(a, m, p, k0, k1); break;
      case 5: tile<5>(a, m, p, k0, k1); break;
      case 6: tile<6>(a, m, p, k0, k1); break;
      case 7: tile<7>(a, m, p, k0, k1); break;
      default: break;
    }
  }
}

}  // namespace

void fill_conv1x1_avx512(KernelTable& t) { t.conv1x1_direct = conv1x1_f32_avx512; }

}  // namespace pyengine
