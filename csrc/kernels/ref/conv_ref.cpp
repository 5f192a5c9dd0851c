// Reference conv kernels (portable build of kernels/conv_dw_impl.h).
#include "kernels/conv_dw_impl.h"

namespace pyengine {

namespace {
void conv_dw_plane_ref(const DwConvArgs& a) { conv_detail::dw_plane(a); }
}  // namespace

void fill_conv_ref(KernelTable& t) { t.conv_dw_plane = conv_dw_plane_ref; }

}  // namespace pyengine
