// Index-map gathers: Pad and nearest Resize/Upsample (MapGather) and linear
// Resize (ResizeLinear). Python computes, per output dimension, which input
// coordinate each output coordinate reads (-1: outside, the fill value), and
// for linear modes the second coordinate and its weight. The kernels then
// walk the output row by row.
#include <cstring>

#include "ops/common.h"

namespace pyengine {

namespace {

constexpr size_t kMaxDims = 16;

std::vector<std::vector<int64_t>> split_maps(const std::vector<int64_t>& flat, const Shape& out, const char* what) {
  require(static_cast<int64_t>(flat.size()) == [&] { int64_t n = 0; for (int64_t d : out) n += d; return n; }(),
          std::string(what) + " has the wrong length");
  std::vector<std::vector<int64_t>> maps;
  size_t at = 0;
  for (int64_t d : out) {
    maps.emplace_back(flat.begin() + at, flat.begin() + at + d);
    at += d;
  }
  return maps;
}

// ---- MapGather --------------------------------------------------------------
class MapGatherKernel : public Kernel {
 public:
  explicit MapGatherKernel(const NodeSpec& spec) : esize_(dtype_size(spec.input(0).dtype)) {
    const Shape& in = spec.input(0).shape;
    const Shape& out = spec.outputs[0].shape;
    require(in.size() == out.size() && !out.empty() && out.size() <= kMaxDims, "input and output ranks differ");
    auto maps = split_maps(spec.attrs.get_ints("maps"), out, "maps");
    std::vector<int64_t> st = contiguous_strides(in);
    for (size_t d = 0; d < out.size(); ++d)
      for (int64_t& m : maps[d]) {
        require(m >= -1 && m < in[d], "map entry outside the input");
        if (m >= 0) m *= st[d];
      }
    outer_dims_.assign(out.begin(), out.end() - 1);
    outer_maps_.assign(maps.begin(), maps.end() - 1);
    inner_ = out.back();
    rows_ = shape_numel(outer_dims_);
    if (inner_ == 0) rows_ = 0;
    // Runs along the last dim: contiguous input stretches become one memcpy.
    const auto& last = maps.back();
    for (int64_t i = 0; i < inner_; ++i) {
      int64_t src = last[i];
      if (!runs_.empty()) {
        Run& r = runs_.back();
        bool extend = (src < 0 && r.src < 0) || (src >= 0 && r.src >= 0 && src == r.src + r.len);
        if (extend) { ++r.len; continue; }
      }
      runs_.push_back({i, 1, src});
    }
    value_bits_ = spec.attrs.get_int("value_bits", 0);
    value_input_ = spec.attrs.get_int("value_input", -1);
  }

  void run(const KernelIO& io) override {
    uint64_t bits = static_cast<uint64_t>(value_bits_);
    if (value_input_ >= 0 && io.in[value_input_]) {
      bits = 0;
      std::memcpy(&bits, io.in[value_input_], esize_);
    }
    switch (esize_) {
      case 1: typed<uint8_t>(io, bits); break;
      case 2: typed<uint16_t>(io, bits); break;
      case 4: typed<uint32_t>(io, bits); break;
      case 8: typed<uint64_t>(io, bits); break;
      default: throw KernelError("unsupported element size");
    }
  }

 private:
  struct Run { int64_t start, len, src; };

  template <class T>
  void typed(const KernelIO& io, uint64_t bits) const {
    T value;
    std::memcpy(&value, &bits, sizeof(T));
    const T* in = static_cast<const T*>(io.in[0]);
    T* out = static_cast<T*>(io.out[0]);
    const int64_t nd = static_cast<int64_t>(outer_dims_.size());
    int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, inner_ * static_cast<int64_t>(sizeof(T))));
    io.pool->parallel_for(rows_, grain, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        T* o = out + r * inner_;
        int64_t off = 0, rem = r;
        bool outside = false;
        for (int64_t d = nd - 1; d >= 0; --d) {
          int64_t m = outer_maps_[d][rem % outer_dims_[d]];
          rem /= outer_dims_[d];
          if (m < 0) outside = true;
          off += m;
        }
        if (outside) {
          std::fill(o, o + inner_, value);
          continue;
        }
        const T* s = in + off;
        for (const Run& run : runs_) {
          if (run.src < 0) std::fill(o + run.start, o + run.start + run.len, value);
          else if (run.len == 1) o[run.start] = s[run.src];
          else std::memcpy(o + run.start, s + run.src, run.len * sizeof(T));
        }
      }
    });
  }

  size_t esize_;
  Shape outer_dims_;
  std::vector<std::vector<int64_t>> outer_maps_;
  int64_t inner_ = 0, rows_ = 0;
  std::vector<Run> runs_;
  int64_t value_bits_ = 0, value_input_ = -1;
};

