// Unary math and activation operators, Clip, and the Softmax family.
// float32 runs in blocks through the dispatched vector math (exp, log, tanh,
// sigmoid, erf and the fused-activation kernel), so Gelu, Selu, Softmax...
// get the AVX2 versions; float64 and integer types use exact std:: math.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/common.h"

namespace pyengine {

namespace {

enum class U {
  Sqrt, Exp, Log, Abs, Neg, Reciprocal, Floor, Ceil, Round, Sign, Erf, Sin, Cos, Tan, Asin, Acos, Atan,
  Sinh, Cosh, Asinh, Acosh, Atanh, Softplus, Softsign, Relu, LeakyRelu, Elu, Selu, Celu, Sigmoid,
  HardSigmoid, HardSwish, Tanh, Gelu, GeluTanh, ThresholdedRelu, Mish,
};

struct UnaryInfo {
  const char* name;
  U op;
  bool ints;  // also defined for signed integer types
};

const UnaryInfo kUnary[] = {
    {"Sqrt", U::Sqrt, false}, {"Exp", U::Exp, false}, {"Log", U::Log, false}, {"Abs", U::Abs, true},
    {"Neg", U::Neg, true}, {"Reciprocal", U::Reciprocal, false}, {"Floor", U::Floor, false},
    {"Ceil", U::Ceil, false}, {"Round", U::Round, false}, {"Sign", U::Sign, true}, {"Erf", U::Erf, false},
    {"Sin", U::Sin, false}, {"Cos", U::Cos, false}, {"Tan", U::Tan, false}, {"Asin", U::Asin, false},
    {"Acos", U::Acos, false}, {"Atan", U::Atan, false}, {"Sinh", U::Sinh, false}, {"Cosh", U::Cosh, false},
    {"Asinh", U::Asinh, false}, {"Acosh", U::Acosh, false}, {"Atanh", U::Atanh, false},
    {"Softplus", U::Softplus, false}, {"Softsign", U::Softsign, false}, {"Relu", U::Relu, true},
    {"LeakyRelu", U::LeakyRelu, false}, {"Elu", U::Elu, false}, {"Selu", U::Selu, false},
    {"Celu", U::Celu, false}, {"Sigmoid", U::Sigmoid, false}, {"HardSigmoid", U::HardSigmoid, false},
    {"HardSwish", U::HardSwish, false}, {"Tanh", U::Tanh, false}, {"Gelu", U::Gelu, false},
    {"ThresholdedRelu", U::ThresholdedRelu, false}, {"Mish", U::Mish, false},
};

// Exact scalar definition of every unary op (float64, integers, and the
// float32 ops without a vector kernel).
template <class T>
inline T unary1(U op, T x, T alpha, T beta, T gamma) {
  if constexpr (std::is_integral_v<T>) {
    switch (op) {
      case U::Abs: return x < 0 ? static_cast<T>(-x) : x;
      case U::Neg: return static_cast<T>(-x);
      case U::Sign: return static_cast<T>((x > 0) - (x < 0));
      case U::Relu: return x > 0 ? x : T(0);
      default: return x;  // rejected in the constructor
    }
  } else {
    switch (op) {
      case U::Sqrt: return std::sqrt(x);
      case U::Exp: return std::exp(x);
      case U::Log: return std::log(x);
      case U::Abs: return std::fabs(x);
      case U::Neg: return -x;
      case U::Reciprocal: return T(1) / x;
      case U::Floor: return std::floor(x);
      case U::Ceil: return std::ceil(x);
      case U::Round: return std::nearbyint(x);  // half to even in the default rounding mode
      case U::Sign: return x > 0 ? T(1) : x < 0 ? T(-1) : x;  // keeps 0 and NaN
      case U::Erf: return std::erf(x);
      case U::Sin: return std::sin(x);
      case U::Cos: return std::cos(x);
      case U::Tan: return std::tan(x);
      case U::Asin: return std::asin(x);
      case U::Acos: return std::acos(x);
      case U::Atan: return std::atan(x);
      case U::Sinh: return std::sinh(x);
      case U::Cosh: return std::cosh(x);
      case U::Asinh: return std::asinh(x);
      case U::Acosh: return std::acosh(x);
      case U::Atanh: return std::atanh(x);
      case U::Softplus: return std::max(x, T(0)) + std::log1p(std::exp(-std::fabs(x)));
      case U::Softsign: return x / (T(1) + std::fabs(x));
      case U::Relu: return x < 0 ? T(0) : x;
      case U::LeakyRelu: return x >= 0 ? x : alpha * x;
      case U::Elu: return x >= 0 ? x : alpha * (std::exp(x) - T(1));
      case U::Selu: return x > 0 ? gamma * x : gamma * alpha * (std::exp(x) - T(1));
      case U::Celu: return std::max(T(0), x) + std::min(T(0), alpha * (std::exp(x / alpha) - T(1)));
      case U::Sigmoid: return T(1) / (T(1) + std::exp(-x));
      case U::HardSigmoid: return std::max(T(0), std::min(T(1), alpha * x + beta));
      case U::HardSwish: return x * std::max(T(0), std::min(T(1), x / T(6) + T(0.5)));
      case U::Tanh: return std::tanh(x);
      case U::Gelu: return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
      case U::GeluTanh: {
        T inner = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
        return T(0.5) * x * (T(1) + std::tanh(inner));
      }
      case U::ThresholdedRelu: return x > alpha ? x : T(0);
      case U::Mish: return x * std::tanh(std::max(x, T(0)) + std::log1p(std::exp(-std::fabs(x))));
    }
    return x;
  }
}

class UnaryKernel : public Kernel {
 public:
  explicit UnaryKernel(const NodeSpec& spec)
      : dtype_(spec.input(0).dtype), table_(kernels()), n_(spec.outputs[0].numel()) {
    const UnaryInfo* info = nullptr;
    for (const UnaryInfo& u : kUnary)
      if (spec.op_type == u.name) info = &u;
    require(info != nullptr, "unknown unary operator " + spec.op_type);
    op_ = info->op;
    if (op_ == U::Gelu && spec.attrs.get_string("approximate", "none") == "tanh") op_ = U::GeluTanh;
    require(spec.outputs[0].dtype == dtype_, "output must have the input's element type");
    bool is_float = dtype_ == DType::Float32 || dtype_ == DType::Float64;
    bool is_signed_int = dtype_ == DType::Int8 || dtype_ == DType::Int16 || dtype_ == DType::Int32 ||
                         dtype_ == DType::Int64;
    require(is_float || (info->ints && is_signed_int),
            spec.op_type + " does not take element type " + dtype_name(dtype_));
    // Defaults per ONNX; Python passes the attributes that were set.
    double da = op_ == U::LeakyRelu ? 0.01 : op_ == U::HardSigmoid ? 0.2 : op_ == U::Selu ? 1.67326319217681884765625
              : op_ == U::ThresholdedRelu ? 1.0 : 1.0;
    alpha_ = spec.attrs.get_float("alpha", da);
    beta_ = spec.attrs.get_float("beta", 0.5);
    gamma_ = spec.attrs.get_float("gamma", 1.05070102214050292968750);
  }

