// Data-movement operators. They only move bytes, so the kernels are generic
// over the element size (1, 2, 4 or 8 bytes), not the element type; only
// CumSum and ScatterND's reductions do arithmetic. Every value that decides a
// shape was resolved in Python (pyengine/ops/tensor.py), so the kernels get
// canonical attributes: StridedCopy for instance receives the output
// iteration dims, the input strides and a start offset, which covers
// Transpose, Slice, Expand, Tile, DepthToSpace and SpaceToDepth.
#include <cstring>

#include "ops/common.h"

namespace pyengine {

void register_resize_ops();  // csrc/ops/resize.cpp

namespace {

constexpr size_t kMaxDims = 32;
constexpr int64_t kChunkBytes = 32 * 1024;  // work per parallel_for chunk

// Calls f(T{}) with an unsigned integer type of `size` bytes.
template <class F>
void with_elem_type(size_t size, F&& f) {
  switch (size) {
    case 1: f(uint8_t{}); break;
    case 2: f(uint16_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
    default: throw KernelError("unsupported element size " + std::to_string(size));
  }
}

int64_t grain_for(int64_t bytes_per_item) { return std::max<int64_t>(1, kChunkBytes / std::max<int64_t>(1, bytes_per_item)); }

int64_t prod(const Shape& s, size_t b, size_t e) {
  int64_t n = 1;
  for (size_t i = b; i < e && i < s.size(); ++i) n *= s[i];
  return n;
}

// ---- StridedCopy: out[i0..ik] = in[offset + sum i_d * strides_d] -----------
class StridedCopyKernel : public Kernel {
 public:
  explicit StridedCopyKernel(const NodeSpec& spec) : esize_(dtype_size(spec.input(0).dtype)) {
    Shape dims = spec.attrs.get_ints("dims");
    std::vector<int64_t> strides = spec.attrs.get_ints("strides");
    offset_ = spec.attrs.get_int("offset", 0);
    require(dims.size() == strides.size(), "dims and strides differ in length");
    require(dtype_size(spec.outputs[0].dtype) == esize_, "input and output element types differ");
    total_ = shape_numel(dims);
    require(total_ == spec.outputs[0].numel(), "iteration dims " + shape_str(dims) + " do not match output " +
                                                   shape_str(spec.outputs[0].shape));
    if (total_ == 0) return;
    // The input range read must lie inside the input.
    int64_t lo = offset_, hi = offset_;
    for (size_t d = 0; d < dims.size(); ++d) (strides[d] < 0 ? lo : hi) += (dims[d] - 1) * strides[d];
    require(lo >= 0 && hi < spec.input(0).numel(), "strided access outside the input");
    // Drop size-1 dims and merge dims the input walks contiguously.
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] == 1) continue;
      if (!dims_.empty() && strides_.back() == strides[d] * dims[d]) {
        dims_.back() *= dims[d];
        strides_.back() = strides[d];
      } else {
        dims_.push_back(dims[d]);
        strides_.push_back(strides[d]);
      }
    }
    if (dims_.empty()) {
      dims_.push_back(1);
      strides_.push_back(0);
    }
    require(dims_.size() <= kMaxDims, "too many dimensions");
    size_t n = dims_.size();
    inner_ = dims_[n - 1];
    inner_stride_ = strides_[n - 1];
    // A transpose-like copy: the last output dim is strided in the input while
    // another dim is contiguous there. Copy in square tiles then.
    if (n >= 2 && inner_stride_ != 1 && inner_stride_ != 0 && inner_ >= 4) {
      for (size_t j = 0; j + 1 < n; ++j)
        if (strides_[j] == 1 && dims_[j] >= 4) tdim_ = static_cast<int>(j);
    }
    if (tdim_ >= 0) {
      std::vector<int64_t> ostr = contiguous_strides(dims_);
      tout_stride_ = ostr[tdim_];
      for (size_t d = 0; d + 1 < n; ++d) {
        if (static_cast<int>(d) == tdim_) continue;
        bdims_.push_back(dims_[d]);
        bin_.push_back(strides_[d]);
        bout_.push_back(ostr[d]);
      }
    }
  }

