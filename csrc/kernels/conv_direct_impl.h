// Direct convolution micro-kernel shared by the AVX2 and AVX-512 files (each
// includes it with its own vector traits `V`: type, lanes, load/store/fma).
// Contract: ConvDirectArgs in kernels/dispatch.h.
//
// A block of CB output channels times NV vectors of flat output positions is
// held in registers; each (input channel, tap) step loads NV input vectors and
// broadcasts CB weights: CB * NV FMAs for NV + CB loads. Blocks are
// instantiated for every CB <= V::kMaxCB and NV <= V::kMaxNV, so a remainder
// of channels or positions never falls back to a slower loop. Every output is
// the same chain bias, (c, t) FMAs whatever block it falls in.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/static_count.h"

namespace pyengine {
namespace conv_direct_detail {

template <class V, int CB, int NV>
void block(const ConvDirectArgs& a, int64_t m, int64_t q) {
  typename V::reg acc[CB][NV];
  for (int j = 0; j < CB; ++j) {
    const typename V::reg b = V::set1(a.bias[m + j]);
    for (int v = 0; v < NV; ++v) acc[j][v] = b;
  }
  const float* x = a.x + q;
  const float* wt = a.w + m;
  const int64_t steps = a.C * a.T;
  for (int64_t s = 0; s < steps; ++s, wt += a.w_ld) {
    const float* xt = x + a.offs[s];
    typename V::reg xv[NV];
    for (int v = 0; v < NV; ++v) xv[v] = V::load(xt + v * V::kLanes);
    for (int j = 0; j < CB; ++j) {
      const typename V::reg wv = V::set1(wt[j]);
      for (int v = 0; v < NV; ++v) acc[j][v] = V::fma(xv[v], wv, acc[j][v]);
    }
  }
  for (int j = 0; j < CB; ++j)
    for (int v = 0; v < NV; ++v) V::store(a.y + (m + j) * a.y_ld + q + v * V::kLanes, acc[j][v]);
}

template <class V, int CB>
void channels(const ConvDirectArgs& a, int64_t m) {
  constexpr int64_t step = V::kMaxNV * V::kLanes;
  const int64_t nvec = (a.Q + V::kLanes - 1) / V::kLanes;
  int64_t q = 0;
  for (; q + step <= nvec * V::kLanes; q += step) block<V, CB, V::kMaxNV>(a, m, q);
  const int64_t rest = nvec - q / V::kLanes;  // 0 .. kMaxNV-1 vectors
  if (rest == 1) block<V, CB, 1>(a, m, q);
  if constexpr (V::kMaxNV > 2)
    if (rest == 2) block<V, CB, 2>(a, m, q);
  if constexpr (V::kMaxNV > 3)
    if (rest == 3) block<V, CB, 3>(a, m, q);
}

template <class V>
void conv_direct(const ConvDirectArgs& a) {
  int64_t m = a.m0;
  for (; m + V::kMaxCB <= a.m1; m += V::kMaxCB) channels<V, V::kMaxCB>(a, m);
  with_static_count<V::kMaxCB - 1>(a.m1 - m, [&](auto cb) { channels<V, decltype(cb)::value>(a, m); });
}

// --- channels in lanes (conv_direct_cl) ---
// PB positions x MB vectors of output channels in registers; each (c, t)
// step loads MB weight vectors and broadcasts PB input values. Input
// channels are taken in chunks whose weights stay in L1 (kClChunkFloats)
// while every position block passes over them; a block's partial sums wait
// in y between chunks (stored and reloaded exactly, so each output is still
// one FMA chain: bias, then every (c, t) in order).
constexpr int64_t kClChunkFloats = 4096;

template <class V, int MB, int PB>
void cl_block(const ConvDirectArgs& a, int64_t m, int64_t p, int64_t c0, int64_t c1) {
  typename V::reg acc[PB][MB];
  if (c0 == 0) {
    for (int v = 0; v < MB; ++v) {
      const typename V::reg b = V::load(a.bias + m + v * V::kLanes);
      for (int i = 0; i < PB; ++i) acc[i][v] = b;
    }
  } else {
    for (int i = 0; i < PB; ++i)
      for (int v = 0; v < MB; ++v) acc[i][v] = V::load(a.y + (p + i) * a.y_ld + m + v * V::kLanes);
  }
  int64_t off[PB];
  for (int i = 0; i < PB; ++i) off[i] = a.pos[p + i];
  const float* wt = a.w + c0 * a.T * a.w_ld + m;
  for (int64_t s = c0 * a.T, s1 = c1 * a.T; s < s1; ++s, wt += a.w_ld) {
    const float* xt = a.x + a.offs[s];
    typename V::reg wv[MB];
    for (int v = 0; v < MB; ++v) wv[v] = V::load(wt + v * V::kLanes);
    for (int i = 0; i < PB; ++i) {
      const typename V::reg xb = V::set1(xt[off[i]]);
      for (int v = 0; v < MB; ++v) acc[i][v] = V::fma(wv[v], xb, acc[i][v]);
    }
  }
  for (int i = 0; i < PB; ++i)
    for (int v = 0; v < MB; ++v) V::store(a.y + (p + i) * a.y_ld + m + v * V::kLanes, acc[i][v]);
}

template <class V, int MB>
void cl_positions(const ConvDirectArgs& a, int64_t m) {
  const int64_t chunk = std::max<int64_t>(1, kClChunkFloats / (a.T * MB * V::kLanes));
  for (int64_t c0 = 0; c0 < a.C; c0 += chunk) {
    const int64_t c1 = std::min(a.C, c0 + chunk);
    int64_t p = a.p0;
    for (; p + V::kMaxPB <= a.p1; p += V::kMaxPB) cl_block<V, MB, V::kMaxPB>(a, m, p, c0, c1);
    with_static_count<V::kMaxPB - 1>(a.p1 - p, [&](auto pb) { cl_block<V, MB, decltype(pb)::value>(a, m, p, c0, c1); });
  }
}

// out[m][i] = y[i][m]. With V::kTile16, whole 16x16 tiles are transposed
// in registers; the rest is one gather of kLanes positions (stride y_ld) per
// channel, then the position tail one by one.
template <class V>
void cl_transpose(const ConvDirectArgs& a) {
  int64_t m = a.m0;
  if constexpr (V::kTile16) {
    for (; m + 16 <= a.m1; m += 16) {
      int64_t i = a.p0;
      for (; i + 16 <= a.p1; i += 16) V::transpose16(a.y + i * a.y_ld + m, a.y_ld, a.out + m * a.out_ld + i, a.out_ld);
      for (int64_t j = m; j < m + 16; ++j)
        for (int64_t k = i; k < a.p1; ++k) a.out[j * a.out_ld + k] = a.y[k * a.y_ld + j];
    }
  }
  for (; m < a.m1; ++m) {
    float* o = a.out + m * a.out_ld;
    const float* src = a.y + m;
    int64_t i = a.p0;
    for (; i + V::kLanes <= a.p1; i += V::kLanes) V::store(o + i, V::gather(src + i * a.y_ld, a.y_ld));
    for (; i < a.p1; ++i) o[i] = src[i * a.y_ld];
  }
}

template <class V>
void conv_direct_cl(const ConvDirectArgs& a) {
  constexpr int64_t step = V::kMaxMB * V::kLanes;
  const int64_t end = (a.m1 + V::kLanes - 1) / V::kLanes * V::kLanes;
  int64_t m = a.m0;
  for (; m + step <= end; m += step) cl_positions<V, V::kMaxMB>(a, m);
  with_static_count<V::kMaxMB - 1>((end - m) / V::kLanes, [&](auto mb) { cl_positions<V, decltype(mb)::value>(a, m); });
  if (a.out) cl_transpose<V>(a);
}

}  // namespace conv_direct_detail
}  // namespace pyengine
