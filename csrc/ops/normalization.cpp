// BatchNormalization (inference), InstanceNormalization, LRN,
// LayerNormalization and GroupNormalization on float32/float64. Statistics
// are accumulated in double, two passes (mean, then squared deviations), so
// large or offset inputs keep their precision; each row/plane is reduced by
// one thread, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "ops/common.h"

namespace pyengine {

namespace {

void require_float(const NodeSpec& spec) {
  DType t = spec.input(0).dtype;
  require(t == DType::Float32 || t == DType::Float64,
          spec.op_type + " supports float32 and float64, got " + std::string(dtype_name(t)));
  for (size_t i = 1; i < spec.inputs.size(); ++i)
    if (spec.has_input(i)) require(spec.input(i).dtype == t, spec.op_type + ": all inputs must have the input's type");
}

#define PYENGINE_FLOAT_TYPES(t, T, ...)                            \
  if (t == DType::Float32) { using T = float; __VA_ARGS__; }       \
  else { using T = double; __VA_ARGS__; }

template <class T>
void mean_var(const T* x, int64_t n, double* mean, double* var) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  const double m = n ? s / static_cast<double>(n) : 0.0;
  double v = 0;
  for (int64_t i = 0; i < n; ++i) v += (x[i] - m) * (x[i] - m);
  *mean = m;
  *var = n ? v / static_cast<double>(n) : 0.0;
}

// y = act(x * s[c] + t[c]) with s = scale / sqrt(var + eps), t = B - mean * s,
// act the activation fused by graph/passes/fuse_activation.py (or none), for
// P parameter sets each applied to R consecutive elements (P = C, R = spatial;
// or, for spatial = 0 in old opsets, P = C * spatial, R = 1).
class BatchNormKernel : public Kernel {
 public:
  explicit BatchNormKernel(const NodeSpec& spec) {
    require_float(spec);
    const TensorDesc& x = spec.input(0);
    dtype_ = x.dtype;
    eps_ = spec.attrs.get_float("epsilon", 1e-5);
    act_ = fused_activation(spec);
    N_ = x.shape[0];
    const int64_t c = x.shape[1];
    const int64_t spatial = c ? x.numel() / std::max<int64_t>(N_ * c, 1) : 0;
    const bool per_element = spec.attrs.get_int("per_element", 0) != 0;
    P_ = per_element ? c * spatial : c;
    R_ = per_element ? 1 : spatial;
    for (int i = 1; i <= 4; ++i)
      require(spec.input(i).numel() == P_, "BatchNormalization: parameter " + std::to_string(i) + " has " +
                                               std::to_string(spec.input(i).numel()) + " entries, expected " +
                                               std::to_string(P_));
    constant_ = true;
    for (int i = 1; i <= 4; ++i) constant_ = constant_ && spec.input(i).const_data;
    if (constant_) {
      PYENGINE_FLOAT_TYPES(dtype_, T, {
        const void* p[4] = {spec.input(1).const_data, spec.input(2).const_data, spec.input(3).const_data,
                            spec.input(4).const_data};
        folded_.resize(static_cast<size_t>(2 * P_ * sizeof(T)));
        fold<T>(p, reinterpret_cast<T*>(folded_.data()));
      });
    }
  }

  size_t scratch_bytes() const override { return constant_ ? 0 : static_cast<size_t>(2 * P_) * sizeof(double); }

  void run(const KernelIO& io) override {
    PYENGINE_FLOAT_TYPES(dtype_, T, run_typed<T>(io));
  }

 private:
  template <class T>
  void fold(const void* const* p, T* st) const {
    const T *scale = static_cast<const T*>(p[0]), *b = static_cast<const T*>(p[1]);
    const T *mean = static_cast<const T*>(p[2]), *var = static_cast<const T*>(p[3]);
    for (int64_t i = 0; i < P_; ++i) {
      const double s = static_cast<double>(scale[i]) / std::sqrt(static_cast<double>(var[i]) + eps_);
      st[i] = static_cast<T>(s);
      st[P_ + i] = static_cast<T>(static_cast<double>(b[i]) - static_cast<double>(mean[i]) * s);
    }
  }