  void run(const KernelIO& io) override {
    if (total_ == 0) return;
    with_elem_type(esize_, [&](auto tag) {
      using T = decltype(tag);
      const T* in = static_cast<const T*>(io.in[0]) + offset_;
      T* out = static_cast<T*>(io.out[0]);
      if (tdim_ >= 0) tiled(in, out, io.pool);
      else rows(in, out, io.pool);
    });
  }

 private:
  template <class T>
  void rows(const T* in, T* out, ThreadPool* pool) const {
    const int64_t nouter = static_cast<int64_t>(dims_.size()) - 1;
    const int64_t nrows = total_ / inner_;
    pool->parallel_for(nrows, grain_for(inner_ * sizeof(T)), [&](int64_t b, int64_t e) {
      int64_t idx[kMaxDims];
      int64_t off = 0, r = b;
      for (int64_t d = nouter - 1; d >= 0; --d) {
        idx[d] = r % dims_[d];
        r /= dims_[d];
        off += idx[d] * strides_[d];
      }
      for (int64_t row = b; row < e; ++row) {
        T* o = out + row * inner_;
        const T* s = in + off;
        if (inner_stride_ == 1) std::memcpy(o, s, inner_ * sizeof(T));
        else if (inner_stride_ == 0) std::fill(o, o + inner_, *s);
        else for (int64_t i = 0; i < inner_; ++i) o[i] = s[i * inner_stride_];
        for (int64_t d = nouter - 1; d >= 0; --d) {  // odometer step
          off += strides_[d];
          if (++idx[d] < dims_[d]) break;
          off -= strides_[d] * dims_[d];
          idx[d] = 0;
        }
      }
    });
  }

  template <class T>
  void tiled(const T* in, T* out, ThreadPool* pool) const {
    constexpr int64_t B = 32;
    const int64_t J = dims_[tdim_], L = inner_, s = inner_stride_;
    const int64_t jblocks = (J + B - 1) / B;
    const int64_t items = shape_numel(bdims_) * jblocks;
    const int64_t nb = static_cast<int64_t>(bdims_.size());
    pool->parallel_for(items, grain_for(B * L * sizeof(T)), [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        int64_t batch = item / jblocks, jb = item % jblocks;
        int64_t ioff = 0, ooff = 0;
        for (int64_t d = nb - 1; d >= 0; --d) {
          int64_t i = batch % bdims_[d];
          batch /= bdims_[d];
          ioff += i * bin_[d];
          ooff += i * bout_[d];
        }
        int64_t j0 = jb * B, j1 = std::min(J, j0 + B);
        for (int64_t l0 = 0; l0 < L; l0 += B) {
          int64_t l1 = std::min(L, l0 + B);
          for (int64_t j = j0; j < j1; ++j) {
            const T* src = in + ioff + j;
            T* dst = out + ooff + j * tout_stride_;
            for (int64_t l = l0; l < l1; ++l) dst[l] = src[l * s];
          }
        }
      }
    });
  }

  size_t esize_;
  int64_t offset_ = 0, total_ = 0, inner_ = 1, inner_stride_ = 1;
  Shape dims_;
  std::vector<int64_t> strides_;
  int tdim_ = -1;
  int64_t tout_stride_ = 0;
  Shape bdims_;
  std::vector<int64_t> bin_, bout_;
};

// ---- Concat / Split: rows of bytes copied between inputs and outputs ------
struct Pieces {
  int64_t outer = 1;
  int64_t row_bytes = 0;               // bytes of the big tensor per outer index
  std::vector<int64_t> bytes, starts;  // per piece: bytes per outer index, byte offset in the row

  Pieces(const Shape& big, const std::vector<const TensorDesc*>& parts, int64_t axis, size_t esize) {
    outer = prod(big, 0, axis);
    row_bytes = prod(big, axis, big.size()) * static_cast<int64_t>(esize);
    int64_t at = 0;
    for (const TensorDesc* p : parts) {
      int64_t nb = p ? prod(p->shape, axis, p->shape.size()) * static_cast<int64_t>(esize) : 0;
      bytes.push_back(nb);
      starts.push_back(at);
      at += nb;
    }
    require(at == row_bytes, "piece sizes do not add up to the concatenated size");
  }
};

