// Depthwise convolution of one plane, written once and compiled twice: by
// kernels/ref/conv_ref.cpp (portable flags) and kernels/avx2/conv_avx2.cpp
// (-mavx2 -mfma), where the compiler vectorizes the inner loop over the
// output width 8 floats at a time. Each output row stays in L1 while every
// filter tap is accumulated into it with a unit- or strided-load axpy.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/dispatch.h"

namespace pyengine {
namespace conv_detail {

// y = act(y) for the kinds a depthwise kernel applies itself (DwConvArgs::act);
// same NaN handling as the activation kernels (NaN stays NaN).
static void dw_activate(float* y, int64_t n, const Activation& act) {
  switch (act.kind) {
    case Activation::Relu:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] < 0.f ? 0.f : y[i];
      break;
    case Activation::LeakyRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] >= 0.f ? y[i] : y[i] * act.alpha;
      break;
    case Activation::Clip:
      for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(y[i], act.alpha), act.beta);
      break;
    default: break;
  }
}

// static: each including file (compiled with its own ISA flags) keeps its own
// copy; an inline function would be merged by the linker across ISAs.
static void dw_plane(const DwConvArgs& a) {
  const int64_t IH = a.in[1], IW = a.in[2];
  const int64_t OD = a.out[0], OH = a.out[1], OW = a.out[2];
  const int64_t KH = a.k[1], KW = a.k[2];
  const int64_t sw = a.s[2];
  for (int64_t od = 0; od < OD; ++od) {
    for (int64_t oh = 0; oh < OH; ++oh) {
      float* __restrict yr = a.y + (od * OH + oh) * OW;
      for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = a.bias;
      for (int64_t kd = 0; kd < a.k[0]; ++kd) {
        int64_t id = od * a.s[0] - a.pb[0] + kd * a.d[0];
        if (id < 0 || id >= a.in[0]) continue;
        for (int64_t kh = 0; kh < KH; ++kh) {
          int64_t ih = oh * a.s[1] - a.pb[1] + kh * a.d[1];
          if (ih < 0 || ih >= IH) continue;
          const float* __restrict xr = a.x + (id * IH + ih) * IW;
          const float* wr = a.w + (kd * KH + kh) * KW;
          for (int64_t kw = 0; kw < KW; ++kw) {
            // input column iw = ow * sw + off must lie in [0, IW)
            const int64_t off = kw * a.d[2] - a.pb[2];
            int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
            int64_t hi = (IW - 1 - off) < 0 ? 0 : (IW - 1 - off) / sw + 1;
            if (lo > OW) lo = OW;
            if (hi > OW) hi = OW;
            if (hi < lo) hi = lo;
            const float wv = wr[kw];
            if (sw == 1) {
              const float* __restrict xs = xr + off;
              for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xs[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * sw + off];
            }
          }
        }
      }
    }
  }
  dw_activate(a.y, OD * OH * OW, a.act);
}

// Runs a one-plane kernel over the a.planes planes of a call.
template <class OnePlane>
static void dw_each_plane(const DwConvArgs& a, OnePlane one) {
  DwConvArgs p = a;
  p.planes = 1;
  for (int64_t i = 0; i < a.planes; ++i) {
    p.x = a.x + i * a.x_stride;
    p.w = a.w + i * a.w_stride;
    p.y = a.y + i * a.y_stride;
    p.bias = a.biases ? a.biases[i] : a.bias;
    one(p);
  }
}

}  // namespace conv_detail
}  // namespace pyengine