  // y = x * s + t; a fused Relu is applied in the same loop (the common
  // case: no second pass at all), any other activation by activate_block.
  template <class T>
  void affine(const T* x, T* y, int64_t n, T s, T t) const {
    if (act_.kind == Activation::Relu) {
      for (int64_t j = 0; j < n; ++j) {
        const T v = x[j] * s + t;
        y[j] = v < T(0) ? T(0) : v;  // NaN stays NaN, as the Relu op
      }
    } else {
      for (int64_t j = 0; j < n; ++j) y[j] = x[j] * s + t;
    }
  }

  // The fused activation (other than Relu) in place on a block just written
  // (still in L1); float: the table's vectorized activation.
  template <class T>
  void activate_block(T* y, int64_t n) const {
    if (act_.kind == Activation::None || act_.kind == Activation::Relu) return;
    if constexpr (std::is_same_v<T, float>) {
      table_.activation(y, y, n, act_);
    } else {
      for (int64_t j = 0; j < n; ++j) y[j] = activate(y[j]);
    }
  }

  // float64 activations (the table's are float32 only); the same formulas as
  // kernels/ref/vmath_ref.cpp.
  double activate(double v) const {
    const double a = act_.alpha, b = act_.beta;
    switch (act_.kind) {
      case Activation::Relu: return v < 0 ? 0.0 : v;
      case Activation::LeakyRelu: return v >= 0 ? v : v * a;
      case Activation::Clip: return std::min(std::max(v, a), b);
      case Activation::Sigmoid: return 1.0 / (1.0 + std::exp(-v));
      case Activation::Tanh: return std::tanh(v);
      case Activation::HardSigmoid: return std::max(0.0, std::min(1.0, a * v + b));
      case Activation::Elu: return v >= 0 ? v : a * (std::exp(v) - 1.0);
      case Activation::Gelu: return 0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440));
      default: return v;
    }
  }

  template <class T>
  void run_typed(const KernelIO& io) {
    const T* X = in_ptr<T>(io, 0);
    T* Y = out_ptr<T>(io, 0);
    const T* st = reinterpret_cast<const T*>(folded_.data());
    if (!constant_) {
      const void* p[4] = {io.in[1], io.in[2], io.in[3], io.in[4]};
      T* s = static_cast<T*>(io.scratch);
      fold<T>(p, s);
      st = s;
    }
    const int64_t items = N_ * P_, R = R_, P = P_;
    if (items == 0 || R == 0) return;
    constexpr int64_t kBlock = 2048;  // elements per affine + activation step (8 KiB of float)
    if (R == 1) {  // per-element parameters (spatial = 0 in old opsets) or no spatial dims
      io.pool->parallel_for(items, 16384, [&](int64_t b, int64_t e) {
        for (int64_t j0 = b; j0 < e; j0 += kBlock) {
          const int64_t j1 = std::min(e, j0 + kBlock);
          for (int64_t j = j0; j < j1; ++j) affine<T>(X + j, Y + j, 1, st[j % P], st[P + j % P]);
          activate_block<T>(Y + j0, j1 - j0);
        }
      });
      return;
    }
    io.pool->parallel_for(items, std::max<int64_t>(1, 16384 / R), [&](int64_t b, int64_t e) {
      if (R >= kBlock) {  // long rows: the activation follows each block of a row
        for (int64_t i = b; i < e; ++i) {
          const T s = st[i % P], t = st[P + i % P];
          const T* x = X + i * R;
          T* y = Y + i * R;
          for (int64_t j0 = 0; j0 < R; j0 += kBlock) {
            const int64_t n = std::min(kBlock, R - j0);
            affine<T>(x + j0, y + j0, n, s, t);
            activate_block<T>(y + j0, n);
          }
        }
        return;
      }
      // short rows (late layers: 7x7, 14x14): one activation call for the
      // several consecutive rows of a block, not one call per short row
      const int64_t rows = kBlock / R;
      for (int64_t i0 = b; i0 < e; i0 += rows) {
        const int64_t i1 = std::min(e, i0 + rows);
        for (int64_t i = i0; i < i1; ++i) {
          const T s = st[i % P], t = st[P + i % P];
          const T* x = X + i * R;
          T* y = Y + i * R;
          affine<T>(x, y, R, s, t);
        }
        activate_block<T>(Y + i0 * R, (i1 - i0) * R);
      }
    });
  }

  const KernelTable& table_ = kernels();
  Activation act_;
  DType dtype_;
  double eps_ = 1e-5;
  int64_t N_ = 0, P_ = 0, R_ = 0;
  bool constant_ = false;
  std::vector<unsigned char> folded_;
};