class ConcatKernel : public Kernel {
 public:
  explicit ConcatKernel(const NodeSpec& spec) : p_(spec.outputs[0].shape, parts(spec), spec.attrs.get_int("axis", 0),
                                                     dtype_size(spec.outputs[0].dtype)) {}
  void run(const KernelIO& io) override {
    const int64_t k = static_cast<int64_t>(p_.bytes.size());
    char* out = static_cast<char*>(io.out[0]);
    io.pool->parallel_for(p_.outer * k, grain_for(p_.row_bytes / std::max<int64_t>(k, 1)), [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        int64_t o = it / k, i = it % k;
        if (p_.bytes[i])
          std::memcpy(out + o * p_.row_bytes + p_.starts[i], static_cast<const char*>(io.in[i]) + o * p_.bytes[i],
                      p_.bytes[i]);
      }
    });
  }

 private:
  static std::vector<const TensorDesc*> parts(const NodeSpec& spec) {
    std::vector<const TensorDesc*> v;
    for (size_t i = 0; i < spec.inputs.size(); ++i) v.push_back(spec.has_input(i) ? &spec.inputs[i] : nullptr);
    return v;
  }
  Pieces p_;
};

class SplitKernel : public Kernel {
 public:
  explicit SplitKernel(const NodeSpec& spec) : p_(spec.input(0).shape, parts(spec), spec.attrs.get_int("axis", 0),
                                                    dtype_size(spec.input(0).dtype)) {}
  void run(const KernelIO& io) override {
    const int64_t k = static_cast<int64_t>(p_.bytes.size());
    const char* in = static_cast<const char*>(io.in[0]);
    io.pool->parallel_for(p_.outer * k, grain_for(p_.row_bytes / std::max<int64_t>(k, 1)), [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        int64_t o = it / k, i = it % k;
        if (p_.bytes[i])
          std::memcpy(static_cast<char*>(io.out[i]) + o * p_.bytes[i], in + o * p_.row_bytes + p_.starts[i], p_.bytes[i]);
      }
    });
  }

 private:
  static std::vector<const TensorDesc*> parts(const NodeSpec& spec) {
    std::vector<const TensorDesc*> v;
    for (const TensorDesc& d : spec.outputs) v.push_back(&d);
    return v;
  }
  Pieces p_;
};

// Reads index i of an int32 or int64 index tensor.
inline int64_t index_at(const void* p, bool i64, int64_t i) {
  return i64 ? static_cast<const int64_t*>(p)[i] : static_cast<const int32_t*>(p)[i];
}

void bad_index(int64_t v, int64_t n, const char* what) {
  throw KernelError(std::string(what) + " " + std::to_string(v) + " is out of range [" + std::to_string(-n) + ", " +
                    std::to_string(n - 1) + "]");
}

// ---- Gather: out[o, i, :] = data[o, idx[i], :] --------------------------------
class GatherKernel : public Kernel {
 public:
  explicit GatherKernel(const NodeSpec& spec) : esize_(dtype_size(spec.input(0).dtype)) {
    const Shape& data = spec.input(0).shape;
    int64_t axis = spec.attrs.get_int("axis", 0);
    require(axis >= 0 && axis < static_cast<int64_t>(data.size()), "axis out of range");
    outer_ = prod(data, 0, axis);
    n_ = data[axis];
    inner_bytes_ = prod(data, axis + 1, data.size()) * static_cast<int64_t>(esize_);
    nidx_ = spec.input(1).numel();
    i64_ = spec.input(1).dtype == DType::Int64;
    require(i64_ || spec.input(1).dtype == DType::Int32, "indices must be int32 or int64");
  }
  size_t scratch_bytes() const override { return static_cast<size_t>(nidx_) * sizeof(int64_t); }

