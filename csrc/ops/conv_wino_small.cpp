// Winograd F(4x4, 3x3) with output channels in the vector lanes, for 3x3
// stride-1 convolutions whose output planes are small (the digits CNN's
// 32->64 on 8x8 and 64->64 on 4x4): a quarter of the direct kernel's
// multiply-adds, with vectors that stay full however small the plane.
//
// Per image: the input is copied once into a zero-padded channels-last
// buffer, then table_.conv_wino_cl (kernels/conv_wino_cl_impl.h) does the
// input transform, the 36 products over input channels and the output
// transform with the bias; the fused activation runs on the finished planes.
// The transformed weights u[36][C][Mp] must stay in L2 (weights past
// kMaxU floats go to the other paths, which stream them once per image).
//
// Images are independent, spread over the threads; each output is the same
// arithmetic whichever thread computes it, so results do not depend on the
// thread count.
#include "ops/conv_wino_small.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/common.h"
#include "ops/conv_window.h"
#include "ops/winograd_filter.h"

namespace pyengine {

namespace {

// Shape limits: at most kMaxTiles 4x4 tiles per image (16x16 outputs; larger
// planes fill the planar Winograd's GEMMs), transformed weights of at most
// kMaxU floats (1.2 MB), at least kMinChannels on each side.
constexpr int64_t kMaxTiles = 16;
constexpr int64_t kMaxU = 300 * 1024;
constexpr int64_t kMinChannels = 8;
// Tiles per call when a batch is grouped (two blocks of the AVX-512 product's
// 6 tiles): one pass over u serves that many tiles.
constexpr int64_t kGroupTiles = 12;
// Least work per thread chunk (multiply-adds of the products), so a batch-1
// layer runs on the caller.
constexpr int64_t kInlineMacs = 256 * 1024;

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

class WinoSmallConvKernel : public Kernel {
 public:
  WinoSmallConvKernel(const NodeSpec& spec, const Window3& w) : table_(kernels()), win_(w) {
    const TensorDesc& x = spec.input(0);
    N_ = x.shape[0];
    C_ = x.shape[1];
    M_ = spec.outputs[0].shape[1];
    IH_ = w.in[1];
    IW_ = w.in[2];
    OH_ = w.out[1];
    OW_ = w.out[2];
    TH_ = (OH_ + 3) / 4;
    TW_ = (OW_ + 3) / 4;
    Cp_ = round_up(C_, 16);
    Mp_ = round_up(M_, 16);
    XH_ = 4 * TH_ + 2;
    XW_ = 4 * TW_ + 2;
    const int64_t T = TH_ * TW_;
    // Images per call: their tiles share each pass over u (a one-tile 4x4
    // plane otherwise reads all of u, 590 KB for 64->64, per image).
    G_ = std::max<int64_t>(1, std::min(N_, (kGroupTiles + T - 1) / T));
    xt_image_ = round_up(XH_ * XW_ * Cp_, 16);
    slot_ = G_ * (xt_image_ + T * 36 * (Cp_ + Mp_));
    threads_ = std::max(1, spec.num_threads);
    macs_ = G_ * T * 36 * C_ * Mp_;
    has_bias_ = spec.has_input(2);
    act_ = fused_activation(spec);
    // u[xi][c][m] = (G g G^T)[xi] (ops/winograd_filter.h, as the planar Winograd)
    const float* wt = static_cast<const float*>(spec.input(1).const_data);
    u_.assign(static_cast<size_t>(36 * C_ * Mp_), 0.f);
    float u[36];
    for (int64_t m = 0; m < M_; ++m)
      for (int64_t c = 0; c < C_; ++c) {
        winograd_filter(wt + (m * C_ + c) * 9, 4, u);
        for (int xi = 0; xi < 36; ++xi) u_[static_cast<size_t>((xi * C_ + c) * Mp_ + m)] = u[xi];
      }
  }

  std::string path() const override { return "winograd_cl"; }
  bool reads_constant_at_run(size_t i) const override { return i != 1; }  // weights copied

  // [padded bias (Mp)] then one slot per thread: xt, v, mo.
  size_t scratch_bytes() const override { return static_cast<size_t>(Mp_ + slot_ * threads_) * sizeof(float); }

  void run(const KernelIO& io) override {
    const float* X = in_ptr<float>(io, 0);
    float* Y = out_ptr<float>(io, 0);
    if (N_ == 0) return;
    const float* B = padded_bias(io, has_bias_, M_, Mp_);
    float* scratch = static_cast<float*>(io.scratch) + Mp_;
    const int64_t groups = (N_ + G_ - 1) / G_;
    const int64_t grain = std::max<int64_t>(1, kInlineMacs / std::max<int64_t>(1, macs_));
    io.pool->parallel_for(groups, grain, [&](int64_t g0, int64_t g1) {
      float* buf = scratch + ThreadPool::thread_index() * slot_;
      for (int64_t g = g0; g < g1; ++g) {
        const int64_t n0 = g * G_, count = std::min(G_, N_ - n0);
        images(X + n0 * C_ * IH_ * IW_, count, B, Y + n0 * M_ * OH_ * OW_, buf);
      }
    });
  }

