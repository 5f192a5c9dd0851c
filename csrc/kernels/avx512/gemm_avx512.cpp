// AVX-512 SGEMM driver: the AVX2 driver's algorithm (kernels/avx2/gemm_avx2.cpp,
// BLIS loop order, packed panels, fused epilogue, M x N thread grid) around
// the 12x32 microkernel of gemm_avx512_tile.h.
//
//   for each NC block of columns        (B block kc x NC shared by all rows)
//     for each K block (kc <= KC)       (pack B block unless pre-packed)
//       for each MC block of rows       (pack A block: MC x kc)
//         for each 32-column panel      (B micro-panel kc x 32 stays in L1)
//           for each 12-row panel       -> microkernel
//
// Determinism: the K blocking depends on K only and the microkernel treats
// every row and column alike, so each C element is reduced in the same order
// however rows/columns are split between threads.
//
// M == 1 and N == 1 reuse the AVX2 matrix-vector kernels where B is not
// pre-packed (they are bound by reading B, not by FMA width); the pre-packed
// M == 1 case reads this file's own panel layout.
#include <algorithm>
#include <cstring>

#include "kernels/avx512/gemm_avx512_tile.h"
#include "kernels/gemm_blocking.h"
#include "runtime/aligned_buffer.h"
#include "runtime/thread_pool.h"

