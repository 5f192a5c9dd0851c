// MaxPool (optional Indices), AveragePool and LpPool, 1-D to 3-D windows
// with pads, strides, dilations (geometry resolved in pyengine/ops/pool.py),
// and their Global forms (attribute global = 1: one window over all spatial
// axes of any rank). Parallel over the N*C planes; every output element is
// reduced by one thread in a fixed order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/common.h"
#include "ops/conv_window.h"

namespace pyengine {

namespace {

enum class PoolMode { Max, Avg, Lp };

// Taps of a dilated window along one axis that land in [lo, hi).
inline int64_t taps_in(int64_t start, int64_t k, int64_t d, int64_t lo, int64_t hi) {
  int64_t n = 0;
  for (int64_t i = 0; i < k; ++i) n += (start + i * d >= lo && start + i * d < hi);
  return n;
}

class PoolKernel : public Kernel {
 public:
  PoolKernel(const NodeSpec& spec, PoolMode mode) : mode_(mode) {
    const TensorDesc& x = spec.input(0);
    const TensorDesc& y = spec.outputs[0];
    dtype_ = x.dtype;
    require(y.dtype == dtype_, spec.op_type + ": output type differs from input type");
    if (mode_ == PoolMode::Max)
      require(dtype_ == DType::Float32 || dtype_ == DType::Float64 || dtype_ == DType::Int8 || dtype_ == DType::UInt8,
              "MaxPool supports float32, float64, int8 and uint8, got " + std::string(dtype_name(dtype_)));
    else
      require(dtype_ == DType::Float32 || dtype_ == DType::Float64,
              spec.op_type + " supports float32 and float64, got " + std::string(dtype_name(dtype_)));
    require(x.rank() >= 3, spec.op_type + " expects N x C x spatial..., got " + shape_str(x.shape));
    planes_ = x.shape[0] * x.shape[1];
    global_ = spec.attrs.get_int("global", 0) != 0;
    if (global_) {
      inner_ = planes_ ? x.numel() / planes_ : 0;
    } else {
      win_ = Window3::from_spec(spec, x.shape, y.shape);
    }
    count_include_pad_ = spec.attrs.get_int("count_include_pad", 0) != 0;
    p_ = spec.attrs.get_float("p", 2.0);
    col_major_ = spec.attrs.get_int("storage_order", 0) != 0;
    with_indices_ = mode_ == PoolMode::Max && spec.outputs.size() > 1;
    if (with_indices_) require_dtype(spec.outputs[1], DType::Int64, "MaxPool Indices");
    // Row-separable path for 2-D float32 MaxPool (see max2d_plane).
    fast_max2d_ = mode_ == PoolMode::Max && dtype_ == DType::Float32 && !global_ && !with_indices_ &&
                  win_.in[0] == 1 && win_.out[0] == 1 && win_.k[0] == 1 && win_.out[1] > 0 && win_.out[2] > 0;
    if (fast_max2d_) {
      row_len_ = (win_.out[2] - 1) * win_.s[2] + (win_.k[2] - 1) * win_.d[2] + 1;
      row_stride_ = (row_len_ + 15) / 16 * 16;
      threads_ = std::max(1, spec.num_threads);
    }
  }

  size_t scratch_bytes() const override {
    return fast_max2d_ ? static_cast<size_t>(row_stride_ * threads_) * sizeof(float) : 0;
  }

  void run(const KernelIO& io) override {
    switch (dtype_) {
      case DType::Float32: return run_typed<float, float>(io);
      case DType::Float64: return run_typed<double, double>(io);
      case DType::Int8: return run_typed<int8_t, float>(io);
      case DType::UInt8: return run_typed<uint8_t, float>(io);
      default: return;
    }
  }

