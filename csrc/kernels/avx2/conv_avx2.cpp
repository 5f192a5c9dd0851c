// AVX2/FMA conv kernels: the shared depthwise loop compiled with -mavx2 -mfma
// (the output-width loop becomes 8-wide FMAs).
#include "kernels/conv_dw_impl.h"

namespace pyengine {

namespace {
void conv_dw_plane_f32_avx2(const DwConvArgs& a) { conv_detail::dw_plane(a); }
}  // namespace

void fill_conv_avx2(KernelTable& t) { t.conv_dw_plane = conv_dw_plane_f32_avx2; }

}  // namespace pyengine
