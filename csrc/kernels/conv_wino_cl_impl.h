// Winograd F(4x4, 3x3) with channels in the vector lanes, for convolutions on
// small planes (kernels/dispatch.h: WinoClArgs; the op is
// ops/conv_wino_small.cpp). Written once over vector traits `V` (type,
// lanes, load/store/fma) and compiled per ISA, like conv_direct_impl.h.
//
// Why a second Winograd: on an 8x8 output the planar one (conv_wino_impl.h)
// has 4 tiles, so its 36 GEMMs are [M x C] @ [C x 4]: 4 useful columns of a
// 16- or 32-wide panel. Here the tiles are the broadcast operand and output
// channels fill the lanes, so an 8x8 or 4x4 plane uses whole vectors.
//
// Same transforms and arithmetic order as conv_wino_impl.h's F(4x4):
//   B^T rows: [4 0 -5 0 1 0] [0 -4 -4 1 1 0] [0 4 -4 -1 1 0]
//             [0 -2 -1 2 1 0] [0 2 -1 -2 1 0] [0 4 0 -5 0 1]
//   A^T rows: [1 1 1 1 1 0] [0 1 -1 2 -2 0] [0 1 1 4 4 0] [0 1 -1 8 -8 1]
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/dispatch.h"
#include "kernels/static_count.h"

