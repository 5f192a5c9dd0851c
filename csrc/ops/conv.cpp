// Conv and ConvTranspose on float32 (NCHW, 1-D to 3-D), with the bias and
// the fused activation applied in the GEMM epilogue.
//
// Conv paths, chosen once from the shapes (never from the thread count, so
// results are the same bits on any number of threads):
//  - depthwise (group == C_in, one input channel per group): a direct kernel
//    over runs of output planes (table_.conv_dw_plane, one call per thread's
//    run, with a per-thread work space for the AVX2 kernel's padded copy; the
//    cheap activations applied inside it), parallel over planes;
//  - 3x3 stride 1, constant weights, >= 16 channels each side: Winograd
//    F(4x4, 3x3) when the output has >= 32 tiles of 4x4 (all images) and
//    C * M <= 128 * 128 or the plane is >= 28 x 28, else
//    F(2x2, 3x3) when it has >= 32 tiles of 2x2 (run_winograd; transforms in
//    kernels/conv_wino_impl.h and, for AVX-512, kernels/avx512/conv_wino_avx512.cpp);
//  - 1x1, stride 1, no padding: Y[n][g] = W_g[Mg, Cg] @ X[n][g][Cg, HW], the
//    GEMM reads the input in place; with few channels and a SIMD table, a
//    direct kernel without the GEMM's packing (run_direct1x1);
//  - smallconv: small output planes (<= 14 x 14 on AVX-512, <= 7 x 7 on the
//    other tables), constant weights, one group, not Winograd: the transposed
//    product C^T[pixels, M] = cols^T @ W^T with W^T packed once, output
//    channels in the vector lanes, then transposed back to NCHW with the
//    residual sum and activation (ops/conv_transposed_gemm.h);
//  - everything else: im2col of a tile of output columns into per-thread
//    scratch, then Y_tile = W_g @ col. Tiles of every (image, group) are
//    spread over the threads; when there are too few tiles (batch 1, small
//    output) one whole im2col per image is made and the GEMM itself threads.
//    With stride 2 along W the input rows are first split into even and odd
//    columns (im2col_w2), so every row of the columns is a plain copy.
// Residual input 3 (graph/passes/fuse_residual.py): Y = act(conv + bias + Z);
// Winograd adds Z to each finished row, the other paths in a pass after.
// The weights [M, C/g, k...] are already the row-major A operand of each
// group's GEMM, so constant and computed weights take the same path.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/conv_dw.h"
#include "ops/common.h"
#include "ops/conv_direct.h"  // small-cnn
#include "ops/conv_transposed_gemm.h"  // smallconv
#include "ops/conv_wino_small.h"  // small-wino
#include "ops/winograd_filter.h"
#include "ops/conv_window.h"

