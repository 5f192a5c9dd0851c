// MaxPool (optional Indices), AveragePool and LpPool, 1-D to 3-D windows
// with pads, strides, dilations (geometry resolved in pyengine/ops/pool.py),
// and their Global forms (attribute global = 1: one window over all spatial
// axes of any rank). Parallel over the N*C planes; every output element is
// reduced by one thread in a fixed order.
//
// Float32 MaxPool/AveragePool over 2-D (or 1-D) windows without dilation and
// without Indices run the ISA's separable kernel (table entry pool2d_f32,
// kernels/avx512/pool_avx512.cpp and kernels/avx2/pool_avx2.cpp) when it
// takes the window (strides 1 or 2 along W, up to 16 taps), several planes
// per call. Otherwise (and on the scalar table) they take a row path
// (pool_rows_f32): the kh input rows of an
// output row are first reduced elementwise into one row (contiguous, so the
// compiler vectorizes it), then each output reduces kw neighbours of that row
// (2x2 stride 2 has its own loop; when those windows tile the input exactly,
// all planes are one run of row pairs). Small tensors run on the calling
// thread.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/common.h"
#include "kernels/dispatch.h"
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
    if (!global_) setup_rows(spec);
  }

  size_t scratch_bytes() const override {
    return rows_ ? static_cast<size_t>(row_stride_ * std::max(1, threads_)) * sizeof(float) : 0;
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
      if constexpr (std::is_same<T, float>::value) {
        if (mode_ == PoolMode::Avg) {  // the ISA's vectorized sum (GlobalAveragePool)
          const ReduceFn sum = table_.reduce_sum;
          const float n = static_cast<float>(inner_);
          io.pool->parallel_for(planes_, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner_, 1)),
                                [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) Y[i] = sum(X + i * inner_, inner_) / n;
          });
          return;
        }
      }
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
    if constexpr (std::is_same<T, float>::value) {
      if (rows_ && tiled2x2_) {  // every output row pools two whole input rows
        const float* xf = X;
        float* yf = Y;
        const int64_t IW = win_.in[2], OW = win_.out[2];
        const bool is_max = mode_ == PoolMode::Max;
        io.pool->parallel_for(planes_ * win_.out[1], std::max<int64_t>(1, kPoolChunk / (2 * IW)),
                              [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) {
            const float* a = xf + 2 * r * IW;
            const float* b = a + IW;
            float* y = yf + r * OW;
            // same operations as pool_rows_f32: rows first, then neighbours
            if (is_max)
              for (int64_t i = 0; i < OW; ++i) {
                const float u0 = b[2 * i] > a[2 * i] ? b[2 * i] : a[2 * i];
                const float u1 = b[2 * i + 1] > a[2 * i + 1] ? b[2 * i + 1] : a[2 * i + 1];
                y[i] = u1 > u0 ? u1 : u0;
              }
            else
              for (int64_t i = 0; i < OW; ++i)
                y[i] = ((a[2 * i] + b[2 * i]) + (a[2 * i + 1] + b[2 * i + 1])) / 4.f;
          }
        });
        return;
      }
      if (simd_) {
        Pool2dArgs a = simd_args_;
        a.x = X;
        a.y = Y;
        const Pool2dFn fn = table_.pool2d_f32;
        io.pool->parallel_for(planes_, grain_, [&](int64_t b, int64_t e) {
          Pool2dArgs c = a;
          c.x += b * in_plane;
          c.y += b * out_plane;
          c.planes = e - b;
          fn(c);
        });
        return;
      }
      if (rows_) {
        const float* xf = X;
        float* yf = Y;
        float* scratch = static_cast<float*>(io.scratch);
        io.pool->parallel_for(planes_, grain_, [&](int64_t b, int64_t e) {
          float* tmp = scratch + ThreadPool::thread_index() * row_stride_;
          for (int64_t i = b; i < e; ++i) pool_rows_f32(xf + i * in_plane, yf + i * out_plane, tmp);
        });
        return;
      }
    }
    io.pool->parallel_for(planes_, grain_, [&](int64_t b, int64_t e) {
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

  // Row path set-up: per output row/column, the number of window taps used
  // as the AveragePool divisor (same rule as pool_plane).
  void setup_rows(const NodeSpec& spec) {
    threads_ = std::max(1, spec.num_threads);
    const Window3& w = win_;
    // Below kPoolChunk input floats per chunk a job is not worth waking a thread.
    grain_ = std::max<int64_t>(1, kPoolChunk / std::max<int64_t>(1, w.in_size()));
    rows_ = dtype_ == DType::Float32 && !with_indices_ && mode_ != PoolMode::Lp && w.in[0] == 1 && w.out[0] == 1 &&
            w.k[0] == 1 && w.pb[0] == 0 && w.d[1] == 1 && w.d[2] == 1;
    if (!rows_) return;
    tiled2x2_ = w.k[1] == 2 && w.k[2] == 2 && w.s[1] == 2 && w.s[2] == 2 && w.pb[1] == 0 && w.pb[2] == 0 &&
                w.in[1] == 2 * w.out[1] && w.in[2] == 2 * w.out[2];
    row_stride_ = (w.in[2] + 15) / 16 * 16;
    cnt_h_.resize(static_cast<size_t>(w.out[1]));
    cnt_w_.resize(static_cast<size_t>(w.out[2]));
    for (int a = 1; a < 3; ++a) {
      std::vector<int64_t>& c = a == 1 ? cnt_h_ : cnt_w_;
      for (int64_t o = 0; o < w.out[a]; ++o) {
        const int64_t start = o * w.s[a] - w.pb[a];
        c[static_cast<size_t>(o)] = count_include_pad_ ? taps_in(start, w.k[a], 1, -w.pb[a], w.in[a] + w.pe[a])
                                                       : taps_in(start, w.k[a], 1, 0, w.in[a]);
      }
    }
    // The ISA's separable kernel (kernels/*/pool_*.cpp) takes strides 1 and 2
    // along W up to 16 taps and rows up to kPool2dMaxWidth outputs; average windows must each count some tap.
    const bool avg = mode_ == PoolMode::Avg;
    simd_ = table_.pool2d_f32 != nullptr && !tiled2x2_ && (w.s[2] == 1 || w.s[2] == 2) && w.k[2] <= 16 &&
            w.out[2] <= kPool2dMaxWidth && w.in[2] + w.pb[2] <= 2 * kPool2dMaxWidth;
    for (int64_t v : cnt_h_) simd_ = simd_ && (!avg || v > 0);
    for (int64_t v : cnt_w_) simd_ = simd_ && (!avg || v > 0);
    if (!simd_) return;
    fcnt_h_.assign(cnt_h_.begin(), cnt_h_.end());
    fcnt_w_.assign(static_cast<size_t>((w.out[2] + 15) / 16 * 16), 1.f);
    std::copy(cnt_w_.begin(), cnt_w_.end(), fcnt_w_.begin());
    Pool2dArgs& a = simd_args_;
    a.x_stride = w.in_size();
    a.y_stride = w.out_size();
    a.ih = w.in[1];
    a.iw = w.in[2];
    a.oh = w.out[1];
    a.ow = w.out[2];
    a.kh = w.k[1];
    a.kw = w.k[2];
    a.sh = w.s[1];
    a.sw = w.s[2];
    a.ph = w.pb[1];
    a.pw = w.pb[2];
    a.avg = avg;
    a.cnt_h = fcnt_h_.data();
    a.cnt_w = fcnt_w_.data();
  }

  // One plane through the row path; tmp holds one input row (row_stride_ floats).
  void pool_rows_f32(const float* x, float* y, float* tmp) const {
    const Window3& w = win_;
    const int64_t IH = w.in[1], IW = w.in[2], OH = w.out[1], OW = w.out[2];
    const int64_t kh = w.k[1], kw = w.k[2], sh = w.s[1], sw = w.s[2], pw = w.pb[2];
    const bool is_max = mode_ == PoolMode::Max;
    const float empty = is_max ? std::numeric_limits<float>::lowest() : 0.f;
    // Outputs [olo, ohi) have their whole window inside the row.
    const int64_t olo = std::min(OW, (pw + sw - 1) / sw);
    const int64_t ohi = IW - kw + pw < 0 ? olo : std::max(olo, std::min(OW, (IW - kw + pw) / sw + 1));
    for (int64_t oh = 0; oh < OH; ++oh, y += OW) {
      const int64_t h0 = oh * sh - w.pb[1];
      const int64_t hlo = std::max<int64_t>(h0, 0), hhi = std::min(h0 + kh, IH);
      if (hlo >= hhi) {
        std::fill(y, y + OW, empty);
        continue;
      }
      const float* src = x + hlo * IW;
      if (hhi - hlo > 1) {
        const float* r0 = src;
        const float* r1 = src + IW;
        if (is_max)
          for (int64_t i = 0; i < IW; ++i) tmp[i] = r1[i] > r0[i] ? r1[i] : r0[i];
        else
          for (int64_t i = 0; i < IW; ++i) tmp[i] = r0[i] + r1[i];
        for (int64_t h = hlo + 2; h < hhi; ++h) {
          const float* r = x + h * IW;
          if (is_max)
            for (int64_t i = 0; i < IW; ++i) tmp[i] = r[i] > tmp[i] ? r[i] : tmp[i];
          else
            for (int64_t i = 0; i < IW; ++i) tmp[i] += r[i];
        }
        src = tmp;
      }
      auto edge = [&](int64_t ow) {  // window cut by the row's ends
        const int64_t w0 = ow * sw - pw;
        const int64_t lo = std::max<int64_t>(w0, 0), hi = std::min(w0 + kw, IW);
        float acc = empty;
        if (lo < hi) {
          acc = src[lo];
          for (int64_t j = lo + 1; j < hi; ++j) acc = is_max ? (src[j] > acc ? src[j] : acc) : acc + src[j];
        }
        y[ow] = acc;
      };
      for (int64_t ow = 0; ow < olo; ++ow) edge(ow);
      const float* s0 = src + (olo * sw - pw);  // window of output olo
      float* yi = y + olo;
      const int64_t n = ohi - olo;
      if (kw == 2 && sw == 2) {
        if (is_max)
          for (int64_t i = 0; i < n; ++i) {
            const float a = s0[2 * i], b = s0[2 * i + 1];
            yi[i] = b > a ? b : a;
          }
        else
          for (int64_t i = 0; i < n; ++i) yi[i] = s0[2 * i] + s0[2 * i + 1];
      } else {
        for (int64_t ow = olo; ow < ohi; ++ow) {
          const float* s = s0 + (ow - olo) * sw;
          float acc = s[0];
          if (is_max)
            for (int64_t j = 1; j < kw; ++j) acc = s[j] > acc ? s[j] : acc;
          else
            for (int64_t j = 1; j < kw; ++j) acc += s[j];
          y[ow] = acc;
        }
      }
      for (int64_t ow = ohi; ow < OW; ++ow) edge(ow);
      if (!is_max) {
        const int64_t ch = cnt_h_[static_cast<size_t>(oh)];
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t n = ch * cnt_w_[static_cast<size_t>(ow)];
          y[ow] = n ? y[ow] / static_cast<float>(n) : 0.f;
        }
      }
    }
  }

  // Input floats per thread chunk: ~0.5 MB, about 15 us of pooling; less is
  // not worth a wake-up (measured 10-75 us on the shared VM).
  static constexpr int64_t kPoolChunk = 128 * 1024;

  const KernelTable& table_ = kernels();
  PoolMode mode_;
  bool simd_ = false;  // the table's pool2d_f32 runs the row path's windows
  Pool2dArgs simd_args_;
  std::vector<float> fcnt_h_, fcnt_w_;  // average divisors per output row / column (as floats)
  bool rows_ = false, tiled2x2_ = false;  // tiled2x2_: 2x2 stride 2 windows cover the input exactly
  int threads_ = 1;
  int64_t grain_ = 1, row_stride_ = 0;
  std::vector<int64_t> cnt_h_, cnt_w_;
  DType dtype_ = DType::Float32;
  Window3 win_;
  int64_t planes_ = 0, inner_ = 0;
  bool global_ = false, count_include_pad_ = false, col_major_ = false, with_indices_ = false;
  double p_ = 2.0;
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