 private:
  template <class T, class Acc>
  void run_typed(const KernelIO& io) {
    const T* X = in_ptr<T>(io, 0);
    T* Y = out_ptr<T>(io, 0);
    int64_t* I = with_indices_ ? out_ptr<int64_t>(io, 1) : nullptr;
    if (global_) {
      io.pool->parallel_for(planes_, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner_, 1)), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const T* x = X + i * inner_;
          int64_t arg = 0;
          Y[i] = static_cast<T>(reduce_global<T, Acc>(x, &arg));
          if (I) I[i] = i * inner_ + arg;
        }
      });
      return;
    }
    const int64_t in_plane = win_.in_size(), out_plane = win_.out_size();
    if constexpr (std::is_same_v<T, float>) {
      if (fast_max2d_) {
        io.pool->parallel_for(planes_, 1, [&](int64_t b, int64_t e) {
          float* row = static_cast<float*>(io.scratch) + ThreadPool::thread_index() * row_stride_;
          for (int64_t i = b; i < e; ++i) max2d_plane(X + i * in_plane, Y + i * out_plane, row);
        });
        return;
      }
    }
    io.pool->parallel_for(planes_, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        pool_plane<T, Acc>(X + i * in_plane, Y + i * out_plane, I ? I + i * out_plane : nullptr, i * in_plane);
    });
  }

  template <class T, class Acc>
  Acc reduce_global(const T* x, int64_t* arg) const {
    if (mode_ == PoolMode::Max) {
      Acc best = std::numeric_limits<T>::lowest();
      for (int64_t j = 0; j < inner_; ++j)
        if (static_cast<Acc>(x[j]) > best) { best = x[j]; *arg = j; }
      return best;
    }
    Acc s = 0;
    if (mode_ == PoolMode::Avg) {
      for (int64_t j = 0; j < inner_; ++j) s += x[j];
      return s / static_cast<Acc>(inner_);
    }
    for (int64_t j = 0; j < inner_; ++j) s += lp_term<Acc>(x[j]);
    return lp_root<Acc>(s);
  }

  template <class Acc>
  Acc lp_term(Acc v) const {
    v = std::abs(v);
    return p_ == 1.0 ? v : p_ == 2.0 ? v * v : static_cast<Acc>(std::pow(v, p_));
  }
  template <class Acc>
  Acc lp_root(Acc s) const {
    return p_ == 1.0 ? s : p_ == 2.0 ? std::sqrt(s) : static_cast<Acc>(std::pow(s, 1.0 / p_));
  }

  // 2-D MaxPool of one plane in two passes per output row: the column-wise
  // max of the window's input rows into `row` (row_len_ floats, column c =
  // input column c - pw, lowest() outside the input; unit-stride loops the
  // compiler vectorizes), then each output is the max of its taps in `row`.
  // Same value as pool_plane: both start from the first tap inside the input
  // and keep the larger value (v > acc), so only the order among equal or NaN
  // values could differ.
  void max2d_plane(const float* x, float* y, float* row) const {
    const Window3& w = win_;
    const int64_t IH = w.in[1], IW = w.in[2], OH = w.out[1], OW = w.out[2];
    const int64_t KH = w.k[1], KW = w.k[2], sh = w.s[1], sw = w.s[2], dh = w.d[1], dw = w.d[2];
    const int64_t pw = w.pb[2];
    constexpr float kLow = std::numeric_limits<float>::lowest();
    // Input columns [c0, c1) of row positions [pw + c0, pw + c1) are inside the plane.
    const int64_t c0 = std::max<int64_t>(0, -pw), c1 = std::min(IW, row_len_ - pw);
    for (int64_t j = 0; j < row_len_; ++j) row[j] = kLow;
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t h0 = oh * sh - w.pb[1];
      bool first = true;
      for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t ih = h0 + kh * dh;
        if (ih < 0 || ih >= IH) continue;
        const float* xr = x + ih * IW;
        float* r = row + pw;
        if (first) {
          for (int64_t c = c0; c < c1; ++c) r[c] = xr[c];
          first = false;
        } else {
          for (int64_t c = c0; c < c1; ++c) r[c] = xr[c] > r[c] ? xr[c] : r[c];
        }
      }
      if (first)  // no input row in this window: every tap is padding
        for (int64_t c = c0; c < c1; ++c) row[pw + c] = kLow;
      float* yr = y + oh * OW;
      if (KW == 3 && dw == 1 && sw <= 2) {  // ResNet's 3x3/2 and 3x3/1 pools
        for (int64_t ow = 0; ow < OW; ++ow) {
          const float* r = row + ow * sw;
          const int64_t c = ow * sw - pw;  // input column of tap 0
          float acc = c >= 0 || c + 2 < 0 ? r[0] : c + 1 >= 0 ? r[1] : r[2];
          acc = r[0] > acc ? r[0] : acc;
          acc = r[1] > acc ? r[1] : acc;
          acc = r[2] > acc ? r[2] : acc;
          yr[ow] = acc;
        }
        continue;
      }
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t c = ow * sw - pw;
        float acc = kLow;
        bool any = false;
        for (int64_t kw = 0; kw < KW; ++kw) {
          const int64_t iw = c + kw * dw;
          const float v = row[ow * sw + kw * dw];
          if (!any && iw >= 0 && iw < IW) {
            acc = v;
            any = true;
          }
          acc = v > acc ? v : acc;
        }
        yr[ow] = acc;
      }
    }
  }

  // One N*C plane; `base` is the flat index of the plane's first input element.
  template <class T, class Acc>
  void pool_plane(const T* x, T* y, int64_t* idx, int64_t base) const {
    const Window3& w = win_;
    const int64_t ID = w.in[0], IH = w.in[1], IW = w.in[2];
    for (int64_t od = 0; od < w.out[0]; ++od) {
      const int64_t d0 = od * w.s[0] - w.pb[0];
      for (int64_t oh = 0; oh < w.out[1]; ++oh) {
        const int64_t h0 = oh * w.s[1] - w.pb[1];
        for (int64_t ow = 0; ow < w.out[2]; ++ow) {
          const int64_t w0 = ow * w.s[2] - w.pb[2];
          Acc acc = mode_ == PoolMode::Max ? static_cast<Acc>(std::numeric_limits<T>::lowest()) : Acc(0);
          int64_t arg = -1;
          for (int64_t kd = 0; kd < w.k[0]; ++kd) {
            const int64_t id = d0 + kd * w.d[0];
            if (id < 0 || id >= ID) continue;
            for (int64_t kh = 0; kh < w.k[1]; ++kh) {
              const int64_t ih = h0 + kh * w.d[1];
              if (ih < 0 || ih >= IH) continue;
              const T* row = x + (id * IH + ih) * IW;
              for (int64_t kw = 0; kw < w.k[2]; ++kw) {
                const int64_t iw = w0 + kw * w.d[2];
                if (iw < 0 || iw >= IW) continue;
                const Acc v = static_cast<Acc>(row[iw]);
                if (mode_ == PoolMode::Max) {
                  if (v > acc || arg < 0) { acc = v; arg = (id * IH + ih) * IW + iw; }
                } else if (mode_ == PoolMode::Avg) {
                  acc += v;
                } else {
                  acc += lp_term<Acc>(v);
                }
              }
            }
          }
          const int64_t o = (od * w.out[1] + oh) * w.out[2] + ow;
          if (mode_ == PoolMode::Avg) {
            // Divisor: the taps inside the input, or (count_include_pad) inside the padded input.
            int64_t n = 1;
            for (int a = 0; a < 3; ++a) {
              const int64_t start = (a == 0 ? d0 : a == 1 ? h0 : w0);
              n *= count_include_pad_ ? taps_in(start, w.k[a], w.d[a], -w.pb[a], w.in[a] + w.pe[a])
                                      : taps_in(start, w.k[a], w.d[a], 0, w.in[a]);
            }
            acc = n ? acc / static_cast<Acc>(n) : Acc(0);
          } else if (mode_ == PoolMode::Lp) {
            acc = lp_root<Acc>(acc);
          }
          y[o] = static_cast<T>(acc);
          if (idx) {
            if (arg < 0) arg = 0;
            if (col_major_) {  // index with the spatial axes reversed: h + w * H (2-D)
              const int64_t aw = arg % IW, ah = (arg / IW) % IH, ad = arg / (IW * IH);
              arg = ad + ID * (ah + IH * aw);
            }
            idx[o] = base + arg;
          }
        }
      }
    }
  }

  PoolMode mode_;
  DType dtype_ = DType::Float32;
  Window3 win_;
  int64_t planes_ = 0, inner_ = 0;
  bool global_ = false, count_include_pad_ = false, col_major_ = false, with_indices_ = false;
  double p_ = 2.0;
  bool fast_max2d_ = false;
  int64_t row_len_ = 0, row_stride_ = 0;  // max2d_plane's row buffer
  int threads_ = 1;
};

std::unique_ptr<Kernel> make_max(const NodeSpec& s) { return std::make_unique<PoolKernel>(s, PoolMode::Max); }
std::unique_ptr<Kernel> make_avg(const NodeSpec& s) { return std::make_unique<PoolKernel>(s, PoolMode::Avg); }
std::unique_ptr<Kernel> make_lp(const NodeSpec& s) { return std::make_unique<PoolKernel>(s, PoolMode::Lp); }

}  // namespace

void register_pool_ops() {
  register_kernel("MaxPool", make_max);
  register_kernel("AveragePool", make_avg);
  register_kernel("LpPool", make_lp);
}

}  // namespace pyengine