namespace pyengine {

// From kernels/avx2/gemm_avx2_gemv.cpp (declared here rather than including
// the AVX2 header, whose inline functions must stay AVX2-only code).
namespace gemm_avx2 {
bool gemv(const GemmArgs& g, const float* packed_b, ThreadPool* pool);
bool gemv_column(const GemmArgs& g, const float* packed_b, ThreadPool* pool);
}  // namespace gemm_avx2

namespace gemm_avx512 {

namespace {

// Blocking for a 48 KiB L1d / 2 MiB L2: B micro-panel KC x 32 floats = 32 KiB
// in L1; A block MC x KC = 48 KiB; B block KC x NC = 1 MiB, half the L2.
// Measured on the Xeon (thread CPU time, 1 thread; load from other jobs
// makes +-5% noise): KC 192-512 within noise (256 kept); MC 48 a few % over
// 96 and 192; NC 1024 +7% over 2048 at 2048^3 (a 2 MiB B block filled the L2),
// 512 no better.
constexpr int64_t kKC = 256;
constexpr int64_t kMC = 48;    // multiple of kMR
constexpr int64_t kNC = 1024;  // multiple of kNR
constexpr int64_t kNCSmall = 256;  // B block width when it is used once
constexpr int64_t kDirectACols = 128;  // up to this many columns A is read in place
constexpr int64_t kGemvCols = 128;  // pre-packed M == 1: columns per group (8 zmm accumulators)

float* thread_buffer(int which, int64_t floats) {
  thread_local AlignedBuffer bufs[2];  // pool workers are persistent threads
  size_t bytes = static_cast<size_t>(floats) * sizeof(float);
  if (bufs[which].size() < bytes) bufs[which].resize(bytes);
  return static_cast<float*>(bufs[which].data());
}

TileEpilogue base_epilogue(const GemmArgs& g) {
  TileEpilogue e;
  e.alpha = g.alpha;
  e.beta = g.beta;
  e.act = g.act;
  if (!act_in_register(g.act)) e.act_fn = kernels_for(Isa::Avx512).activation;
  return e;
}

using KBlocks = KBlocksOf<kKC>;  // K split into near-equal blocks of at most kKC

// Packs rows [m0, m0+mc) x K range [k0, k0+kc) of op(A) into 12-row
// micro-panels, panel i (rows m0+12i..) at dst + 12i*kc, rows past mc zero.
void pack_a_block(const GemmArgs& g, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  for (int64_t i = 0; i < mc; i += kMR, dst += kMR * kc) {
    const int mr = static_cast<int>(std::min<int64_t>(kMR, mc - i));
    if (g.trans_a) {  // A stored K x M: the 12 values of a k are contiguous
      const float* src = g.A + k0 * g.lda + m0 + i;
      const __mmask16 m = lane_mask(mr);
      for (int64_t k = 0; k < kc; ++k, src += g.lda)
        _mm512_mask_storeu_ps(dst + k * kMR, 0x0FFF, _mm512_maskz_loadu_ps(m, src));
      continue;
    }
    const float* rows[kMR];
    for (int r = 0; r < kMR; ++r) rows[r] = g.A + (m0 + i + std::min(r, mr - 1)) * g.lda + k0;
    int64_t k = 0;
    if (mr == kMR) {
      // 16 k at a time: load 12 rows x 16, write them k-major.
      for (; k + 16 <= kc; k += 16) {
        alignas(64) float t[kMR][16];
        for (int r = 0; r < kMR; ++r) _mm512_store_ps(t[r], _mm512_loadu_ps(rows[r] + k));
        float* d = dst + k * kMR;
        for (int kk = 0; kk < 16; ++kk)
          for (int r = 0; r < kMR; ++r) d[kk * kMR + r] = t[r][kk];
      }
    }
    for (; k < kc; ++k) {
      float* d = dst + k * kMR;
      for (int r = 0; r < mr; ++r) d[r] = rows[r][k];
      for (int r = mr; r < kMR; ++r) d[r] = 0.f;
    }
  }
}

// r[i] = row i of an 8x8 block -> r[j] = column j.
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// Packs B(k0:k0+kc, n0:n0+nc) of the stored (possibly transposed) B into
// micro-panels of 32 columns, panel j at dst + j*panel_stride, zero padded.
void pack_b_panels(const float* B, int64_t ldb, bool trans_b, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                   float* dst, int64_t panel_stride) {
  if (!trans_b) {
    // Row by row: B is read in long contiguous runs, split over the panels.
    const int64_t full = nc / kNR;
    const int rem = static_cast<int>(nc % kNR);
    const __mmask16 m0 = lane_mask(rem), m1 = lane_mask(rem - 16);
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B + (k0 + k) * ldb + n0;
      float* d = dst + k * kNR;
      for (int64_t j = 0; j < full; ++j, src += kNR, d += panel_stride) {
        _mm512_storeu_ps(d, _mm512_loadu_ps(src));
        _mm512_storeu_ps(d + 16, _mm512_loadu_ps(src + 16));
      }
      if (rem) {  // partial last panel: masked loads, zero padding
        _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, src));
        _mm512_storeu_ps(d + 16, load_masked(m1, src + 16));
      }
    }
    return;
  }
  // B stored N x K: column c of a panel is row col+c of B, read along K.
  for (int64_t j = 0; j * kNR < nc; ++j, dst += panel_stride) {
    const int64_t col = n0 + j * kNR;
    const int nr = static_cast<int>(std::min<int64_t>(kNR, nc - j * kNR));
    for (int c0 = 0; c0 < kNR; c0 += 8) {
      const float* src[8];
      for (int i = 0; i < 8; ++i) src[i] = c0 + i < nr ? B + (col + c0 + i) * ldb + k0 : nullptr;
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8) {  // 8 columns x 8 k, transposed in registers
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = src[i] ? _mm256_loadu_ps(src[i] + k) : _mm256_setzero_ps();
        transpose8(r);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (k + i) * kNR + c0, r[i]);
      }
      for (; k < kc; ++k)
        for (int i = 0; i < 8; ++i) dst[k * kNR + c0 + i] = src[i] ? src[i][k] : 0.f;
    }
  }
}

