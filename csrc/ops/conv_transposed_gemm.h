// Convolution on small output planes as the transposed product (used by
// ops/conv.cpp's ConvKernel, which decides when):
//
//   C^T[pixels, Cout] = cols^T[pixels, K] @ W^T[K, Cout]
//
// The usual product C[Cout, pixels] = W @ cols puts the pixels along the
// GEMM's columns: with 7x7 outputs (N = 49) the 32-wide AVX-512 panels are
// 32 + 17 columns, a quarter of the lanes wasted. Transposed, the output
// channels (multiples of 16 in real networks) fill the vector lanes, the
// pixels are the microkernel's broadcast rows, and W^T is packed once as the
// GEMM's constant B. The bias is the GEMM's per-column bias, the activation
// its epilogue; a pass then transposes C^T back into the NCHW planes (adding
// the residual input and applying the activation there when there is one).
//
// Operand A: for 1x1 stride-1 convolutions the input image itself read as
// transposed ([K, pixels] stored, trans_a); otherwise the caller's im2col
// [K rows, pixels] (also read as transposed), several images side by side.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/dispatch.h"

namespace pyengine {

class ConvTransposedGemm {
 public:
  // Writes the K x P columns of image n at col (rows ld floats apart).
  using ColsFn = std::function<void(int64_t n, float* col, int64_t ld)>;

  // w: constant weights [M][K] row-major (one group). pointwise: 1x1 stride
  // 1 without padding (X read in place, no columns).
  void init(const KernelTable& t, const float* w, int64_t N, int64_t M, int64_t K, int64_t P, bool pointwise);

  // Scratch floats run() needs (shared by all threads; the GEMM and the
  // transpose thread inside).
  int64_t scratch_floats() const;

  // Y[n][m][p] = act(conv + bias[m] (+ Z[n][m][p])). bias and Z may be null.
  void run(const KernelTable& t, ThreadPool* pool, const float* X, const float* bias, const float* Z,
           const Activation& act, float* Y, float* scratch, const ColsFn& cols) const;

 private:
  void run_fast(ThreadPool* pool, const GemmArgs& g) const;

  PackedB wt_;  // W^T [K, M] packed as the table GEMM's B (not AVX-512)
  // AVX-512 table: W^T as kernels/conv_tgemm.h's panels, used by its own loop.
  bool fast_ = false;
  std::vector<float> fast_b_;
  int64_t fast_off_ = 0;  // first float of the panels (64-byte aligned)
  int64_t N_ = 0, M_ = 0, K_ = 0, P_ = 0;
  int64_t nb_ = 1;  // images per GEMM (their columns side by side)
  bool pointwise_ = false;
};

}  // namespace pyengine
