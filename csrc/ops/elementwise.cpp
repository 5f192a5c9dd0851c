// Broadcasting elementwise operators: arithmetic (Add Sub Mul Div Pow Mod
// PRelu), variadic Sum/Mean/Max/Min, comparisons, logic, Where, Not, Cast,
// IsNaN and IsInf. float32 Add/Sub/Mul/Div rows go through the dispatched
// vector kernels; everything else is one template loop per element type that
// the compiler vectorizes.
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ops/broadcast.h"

namespace pyengine {

namespace {

// PYENGINE_DISPATCH_NUMERIC plus bool.
#define EW_DISPATCH_ALL(t, T, ...)                                   \
  if ((t) == DType::Bool) {                                          \
    using T = bool;                                                  \
    __VA_ARGS__;                                                     \
  } else {                                                           \
    PYENGINE_DISPATCH_NUMERIC(t, T, __VA_ARGS__)                     \
  }

// The four signed/float types Pow takes for base and exponent.
#define EW_DISPATCH_POW(t, T, ...)                                   \
  switch (t) {                                                       \
    case DType::Float32: { using T = float; __VA_ARGS__; break; }     \
    case DType::Float64: { using T = double; __VA_ARGS__; break; }    \
    case DType::Int32: { using T = int32_t; __VA_ARGS__; break; }     \
    case DType::Int64: { using T = int64_t; __VA_ARGS__; break; }     \
    default: throw KernelError(std::string("Pow does not take element type ") + dtype_name(t)); \
  }

enum class Op {
  Add, Sub, Mul, Div, Pow, Mod, FMod, PRelu, Max, Min,
  Equal, Less, Greater, LessEq, GreaterEq, And, Or, Xor,
};

bool is_compare(Op op) { return op >= Op::Equal && op <= Op::GreaterEq; }
bool is_logic(Op op) { return op >= Op::And; }

template <class T>
inline T div_op(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return T(0);  // ONNX leaves it undefined; never trap
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return static_cast<T>(T(0) - a);  // avoids INT_MIN / -1 overflow trap
    }
    return static_cast<T>(a / b);
  } else {
    return a / b;
  }
}

// Remainder with the sign of the divisor (Python's %), fmod=0.
template <class T>
inline T mod_op(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return T(0);
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return T(0);
      T r = static_cast<T>(a % b);
      if (r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
      return r;
    } else {
      return static_cast<T>(a % b);
    }
  } else {
    T r = std::fmod(a, b);
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  }
}

// Remainder with the sign of the dividend (C fmod), fmod=1.
template <class T>
inline T fmod_op(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return T(0);
    if constexpr (std::is_signed_v<T>) {
      if (b == T(-1)) return T(0);
    }
    return static_cast<T>(a % b);
  } else {
    return std::fmod(a, b);
  }
}

// Max/Min propagate NaN like onnxruntime.
template <class T>
inline T max_op(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  }
  return a < b ? b : a;
}
template <class T>
inline T min_op(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
  }
  return b < a ? b : a;
}

// Calls f(piece) with the typed arithmetic functor for `op` (same-type result).
template <class T, class G>
void with_arith(Op op, G&& g) {
  if constexpr (std::is_same_v<T, bool>) {
    throw KernelError("arithmetic on bool tensors is not supported");
  } else {
    switch (op) {
      case Op::Add: return g([](T a, T b) { return static_cast<T>(a + b); });
      case Op::Sub: return g([](T a, T b) { return static_cast<T>(a - b); });
      case Op::Mul: return g([](T a, T b) { return static_cast<T>(a * b); });
      case Op::Div: return g([](T a, T b) { return div_op(a, b); });
      case Op::Mod: return g([](T a, T b) { return mod_op(a, b); });
      case Op::FMod: return g([](T a, T b) { return fmod_op(a, b); });
      case Op::PRelu: return g([](T x, T s) { return x < T(0) ? static_cast<T>(x * s) : x; });
      case Op::Max: return g([](T a, T b) { return max_op(a, b); });
      case Op::Min: return g([](T a, T b) { return min_op(a, b); });
      default: throw KernelError("not an arithmetic operator");
    }
  }
}

template <class T, class G>
void with_compare(Op op, G&& g) {
  switch (op) {
    case Op::Equal: return g([](T a, T b) { return a == b; });
    case Op::Less: return g([](T a, T b) { return a < b; });
    case Op::Greater: return g([](T a, T b) { return a > b; });
    case Op::LessEq: return g([](T a, T b) { return a <= b; });
    case Op::GreaterEq: return g([](T a, T b) { return a >= b; });
    default: throw KernelError("not a comparison");
  }
}