// Pre-packed B and very few rows (M <= 24: the recurrent cells' per-step
// products, small-batch MatMuls): each packed panel is read front to back
// over all of K (one sequential stream); A is read in place (it is small and
// stays in L1, and packing it again every call cost up to 3% of a GRU).
// The rows go in near-equal groups of at most 12: 16 rows are two 8-row
// passes (16 independent FMA chains each) rather than 12 + 4, whose 4-row
// pass has 8 chains - not enough to cover the FMA latency on two ports.
// Same arithmetic per element as gemm_range.
void gemm_range_few_rows(const GemmArgs& g, const float* packed_b, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const KBlocks kb(g.K);
  const int64_t mc = m1 - m0, groups = (mc + kMR - 1) / kMR;
  const int64_t ars = g.trans_a ? 1 : g.lda, aks = g.trans_a ? g.lda : 1;
  TileEpilogue e = base_epilogue(g);
  for (int64_t col = n0; col < n1; col += kNR) {
    const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - col));
    const float* bpanel = packed_b + (col / kNR) * g.K * kNR;
    e.bias_col = g.bias_col ? g.bias_col + col : nullptr;
    for (int64_t p = 0; p < kb.count; ++p) {
      const int64_t k0 = kb.begin(p), kc = kb.len(p, g.K);
      e.first = p == 0;
      e.last = p == kb.count - 1;
      for (int64_t q = 0; q < groups; ++q) {
        const int64_t r0 = m0 + mc * q / groups, r1 = m0 + mc * (q + 1) / groups;
        e.bias_row = g.bias_row ? g.bias_row + r0 : nullptr;
        const float* a = g.trans_a ? g.A + k0 * g.lda + r0 : g.A + r0 * g.lda + k0;
        ukernel_rows_direct_a(static_cast<int>(r1 - r0), kc, a, ars, aks, bpanel + k0 * kNR,
                              g.C + r0 * g.ldc + col, g.ldc, nr, e, /*prefetch=*/true);
      }
    }
  }
}

// One task: C rows [m0, m1) x columns [n0, n1), full K. m0 is a multiple of
// 12, n0 of 32. packed_b: pre-packed panels of the whole B (panel p at
// packed_b + p*K*32), or null to pack B blocks here from g.B. packed_a: the
// whole op(A) pre-packed (pack_a_avx512's layout), or null to pack A blocks
// here (or read A in place) from g.A.
void gemm_range(const GemmArgs& g, const float* packed_a, const float* packed_b, int64_t m0, int64_t m1, int64_t n0,
                int64_t n1) {
  if (packed_b && g.A && m1 - m0 <= 2 * kMR) return gemm_range_few_rows(g, packed_b, m0, m1, n0, n1);
  const KBlocks kb(g.K);
  const int64_t nc_max = !packed_b && m1 - m0 <= kMC ? kNCSmall : kNC;
  const bool b_from_memory = packed_b && m1 - m0 <= kMC;  // each panel used once
  const bool direct_a = !packed_a && n1 - n0 <= kDirectACols;
  const int64_t mpad = (g.M + kMR - 1) / kMR * kMR;
  const int64_t ars = g.trans_a ? 1 : g.lda, aks = g.trans_a ? g.lda : 1;
  float* abuf = packed_a ? nullptr : thread_buffer(0, kMC * kb.size);
  float* bbuf = packed_b ? nullptr : thread_buffer(1, kb.size * std::min(nc_max, (n1 - n0 + kNR - 1) / kNR * kNR));
  TileEpilogue e = base_epilogue(g);
  for (int64_t jc = n0; jc < n1; jc += nc_max) {
    const int64_t nc = std::min(nc_max, n1 - jc);
    const int64_t npanels = (nc + kNR - 1) / kNR;
    for (int64_t p = 0; p < kb.count; ++p) {
      const int64_t k0 = kb.begin(p), kc = kb.len(p, g.K);
      const float* bblock;
      int64_t pstride;
      if (packed_b) {
        bblock = packed_b + (jc / kNR) * g.K * kNR + k0 * kNR;
        pstride = g.K * kNR;
      } else {
        pack_b_panels(g.B, g.ldb, g.trans_b, k0, kc, jc, nc, bbuf, kc * kNR);
        bblock = bbuf;
        pstride = kc * kNR;
      }
      e.first = p == 0;
      e.last = p == kb.count - 1;
      for (int64_t ic = m0; ic < m1; ic += kMC) {
        const int64_t mc = std::min(kMC, m1 - ic);
        if (direct_a) {  // narrow product: A read in place, B panels stay in L1
          for (int64_t j = 0; j < npanels; ++j) {
            const int64_t col = jc + j * kNR;
            const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - col));
            e.bias_col = g.bias_col ? g.bias_col + col : nullptr;
            for (int64_t i = 0; i < mc; i += kMR) {
              e.bias_row = g.bias_row ? g.bias_row + ic + i : nullptr;
              const float* a = g.trans_a ? g.A + k0 * g.lda + ic + i : g.A + (ic + i) * g.lda + k0;
              ukernel_rows_direct_a(static_cast<int>(std::min<int64_t>(kMR, mc - i)), kc, a, ars, aks,
                                    bblock + j * pstride, g.C + (ic + i) * g.ldc + col, g.ldc, nr, e);
            }
          }
          continue;
        }
        // Pre-packed A: K block p of all rows at packed_a + mpad*k0, the
        // same micro-panels pack_a_block would write here.
        const float* ablock = packed_a ? packed_a + mpad * k0 + ic * kc : abuf;
        if (!packed_a) pack_a_block(g, ic, mc, k0, kc, abuf);
        for (int64_t j = 0; j < npanels; ++j) {
          const int64_t col = jc + j * kNR;
          const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - col));
          e.bias_col = g.bias_col ? g.bias_col + col : nullptr;
          for (int64_t i = 0; i < mc; i += kMR) {
            const int mr = static_cast<int>(std::min<int64_t>(kMR, mc - i));
            e.bias_row = g.bias_row ? g.bias_row + ic + i : nullptr;
            ukernel_rows(b_from_memory, mr, kc, ablock + i * kc, bblock + j * pstride, g.C + (ic + i) * g.ldc + col,
                         g.ldc, nr, e);
          }
        }
      }
    }
  }
}