 private:
  // `count` consecutive images from x into y, through buf (one slot).
  void images(const float* x, int64_t count, const float* bias, float* y, float* buf) const {
    // Zero-padded channels-last copies: rows/columns past the input (padding,
    // the last tiles' overhang) and channels C..Cp stay zero.
    std::fill(buf, buf + count * xt_image_, 0.f);
    const int64_t top = win_.pb[1], left = win_.pb[2];
    for (int64_t i = 0; i < count; ++i) {
      float* xt = buf + i * xt_image_;
      for (int64_t c = 0; c < C_; ++c) {
        const float* xc = x + (i * C_ + c) * IH_ * IW_;
        for (int64_t h = 0; h < IH_; ++h) {
          float* row = xt + ((h + top) * XW_ + left) * Cp_ + c;
          for (int64_t w = 0; w < IW_; ++w) row[w * Cp_] = xc[h * IW_ + w];
        }
      }
    }
    WinoClArgs a;
    a.xt = buf;
    a.xt_image = xt_image_;
    a.images = count;
    a.u = u_.data();
    a.bias = bias;
    a.v = buf + count * xt_image_;
    a.mo = a.v + count * TH_ * TW_ * 36 * Cp_;
    a.y = y;
    a.TH = TH_;
    a.TW = TW_;
    a.C = C_;
    a.Cp = Cp_;
    a.M = M_;
    a.Mp = Mp_;
    a.OH = OH_;
    a.OW = OW_;
    table_.conv_wino_cl(a);
    if (act_.kind != Activation::None) table_.activation(y, y, count * M_ * OH_ * OW_, act_);
  }

  const KernelTable& table_;
  Window3 win_;
  int64_t N_ = 0, C_ = 0, M_ = 0, IH_ = 0, IW_ = 0, OH_ = 0, OW_ = 0, TH_ = 0, TW_ = 0;
  int64_t Cp_ = 0, Mp_ = 0, XH_ = 0, XW_ = 0, slot_ = 0, macs_ = 0, G_ = 1, xt_image_ = 0;
  int threads_ = 1;
  bool has_bias_ = false;
  std::vector<float> u_;
  Activation act_;
};

}  // namespace

std::unique_ptr<Kernel> make_wino_small_conv(const NodeSpec& spec) {
  if (spec.inputs.size() < 2 || spec.outputs.size() != 1 || spec.has_input(3)) return nullptr;
  if (!kernels().conv_wino_cl) return nullptr;
  const TensorDesc& x = spec.input(0);
  const TensorDesc& wt = spec.input(1);
  const TensorDesc& y = spec.outputs[0];
  if (x.dtype != DType::Float32 || wt.dtype != DType::Float32 || y.dtype != DType::Float32 || !wt.const_data)
    return nullptr;
  if (x.rank() != 4 || wt.rank() != 4 || y.rank() != 4) return nullptr;
  if (spec.attrs.get_int("group", 1) != 1) return nullptr;
  if (spec.has_input(2) && (spec.input(2).dtype != DType::Float32 || spec.input(2).numel() != y.shape[1]))
    return nullptr;
  const Window3 w = Window3::from_spec(spec, x.shape, y.shape);
  const int64_t C = x.shape[1], M = y.shape[1];
  if (wt.shape[0] != M || wt.shape[1] != C || x.shape[0] != y.shape[0]) return nullptr;
  if (C < kMinChannels || M < kMinChannels) return nullptr;
  for (int a = 1; a < 3; ++a) {
    if (w.k[a] != 3 || w.s[a] != 1 || w.d[a] != 1 || w.out[a] <= 0) return nullptr;
    // pads of at most 2 (the padded buffer holds 4T + 2 rows/columns), and
    // the padded extent gives exactly the output extent
    if (w.pb[a] > 2 || w.pe[a] > 2 || w.in[a] + w.pb[a] + w.pe[a] - 2 != w.out[a]) return nullptr;
  }
  const int64_t tiles = ((w.out[1] + 3) / 4) * ((w.out[2] + 3) / 4);
  if (tiles > kMaxTiles || 36 * C * round_up(M, 16) > kMaxU) return nullptr;
  return std::make_unique<WinoSmallConvKernel>(spec, w);
}

}  // namespace pyengine
