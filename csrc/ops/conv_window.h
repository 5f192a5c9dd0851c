// Sliding-window geometry shared by Conv, ConvTranspose and the pools.
// Python (pyengine/ops/conv.py) resolves auto_pad/ceil_mode/output_shape into
// explicit pads; here 1-D and 2-D windows are lifted to 3-D with leading
// axes of size 1, so every kernel is written once for (D, H, W).
#pragma once
#include <cstdint>
#include <string>

#include "ops/common.h"

namespace pyengine {

struct Window3 {
  int64_t in[3] = {1, 1, 1};   // input spatial sizes (D, H, W)
  int64_t out[3] = {1, 1, 1};  // output spatial sizes
  int64_t k[3] = {1, 1, 1};    // kernel
  int64_t s[3] = {1, 1, 1};    // strides
  int64_t d[3] = {1, 1, 1};    // dilations
  int64_t pb[3] = {0, 0, 0};   // pads at the start
  int64_t pe[3] = {0, 0, 0};   // pads at the end

  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t k_size() const { return k[0] * k[1] * k[2]; }

  // `in_spatial`/`out_spatial` are the trailing dims of the N, C, ... tensors.
  // ConvTranspose allows negative pads (an output_shape larger than the full
  // transposed convolution).
  static Window3 from_spec(const NodeSpec& spec, const Shape& in_shape, const Shape& out_shape,
                           bool negative_pads = false) {
    Window3 w;
    size_t r = in_shape.size() - 2;
    require(r >= 1 && r <= 3, spec.op_type + " supports 1 to 3 spatial axes, got input " + shape_str(in_shape));
    auto ks = spec.attrs.get_ints("kernel_shape");
    auto st = spec.attrs.get_ints("strides", std::vector<int64_t>(r, 1));
    auto di = spec.attrs.get_ints("dilations", std::vector<int64_t>(r, 1));
    auto pads = spec.attrs.get_ints("pads", std::vector<int64_t>(2 * r, 0));
    require(ks.size() == r && st.size() == r && di.size() == r && pads.size() == 2 * r,
            spec.op_type + ": kernel_shape/strides/dilations/pads do not match " + std::to_string(r) + " spatial axes");
    size_t o = 3 - r;
    for (size_t a = 0; a < r; ++a) {
      w.in[o + a] = in_shape[2 + a];
      w.out[o + a] = out_shape[2 + a];
      w.k[o + a] = ks[a];
      w.s[o + a] = st[a];
      w.d[o + a] = di[a];
      w.pb[o + a] = pads[a];
      w.pe[o + a] = pads[a + r];
      require(ks[a] >= 1 && st[a] >= 1 && di[a] >= 1 && (negative_pads || (pads[a] >= 0 && pads[a + r] >= 0)),
              spec.op_type + ": kernel, strides and dilations must be >= 1 and pads >= 0");
    }
    return w;
  }
};

// For input position i = o * s + off, the output range [lo, hi) of o where
// 0 <= i < n (clamped to [0, out)).
inline void valid_range(int64_t off, int64_t s, int64_t n, int64_t out, int64_t* lo, int64_t* hi) {
  int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t h = (n - 1 - off) < 0 ? 0 : (n - 1 - off) / s + 1;
  *lo = std::min(l, out);
  *hi = std::max(*lo, std::min(h, out));
}

}  // namespace pyengine
