// The AVX-512 SGEMM microkernel (gemm_f32_avx512_12x32) and its tile epilogue.
// Included only by kernels/avx512/gemm_*.cpp, compiled with -mavx512f/bw/vl/dq.
//
// Same scheme as the AVX2 kernel (kernels/avx2/gemm_avx2_tile.h), twice as
// wide and twice as tall: 12 rows x 2 zmm = 24 accumulators, 2 B vectors and
// the broadcasts folded into the FMAs ({1to16} memory operands) - 26 of the
// 32 zmm registers, so nothing spills. Edges use __mmask16 loads/stores,
// which never touch (or fault on) masked-off lanes.
//
// Packed operand layouts (k-major, so the kernel reads both linearly):
//   A micro-panel: kc x 12 floats, a[k*12 + r] = A(row r, k), rows past M zero.
//   B micro-panel: kc x 32 floats, b[k*32 + c] = B(k, col c), cols past N zero.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/dispatch.h"

namespace pyengine {
namespace gemm_avx512 {

constexpr int kMR = 12;  // rows of C per microkernel call
constexpr int kNR = 32;  // columns: two zmm vectors
constexpr int kPrefetchB = 16 * kNR;  // floats ahead: 16 k (2 KiB, two lines per k)

// How a finished tile of accumulators is written back to C (see the AVX2
// header): the first K block applies beta, later ones add onto C, the last
// adds the biases and applies the activation.
struct TileEpilogue {
  float alpha = 1.f, beta = 0.f;
  bool first = true, last = true;
  const float* bias_col = nullptr;  // at the tile's first column, or null
  const float* bias_row = nullptr;  // at the tile's first row, or null
  Activation act;
  ActivationFn act_fn = nullptr;    // set for activations not done in registers
};

// Lanes [0, n) on, n clamped to 0..16.
inline __mmask16 lane_mask(int n) { return avx512::lanes(n); }

inline bool act_in_register(const Activation& a) {
  return a.kind == Activation::None || a.kind == Activation::Relu || a.kind == Activation::LeakyRelu ||
         a.kind == Activation::Clip;
}

// Same results as activation_ref / activation_avx2 for these kinds.
inline __m512 act_vec(__m512 v, const Activation& a) {
  switch (a.kind) {
    case Activation::Relu: return _mm512_max_ps(v, _mm512_setzero_ps());
    case Activation::LeakyRelu: {
      const __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
      return _mm512_mask_mul_ps(v, neg, v, _mm512_set1_ps(a.alpha));
    }
    case Activation::Clip:
      return _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(a.alpha)), _mm512_set1_ps(a.beta));
    default: return v;
  }
}

// Masked load that issues nothing when no lane is on: an all-off masked
// load past the end of a buffer never faults, but can cost an assist.
inline __m512 load_masked(__mmask16 m, const float* p) {
  return m ? _mm512_maskz_loadu_ps(m, p) : _mm512_setzero_ps();
}

// Writes MR rows x nr (1..32) columns of accumulators to C per the epilogue;
// nothing past column nr is read or written.
template <int MR>
inline void store_tile(const __m512* acc0, const __m512* acc1, float* c, int64_t ldc, int nr,
                       const TileEpilogue& e) {
  const __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
  const __m512 alpha = _mm512_set1_ps(e.alpha), beta = _mm512_set1_ps(e.beta);
  const bool read_c = !e.first || e.beta != 0.f;
  const bool bias_col = e.last && e.bias_col, bias_row = e.last && e.bias_row;
  __m512 bc0 = _mm512_setzero_ps(), bc1 = _mm512_setzero_ps();
  if (bias_col) {
    bc0 = _mm512_maskz_loadu_ps(m0, e.bias_col);
    bc1 = load_masked(m1, e.bias_col + 16);
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    __m512 v0, v1;
    if (!read_c) {
      v0 = _mm512_mul_ps(acc0[r], alpha);
      v1 = _mm512_mul_ps(acc1[r], alpha);
    } else if (e.first) {  // alpha*acc + beta*C
      v0 = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(m0, cr), _mm512_mul_ps(acc0[r], alpha));
      v1 = _mm512_fmadd_ps(beta, load_masked(m1, cr + 16), _mm512_mul_ps(acc1[r], alpha));
    } else {  // C += alpha*acc (a later K block)
      v0 = _mm512_fmadd_ps(alpha, acc0[r], _mm512_maskz_loadu_ps(m0, cr));
      v1 = _mm512_fmadd_ps(alpha, acc1[r], load_masked(m1, cr + 16));
    }
    if (e.last) {
      if (bias_col) {
        v0 = _mm512_add_ps(v0, bc0);
        v1 = _mm512_add_ps(v1, bc1);
      }
      if (bias_row) {
        const __m512 br = _mm512_set1_ps(e.bias_row[r]);
        v0 = _mm512_add_ps(v0, br);
        v1 = _mm512_add_ps(v1, br);
      }
      v0 = act_vec(v0, e.act);
      v1 = act_vec(v1, e.act);
    }
    _mm512_mask_storeu_ps(cr, m0, v0);
    if (m1) _mm512_mask_storeu_ps(cr + 16, m1, v1);
  }
  if (e.last && e.act_fn) {
    for (int r = 0; r < MR; ++r) e.act_fn(c + r * ldc, c + r * ldc, nr, e.act);
  }
}