  void run(const KernelIO& io) override {
    switch (dtype_) {
      case DType::Float32: return run_f32(io);
      case DType::Float64: return run_generic<double>(io);
      case DType::Int8: return run_generic<int8_t>(io);
      case DType::Int16: return run_generic<int16_t>(io);
      case DType::Int32: return run_generic<int32_t>(io);
      case DType::Int64: return run_generic<int64_t>(io);
      default: throw KernelError("unsupported element type");
    }
  }

 private:
  template <class T>
  void run_generic(const KernelIO& io) {
    const T* x = in_ptr<T>(io, 0);
    T* y = out_ptr<T>(io, 0);
    const U op = op_;
    const T a = static_cast<T>(alpha_), b = static_cast<T>(beta_), g = static_cast<T>(gamma_);
    io.pool->parallel_for(n_, 8192, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) y[i] = unary1<T>(op, x[i], a, b, g);
    });
  }

  // Blocks of kBlock floats; composite ops keep their temporary on the stack.
  static constexpr int64_t kBlock = 512;

  void run_f32(const KernelIO& io) {
    const float* x = in_ptr<float>(io, 0);
    float* y = out_ptr<float>(io, 0);
    io.pool->parallel_for(n_, 16384, [&](int64_t s, int64_t e) {
      for (int64_t b = s; b < e; b += kBlock) block_f32(x + b, y + b, std::min(kBlock, e - b));
    });
  }