  void run(const KernelIO& io) override {
    int64_t* idx = static_cast<int64_t*>(io.scratch);
    for (int64_t i = 0; i < nidx_; ++i) {  // validate before any thread starts
      int64_t v = index_at(io.in[1], i64_, i);
      if (v < -n_ || v >= n_) bad_index(v, n_, "index");
      idx[i] = v < 0 ? v + n_ : v;
    }
    const char* data = static_cast<const char*>(io.in[0]);
    char* out = static_cast<char*>(io.out[0]);
    const int64_t nb = inner_bytes_;
    io.pool->parallel_for(outer_ * nidx_, grain_for(nb), [&](int64_t b, int64_t e) {
      for (int64_t it = b; it < e; ++it) {
        int64_t o = it / nidx_, i = it % nidx_;
        std::memcpy(out + it * nb, data + (o * n_ + idx[i]) * nb, nb);
      }
    });
  }

 private:
  size_t esize_;
  int64_t outer_ = 1, n_ = 0, inner_bytes_ = 0, nidx_ = 0;
  bool i64_ = true;
};

// ---- GatherElements: out[i] = data[i with i[axis] replaced by idx[i]] -------
class GatherElementsKernel : public Kernel {
 public:
  explicit GatherElementsKernel(const NodeSpec& spec) : esize_(dtype_size(spec.input(0).dtype)) {
    const Shape& data = spec.input(0).shape;
    dims_ = spec.input(1).shape;
    axis_ = spec.attrs.get_int("axis", 0);
    require(dims_.size() == data.size() && !dims_.empty() && dims_.size() <= kMaxDims, "indices rank must equal data rank");
    require(axis_ >= 0 && axis_ < static_cast<int64_t>(data.size()), "axis out of range");
    strides_ = contiguous_strides(data);
    n_ = data[axis_];
    total_ = shape_numel(dims_);
    i64_ = spec.input(1).dtype == DType::Int64;
  }
  void run(const KernelIO& io) override {
    for (int64_t i = 0; i < total_; ++i) {
      int64_t v = index_at(io.in[1], i64_, i);
      if (v < -n_ || v >= n_) bad_index(v, n_, "index");
    }
    if (total_ == 0) return;
    with_elem_type(esize_, [&](auto tag) {
      using T = decltype(tag);
      const T* data = static_cast<const T*>(io.in[0]);
      T* out = static_cast<T*>(io.out[0]);
      const int64_t r = static_cast<int64_t>(dims_.size());
      io.pool->parallel_for(total_, grain_for(64), [&](int64_t b, int64_t e) {
        int64_t idx[kMaxDims];
        int64_t off = 0, rem = b;
        for (int64_t d = r - 1; d >= 0; --d) {
          idx[d] = rem % dims_[d];
          rem /= dims_[d];
          if (d != axis_) off += idx[d] * strides_[d];
        }
        for (int64_t i = b; i < e; ++i) {
          int64_t v = index_at(io.in[1], i64_, i);
          if (v < 0) v += n_;
          out[i] = data[off + v * strides_[axis_]];
          for (int64_t d = r - 1; d >= 0; --d) {
            int64_t st = d == axis_ ? 0 : strides_[d];
            off += st;
            if (++idx[d] < dims_[d]) break;
            off -= st * dims_[d];
            idx[d] = 0;
          }
        }
      });
    });
  }

 private:
  size_t esize_;
  Shape dims_;
  std::vector<int64_t> strides_;
  int64_t axis_ = 0, n_ = 0, total_ = 0;
  bool i64_ = true;
};

