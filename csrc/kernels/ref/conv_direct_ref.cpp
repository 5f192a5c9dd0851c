// Scalar direct convolution (the contract is in kernels/dispatch.h,
// ConvDirectArgs): the oracle for the SIMD kernels and the fallback.
#include "kernels/dispatch.h"

namespace pyengine {

namespace {

void conv_direct_ref(const ConvDirectArgs& a) {
  for (int64_t m = a.m0; m < a.m1; ++m) {
    float* y = a.y + m * a.y_ld;
    for (int64_t q = 0; q < a.Q; ++q) {
      float acc = a.bias[m];
      for (int64_t c = 0; c < a.C; ++c) {
        const float* x = a.x + c * a.x_plane + q;
        const float* w = a.w + c * a.T * a.w_ld + m;
        for (int64_t t = 0; t < a.T; ++t) acc += x[a.taps[t]] * w[t * a.w_ld];
      }
      y[q] = acc;
    }
  }
}

void conv_direct_cl_ref(const ConvDirectArgs& a) {
  for (int64_t i = a.p0; i < a.p1; ++i) {
    float* y = a.y + i * a.y_ld;
    for (int64_t m = a.m0; m < a.m1; ++m) {
      float acc = a.bias[m];
      for (int64_t c = 0; c < a.C; ++c) {
        const float* x = a.x + c * a.x_plane + a.pos[i];
        const float* w = a.w + c * a.T * a.w_ld + m;
        for (int64_t t = 0; t < a.T; ++t) acc += x[a.taps[t]] * w[t * a.w_ld];
      }
      y[m] = acc;
      if (a.out) a.out[m * a.out_ld + i] = acc;
    }
  }
}

}  // namespace

void fill_conv_direct_ref(KernelTable& t) {
  t.conv_direct = conv_direct_ref;
  t.conv_direct_cl = conv_direct_cl_ref;
}

}  // namespace pyengine
