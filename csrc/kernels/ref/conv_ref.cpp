// Reference conv kernels (portable build of kernels/conv_dw_impl.h).
#include "kernels/conv_dw_impl.h"
#include "kernels/conv_wino_impl.h"

namespace pyengine {

namespace {
void conv_dw_plane_ref(const DwConvArgs& a) { conv_detail::dw_each_plane(a, conv_detail::dw_plane); }

void conv_wino_in_ref(const WinoArgs& a) { conv_detail::wino_in(a); }
void conv_wino_out_ref(const WinoArgs& a) { conv_detail::wino_out(a); }
void conv_wino43_in_ref(const WinoArgs& a) { conv_detail::wino43_in(a); }
void conv_wino43_out_ref(const WinoArgs& a) { conv_detail::wino43_out(a); }
}  // namespace

void fill_conv_ref(KernelTable& t) {
  t.conv_dw_plane = conv_dw_plane_ref;
  t.conv_wino_in = conv_wino_in_ref;
  t.conv_wino_out = conv_wino_out_ref;
  t.conv_wino43_in = conv_wino43_in_ref;
  t.conv_wino43_out = conv_wino43_out_ref;
}

}  // namespace pyengine