// ---- ScatterND: out = data; out[idx[j]] (op)= updates[j] ----------------------
class ScatterNDKernel : public Kernel {
 public:
  explicit ScatterNDKernel(const NodeSpec& spec) : dtype_(spec.input(0).dtype), esize_(dtype_size(dtype_)) {
    const Shape& data = spec.input(0).shape;
    const Shape& ind = spec.input(1).shape;
    require(!ind.empty(), "indices must have rank >= 1");
    k_ = ind.back();
    require(k_ <= static_cast<int64_t>(data.size()), "indices' last dimension exceeds the data rank");
    nupd_ = prod(ind, 0, ind.size() - 1);
    inner_ = prod(data, k_, data.size());
    dims_.assign(data.begin(), data.begin() + k_);
    std::vector<int64_t> st = contiguous_strides(data);
    strides_.assign(st.begin(), st.begin() + k_);
    nbytes_ = spec.input(0).nbytes();
    std::string red = spec.attrs.get_string("reduction", "none");
    reduction_ = red == "none" ? 0 : red == "add" ? 1 : red == "mul" ? 2 : red == "max" ? 3 : red == "min" ? 4 : -1;
    require(reduction_ >= 0, "unknown reduction '" + red + "'");
    if (reduction_) {
      PYENGINE_DISPATCH_NUMERIC(dtype_, T, (void)sizeof(T));  // throws for element types without arithmetic
    }
  }
  void run(const KernelIO& io) override {
    const int64_t* ind = static_cast<const int64_t*>(io.in[1]);
    for (int64_t j = 0; j < nupd_ * k_; ++j) {
      int64_t n = dims_[j % k_];
      if (ind[j] < -n || ind[j] >= n) bad_index(ind[j], n, "index");
    }
    if (io.out[0] != io.in[0] && nbytes_) std::memcpy(io.out[0], io.in[0], nbytes_);
    if (reduction_ == 0) {
      char* out = static_cast<char*>(io.out[0]);
      const char* upd = static_cast<const char*>(io.in[2]);
      const int64_t nb = inner_ * static_cast<int64_t>(esize_);
      for (int64_t j = 0; j < nupd_; ++j) std::memcpy(out + offset(ind + j * k_) * static_cast<int64_t>(esize_), upd + j * nb, nb);
      return;
    }
    PYENGINE_DISPATCH_NUMERIC(dtype_, T, reduce<T>(ind, static_cast<const T*>(io.in[2]), static_cast<T*>(io.out[0])));
  }

 private:
  int64_t offset(const int64_t* ix) const {
    int64_t off = 0;
    for (int64_t d = 0; d < k_; ++d) off += (ix[d] < 0 ? ix[d] + dims_[d] : ix[d]) * strides_[d];
    return off;
  }
  template <class T>
  void reduce(const int64_t* ind, const T* upd, T* out) const {
    for (int64_t j = 0; j < nupd_; ++j) {  // sequential: duplicate indices accumulate in order
      T* o = out + offset(ind + j * k_);
      const T* u = upd + j * inner_;
      for (int64_t i = 0; i < inner_; ++i) {
        switch (reduction_) {
          case 1: o[i] = static_cast<T>(o[i] + u[i]); break;
          case 2: o[i] = static_cast<T>(o[i] * u[i]); break;
          case 3: o[i] = std::max(o[i], u[i]); break;
          default: o[i] = std::min(o[i], u[i]); break;
        }
      }
    }
  }
  DType dtype_;
  size_t esize_;
  int64_t k_ = 0, nupd_ = 0, inner_ = 1;
  Shape dims_;
  std::vector<int64_t> strides_;
  size_t nbytes_ = 0;
  int reduction_ = 0;
};

// ---- Trilu: keep the upper (j - i >= k) or lower (j - i <= k) triangle ----
class TriluKernel : public Kernel {
 public:
  explicit TriluKernel(const NodeSpec& spec) : esize_(dtype_size(spec.input(0).dtype)) {
    const Shape& s = spec.input(0).shape;
    require(s.size() >= 2, "input must have rank >= 2");
    rows_ = s[s.size() - 2];
    cols_ = s.back();
    batch_ = prod(s, 0, s.size() - 2);
    upper_ = spec.attrs.get_int("upper", 1) != 0;
    k_ = spec.attrs.get_int("k", 0);
  }
  void run(const KernelIO& io) override {
    const char* in = static_cast<const char*>(io.in[0]);
    char* out = static_cast<char*>(io.out[0]);
    const int64_t es = static_cast<int64_t>(esize_), rb = cols_ * es;
    io.pool->parallel_for(batch_ * rows_, grain_for(rb), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        int64_t i = r % rows_;
        // kept columns [lo, hi)
        int64_t lo = upper_ ? std::clamp<int64_t>(i + k_, 0, cols_) : 0;
        int64_t hi = upper_ ? cols_ : std::clamp<int64_t>(i + k_ + 1, 0, cols_);
        char* o = out + r * rb;
        const char* s = in + r * rb;
        std::memset(o, 0, lo * es);
        if (hi > lo) std::memcpy(o + lo * es, s + lo * es, (hi - lo) * es);
        std::memset(o + std::max(hi, lo) * es, 0, (cols_ - std::max(hi, lo)) * es);
      }
    });
  }

 private:
  size_t esize_;
  int64_t rows_ = 0, cols_ = 0, batch_ = 0, k_ = 0;
  bool upper_ = true;
};

