// Work space of the SIMD depthwise kernels (kernels/avx2/conv_avx2.cpp): one
// zero-padded copy of the input plane, each padded row split into `stride`
// column phases (phase q holds padded columns q, q+s, q+2s, ...), so every
// filter tap reads a contiguous run for 8 consecutive outputs whatever the
// stride. Sized here, independent of the ISA, so Conv can reserve it.
#pragma once
#include <cstdint>

namespace pyengine {

// Floats of one phase row: outputs rounded up to whole vectors of 8 plus the
// furthest tap's offset within the phase.
inline int64_t conv_dw_phase_width(int64_t out_w, int64_t k_w, int64_t s_w, int64_t d_w) {
  return (out_w + 7) / 8 * 8 + (k_w - 1) * d_w / s_w;
}

// Padded rows actually read: (OH-1)*sh + (KH-1)*dh + 1.
inline int64_t conv_dw_padded_rows(int64_t out_h, int64_t k_h, int64_t s_h, int64_t d_h) {
  return (out_h - 1) * s_h + (k_h - 1) * d_h + 1;
}

// 2-D geometry (H, W); 0 for empty outputs.
inline int64_t conv_dw_scratch_floats(int64_t out_h, int64_t out_w, int64_t k_h, int64_t k_w, int64_t s_h,
                                      int64_t s_w, int64_t d_h, int64_t d_w) {
  if (out_h <= 0 || out_w <= 0) return 0;
  return conv_dw_padded_rows(out_h, k_h, s_h, d_h) * s_w * conv_dw_phase_width(out_w, k_w, s_w, d_w);
}

}  // namespace pyengine