namespace pyengine {

namespace {

constexpr int64_t kColBudget = 128 * 1024;  // floats of im2col per tile (~512 KB, about an L2)
constexpr int64_t kMinTile = 64, kMaxTile = 512;
constexpr int64_t kMinParallelTiles = 4;
// Winograd: from this many input and output channels (the transforms cost
// O(C + M) per tile, the saving O(C * M)); tiles per block between the bounds,
// V and the GEMM outputs of a block within kWinoBudget floats (~1 MB, in L2;
// 0.5 to 4 MB measured within noise on the ResNet-18 layers).
constexpr int64_t kWinoMinChannels = 16;
constexpr int64_t kWinoBudget = 256 * 1024;
constexpr int64_t kWinoMinTiles = 64, kWinoMaxTiles = 256;
constexpr int64_t kWinoMinTilesTotal = 32;
// Direct 1x1 (run_direct1x1): up to this many input and output channels per
// group (measured against the GEMM at batch 1: 16->32 at 112x112 and 16->64
// at 55x55 saved 20-25%, 24->144, 16->128, 64->384 were even or lost up to
// 6%); pixels per task.
constexpr int64_t kDirect1x1MaxK = 64, kDirect1x1MaxM = 64;
constexpr int64_t kDirect1x1Cols = 256;
constexpr int64_t kWino43MinTiles = 32;  // F(4x4, 3x3) from this many 4x4 tiles
// ... and up to this C * M, or on planes of at least 28 x 28 outputs. Its 36
// transformed weight matrices (2.4 MB at 128 x 128, about the L2) are
// streamed once per block: on the small planes of 256 and 512 channels that
// made F(4x4) slower than F(2x2) (batch 8: 256x14x14 7.9 vs 6.4 ms, 512x7x7
// 10.6 vs 8.2 ms), while on large planes it still won (batch 1: 256x28x28
// 2.9 vs 3.6 ms, 256x56x56 9.9 vs 13.6, 512x28x28 12.0 vs 12.7).
constexpr int64_t kWino43MaxCM = 128 * 128;
constexpr int64_t kWino43BigPlane = 28;
// smallconv: output planes up to this many pixels take the transposed product
// (ConvTransposedGemm) when the weights are constant, there is one group and
// Winograd does not apply. ResNet-50 in the model, 1 thread, AVX-512 (per-node
// minimum of 12 runs, us, old -> transposed, onnxruntime): 7x7 outputs
// 512->2048 1x1 1010 -> 625 (720), 2048->512 1x1 975 -> 610 (665), 512 3x3
// 2440 -> 1560 (1630), 1024x14x14->2048 1x1/2 2100 -> 1320 (1530),
// 512x14x14 3x3/2 2400 -> 1590 (1625); 14x14 outputs 256->1024 1x1 595 ->
// 545 (530), 1024->256 1x1 600 -> 530 (505), 512x28x28->1024 1x1/2 1310 ->
// 1175 (1135), 256x28x28 3x3/2 1850 -> 1720 (1226). 28x28 outputs (784
// pixels) lost: 128->512 1x1 505 -> 680, 128x56x56 3x3/2 1570 -> 2540 (C^T
// and its transpose outgrow the L2). The other tables run it through their
// plain packed-B SGEMM, which won only on 7x7 (AVX2, one node: 512->2048 1x1
// -2%, 2048->512 -13%, 512 3x3 -12%; 14x14 +4..21%).
// Winograd stays first where it applies: one-node 3x3 layers, thread CPU
// time, Winograd vs transposed: 512x7x7 at batch 2 / 8 1.94 vs 2.78 ms /
// 7.1 vs 11.1 ms, 256x14x14 batch 1 0.83 vs 1.44 ms.
// The limit counts the pixels of all images (one product serves the batch):
// MobileNetV2 at batch 8 (7x7 and 14x14 1x1 layers, 392-1568 rows) ran at
// 1.65x onnxruntime with the transposed product at 2 threads, 1.18x without.
constexpr int64_t kTGemmMaxPlane = 196;
constexpr int64_t kTGemmMaxPlaneGeneric = 49;

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Rows (c, kd, kh, kw) for channels [c0, c1) and columns [p0, p1) of the
// flattened output of one group's input x [Cg][D][H][W]; row r of channel c
// is written at col + ((c - c0) * ksize + r) * ld. Taps outside the input are 0.
// 2-D windows with stride 2 along W (ResNet's 7x7/2 stem and 3x3/2 convs):
// the input rows a tile needs are first split into even and odd columns
// (work: ih_rows x 2 x half floats), so that every (kh, kw) row of the tile
// is a plain copy from one phase instead of a strided gather.
inline bool im2col_split_w2(const Window3& w) {
  return w.in[0] == 1 && w.k[0] == 1 && w.out[0] == 1 && w.s[2] == 2 && w.d[2] == 1;
}
inline int64_t im2col_half(const Window3& w) { return (w.in[2] + 1) / 2; }

void im2col_w2(const float* x, const Window3& w, int64_t c0, int64_t c1, int64_t p0, int64_t p1, float* col,
               int64_t ld, float* work) {
  const int64_t OW = w.out[2], IH = w.in[1], IW = w.in[2], half = im2col_half(w);
  // input rows read by output rows [p0 / OW, (p1 - 1) / OW]
  const int64_t ih0 = std::max<int64_t>(0, (p0 / OW) * w.s[1] - w.pb[1]);
  const int64_t ih1 = std::min(IH, ((p1 - 1) / OW) * w.s[1] - w.pb[1] + (w.k[1] - 1) * w.d[1] + 1);
  float* dst = col;
  for (int64_t c = c0; c < c1; ++c) {
    const float* xc = x + c * w.in_size();
    for (int64_t ih = ih0; ih < ih1; ++ih) {
      const float* xr = xc + ih * IW;
      float* e = work + (ih - ih0) * 2 * half;
      float* o = e + half;
      for (int64_t j = 0; j < IW / 2; ++j) {
        e[j] = xr[2 * j];
        o[j] = xr[2 * j + 1];
      }
      if (IW % 2) e[IW / 2] = xr[IW - 1];
    }
    for (int64_t kh = 0; kh < w.k[1]; ++kh)
      for (int64_t kw = 0; kw < w.k[2]; ++kw, dst += ld) {
        const int64_t off = kw - w.pb[2];        // input column = 2 * ow + off
        const int64_t q = off & 1, sh = (off - q) / 2;  // = phase q, index ow + sh
        int64_t lo, hi;
        valid_range(off, 2, IW, OW, &lo, &hi);
        int64_t p = p0, ow = p % OW, oh = p / OW;
        float* out = dst;
        while (p < p1) {
          const int64_t n = std::min(p1 - p, OW - ow);
          const int64_t ih = oh * w.s[1] - w.pb[1] + kh * w.d[1];
          if (ih < 0 || ih >= IH) {
            std::fill(out, out + n, 0.f);
          } else {
            const float* src = work + (ih - ih0) * 2 * half + q * half + sh;
            const int64_t a = std::clamp(lo, ow, ow + n), b = std::clamp(hi, a, ow + n);
            std::fill(out, out + (a - ow), 0.f);
            for (int64_t j = a; j < b; ++j) out[j - ow] = src[j];
            std::fill(out + (b - ow), out + n, 0.f);
          }
          out += n;
          p += n;
          ow = 0;
          ++oh;
        }
      }
  }
}

void im2col(const float* x, const Window3& w, int64_t c0, int64_t c1, int64_t p0, int64_t p1, float* col,
            int64_t ld, float* work = nullptr) {
  if (work && im2col_split_w2(w)) return im2col_w2(x, w, c0, c1, p0, p1, col, ld, work);
  const int64_t OH = w.out[1], OW = w.out[2];
  const int64_t ID = w.in[0], IH = w.in[1], IW = w.in[2];
  float* dst = col;
  for (int64_t c = c0; c < c1; ++c) {
    const float* xc = x + c * w.in_size();
    for (int64_t kd = 0; kd < w.k[0]; ++kd)
      for (int64_t kh = 0; kh < w.k[1]; ++kh)
        for (int64_t kw = 0; kw < w.k[2]; ++kw, dst += ld) {
          const int64_t off = kw * w.d[2] - w.pb[2];
          int64_t lo, hi;
          valid_range(off, w.s[2], IW, OW, &lo, &hi);
          int64_t p = p0;
          int64_t ow = p % OW, oh = (p / OW) % OH, od = p / (OW * OH);
          float* out = dst;
          while (p < p1) {
            const int64_t n = std::min(p1 - p, OW - ow);  // rest of this output row
            const int64_t id = od * w.s[0] - w.pb[0] + kd * w.d[0];
            const int64_t ih = oh * w.s[1] - w.pb[1] + kh * w.d[1];
            if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
              std::fill(out, out + n, 0.f);
            } else {
              const float* xr = xc + (id * IH + ih) * IW;
              const int64_t a = std::clamp(lo, ow, ow + n), b = std::clamp(hi, a, ow + n);
              std::fill(out, out + (a - ow), 0.f);
              if (w.s[2] == 1) std::memcpy(out + (a - ow), xr + a + off, static_cast<size_t>(b - a) * sizeof(float));
              else
                for (int64_t j = a; j < b; ++j) out[j - ow] = xr[j * w.s[2] + off];
              std::fill(out + (b - ow), out + n, 0.f);
            }
            out += n;
            p += n;
            ow = 0;
            if (++oh == OH) { oh = 0; ++od; }
          }
        }
  }
}

// Y planes = bias + activation when the reduction is empty (no input channels).
void fill_bias(const KernelTable& t, float* y, const float* bias, int64_t planes, int64_t channels, int64_t size,
               const Activation& act) {
  for (int64_t i = 0; i < planes; ++i) {
    float* p = y + i * size;
    std::fill(p, p + size, bias ? bias[i % channels] : 0.f);
    t.activation(p, p, size, act);
  }
}

class ConvKernel : public Kernel {
 public:
  explicit ConvKernel(const NodeSpec& spec) : table_(kernels()) {
    const TensorDesc& x = spec.input(0);
    const TensorDesc& wt = spec.input(1);
    const TensorDesc& y = spec.outputs[0];
    require_dtype(x, DType::Float32, "Conv input X");
    require_dtype(wt, DType::Float32, "Conv weight W");
    require(x.rank() >= 3 && x.rank() <= 5 && wt.rank() == x.rank() && y.rank() == x.rank(),
            "Conv expects X and W of equal rank 3..5, got X " + shape_str(x.shape) + ", W " + shape_str(wt.shape));
    win_ = Window3::from_spec(spec, x.shape, y.shape);
    N_ = x.shape[0];
    C_ = x.shape[1];
    M_ = y.shape[1];
    G_ = spec.attrs.get_int("group", 1);
    require(G_ >= 1 && C_ % G_ == 0 && M_ % G_ == 0, "Conv: channels " + std::to_string(C_) + " -> " +
                                                         std::to_string(M_) + " not divisible by group " + std::to_string(G_));
    Cg_ = C_ / G_;
    Mg_ = M_ / G_;
    ks_ = win_.k_size();
    Kg_ = Cg_ * ks_;
    P_ = win_.out_size();
    require(wt.shape[0] == M_ && wt.shape[1] == Cg_ && wt.numel() == M_ * Kg_,
            "Conv weight " + shape_str(wt.shape) + " does not match input " + shape_str(x.shape) + " and group " +
                std::to_string(G_));
    has_bias_ = spec.has_input(2);
    if (has_bias_) {
      require_dtype(spec.input(2), DType::Float32, "Conv bias B");
      require(spec.input(2).numel() == M_, "Conv bias must have " + std::to_string(M_) + " entries");
    }
    act_ = fused_activation(spec);
    // Residual input (graph/passes/fuse_residual.py): Y = act(conv + bias + Z).
    // Every path then runs without the activation (act_ = None) and the sum
    // and activation are applied afterwards (Winograd: per finished rows).
    has_sum_ = spec.has_input(3);
    if (has_sum_) {
      require_dtype(spec.input(3), DType::Float32, "Conv residual input");
      require(spec.input(3).shape == y.shape, "Conv residual input " + shape_str(spec.input(3).shape) +
                                                  " must have the output shape " + shape_str(y.shape));
      sum_act_ = act_;
      act_ = Activation();
    }
    bool unit = true;
    for (int a = 0; a < 3; ++a) unit = unit && win_.k[a] == 1 && win_.s[a] == 1 && win_.pb[a] == 0 && win_.pe[a] == 0;
    depthwise_ = Cg_ == 1 && G_ == C_ && G_ > 1;
    pointwise_ = unit && !depthwise_;
    tile_ = std::min(P_, std::clamp(kColBudget / std::max<int64_t>(Kg_, 1) / 16 * 16, kMinTile, kMaxTile));
    tile_ = std::max<int64_t>(tile_, 1);
    ntiles_ = (P_ + tile_ - 1) / tile_;
    if (ntiles_ > 1) {
      // Near-equal tiles, an even number of them in all: the threads share
      // whole tiles, and 784 columns as 224, 224, 224, 112 gave two threads
      // 448 and 336. Shape-only, so the split never depends on the threads.
      if ((N_ * G_ * ntiles_) % 2 == 1) ++ntiles_;
      tile_ = std::min(P_, round_up((P_ + ntiles_ - 1) / ntiles_, 16));
      ntiles_ = (P_ + tile_ - 1) / tile_;
    }
    whole_ = N_ * G_ * ntiles_ < kMinParallelTiles;
    threads_ = std::max(1, spec.num_threads);
    col_stride_ = round_up(Kg_ * tile_, 16);
    if (!pointwise_ && !depthwise_ && im2col_split_w2(win_))  // im2col_w2's phase rows: a whole plane at most
      work_stride_ = round_up(win_.in[1] * 2 * im2col_half(win_), 16);
    direct1x1_ = pointwise_ && table_.conv1x1_direct && Kg_ <= kDirect1x1MaxK && Mg_ <= kDirect1x1MaxM;
    setup_winograd(spec);
    tgemm_ = !wino_ && want_transposed_gemm(spec);  // smallconv
    if (tgemm_) tg_.init(table_, static_cast<const float*>(wt.const_data), N_, M_, Kg_, P_, pointwise_);
    // Constant weights: each group's Mg x Kg matrix (the GEMM's A) packed once
    // here rather than on every call (measured ~10% of MobileNetV2).
    if (wt.const_data && !wino_ && !tgemm_ && !depthwise_ && !direct1x1_ && Kg_ > 0 && Mg_ > 0) {
      const float* w = static_cast<const float*>(wt.const_data);
      packed_w_.resize(static_cast<size_t>(G_));
      for (int64_t g = 0; g < G_; ++g) table_.pack_a(w + g * Mg_ * Kg_, Kg_, false, Mg_, Kg_, &packed_w_[g]);
    }
    if (depthwise_ && win_.in[0] == 1 && win_.out[0] == 1 && win_.k[0] == 1)
      dw_stride_ = round_up(conv_dw_scratch_floats(win_.out[1], win_.out[2], win_.k[1], win_.k[2], win_.s[1],
                                                   win_.s[2], win_.d[1], win_.d[2]), 16);
  }

