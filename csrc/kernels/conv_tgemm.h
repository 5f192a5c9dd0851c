// smallconv: the AVX-512 product of ops/conv_transposed_gemm.cpp,
//   C[rows, N] = A[rows, K] @ B[K, N] + bias[N], then the activation,
// for convolutions on small planes (rows = pixels, N = output channels).
// Reached from that file only when the kernel's table is the AVX-512 one
// (these functions are built with AVX-512 flags; no table entry is needed as
// nothing else calls them).
//
// Same 12x32 register tile and K blocks (<= 256) as the SGEMM, another loop:
// A (few rows: the pixels) is packed once per call, the K block is the outer
// loop so A's block stays in cache while B's 256 x 32 blocks stream past,
// each read once, and while the tiles of one B block run, the next block is
// prefetched into L2, spread evenly over those tiles. In a whole network the
// weights (B) come from memory on every run; the SGEMM's pattern (a panel
// fetched in a burst by the first tile, then reused; no prefetch above 48
// rows) left the FMAs waiting on it: 512x7x7 -> 2048 1x1 took ~1000 us in
// ResNet-50 against ~670 us warm; this loop takes ~640 us in the model.
#pragma once
#include <cstdint>

#include "kernels/activation.h"

namespace pyengine {

struct ConvTGemmArgs {
  int64_t rows = 0, K = 0, N = 0;
  const float* a = nullptr;  // A stored transposed: A(r, k) = a[k * lda + r]
  int64_t lda = 0;
  const float* b = nullptr;  // conv_tgemm_pack_b_avx512's panels
  const float* bias = nullptr;  // N entries, or null
  Activation act;
  float* c = nullptr;  // C(r, n) = c[r * ldc + n]
  int64_t ldc = 0;
};

// Floats of the packed B (32-column panels of K x 32, zero padded).
int64_t conv_tgemm_packed_floats(int64_t K, int64_t N);
// W [N][K] row-major (the conv weights) as B = W^T in 32-column panels.
void conv_tgemm_pack_b(const float* w, int64_t K, int64_t N, float* dst);
// Rows [r0, r1) (r0 a multiple of 12) x panels [p0, p1) of C. Each element is
// one FMA chain over k = 0..K-1 whatever the ranges, so any split of the
// work between threads gives the same bits.
void conv_tgemm_avx512(const ConvTGemmArgs& g, int64_t r0, int64_t r1, int64_t p0, int64_t p1);

// y[m * P + p] = act(t[p * ldt + m] (+ z[m * P + p])) for channels [m0, m1)
// and pixels [0, P): C^T back to one image's NCHW planes (z may be null).
void conv_tgemm_transpose_avx512(const float* t, int64_t ldt, int64_t P, int64_t m0, int64_t m1, float* y,
                                 const float* z, const Activation& act);

}  // namespace pyengine
