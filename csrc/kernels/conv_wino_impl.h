// Winograd F(2x2, 3x3) input and output transforms (see WinoArgs in
// dispatch.h), written once and compiled twice like conv_dw_impl.h. Tiles of
// a row are processed in chunks: the 4 input rows are first split into even
// and odd columns, so tile j's patch columns 2j..2j+3 are e[j], o[j], e[j+1],
// o[j+1] and every loop over j is a plain unit-stride loop the compiler
// vectorizes (8 tiles per AVX2 instruction).
//
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]      A^T = [1 1 1 0; 0 1 -1 -1]
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/dispatch.h"

namespace pyengine {
namespace conv_detail {

constexpr int64_t kWinoChunk = 64;  // tiles per chunk (stack buffers)

static void wino_in(const WinoArgs& a) {
  float e[4][kWinoChunk + 1], o[4][kWinoChunk + 1];
  float t[4][4][kWinoChunk];  // B^T d: [row i][patch column][tile]
  for (int64_t u = 0; u < a.units; ++u) {
    const int64_t tr = a.th0 + u, th = tr % a.TH;
    const float* x = a.x + (tr / a.TH) * a.plane;
    for (int64_t j0 = 0; j0 < a.TW; j0 += kWinoChunk) {
      const int64_t nj = std::min(kWinoChunk, a.TW - j0);
      for (int r = 0; r < 4; ++r) {  // input row 2th + r - ph, columns 2j + {0,1} - pw
        const int64_t ih = 2 * th + r - a.ph;
        if (ih < 0 || ih >= a.h) {
          for (int64_t j = 0; j <= nj; ++j) e[r][j] = o[r][j] = 0.f;
          continue;
        }
        const int64_t c0 = 2 * j0 - a.pw;  // input column of the chunk's e[0]
        const float* xr = x + ih * a.w;
        // j with both columns inside the row: c0 + 2j >= 0 and c0 + 2j + 1 < w
        const int64_t lo = std::min(nj + 1, std::max<int64_t>(0, (1 - c0) / 2));
        const int64_t hi = std::max(lo, std::min(nj + 1, a.w - c0 <= 1 ? 0 : (a.w - c0) / 2));
        for (int64_t j = 0; j < lo; ++j) {
          const int64_t c = c0 + 2 * j;
          e[r][j] = c >= 0 && c < a.w ? xr[c0 + 2 * j] : 0.f;
          o[r][j] = c + 1 >= 0 && c + 1 < a.w ? xr[c0 + 2 * j + 1] : 0.f;
        }
        for (int64_t j = lo; j < hi; ++j) {
          e[r][j] = xr[c0 + 2 * j];
          o[r][j] = xr[c0 + 2 * j + 1];
        }
        for (int64_t j = hi; j <= nj; ++j) {
          const int64_t c = c0 + 2 * j;
          e[r][j] = c >= 0 && c < a.w ? xr[c0 + 2 * j] : 0.f;
          o[r][j] = c + 1 >= 0 && c + 1 < a.w ? xr[c0 + 2 * j + 1] : 0.f;
        }
      }
      // columns of the patch: 0 = e[j], 1 = o[j], 2 = e[j+1], 3 = o[j+1]
      for (int col = 0; col < 4; ++col) {
        const int64_t sh = col / 2;
        const float* d0 = (col % 2 ? o[0] : e[0]) + sh;
        const float* d1 = (col % 2 ? o[1] : e[1]) + sh;
        const float* d2 = (col % 2 ? o[2] : e[2]) + sh;
        const float* d3 = (col % 2 ? o[3] : e[3]) + sh;
        for (int64_t j = 0; j < nj; ++j) {
          t[0][col][j] = d0[j] - d2[j];
          t[1][col][j] = d1[j] + d2[j];
          t[2][col][j] = d2[j] - d1[j];
          t[3][col][j] = d1[j] - d3[j];
        }
      }
      float* v = a.v + u * a.TW + j0;
      for (int i = 0; i < 4; ++i) {  // V[i][*] = t[i] B
        float* v0 = v + (4 * i + 0) * a.xi_stride;
        float* v1 = v + (4 * i + 1) * a.xi_stride;
        float* v2 = v + (4 * i + 2) * a.xi_stride;
        float* v3 = v + (4 * i + 3) * a.xi_stride;
        for (int64_t j = 0; j < nj; ++j) {
          v0[j] = t[i][0][j] - t[i][2][j];
          v1[j] = t[i][1][j] + t[i][2][j];
          v2[j] = t[i][2][j] - t[i][1][j];
          v3[j] = t[i][1][j] - t[i][3][j];
        }
      }
    }
  }
}

static void wino_out(const WinoArgs& a) {
  float s[2][4][kWinoChunk];  // A^T m: [output row][m column][tile]
  float r[2][2][kWinoChunk];  // [output row][output column parity][tile]
  for (int64_t u = 0; u < a.units; ++u) {
    const int64_t tr = a.th0 + u, th = tr % a.TH;
    float* y = a.y + (tr / a.TH) * a.plane;
    for (int64_t j0 = 0; j0 < a.TW; j0 += kWinoChunk) {
      const int64_t nj = std::min(kWinoChunk, a.TW - j0);
      const float* m = a.v + u * a.TW + j0;
      for (int col = 0; col < 4; ++col) {
        const float* m0 = m + (0 + col) * a.xi_stride;
        const float* m1 = m + (4 + col) * a.xi_stride;
        const float* m2 = m + (8 + col) * a.xi_stride;
        const float* m3 = m + (12 + col) * a.xi_stride;
        for (int64_t j = 0; j < nj; ++j) {
          s[0][col][j] = m0[j] + m1[j] + m2[j];
          s[1][col][j] = m1[j] - m2[j] - m3[j];
        }
      }
      for (int i = 0; i < 2; ++i)
        for (int64_t j = 0; j < nj; ++j) {
          r[i][0][j] = a.bias + (s[i][0][j] + s[i][1][j] + s[i][2][j]);
          r[i][1][j] = a.bias + (s[i][1][j] - s[i][2][j] - s[i][3][j]);
        }
      for (int i = 0; i < 2; ++i) {
        const int64_t oh = 2 * th + i;
        if (oh >= a.h) break;
        float* yr = y + oh * a.w;
        const int64_t c0 = 2 * j0, c1 = std::min(a.w, 2 * (j0 + nj));
        for (int64_t c = c0; c < c1; ++c) yr[c] = r[i][c & 1][(c - c0) >> 1];
      }
    }
  }
}

}  // namespace conv_detail
}  // namespace pyengine