class InstanceNormKernel : public Kernel {
 public:
  explicit InstanceNormKernel(const NodeSpec& spec) {
    require_float(spec);
    const TensorDesc& x = spec.input(0);
    dtype_ = x.dtype;
    eps_ = spec.attrs.get_float("epsilon", 1e-5);
    C_ = x.shape[1];
    planes_ = x.shape[0] * C_;
    R_ = planes_ ? x.numel() / planes_ : 0;
  }
  void run(const KernelIO& io) override { PYENGINE_FLOAT_TYPES(dtype_, T, run_typed<T>(io)); }

 private:
  template <class T>
  void run_typed(const KernelIO& io) {
    const T* X = in_ptr<T>(io, 0);
    const T* scale = in_ptr<T>(io, 1);
    const T* B = in_ptr<T>(io, 2);
    T* Y = out_ptr<T>(io, 0);
    io.pool->parallel_for(planes_, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const T* x = X + i * R_;
        T* y = Y + i * R_;
        double mean, var;
        mean_var(x, R_, &mean, &var);
        const double s = scale[i % C_] / std::sqrt(var + eps_);
        const T a = static_cast<T>(s), t = static_cast<T>(B[i % C_] - mean * s);
        for (int64_t j = 0; j < R_; ++j) y[j] = x[j] * a + t;
      }
    });
  }
  DType dtype_;
  double eps_;
  int64_t C_ = 0, planes_ = 0, R_ = 0;
};

// y = x / (bias + alpha / size * sum of x^2 over the channel window) ^ beta
class LrnKernel : public Kernel {
 public:
  explicit LrnKernel(const NodeSpec& spec) {
    require_float(spec);
    const TensorDesc& x = spec.input(0);
    dtype_ = x.dtype;
    size_ = spec.attrs.get_int("size", 1);
    require(size_ >= 1, "LRN size must be >= 1");
    alpha_ = spec.attrs.get_float("alpha", 1e-4);
    beta_ = spec.attrs.get_float("beta", 0.75);
    bias_ = spec.attrs.get_float("bias", 1.0);
    N_ = x.shape[0];
    C_ = x.shape[1];
    R_ = (N_ * C_ != 0) ? x.numel() / (N_ * C_) : 0;
  }
  void run(const KernelIO& io) override { PYENGINE_FLOAT_TYPES(dtype_, T, run_typed<T>(io)); }

 private:
  template <class T>
  void run_typed(const KernelIO& io) {
    const T* X = in_ptr<T>(io, 0);
    T* Y = out_ptr<T>(io, 0);
    const int64_t before = (size_ - 1) / 2, after = size_ - 1 - before;
    const double k = alpha_ / static_cast<double>(size_);
    io.pool->parallel_for(N_ * C_, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t n = i / C_, c = i % C_;
        const int64_t c0 = std::max<int64_t>(0, c - before), c1 = std::min<int64_t>(C_ - 1, c + after);
        const T* x = X + i * R_;
        T* y = Y + i * R_;
        for (int64_t j = 0; j < R_; ++j) {
          double s = 0;
          for (int64_t cc = c0; cc <= c1; ++cc) {
            const double v = X[(n * C_ + cc) * R_ + j];
            s += v * v;
          }
          y[j] = static_cast<T>(x[j] / std::pow(bias_ + k * s, beta_));
        }
      }
    });
  }
  DType dtype_;
  int64_t size_ = 1, N_ = 0, C_ = 0, R_ = 0;
  double alpha_, beta_, bias_;
};

