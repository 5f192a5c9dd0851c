// AVX2 SGEMM for M == 1 (one row of A times B: a matrix-vector product) and
// N == 1 (A times one column). Nothing is reused across rows, so packing
// would only add traffic: B is streamed once, in the order it is stored.
//   pre-packed B: 4 panels at a time into 8 ymm accumulators (64 columns),
//     enough independent chains to hide FMA latency;
//   row-major B: whole row segments, 4 rows at a time, into an accumulator
//     row in scratch (long sequential reads the prefetcher follows);
//   B stored transposed, or N == 1: dot products, 4 rows x 16 lanes.
// Every output is one fixed FMA chain over k, whatever the thread split.
#include <algorithm>

#include "kernels/avx2/gemm_avx2_tile.h"
#include "runtime/thread_pool.h"

namespace pyengine {
namespace gemm_avx2 {

namespace {

constexpr int64_t kCols = 64;  // columns per group: 8 ymm accumulators
constexpr int64_t kRows = 16;  // dot-product path: rows of B (outputs) per group
constexpr int64_t kRowUnits = 64;  // row-major path: segments of 64 groups (16 KiB of accumulators)

// Sum of 8 lanes, always in the same order.
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[n0 : n0+nvalid] (nvalid <= 64) from pre-packed panels: vector v (8
// columns) of row k at base + (v/2)*pstride + (v%2)*8 + k*16. Masked loads
// only in the last, partial group, so nothing past the last panel is read.
template <bool Tail>
void gemv_group(const GemmArgs& g, int64_t sx, const float* base, int64_t pstride, int64_t n0, int nvalid) {
  __m256 acc[8];
  __m256i mask[8];
  for (int v = 0; v < 8; ++v) {
    acc[v] = _mm256_setzero_ps();
    mask[v] = lane_mask(std::clamp(nvalid - 8 * v, 0, 8));
  }
  const float* x = g.A;
  for (int64_t k = 0; k < g.K; ++k, x += sx, base += kNR) {
    const __m256 xv = _mm256_broadcast_ss(x);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) {
      const float* p = base + (v / 2) * pstride + (v % 2) * 8;
      const __m256 b = Tail ? _mm256_maskload_ps(p, mask[v]) : _mm256_loadu_ps(p);
      acc[v] = _mm256_fmadd_ps(xv, b, acc[v]);
    }
  }
  TileEpilogue e = base_epilogue(g);
  e.bias_row = g.bias_row;
  for (int q = 0; q < 4; ++q) {
    const int nr = std::clamp(nvalid - 16 * q, 0, 16);
    if (nr == 0) break;
    e.bias_col = g.bias_col ? g.bias_col + n0 + 16 * q : nullptr;
    store_tile<1>(&acc[2 * q], &acc[2 * q + 1], g.C + n0 + 16 * q, g.ldc, nr, e);
  }
}

// out[r] = dot(x, rows + r*ld) for r < count (<= 16), x and rows contiguous
// over K; four rows at a time, two accumulators each, fixed summation order.
void dot_rows(const float* x, const float* rows_base, int64_t ld, int64_t K, int count, float* out) {
  for (int r0 = 0; r0 < count; r0 += 4) {
    const float* rows[4];
    for (int r = 0; r < 4; ++r) rows[r] = rows_base + std::min(r0 + r, count - 1) * ld;
    __m256 acc0[4], acc1[4];
    for (int r = 0; r < 4; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
      for (int r = 0; r < 4; ++r) {
        acc0[r] = _mm256_fmadd_ps(_mm256_loadu_ps(rows[r] + k), x0, acc0[r]);
        acc1[r] = _mm256_fmadd_ps(_mm256_loadu_ps(rows[r] + k + 8), x1, acc1[r]);
      }
    }
    if (k < K) {
      const int kt = static_cast<int>(K - k);
      const __m256i m0 = lane_mask(std::min(kt, 8)), m1 = lane_mask(std::max(kt - 8, 0));
      const __m256 x0 = _mm256_maskload_ps(x + k, m0), x1 = _mm256_maskload_ps(x + k + 8, m1);
      for (int r = 0; r < 4; ++r) {
        acc0[r] = _mm256_fmadd_ps(_mm256_maskload_ps(rows[r] + k, m0), x0, acc0[r]);
        acc1[r] = _mm256_fmadd_ps(_mm256_maskload_ps(rows[r] + k + 8, m1), x1, acc1[r]);
      }
    }
    for (int r = 0; r < 4 && r0 + r < count; ++r) out[r0 + r] = hsum(_mm256_add_ps(acc0[r], acc1[r]));
  }
}

// M == 1 with B stored N x K (trans_b): C[0, n0 + r] = dot(A row, B row n0 + r).
void dot_group(const GemmArgs& g, int64_t n0, int count) {
  alignas(32) float out[kRows] = {};
  dot_rows(g.A, g.B + n0 * g.ldb, g.ldb, g.K, count, out);
  TileEpilogue e = base_epilogue(g);
  e.bias_row = g.bias_row;
  e.bias_col = g.bias_col ? g.bias_col + n0 : nullptr;
  const __m256 v0 = _mm256_load_ps(out), v1 = _mm256_load_ps(out + 8);
  store_tile<1>(&v0, &v1, g.C + n0, g.ldc, count, e);
}

// N == 1 with A stored M x K: C[m0 + r, 0] = dot(A row m0 + r, x).
void column_group(const GemmArgs& g, const float* x, int64_t m0, int count) {
  alignas(32) float out[kRows] = {};
  dot_rows(x, g.A + m0 * g.lda, g.lda, g.K, count, out);
  TileEpilogue e = base_epilogue(g);
  e.bias_col = g.bias_col;
  const __m256 zero = _mm256_setzero_ps();
  for (int r = 0; r < count; ++r) {
    e.bias_row = g.bias_row ? g.bias_row + m0 + r : nullptr;
    const __m256 v = _mm256_set1_ps(out[r]);
    store_tile<1>(&v, &zero, g.C + (m0 + r) * g.ldc, g.ldc, 1, e);
  }
}

// y[n0:n1] for an unpacked, untransposed B: streams whole row segments of B
// (4 rows at a time, long sequential reads) into a row of accumulators in
// L1/L2 scratch. Each y[n] is the same FMA chain over k as in gemv_group.
void gemv_rows(const GemmArgs& g, int64_t sx, int64_t n0, int64_t n1) {
  const int64_t n = n1 - n0, nv = n / 8;
  const int tail = static_cast<int>(n % 8);
  const __m256i tmask = lane_mask(tail);
  // Padded by a vector past the last (partial) one: the epilogue reads 16 at a time.
  const int64_t len = (nv + 2) * 8;
  float* acc = thread_buffer(1, len);
  for (int64_t i = 0; i < len; i += 8) _mm256_storeu_ps(acc + i, _mm256_setzero_ps());
  const float* x = g.A;
  int64_t k = 0;
  for (; k + 4 <= g.K; k += 4) {
    const __m256 x0 = _mm256_broadcast_ss(x + k * sx), x1 = _mm256_broadcast_ss(x + (k + 1) * sx);
    const __m256 x2 = _mm256_broadcast_ss(x + (k + 2) * sx), x3 = _mm256_broadcast_ss(x + (k + 3) * sx);
    const float* b0 = g.B + k * g.ldb + n0;
    const float* b1 = b0 + g.ldb;
    const float* b2 = b1 + g.ldb;
    const float* b3 = b2 + g.ldb;
    for (int64_t v = 0; v < nv; ++v) {
      __m256 a = _mm256_loadu_ps(acc + 8 * v);
      a = _mm256_fmadd_ps(x0, _mm256_loadu_ps(b0 + 8 * v), a);
      a = _mm256_fmadd_ps(x1, _mm256_loadu_ps(b1 + 8 * v), a);
      a = _mm256_fmadd_ps(x2, _mm256_loadu_ps(b2 + 8 * v), a);
      a = _mm256_fmadd_ps(x3, _mm256_loadu_ps(b3 + 8 * v), a);
      _mm256_storeu_ps(acc + 8 * v, a);
    }
    if (tail) {
      __m256 a = _mm256_loadu_ps(acc + 8 * nv);
      a = _mm256_fmadd_ps(x0, _mm256_maskload_ps(b0 + 8 * nv, tmask), a);
      a = _mm256_fmadd_ps(x1, _mm256_maskload_ps(b1 + 8 * nv, tmask), a);
      a = _mm256_fmadd_ps(x2, _mm256_maskload_ps(b2 + 8 * nv, tmask), a);
      a = _mm256_fmadd_ps(x3, _mm256_maskload_ps(b3 + 8 * nv, tmask), a);
      _mm256_storeu_ps(acc + 8 * nv, a);
    }
  }
  for (; k < g.K; ++k) {
    const __m256 x0 = _mm256_broadcast_ss(x + k * sx);
    const float* b0 = g.B + k * g.ldb + n0;
    for (int64_t v = 0; v < nv; ++v)
      _mm256_storeu_ps(acc + 8 * v, _mm256_fmadd_ps(x0, _mm256_loadu_ps(b0 + 8 * v), _mm256_loadu_ps(acc + 8 * v)));
    if (tail)
      _mm256_storeu_ps(acc + 8 * nv, _mm256_fmadd_ps(x0, _mm256_maskload_ps(b0 + 8 * nv, tmask),
                                                     _mm256_loadu_ps(acc + 8 * nv)));
  }
  TileEpilogue e = base_epilogue(g);
  e.bias_row = g.bias_row;
  for (int64_t c = 0; c < n; c += kNR) {
    const __m256 v0 = _mm256_loadu_ps(acc + c), v1 = _mm256_loadu_ps(acc + c + 8);
    e.bias_col = g.bias_col ? g.bias_col + n0 + c : nullptr;
    store_tile<1>(&v0, &v1, g.C + n0 + c, g.ldc, static_cast<int>(std::min<int64_t>(kNR, n - c)), e);
  }
}

// Runs fn over [0, units) on up to pool->size() threads, fewer when the
// product is too small to pay for waking them.
template <typename Fn>
void run_units(ThreadPool* pool, int64_t units, double flops, Fn fn) {
  int64_t threads = pool ? pool->size() : 1;
  threads = std::min<int64_t>({threads, units, static_cast<int64_t>(std::max(1.0, flops / 262144.0))});
  if (threads <= 1) return fn(0, units);
  pool->parallel_for(units, (units + threads - 1) / threads, fn);
}

}  // namespace

bool gemv(const GemmArgs& g, const float* packed_b, ThreadPool* pool) {
  const int64_t sx = g.trans_a ? g.lda : 1;
  const double flops = 2.0 * g.K * g.N;
  if (!packed_b && g.trans_b) {
    if (sx != 1) return false;  // strided x: the general path packs it
    run_units(pool, (g.N + kRows - 1) / kRows, flops, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u)
        dot_group(g, u * kRows, static_cast<int>(std::min(kRows, g.N - u * kRows)));
    });
    return true;
  }
  if (!packed_b) {  // rows of B are contiguous: stream them
    const int64_t units = (g.N + kCols - 1) / kCols;
    run_units(pool, units, flops, [&](int64_t u0, int64_t u1) {
      // Bounded row segments keep the accumulator row in L1/L2.
      for (int64_t u = u0; u < u1; u += kRowUnits)
        gemv_rows(g, sx, u * kCols, std::min(g.N, std::min(u1, u + kRowUnits) * kCols));
    });
    return true;
  }
  run_units(pool, (g.N + kCols - 1) / kCols, flops, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t n0 = u * kCols;
      const int nvalid = static_cast<int>(std::min(kCols, g.N - n0));
      const float* base = packed_b + (n0 / kNR) * g.K * kNR;
      if (nvalid == kCols) gemv_group<false>(g, sx, base, g.K * kNR, n0, nvalid);
      else gemv_group<true>(g, sx, base, g.K * kNR, n0, nvalid);
    }
  });
  return true;
}

bool gemv_column(const GemmArgs& g, const float* packed_b, ThreadPool* pool) {
  if (g.trans_a) return false;  // columns of A are strided: the general path packs them
  // The vector: B's only column, wherever it lives; copied out when strided.
  const float* x = g.B;
  if (packed_b || (!g.trans_b && g.ldb != 1 && g.K > 1)) {
    float* buf = thread_buffer(0, g.K);
    for (int64_t k = 0; k < g.K; ++k) buf[k] = packed_b ? packed_b[k * kNR] : g.B[k * g.ldb];
    x = buf;
  }
  run_units(pool, (g.M + kRows - 1) / kRows, 2.0 * g.M * g.K, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u)
      column_group(g, x, u * kRows, static_cast<int>(std::min(kRows, g.M - u * kRows)));
  });
  return true;
}

}  // namespace gemm_avx2
}  // namespace pyengine
