// Direct convolution for the small layers of small networks (LeNet, the
// digits CNN): few channels, small planes, where im2col + GEMM pays its
// per-call costs and a GEMM with M = C_out of 6 or 16 wastes most of its
// register tile.
//
// Per image: the input planes are copied once into zero-padded planes of
// width PW = W + pads; the kernel (table_.conv_direct, kernels/dispatch.h)
// then computes every output channel at flat positions q = oh * PW + ow, so
// each filter tap is a contiguous vector load at offset kh*dh*PW + kw*dw and
// output channels x positions accumulate in registers. The PW - OW columns
// past each output row are computed and dropped when the rows are copied
// (compacted) into Y. Bias sits in the accumulators; the fused activation
// runs on the compacted planes.
//
// With 16 or more output channels the other layout usually wastes less:
// channels in the vector lanes (table_.conv_direct_cl), one broadcast input
// value per valid output position, results [P][M] transposed into Y by
// the kernel. The layout is chosen from the fraction of lanes each one
// fills (16-lane vectors for both ISAs, so the choice is the same on every
// machine).
//
// Threads: images are spread over the threads (per-thread pad + result
// space), at least kInlineMacs of work per chunk, so a batch-1 layer (a few
// microseconds) runs on the caller without waking a worker. With fewer
// images than threads and at least kSplitMacs per image, each image's
// output channels are split instead. Every output is one FMA chain in the
// same order whichever thread computes it, so results do not depend on the
// thread count.
#include "ops/conv_direct.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/common.h"
#include "ops/conv_window.h"

namespace pyengine {

namespace {

// Path limits (per image): reduction length C*kh*kw, output plane, MACs.
// Past them im2col + GEMM (or Winograd) with its threading wins.
constexpr int64_t kMaxReduce = 1024;
constexpr int64_t kMaxPlane = 4096;
constexpr int64_t kMaxMacs = int64_t(4) << 20;
// Least work per thread chunk (smaller batches run on the calling thread).
constexpr int64_t kInlineMacs = 256 * 1024;
// Output channels per work item when one image is split (a multiple of 16
// for the channels-in-lanes layout); one image splits from kSplitMacs.
constexpr int64_t kSplitChannels = 16;
constexpr int64_t kSplitMacs = int64_t(2) << 20;

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

class DirectConvKernel : public Kernel {
 public:
  DirectConvKernel(const NodeSpec& spec, const Window3& w) : table_(kernels()), win_(w) {
    const TensorDesc& x = spec.input(0);
    const TensorDesc& wt = spec.input(1);
    N_ = x.shape[0];
    C_ = x.shape[1];
    M_ = spec.outputs[0].shape[1];
    IH_ = w.in[1];
    IW_ = w.in[2];
    PH_ = IH_ + w.pb[1] + w.pe[1];
    PW_ = IW_ + w.pb[2] + w.pe[2];
    OH_ = w.out[1];
    OW_ = w.out[2];
    P_ = OH_ * OW_;
    T_ = w.k[1] * w.k[2];
    Q_ = OH_ * PW_;
    y_ld_ = round_up(Q_, 16);
    w_ld_ = round_up(M_, 16);
    // Useful fraction of the lanes: positions (with the PW - OW extra columns
    // of each row) or channels.
    chan_ = static_cast<double>(M_) / static_cast<double>(w_ld_) >
            static_cast<double>(P_) / static_cast<double>(y_ld_);
    const int64_t max_tap = (w.k[1] - 1) * w.d[1] * PW_ + (w.k[2] - 1) * w.d[2];
    // Reads reach round_up(Q, 16) - 1 + max_tap <= PH*PW + 15 + (kw-1)*dw.
    x_plane_ = round_up(std::max(PH_ * PW_ + w.pb[2], y_ld_ + max_tap), 16);
    slot_ = C_ * x_plane_ + (chan_ ? P_ * w_ld_ : M_ * y_ld_);
    threads_ = std::max(1, spec.num_threads);
    for (int64_t kh = 0; kh < w.k[1]; ++kh)
      for (int64_t kw = 0; kw < w.k[2]; ++kw) taps_.push_back(kh * w.d[1] * PW_ + kw * w.d[2]);
    for (int64_t c = 0; c < C_; ++c)
      for (int64_t t = 0; t < T_; ++t) offs_.push_back(c * x_plane_ + taps_[static_cast<size_t>(t)]);
    for (int64_t oh = 0; oh < OH_; ++oh)
      for (int64_t ow = 0; ow < OW_; ++ow) pos_.push_back(oh * PW_ + ow);
    // Weights [M][C][T] -> [C][T][w_ld] (zero-padded): a tap's weights for
    // consecutive channels are adjacent.
    const float* src = static_cast<const float*>(wt.const_data);
    wp_.assign(static_cast<size_t>(C_ * T_ * w_ld_), 0.f);
    for (int64_t m = 0; m < M_; ++m)
      for (int64_t i = 0; i < C_ * T_; ++i) wp_[static_cast<size_t>(i * w_ld_ + m)] = src[m * C_ * T_ + i];
    has_bias_ = spec.has_input(2);
    act_ = fused_activation(spec);
    macs_ = M_ * C_ * T_ * Q_;
    split_ = macs_ >= kSplitMacs && N_ < threads_ && M_ > kSplitChannels;
  }