  void block_f32(const float* x, float* y, int64_t n) const {
    const float a = static_cast<float>(alpha_), be = static_cast<float>(beta_), g = static_cast<float>(gamma_);
    float t[kBlock];
    switch (op_) {
      case U::Exp: return table_.exp(x, y, n);
      case U::Log: return table_.log(x, y, n);
      case U::Tanh: return table_.tanh(x, y, n);
      case U::Sigmoid: return table_.sigmoid(x, y, n);
      case U::Erf: return table_.erf(x, y, n);
      case U::Relu: return table_.activation(x, y, n, Activation{Activation::Relu, 0.f, 0.f});
      case U::LeakyRelu: return table_.activation(x, y, n, Activation{Activation::LeakyRelu, a, 0.f});
      case U::HardSigmoid: return table_.activation(x, y, n, Activation{Activation::HardSigmoid, a, be});
      case U::Elu: return table_.activation(x, y, n, Activation{Activation::Elu, a, 0.f});
      case U::Selu:
        for (int64_t i = 0; i < n; ++i) t[i] = std::min(x[i], 0.f);
        table_.exp(t, t, n);
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? g * x[i] : g * a * (t[i] - 1.f);
        return;
      case U::Gelu: return table_.activation(x, y, n, Activation{Activation::Gelu, 0.f, 0.f});  // one pass
      case U::GeluTanh:
        for (int64_t i = 0; i < n; ++i) t[i] = 0.79788456080286535588f * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        table_.tanh(t, t, n);
        for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.f + t[i]);
        return;
      default:
        for (int64_t i = 0; i < n; ++i) y[i] = unary1<float>(op_, x[i], a, be, g);
    }
  }

  U op_ = U::Relu;
  DType dtype_;
  const KernelTable& table_;
  int64_t n_;
  double alpha_ = 0, beta_ = 0, gamma_ = 0;
};

// Clip: bounds from attributes `min`/`max` (opset < 11, passed by Python) or
// from the optional inputs 1 and 2, read when the kernel runs (they may be
// computed at run time).
class ClipKernel : public Kernel {
 public:
  explicit ClipKernel(const NodeSpec& spec)
      : dtype_(spec.input(0).dtype), table_(kernels()), n_(spec.outputs[0].numel()),
        has_min_attr_(spec.attrs.has("min")), has_max_attr_(spec.attrs.has("max")),
        min_attr_(spec.attrs.get_float("min", 0)), max_attr_(spec.attrs.get_float("max", 0)) {
    for (size_t i = 1; i < 3; ++i) {
      has_in_[i] = spec.has_input(i);  // io.in has only as many entries as the node has inputs
      if (has_in_[i]) {
        require(spec.input(i).dtype == dtype_, "min/max must have the input's element type");
        require(spec.input(i).numel() == 1, "min/max must be scalars, got shape " + shape_str(spec.input(i).shape));
      }
    }
    PYENGINE_DISPATCH_NUMERIC(dtype_, T, (void)sizeof(T));
  }

  void run(const KernelIO& io) override { PYENGINE_DISPATCH_NUMERIC(dtype_, T, run_t<T>(io)); }

 private:
  template <class T>
  T bound(const KernelIO& io, size_t i, bool has_attr, double attr, T dflt) const {
    if (has_in_[i]) return *static_cast<const T*>(io.in[i]);
    return has_attr ? static_cast<T>(attr) : dflt;
  }

  template <class T>
  void run_t(const KernelIO& io) {
    const T lo = bound<T>(io, 1, has_min_attr_, min_attr_, std::numeric_limits<T>::lowest());
    const T hi = bound<T>(io, 2, has_max_attr_, max_attr_, std::numeric_limits<T>::max());
    const T* x = in_ptr<T>(io, 0);
    T* y = out_ptr<T>(io, 0);
    io.pool->parallel_for(n_, 16384, [&](int64_t s, int64_t e) {
      if constexpr (std::is_same_v<T, float>) {
        table_.activation(x + s, y + s, e - s, Activation{Activation::Clip, lo, hi});
      } else {
        for (int64_t i = s; i < e; ++i) y[i] = std::min(std::max(x[i], lo), hi);
      }
    });
  }

  DType dtype_;
  const KernelTable& table_;
  int64_t n_;
  bool has_min_attr_, has_max_attr_;
  bool has_in_[3] = {true, false, false};
  double min_attr_, max_attr_;
};

// Softmax, LogSoftmax, Hardmax over one axis of an [outer, dim, inner] view
// (Python passes `axis`; `coerce` = 1 selects the opset < 13 semantics that
// flatten everything from the axis on into the reduced dimension).
class SoftmaxKernel : public Kernel {
 public:
  explicit SoftmaxKernel(const NodeSpec& spec)
      : kind_(spec.op_type == "Softmax" ? 0 : spec.op_type == "LogSoftmax" ? 1 : 2), table_(kernels()) {
    require_dtype(spec.input(0), DType::Float32, "input");
    const Shape& s = spec.input(0).shape;
    int64_t rank = static_cast<int64_t>(s.size());
    int64_t axis = spec.attrs.get_int("axis", rank - 1);
    require(rank == 0 ? axis == 0 : (axis >= 0 && axis < rank), "axis out of range");
    bool coerce = spec.attrs.get_int("coerce", 0) != 0;
    outer_ = dim_ = inner_ = 1;
    for (int64_t d = 0; d < rank; ++d) {
      if (d < axis) outer_ *= s[d];
      else if (d == axis || coerce) dim_ *= s[d];
      else inner_ *= s[d];
    }
    num_threads_ = spec.num_threads;
  }