// y = f(a, b) over one broadcast piece; the four stride cases are separate
// loops so each one vectorizes.
template <class A, class B, class Y, class F>
inline void piece2(const BroadcastLoop& L, const A* a, const B* b, Y* y, int64_t r, int64_t c0, int64_t n, F f) {
  const int64_t sa = L.inner_stride(0), sb = L.inner_stride(1);
  const A* pa = a + L.offset(0, r) + c0 * sa;
  const B* pb = b + L.offset(1, r) + c0 * sb;
  Y* py = y + r * L.row_len() + c0;
  if (sa && sb) {
    for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
  } else if (sa) {
    const B s = *pb;
    for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], s);
  } else if (sb) {
    const A s = *pa;
    for (int64_t i = 0; i < n; ++i) py[i] = f(s, pb[i]);
  } else {
    const Y v = f(*pa, *pb);
    for (int64_t i = 0; i < n; ++i) py[i] = v;
  }
}

Op op_from_spec(const NodeSpec& spec) {
  const std::string& t = spec.op_type;
  if (t == "Add" || t == "Sum") return Op::Add;
  if (t == "Sub") return Op::Sub;
  if (t == "Mul") return Op::Mul;
  if (t == "Div") return Op::Div;
  if (t == "Pow") return Op::Pow;
  if (t == "Mod") return spec.attrs.get_int("fmod", 0) ? Op::FMod : Op::Mod;
  if (t == "PRelu") return Op::PRelu;
  if (t == "Max") return Op::Max;
  if (t == "Min") return Op::Min;
  if (t == "Mean") return Op::Add;
  if (t == "Equal") return Op::Equal;
  if (t == "Less") return Op::Less;
  if (t == "Greater") return Op::Greater;
  if (t == "LessOrEqual") return Op::LessEq;
  if (t == "GreaterOrEqual") return Op::GreaterEq;
  if (t == "And") return Op::And;
  if (t == "Or") return Op::Or;
  if (t == "Xor") return Op::Xor;
  throw KernelError("unknown elementwise operator " + t);
}

// Two-input broadcasting operators.
class BinaryKernel : public Kernel {
 public:
  explicit BinaryKernel(const NodeSpec& spec)
      : op_(op_from_spec(spec)), a_type_(spec.input(0).dtype), b_type_(spec.input(1).dtype),
        table_(kernels()), loop_({spec.input(0).shape, spec.input(1).shape}, spec.outputs[0].shape) {
    if (op_ != Op::Pow) require(a_type_ == b_type_, "inputs must have the same element type");
    if (is_compare(op_) || is_logic(op_)) require_dtype(spec.outputs[0], DType::Bool, "output");
    if (is_logic(op_)) require_dtype(spec.input(0), DType::Bool, "input");
    if (op_ == Op::Pow) {
      EW_DISPATCH_POW(a_type_, A, (void)sizeof(A));
      EW_DISPATCH_POW(b_type_, B, (void)sizeof(B));
    }
    if (!is_logic(op_) && op_ != Op::Pow && !is_compare(op_)) {
      require(a_type_ != DType::Bool, spec.op_type + " does not take bool inputs");
    }
  }

  void run(const KernelIO& io) override {
    if (op_ == Op::Pow) {
      EW_DISPATCH_POW(a_type_, A, EW_DISPATCH_POW(b_type_, B, run_pow<A, B>(io)));
    } else if (is_logic(op_)) {
      run_logic(io);
    } else if (is_compare(op_)) {
      EW_DISPATCH_ALL(a_type_, T, run_compare<T>(io));
    } else if (a_type_ == DType::Float32 && op_ <= Op::Div) {
      run_f32(io);
    } else {
      EW_DISPATCH_ALL(a_type_, T, run_arith<T>(io));
    }
  }

 private:
  void run_f32(const KernelIO& io) {
    const float* a = in_ptr<float>(io, 0);
    const float* b = in_ptr<float>(io, 1);
    float* y = out_ptr<float>(io, 0);
    const Op op = op_;
    BinaryFn vv = op == Op::Add ? table_.add : op == Op::Sub ? table_.sub : op == Op::Mul ? table_.mul : table_.div;
    BinaryScalarFn vs = op == Op::Add ? table_.add_scalar : op == Op::Sub ? table_.sub_scalar
                      : op == Op::Mul ? table_.mul_scalar : table_.div_scalar;
    BinaryScalarFn sv = op == Op::Add ? table_.add_scalar : op == Op::Sub ? table_.rsub_scalar
                      : op == Op::Mul ? table_.mul_scalar : table_.rdiv_scalar;
    const int64_t sa = loop_.inner_stride(0), sb = loop_.inner_stride(1);
    loop_.for_pieces(io.pool, [&](int64_t r, int64_t c0, int64_t n) {
      const float* pa = a + loop_.offset(0, r) + c0 * sa;
      const float* pb = b + loop_.offset(1, r) + c0 * sb;
      float* py = y + r * loop_.row_len() + c0;
      if (sa && sb) vv(pa, pb, py, n);
      else if (sa) vs(pa, *pb, py, n);
      else if (sb) sv(pb, *pa, py, n);
      else vs(pa, *pb, py, 1), std::fill(py + 1, py + n, py[0]);
    });
  }

