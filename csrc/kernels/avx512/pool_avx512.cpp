// AVX-512 float32 MaxPool / AveragePool over 2-D windows (Pool2dArgs), in
// registers and straight from the NCHW input: no padded copy, no row buffer.
// Per output row, the kh input rows of its window are reduced elementwise
// 16 columns at a time (vertical pass); masked loads fill the columns
// outside the row with the padding value (lowest float for max, 0 for
// average; masked-out lanes never fault), so the edges need no branches.
// The horizontal pass combines kw neighbours of those column vectors:
// stride 1 takes the window's taps as the vector shifted by j lanes across
// two consecutive column vectors (one two-source permute each); stride 2
// first splits 32 columns into even and odd lanes, then tap j = 2m (+1) is
// the even (odd) vector shifted by m. Each reduced column vector is carried
// to the next 16 outputs, so every input vector is loaded kh times per
// output row. The order of operations is the reference one (rows in order,
// then taps in order), so AveragePool sums are those of the row path.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "kernels/dispatch.h"

namespace pyengine {

namespace {

// Lanes l of a 16-column vector starting at column c with 0 <= c + l < n.
inline __mmask16 col_mask(int64_t c, int64_t n) {
  const int64_t lo = c < 0 ? -c : 0;
  const int64_t hi = std::min<int64_t>(16, n - c);
  if (hi <= lo) return 0;
  const uint32_t m = (hi >= 16 ? 0xFFFFu : ((1u << hi) - 1u)) & ~((1u << lo) - 1u);
  return static_cast<__mmask16>(m);
}

// Rows r0 .. r1-1 (r1 > r0) of the plane reduced at columns [c, c + 16).
template <bool kAvg>
inline __m512 column(const float* x, int64_t iw, int64_t r0, int64_t r1, int64_t c, __m512 fill) {
  const __mmask16 m = col_mask(c, iw);
  if (m == 0) return fill;
  // Pointer arithmetic in integers: c may be negative (masked lanes are not read).
  const float* p = reinterpret_cast<const float*>(reinterpret_cast<intptr_t>(x + r0 * iw) +
                                                  static_cast<intptr_t>(c) * static_cast<intptr_t>(sizeof(float)));
  __m512 v = _mm512_mask_loadu_ps(fill, m, p);
  for (int64_t r = r0 + 1; r < r1; ++r) {
    p += iw;
    const __m512 u = _mm512_mask_loadu_ps(fill, m, p);
    v = kAvg ? _mm512_add_ps(v, u) : _mm512_max_ps(u, v);
  }
  return v;
}

template <bool kAvg>
inline __m512 combine(__m512 acc, __m512 v) {
  return kAvg ? _mm512_add_ps(acc, v) : _mm512_max_ps(v, acc);
}

template <bool kAvg>
void pool_plane(const Pool2dArgs& a, const float* x, float* y, const __m512i* shift, const __m512i* deint) {
  const float padv = kAvg ? 0.f : std::numeric_limits<float>::lowest();
  const __m512 fill = _mm512_set1_ps(padv);
  const int64_t IH = a.ih, IW = a.iw, OH = a.oh, OW = a.ow, KW = a.kw;
  const int64_t chunks = (OW + 15) / 16;
  const __mmask16 tail = static_cast<__mmask16>(OW % 16 ? (1u << (OW % 16)) - 1u : 0xFFFFu);
  for (int64_t oh = 0; oh < OH; ++oh, y += OW) {
    const int64_t h0 = oh * a.sh - a.ph;
    const int64_t r0 = std::max<int64_t>(h0, 0), r1 = std::min(h0 + a.kh, IH);
    if (r0 >= r1) {  // window rows all in the padding
      for (int64_t ow = 0; ow < OW; ++ow) y[ow] = padv;
      continue;
    }
    const __m512 hdiv = _mm512_set1_ps(kAvg ? a.cnt_h[oh] : 0.f);
    if (a.sw == 1) {
      int64_t c = -a.pw;
      __m512 cur = column<kAvg>(x, IW, r0, r1, c, fill);
      for (int64_t ch = 0; ch < chunks; ++ch, c += 16) {
        const __m512 next = KW > 1 ? column<kAvg>(x, IW, r0, r1, c + 16, fill) : fill;
        __m512 acc = cur;
        for (int64_t j = 1; j < KW; ++j) acc = combine<kAvg>(acc, _mm512_permutex2var_ps(cur, shift[j], next));
        if (kAvg) acc = _mm512_div_ps(acc, _mm512_mul_ps(hdiv, _mm512_loadu_ps(a.cnt_w + ch * 16)));
        _mm512_mask_storeu_ps(y + ch * 16, ch + 1 < chunks ? static_cast<__mmask16>(0xFFFF) : tail, acc);
        cur = next;
      }
    } else {  // stride 2
      int64_t c = -a.pw;
      __m512 A = column<kAvg>(x, IW, r0, r1, c, fill);
      __m512 B = column<kAvg>(x, IW, r0, r1, c + 16, fill);
      __m512 E = _mm512_permutex2var_ps(A, deint[0], B), O = _mm512_permutex2var_ps(A, deint[1], B);
      for (int64_t ch = 0; ch < chunks; ++ch, c += 32) {
        A = column<kAvg>(x, IW, r0, r1, c + 32, fill);  // the next 16 outputs' columns
        B = column<kAvg>(x, IW, r0, r1, c + 48, fill);
        const __m512 En = _mm512_permutex2var_ps(A, deint[0], B);
        const __m512 On = _mm512_permutex2var_ps(A, deint[1], B);
        __m512 acc = E;
        if (KW > 1) acc = combine<kAvg>(acc, O);
        for (int64_t j = 2; j < KW; ++j)
          acc = combine<kAvg>(acc, _mm512_permutex2var_ps(j & 1 ? O : E, shift[j >> 1], j & 1 ? On : En));
        if (kAvg) acc = _mm512_div_ps(acc, _mm512_mul_ps(hdiv, _mm512_loadu_ps(a.cnt_w + ch * 16)));
        _mm512_mask_storeu_ps(y + ch * 16, ch + 1 < chunks ? static_cast<__mmask16>(0xFFFF) : tail, acc);
        E = En;
        O = On;
      }
    }
  }
}

void pool2d_f32_avx512(const Pool2dArgs& a) {
  // shift[j]: lanes j .. j+15 of the 32-lane pair (cur, next); deint: even, odd lanes.
  alignas(64) int32_t idx[18][16];
  for (int j = 0; j < 16; ++j)
    for (int l = 0; l < 16; ++l) idx[j][l] = j + l;
  for (int l = 0; l < 16; ++l) {
    idx[16][l] = 2 * l;
    idx[17][l] = 2 * l + 1;
  }
  __m512i shift[16], deint[2];
  for (int j = 0; j < 16; ++j) shift[j] = _mm512_load_si512(idx[j]);
  deint[0] = _mm512_load_si512(idx[16]);
  deint[1] = _mm512_load_si512(idx[17]);
  for (int64_t p = 0; p < a.planes; ++p) {
    const float* x = a.x + p * a.x_stride;
    float* y = a.y + p * a.y_stride;
    if (a.avg)
      pool_plane<true>(a, x, y, shift, deint);
    else
      pool_plane<false>(a, x, y, shift, deint);
  }
}

}  // namespace

void fill_pool_avx512(KernelTable& t) { t.pool2d_f32 = pool2d_f32_avx512; }

}  // namespace pyengine