// ---- CumSum along one axis ----------------------------------------------
class CumSumKernel : public Kernel {
 public:
  explicit CumSumKernel(const NodeSpec& spec) : dtype_(spec.input(0).dtype) {
    const Shape& s = spec.input(0).shape;
    int64_t axis = spec.attrs.get_int("axis", 0);
    require(axis >= 0 && axis < static_cast<int64_t>(s.size()), "axis out of range");
    outer_ = prod(s, 0, axis);
    n_ = s[axis];
    inner_ = prod(s, axis + 1, s.size());
    exclusive_ = spec.attrs.get_int("exclusive", 0) != 0;
    reverse_ = spec.attrs.get_int("reverse", 0) != 0;
    PYENGINE_DISPATCH_NUMERIC(dtype_, T, (void)sizeof(T));
  }
  void run(const KernelIO& io) override {
    PYENGINE_DISPATCH_NUMERIC(dtype_, T, typed<T>(static_cast<const T*>(io.in[0]), static_cast<T*>(io.out[0]), io.pool));
  }

 private:
  template <class T>
  void typed(const T* in, T* out, ThreadPool* pool) const {
    if (n_ == 0 || inner_ == 0) return;
    pool->parallel_for(outer_, grain_for(n_ * inner_ * static_cast<int64_t>(sizeof(T))), [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* x = in + o * n_ * inner_;
        T* y = out + o * n_ * inner_;
        // The output row before is the running sum: y[k] = y[k-1] + x[k or k-1].
        for (int64_t step = 0; step < n_; ++step) {
          int64_t k = reverse_ ? n_ - 1 - step : step;
          int64_t prev = reverse_ ? k + 1 : k - 1;
          T* yk = y + k * inner_;
          if (step == 0) {
            for (int64_t i = 0; i < inner_; ++i) yk[i] = exclusive_ ? T(0) : x[k * inner_ + i];
          } else {
            const T* yp = y + prev * inner_;
            const T* xs = x + (exclusive_ ? prev : k) * inner_;
            for (int64_t i = 0; i < inner_; ++i) yk[i] = static_cast<T>(yp[i] + xs[i]);
          }
        }
      }
    });
  }
  DType dtype_;
  int64_t outer_ = 1, n_ = 0, inner_ = 1;
  bool exclusive_ = false, reverse_ = false;
};

// ---- ConstantOfShape: fill with one value given as its raw bytes --------------
class FillKernel : public Kernel {
 public:
  explicit FillKernel(const NodeSpec& spec)
      : esize_(dtype_size(spec.outputs[0].dtype)), n_(spec.outputs[0].numel()), bits_(spec.attrs.get_int("value_bits", 0)) {}
  void run(const KernelIO& io) override {
    with_elem_type(esize_, [&](auto tag) {
      using T = decltype(tag);
      T v;
      std::memcpy(&v, &bits_, sizeof(T));
      T* out = static_cast<T*>(io.out[0]);
      std::fill(out, out + n_, v);
    });
  }

 private:
  size_t esize_;
  int64_t n_;
  int64_t bits_;
};

}  // namespace

void register_tensor_ops() {
  register_kernel("StridedCopy", make_kernel<StridedCopyKernel>);
  register_kernel("Concat", make_kernel<ConcatKernel>);
  register_kernel("Split", make_kernel<SplitKernel>);
  register_kernel("Gather", make_kernel<GatherKernel>);
  register_kernel("GatherElements", make_kernel<GatherElementsKernel>);
  register_kernel("ScatterND", make_kernel<ScatterNDKernel>);
  register_kernel("Trilu", make_kernel<TriluKernel>);
  register_kernel("CumSum", make_kernel<CumSumKernel>);
  register_kernel("ConstantOfShape", make_kernel<FillKernel>);
  register_resize_ops();
}

}  // namespace pyengine