  std::string path() const override {
    if (wino_) return wino_e_ == 4 ? "winograd_4x4" : "winograd_2x2";
    if (tgemm_) return "transposed_gemm";
    if (depthwise_) return "depthwise";
    if (direct1x1_) return "direct_1x1";
    return pointwise_ ? "gemm_1x1" : "im2col_gemm";
  }
  // The paths that packed the weights (Winograd's U, the transposed
  // product's W^T, the GEMM's A) never read them again.
  bool reads_constant_at_run(size_t i) const override {
    return !(i == 1 && (wino_ || tgemm_ || !packed_w_.empty()));
  }

  size_t scratch_bytes() const override {
    if (tgemm_) return static_cast<size_t>(tg_.scratch_floats() + work_stride_ * threads_) * sizeof(float);
    if (wino_) return static_cast<size_t>(wino_stride_ * (wino_blocks_ >= kMinParallelTiles ? threads_ : 1)) * sizeof(float);
    if (depthwise_) return static_cast<size_t>(dw_stride_ * threads_) * sizeof(float);
    if (pointwise_) return 0;
    size_t floats = whole_ ? static_cast<size_t>(round_up(Kg_ * P_, 16)) : static_cast<size_t>(col_stride_ * threads_);
    return (floats + static_cast<size_t>(work_stride_ * threads_)) * sizeof(float);
  }

