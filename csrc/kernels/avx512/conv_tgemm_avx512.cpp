// smallconv: see kernels/conv_tgemm.h. Uses the SGEMM's 12x32 register tile
// and epilogue (gemm_avx512_tile.h) with its own loop: A packed once per call
// for all panels, the next B panel prefetched into L2 while this one is used.
#include <immintrin.h>

#include <algorithm>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/avx512/gemm_avx512_tile.h"
#include "kernels/conv_tgemm.h"
#include "kernels/gemm_blocking.h"
#include "runtime/aligned_buffer.h"

namespace pyengine {

namespace {

using gemm_avx512::kMR;
using gemm_avx512::kNR;
using gemm_avx512::TileEpilogue;

// C[0:MR, 0:nr] (+)= A panel (kc x 12, k-major) @ B panel (kc x 32), epilogue
// applied. Every `step` k one line of `pf` is prefetched into L2 (pf null: none).
template <int MR, int NV>
inline void tile(int64_t kc, const float* __restrict a, const float* __restrict b, const float* pf, int64_t step,
                 float* c, int64_t ldc, int nr, const TileEpilogue& e) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  int64_t count = step;
  for (int64_t k = 0; k < kc; ++k) {
    if (pf && --count == 0) {
      count = step;
      _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T1);
      pf += 16;
    }
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = NV == 2 ? _mm512_loadu_ps(b + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc0[r] = _mm512_fmadd_ps(ar, b0, acc0[r]);
      if (NV == 2) acc1[r] = _mm512_fmadd_ps(ar, b1, acc1[r]);
    }
    a += kMR;
    b += kNR;
  }
  gemm_avx512::store_tile<MR>(acc0, acc1, c, ldc, nr, e);
}

template <int NV>
void tile_rows(int mr, int64_t kc, const float* a, const float* b, const float* pf, int64_t step, float* c,
               int64_t ldc, int nr, const TileEpilogue& e) {
  switch (mr) {
    case 12: return tile<12, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 11: return tile<11, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 10: return tile<10, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 9: return tile<9, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 8: return tile<8, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 7: return tile<7, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 6: return tile<6, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 5: return tile<5, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 4: return tile<4, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 3: return tile<3, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    case 2: return tile<2, NV>(kc, a, b, pf, step, c, ldc, nr, e);
    default: return tile<1, NV>(kc, a, b, pf, step, c, ldc, nr, e);
  }
}

float* thread_buffer(int64_t floats) {
  thread_local AlignedBuffer buf;  // pool workers are persistent threads
  const size_t bytes = static_cast<size_t>(floats) * sizeof(float);
  if (buf.size() < bytes) buf.resize(bytes);
  return static_cast<float*>(buf.data());
}

}  // namespace

int64_t conv_tgemm_packed_floats(int64_t K, int64_t N) { return (N + kNR - 1) / kNR * K * kNR; }

void conv_tgemm_pack_b(const float* w, int64_t K, int64_t N, float* dst) {
  const int64_t npanels = (N + kNR - 1) / kNR;
  for (int64_t p = 0; p < npanels; ++p, dst += K * kNR)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t c = 0; c < kNR; ++c) {
        const int64_t n = p * kNR + c;
        dst[k * kNR + c] = n < N ? w[n * K + k] : 0.f;
      }
}

