// See conv_transposed_gemm.h.
#include "ops/conv_transposed_gemm.h"

#include <algorithm>

#include "kernels/conv_tgemm.h"
#include "runtime/thread_pool.h"

namespace pyengine {

namespace {

// Columns + C^T of one GEMM within this many floats (~4 MB): several images
// per GEMM when they fit (a taller A, same packed B), else one.
constexpr int64_t kBudget = 1024 * 1024;
constexpr int64_t kChanBlock = 16;  // output channels per transpose task

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// y[m][p] = t[p][m] for channels [m0, m1) and pixels [0, P) (t rows ldt apart).
// Channel by channel: the ~P cache lines of a 16-channel column block of t
// stay in L1 while its 16 rows of y are written.
void transpose_block(const float* t, int64_t ldt, int64_t P, int64_t m0, int64_t m1, float* y) {
  for (int64_t m = m0; m < m1; ++m) {
    const float* src = t + m;
    float* dst = y + m * P;
    for (int64_t p = 0; p < P; ++p) dst[p] = src[p * ldt];
  }
}

}  // namespace

void ConvTransposedGemm::init(const KernelTable& t, const float* w, int64_t N, int64_t M, int64_t K, int64_t P,
                              bool pointwise) {
  N_ = N;
  M_ = M;
  K_ = K;
  P_ = P;
  pointwise_ = pointwise;
#if defined(PYENGINE_HAVE_AVX512)
  fast_ = t.isa == Isa::Avx512;
#endif
  if (fast_) {
    fast_b_.assign(static_cast<size_t>(conv_tgemm_packed_floats(K, M) + 16), 0.f);
    fast_off_ = static_cast<int64_t>(((64 - reinterpret_cast<uintptr_t>(fast_b_.data()) % 64) % 64) / sizeof(float));
    conv_tgemm_pack_b(w, K, M, fast_b_.data() + fast_off_);
  } else {
    // B = W^T: stored as W [M][K], i.e. B transposed with ldb = K.
    t.pack_b(w, K, /*trans_b=*/true, K, M, &wt_);
  }
  // Pointwise reads each image in place (images are not adjacent along the
  // pixel axis), so one image per GEMM there.
  nb_ = pointwise ? 1 : std::clamp<int64_t>(kBudget / std::max<int64_t>(1, P * (K + M)), 1, std::max<int64_t>(N, 1));
}

int64_t ConvTransposedGemm::scratch_floats() const {
  const int64_t rows = nb_ * P_;
  return round_up(rows * M_, 16) + (pointwise_ ? 0 : round_up(rows * K_, 16));
}

void ConvTransposedGemm::run(const KernelTable& t, ThreadPool* pool, const float* X, const float* bias,
                             const float* Z, const Activation& act, float* Y, float* scratch,
                             const ColsFn& cols) const {
  float* ct = scratch;  // C^T [rows][M]
  float* col = scratch + round_up(nb_ * P_ * M_, 16);
  const int64_t cblocks = (M_ + kChanBlock - 1) / kChanBlock;
  for (int64_t n0 = 0; n0 < N_; n0 += nb_) {
    const int64_t nb = std::min(nb_, N_ - n0), rows = nb * P_;
    GemmArgs g;
    g.M = rows;
    g.N = M_;
    g.K = K_;
    g.trans_a = true;  // A = cols^T, stored [K][rows]
    if (pointwise_) {
      g.A = X + n0 * K_ * P_;
      g.lda = P_;
    } else {
      for (int64_t i = 0; i < nb; ++i) cols(n0 + i, col + i * P_, rows);
      g.A = col;
      g.lda = rows;
    }
    g.C = ct;
    g.ldc = M_;
    g.bias_col = bias;
    if (!Z) g.act = act;  // with a residual input, after the sum
    if (fast_) run_fast(pool, g);
    else t.sgemm_packed(g, wt_, pool);
    // Back to NCHW: tasks of 16 output channels of one image.
    pool->parallel_for(nb * cblocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, P_ * kChanBlock)),
                       [&](int64_t i0, int64_t i1) {
                         for (int64_t i = i0; i < i1; ++i) {
                           const int64_t img = i / cblocks, m0 = (i % cblocks) * kChanBlock;
                           const int64_t m1 = std::min(M_, m0 + kChanBlock);
                           const int64_t off = (n0 + img) * M_ * P_;
                           float* y = Y + off;
#if defined(PYENGINE_HAVE_AVX512)
                           if (fast_) {  // with the sum and the activation after it
                             static const Activation none;
                             conv_tgemm_transpose_avx512(ct + img * P_ * M_, M_, P_, m0, m1, y, Z ? Z + off : nullptr,
                                                         Z ? act : none);
                             continue;
                           }
#endif
                           transpose_block(ct + img * P_ * M_, M_, P_, m0, m1, y);
                           if (!Z) continue;
                           float* yb = y + m0 * P_;
                           const int64_t len = (m1 - m0) * P_;
                           t.add(yb, Z + off + m0 * P_, yb, len);
                           if (act.kind != Activation::None) t.activation(yb, yb, len, act);
                         }
                       });
  }
}

void ConvTransposedGemm::run_fast(ThreadPool* pool, const GemmArgs& g) const {
#if defined(PYENGINE_HAVE_AVX512)
  ConvTGemmArgs a;
  a.rows = g.M;
  a.K = g.K;
  a.N = g.N;
  a.a = g.A;
  a.lda = g.lda;
  a.b = fast_b_.data() + fast_off_;
  a.bias = g.bias_col;
  a.act = g.act;
  a.c = g.C;
  a.ldc = g.ldc;
  // Tasks: (row chunk, 32-column panel), panels consecutive within a chunk
  // so a thread's run prefetches its next panel. Every chunk streams all of
  // B, so chunks are as few as a ~4 MB packed copy of their rows (rows x K,
  // per thread) allows, and equal (multiples of 12 rows). Any split gives
  // the same bits (see conv_tgemm.h).
  const int64_t max_rows = std::max<int64_t>(48, 1024 * 1024 / std::max<int64_t>(g.K, 1));
  int64_t nchunk = (g.M + max_rows - 1) / max_rows;
  // Few panels (MobileNetV2's 1x1 layers: 96 outputs = 3 panels) cannot
  // keep the threads busy: split the rows among them instead (each thread
  // then packs only its own rows). 576->96 on 14x14 at 2 threads: 156 us
  // (no faster than 1 thread) -> see BENCHMARKS.md.
  const int64_t threads = pool->size();
  if (threads > 1 && (g.N + 31) / 32 < 4 * threads && g.M >= 24 * threads) nchunk = std::max(nchunk, threads);
  const int64_t kRowChunk = round_up((g.M + nchunk - 1) / nchunk, 12);
  const int64_t npanels = (g.N + 31) / 32, chunks = (g.M + kRowChunk - 1) / kRowChunk;
  const double flops = 2.0 * g.M * g.N * g.K;
  const int64_t tasks = chunks * npanels;
  auto body = [&](int64_t t0, int64_t t1) {
    while (t0 < t1) {
      const int64_t rc = t0 / npanels, p0 = t0 % npanels, p1 = std::min(npanels, p0 + (t1 - t0));
      conv_tgemm_avx512(a, rc * kRowChunk, std::min(g.M, (rc + 1) * kRowChunk), p0, p1);
      t0 += p1 - p0;
    }
  };
  if (pool->size() <= 1 || flops < 524288.0) body(0, tasks);
  else pool->parallel_for(tasks, 1, body);
#endif
}

}  // namespace pyengine