  size_t scratch_bytes() const override {
    return inner_ > 1 ? static_cast<size_t>(num_threads_) * 2 * static_cast<size_t>(inner_) * sizeof(float) : 0;
  }

  void run(const KernelIO& io) override {
    const float* x = in_ptr<float>(io, 0);
    float* y = out_ptr<float>(io, 0);
    if (outer_ * dim_ * inner_ == 0) return;
    int64_t grain = std::max<int64_t>(1, 16384 / (dim_ * inner_));
    if (inner_ == 1) {
      io.pool->parallel_for(outer_, grain, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) row(x + o * dim_, y + o * dim_);
      });
    } else {
      float* scratch = static_cast<float*>(io.scratch);
      io.pool->parallel_for(outer_, grain, [&](int64_t b, int64_t e) {
        float* m = scratch + static_cast<size_t>(ThreadPool::thread_index()) * 2 * inner_;
        for (int64_t o = b; o < e; ++o) strided(x + o * dim_ * inner_, y + o * dim_ * inner_, m, m + inner_);
      });
    }
  }

 private:
  // One contiguous row of dim_ elements.
  void row(const float* x, float* y) const {
    float m = table_.reduce_max(x, dim_);
    if (kind_ == 2) {
      int64_t k = 0;
      while (k < dim_ - 1 && !(x[k] == m)) ++k;
      for (int64_t i = 0; i < dim_; ++i) y[i] = i == k ? 1.f : 0.f;
      return;
    }
    if (std::isinf(m) && m < 0) m = 0.f;  // all -inf: avoid -inf - -inf
    float s = table_.exp_shift_sum(x, m, y, dim_);
    if (kind_ == 0) {
      table_.mul_scalar(y, 1.f / s, y, dim_);
    } else {
      // (x - m) - log(s): subtracting m first keeps the precision when |m| is huge.
      table_.add_scalar(x, -m, y, dim_);
      table_.add_scalar(y, -std::log(s), y, dim_);
    }
  }

  // dim_ rows of inner_ contiguous elements: reduce down the rows, vector
  // operations along them.
  void strided(const float* x, float* y, float* m, float* s) const {
    const int64_t I = inner_;
    std::copy(x, x + I, m);
    for (int64_t d = 1; d < dim_; ++d) {
      const float* r = x + d * I;
      for (int64_t i = 0; i < I; ++i) m[i] = (r[i] > m[i] || std::isnan(r[i])) ? r[i] : m[i];
    }
    if (kind_ == 2) {
      std::fill(y, y + dim_ * I, 0.f);
      for (int64_t i = 0; i < I; ++i) {
        int64_t k = 0;
        while (k < dim_ - 1 && !(x[k * I + i] == m[i])) ++k;
        y[k * I + i] = 1.f;
      }
      return;
    }
    for (int64_t i = 0; i < I; ++i) {
      if (std::isinf(m[i]) && m[i] < 0) m[i] = 0.f;
    }
    std::fill(s, s + I, 0.f);
    for (int64_t d = 0; d < dim_; ++d) {
      float* r = y + d * I;
      table_.sub(x + d * I, m, r, I);
      table_.exp(r, r, I);
      table_.add(s, r, s, I);
    }
    if (kind_ == 0) {
      for (int64_t i = 0; i < I; ++i) s[i] = 1.f / s[i];
      for (int64_t d = 0; d < dim_; ++d) table_.mul(y + d * I, s, y + d * I, I);
    } else {
      table_.log(s, s, I);
      for (int64_t d = 0; d < dim_; ++d) {
        table_.sub(x + d * I, m, y + d * I, I);
        table_.sub(y + d * I, s, y + d * I, I);
      }
    }
  }

  int kind_;
  const KernelTable& table_;
  int64_t outer_ = 1, dim_ = 1, inner_ = 1;
  int num_threads_ = 1;
};

}  // namespace

void register_activation_ops() {
  for (const UnaryInfo& u : kUnary) register_kernel(u.name, make_kernel<UnaryKernel>);
  register_kernel("Clip", make_kernel<ClipKernel>);
  for (const char* name : {"Softmax", "LogSoftmax", "Hardmax"}) register_kernel(name, make_kernel<SoftmaxKernel>);
}

}  // namespace pyengine
