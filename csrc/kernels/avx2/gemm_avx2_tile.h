// The AVX2/FMA SGEMM microkernel (gemm_f32_avx2_6x16) and its tile epilogue.
// Included only by kernels/avx2/gemm_*.cpp, which are compiled with -mavx2 -mfma.
//
// Packed operand layouts (all k-major, so the kernel reads both linearly):
//   A micro-panel: kc x 6 floats, a[k*6 + r] = A(row r, k), rows past M zero.
//   B micro-panel: kc x 16 floats, b[k*16 + c] = B(k, col c), cols past N zero.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/dispatch.h"

namespace pyengine {
namespace gemm_avx2 {

constexpr int kMR = 6;   // rows of C per microkernel call: 6 x 2 accumulators
constexpr int kNR = 16;  // columns: two ymm vectors
constexpr int kPrefetchB = 32 * kNR;  // floats ahead: 32 k (2 KiB)

// How a finished tile of accumulators is written back to C. K is processed
// in blocks: the first block applies beta to the old C (never reading it when
// beta == 0), later ones add onto C, and the last one adds the biases and
// applies the activation while the tile is still in registers/L1.
struct TileEpilogue {
  float alpha = 1.f, beta = 0.f;
  bool first = true, last = true;
  const float* bias_col = nullptr;  // at the tile's first column, or null
  const float* bias_row = nullptr;  // at the tile's first row, or null
  Activation act;
  ActivationFn act_fn = nullptr;    // set for activations not done in registers
};

// Lanes [0, n) on, n in 0..8.
inline __m256i lane_mask(int n) {
  alignas(32) static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

// True if the activation is computed in registers by act_in_register.
inline bool act_in_register(const Activation& a) {
  return a.kind == Activation::None || a.kind == Activation::Relu || a.kind == Activation::LeakyRelu ||
         a.kind == Activation::Clip;
}

// Same results as activation_ref / activation_avx2 for these kinds.
inline __m256 act_vec(__m256 v, const Activation& a) {
  switch (a.kind) {
    case Activation::Relu: return _mm256_max_ps(v, _mm256_setzero_ps());
    case Activation::LeakyRelu: {
      __m256 neg = _mm256_mul_ps(v, _mm256_set1_ps(a.alpha));
      return _mm256_blendv_ps(v, neg, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
    }
    case Activation::Clip:
      return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(a.alpha)), _mm256_set1_ps(a.beta));
    default: return v;
  }
}

// Writes MR rows x nr (1..16) columns of accumulators to C per the epilogue.
// Partial tiles use masked loads/stores, so nothing past column nr is touched.
template <int MR>
inline void store_tile(const __m256* acc0, const __m256* acc1, float* c, int64_t ldc, int nr,
                       const TileEpilogue& e) {
  const bool full = nr == kNR;
  const __m256i m0 = lane_mask(std::min(nr, 8)), m1 = lane_mask(std::max(nr - 8, 0));
  auto load = [&](const float* p, __m256i m) { return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m); };
  auto store = [&](float* p, __m256i m, __m256 v) {
    if (full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, m, v);
  };
  const __m256 alpha = _mm256_set1_ps(e.alpha), beta = _mm256_set1_ps(e.beta);
  const bool read_c = !e.first || e.beta != 0.f;
  const bool bias_col = e.last && e.bias_col, bias_row = e.last && e.bias_row;
  __m256 bc0 = _mm256_setzero_ps(), bc1 = _mm256_setzero_ps();
  if (bias_col) {
    bc0 = load(e.bias_col, m0);
    bc1 = load(e.bias_col + 8, m1);
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    __m256 v0, v1;
    if (!read_c) {
      v0 = _mm256_mul_ps(acc0[r], alpha);
      v1 = _mm256_mul_ps(acc1[r], alpha);
    } else if (e.first) {  // alpha*acc + beta*C
      v0 = _mm256_fmadd_ps(beta, load(cr, m0), _mm256_mul_ps(acc0[r], alpha));
      v1 = _mm256_fmadd_ps(beta, load(cr + 8, m1), _mm256_mul_ps(acc1[r], alpha));
    } else {  // C += alpha*acc (a later K block)
      v0 = _mm256_fmadd_ps(alpha, acc0[r], load(cr, m0));
      v1 = _mm256_fmadd_ps(alpha, acc1[r], load(cr + 8, m1));
    }
    if (e.last) {
      if (bias_col) {
        v0 = _mm256_add_ps(v0, bc0);
        v1 = _mm256_add_ps(v1, bc1);
      }
      if (bias_row) {
        __m256 br = _mm256_broadcast_ss(e.bias_row + r);
        v0 = _mm256_add_ps(v0, br);
        v1 = _mm256_add_ps(v1, br);
      }
      v0 = act_vec(v0, e.act);
      v1 = act_vec(v1, e.act);
    }
    store(cr, m0, v0);
    store(cr + 8, m1, v1);
  }
  if (e.last && e.act_fn) {
    for (int r = 0; r < MR; ++r) e.act_fn(c + r * ldc, c + r * ldc, nr, e.act);
  }
}

// C[0:MR, 0:nr] (op)= A_panel(kc x 6) @ B_panel(kc x 16). Every row uses the
// same FMA sequence whatever MR is, so a C element's value never depends on
// how rows were grouped into tiles (threads split rows differently).
// Prefetch: B streams from memory (pre-packed B used by few rows), so the
// kernel fetches it ahead; otherwise B is in L1 and that would only cost slots.
//
// A is read as a[r*ars + k*aks]: a packed micro-panel (ars = 1, aks = 6,
// compile-time) unless DirectA, where it is op(A) in place (strides from
// lda): for narrow products packing A would cost more than it saves.
template <int MR, bool Prefetch, bool DirectA = false>
inline void ukernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c, int64_t ldc,
                    int nr, const TileEpilogue& e, int64_t ars = 1, int64_t aks = kMR) {
  if (!DirectA) {
    ars = 1;
    aks = kMR;
  }
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    // B advances one 64-byte line per k, a single stream the hardware
    // prefetcher does not run far enough ahead of. Prefetches never fault.
    if (Prefetch) _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchB), _MM_HINT_T0);
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r * ars);
      acc0[r] = _mm256_fmadd_ps(ar, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(ar, b1, acc1[r]);
    }
    a += aks;
    b += kNR;
  }
  store_tile<MR>(acc0, acc1, c, ldc, nr, e);
}

