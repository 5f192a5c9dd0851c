// Winograd F(4x4, 3x3) with channels in the lanes for small planes
// (ops/conv_wino_small.cpp): Conv's factory asks it first.
#pragma once
#include <memory>

#include "runtime/kernel.h"

namespace pyengine {

// A kernel for this Conv node when its shapes suit the path (3x3, stride 1,
// one group, constant weights, a small output plane, transformed weights that
// fit in L2), else null. Decided from the shapes only.
std::unique_ptr<Kernel> make_wino_small_conv(const NodeSpec& spec);

}  // namespace pyengine