  void run(const KernelIO& io) override {
    const float* X = in_ptr<float>(io, 0);
    const float* W = in_ptr<float>(io, 1);
    const float* B = has_bias_ ? in_ptr<float>(io, 2) : nullptr;
    float* Y = out_ptr<float>(io, 0);
    if (N_ == 0 || M_ == 0 || P_ == 0) return;
    const float* Z = has_sum_ ? in_ptr<float>(io, 3) : nullptr;
    if (wino_) return run_winograd(io, X, B, Z, Y);  // adds Z itself
    if (tgemm_) return run_transposed_gemm(io, X, B, Z, Y);  // smallconv; adds Z itself
    run_paths(io, X, W, B, Y);
    if (has_sum_)  // Y = act(Y + Z), plane by plane
      io.pool->parallel_for(N_ * M_, std::max<int64_t>(1, 16384 / P_), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          float* y = Y + i * P_;
          table_.add(y, Z + i * P_, y, P_);
          if (sum_act_.kind != Activation::None) table_.activation(y, y, P_, sum_act_);
        }
      });
  }

 private:
  void run_paths(const KernelIO& io, const float* X, const float* W, const float* B, float* Y) {
    if (Kg_ == 0) {
      fill_bias(table_, Y, B, N_ * M_, M_, P_, act_);
      return;
    }
    if (depthwise_) return run_depthwise(io, X, W, B, Y);
    if (direct1x1_) return run_direct1x1(io, X, W, B, Y);

    GemmArgs base;
    base.M = Mg_;
    base.K = Kg_;
    base.lda = Kg_;
    base.ldc = P_;
    base.act = act_;
    float* scratch = static_cast<float*>(io.scratch);
    // per-thread work space of im2col_w2 after the columns
    float* work = work_stride_ ? scratch + (whole_ ? round_up(Kg_ * P_, 16) : col_stride_ * threads_) : nullptr;
    auto thread_work = [&] { return work ? work + ThreadPool::thread_index() * work_stride_ : nullptr; };
    if (whole_) {
      for (int64_t n = 0; n < N_; ++n)
        for (int64_t g = 0; g < G_; ++g) {
          const float* xg = X + (n * C_ + g * Cg_) * win_.in_size();
          GemmArgs a = base;
          if (pointwise_) {
            a.B = xg;
          } else {
            io.pool->parallel_for(Cg_, 1, [&](int64_t c0, int64_t c1) {
              im2col(xg, win_, c0, c1, 0, P_, scratch + c0 * ks_ * P_, P_, thread_work());
            });
            a.B = scratch;
          }
          a.ldb = P_;
          a.N = P_;
          a.A = packed_w_.empty() ? W + g * Mg_ * Kg_ : nullptr;  // packed: W may be released
          a.C = Y + (n * M_ + g * Mg_) * P_;
          a.bias_row = B ? B + g * Mg_ : nullptr;
          gemm(a, g, io.pool);
        }
      return;
    }
    io.pool->parallel_for(N_ * G_ * ntiles_, 1, [&](int64_t i0, int64_t i1) {
      float* col = scratch + ThreadPool::thread_index() * col_stride_;
      for (int64_t it = i0; it < i1; ++it) {
        const int64_t t = it % ntiles_, g = (it / ntiles_) % G_, n = it / (ntiles_ * G_);
        const int64_t p0 = t * tile_, p1 = std::min(P_, p0 + tile_);
        const float* xg = X + (n * C_ + g * Cg_) * win_.in_size();
        GemmArgs a = base;
        if (pointwise_) {
          a.B = xg + p0;
          a.ldb = P_;
        } else {
          im2col(xg, win_, 0, Cg_, p0, p1, col, p1 - p0, thread_work());
          a.B = col;
          a.ldb = p1 - p0;
        }
        a.N = p1 - p0;
        a.A = packed_w_.empty() ? W + g * Mg_ * Kg_ : nullptr;  // packed: W may be released
        a.C = Y + (n * M_ + g * Mg_) * P_ + p0;
        a.bias_row = B ? B + g * Mg_ : nullptr;
        gemm(a, g, nullptr);
      }
    });
  }

  // smallconv: small output planes as C^T = cols^T @ W^T (ops/conv_transposed_gemm.h).
  bool want_transposed_gemm(const NodeSpec& spec) const {
    if (!spec.input(1).const_data || G_ != 1 || depthwise_ || direct1x1_ || Kg_ == 0 || M_ == 0 || P_ == 0 ||
        N_ == 0 || !table_.pack_b)
      return false;
    if (const char* f = std::getenv("PYENGINE_CONV_TGEMM"))  // benchmarking override: max plane
      return P_ <= std::atoll(f);
    return N_ * P_ <= (table_.isa == Isa::Avx512 ? kTGemmMaxPlane : kTGemmMaxPlaneGeneric);
  }

  void run_transposed_gemm(const KernelIO& io, const float* X, const float* B, const float* Z, float* Y) {
    float* scratch = static_cast<float*>(io.scratch);
    float* work = work_stride_ ? scratch + tg_.scratch_floats() : nullptr;
    auto cols = [&](int64_t n, float* col, int64_t ld) {
      const float* xn = X + n * C_ * win_.in_size();
      io.pool->parallel_for(Cg_, 1, [&](int64_t c0, int64_t c1) {
        im2col(xn, win_, c0, c1, 0, P_, col + c0 * ks_ * ld, ld,
               work ? work + ThreadPool::thread_index() * work_stride_ : nullptr);
      });
    };
    tg_.run(table_, io.pool, X, B, Z, has_sum_ ? sum_act_ : act_, Y, scratch, cols);
  }

  // Group g's product, from its pre-packed weights when they are constant.
  void gemm(const GemmArgs& a, int64_t g, ThreadPool* pool) const {
    if (packed_w_.empty()) table_.sgemm(a, pool);
    else table_.sgemm_packed_a(a, packed_w_[static_cast<size_t>(g)], nullptr, pool);
  }

  // Winograd for 3x3 stride-1 convolutions with constant weights and enough
  // channels: F(4x4, 3x3) (4x fewer multiplies than im2col, 6x6 tiles) when the
  // output has enough 4x4 tiles, else F(2x2, 3x3) (2.25x, 4x4 tiles). Per
  // block of tile rows (of any images): V[nxi][C][T] = input transform, nxi
  // GEMMs Mw[xi][M][T] = U[xi][M][C] @ V[xi], then the output transform adds
  // the bias; the activation runs on the finished rows.
  void setup_winograd(const NodeSpec& spec) {
    const TensorDesc& wt = spec.input(1);
    bool ok = !depthwise_ && G_ == 1 && wt.const_data && win_.in[0] == 1 && win_.out[0] == 1 && win_.k[0] == 1;
    for (int a = 1; a < 3 && ok; ++a) ok = win_.k[a] == 3 && win_.s[a] == 1 && win_.d[a] == 1;
    ok = ok && C_ >= kWinoMinChannels && M_ >= kWinoMinChannels && P_ > 0 && N_ > 0;
    if (!ok) return;
    // Measured: with fewer tiles the GEMMs are too narrow (F(2x2) 512x7x7 at
    // batch 1, 16 tiles, lost 10%; 64x4x4, 4 tiles, lost 60%).
    auto tiles = [&](int64_t e) { return N_ * ((win_.out[1] + e - 1) / e) * ((win_.out[2] + e - 1) / e); };
    const bool f43_fits = C_ * M_ <= kWino43MaxCM || std::min(win_.out[1], win_.out[2]) >= kWino43BigPlane;
    if (tiles(4) >= kWino43MinTiles && f43_fits) wino_e_ = 4;
    else if (tiles(2) >= kWinoMinTilesTotal) wino_e_ = 2;
    else return;
    wino_ = true;
    const int64_t e = wino_e_, al = e + 2;
    nxi_ = al * al;
    TH_ = (win_.out[1] + e - 1) / e;
    TW_ = (win_.out[2] + e - 1) / e;
    const int64_t target = std::clamp<int64_t>(kWinoBudget / (nxi_ * (C_ + M_)), kWinoMinTiles, kWinoMaxTiles);
    // Blocks of near-equal size (tile rows differ by at most one) and an even
    // count, so two threads get equal shares: 14 rows in blocks of 4, 4, 4, 2
    // gave the threads 8 and 6 rows; 4, 3, 4, 3 gives 7 and 7. The split
    // depends on the shapes only, never on the thread count.
    const int64_t units_total = N_ * TH_;
    wino_blocks_ = (units_total + std::max<int64_t>(1, target / TW_) - 1) / std::max<int64_t>(1, target / TW_);
    if (wino_blocks_ > 1 && wino_blocks_ % 2 == 1 && wino_blocks_ < units_total) ++wino_blocks_;
    upb_ = (units_total + wino_blocks_ - 1) / wino_blocks_;  // the largest block
    Tb_ = upb_ * TW_;
    wino_stride_ = round_up(nxi_ * (C_ + M_) * Tb_, 16);
    // U[xi][m][c] = (G g G^T)[xi] (ops/winograd_filter.h)
    const float* w = static_cast<const float*>(wt.const_data);
    std::vector<float> U(static_cast<size_t>(nxi_ * M_ * C_));
    float u[36];
    for (int64_t m = 0; m < M_; ++m)
      for (int64_t c = 0; c < C_; ++c) {
        winograd_filter(w + (m * C_ + c) * 9, static_cast<int>(e), u);
        for (int64_t xi = 0; xi < nxi_; ++xi) U[static_cast<size_t>((xi * M_ + m) * C_ + c)] = u[xi];
      }
    packed_u_.resize(static_cast<size_t>(nxi_));  // the GEMMs' constant A operands
    for (int64_t xi = 0; xi < nxi_; ++xi) table_.pack_a(U.data() + xi * M_ * C_, C_, false, M_, C_, &packed_u_[xi]);
    // Only the packed form is kept (U is a local): U is 16/9 (F(2x2)) or 4
    // (F(4x4)) times the weights' size, too much to hold twice. The GEMMs get
    // no plain A and so never take their matrix-vector shortcuts (which would read it).
  }

  void run_winograd(const KernelIO& io, const float* X, const float* B, const float* Z, float* Y) {
    const int64_t units_total = N_ * TH_, OH = win_.out[1], OW = win_.out[2];
    auto block = [&](int64_t b, float* buf, ThreadPool* pool) {
      const int64_t u0 = units_total * b / wino_blocks_, units = units_total * (b + 1) / wino_blocks_ - u0;
      const int64_t T = units * TW_;
      float* V = buf;
      float* Mw = buf + nxi_ * C_ * Tb_;
      const ConvWinoInFn tf_in = wino_e_ == 4 ? table_.conv_wino43_in : table_.conv_wino_in;
      const ConvWinoOutFn tf_out = wino_e_ == 4 ? table_.conv_wino43_out : table_.conv_wino_out;
      auto in_tf = [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          WinoArgs a;
          a.x = X + c * win_.in_size();
          a.plane = C_ * win_.in_size();
          a.h = win_.in[1];
          a.w = win_.in[2];
          a.ph = win_.pb[1];
          a.pw = win_.pb[2];
          a.th0 = u0;
          a.units = units;
          a.TH = TH_;
          a.TW = TW_;
          a.v = V + c * Tb_;
          a.xi_stride = C_ * Tb_;
          tf_in(a);
        }
      };
      auto out_tf = [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) {
          WinoArgs a;
          a.y = Y + m * P_;
          a.plane = M_ * P_;
          a.h = OH;
          a.w = OW;
          a.th0 = u0;
          a.units = units;
          a.TH = TH_;
          a.TW = TW_;
          a.v = Mw + m * Tb_;
          a.xi_stride = M_ * Tb_;
          a.bias = B ? B[m] : 0.f;
          tf_out(a);
          const Activation& act = has_sum_ ? sum_act_ : act_;
          if (act.kind == Activation::None && !Z) continue;
          for (int64_t u = u0; u < u0 + units; ++u) {  // rows of each tile row, in place
            const int64_t th = u % TH_, r0 = wino_e_ * th, r1 = std::min(OH, r0 + wino_e_);
            const int64_t off = ((u / TH_) * M_ + m) * P_ + r0 * OW;
            float* y = Y + off;
            if (Z) table_.add(y, Z + off, y, (r1 - r0) * OW);
            if (act.kind != Activation::None) table_.activation(y, y, (r1 - r0) * OW, act);
          }
        }
      };
      if (pool) pool->parallel_for(C_, 1, in_tf);
      else in_tf(0, C_);
      // The nxi GEMMs are independent: with a pool each runs whole on one
      // thread (each alone is too small to split well); a GEMM's result does
      // not depend on which thread runs it.
      auto gemms = [&](int64_t x0, int64_t x1) {
        for (int64_t xi = x0; xi < x1; ++xi) {
          GemmArgs g;
          g.M = M_;
          g.N = T;
          g.K = C_;
          g.A = nullptr;  // packed_u_ only (see setup_winograd)
          g.lda = C_;
          g.B = V + xi * C_ * Tb_;
          g.ldb = Tb_;
          g.C = Mw + xi * M_ * Tb_;
          g.ldc = Tb_;
          table_.sgemm_packed_a(g, packed_u_[static_cast<size_t>(xi)], nullptr, nullptr);
        }
      };
      if (pool) pool->parallel_for(nxi_, 1, gemms);
      else gemms(0, nxi_);
      if (pool) pool->parallel_for(M_, 1, out_tf);
      else out_tf(0, M_);
    };
    float* scratch = static_cast<float*>(io.scratch);
    if (wino_blocks_ < kMinParallelTiles) {  // few blocks: transforms and GEMMs thread inside
      for (int64_t b = 0; b < wino_blocks_; ++b) block(b, scratch, io.pool);
      return;
    }
    io.pool->parallel_for(wino_blocks_, 1, [&](int64_t b0, int64_t b1) {
      float* buf = scratch + ThreadPool::thread_index() * wino_stride_;
      for (int64_t b = b0; b < b1; ++b) block(b, buf, nullptr);
    });
  }

  // 1x1, stride 1, few channels (Kg_, Mg_ within kDirect1x1Max*) with a SIMD
  // table: table_.conv1x1_direct reads the input in place (the GEMM would
  // copy the whole K x N input into its panels, as costly as the FMAs when K
  // is small). Blocks of kDirect1x1Cols pixels of every (image, group) are
  // spread over the threads; each output is one thread's fixed-order sum.
  void run_direct1x1(const KernelIO& io, const float* X, const float* W, const float* B, float* Y) {
    const bool in_kernel = act_.kind == Activation::None || act_.kind == Activation::Relu ||
                           act_.kind == Activation::LeakyRelu || act_.kind == Activation::Clip;
    const int64_t nblk = (P_ + kDirect1x1Cols - 1) / kDirect1x1Cols;
    io.pool->parallel_for(N_ * G_ * nblk, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t blk = i % nblk, g = (i / nblk) % G_, n = i / (nblk * G_);
        const int64_t p0 = blk * kDirect1x1Cols;
        Conv1x1Args a;
        a.x = X + (n * C_ + g * Cg_) * P_ + p0;
        a.w = W + g * Mg_ * Kg_;
        a.bias = B ? B + g * Mg_ : nullptr;
        a.y = Y + (n * M_ + g * Mg_) * P_ + p0;
        a.M = Mg_;
        a.K = Kg_;
        a.N = std::min(kDirect1x1Cols, P_ - p0);
        a.ldx = a.ldy = P_;
        if (in_kernel) a.act = act_;
        table_.conv1x1_direct(a);
        if (!in_kernel)
          for (int64_t m = 0; m < Mg_; ++m) table_.activation(a.y + m * P_, a.y + m * P_, a.N, act_);
      }
    });
  }

  void run_depthwise(const KernelIO& io, const float* X, const float* W, const float* B, float* Y) {
    // The plane kernel applies the cheap activations before its store (no
    // second pass over the plane); the others run here after it.
    const bool in_kernel = act_.kind == Activation::None || act_.kind == Activation::Relu ||
                           act_.kind == Activation::LeakyRelu || act_.kind == Activation::Clip;
    DwConvArgs base;
    for (int d = 0; d < 3; ++d) {
      base.in[d] = win_.in[d];
      base.out[d] = win_.out[d];
      base.k[d] = win_.k[d];
      base.s[d] = win_.s[d];
      base.d[d] = win_.d[d];
      base.pb[d] = win_.pb[d];
    }
    if (in_kernel) base.act = act_;
    io.pool->parallel_for(N_ * M_, 1, [&](int64_t i0, int64_t i1) {
      DwConvArgs a = base;
      a.scratch = dw_stride_ ? static_cast<float*>(io.scratch) + ThreadPool::thread_index() * dw_stride_ : nullptr;
      for (int64_t i = i0; i < i1;) {
        const int64_t n = i / M_, m = i % M_;
        // one call for the run of planes of image n (each reads its own
        // input channel when the depth multiplier Mg_ is 1)
        const int64_t count = Mg_ == 1 ? std::min(i1 - i, M_ - m) : 1;
        a.x = X + (n * C_ + m / Mg_) * win_.in_size();
        a.w = W + m * ks_;
        a.y = Y + i * P_;
        a.biases = B ? B + m : nullptr;
        a.planes = count;
        a.x_stride = win_.in_size();
        a.w_stride = ks_;
        a.y_stride = P_;
        table_.conv_dw_plane(a);
        if (!in_kernel) table_.activation(a.y, a.y, count * P_, act_);
        i += count;
      }
    });
  }

  const KernelTable& table_;
  Window3 win_;
  int64_t N_ = 0, C_ = 0, M_ = 0, G_ = 1, Cg_ = 0, Mg_ = 0, ks_ = 1, Kg_ = 0, P_ = 0;
  int64_t tile_ = 1, ntiles_ = 1, col_stride_ = 0;
  int64_t work_stride_ = 0;  // floats of im2col_w2 work space per thread (0: not used)
  int64_t dw_stride_ = 0;
  // Winograd: tile rows/columns per image, tile rows per block, tiles per block
  bool wino_ = false;
  int64_t wino_e_ = 2, nxi_ = 16;  // output tile size (F(e x e, 3x3)), transformed values per tile
  int64_t TH_ = 0, TW_ = 0, upb_ = 1, Tb_ = 0, wino_blocks_ = 0, wino_stride_ = 0;
  std::vector<PackedA> packed_u_;  // U[xi] ([M][C]) packed as the GEMMs' A
  std::vector<PackedA> packed_w_;  // constant weights packed per group (empty: packed per call)
  int threads_ = 1;
  bool has_bias_ = false, depthwise_ = false, pointwise_ = false, whole_ = false;
  bool direct1x1_ = false;  // pointwise through table_.conv1x1_direct
  bool tgemm_ = false;  // smallconv: transposed product (run_transposed_gemm)
  ConvTransposedGemm tg_;
  Activation act_;
  bool has_sum_ = false;  // residual input 3: Y = sum_act_(conv + bias + Z)
  Activation sum_act_;
};

