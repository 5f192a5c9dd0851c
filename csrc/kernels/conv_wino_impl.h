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

// --- Winograd F(4x4, 3x3) (same WinoArgs; tiles of 4x4 outputs, 36 values
// per tile, xi = 6i + l). Interpolation points 0, +-1, +-2:
//
//   B^T = [4  0 -5  0 1 0]   A^T = [1 1  1 1  1 0]
//         [0 -4 -4  1 1 0]         [0 1 -1 2 -2 0]
//         [0  4 -4 -1 1 0]         [0 1  1 4  4 0]
//         [0 -2 -1  2 1 0]         [0 1 -1 8 -8 1]
//         [0  2 -1 -2 1 0]
//         [0  4  0 -5 0 1]
// Tile j of a tile row reads input columns 4j..4j+5: each input row is copied
// (zero-padded) to a line and split into its 4 column phases, so patch
// column k of tile j is phase k % 4 at j + k / 4 and every loop over tiles is
// unit-stride (vectorized over 8 or 16 tiles).
namespace pyengine {
namespace conv_detail {

constexpr int64_t kWino43Chunk = 32;  // tiles per chunk (stack buffers)

// r0..r5 = B^T (d0..d5), elementwise over n values.
// (__restrict: the outputs never overlap the inputs, so the loop vectorizes
// without run-time overlap checks between twelve pointers.)
static inline void wino43_bt(const float* __restrict d0, const float* __restrict d1, const float* __restrict d2,
                             const float* __restrict d3, const float* __restrict d4, const float* __restrict d5,
                             float* __restrict r0, float* __restrict r1, float* __restrict r2, float* __restrict r3,
                             float* __restrict r4, float* __restrict r5, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float a1 = d1[j], a2 = d2[j], a3 = d3[j], a4 = d4[j];
    const float p = a4 - 4.f * a2, q = a3 - 4.f * a1;  // rows 1, 2: p + q, p - q
    const float s = a4 - a2, t = 2.f * (a3 - a1);      // rows 3, 4: s + t, s - t
    r0[j] = 4.f * d0[j] - 5.f * a2 + a4;
    r1[j] = p + q;
    r2[j] = p - q;
    r3[j] = s + t;
    r4[j] = s - t;
    r5[j] = 4.f * a1 - 5.f * a3 + d5[j];
  }
}

static void wino43_in(const WinoArgs& a) {
  float line[4 * (kWino43Chunk + 1)];
  float ph[6][4][kWino43Chunk + 1];  // [input row][column phase][tile]
  float t[6][6][kWino43Chunk];       // B^T d: [row i][patch column][tile]
  for (int64_t u = 0; u < a.units; ++u) {
    const int64_t tr = a.th0 + u, th = tr % a.TH;
    const float* x = a.x + (tr / a.TH) * a.plane;
    for (int64_t j0 = 0; j0 < a.TW; j0 += kWino43Chunk) {
      const int64_t nj = std::min(kWino43Chunk, a.TW - j0), len = 4 * (nj + 1);
      const int64_t c0 = 4 * j0 - a.pw;  // input column of line[0]
      for (int r = 0; r < 6; ++r) {
        const int64_t ih = 4 * th + r - a.ph;
        if (ih < 0 || ih >= a.h) {
          for (int q = 0; q < 4; ++q)
            for (int64_t j = 0; j <= nj; ++j) ph[r][q][j] = 0.f;
          continue;
        }
        const float* xr = x + ih * a.w;
        const int64_t lo = std::clamp<int64_t>(-c0, 0, len), hi = std::clamp<int64_t>(a.w - c0, lo, len);
        for (int64_t i = 0; i < lo; ++i) line[i] = 0.f;
        for (int64_t i = lo; i < hi; ++i) line[i] = xr[c0 + i];
        for (int64_t i = hi; i < len; ++i) line[i] = 0.f;
        for (int q = 0; q < 4; ++q)
          for (int64_t j = 0; j <= nj; ++j) ph[r][q][j] = line[4 * j + q];
      }
      for (int k = 0; k < 6; ++k) {  // columns of the patch
        const int q = k % 4, sh = k / 4;
        wino43_bt(ph[0][q] + sh, ph[1][q] + sh, ph[2][q] + sh, ph[3][q] + sh, ph[4][q] + sh, ph[5][q] + sh,
                  t[0][k], t[1][k], t[2][k], t[3][k], t[4][k], t[5][k], nj);
      }
      float* v = a.v + u * a.TW + j0;
      for (int i = 0; i < 6; ++i) {  // V[i][*] = t[i] B
        float* vi = v + 6 * i * a.xi_stride;
        const int64_t s = a.xi_stride;
        wino43_bt(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], vi, vi + s, vi + 2 * s, vi + 3 * s,
                  vi + 4 * s, vi + 5 * s, nj);
      }
    }
  }
}

// r0..r3 = A^T (m0..m5) (+ bias), elementwise over n values.
static inline void wino43_at(const float* __restrict m0, const float* __restrict m1, const float* __restrict m2,
                             const float* __restrict m3, const float* __restrict m4, const float* __restrict m5,
                             float* __restrict r0, float* __restrict r1, float* __restrict r2, float* __restrict r3,
                             float bias, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float p = m1[j] + m2[j], q = m1[j] - m2[j], s = m3[j] + m4[j], t = m3[j] - m4[j];
    r0[j] = bias + (m0[j] + p + s);
    r1[j] = bias + (q + 2.f * t);
    r2[j] = bias + (p + 4.f * s);
    r3[j] = bias + (q + 8.f * t + m5[j]);
  }
}

static void wino43_out(const WinoArgs& a) {
  float s[4][6][kWino43Chunk];  // A^T m: [output row][m column][tile]
  float r[4][4][kWino43Chunk];  // [output row][output column mod 4][tile]
  for (int64_t u = 0; u < a.units; ++u) {
    const int64_t tr = a.th0 + u, th = tr % a.TH;
    float* y = a.y + (tr / a.TH) * a.plane;
    for (int64_t j0 = 0; j0 < a.TW; j0 += kWino43Chunk) {
      const int64_t nj = std::min(kWino43Chunk, a.TW - j0);
      const float* m = a.v + u * a.TW + j0;
      const int64_t st = a.xi_stride;
      for (int l = 0; l < 6; ++l) {
        const float* ml = m + l * st;
        wino43_at(ml, ml + 6 * st, ml + 12 * st, ml + 18 * st, ml + 24 * st, ml + 30 * st, s[0][l], s[1][l], s[2][l],
                  s[3][l], 0.f, nj);
      }
      for (int i = 0; i < 4; ++i)
        wino43_at(s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5], r[i][0], r[i][1], r[i][2], r[i][3], a.bias,
                  nj);
      for (int i = 0; i < 4; ++i) {
        const int64_t oh = 4 * th + i;
        if (oh >= a.h) break;
        float* yr = y + oh * a.w;
        const int64_t cb = 4 * j0, ce = std::min(a.w, 4 * (j0 + nj));
        for (int64_t c = cb; c < ce; ++c) yr[c] = r[i][c & 3][(c - cb) >> 2];
      }
    }
  }
}

}  // namespace conv_detail
}  // namespace pyengine
