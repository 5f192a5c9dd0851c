// Scalar Winograd F(4x4, 3x3), channels-last (the same code as the SIMD
// files over one-lane "vectors"): the reference the SIMD builds are tested
// against, and what the scalar table runs.
#include <cmath>

#include "kernels/conv_wino_cl_impl.h"

namespace pyengine {

namespace {
struct Scalar {
  using reg = float;
  static constexpr int64_t kLanes = 1;
  static constexpr int kMaxPB = 4, kMaxMB = 1;
  static reg load(const float* p) { return *p; }
  static void store(float* p, reg v) { *p = v; }
  static reg set1(float v) { return v; }
  static reg fma(reg a, reg b, reg c) { return std::fma(a, b, c); }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static reg mul(reg a, reg b) { return a * b; }
};
}  // namespace

void fill_conv_wino_cl_ref(KernelTable& t) { t.conv_wino_cl = wino_cl_detail::conv_wino_cl<Scalar>; }

}  // namespace pyengine