namespace pyengine {
namespace wino_cl_detail {

// r[0..5] = B^T d[0..5], elementwise over lanes (conv_wino_impl.h: wino43_bt).
template <class V>
inline void bt(const typename V::reg d[6], typename V::reg r[6]) {
  const typename V::reg four = V::set1(4.f), five = V::set1(5.f), two = V::set1(2.f);
  const typename V::reg a1 = d[1], a2 = d[2], a3 = d[3], a4 = d[4];
  const typename V::reg p = V::sub(a4, V::mul(four, a2)), q = V::sub(a3, V::mul(four, a1));
  const typename V::reg s = V::sub(a4, a2), t = V::mul(two, V::sub(a3, a1));
  r[0] = V::add(V::sub(V::mul(four, d[0]), V::mul(five, a2)), a4);
  r[1] = V::add(p, q);
  r[2] = V::sub(p, q);
  r[3] = V::add(s, t);
  r[4] = V::sub(s, t);
  r[5] = V::add(V::sub(V::mul(four, a1), V::mul(five, a3)), d[5]);
}

// r[0..3] = A^T m[0..5] + bias (conv_wino_impl.h: wino43_at).
template <class V>
inline void at(const typename V::reg m[6], typename V::reg r[4], typename V::reg bias) {
  const typename V::reg two = V::set1(2.f), four = V::set1(4.f), eight = V::set1(8.f);
  const typename V::reg p = V::add(m[1], m[2]), q = V::sub(m[1], m[2]);
  const typename V::reg s = V::add(m[3], m[4]), t = V::sub(m[3], m[4]);
  r[0] = V::add(bias, V::add(V::add(m[0], p), s));
  r[1] = V::add(bias, V::add(q, V::mul(two, t)));
  r[2] = V::add(bias, V::add(p, V::mul(four, s)));
  r[3] = V::add(bias, V::add(V::add(q, V::mul(eight, t)), m[5]));
}

// v[t][xi][c] for every tile t and lane block of channels.
template <class V>
void input_transform(const WinoClArgs& a) {
  const int64_t L = V::kLanes, row = (4 * a.TW + 2) * a.Cp, T = a.TH * a.TW;
  for (int64_t img = 0; img < a.images; ++img)
  for (int64_t th = 0; th < a.TH; ++th)
    for (int64_t tw = 0; tw < a.TW; ++tw) {
      const float* d0 = a.xt + img * a.xt_image + 4 * th * row + 4 * tw * a.Cp;
      float* v = a.v + (img * T + th * a.TW + tw) * 36 * a.Cp;
      for (int64_t c = 0; c < a.Cp; c += L) {
        typename V::reg t[6][6];  // B^T d: [row i][patch column k]
        for (int k = 0; k < 6; ++k) {
          typename V::reg col[6];
          for (int r = 0; r < 6; ++r) col[r] = V::load(d0 + r * row + k * a.Cp + c);
          typename V::reg out[6];
          bt<V>(col, out);
          for (int i = 0; i < 6; ++i) t[i][k] = out[i];
        }
        for (int i = 0; i < 6; ++i) {  // V[6i + j] = (t[i] B)[j]
          typename V::reg out[6];
          bt<V>(t[i], out);
          for (int j = 0; j < 6; ++j) V::store(v + (6 * i + j) * a.Cp + c, out[j]);
        }
      }
    }
}

// mo[t][xi][m] = sum_c v[t][xi][c] * u[xi][c][m] for PB tiles x MB vectors
// of channels: MB weight loads and PB broadcasts per input channel.
template <class V, int PB, int MB>
void product_block(const WinoClArgs& a, int64_t xi, int64_t t0, int64_t m0) {
  typename V::reg acc[PB][MB];
  for (int p = 0; p < PB; ++p)
    for (int j = 0; j < MB; ++j) acc[p][j] = V::set1(0.f);
  const float* u = a.u + xi * a.C * a.Mp + m0;
  const float* v = a.v + (t0 * 36 + xi) * a.Cp;
  const int64_t vt = 36 * a.Cp;  // between tiles
  for (int64_t c = 0; c < a.C; ++c, u += a.Mp) {
    typename V::reg w[MB];
    for (int j = 0; j < MB; ++j) w[j] = V::load(u + j * V::kLanes);
    for (int p = 0; p < PB; ++p) {
      const typename V::reg x = V::set1(v[p * vt + c]);
      for (int j = 0; j < MB; ++j) acc[p][j] = V::fma(x, w[j], acc[p][j]);
    }
  }
  float* mo = a.mo + (t0 * 36 + xi) * a.Mp + m0;
  for (int p = 0; p < PB; ++p)
    for (int j = 0; j < MB; ++j) V::store(mo + p * 36 * a.Mp + j * V::kLanes, acc[p][j]);
}

template <class V, int MB>
void product_tiles(const WinoClArgs& a, int64_t xi, int64_t m0) {
  const int64_t T = a.images * a.TH * a.TW;  // the images' tiles side by side: one pass over u for all
  int64_t t = 0;
  for (; t + V::kMaxPB <= T; t += V::kMaxPB) product_block<V, V::kMaxPB, MB>(a, xi, t, m0);
  // the last T - t < kMaxPB tiles, each count its own block
  with_static_count<V::kMaxPB - 1>(T - t, [&](auto pb) { product_block<V, decltype(pb)::value, MB>(a, xi, t, m0); });
}

template <class V>
void product(const WinoClArgs& a) {
  const int64_t nv = a.Mp / V::kLanes;
  for (int64_t xi = 0; xi < 36; ++xi) {
    int64_t j = 0;
    for (; j + V::kMaxMB <= nv; j += V::kMaxMB) product_tiles<V, V::kMaxMB>(a, xi, j * V::kLanes);
    with_static_count<V::kMaxMB - 1>(nv - j, [&](auto mb) { product_tiles<V, decltype(mb)::value>(a, xi, j * V::kLanes); });
  }
}

// y[m][oh][ow] = A^T mo A + bias for every tile's 4x4 outputs inside the plane.
template <class V>
void output_transform(const WinoClArgs& a) {
  const int64_t L = V::kLanes, plane = a.OH * a.OW, T = a.TH * a.TW;
  alignas(64) float buf[4][4][V::kLanes];
  for (int64_t img = 0; img < a.images; ++img)
  for (int64_t th = 0; th < a.TH; ++th)
    for (int64_t tw = 0; tw < a.TW; ++tw) {
      const float* mo = a.mo + (img * T + th * a.TW + tw) * 36 * a.Mp;
      const int64_t rows = std::min<int64_t>(4, a.OH - 4 * th), cols = std::min<int64_t>(4, a.OW - 4 * tw);
      for (int64_t m = 0; m < a.M; m += L) {
        typename V::reg s[4][6];  // A^T m: [output row][m column]
        for (int l = 0; l < 6; ++l) {
          typename V::reg col[6], out[4];
          for (int r = 0; r < 6; ++r) col[r] = V::load(mo + (6 * r + l) * a.Mp + m);
          at<V>(col, out, V::set1(0.f));
          for (int i = 0; i < 4; ++i) s[i][l] = out[i];
        }
        const typename V::reg bias = V::load(a.bias + m);
        for (int i = 0; i < 4; ++i) {
          typename V::reg out[4];
          at<V>(s[i], out, bias);
          for (int j = 0; j < 4; ++j) V::store(buf[i][j], out[j]);
        }
        const int64_t nm = std::min(L, a.M - m);
        float* y = a.y + img * a.M * plane + m * plane + 4 * th * a.OW + 4 * tw;
        for (int64_t k = 0; k < nm; ++k, y += plane)
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j) y[i * a.OW + j] = buf[i][j][k];
      }
    }
}

template <class V>
void conv_wino_cl(const WinoClArgs& a) {
  input_transform<V>(a);
  product<V>(a);
  output_transform<V>(a);
}

}  // namespace wino_cl_detail
}  // namespace pyengine