  std::string path() const override { return chan_ ? "direct_cl" : "direct"; }
  bool reads_constant_at_run(size_t i) const override { return i != 1; }  // weights copied

  // [padded bias (w_ld_)] then per-thread slots (one when an image is split).
  size_t scratch_bytes() const override {
    return static_cast<size_t>(w_ld_ + slot_ * (split_ ? 1 : threads_)) * sizeof(float);
  }

  void run(const KernelIO& io) override {
    const float* X = in_ptr<float>(io, 0);
    float* Y = out_ptr<float>(io, 0);
    if (N_ == 0) return;
    const float* B = padded_bias(io, has_bias_, M_, w_ld_);
    float* scratch = static_cast<float*>(io.scratch) + w_ld_;
    if (split_) {
      const int64_t items = (M_ + kSplitChannels - 1) / kSplitChannels;
      for (int64_t n = 0; n < N_; ++n) {
        pad(X + n * C_ * IH_ * IW_, scratch);
        io.pool->parallel_for(items, 1, [&](int64_t i0, int64_t i1) {
          compute(scratch, B, Y + n * M_ * P_, i0 * kSplitChannels, std::min(M_, i1 * kSplitChannels));
        });
      }
      return;
    }
    const int64_t grain = std::max<int64_t>(1, kInlineMacs / std::max<int64_t>(1, macs_));
    io.pool->parallel_for(N_, grain, [&](int64_t n0, int64_t n1) {
      float* buf = scratch + ThreadPool::thread_index() * slot_;
      for (int64_t n = n0; n < n1; ++n) {
        pad(X + n * C_ * IH_ * IW_, buf);
        compute(buf, B, Y + n * M_ * P_, 0, M_);
      }
    });
  }

 private:
  // Zero-padded copies of one image's C planes into buf (x_plane_ floats each).
  // Plain loops, not memset/memcpy: the runs are a few floats long (8x8
  // planes), where the library calls cost more than the copy.
  void pad(const float* x, float* buf) const {
    const int64_t top = win_.pb[1], left = win_.pb[2], gap = PW_ - IW_;
    for (int64_t c = 0; c < C_; ++c) {
      float* p = buf + c * x_plane_;
      const float* xc = x + c * IH_ * IW_;
      const int64_t head = top * PW_ + left;
      for (int64_t j = 0; j < head; ++j) p[j] = 0.f;
      float* row = p + head;
      for (int64_t h = 0; h < IH_; ++h, row += PW_) {
        const float* src = xc + h * IW_;
        for (int64_t j = 0; j < IW_; ++j) row[j] = src[j];
        for (int64_t j = IW_; j < IW_ + gap; ++j) row[j] = 0.f;  // right pad, next row's left pad
      }
      for (int64_t j = (top + IH_) * PW_ + left; j < x_plane_; ++j) p[j] = 0.f;
    }
  }