// Scale/bias broadcast over the normalized shape: index of each of the
// `inner` positions into the parameter (identity when it is full size).
std::vector<int64_t> param_index(const TensorDesc& p, const Shape& normalized) {
  std::vector<int64_t> idx;
  const int64_t inner = shape_numel(normalized);
  if (p.numel() == inner) return idx;
  require(p.rank() <= normalized.size(), "LayerNormalization: Scale/B rank exceeds the normalized rank");
  auto st = broadcast_strides(p.shape, normalized);
  idx.resize(static_cast<size_t>(inner));
  for (int64_t j = 0; j < inner; ++j) {
    int64_t rem = j, off = 0;
    for (int64_t d = static_cast<int64_t>(normalized.size()) - 1; d >= 0; --d) {
      off += (rem % normalized[d]) * st[d];
      rem /= normalized[d];
    }
    idx[j] = off;
  }
  return idx;
}

class LayerNormKernel : public Kernel {
 public:
  explicit LayerNormKernel(const NodeSpec& spec) {
    require_float(spec);
    const TensorDesc& x = spec.input(0);
    dtype_ = x.dtype;
    eps_ = spec.attrs.get_float("epsilon", 1e-5);
    const int64_t axis = spec.attrs.get_int("axis", static_cast<int64_t>(x.rank()) - 1);
    require(axis >= 0 && axis <= static_cast<int64_t>(x.rank()), "LayerNormalization: axis out of range");
    Shape normalized(x.shape.begin() + axis, x.shape.end());
    inner_ = shape_numel(normalized);
    rows_ = inner_ ? x.numel() / inner_ : shape_numel(Shape(x.shape.begin(), x.shape.begin() + axis));
    scale_idx_ = param_index(spec.input(1), normalized);
    has_bias_ = spec.has_input(2);
    if (has_bias_) bias_idx_ = param_index(spec.input(2), normalized);
    for (size_t k = 1; k < spec.outputs.size() && k < 3; ++k) {
      stat_type_[k - 1] = spec.outputs[k].dtype;
      require(stat_type_[k - 1] == DType::Float32 || stat_type_[k - 1] == DType::Float64,
              "LayerNormalization: Mean/InvStdDev must be float32 or float64");
    }
  }
  void run(const KernelIO& io) override { PYENGINE_FLOAT_TYPES(dtype_, T, run_typed<T>(io)); }

 private:
  static void put(void* out, DType t, int64_t i, double v) {
    if (!out) return;
    if (t == DType::Float32) static_cast<float*>(out)[i] = static_cast<float>(v);
    else static_cast<double*>(out)[i] = v;
  }

  template <class T>
  void run_typed(const KernelIO& io) {
    const T* X = in_ptr<T>(io, 0);
    const T* S = in_ptr<T>(io, 1);
    const T* B = has_bias_ ? in_ptr<T>(io, 2) : nullptr;
    T* Y = out_ptr<T>(io, 0);
    void* mean_out = stat_type_[0] != DType::Undefined ? io.out[1] : nullptr;
    void* inv_out = stat_type_[1] != DType::Undefined ? io.out[2] : nullptr;
    const int64_t* si = scale_idx_.empty() ? nullptr : scale_idx_.data();
    const int64_t* bi = bias_idx_.empty() ? nullptr : bias_idx_.data();
    const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(inner_, 1));
    if constexpr (std::is_same_v<T, float>) {
      if (!si && (!B || !bi)) {
        io.pool->parallel_for(rows_, grain, [&](int64_t b, int64_t e) {
          for (int64_t r = b; r < e; ++r) {
            double mean, inv;
            row_f32(X + r * inner_, S, B, Y + r * inner_, &mean, &inv);
            put(mean_out, stat_type_[0], r, mean);
            put(inv_out, stat_type_[1], r, inv);
          }
        });
        return;
      }
    }
    io.pool->parallel_for(rows_, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* x = X + r * inner_;
        T* y = Y + r * inner_;
        double mean, var;
        mean_var(x, inner_, &mean, &var);
        const double inv = 1.0 / std::sqrt(var + eps_);
        for (int64_t j = 0; j < inner_; ++j) {
          double v = (x[j] - mean) * inv * S[si ? si[j] : j];
          if (B) v += B[bi ? bi[j] : j];
          y[j] = static_cast<T>(v);
        }
        put(mean_out, stat_type_[0], r, mean);
        put(inv_out, stat_type_[1], r, inv);
      }
    });
  }
  // One float32 row with contiguous Scale/B, through the table's vector
  // entries. Corrected two-pass statistics: d = x - m0 with m0 the float mean,
  // then c = mean(d) fixes m0's rounding and var = mean(d^2) - c^2, so offset
  // inputs keep their precision without double accumulation.
  void row_f32(const float* x, const float* s, const float* b, float* y, double* mean, double* inv) const {
    const int64_t n = inner_;
    if (n == 0) {
      *mean = 0.0;
      *inv = 1.0 / std::sqrt(eps_);
      return;
    }
    const float m0 = table_.reduce_sum(x, n) / static_cast<float>(n);
    table_.sub_scalar(x, m0, y, n);
    const double c = static_cast<double>(table_.reduce_sum(y, n)) / static_cast<double>(n);
    const double var = std::max(0.0, static_cast<double>(table_.reduce_sumsq(y, n)) / static_cast<double>(n) - c * c);
    *mean = m0 + c;
    *inv = 1.0 / std::sqrt(var + eps_);
    if (c != 0.0) table_.sub_scalar(y, static_cast<float>(c), y, n);
    table_.mul_scalar(y, static_cast<float>(*inv), y, n);
    table_.mul(y, s, y, n);
    if (b) table_.add(y, b, y, n);
  }

  const KernelTable& table_ = kernels();
  DType dtype_;
  double eps_;
  int64_t inner_ = 0, rows_ = 0;
  bool has_bias_ = false;
  std::vector<int64_t> scale_idx_, bias_idx_;
  DType stat_type_[2] = {DType::Undefined, DType::Undefined};
};

