// Runtime CPU dispatch. One KernelTable per instruction set, filled at start-up:
// it begins with the scalar reference kernels and each ISA the CPU supports
// overrides the entries it implements. A kernel object keeps a pointer to the
// table that was current when it was built, so pre-packed weights and the code
// that reads them always agree even if the ISA is switched later.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/activation.h"

namespace pyengine {

class ThreadPool;

enum class Isa : int32_t { Scalar = 0, Avx2 = 1, Avx512 = 2 };

// y = act(x) for n floats, in place allowed (x == y).
using ActivationFn = void (*)(const float* x, float* y, int64_t n, const Activation& act);
using UnaryFn = void (*)(const float* x, float* y, int64_t n);
using BinaryFn = void (*)(const float* a, const float* b, float* y, int64_t n);
// y[i] = a[i] op s (s scalar) - the inner loop of broadcasting.
using BinaryScalarFn = void (*)(const float* a, float s, float* y, int64_t n);
// Reduction of n contiguous floats to one value.
using ReduceFn = float (*)(const float* x, int64_t n);
// y[i] = exp(x[i] - shift); returns the sum of y (softmax's inner loop).
using ExpShiftSumFn = float (*)(const float* x, float shift, float* y, int64_t n);

// Layout of a constant GEMM operand packed once at plan compile time; the ISA
// decides the layout, so only the table that packed it may read it.
struct PackedB {
  int64_t K = 0, N = 0;
  std::vector<float> data;  // layout private to the ISA's gemm
  // Index in `data` of the first packed element: the AVX2 packer starts its
  // panels on a 64-byte boundary so no vector load straddles a cache line.
  int64_t offset = 0;
  const float* ptr() const { return data.data() + offset; }
};

// C[M,N] = alpha * op(A) @ op(B) + beta * C, then per-column bias (length N) or
// per-row bias (length M) added, then the activation. Row-major; lda/ldb/ldc
// are row strides of the stored (untransposed) matrices.
struct GemmArgs {
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1.f, beta = 0.f;
  const float* A = nullptr; int64_t lda = 0;
  const float* B = nullptr; int64_t ldb = 0;
  float* C = nullptr; int64_t ldc = 0;
  const float* bias_col = nullptr;  // length N
  const float* bias_row = nullptr;  // length M
  Activation act;
};

using SgemmFn = void (*)(const GemmArgs& args, ThreadPool* pool);
using PackBFn = void (*)(const float* B, int64_t ldb, bool trans_b, int64_t K, int64_t N, PackedB* out);
// As SgemmFn with args.B/ldb/trans_b ignored and the packed operand used.
using SgemmPackedFn = void (*)(const GemmArgs& args, const PackedB& b, ThreadPool* pool);

// --- conv/pool ---
// One output plane of a depthwise convolution (one input channel, one filter),
// 3-D geometry (1-D/2-D lifted with leading axes of size 1): y = bias + conv(x).
struct DwConvArgs {
  const float* x = nullptr;  // input plane [in0][in1][in2]
  const float* w = nullptr;  // filter [k0][k1][k2]
  float* y = nullptr;        // output plane [out0][out1][out2]
  float bias = 0.f;
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
  // Per-thread work space of conv_dw_scratch_floats() floats (kernels/conv_dw.h),
  // or null (then SIMD kernels fall back to the plain loop).
  float* scratch = nullptr;
};
using ConvDwPlaneFn = void (*)(const DwConvArgs& a);

// Winograd F(2x2, 3x3) transforms (kernels/conv_wino_impl.h) for one channel
// over `units` tile rows: unit u is tile row th = (th0 + u) % TH of image
// plane x + ((th0 + u) / TH) * plane; each has TW tiles, tile t = u*TW + j
// covering output rows 2th..2th+1, columns 2j..2j+1. Transformed value xi
// (0..15) of tile t lives at v[xi * xi_stride + t].
struct WinoArgs {
  const float* x = nullptr;  // input: channel planes of every image; output: see below
  float* y = nullptr;
  float* v = nullptr;
  int64_t plane = 0;        // floats between images' planes of this channel
  int64_t h = 0, w = 0;     // input plane (input transform) or output plane (output transform)
  int64_t ph = 0, pw = 0;   // padding at the top/left (input transform)
  int64_t th0 = 0, units = 0, TH = 0, TW = 0;
  int64_t xi_stride = 0;
  float bias = 0.f;         // added by the output transform
};
// v = B^T d B for each 4x4 input patch d (zero outside the plane).
using ConvWinoInFn = void (*)(const WinoArgs& a);
// y = A^T m A + bias for each tile's 4x4 m = a.v values (2x2 outputs, cut at the plane's edge).
using ConvWinoOutFn = void (*)(const WinoArgs& a);

struct KernelTable {
  Isa isa = Isa::Scalar;
  const char* name = "scalar";

  // --- gemm (kernels/*/gemm_*.cpp) ---
  SgemmFn sgemm = nullptr;
  PackBFn pack_b = nullptr;
  SgemmPackedFn sgemm_packed = nullptr;

  // --- vector math (kernels/*/vmath_*.cpp) ---
  ActivationFn activation = nullptr;
  UnaryFn exp = nullptr;
  UnaryFn tanh = nullptr;
  UnaryFn sigmoid = nullptr;
  UnaryFn erf = nullptr;
  UnaryFn log = nullptr;
  ReduceFn reduce_sum = nullptr, reduce_sumsq = nullptr;  // float accumulation order is ISA-specific
  ReduceFn reduce_max = nullptr, reduce_min = nullptr;    // NaN anywhere -> NaN
  ExpShiftSumFn exp_shift_sum = nullptr;

  // --- elementwise binary (kernels/*/vbinary_*.cpp) ---
  BinaryFn add = nullptr, sub = nullptr, mul = nullptr, div = nullptr;
  BinaryScalarFn add_scalar = nullptr, sub_scalar = nullptr, rsub_scalar = nullptr;
  BinaryScalarFn mul_scalar = nullptr, div_scalar = nullptr, rdiv_scalar = nullptr;

  // --- conv/pool (kernels/*/conv_*.cpp) ---
  ConvDwPlaneFn conv_dw_plane = nullptr;
  ConvWinoInFn conv_wino_in = nullptr;
  ConvWinoOutFn conv_wino_out = nullptr;
};

// Fill functions, one per kernel family and ISA. The reference ones set every
// entry; SIMD ones override what they implement.
void fill_gemm_ref(KernelTable& t);
void fill_vmath_ref(KernelTable& t);
void fill_vbinary_ref(KernelTable& t);
void fill_conv_ref(KernelTable& t);
#if defined(PYENGINE_HAVE_AVX2)
void fill_gemm_avx2(KernelTable& t);
void fill_vmath_avx2(KernelTable& t);
void fill_vbinary_avx2(KernelTable& t);
void fill_conv_avx2(KernelTable& t);
#endif
#if defined(PYENGINE_HAVE_AVX512)
// AVX-512 (F/BW/VL/DQ): the table starts as the AVX2 one; only these override it.
void fill_gemm_avx512(KernelTable& t);
void fill_vmath_avx512(KernelTable& t);  // sigmoid, tanh
#endif

// The table in use for kernels built from now on.
const KernelTable& kernels();
const KernelTable& kernels_for(Isa isa);
// "auto", "scalar", "avx2" or "avx512"; throws std::invalid_argument if the CPU lacks it.
void set_isa(const std::string& name);
std::string current_isa();
std::vector<std::string> available_isas();
bool cpu_supports(Isa isa);

}  // namespace pyengine