  template <class T>
  void run_arith(const KernelIO& io) {
    const T* a = in_ptr<T>(io, 0);
    const T* b = in_ptr<T>(io, 1);
    T* y = out_ptr<T>(io, 0);
    with_arith<T>(op_, [&](auto f) {
      loop_.for_pieces(io.pool, [&](int64_t r, int64_t c0, int64_t n) { piece2(loop_, a, b, y, r, c0, n, f); });
    });
  }

  template <class T>
  void run_compare(const KernelIO& io) {
    const T* a = in_ptr<T>(io, 0);
    const T* b = in_ptr<T>(io, 1);
    bool* y = out_ptr<bool>(io, 0);
    with_compare<T>(op_, [&](auto f) {
      loop_.for_pieces(io.pool, [&](int64_t r, int64_t c0, int64_t n) { piece2(loop_, a, b, y, r, c0, n, f); });
    });
  }

  void run_logic(const KernelIO& io) {
    const bool* a = in_ptr<bool>(io, 0);
    const bool* b = in_ptr<bool>(io, 1);
    bool* y = out_ptr<bool>(io, 0);
    auto go = [&](auto f) {
      loop_.for_pieces(io.pool, [&](int64_t r, int64_t c0, int64_t n) { piece2(loop_, a, b, y, r, c0, n, f); });
    };
    if (op_ == Op::And) go([](bool p, bool q) { return p && q; });
    else if (op_ == Op::Or) go([](bool p, bool q) { return p || q; });
    else go([](bool p, bool q) { return p != q; });
  }

  template <class A, class B>
  void run_pow(const KernelIO& io) {
    const A* a = in_ptr<A>(io, 0);
    const B* b = in_ptr<B>(io, 1);
    A* y = out_ptr<A>(io, 0);
    loop_.for_pieces(io.pool, [&](int64_t r, int64_t c0, int64_t n) {
      piece2(loop_, a, b, y, r, c0, n, [](A x, B e) {
        if constexpr (std::is_same_v<A, float>) {
          if (e == B(2)) return x * x;
          return static_cast<float>(std::pow(static_cast<double>(x), static_cast<double>(e)));
        } else if constexpr (std::is_integral_v<A> && std::is_integral_v<B>) {
          // Exact integer power by squaring (wraps like onnxruntime's); negative
          // exponents give 0 except for bases 1 and -1.
          if (e < 0) return x == 1 ? A(1) : x == -1 ? ((-e) % 2 ? A(-1) : A(1)) : A(0);
          using U = std::make_unsigned_t<A>;
          U res = 1, base = static_cast<U>(x);
          for (auto k = static_cast<uint64_t>(e); k; k >>= 1) {
            if (k & 1) res = static_cast<U>(res * base);
            base = static_cast<U>(base * base);
          }
          return static_cast<A>(res);
        } else {
          return static_cast<A>(std::pow(static_cast<double>(x), static_cast<double>(e)));
        }
      });
    });
  }

  Op op_;
  DType a_type_, b_type_;
  const KernelTable& table_;
  BroadcastLoop loop_;
};

// Sum, Mean, Max, Min over any number of broadcast inputs: the output is first
// filled with input 0 broadcast, then combined in place with each next input.
class VariadicKernel : public Kernel {
 public:
  explicit VariadicKernel(const NodeSpec& spec)
      : op_(op_from_spec(spec)), mean_(spec.op_type == "Mean"), dtype_(spec.outputs[0].dtype) {
    require(!spec.inputs.empty(), "at least one input is required");
    const Shape& out = spec.outputs[0].shape;
    for (size_t i = 0; i < spec.inputs.size(); ++i) {
      require(spec.inputs[i].dtype == dtype_, "all inputs must have the output's element type");
      loops_.emplace_back(std::vector<Shape>{i == 0 ? spec.inputs[0].shape : out, spec.inputs[i].shape}, out);
    }
    require(dtype_ != DType::Bool, spec.op_type + " does not take bool inputs");
    if (mean_) require(dtype_ == DType::Float32 || dtype_ == DType::Float64, "Mean takes float tensors");
  }