class GroupNormKernel : public Kernel {
 public:
  explicit GroupNormKernel(const NodeSpec& spec) {
    require_float(spec);
    const TensorDesc& x = spec.input(0);
    dtype_ = x.dtype;
    eps_ = spec.attrs.get_float("epsilon", 1e-5);
    G_ = spec.attrs.get_int("num_groups", 1);
    per_group_ = spec.attrs.get_int("per_group_scale", 0) != 0;
    N_ = x.shape[0];
    C_ = x.shape[1];
    require(G_ >= 1 && C_ % G_ == 0, "GroupNormalization: channels not divisible by num_groups");
    R_ = (N_ * C_ != 0) ? x.numel() / (N_ * C_) : 0;
  }
  void run(const KernelIO& io) override { PYENGINE_FLOAT_TYPES(dtype_, T, run_typed<T>(io)); }

 private:
  template <class T>
  void run_typed(const KernelIO& io) {
    const T* X = in_ptr<T>(io, 0);
    const T* S = in_ptr<T>(io, 1);
    const T* B = in_ptr<T>(io, 2);
    T* Y = out_ptr<T>(io, 0);
    const int64_t cg = C_ / G_, len = cg * R_;
    io.pool->parallel_for(N_ * G_, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t g = i % G_;
        const T* x = X + i * len;
        T* y = Y + i * len;
        double mean, var;
        mean_var(x, len, &mean, &var);
        const double inv = 1.0 / std::sqrt(var + eps_);
        for (int64_t c = 0; c < cg; ++c) {
          const int64_t p = per_group_ ? g : g * cg + c;
          const double s = S[p] * inv;
          const T a = static_cast<T>(s), t = static_cast<T>(B[p] - mean * s);
          for (int64_t j = 0; j < R_; ++j) y[c * R_ + j] = x[c * R_ + j] * a + t;
        }
      }
    });
  }
  DType dtype_;
  double eps_;
  int64_t G_ = 1, N_ = 0, C_ = 0, R_ = 0;
  bool per_group_ = false;
};

}  // namespace

void register_normalization_ops() {
  register_kernel("BatchNormalization", make_kernel<BatchNormKernel>);
  register_kernel("InstanceNormalization", make_kernel<InstanceNormKernel>);
  register_kernel("LRN", make_kernel<LrnKernel>);
  register_kernel("LayerNormalization", make_kernel<LayerNormKernel>);
  register_kernel("GroupNormalization", make_kernel<GroupNormKernel>);
}

}  // namespace pyengine
