// Separable float32 Max/AveragePool (Pool2dArgs) in plain C++ for the
// compiler to vectorize, written once and compiled with the ISA flags of the
// file that includes it (kernels/avx2/pool_avx2.cpp). Per output row the
// window's input rows are reduced elementwise into a row buffer that has
// the padding value (lowest float for max, 0 for average) on both sides, so
// the horizontal pass has no edge cases: output ow reduces the kw buffer
// entries from ow * sw, tap by tap over the whole row (unit-stride or
// stride-2 loads). Same order of operations as the AVX-512 kernel: rows in
// order, then taps in order.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

#include "kernels/dispatch.h"

namespace pyengine {
namespace pool_detail {

// Row buffer floats: (ow - 1) * sw + kw <= kPool2dMaxWidth * 2 + 16.
constexpr int64_t kRowBuf = 2 * kPool2dMaxWidth + 32;

template <bool kAvg>
static void pool_plane_rows(const Pool2dArgs& a, const float* x, float* __restrict y, float* __restrict t) {
  const float fill = kAvg ? 0.f : std::numeric_limits<float>::lowest();
  const int64_t IH = a.ih, IW = a.iw, OW = a.ow, KW = a.kw, SW = a.sw;
  float* __restrict tc = t + a.pw;  // input column 0
  for (int64_t oh = 0; oh < a.oh; ++oh, y += OW) {
    const int64_t h0 = oh * a.sh - a.ph;
    const int64_t r0 = std::max<int64_t>(h0, 0), r1 = std::min(h0 + a.kh, IH);
    if (r0 >= r1) {
      for (int64_t ow = 0; ow < OW; ++ow) y[ow] = fill;
      continue;
    }
    const float* xr = x + r0 * IW;
    for (int64_t c = 0; c < IW; ++c) tc[c] = xr[c];
    for (int64_t r = r0 + 1; r < r1; ++r) {
      xr += IW;
      if (kAvg)
        for (int64_t c = 0; c < IW; ++c) tc[c] += xr[c];
      else
        for (int64_t c = 0; c < IW; ++c) tc[c] = xr[c] > tc[c] ? xr[c] : tc[c];
    }
    if (OW < 8) {  // shorter than a vector: taps innermost (a 7x7 window on a 7x7 plane)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float* tw = t + ow * SW;
        float acc = tw[0];
        for (int64_t j = 1; j < KW; ++j) acc = kAvg ? acc + tw[j] : (tw[j] > acc ? tw[j] : acc);
        y[ow] = acc;
      }
    } else if (!kAvg && KW == 3 && SW == 1) {  // the common windows in one pass over the row
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float u = t[ow + 1] > t[ow] ? t[ow + 1] : t[ow];
        y[ow] = t[ow + 2] > u ? t[ow + 2] : u;
      }
    } else if (!kAvg && KW == 3 && SW == 2) {
      for (int64_t ow = 0; ow < OW; ++ow) {
        const float u = t[2 * ow + 1] > t[2 * ow] ? t[2 * ow + 1] : t[2 * ow];
        y[ow] = t[2 * ow + 2] > u ? t[2 * ow + 2] : u;
      }
    } else if (SW == 1) {
      for (int64_t ow = 0; ow < OW; ++ow) y[ow] = t[ow];
      for (int64_t j = 1; j < KW; ++j) {
        const float* tj = t + j;
        if (kAvg)
          for (int64_t ow = 0; ow < OW; ++ow) y[ow] += tj[ow];
        else
          for (int64_t ow = 0; ow < OW; ++ow) y[ow] = tj[ow] > y[ow] ? tj[ow] : y[ow];
      }
    } else {
      for (int64_t ow = 0; ow < OW; ++ow) y[ow] = t[2 * ow];
      for (int64_t j = 1; j < KW; ++j) {
        const float* tj = t + j;
        if (kAvg)
          for (int64_t ow = 0; ow < OW; ++ow) y[ow] += tj[2 * ow];
        else
          for (int64_t ow = 0; ow < OW; ++ow) y[ow] = tj[2 * ow] > y[ow] ? tj[2 * ow] : y[ow];
      }
    }
    if (kAvg) {
      const float ch = a.cnt_h[oh];
      for (int64_t ow = 0; ow < OW; ++ow) y[ow] = y[ow] / (ch * a.cnt_w[ow]);
    }
  }
}

static void pool2d_rows(const Pool2dArgs& a) {
  alignas(64) float t[kRowBuf];
  const float fill = a.avg ? 0.f : std::numeric_limits<float>::lowest();
  const int64_t len = std::max(a.pw + a.iw, (a.ow - 1) * a.sw + a.kw);
  for (int64_t i = 0; i < a.pw; ++i) t[i] = fill;
  for (int64_t i = a.pw + a.iw; i < len; ++i) t[i] = fill;
  for (int64_t p = 0; p < a.planes; ++p) {
    if (a.avg)
      pool_plane_rows<true>(a, a.x + p * a.x_stride, a.y + p * a.y_stride, t);
    else
      pool_plane_rows<false>(a, a.x + p * a.x_stride, a.y + p * a.y_stride, t);
  }
}

}  // namespace pool_detail
}  // namespace pyengine