// K == 0: C = beta*C + biases, then the activation (the product is zero).
void epilogue_only(const GemmArgs& g) {
  TileEpilogue e = base_epilogue(g);
  for (int64_t m = 0; m < g.M; ++m) {
    e.bias_row = g.bias_row ? g.bias_row + m : nullptr;
    for (int64_t n = 0; n < g.N; n += kNR) {
      e.bias_col = g.bias_col ? g.bias_col + n : nullptr;
      const int nr = static_cast<int>(std::min<int64_t>(kNR, g.N - n));
      ukernel<1, false>(0, nullptr, nullptr, g.C + m * g.ldc + n, g.ldc, nr, e);
    }
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

// M == 1, pre-packed B: y[n0 : n0+nvalid] (nvalid <= 128) from 4 panels at a
// time into 8 zmm accumulators (enough independent chains to hide the FMA
// latency); vector v (16 columns) of row k at base + (v/2)*pstride + (v%2)*16
// + k*32. Masked loads only in the last group, so nothing past the last
// panel is read. Each y[n] is one FMA chain over k, whatever the split.
template <bool Tail>
void gemv_group(const GemmArgs& g, int64_t sx, const float* base, int64_t pstride, int64_t n0, int nvalid) {
  __m512 acc[8];
  __mmask16 mask[8];
  for (int v = 0; v < 8; ++v) {
    acc[v] = _mm512_setzero_ps();
    mask[v] = lane_mask(nvalid - 16 * v);
  }
  // Vectors wholly past the last column are skipped, not just masked: their
  // addresses may lie past the packed buffer, and a masked load there can
  // still cost a fault-suppression assist.
  const int nvec = (nvalid + 15) / 16;
  const float* x = g.A;
  for (int64_t k = 0; k < g.K; ++k, x += sx, base += kNR) {
    const __m512 xv = _mm512_set1_ps(*x);
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) {
      if (Tail && v >= nvec) break;
      const float* p = base + (v / 2) * pstride + (v % 2) * 16;
      const __m512 b = Tail ? _mm512_maskz_loadu_ps(mask[v], p) : _mm512_loadu_ps(p);
      acc[v] = _mm512_fmadd_ps(xv, b, acc[v]);
    }
  }
  TileEpilogue e = base_epilogue(g);
  e.bias_row = g.bias_row;
  for (int q = 0; q < 4; ++q) {
    const int nr = std::clamp(nvalid - 32 * q, 0, 32);
    if (nr == 0) break;
    e.bias_col = g.bias_col ? g.bias_col + n0 + 32 * q : nullptr;
    store_tile<1>(&acc[2 * q], &acc[2 * q + 1], g.C + n0 + 32 * q, g.ldc, nr, e);
  }
}

void gemv_packed(const GemmArgs& g, const float* packed_b, ThreadPool* pool) {
  const int64_t sx = g.trans_a ? g.lda : 1;
  run_units(pool, (g.N + kGemvCols - 1) / kGemvCols, 2.0 * g.K * g.N, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t n0 = u * kGemvCols;
      const int nvalid = static_cast<int>(std::min(kGemvCols, g.N - n0));
      const float* base = packed_b + (n0 / kNR) * g.K * kNR;
      if (nvalid == kGemvCols) gemv_group<false>(g, sx, base, g.K * kNR, n0, nvalid);
      else gemv_group<true>(g, sx, base, g.K * kNR, n0, nvalid);
    }
  });
}