// C[0:MR, 0:nr] (op)= A_panel(kc x 12) @ B_panel(kc x 32). Every row uses the
// same FMA sequence whatever MR is, so a C element never depends on how rows
// were grouped into tiles (threads split rows differently).
// A is read as a[r*ars + k*aks]: a packed micro-panel unless DirectA, where
// it is op(A) in place (narrow products, where packing A does not pay).
// NV = 1 for a panel with nr <= 16 valid columns: only the first vector is
// computed (same FMAs for those columns, so the same bits), which halves the
// cost of a 16-column tail (the conv's tiles are multiples of 16).
template <int MR, bool Prefetch, bool DirectA = false, int NV = 2>
inline void ukernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c, int64_t ldc,
                    int nr, const TileEpilogue& e, int64_t ars = 1, int64_t aks = kMR) {
  if (!DirectA) {
    ars = 1;
    aks = kMR;
  }
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    if (Prefetch) {  // B streams from memory: two lines per k
      _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchB), _MM_HINT_T0);
      if (NV == 2) _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchB + 16), _MM_HINT_T0);
    }
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = NV == 2 ? _mm512_loadu_ps(b + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r * ars]);
      acc0[r] = _mm512_fmadd_ps(ar, b0, acc0[r]);
      if (NV == 2) acc1[r] = _mm512_fmadd_ps(ar, b1, acc1[r]);
    }
    a += aks;
    b += kNR;
  }
  store_tile<MR>(acc0, acc1, c, ldc, nr, e);
}

// Runtime row count (1..12) -> the matching instantiation.
template <bool Prefetch, bool DirectA, int NV>
inline void ukernel_rows_nv(int mr, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int nr,
                            const TileEpilogue& e, int64_t ars, int64_t aks) {
  switch (mr) {
    case 12: ukernel<12, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 11: ukernel<11, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 10: ukernel<10, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 9: ukernel<9, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 8: ukernel<8, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 7: ukernel<7, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 6: ukernel<6, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 5: ukernel<5, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 4: ukernel<4, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 3: ukernel<3, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 2: ukernel<2, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    default: ukernel<1, Prefetch, DirectA, NV>(kc, a, b, c, ldc, nr, e, ars, aks); break;
  }
}

template <bool Prefetch, bool DirectA>
inline void ukernel_rows_t(int mr, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int nr,
                           const TileEpilogue& e, int64_t ars, int64_t aks) {
  if (nr <= 16) ukernel_rows_nv<Prefetch, DirectA, 1>(mr, kc, a, b, c, ldc, nr, e, ars, aks);
  else ukernel_rows_nv<Prefetch, DirectA, 2>(mr, kc, a, b, c, ldc, nr, e, ars, aks);
}

inline void ukernel_rows(bool prefetch, int mr, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                         int nr, const TileEpilogue& e) {
  if (prefetch) ukernel_rows_t<true, false>(mr, kc, a, b, c, ldc, nr, e, 1, kMR);
  else ukernel_rows_t<false, false>(mr, kc, a, b, c, ldc, nr, e, 1, kMR);
}

inline void ukernel_rows_direct_a(int mr, int64_t kc, const float* a, int64_t ars, int64_t aks, const float* b,
                                  float* c, int64_t ldc, int nr, const TileEpilogue& e, bool prefetch = false) {
  if (prefetch) ukernel_rows_t<true, true>(mr, kc, a, b, c, ldc, nr, e, ars, aks);
  else ukernel_rows_t<false, true>(mr, kc, a, b, c, ldc, nr, e, ars, aks);
}

}  // namespace gemm_avx512
}  // namespace pyengine
