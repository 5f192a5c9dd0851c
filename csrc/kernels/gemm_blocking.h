// Blocking helpers shared by the SIMD SGEMM drivers (kernels/avx2/gemm_avx2.cpp,
// kernels/avx512/gemm_avx512.cpp): the drivers differ in their microkernel's
// tile, not in how K is cut or how a whole A is pre-packed.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdlib>

#include "kernels/dispatch.h"

namespace pyengine {

// K split into near-equal blocks of at most KC (no tiny last block).
template <int64_t KC>
struct KBlocksOf {
  int64_t count, size;
  explicit KBlocksOf(int64_t K) : count((K + KC - 1) / KC), size(count ? (K + count - 1) / count : 0) {}
  int64_t begin(int64_t i) const { return i * size; }
  int64_t len(int64_t i, int64_t K) const { return std::min(size, K - i * size); }
};

// Whole op(A) as the driver's pack_block(g, m0, mc, k0, kc, dst) writes it, K
// block by K block: block p at p's k0 * mpad (mpad = M rounded up to MR), MR-row
// panels of kc x MR inside, rows past M zero. Starts on a 64-byte boundary.
template <int64_t MR, int64_t KC, class PackBlock>
void pack_a_whole(const float* A, int64_t lda, bool trans_a, int64_t M, int64_t K, PackBlock pack_block,
                  PackedA* out) {
  const int64_t mpad = (M + MR - 1) / MR * MR;
  out->M = M;
  out->K = K;
  out->data.assign(static_cast<size_t>(mpad * K + 16), 0.f);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out->data.data());
  out->offset = static_cast<int64_t>(((64 - addr % 64) % 64) / sizeof(float));
  if (M <= 0 || K <= 0) return;
  GemmArgs g;
  g.A = A;
  g.lda = lda;
  g.trans_a = trans_a;
  g.M = M;
  g.K = K;
  const KBlocksOf<KC> kb(K);
  for (int64_t p = 0; p < kb.count; ++p)
    pack_block(g, 0, M, kb.begin(p), kb.len(p, K), out->data.data() + out->offset + mpad * kb.begin(p));
}

}  // namespace pyengine
