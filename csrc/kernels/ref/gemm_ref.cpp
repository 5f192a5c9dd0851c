// Scalar reference SGEMM: the fallback on every CPU and the oracle for the
// SIMD versions. Straightforward loops, parallel over rows of C.
#include <algorithm>
#include <cstring>

#include "kernels/dispatch.h"
#include "runtime/thread_pool.h"

namespace pyengine {

namespace {

void sgemm_ref(const GemmArgs& g, ThreadPool* pool) {
  auto body = [&](int64_t m0, int64_t m1) {
    std::vector<float> acc(static_cast<size_t>(g.N));
    for (int64_t m = m0; m < m1; ++m) {
      std::fill(acc.begin(), acc.end(), 0.f);
      for (int64_t k = 0; k < g.K; ++k) {
        float a = g.trans_a ? g.A[k * g.lda + m] : g.A[m * g.lda + k];
        if (g.trans_b) {
          for (int64_t n = 0; n < g.N; ++n) acc[n] += a * g.B[n * g.ldb + k];
        } else {
          const float* brow = g.B + k * g.ldb;
          for (int64_t n = 0; n < g.N; ++n) acc[n] += a * brow[n];
        }
      }
      float* c = g.C + m * g.ldc;
      for (int64_t n = 0; n < g.N; ++n) {
        float v = g.alpha * acc[n];
        if (g.beta != 0.f) v += g.beta * c[n];
        if (g.bias_col) v += g.bias_col[n];
        if (g.bias_row) v += g.bias_row[m];
        c[n] = v;
      }
      if (g.act.kind != Activation::None) kernels_for(Isa::Scalar).activation(c, c, g.N, g.act);
    }
  };
  if (g.M <= 0 || g.N <= 0) return;
  int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, g.N * std::max<int64_t>(g.K, 1)));
  if (pool) pool->parallel_for(g.M, grain, body);
  else body(0, g.M);
}

// The reference "packing" keeps B as K x N row-major.
void pack_b_ref(const float* B, int64_t ldb, bool trans_b, int64_t K, int64_t N, PackedB* out) {
  out->K = K;
  out->N = N;
  out->data.assign(static_cast<size_t>(K * N), 0.f);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n) out->data[k * N + n] = trans_b ? B[n * ldb + k] : B[k * ldb + n];
}

void sgemm_packed_ref(const GemmArgs& args, const PackedB& b, ThreadPool* pool) {
  GemmArgs g = args;
  g.trans_b = false;
  g.B = b.data.data();
  g.ldb = b.N;
  sgemm_ref(g, pool);
}

// The reference "packing" keeps op(A) as M x K row-major.
void pack_a_ref(const float* A, int64_t lda, bool trans_a, int64_t M, int64_t K, PackedA* out) {
  out->M = M;
  out->K = K;
  out->data.assign(static_cast<size_t>(M * K), 0.f);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) out->data[m * K + k] = trans_a ? A[k * lda + m] : A[m * lda + k];
}

void sgemm_packed_a_ref(const GemmArgs& args, const PackedA& a, const PackedB* b, ThreadPool* pool) {
  GemmArgs g = args;
  g.trans_a = false;
  g.A = a.data.data();
  g.lda = a.K;
  if (b) sgemm_packed_ref(g, *b, pool);
  else sgemm_ref(g, pool);
}

}  // namespace

void fill_gemm_ref(KernelTable& t) {
  t.sgemm = sgemm_ref;
  t.pack_b = pack_b_ref;
  t.sgemm_packed = sgemm_packed_ref;
  t.pack_a = pack_a_ref;
  t.sgemm_packed_a = sgemm_packed_a_ref;
}

}  // namespace pyengine