void conv_tgemm_avx512(const ConvTGemmArgs& g, int64_t r0, int64_t r1, int64_t p0, int64_t p1) {
  TileEpilogue e;
  e.act = g.act;
  if (!gemm_avx512::act_in_register(g.act)) e.act_fn = kernels_for(Isa::Avx512).activation;
  const int64_t pstride = g.K * kNR;
  const int64_t tiles = (r1 - r0 + kMR - 1) / kMR;
  // A rows [r0, r1) packed once for all the panels: tile i at i * K * 12,
  // k-major (12 floats per k), rows past r1 zero.
  float* ap = thread_buffer(tiles * g.K * kMR);
  for (int64_t i = 0; i < tiles; ++i) {
    const int64_t r = r0 + i * kMR;
    const __mmask16 m = gemm_avx512::lane_mask(static_cast<int>(std::min<int64_t>(kMR, r1 - r)));
    const float* src = g.a + r;
    float* dst = ap + i * g.K * kMR;
    for (int64_t k = 0; k < g.K; ++k, src += g.lda)
      _mm512_mask_storeu_ps(dst + k * kMR, 0x0FFF, _mm512_maskz_loadu_ps(m, src));
  }
  // K in near-equal blocks of at most 256 (as the SGEMM), the K block outer:
  // its packed A rows (tiles x 12 x 256 floats) stay in L1/L2 while the
  // panels' blocks of B (256 x 32, 32 KiB) stream past, each read once; the
  // C tiles (rows x N, in L2) are summed block by block. With panels outer,
  // a 3x3 layer's whole A (49 x 4608: 1.1 MB) plus two 590 KB panels
  // overflowed the 2 MB L2.
  const KBlocksOf<256> kb(g.K);
  // The next B block's lines (the next panel's, or the first panel's in the
  // next K block), split over the tiles: tile i fetches lines
  // [i * per, (i + 1) * per), one every `every` k.
  const int64_t per = (kb.size * kNR / 16 + tiles - 1) / tiles;
  const int64_t every = std::max<int64_t>(1, kb.size / std::max<int64_t>(per, 1));
  for (int64_t q = 0; q < kb.count; ++q) {
    const int64_t k0 = kb.begin(q), kc = kb.len(q, g.K);
    e.first = q == 0;
    e.last = q == kb.count - 1;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t col = p * kNR;
      const int nr = static_cast<int>(std::min<int64_t>(kNR, g.N - col));
      const float* b = g.b + p * pstride + k0 * kNR;
      const float* next = p + 1 < p1 ? b + pstride
                          : q + 1 < kb.count ? g.b + p0 * pstride + kb.begin(q + 1) * kNR
                                             : nullptr;
      e.bias_col = g.bias ? g.bias + col : nullptr;
      for (int64_t i = 0; i < tiles; ++i) {
        const int64_t r = r0 + i * kMR;
        const int mr = static_cast<int>(std::min<int64_t>(kMR, r1 - r));
        const float* pf = next ? next + i * per * 16 : nullptr;
        const float* a = ap + i * g.K * kMR + k0 * kMR;
        float* c = g.c + r * g.ldc + col;
        if (nr <= 16) tile_rows<1>(mr, kc, a, b, pf, every, c, g.ldc, nr, e);
        else tile_rows<2>(mr, kc, a, b, pf, every, c, g.ldc, nr, e);
      }
    }
  }
}

using avx512::transpose16;  // kernels/avx512/simd_avx512.h

void conv_tgemm_transpose_avx512(const float* t, int64_t ldt, int64_t P, int64_t m0, int64_t m1, float* y,
                                 const float* z, const Activation& act) {
  const bool in_reg = gemm_avx512::act_in_register(act);
  for (int64_t m = m0; m < m1; m += 16) {
    const int nm = static_cast<int>(std::min<int64_t>(16, m1 - m));
    const __mmask16 cm = gemm_avx512::lane_mask(nm);
    for (int64_t p = 0; p < P; p += 16) {
      const int np = static_cast<int>(std::min<int64_t>(16, P - p));
      const __mmask16 pm = gemm_avx512::lane_mask(np);
      __m512 r[16];
      for (int i = 0; i < 16; ++i)
        r[i] = i < np ? _mm512_maskz_loadu_ps(cm, t + (p + i) * ldt + m) : _mm512_setzero_ps();
      transpose16(r);
      for (int j = 0; j < nm; ++j) {
        const int64_t off = (m + j) * P + p;
        __m512 v = r[j];
        if (z) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(pm, z + off));
        if (in_reg) v = gemm_avx512::act_vec(v, act);
        _mm512_mask_storeu_ps(y + off, pm, v);
      }
    }
  }
  if (!in_reg) {
    const ActivationFn f = kernels_for(Isa::Avx512).activation;
    f(y + m0 * P, y + m0 * P, (m1 - m0) * P, act);
  }
}

}  // namespace pyengine
