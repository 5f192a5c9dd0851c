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

// A constant GEMM A operand (e.g. convolution weights) packed once at plan
// compile time into the ISA's micro-panels, so sgemm_packed_a skips packing
// A blocks on every call. Layout private to the ISA's gemm, like PackedB.
struct PackedA {
  int64_t M = 0, K = 0;
  std::vector<float> data;
  int64_t offset = 0;  // first packed element (64-byte aligned in the SIMD packers)
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
using PackAFn = void (*)(const float* A, int64_t lda, bool trans_a, int64_t M, int64_t K, PackedA* out);
// As SgemmFn with op(A) read from `a` (packed by the same table's pack_a from
// the A that args.A/lda/trans_a describe: the matrix-vector and few-row paths
// read that plain A; args.A may be null, and those shortcuts are then skipped)
// and, when b is not null, B from `b` as in sgemm_packed. Bit-identical to
// sgemm / sgemm_packed on the same operands.
using SgemmPackedAFn = void (*)(const GemmArgs& args, const PackedA& a, const PackedB* b, ThreadPool* pool);

// --- conv/pool ---
// One output plane of a depthwise convolution (one input channel, one filter),
// 3-D geometry (1-D/2-D lifted with leading axes of size 1): y = bias + conv(x).
struct DwConvArgs {
  const float* x = nullptr;  // input plane [in0][in1][in2]
  const float* w = nullptr;  // filter [k0][k1][k2]
  float* y = nullptr;        // output plane [out0][out1][out2]
  float bias = 0.f;
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
  // Applied to the output by every conv_dw_plane kernel when its kind is
  // None, Relu, LeakyRelu or Clip (the caller applies any other kind itself).
  Activation act;
  // `planes` consecutive planes in one call (per-call set-up paid once):
  // plane p reads x + p*x_stride, w + p*w_stride, writes y + p*y_stride and
  // starts from biases[p] (bias when biases is null).
  int64_t planes = 1;
  int64_t x_stride = 0, w_stride = 0, y_stride = 0;
  const float* biases = nullptr;
  // Per-thread work space of conv_dw_scratch_floats() floats (kernels/conv_dw.h),
  // or null (then SIMD kernels fall back to the plain loop).
  float* scratch = nullptr;
};
using ConvDwPlaneFn = void (*)(const DwConvArgs& a);

// --- dw-pool: direct 1x1 convolution (no packing) for few channels ---
// y[m][p] = act(bias[m] + sum_k w[m][k] * x[k][p]) for m < M, p < N: rows of
// x and y are ldx / ldy floats apart, w is [M][K] row-major, bias may be
// null. The kernel applies Relu, LeakyRelu and Clip; the caller any other.
struct Conv1x1Args {
  const float* x = nullptr;
  const float* w = nullptr;
  const float* bias = nullptr;
  float* y = nullptr;
  int64_t M = 0, K = 0, N = 0, ldx = 0, ldy = 0;
  Activation act;
};
using Conv1x1Fn = void (*)(const Conv1x1Args& a);
// --- end dw-pool ---

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

// --- small-cnn: direct convolution (kernels/*/conv_direct_*.cpp) ---
// Stride-1 convolution over zero-padded input planes whose rows are `ld`
// floats wide, computed at flat positions q = oh * ld + ow (ow runs over the
// whole padded row; the op keeps ow < OW):
//   y[m * y_ld + q] = bias[m] + sum_c sum_t x[c * x_plane + q + taps[t]] * w[(c * T + t) * w_ld + m]
// for m in [m0, m1), q in [0, Q). The sums run over c, then t, one FMA each.
// Kernels may read x up to round_up(Q, 16) - 1 + max(taps) in each plane and
// write y up to round_up(Q, 16) in each row (y_ld >= that).
//
// conv_direct_cl ("channels in lanes") computes the same sums for the listed
// positions only, output channels along the vector: for i in [p0, p1),
//   y[i * y_ld + m] = bias[m] + sum_c sum_t x[c * x_plane + pos[i] + taps[t]] * w[(c * T + t) * w_ld + m]
// for m in [m0, m1), m0 a multiple of 16. w and bias are zero-padded to w_ld,
// a multiple of 16; kernels may compute and write columns up to
// round_up(m1, 16) (y_ld >= that).
struct ConvDirectArgs {
  const float* x = nullptr;
  int64_t x_plane = 0, C = 0;
  const int64_t* taps = nullptr;
  int64_t T = 0;
  // offs[c * T + t] = c * x_plane + taps[t]: the SIMD kernels run one loop
  // over all (c, t) steps (a short loop over the taps mispredicts its exit).
  const int64_t* offs = nullptr;
  const float* w = nullptr;
  int64_t w_ld = 0;
  const float* bias = nullptr;  // w_ld entries
  float* y = nullptr;
  int64_t y_ld = 0, Q = 0, m0 = 0, m1 = 0;
  const int64_t* pos = nullptr;  // conv_direct_cl only
  int64_t p0 = 0, p1 = 0;
  // conv_direct_cl: when set, the results are also transposed into
  // out[m * out_ld + i] for m in [m0, m1), i in [p0, p1) (y is then work space).
  float* out = nullptr;
  int64_t out_ld = 0;
};
using ConvDirectFn = void (*)(const ConvDirectArgs& a);
// --- end small-cnn ---

// --- small-wino: Winograd F(4x4, 3x3), channels in lanes (kernels/conv_wino_cl_impl.h) ---
// `images` images of a 3x3 stride-1 convolution on a small plane. Tiles of 4x4
// outputs, TH x TW of them; tile (th, tw) reads xt rows 4th..4th+5 and
// columns 4tw..4tw+5 of the zero-padded, channels-last input
// xt[(4TH+2) rows][(4TW+2) columns][Cp]. u[xi][c][m] = (G g G^T)[xi] for
// c < C, m < Mp (zero for m >= M); bias has Mp entries. Writes
// y[m * OH * OW + oh * OW + ow] = bias[m] + conv for m < M (no activation),
// using v (T * 36 * Cp floats) and mo (T * 36 * Mp floats) as work space.
// Cp and Mp are multiples of 16. Image i reads xt + i * xt_image and writes
// y + i * M * OH * OW; T counts the tiles of all images (their products
// share each pass over u).
struct WinoClArgs {
  const float* xt = nullptr;
  const float* u = nullptr;
  const float* bias = nullptr;
  float* v = nullptr;
  float* mo = nullptr;
  float* y = nullptr;
  int64_t TH = 0, TW = 0, C = 0, Cp = 0, M = 0, Mp = 0, OH = 0, OW = 0;
  int64_t images = 1, xt_image = 0;
};
using ConvWinoClFn = void (*)(const WinoClArgs& a);
// --- end small-wino ---
// --- pool: float32 MaxPool / AveragePool over 2-D windows (kernels/*/pool_*.cpp) ---
// `planes` planes: plane p reads x + p * x_stride ([ih][iw]) and writes
// y + p * y_stride ([oh][ow]). Output (oh, ow) reduces input rows
// oh*sh - ph + [0, kh) and columns ow*sw - pw + [0, kw) that lie inside the
// plane (rows first, in order, then columns in order); positions outside
// count as the lowest float (max) or are left out of the sum (average, then
// divided by cnt_h[oh] * cnt_w[ow]). A row with no window row inside gets the
// lowest float (max) or 0 (average). Kernels take sw 1 or 2, kw <= 16,
// ow <= kPool2dMaxWidth and iw + pw <= 2 * kPool2dMaxWidth; cnt_w holds
// round_up(ow, 16) floats. Every call's results are independent of how the
// planes are split between calls (threads).
constexpr int64_t kPool2dMaxWidth = 4096;
struct Pool2dArgs {
  const float* x = nullptr;
  float* y = nullptr;
  int64_t planes = 1, x_stride = 0, y_stride = 0;
  int64_t ih = 0, iw = 0, oh = 0, ow = 0, kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  bool avg = false;
  const float* cnt_h = nullptr;
  const float* cnt_w = nullptr;
};
using Pool2dFn = void (*)(const Pool2dArgs& a);
// --- end pool ---

// --- rnn: fused recurrent cell math (kernels/avx512/rnn_avx512.cpp) ---
// LSTM cell, default activations (f = sigmoid, g = h = tanh), for w hidden
// units of one batch row: gates = [i | o | f | c~] pre-activations (w each,
// clipped to [-clip, clip] when clip > 0; may be overwritten), c updated in
// place to f*c + i*tanh(c~), h = o * tanh(c).
using LstmCellFn = void (*)(float* gates, float* c, float* h, int64_t w, float clip);
// GRU cell with linear_before_reset, default activations: rg = [z | r | h]
// recurrent products (h with Rbh), xg = [z | r | h] input products with
// their biases; z, r = sigmoid(clip(rg + xg)), hh = tanh(clip(xg_h + r*rg_h)),
// h = (1 - z) hh + z hprev (h may alias hprev).
using GruCellFn = void (*)(const float* rg, const float* xg, const float* hprev, float* h, int64_t w, float clip);
// --- end rnn ---
struct KernelTable {
  Isa isa = Isa::Scalar;
  const char* name = "scalar";