  void run(const KernelIO& io) override { PYENGINE_DISPATCH_NUMERIC(dtype_, T, run_t<T>(io)); }

 private:
  template <class T>
  void run_t(const KernelIO& io) {
    T* y = out_ptr<T>(io, 0);
    const T* x0 = in_ptr<T>(io, 0);
    const BroadcastLoop& first = loops_[0];
    first.for_pieces(io.pool, [&](int64_t r, int64_t c0, int64_t n) {
      piece2(first, x0, x0, y, r, c0, n, [](T a, T) { return a; });
    });
    for (size_t k = 1; k < loops_.size(); ++k) {
      const T* xk = in_ptr<T>(io, k);
      const BroadcastLoop& L = loops_[k];
      with_arith<T>(op_, [&](auto f) {
        L.for_pieces(io.pool, [&](int64_t r, int64_t c0, int64_t n) { piece2(L, y, xk, y, r, c0, n, f); });
      });
    }
    if constexpr (std::is_floating_point_v<T>) {
      if (mean_) {
        const T inv = T(1) / static_cast<T>(loops_.size());
        const BroadcastLoop& L = loops_[0];
        L.for_pieces(io.pool, [&](int64_t r, int64_t c0, int64_t n) {
          T* py = y + r * L.row_len() + c0;
          for (int64_t i = 0; i < n; ++i) py[i] *= inv;
        });
      }
    }
  }

  Op op_;
  bool mean_;
  DType dtype_;
  std::vector<BroadcastLoop> loops_;
};

// Where(cond, x, y): moved as raw elements of x's size.
class WhereKernel : public Kernel {
 public:
  explicit WhereKernel(const NodeSpec& spec)
      : size_(dtype_size(spec.outputs[0].dtype)),
        loop_({spec.input(0).shape, spec.input(1).shape, spec.input(2).shape}, spec.outputs[0].shape) {
    require_dtype(spec.input(0), DType::Bool, "condition");
    require(spec.input(1).dtype == spec.input(2).dtype, "X and Y must have the same element type");
  }

  void run(const KernelIO& io) override {
    switch (size_) {
      case 1: return run_t<uint8_t>(io);
      case 2: return run_t<uint16_t>(io);
      case 4: return run_t<uint32_t>(io);
      case 8: return run_t<uint64_t>(io);
      default: throw KernelError("Where: unsupported element size");
    }
  }

 private:
  template <class T>
  void run_t(const KernelIO& io) {
    const bool* c = in_ptr<bool>(io, 0);
    const T* x = in_ptr<T>(io, 1);
    const T* y = in_ptr<T>(io, 2);
    T* out = out_ptr<T>(io, 0);
    const int64_t sc = loop_.inner_stride(0), sx = loop_.inner_stride(1), sy = loop_.inner_stride(2);
    loop_.for_pieces(io.pool, [&](int64_t r, int64_t c0, int64_t n) {
      const bool* pc = c + loop_.offset(0, r) + c0 * sc;
      const T* px = x + loop_.offset(1, r) + c0 * sx;
      const T* py = y + loop_.offset(2, r) + c0 * sy;
      T* po = out + r * loop_.row_len() + c0;
      for (int64_t i = 0; i < n; ++i) po[i] = pc[i * sc] ? px[i * sx] : py[i * sy];
    });
  }

  size_t size_;
  BroadcastLoop loop_;
};

// ---- float16 <-> float32 (portable; round to nearest even) ----------------

inline float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    float f = static_cast<float>(man) * (1.0f / 16777216.0f);  // subnormal: man * 2^-24
    return sign ? -f : f;
  }
  if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) return sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0);  // inf, NaN
  if (ax >= 0x477ff000u) return sign | 0x7c00;                                      // >= 65520 rounds to inf
  if (ax < 0x38800000u) {  // below 2^-14: subnormal half, man = round(|f| * 2^24)
    float af;
    std::memcpy(&af, &ax, 4);
    return sign | static_cast<uint16_t>(std::nearbyint(af * 16777216.0f));
  }
  uint32_t r = ax - 0x38000000u;  // rebias exponent 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);
  return sign | static_cast<uint16_t>(r >> 13);
}

struct Half {
  uint16_t bits;
};

