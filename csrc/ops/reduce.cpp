// Reductions (ReduceSum/Mean/Max/Min/Prod/SumSquare/L1/L2/LogSumExp) and
// ArgMax/ArgMin. Python passes the reduced axes already normalized (sorted,
// non-negative; empty = reduce nothing); keepdims only changes the output's
// shape, never its memory layout, so the kernel ignores it.
//
// The input is seen as groups of adjacent dims that are all kept or all
// reduced. If the innermost group is reduced ("row" mode) each output is a
// reduction of contiguous rows, done with the dispatched vector reductions
// for float32; if it is kept ("column" mode) whole rows of outputs are
// accumulated at once, which vectorizes along the contiguous axis.
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/common.h"

namespace pyengine {

namespace {

enum class R { Sum, Mean, Max, Min, Prod, SumSquare, L1, L2, LogSum, LogSumExp };

R kind_of(const std::string& t) {
  if (t == "ReduceSum") return R::Sum;
  if (t == "ReduceMean") return R::Mean;
  if (t == "ReduceMax") return R::Max;
  if (t == "ReduceMin") return R::Min;
  if (t == "ReduceProd") return R::Prod;
  if (t == "ReduceSumSquare") return R::SumSquare;
  if (t == "ReduceL1") return R::L1;
  if (t == "ReduceL2") return R::L2;
  if (t == "ReduceLogSumExp") return R::LogSumExp;
  if (t == "ReduceLogSum") return R::LogSum;
  throw KernelError("unknown reduction " + t);
}

template <class T, R K>
struct Rd {
  static T init() {
    if constexpr (K == R::Max) {
      return std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::lowest();
    } else if constexpr (K == R::Min) {
      return std::numeric_limits<T>::has_infinity ? std::numeric_limits<T>::infinity() : std::numeric_limits<T>::max();
    } else if constexpr (K == R::Prod) {
      return T(1);
    } else {
      return T(0);
    }
  }
  static T map(T v) {
    if constexpr (K == R::SumSquare || K == R::L2) return static_cast<T>(v * v);
    else if constexpr (K == R::L1) return v < T(0) ? static_cast<T>(-v) : v;
    else return v;
  }
  static T comb(T a, T b) {
    if constexpr (K == R::Max) {
      if constexpr (std::is_floating_point_v<T>) { if (std::isnan(b)) return b; }
      return b > a ? b : a;
    } else if constexpr (K == R::Min) {
      if constexpr (std::is_floating_point_v<T>) { if (std::isnan(b)) return b; }
      return b < a ? b : a;
    } else if constexpr (K == R::Prod) {
      return static_cast<T>(a * b);
    } else {
      return static_cast<T>(a + b);
    }
  }
  static T fin(T a, int64_t count) {
    if constexpr (K == R::Mean) {
      // The mean of nothing is 0, as onnxruntime gives.
      if (count == 0) return T(0);
      return static_cast<T>(a / static_cast<T>(count));
    } else if constexpr (K == R::L2) {
      return static_cast<T>(std::sqrt(static_cast<double>(a)));
    } else if constexpr (K == R::LogSum) {
      return static_cast<T>(std::log(static_cast<double>(a)));
    } else {
      return a;
    }
  }
};

// Enumerates the element offsets of every index combination of `dims` with
// the given strides (the first dim varies slowest).
std::vector<int64_t> offsets_of(const Shape& dims, const std::vector<int64_t>& strides) {
  std::vector<int64_t> offs{0};
  for (size_t d = 0; d < dims.size(); ++d) {
    std::vector<int64_t> next;
    next.reserve(offs.size() * static_cast<size_t>(dims[d]));
    for (int64_t base : offs)
      for (int64_t k = 0; k < dims[d]; ++k) next.push_back(base + k * strides[d]);
    offs.swap(next);
  }
  return offs;
}

class ReduceKernel : public Kernel {
 public:
  explicit ReduceKernel(const NodeSpec& spec)
      : kind_(kind_of(spec.op_type)), dtype_(spec.input(0).dtype), table_(kernels()) {
    require(spec.outputs[0].dtype == dtype_, "output must have the input's element type");
    PYENGINE_DISPATCH_NUMERIC(dtype_, T, (void)sizeof(T));
    const Shape& s = spec.input(0).shape;
    std::vector<bool> red(s.size(), false);
    for (int64_t a : spec.attrs.get_ints("axes", {})) {
      require(a >= 0 && a < static_cast<int64_t>(s.size()), "axis out of range");
      red[a] = true;
    }
    // Merge adjacent dims of the same kind; size-1 dims change nothing.
    Shape gdims;
    std::vector<bool> gred;
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] == 1) continue;
      if (!gdims.empty() && gred.back() == red[d]) gdims.back() *= s[d];
      else gdims.push_back(s[d]), gred.push_back(red[d]);
    }
    std::vector<int64_t> gstride = contiguous_strides(gdims);
    count_ = 1;
    for (size_t g = 0; g < gdims.size(); ++g)
      if (gred[g]) count_ *= gdims[g];
    n_out_ = spec.outputs[0].numel();
    row_mode_ = gdims.empty() || gred.back();
    Shape kd, rd;
    std::vector<int64_t> ks, rs;
    size_t last = gdims.size();
    if (row_mode_) {
      len_ = gdims.empty() ? 1 : gdims.back();
      if (!gdims.empty()) --last;
    } else {
      len_ = gdims.back();  // the kept inner run: outputs come in rows of len_
      --last;
    }
    for (size_t g = 0; g < last; ++g) {
      (gred[g] ? rd : kd).push_back(gdims[g]);
      (gred[g] ? rs : ks).push_back(gstride[g]);
    }
    if (n_out_ > 0 && count_ > 0) {
      koff_ = offsets_of(kd, ks);
      roff_ = offsets_of(rd, rs);
    }
  }

  void run(const KernelIO& io) override { PYENGINE_DISPATCH_NUMERIC(dtype_, T, run_t<T>(io)); }

 private:
  template <class T>
  void run_t(const KernelIO& io) {
    switch (kind_) {
      case R::Sum: return run_k<T, R::Sum>(io);
      case R::Mean: return run_k<T, R::Mean>(io);
      case R::Max: return run_k<T, R::Max>(io);
      case R::Min: return run_k<T, R::Min>(io);
      case R::Prod: return run_k<T, R::Prod>(io);
      case R::SumSquare: return run_k<T, R::SumSquare>(io);
      case R::L1: return run_k<T, R::L1>(io);
      case R::L2: return run_k<T, R::L2>(io);
      case R::LogSum: return run_k<T, R::LogSum>(io);
      case R::LogSumExp: return run_lse<T>(io);
    }
  }

  template <class T, R K>
  void run_k(const KernelIO& io) {
    using Op = Rd<T, K>;
    const T* x = in_ptr<T>(io, 0);
    T* y = out_ptr<T>(io, 0);
    if (n_out_ == 0) return;
    if (count_ == 0) {
      std::fill(y, y + n_out_, Op::fin(Op::init(), 0));
      return;
    }
    const int64_t R_ = static_cast<int64_t>(roff_.size()), L = len_;
    if (row_mode_) {
      int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, count_));
      io.pool->parallel_for(n_out_, grain, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          const T* base = x + koff_[o];
          T acc = Op::init();
          for (int64_t r = 0; r < R_; ++r) acc = Op::comb(acc, row<T, K>(base + roff_[r], L));
          y[o] = Op::fin(acc, count_);
        }
      });
    } else {
      const int64_t blocks = static_cast<int64_t>(koff_.size());
      int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, count_ * L));
      io.pool->parallel_for(blocks, grain, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          T* yo = y + o * L;
          const T* base = x + koff_[o];
          for (int64_t i = 0; i < L; ++i) yo[i] = Op::map(base[roff_[0] + i]);
          for (int64_t r = 1; r < R_; ++r) {
            const T* xr = base + roff_[r];
            for (int64_t i = 0; i < L; ++i) yo[i] = Op::comb(yo[i], Op::map(xr[i]));
          }
          for (int64_t i = 0; i < L; ++i) yo[i] = Op::fin(yo[i], count_);
        }
      });
    }
  }

  // Reduction (without finalize) of one contiguous row.
  template <class T, R K>
  T row(const T* p, int64_t n) const {
    using Op = Rd<T, K>;
    if constexpr (std::is_same_v<T, float>) {
      if constexpr (K == R::Sum || K == R::Mean || K == R::LogSum) return table_.reduce_sum(p, n);
      if constexpr (K == R::SumSquare || K == R::L2) return table_.reduce_sumsq(p, n);
      if constexpr (K == R::Max) return table_.reduce_max(p, n);
      if constexpr (K == R::Min) return table_.reduce_min(p, n);
    }
    T acc = Op::init();
    for (int64_t i = 0; i < n; ++i) acc = Op::comb(acc, Op::map(p[i]));
    return acc;
  }

  // log(sum(exp(x))) = m + log(sum(exp(x - m))) with m the maximum, computed
  // in double per output.
  template <class T>
  void run_lse(const KernelIO& io) {
    const T* x = in_ptr<T>(io, 0);
    T* y = out_ptr<T>(io, 0);
    if (n_out_ == 0) return;
    if (count_ == 0) {
      std::fill(y, y + n_out_, std::numeric_limits<T>::has_infinity ? -std::numeric_limits<T>::infinity()
                                                                      : std::numeric_limits<T>::lowest());
      return;
    }
    const int64_t R_ = static_cast<int64_t>(roff_.size());
    const int64_t L = len_;
    // Row mode: output o reads base + roff + [0, L); column mode: output
    // (o, i) reads base + roff + i.
    const int64_t inner = row_mode_ ? L : 1;
    const int64_t per_block = row_mode_ ? 1 : L;
    io.pool->parallel_for(n_out_, std::max<int64_t>(1, 8192 / count_), [&](int64_t b, int64_t e) {
      for (int64_t idx = b; idx < e; ++idx) {
        const T* base = x + koff_[idx / per_block] + idx % per_block;
        double m = -INFINITY;
        for (int64_t r = 0; r < R_; ++r)
          for (int64_t i = 0; i < inner; ++i) m = std::max(m, static_cast<double>(base[roff_[r] + i]));
        if (std::isinf(m)) {
          y[idx] = static_cast<T>(m);
          continue;
        }
        double s = 0;
        for (int64_t r = 0; r < R_; ++r)
          for (int64_t i = 0; i < inner; ++i) s += std::exp(static_cast<double>(base[roff_[r] + i]) - m);
        y[idx] = static_cast<T>(m + std::log(s));
      }
    });
  }

  R kind_;
  DType dtype_;
  const KernelTable& table_;
  int64_t count_ = 1, n_out_ = 0, len_ = 1;
  bool row_mode_ = true;
  std::vector<int64_t> koff_, roff_;
};