  // --- gemm (kernels/*/gemm_*.cpp) ---
  SgemmFn sgemm = nullptr;
  PackBFn pack_b = nullptr;
  SgemmPackedFn sgemm_packed = nullptr;
  PackAFn pack_a = nullptr;
  SgemmPackedAFn sgemm_packed_a = nullptr;

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
  Conv1x1Fn conv1x1_direct = nullptr;  // dw-pool: SIMD only (null: use the GEMM)
  ConvWinoInFn conv_wino_in = nullptr;
  ConvWinoOutFn conv_wino_out = nullptr;

  // --- small-cnn: direct convolution ---
  ConvDirectFn conv_direct = nullptr;
  ConvDirectFn conv_direct_cl = nullptr;
  // --- end small-cnn ---
  // [conv3x3] Winograd F(4x4, 3x3): same WinoArgs, 36 values per tile of 4x4
  // outputs (tile row th covers output rows 4th..4th+3), xi = 6i + l.
  ConvWinoInFn conv_wino43_in = nullptr;
  ConvWinoOutFn conv_wino43_out = nullptr;
  ConvWinoClFn conv_wino_cl = nullptr;  // small-wino
  // --- pool --- SIMD only (null: the op's own row path)
  Pool2dFn pool2d_f32 = nullptr;
  // --- end pool ---
  // --- rnn: null where the ISA has none (the recurrent kernel then makes the separate calls) ---
  LstmCellFn lstm_cell = nullptr;
  GruCellFn gru_cell = nullptr;
  // --- end rnn ---
};

// Fill functions, one per kernel family and ISA. The reference ones set every
// entry; SIMD ones override what they implement.
void fill_gemm_ref(KernelTable& t);
void fill_vmath_ref(KernelTable& t);
void fill_vbinary_ref(KernelTable& t);
void fill_conv_ref(KernelTable& t);
void fill_conv_direct_ref(KernelTable& t);  // small-cnn
void fill_conv_wino_cl_ref(KernelTable& t);  // small-wino
#if defined(PYENGINE_HAVE_AVX2)
void fill_gemm_avx2(KernelTable& t);
void fill_vmath_avx2(KernelTable& t);
void fill_vbinary_avx2(KernelTable& t);
void fill_conv_avx2(KernelTable& t);
void fill_conv_direct_avx2(KernelTable& t);  // small-cnn
void fill_conv_wino_cl_avx2(KernelTable& t);  // small-wino
void fill_conv_wino_avx2(KernelTable& t);  // [conv3x3] Winograd F(4x4, 3x3) entries
void fill_pool_avx2(KernelTable& t);  // pool: kernels/avx2/pool_avx2.cpp
#endif
#if defined(PYENGINE_HAVE_AVX512)
// AVX-512 (F/BW/VL/DQ): the table starts as the AVX2 one; only these override it.
void fill_gemm_avx512(KernelTable& t);
void fill_conv_direct_avx512(KernelTable& t);  // small-cnn
void fill_conv_wino_cl_avx512(KernelTable& t);  // small-wino
// --- dw-pool: depthwise conv, elementwise binary, direct 1x1 conv
// (kernels/avx512/conv_dw_avx512.cpp, vbinary_avx512.cpp, conv1x1_avx512.cpp) ---
void fill_conv_avx512(KernelTable& t);
void fill_vbinary_avx512(KernelTable& t);
void fill_conv1x1_avx512(KernelTable& t);
// --- end dw-pool ---
void fill_conv_wino_avx512(KernelTable& t);  // [conv3x3] both Winograd transforms
void fill_pool_avx512(KernelTable& t);  // pool: kernels/avx512/pool_avx512.cpp
void fill_vmath_avx512(KernelTable& t);  // sigmoid, tanh, exp, erf, reduce_max/min, exp_shift_sum
void fill_rnn_avx512(KernelTable& t);  // rnn: lstm_cell, gru_cell
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