// ConvTranspose: per image and group, col[Mg*k, HW_in] = W_g^T @ X[n][g]
// (the GEMM threads), then col2im scatters col into the output planes,
// parallel over output channels (each plane is written by one thread, in a
// fixed order, so the sums do not depend on the thread count).
class ConvTransposeKernel : public Kernel {
 public:
  explicit ConvTransposeKernel(const NodeSpec& spec) : table_(kernels()) {
    const TensorDesc& x = spec.input(0);
    const TensorDesc& wt = spec.input(1);
    const TensorDesc& y = spec.outputs[0];
    require_dtype(x, DType::Float32, "ConvTranspose input X");
    require_dtype(wt, DType::Float32, "ConvTranspose weight W");
    require(x.rank() >= 3 && x.rank() <= 5 && wt.rank() == x.rank() && y.rank() == x.rank(),
            "ConvTranspose expects X and W of equal rank 3..5, got X " + shape_str(x.shape) + ", W " +
                shape_str(wt.shape));
    // The window maps output (the "input" of the equivalent conv) to input.
    win_ = Window3::from_spec(spec, y.shape, x.shape, true);
    N_ = x.shape[0];
    C_ = x.shape[1];
    M_ = y.shape[1];
    G_ = spec.attrs.get_int("group", 1);
    require(G_ >= 1 && C_ % G_ == 0 && M_ % G_ == 0, "ConvTranspose: channels not divisible by group");
    Cg_ = C_ / G_;
    Mg_ = M_ / G_;
    ks_ = win_.k_size();
    Kc_ = Mg_ * ks_;
    I_ = win_.out_size();  // input spatial size (window "output")
    P_ = win_.in_size();   // output spatial size
    require(wt.shape[0] == C_ && wt.shape[1] == Mg_ && wt.numel() == C_ * Kc_,
            "ConvTranspose weight " + shape_str(wt.shape) + " does not match input " + shape_str(x.shape) +
                " and output " + shape_str(y.shape));
    has_bias_ = spec.has_input(2);
    if (has_bias_) {
      require_dtype(spec.input(2), DType::Float32, "ConvTranspose bias B");
      require(spec.input(2).numel() == M_, "ConvTranspose bias must have " + std::to_string(M_) + " entries");
    }
    act_ = fused_activation(spec);
    if (wt.const_data && Kc_ > 0 && Cg_ > 0) {  // constant weights: each group's W_g^T packed once
      const float* w = static_cast<const float*>(wt.const_data);
      packed_w_.resize(static_cast<size_t>(G_));
      for (int64_t g = 0; g < G_; ++g) table_.pack_a(w + g * Cg_ * Kc_, Kc_, true, Kc_, Cg_, &packed_w_[g]);
    }
  }

