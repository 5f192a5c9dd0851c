// AVX2/FMA build of the Winograd F(4x4, 3x3) transforms (kernels/conv_wino_impl.h;
// the F(2x2, 3x3) ones are filled by conv_avx2.cpp).
#include "kernels/conv_wino_impl.h"

namespace pyengine {

namespace {
void conv_wino43_in_avx2(const WinoArgs& a) { conv_detail::wino43_in(a); }
void conv_wino43_out_avx2(const WinoArgs& a) { conv_detail::wino43_out(a); }
}  // namespace

void fill_conv_wino_avx2(KernelTable& t) {
  t.conv_wino43_in = conv_wino43_in_avx2;
  t.conv_wino43_out = conv_wino43_out_avx2;
}

}  // namespace pyengine