template <class O, class I>
inline O convert(I v) {
  if constexpr (std::is_same_v<I, Half>) {
    return convert<O>(half_to_float(v.bits));
  } else if constexpr (std::is_same_v<O, Half>) {
    return Half{float_to_half(static_cast<float>(v))};
  } else if constexpr (std::is_same_v<O, bool>) {
    return v != I(0);
  } else if constexpr (std::is_integral_v<O> && std::is_floating_point_v<I>) {
    // NaN and out-of-range values are undefined in C++; give 0 / the limits.
    if (std::isnan(v)) return O(0);
    if (v <= static_cast<I>(std::numeric_limits<O>::lowest())) return std::numeric_limits<O>::lowest();
    if (v >= static_cast<I>(std::numeric_limits<O>::max())) return std::numeric_limits<O>::max();
    return static_cast<O>(v);
  } else {
    return static_cast<O>(v);
  }
}

#define EW_DISPATCH_CAST(t, T, ...)                                  \
  if ((t) == DType::Float16) {                                       \
    using T = Half;                                                  \
    __VA_ARGS__;                                                     \
  } else {                                                           \
    EW_DISPATCH_ALL(t, T, __VA_ARGS__)                               \
  }

class CastKernel : public Kernel {
 public:
  explicit CastKernel(const NodeSpec& spec) : from_(spec.input(0).dtype), to_(spec.outputs[0].dtype), n_(spec.outputs[0].numel()) {
    EW_DISPATCH_CAST(from_, I, (void)sizeof(I));
    EW_DISPATCH_CAST(to_, O, (void)sizeof(O));
  }
  void run(const KernelIO& io) override {
    if (from_ == to_) {
      if (n_ && io.out[0] != io.in[0]) std::memcpy(io.out[0], io.in[0], static_cast<size_t>(n_) * dtype_size(to_));
      return;
    }
    EW_DISPATCH_CAST(from_, I, EW_DISPATCH_CAST(to_, O, run_t<I, O>(io)));
  }

 private:
  template <class I, class O>
  void run_t(const KernelIO& io) {
    const I* x = in_ptr<I>(io, 0);
    O* y = out_ptr<O>(io, 0);
    io.pool->parallel_for(n_, 32768, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = convert<O>(x[i]);
    });
  }
  DType from_, to_;
  int64_t n_;
};

// Elementwise predicates and Not: any input type -> bool.
class PredicateKernel : public Kernel {
 public:
  explicit PredicateKernel(const NodeSpec& spec)
      : kind_(spec.op_type), dtype_(spec.input(0).dtype), n_(spec.outputs[0].numel()),
        pos_(spec.attrs.get_int("detect_positive", 1) != 0), neg_(spec.attrs.get_int("detect_negative", 1) != 0) {
    require_dtype(spec.outputs[0], DType::Bool, "output");
    if (kind_ == "Not") require_dtype(spec.input(0), DType::Bool, "input");
    else require(dtype_ == DType::Float32 || dtype_ == DType::Float64, kind_ + " takes float or double tensors");
  }
  void run(const KernelIO& io) override {
    bool* y = out_ptr<bool>(io, 0);
    if (kind_ == "Not") {
      const bool* x = in_ptr<bool>(io, 0);
      return go(io, [&](int64_t i) { y[i] = !x[i]; });
    }
    if (dtype_ == DType::Float32) run_t<float>(io, y);
    else run_t<double>(io, y);
  }

 private:
  template <class F>
  void go(const KernelIO& io, F f) {
    io.pool->parallel_for(n_, 32768, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) f(i);
    });
  }
  template <class T>
  void run_t(const KernelIO& io, bool* y) {
    const T* x = in_ptr<T>(io, 0);
    if (kind_ == "IsNaN") return go(io, [&](int64_t i) { y[i] = std::isnan(x[i]); });
    const bool pos = pos_, neg = neg_;
    go(io, [&](int64_t i) { y[i] = std::isinf(x[i]) && ((x[i] > 0 && pos) || (x[i] < 0 && neg)); });
  }
  std::string kind_;
  DType dtype_;
  int64_t n_;
  bool pos_, neg_;
};

}  // namespace

void register_elementwise_ops() {
  for (const char* name : {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "PRelu", "Equal", "Less", "Greater",
                           "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"})
    register_kernel(name, make_kernel<BinaryKernel>);
  for (const char* name : {"Sum", "Mean", "Max", "Min"}) register_kernel(name, make_kernel<VariadicKernel>);
  register_kernel("Where", make_kernel<WhereKernel>);
  register_kernel("Cast", make_kernel<CastKernel>);
  for (const char* name : {"Not", "IsNaN", "IsInf"}) register_kernel(name, make_kernel<PredicateKernel>);
}

}  // namespace pyengine