  size_t scratch_bytes() const override { return static_cast<size_t>(Kc_ * I_) * sizeof(float); }
  bool reads_constant_at_run(size_t i) const override { return !(i == 1 && !packed_w_.empty()); }

  void run(const KernelIO& io) override {
    const float* X = in_ptr<float>(io, 0);
    const float* W = in_ptr<float>(io, 1);
    const float* B = has_bias_ ? in_ptr<float>(io, 2) : nullptr;
    float* Y = out_ptr<float>(io, 0);
    if (N_ == 0 || M_ == 0 || P_ == 0) return;
    if (Cg_ == 0 || I_ == 0) {
      fill_bias(table_, Y, B, N_ * M_, M_, P_, act_);
      return;
    }
    float* col = static_cast<float*>(io.scratch);
    for (int64_t n = 0; n < N_; ++n)
      for (int64_t g = 0; g < G_; ++g) {
        GemmArgs a;
        a.trans_a = true;
        a.M = Kc_;
        a.N = I_;
        a.K = Cg_;
        a.A = packed_w_.empty() ? W + g * Cg_ * Kc_ : nullptr;  // packed: W may be released
        a.lda = Kc_;
        a.B = X + (n * C_ + g * Cg_) * I_;
        a.ldb = I_;
        a.C = col;
        a.ldc = I_;
        if (packed_w_.empty()) table_.sgemm(a, io.pool);
        else table_.sgemm_packed_a(a, packed_w_[static_cast<size_t>(g)], nullptr, io.pool);
        io.pool->parallel_for(Mg_, 1, [&](int64_t m0, int64_t m1) {
          for (int64_t m = m0; m < m1; ++m) {
            const int64_t oc = g * Mg_ + m;
            float* y = Y + (n * M_ + oc) * P_;
            std::fill(y, y + P_, B ? B[oc] : 0.f);
            col2im(col + m * ks_ * I_, y);
            if (act_.kind != Activation::None) table_.activation(y, y, P_, act_);
          }
        });
      }
  }