// ArgMax/ArgMin over `axis` of an [outer, dim, inner] view; int64 output.
class ArgKernel : public Kernel {
 public:
  explicit ArgKernel(const NodeSpec& spec)
      : max_(spec.op_type == "ArgMax"), last_(spec.attrs.get_int("select_last_index", 0) != 0),
        dtype_(spec.input(0).dtype) {
    require_dtype(spec.outputs[0], DType::Int64, "output");
    PYENGINE_DISPATCH_NUMERIC(dtype_, T, (void)sizeof(T));
    const Shape& s = spec.input(0).shape;
    int64_t axis = spec.attrs.get_int("axis", 0);
    require(axis >= 0 && axis < static_cast<int64_t>(std::max<size_t>(s.size(), 1)), "axis out of range");
    for (int64_t d = 0; d < static_cast<int64_t>(s.size()); ++d) {
      if (d < axis) outer_ *= s[d];
      else if (d == axis) dim_ = s[d];
      else inner_ *= s[d];
    }
    require(dim_ > 0 || outer_ * inner_ == 0, "cannot take the arg of an empty axis");
  }

  void run(const KernelIO& io) override { PYENGINE_DISPATCH_NUMERIC(dtype_, T, run_t<T>(io)); }

 private:
  template <class T>
  void run_t(const KernelIO& io) {
    const T* x = in_ptr<T>(io, 0);
    int64_t* y = out_ptr<int64_t>(io, 0);
    const int64_t n = outer_ * inner_;
    io.pool->parallel_for(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, dim_)), [&](int64_t b, int64_t e) {
      for (int64_t idx = b; idx < e; ++idx) {
        const T* p = x + (idx / inner_) * dim_ * inner_ + idx % inner_;
        T best = p[0];
        int64_t k = 0;
        for (int64_t d = 1; d < dim_; ++d) {
          T v = p[d * inner_];
          bool better = max_ ? (last_ ? v >= best : v > best) : (last_ ? v <= best : v < best);
          if (better) best = v, k = d;
        }
        y[idx] = k;
      }
    });
  }

  bool max_, last_;
  DType dtype_;
  int64_t outer_ = 1, dim_ = 1, inner_ = 1;
};

}  // namespace

void register_reduce_ops() {
  for (const char* name : {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare",
                           "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"})
    register_kernel(name, make_kernel<ReduceKernel>);
  register_kernel("ArgMax", make_kernel<ArgKernel>);
  register_kernel("ArgMin", make_kernel<ArgKernel>);
}

}  // namespace pyengine
