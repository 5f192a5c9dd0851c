// Direct convolution for small networks (ops/conv_direct.cpp): Conv's
// factory asks it first and falls back to ConvKernel when it declines.
#pragma once
#include <memory>

#include "runtime/kernel.h"

namespace pyengine {

// A kernel for this Conv node when the direct path suits its shapes
// (stride 1, 1-D/2-D, one group, constant weights, small per-image work),
// else null. Decided from the shapes only, never from the thread count.
std::unique_ptr<Kernel> make_direct_conv(const NodeSpec& spec);

}  // namespace pyengine