 private:
  // Adds the ks_ rows [ks_][I_] of one output channel into its plane y.
  void col2im(const float* col, float* y) const {
    const Window3& w = win_;
    const int64_t OH = w.in[1], OW = w.in[2];  // output plane (window input)
    const int64_t ID = w.out[0], IH = w.out[1], IW = w.out[2];
    for (int64_t kd = 0; kd < w.k[0]; ++kd)
      for (int64_t kh = 0; kh < w.k[1]; ++kh)
        for (int64_t kw = 0; kw < w.k[2]; ++kw, col += I_) {
          const int64_t off = kw * w.d[2] - w.pb[2];
          int64_t lo, hi;
          valid_range(off, w.s[2], OW, IW, &lo, &hi);
          for (int64_t id = 0; id < ID; ++id) {
            const int64_t od = id * w.s[0] - w.pb[0] + kd * w.d[0];
            if (od < 0 || od >= w.in[0]) continue;
            for (int64_t ih = 0; ih < IH; ++ih) {
              const int64_t oh = ih * w.s[1] - w.pb[1] + kh * w.d[1];
              if (oh < 0 || oh >= OH) continue;
              const float* src = col + (id * IH + ih) * IW;
              float* dst = y + (od * OH + oh) * OW + off;
              for (int64_t iw = lo; iw < hi; ++iw) dst[iw * w.s[2]] += src[iw];
            }
          }
        }
  }

  const KernelTable& table_;
  Window3 win_;
  int64_t N_ = 0, C_ = 0, M_ = 0, G_ = 1, Cg_ = 0, Mg_ = 0, ks_ = 1, Kc_ = 0, I_ = 0, P_ = 0;
  bool has_bias_ = false;
  Activation act_;
  std::vector<PackedA> packed_w_;  // constant W_g^T per group as the GEMM's A (empty: packed per call)
};

}  // namespace

void register_conv_ops() {
  // small-cnn: small layers take the direct path when it accepts the node.
  register_kernel("Conv", [](const NodeSpec& spec) -> std::unique_ptr<Kernel> {
    if (auto k = make_wino_small_conv(spec)) return k;  // small-wino
    if (auto k = make_direct_conv(spec)) return k;
    return std::make_unique<ConvKernel>(spec);
  });
  register_kernel("ConvTranspose", make_kernel<ConvTransposeKernel>);
}

}  // namespace pyengine
