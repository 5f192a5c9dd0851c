// AVX2/FMA SGEMM driver: cache blocking, operand packing and threading around
// the 6x16 microkernel of gemm_avx2_tile.h (BLIS loop order).
//
//   for each NC block of columns        (B block kc x NC shared by all rows)
//     for each K block (kc <= KC)       (pack B block unless pre-packed)
//       for each MC block of rows       (pack A block: MC x kc, stays in L2)
//         for each 16-column panel      (B micro-panel kc x 16 stays in L1)
//           for each 6-row panel        -> microkernel
//
// Determinism: the K blocking depends on K only and the microkernel treats
// every row and column alike, so each C element is reduced in the same order
// however rows/columns are split between threads.
#include <algorithm>
#include <cstring>

#include "kernels/avx2/gemm_avx2_tile.h"
#include "kernels/gemm_blocking.h"
#include "runtime/aligned_buffer.h"
#include "runtime/thread_pool.h"

namespace pyengine {
namespace gemm_avx2 {

namespace {

// Blocking: B micro-panel 256x16 = 16 KiB fits a 32 KiB (Zen 3) L1D with
// room for the A and C streams; A block 48x256 = 48 KiB in L2. MC was tuned
// on the benchmark machine (1024^3-2048^3: MC 36-48 beat 72 by ~5-10% and
// 144 by ~20%; KC 384-512 was within noise of 256). See BENCHMARKS.md.
constexpr int64_t kKC = 256;
constexpr int64_t kMC = 48;    // multiple of kMR
constexpr int64_t kNC = 2048;  // multiple of kNR
constexpr int64_t kNCSmall = 256;  // B block width when it is used once
constexpr int64_t kDirectACols = 128;  // up to this many columns A is read in place (measured)

using KBlocks = KBlocksOf<kKC>;  // K split into near-equal blocks of at most kKC

// Packs rows [m0, m0+mc) x K range [k0, k0+kc) of op(A) into 6-row micro-panels,
// panel i (rows m0+6i..) at dst + 6i*kc, rows past mc zero.
void pack_a_block(const GemmArgs& g, int64_t m0, int64_t mc, int64_t k0, int64_t kc, float* dst) {
  for (int64_t i = 0; i < mc; i += kMR, dst += kMR * kc) {
    const int mr = static_cast<int>(std::min<int64_t>(kMR, mc - i));
    if (g.trans_a) {  // A stored K x M: the 6 values of a k are contiguous
      const float* src = g.A + k0 * g.lda + m0 + i;
      for (int64_t k = 0; k < kc; ++k, src += g.lda) {
        float* d = dst + k * kMR;
        for (int r = 0; r < mr; ++r) d[r] = src[r];
        for (int r = mr; r < kMR; ++r) d[r] = 0.f;
      }
      continue;
    }
    const float* rows[kMR];
    for (int r = 0; r < kMR; ++r) rows[r] = g.A + (m0 + i + std::min(r, mr - 1)) * g.lda + k0;
    int64_t k = 0;
    if (mr == kMR) {
      // 8 k at a time: load 6 rows x 8, write them k-major (a 6x8 transpose).
      for (; k + 8 <= kc; k += 8) {
        __m256 v[kMR];
        for (int r = 0; r < kMR; ++r) v[r] = _mm256_loadu_ps(rows[r] + k);
        alignas(32) float t[kMR][8];
        for (int r = 0; r < kMR; ++r) _mm256_store_ps(t[r], v[r]);
        float* d = dst + k * kMR;
        for (int kk = 0; kk < 8; ++kk)
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

// gemm_range for pre-packed B and very few rows (e.g. a batch of a few rows
// through a dense layer): B is used once, so it comes
// from memory, and each packed panel is read front to back over all of K
// (one long sequential stream the prefetcher follows) with A, packed once
// for all of K, coming from cache. Same arithmetic per element as gemm_range.
void gemm_range_few_rows(const GemmArgs& g, const float* packed_a, const float* packed_b, int64_t m0, int64_t m1,
                         int64_t n0, int64_t n1) {
  const KBlocks kb(g.K);
  const int64_t mc = m1 - m0;
  // K block p of rows m0.. at abuf + a_stride * k0 (pre-packed: the whole A's
  // layout, rows m0.. of each block; else packed here for these rows only)
  const int64_t a_stride = packed_a ? (g.M + kMR - 1) / kMR * kMR : (mc + kMR - 1) / kMR * kMR;
  const float* abuf;
  if (packed_a) {
    abuf = packed_a;
  } else {
    float* buf = thread_buffer(0, a_stride * g.K);
    for (int64_t p = 0; p < kb.count; ++p)
      pack_a_block(g, m0, mc, kb.begin(p), kb.len(p, g.K), buf + a_stride * kb.begin(p));
    abuf = buf;
  }
  TileEpilogue e = base_epilogue(g);
  for (int64_t col = n0; col < n1; col += kNR) {
    const int nr = static_cast<int>(std::min<int64_t>(kNR, n1 - col));
    const float* bpanel = packed_b + (col / kNR) * g.K * kNR;
    e.bias_col = g.bias_col ? g.bias_col + col : nullptr;
    for (int64_t p = 0; p < kb.count; ++p) {
      const int64_t k0 = kb.begin(p), kc = kb.len(p, g.K);
      e.first = p == 0;
      e.last = p == kb.count - 1;
      for (int64_t i = 0; i < mc; i += kMR) {
        e.bias_row = g.bias_row ? g.bias_row + m0 + i : nullptr;
        const float* a = packed_a ? abuf + a_stride * k0 + (m0 + i) * kc : abuf + a_stride * k0 + i * kc;
        ukernel_rows(true, static_cast<int>(std::min<int64_t>(kMR, mc - i)), kc, a,
                     bpanel + k0 * kNR, g.C + (m0 + i) * g.ldc + col, g.ldc, nr, e);
      }
    }
  }
}

// One task: C rows [m0, m1) x columns [n0, n1), full K. m0 is a multiple of 6,
// n0 of 16. packed_b: pre-packed panels of the whole B (panel p at packed_b +
// p*K*16), or null to pack B blocks here from g.B. packed_a: the whole op(A)
// pre-packed (pack_a_avx2's layout), or null to pack A blocks here from g.A.
//
// When the rows fit one MC block, a packed B block is used by a single pass
// over the rows, so it is made small (kc x kNCSmall, L2-resident) rather than
// large: it never travels to memory and back.
void gemm_range(const GemmArgs& g, const float* packed_a, const float* packed_b, int64_t m0, int64_t m1, int64_t n0,
                int64_t n1) {
  // Measured: a clear win for up to two row panels and several K blocks,
  // a loss for more rows (A then streams from L2 for every panel).
  if (packed_b && m1 - m0 <= 2 * kMR && g.K > kKC) return gemm_range_few_rows(g, packed_a, packed_b, m0, m1, n0, n1);
  const KBlocks kb(g.K);
  const int64_t nc_max = !packed_b && m1 - m0 <= kMC ? kNCSmall : kNC;
  const bool b_from_memory = packed_b && m1 - m0 <= kMC;  // each panel used once
  // Few column panels: a packed A block would be used only that many times.
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
  for (int64_t a = 1; a <= std::min<int64_t>(threads, mu); ++a) {
    for (int64_t b = 1; a * b <= threads && b <= nu; ++b) {
      const double rows = static_cast<double>((mu + a - 1) / a) * kMR;
      const double cols = static_cast<double>((nu + b - 1) / b) * kNR;
      double cycles = rows * cols * g.K / 16.0 + rows * g.K * 0.5 * std::max<int64_t>(1, (cols + kNC - 1) / kNC);
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
  // matrix-vector shortcuts read A in place, so the packed tiles do everything then.
  if (g.M == 1 && g.A && gemv(g, packed_b, pool)) return;
  if (g.N == 1 && g.A && gemv_column(g, packed_b, pool)) return;
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

void sgemm_avx2(const GemmArgs& g, ThreadPool* pool) { sgemm_impl(g, nullptr, nullptr, pool); }

void sgemm_packed_avx2(const GemmArgs& g, const PackedB& b, ThreadPool* pool) { sgemm_impl(g, nullptr, b.ptr(), pool); }

void sgemm_packed_a_avx2(const GemmArgs& g, const PackedA& a, const PackedB* b, ThreadPool* pool) {
  sgemm_impl(g, a.ptr(), b ? b->ptr() : nullptr, pool);
}

// Whole op(A) as pack_a_block writes it (pack_a_whole's layout with 6-row panels).
void pack_a_avx2(const float* A, int64_t lda, bool trans_a, int64_t M, int64_t K, PackedA* out) {
  pack_a_whole<kMR, kKC>(A, lda, trans_a, M, K, pack_a_block, out);
}

// Whole B as 16-column panels of K x 16 (panel p at p*K*16), zero padded,
// starting on a 64-byte boundary.
void pack_b_avx2(const float* B, int64_t ldb, bool trans_b, int64_t K, int64_t N, PackedB* out) {
  const int64_t npanels = (N + kNR - 1) / kNR;
  out->K = K;
  out->N = N;
  out->data.assign(static_cast<size_t>(npanels * K * kNR + 16), 0.f);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out->data.data());
  out->offset = static_cast<int64_t>(((64 - addr % 64) % 64) / sizeof(float));
  if (K > 0 && N > 0) pack_b_panels(B, ldb, trans_b, 0, K, 0, N, out->data.data() + out->offset, K * kNR);
}

}  // namespace

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
  if (!act_in_register(g.act)) e.act_fn = kernels_for(Isa::Avx2).activation;
  return e;
}

namespace {

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

}  // namespace

void pack_b_panels(const float* B, int64_t ldb, bool trans_b, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                   float* dst, int64_t panel_stride) {
  if (!trans_b) {
    // Row by row, so B is read in long contiguous runs (hardware prefetch
    // follows them); each row is split over the panels, 16 floats each.
    const int64_t full = nc / kNR;
    const int rem = static_cast<int>(nc % kNR);
    const __m256i m0 = lane_mask(std::min(rem, 8)), m1 = lane_mask(std::max(rem - 8, 0));
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = B + (k0 + k) * ldb + n0;
      float* d = dst + k * kNR;
      for (int64_t j = 0; j < full; ++j, src += kNR, d += panel_stride) {
        _mm256_storeu_ps(d, _mm256_loadu_ps(src));
        _mm256_storeu_ps(d + 8, _mm256_loadu_ps(src + 8));
      }
      if (rem) {  // partial last panel: masked loads, zero padding
        _mm256_storeu_ps(d, _mm256_maskload_ps(src, m0));
        _mm256_storeu_ps(d + 8, _mm256_maskload_ps(src + 8, m1));
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

}  // namespace gemm_avx2

void fill_gemm_avx2(KernelTable& t) {
  t.sgemm = gemm_avx2::sgemm_avx2;
  t.pack_b = gemm_avx2::pack_b_avx2;
  t.sgemm_packed = gemm_avx2::sgemm_packed_avx2;
  t.pack_a = gemm_avx2::pack_a_avx2;
  t.sgemm_packed_a = gemm_avx2::sgemm_packed_a_avx2;
}

}  // namespace pyengine