  // Output channels [m0, m1) of one image from its padded planes in buf.
  void compute(float* buf, const float* bias, float* y, int64_t m0, int64_t m1) const {
    float* tmp = buf + C_ * x_plane_;
    ConvDirectArgs a;
    a.x = buf;
    a.x_plane = x_plane_;
    a.C = C_;
    a.taps = taps_.data();
    a.T = T_;
    a.offs = offs_.data();
    a.w = wp_.data();
    a.w_ld = w_ld_;
    a.bias = bias;
    a.y = tmp;
    a.Q = Q_;
    a.m0 = m0;
    a.m1 = m1;
    if (chan_) {
      a.y_ld = w_ld_;
      a.pos = pos_.data();
      a.p0 = 0;
      a.p1 = P_;
      a.out = y;
      a.out_ld = P_;
      table_.conv_direct_cl(a);
    } else {
      a.y_ld = y_ld_;
      table_.conv_direct(a);
      for (int64_t m = m0; m < m1; ++m) {
        const float* t = tmp + m * y_ld_;
        float* ym = y + m * P_;
        if (OW_ == PW_) std::memcpy(ym, t, static_cast<size_t>(P_) * sizeof(float));
        else
          for (int64_t oh = 0; oh < OH_; ++oh)
            std::memcpy(ym + oh * OW_, t + oh * PW_, static_cast<size_t>(OW_) * sizeof(float));
      }
    }
    if (act_.kind != Activation::None) table_.activation(y + m0 * P_, y + m0 * P_, (m1 - m0) * P_, act_);
  }

  const KernelTable& table_;
  Window3 win_;
  int64_t N_ = 0, C_ = 0, M_ = 0, IH_ = 0, IW_ = 0, PH_ = 0, PW_ = 0, OH_ = 0, OW_ = 0, P_ = 0;
  int64_t T_ = 0, Q_ = 0, y_ld_ = 0, w_ld_ = 0, x_plane_ = 0, slot_ = 0, macs_ = 0;
  int threads_ = 1;
  bool has_bias_ = false, split_ = false, chan_ = false;
  std::vector<int64_t> taps_, offs_, pos_;
  std::vector<float> wp_;
  Activation act_;
};

}  // namespace

std::unique_ptr<Kernel> make_direct_conv(const NodeSpec& spec) {
  if (spec.inputs.size() < 2 || spec.outputs.size() != 1) return nullptr;
  if (spec.has_input(3)) return nullptr;  // residual input (fuse_residual): ConvKernel adds it
  const TensorDesc& x = spec.input(0);
  const TensorDesc& wt = spec.input(1);
  const TensorDesc& y = spec.outputs[0];
  if (x.dtype != DType::Float32 || wt.dtype != DType::Float32 || y.dtype != DType::Float32 || !wt.const_data)
    return nullptr;
  if (x.rank() < 3 || x.rank() > 4 || wt.rank() != x.rank() || y.rank() != x.rank()) return nullptr;
  if (spec.attrs.get_int("group", 1) != 1) return nullptr;
  if (spec.has_input(2) && (spec.input(2).dtype != DType::Float32 || spec.input(2).numel() != y.shape[1]))
    return nullptr;
  const Window3 w = Window3::from_spec(spec, x.shape, y.shape);
  const int64_t C = x.shape[1], M = y.shape[1];
  if (wt.shape[0] != M || wt.shape[1] != C || x.shape[0] != y.shape[0] || C == 0 || M == 0) return nullptr;
  for (int a = 1; a < 3; ++a) {
    if (w.s[a] != 1) return nullptr;
    // the padded extent must give exactly the output extent
    if (w.in[a] + w.pb[a] + w.pe[a] - (w.k[a] - 1) * w.d[a] != w.out[a] || w.out[a] <= 0) return nullptr;
  }
  const int64_t T = w.k[1] * w.k[2];
  if (w.in[0] != 1 || w.out[0] != 1 || w.k[0] != 1 || wt.numel() != M * C * T) return nullptr;
  if (T == 1) return nullptr;  // 1x1: the GEMM reads the input in place
  const int64_t P = w.out[1] * w.out[2];
  if (C * T > kMaxReduce || P > kMaxPlane || M * C * T * P > kMaxMacs) return nullptr;
  return std::make_unique<DirectConvKernel>(spec, w);
}

}  // namespace pyengine