// ---- ResizeLinear (float32) -----------------------------------------------------
// Dims whose map has a second tap are interpolated; the others read one
// coordinate. Per output row the outer dims give up to 2^k (offset, weight)
// corners, combined with the last dim's taps.
class ResizeLinearKernel : public Kernel {
 public:
  explicit ResizeLinearKernel(const NodeSpec& spec) {
    require_dtype(spec.input(0), DType::Float32, "Resize linear input");
    const Shape& in = spec.input(0).shape;
    const Shape& out = spec.outputs[0].shape;
    require(in.size() == out.size() && !out.empty() && out.size() <= kMaxDims, "input and output ranks differ");
    auto i0 = split_maps(spec.attrs.get_ints("i0"), out, "i0");
    auto i1 = split_maps(spec.attrs.get_ints("i1"), out, "i1");
    std::vector<double> wflat = spec.attrs.get_floats("w1");
    require(wflat.size() == spec.attrs.get_ints("i0").size(), "w1 has the wrong length");
    extrapolation_ = static_cast<float>(spec.attrs.get_float("extrapolation_value", 0.0));
    std::vector<int64_t> st = contiguous_strides(in);
    size_t at = 0;
    int ninterp = 0;
    dims_.resize(out.size());
    for (size_t d = 0; d < out.size(); ++d) {
      Dim& dm = dims_[d];
      dm.size = out[d];
      for (int64_t o = 0; o < out[d]; ++o, ++at) {
        int64_t a = i0[d][o], b = i1[d][o];
        require(a >= -1 && a < in[d] && b >= -1 && b < in[d], "tap outside the input");
        float w = static_cast<float>(wflat[at]);
        if (a >= 0 && b != a && w != 0.0f) dm.interp = true;
        dm.o0.push_back(a < 0 ? -1 : a * st[d]);
        dm.o1.push_back(b < 0 ? -1 : b * st[d]);
        dm.w1.push_back(w);
      }
      if (dm.interp && d + 1 < out.size()) ++ninterp;
    }
    require(ninterp <= 8, "linear interpolation over more than 9 dimensions");
    inner_ = out.back();
    rows_ = inner_ ? shape_numel(Shape(out.begin(), out.end() - 1)) : 0;
  }

  void run(const KernelIO& io) override {
    const float* in = static_cast<const float*>(io.in[0]);
    float* out = static_cast<float*>(io.out[0]);
    const int64_t nd = static_cast<int64_t>(dims_.size()) - 1;
    const Dim& last = dims_.back();
    int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, inner_));
    io.pool->parallel_for(rows_, grain, [&](int64_t b, int64_t e) {
      int64_t coff[256];
      float cw[256];
      for (int64_t r = b; r < e; ++r) {
        float* o = out + r * inner_;
        int nc = 1;
        coff[0] = 0;
        cw[0] = 1.0f;
        bool outside = false;
        int64_t rem = r;
        int64_t idx[kMaxDims];
        for (int64_t d = nd - 1; d >= 0; --d) {
          idx[d] = rem % dims_[d].size;
          rem /= dims_[d].size;
        }
        for (int64_t d = 0; d < nd && !outside; ++d) {
          const Dim& dm = dims_[d];
          int64_t a = dm.o0[idx[d]];
          if (a < 0) { outside = true; break; }
          if (!dm.interp) {
            for (int c = 0; c < nc; ++c) coff[c] += a;
            continue;
          }
          int64_t bb = dm.o1[idx[d]];
          float w = dm.w1[idx[d]];
          for (int c = 0; c < nc; ++c) {
            coff[nc + c] = coff[c] + bb;
            cw[nc + c] = cw[c] * w;
            coff[c] += a;
            cw[c] *= 1.0f - w;
          }
          nc *= 2;
        }
        if (outside) {
          std::fill(o, o + inner_, extrapolation_);
          continue;
        }
        for (int64_t x = 0; x < inner_; ++x) {
          int64_t a = last.o0[x];
          if (a < 0) { o[x] = extrapolation_; continue; }
          float acc = 0.0f;
          if (last.interp) {
            int64_t bb = last.o1[x];
            float w = last.w1[x];
            for (int c = 0; c < nc; ++c) acc += cw[c] * ((1.0f - w) * in[coff[c] + a] + w * in[coff[c] + bb]);
          } else {
            for (int c = 0; c < nc; ++c) acc += cw[c] * in[coff[c] + a];
          }
          o[x] = acc;
        }
      }
    });
  }

 private:
  struct Dim {
    int64_t size = 0;
    bool interp = false;
    std::vector<int64_t> o0, o1;
    std::vector<float> w1;
  };
  std::vector<Dim> dims_;
  int64_t inner_ = 0, rows_ = 0;
  float extrapolation_ = 0.0f;
};

}  // namespace

std::unique_ptr<Kernel> make_resize(const NodeSpec& spec) {
  if (spec.attrs.has("i0")) return std::make_unique<ResizeLinearKernel>(spec);
  return std::make_unique<MapGatherKernel>(spec);
}

void register_resize_ops() {
  register_kernel("MapGather", make_kernel<MapGatherKernel>);
  register_kernel("Resize", make_resize);
}

}  // namespace pyengine
