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
// That is the row-by-row path (pool_plane), kept for wide rows (ResNet's
// 112x112 stem) and windows as large as the plane. Short rows take the
// strip path (pool_plane_strips: each input row reduced horizontally once)
// and rows of at most 8 outputs the pair path (pool_plane_pairs: two output
// rows per register); see pool2d_f32_avx512 for the choice.
#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/dispatch.h"

namespace pyengine {

namespace {

// Lanes l of a 16-column vector starting at column c with 0 <= c + l < n.
inline __mmask16 col_mask(int64_t c, int64_t n) { return avx512::lanes_between(-c, n - c); }

// Rows r0 .. r1-1 (r1 > r0) of the plane reduced at columns [c, c + 16).
template <bool kAvg>
inline __m512 column(const float* x, int64_t iw, int64_t r0, int64_t r1, int64_t c, __mmask16 m, __m512 fill) {
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

// Asks for the next plane's input while this one is pooled (small planes: the
// hardware prefetcher ramps up again on every plane, and the input of a pool
// in a model is usually not in cache).
inline void prefetch_plane(const float* x, int64_t n) {
  if (n > 4096) return;
  const char* p = reinterpret_cast<const char*>(x);
  for (int64_t b = 0; b < n * static_cast<int64_t>(sizeof(float)); b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
}

template <bool kAvg>
inline __m512 combine(__m512 acc, __m512 v) {
  return kAvg ? _mm512_add_ps(acc, v) : _mm512_max_ps(v, acc);
}

template <bool kAvg>
void pool_plane(const Pool2dArgs& a, const float* x, float* y, const __mmask16 (*masks)[4], const __m512i* shift,
                const __m512i* deint) {
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
    // the rows the output row after next adds (a large plane's input streams from memory)
    for (int64_t r = std::max(r1, h0 + a.kh + a.sh); r < std::min(h0 + a.kh + 2 * a.sh, IH); ++r) {
      const char* q = reinterpret_cast<const char*>(x + r * IW);
      for (int64_t b = 0; b < IW * static_cast<int64_t>(sizeof(float)); b += 64) _mm_prefetch(q + b, _MM_HINT_T0);
    }
    const __m512 hdiv = _mm512_set1_ps(kAvg ? a.cnt_h[oh] : 0.f);
    if (a.sw == 1) {
      int64_t c = -a.pw;
      __m512 cur = column<kAvg>(x, IW, r0, r1, c, masks[0][0], fill);
      for (int64_t ch = 0; ch < chunks; ++ch, c += 16) {
        const __m512 next = KW > 1 ? column<kAvg>(x, IW, r0, r1, c + 16, masks[ch][1], fill) : fill;
        __m512 acc = cur;
        for (int64_t j = 1; j < KW; ++j) acc = combine<kAvg>(acc, _mm512_permutex2var_ps(cur, shift[j], next));
        if (kAvg) acc = _mm512_div_ps(acc, _mm512_mul_ps(hdiv, _mm512_loadu_ps(a.cnt_w + ch * 16)));
        _mm512_mask_storeu_ps(y + ch * 16, ch + 1 < chunks ? static_cast<__mmask16>(0xFFFF) : tail, acc);
        cur = next;
      }
    } else {  // stride 2
      int64_t c = -a.pw;
      __m512 A = column<kAvg>(x, IW, r0, r1, c, masks[0][0], fill);
      __m512 B = column<kAvg>(x, IW, r0, r1, c + 16, masks[0][1], fill);
      __m512 E = _mm512_permutex2var_ps(A, deint[0], B), O = _mm512_permutex2var_ps(A, deint[1], B);
      for (int64_t ch = 0; ch < chunks; ++ch, c += 32) {
        __m512 En = fill, On = fill;  // the next 16 outputs' columns (none past the row's end)
        if ((masks[ch][2] | masks[ch][3]) != 0) {
          A = column<kAvg>(x, IW, r0, r1, c + 32, masks[ch][2], fill);
          B = column<kAvg>(x, IW, r0, r1, c + 48, masks[ch][3], fill);
          En = _mm512_permutex2var_ps(A, deint[0], B);
          On = _mm512_permutex2var_ps(A, deint[1], B);
        }
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

// Strip path: for each group of 16 output columns, every input row is first
// reduced horizontally (one register per row, into h), then each output
// row reduces kh of those registers. Each input vector is loaded once per
// plane and each horizontal reduction done once per input row, which is what
// small planes (6x6 .. 27x27) need: there a row is one or two vectors and
// the per-row overhead of the row-by-row path dominates. h has ph rows of
// padding above the input rows and fill rows below them (set by the caller).
constexpr int64_t kMaxStripRows = 160;
constexpr int64_t kMaxStrips = 2;  // wider rows take the row-by-row path (faster there)
constexpr int64_t kMaxChunks = kPool2dMaxWidth / 16;

inline const float* at(const float* row, int64_t c) {  // row + c, c may be negative (masked loads only)
  return reinterpret_cast<const float*>(reinterpret_cast<intptr_t>(row) +
                                        static_cast<intptr_t>(c) * static_cast<intptr_t>(sizeof(float)));
}

template <bool kAvg>
void pool_plane_strips(const Pool2dArgs& a, const float* x, float* y, __m512* h, const __mmask16 (*masks)[4],
                       const __m512i* shift, const __m512i* deint) {
  const __m512 fill = _mm512_set1_ps(kAvg ? 0.f : std::numeric_limits<float>::lowest());
  const int64_t IH = a.ih, IW = a.iw, OH = a.oh, OW = a.ow, KW = a.kw, KH = a.kh, SH = a.sh;
  const int64_t chunks = (OW + 15) / 16;
  const __mmask16 tail = static_cast<__mmask16>(OW % 16 ? (1u << (OW % 16)) - 1u : 0xFFFFu);
  __m512* hr = h + a.ph;
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const __mmask16* m = masks[ch];
    if (a.sw == 1) {
      const int64_t c = ch * 16 - a.pw;
      const float* p = at(x, c);
      if (KW == 1) {
        for (int64_t r = 0; r < IH; ++r, p += IW) hr[r] = _mm512_mask_loadu_ps(fill, m[0], p);
      } else {
        for (int64_t r = 0; r < IH; ++r, p += IW) {
          const __m512 cur = _mm512_mask_loadu_ps(fill, m[0], p);
          const __m512 next = _mm512_mask_loadu_ps(fill, m[1], p + 16);
          __m512 acc = cur;
          for (int64_t j = 1; j < KW; ++j) acc = combine<kAvg>(acc, _mm512_permutex2var_ps(cur, shift[j], next));
          hr[r] = acc;
        }
      }
    } else {  // stride 2: E, O the even/odd columns of 32; Ev, Ov those of the next 32
      const int64_t c = ch * 32 - a.pw;
      const float* p = at(x, c);
      for (int64_t r = 0; r < IH; ++r, p += IW) {
        const __m512 A = _mm512_mask_loadu_ps(fill, m[0], p);
        const __m512 B = _mm512_mask_loadu_ps(fill, m[1], p + 16);
        const __m512 E = _mm512_permutex2var_ps(A, deint[0], B);
        __m512 acc = E;
        if (KW > 1) acc = combine<kAvg>(acc, _mm512_permutex2var_ps(A, deint[1], B));
        if (KW == 3) {  // tap 2 is E shifted by one lane: lane 15 is column c + 32
          const __m512 C = _mm512_mask_loadu_ps(fill, m[2], p + 32);
          acc = combine<kAvg>(acc, _mm512_permutex2var_ps(E, shift[1], C));
        } else if (KW > 3) {
          const __m512 O = _mm512_permutex2var_ps(A, deint[1], B);
          const __m512 C = _mm512_mask_loadu_ps(fill, m[2], p + 32);
          const __m512 D = _mm512_mask_loadu_ps(fill, m[3], p + 48);
          const __m512 Ev = _mm512_permutex2var_ps(C, deint[0], D), Ov = _mm512_permutex2var_ps(C, deint[1], D);
          for (int64_t j = 2; j < KW; ++j)
            acc = combine<kAvg>(acc, _mm512_permutex2var_ps(j & 1 ? O : E, shift[j >> 1], j & 1 ? Ov : Ev));
        }
        hr[r] = acc;
      }
    }
    float* yc = y + ch * 16;
    const __mmask16 st = ch + 1 < chunks ? static_cast<__mmask16>(0xFFFF) : tail;
    const __m512 wdiv = kAvg ? _mm512_loadu_ps(a.cnt_w + ch * 16) : fill;
    const __m512* hv = h;
    for (int64_t oh = 0; oh < OH; ++oh, yc += OW, hv += SH) {
      __m512 acc = hv[0];
      for (int64_t i = 1; i < KH; ++i) acc = combine<kAvg>(acc, hv[i]);
      if (kAvg) acc = _mm512_div_ps(acc, _mm512_mul_ps(_mm512_set1_ps(a.cnt_h[oh]), wdiv));
      _mm512_mask_storeu_ps(yc, st, acc);
    }
  }
}

// Pair path, for output rows of at most 8 whose windows span at most 16
// input columns (6x6 and 13x13 planes with 3x3 windows): two output rows
// share one register. Each output row's window rows are reduced into one
// vector (columns -pw .. 15 - pw), and for each tap j one two-source permute
// picks column ow*sw + j of the first row's vector for lanes [0, ow) and of
// the second's for lanes [ow, 2ow); the two rows are stored at once.
template <bool kAvg>
void pool_plane_pairs(const Pool2dArgs& a, const float* x, float* y, __mmask16 m, const __m512i* taps,
                      const float* wdiv2) {
  const __m512 fill = _mm512_set1_ps(kAvg ? 0.f : std::numeric_limits<float>::lowest());
  const int64_t IH = a.ih, IW = a.iw, OH = a.oh, OW = a.ow, KW = a.kw;
  const float* xc = at(x, -a.pw);
  auto rows = [&](int64_t oh) {  // the window rows of output row oh reduced
    const int64_t h0 = oh * a.sh - a.ph;
    const int64_t r0 = std::max<int64_t>(h0, 0), r1 = std::min(h0 + a.kh, IH);
    if (r0 >= r1) return fill;
    return column<kAvg>(xc, IW, r0, r1, 0, m, fill);
  };
  const __mmask16 both = static_cast<__mmask16>((1u << (2 * OW)) - 1u);
  const __mmask16 one = static_cast<__mmask16>((1u << OW) - 1u);
  const __m512 wdiv = kAvg ? _mm512_loadu_ps(wdiv2) : fill;
  for (int64_t oh = 0; oh < OH; oh += 2, y += 2 * OW) {
    const __m512 v0 = rows(oh);
    const __m512 v1 = oh + 1 < OH ? rows(oh + 1) : fill;
    __m512 acc = _mm512_permutex2var_ps(v0, taps[0], v1);
    for (int64_t j = 1; j < KW; ++j) acc = combine<kAvg>(acc, _mm512_permutex2var_ps(v0, taps[j], v1));
    if (kAvg) {
      const float c1 = oh + 1 < OH ? a.cnt_h[oh + 1] : 1.f;
      const __m512 hdiv = _mm512_mask_blend_ps(one, _mm512_set1_ps(c1), _mm512_set1_ps(a.cnt_h[oh]));
      acc = _mm512_div_ps(acc, _mm512_mul_ps(hdiv, wdiv));
    }
    _mm512_mask_storeu_ps(y, oh + 1 < OH ? both : one, acc);
  }
}

// body(x, y, avg) for every plane, avg as a compile-time bool (true_type:
// AveragePool), the next plane prefetched while this one is pooled.
template <class F>
void each_plane(const Pool2dArgs& a, F body) {
  for (int64_t p = 0; p < a.planes; ++p) {
    const float* x = a.x + p * a.x_stride;
    float* y = a.y + p * a.y_stride;
    if (p + 1 < a.planes) prefetch_plane(x + a.x_stride, a.x_stride);
    if (a.avg)
      body(x, y, std::true_type{});
    else
      body(x, y, std::false_type{});
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
  if (a.ow <= 8 && (a.ow - 1) * a.sw + a.kw <= 16) {
    alignas(64) int32_t ti[16][16] = {};
    alignas(64) float wdiv2[16];
    for (int64_t j = 0; j < a.kw; ++j)
      for (int64_t l = 0; l < 2 * a.ow; ++l)
        ti[j][l] = static_cast<int32_t>(l < a.ow ? l * a.sw + j : 16 + (l - a.ow) * a.sw + j);
    for (int64_t l = 0; l < 16; ++l) wdiv2[l] = a.avg && l < 2 * a.ow ? a.cnt_w[l % a.ow] : 1.f;
    __m512i taps[16];
    for (int64_t j = 0; j < a.kw; ++j) taps[j] = _mm512_load_si512(ti[j]);
    const __mmask16 m = col_mask(-a.pw, a.iw);
    each_plane(a, [&](const float* x, float* y, auto avg) {
      pool_plane_pairs<decltype(avg)::value>(a, x, y, m, taps, wdiv2);
    });
    return;
  }
  const int64_t chunks = (a.ow + 15) / 16;
  __mmask16 masks[kMaxChunks][4];  // per group of 16 outputs: its input vectors' valid lanes
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int64_t c = ch * 16 * a.sw - a.pw;
    for (int q = 0; q < 4; ++q) masks[ch][q] = col_mask(c + 16 * q, a.iw);
  }
  // Strips for short rows when they cost fewer vector operations per group of
  // 16 outputs (a load and kw - 1 taps per input row, kh per output row)
  // than row by row (kh * sw loads, kw - 1 taps and ~4 of overhead per
  // output row): yes for 3x3 windows, no for a 7x7 window on a 7x7 plane.
  const int64_t hrows = std::max(a.ph + a.ih, (a.oh - 1) * a.sh + a.kh);
  const int64_t strip_cost = a.ih * a.kw + a.oh * a.kh, row_cost = a.oh * (a.kh * a.sw + a.kw + 3);
  if (hrows <= kMaxStripRows && chunks <= kMaxStrips && strip_cost < row_cost) {
    alignas(64) __m512 h[kMaxStripRows];
    const __m512 fill = _mm512_set1_ps(a.avg ? 0.f : std::numeric_limits<float>::lowest());
    for (int64_t r = 0; r < a.ph; ++r) h[r] = fill;
    for (int64_t r = a.ph + a.ih; r < hrows; ++r) h[r] = fill;
    each_plane(a, [&](const float* x, float* y, auto avg) {
      pool_plane_strips<decltype(avg)::value>(a, x, y, h, masks, shift, deint);
    });
    return;
  }
  each_plane(a, [&](const float* x, float* y, auto avg) {
    pool_plane<decltype(avg)::value>(a, x, y, masks, shift, deint);
  });
}

}  // namespace

void fill_pool_avx512(KernelTable& t) { t.pool2d_f32 = pool2d_f32_avx512; }

}  // namespace pyengine