// Runtime row count (1..6) and prefetch choice -> the matching instantiation.
template <bool Prefetch>
inline void ukernel_rows_t(int mr, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int nr,
                           const TileEpilogue& e) {
  switch (mr) {
    case 6: ukernel<6, Prefetch>(kc, a, b, c, ldc, nr, e); break;
    case 5: ukernel<5, Prefetch>(kc, a, b, c, ldc, nr, e); break;
    case 4: ukernel<4, Prefetch>(kc, a, b, c, ldc, nr, e); break;
    case 3: ukernel<3, Prefetch>(kc, a, b, c, ldc, nr, e); break;
    case 2: ukernel<2, Prefetch>(kc, a, b, c, ldc, nr, e); break;
    default: ukernel<1, Prefetch>(kc, a, b, c, ldc, nr, e); break;
  }
}

// A read in place (see ukernel), B from packed panels in cache.
inline void ukernel_rows_direct_a(int mr, int64_t kc, const float* a, int64_t ars, int64_t aks, const float* b,
                                  float* c, int64_t ldc, int nr, const TileEpilogue& e) {
  switch (mr) {
    case 6: ukernel<6, false, true>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 5: ukernel<5, false, true>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 4: ukernel<4, false, true>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 3: ukernel<3, false, true>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    case 2: ukernel<2, false, true>(kc, a, b, c, ldc, nr, e, ars, aks); break;
    default: ukernel<1, false, true>(kc, a, b, c, ldc, nr, e, ars, aks); break;
  }
}

inline void ukernel_rows(bool prefetch, int mr, int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                         int nr, const TileEpilogue& e) {
  if (prefetch) ukernel_rows_t<true>(mr, kc, a, b, c, ldc, nr, e);
  else ukernel_rows_t<false>(mr, kc, a, b, c, ldc, nr, e);
}

// Packs B(k0:k0+kc, n0:n0+nc) of the stored (possibly transposed) B into
// micro-panels of 16 columns, panel j at dst + j*panel_stride, zero padded.
void pack_b_panels(const float* B, int64_t ldb, bool trans_b, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                   float* dst, int64_t panel_stride);

// The M == 1 path (row vector times B) and the N == 1 path (A times a column
// vector): return false if they do not handle `g`. K > 0.
bool gemv(const GemmArgs& g, const float* packed_b, ThreadPool* pool);
bool gemv_column(const GemmArgs& g, const float* packed_b, ThreadPool* pool);

// Per-thread scratch (which = 0: A blocks / vectors, 1: B blocks), grown on
// demand and kept for the thread's life, so steady-state runs do not allocate.
float* thread_buffer(int which, int64_t floats);

// Epilogue settings shared by every tile of one product.
TileEpilogue base_epilogue(const GemmArgs& g);

}  // namespace gemm_avx2
}  // namespace pyengine