// N == 1 with pre-packed B: the column is copied out of the panel (stride
// 32) and the AVX2 matrix-vector kernel reads it as a plain vector.
bool gemv_column_packed(const GemmArgs& g, const float* packed_b, ThreadPool* pool) {
  if (g.trans_a) return false;
  float* x = thread_buffer(1, g.K);
  for (int64_t k = 0; k < g.K; ++k) x[k] = packed_b[k * kNR];
  GemmArgs v = g;
  v.B = x;
  v.ldb = 1;
  v.trans_b = false;
  return gemm_avx2::gemv_column(v, nullptr, pool);
}

// Splits the C matrix into mt x nt tasks for up to `threads` threads,
// minimising the largest task's estimated cycles (microkernel FMAs, padded
// to whole tiles, plus packing its A rows and, unless pre-packed, its B).
void choose_split(const GemmArgs& g, bool b_prepacked, int threads, int64_t* mt, int64_t* nt) {
  const int64_t mu = (g.M + kMR - 1) / kMR, nu = (g.N + kNR - 1) / kNR;
  const double flops = 2.0 * g.M * g.N * g.K;
  // Below ~0.25 MFLOP per thread, waking threads costs more than it saves.
  threads = static_cast<int>(std::min<double>(threads, std::max(1.0, flops / 262144.0)));
  *mt = *nt = 1;
  double best = -1;
  // Pre-packed with at most 24 rows (gemm_range_few_rows): split the columns
  // only, so every task keeps the balanced row groups.
  const int64_t max_mt = b_prepacked && g.M <= 2 * kMR ? 1 : std::min<int64_t>(threads, mu);
  for (int64_t a = 1; a <= max_mt; ++a) {
    for (int64_t b = 1; a * b <= threads && b <= nu; ++b) {
      const double rows = static_cast<double>((mu + a - 1) / a) * kMR;
      const double cols = static_cast<double>((nu + b - 1) / b) * kNR;
      double cycles = rows * cols * g.K / 32.0 + rows * g.K * 0.5 * std::max<int64_t>(1, (cols + kNC - 1) / kNC);
      if (!b_prepacked) cycles += cols * g.K * 0.5;
      if (best < 0 || cycles < best * 0.999) {
        best = cycles;
        *mt = a;
        *nt = b;
      }
    }
  }
}

void sgemm_impl(const GemmArgs& g, const float* packed_a, const float* packed_b, ThreadPool* pool) {
  if (g.M <= 0 || g.N <= 0) return;
  if (g.K <= 0) return epilogue_only(g);
  // A pre-packed A may come without the plain matrix (g.A null): the
  // shortcuts below read A in place, so the packed tiles do everything then.
  const bool plain_a = g.A != nullptr;
  if (g.M == 1 && plain_a) {
    if (packed_b) return gemv_packed(g, packed_b, pool);
    if (gemm_avx2::gemv(g, nullptr, pool)) return;
  }
  if (g.N == 1 && plain_a) {
    if (packed_b ? gemv_column_packed(g, packed_b, pool) : gemm_avx2::gemv_column(g, nullptr, pool)) return;
  }
  int64_t mt = 1, nt = 1;
  if (pool && pool->size() > 1) choose_split(g, packed_b != nullptr, pool->size(), &mt, &nt);
  if (mt * nt == 1) return gemm_range(g, packed_a, packed_b, 0, g.M, 0, g.N);
  // Task t covers row panels [mu*mi/mt, mu*(mi+1)/mt) and column panels likewise.
  const int64_t mu = (g.M + kMR - 1) / kMR, nu = (g.N + kNR - 1) / kNR;
  pool->parallel_for(mt * nt, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t mi = t / nt, ni = t % nt;
      const int64_t r0 = mu * mi / mt * kMR, r1 = std::min(g.M, mu * (mi + 1) / mt * kMR);
      const int64_t c0 = nu * ni / nt * kNR, c1 = std::min(g.N, nu * (ni + 1) / nt * kNR);
      if (r0 < r1 && c0 < c1) gemm_range(g, packed_a, packed_b, r0, r1, c0, c1);
    }
  });
}

void sgemm_avx512(const GemmArgs& g, ThreadPool* pool) { sgemm_impl(g, nullptr, nullptr, pool); }

void sgemm_packed_avx512(const GemmArgs& g, const PackedB& b, ThreadPool* pool) {
  sgemm_impl(g, nullptr, b.ptr(), pool);
}

void sgemm_packed_a_avx512(const GemmArgs& g, const PackedA& a, const PackedB* b, ThreadPool* pool) {
  sgemm_impl(g, a.ptr(), b ? b->ptr() : nullptr, pool);
}

// Whole op(A) as pack_a_block writes it (pack_a_whole's layout with 12-row panels).
void pack_a_avx512(const float* A, int64_t lda, bool trans_a, int64_t M, int64_t K, PackedA* out) {
  pack_a_whole<kMR, kKC>(A, lda, trans_a, M, K, pack_a_block, out);
}

// Whole B as 32-column panels of K x 32 (panel p at p*K*32), zero padded,
// starting on a 64-byte boundary (every zmm load is then one cache line).
void pack_b_avx512(const float* B, int64_t ldb, bool trans_b, int64_t K, int64_t N, PackedB* out) {
  const int64_t npanels = (N + kNR - 1) / kNR;
  out->K = K;
  out->N = N;
  out->data.assign(static_cast<size_t>(npanels * K * kNR + 16), 0.f);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out->data.data());
  out->offset = static_cast<int64_t>(((64 - addr % 64) % 64) / sizeof(float));
  if (K > 0 && N > 0) pack_b_panels(B, ldb, trans_b, 0, K, 0, N, out->data.data() + out->offset, K * kNR);
}

}  // namespace
}  // namespace gemm_avx512

void fill_gemm_avx512(KernelTable& t) {
  t.sgemm = gemm_avx512::sgemm_avx512;
  t.pack_b = gemm_avx512::pack_b_avx512;
  t.sgemm_packed = gemm_avx512::sgemm_packed_avx512;
  t.pack_a = gemm_avx512::pack_a_avx512;
  t.sgemm_packed_a = gemm_avx512::sgemm_packed_a_avx512;
}

}  // namespace pyengine
