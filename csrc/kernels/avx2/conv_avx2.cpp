// AVX2/FMA depthwise convolution.
//
// 2-D planes (1-D lifted) with a work space: the input plane is copied once,
// zero-padded and split into stride phases (kernels/conv_dw.h), then output
// rows are computed two at a time, 32 columns per step (the 1..31 left in
// one block, last vector masked), accumulators in registers: every tap is one broadcast weight and
// a contiguous load per vector, no bounds checks. Taps are accumulated in the
// reference order (bias, then kh, then kw), one FMA each.
// Anything else (3-D windows, no work space) uses the shared plain loop of
// kernels/conv_dw_impl.h compiled with -mavx2 -mfma.
#include <immintrin.h>

#include <algorithm>

#include "kernels/conv_dw.h"
#include "kernels/conv_dw_impl.h"
#include "kernels/conv_wino_impl.h"

namespace pyengine {

namespace {

inline __m256i tail_mask(int64_t n) {  // lanes [0, n) on, n in 1..8
  alignas(32) static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

// dst[0, n) = 0 without a library call (rows here are tens of floats).
inline void zero(float* dst, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(dst + j, _mm256_setzero_ps());
  for (; j < n; ++j) dst[j] = 0.f;
}

// Writes the padded, phase-split copy of plane x into p (see conv_dw.h).
void pad_plane(const DwConvArgs& a, int64_t rows, int64_t rw, float* p) {
  const int64_t IH = a.in[1], IW = a.in[2], s = a.s[2], ph = a.pb[1], pw = a.pb[2];
  for (int64_t r = 0; r < rows; ++r) {
    float* dst = p + r * s * rw;
    const int64_t ih = r - ph;
    if (ih < 0 || ih >= IH) {
      zero(dst, s * rw);
      continue;
    }
    const float* xr = a.x + ih * IW;
    for (int64_t q = 0; q < s; ++q, dst += rw) {
      // phase column j holds input column j*s + q - pw
      const int64_t lo = std::min(rw, std::max<int64_t>(0, (pw - q + s - 1) / s));
      const int64_t hi = std::max(lo, std::min(rw, IW - 1 + pw - q < 0 ? 0 : (IW - 1 + pw - q) / s + 1));
      zero(dst, lo);
      int64_t j = lo;
      if (s == 1) {
        for (; j + 8 <= hi; j += 8) _mm256_storeu_ps(dst + j, _mm256_loadu_ps(xr + j - pw));
      } else if (s == 2) {  // 8 even (q = 0) or odd (q = 1) columns out of 16 loaded
        for (; j + 8 <= hi && 2 * j + q - pw + 16 <= IW; j += 8) {
          const float* src = xr + 2 * j + q - pw;
          const __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(src), _mm256_loadu_ps(src + 8), _MM_SHUFFLE(2, 0, 2, 0));
          _mm256_storeu_ps(dst + j, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0))));
        }
      }
      for (; j < hi; ++j) dst[j] = xr[j * s + q - pw];
      zero(dst + hi, rw - hi);
    }
  }
}

// R output rows x NV vectors of 8 columns from column ow: R*NV independent
// accumulators (a single row of one vector would wait on each FMA's
// latency). Loads may run past OW up to the next multiple of 8 (inside the
// padded row); stores stop at OW.
template <int NT, int NV, int R>
void rows_block(const float* const* base, float* const* yr, int64_t ow, int64_t OW, const int64_t* tap_off,
                int64_t ntaps, const __m256* wv, const float* w, __m256 b) {
  const int64_t nt = NT > 0 ? NT : ntaps;
  __m256 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = b;
  for (int64_t t = 0; t < nt; ++t) {
    const __m256 wt = NT > 0 ? wv[t] : _mm256_broadcast_ss(w + t);
    for (int r = 0; r < R; ++r) {
      const float* src = base[r] + tap_off[t] + ow;
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(wt, _mm256_loadu_ps(src + 8 * v), acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) {
      const int64_t col = ow + 8 * v;
      if (col + 8 <= OW) _mm256_storeu_ps(yr[r] + col, acc[r][v]);
      else _mm256_maskstore_ps(yr[r] + col, tail_mask(OW - col), acc[r][v]);
    }
}

// All output rows of a plane from its padded copy p; output row oh reads
// p + oh*row_step + tap_off[t] + ow for tap t. Two rows at a time, 32
// columns then the 1..31 left in one block. NT > 0: the tap count is known
// at compile time (the tap loop unrolls, weights stay in registers).
template <int NT>
void plane_rows(const float* p, int64_t row_step, const int64_t* tap_off, int64_t ntaps, const float* w,
                float bias, float* y, int64_t OH, int64_t OW) {
  __m256 wv[NT > 0 ? NT : 1] = {};
  if (NT > 0)
    for (int t = 0; t < NT; ++t) wv[t] = _mm256_broadcast_ss(w + t);
  const __m256 b = _mm256_set1_ps(bias);
  for (int64_t oh = 0; oh < OH; oh += 2) {
    const bool two = oh + 1 < OH;
    const float* base[2] = {p + oh * row_step, p + (oh + (two ? 1 : 0)) * row_step};
    float* yr[2] = {y + oh * OW, y + (oh + (two ? 1 : 0)) * OW};
    int64_t ow = 0;
    for (; ow + 32 <= OW; ow += 32) {
      if (two) rows_block<NT, 4, 2>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
      else rows_block<NT, 4, 1>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
    }
    switch ((OW - ow + 7) / 8) {
      case 0: break;
      case 1:
        if (two) rows_block<NT, 1, 2>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
        else rows_block<NT, 1, 1>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
        break;
      case 2:
        if (two) rows_block<NT, 2, 2>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
        else rows_block<NT, 2, 1>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
        break;
      case 3:
        if (two) rows_block<NT, 3, 2>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
        else rows_block<NT, 3, 1>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
        break;
      default:
        if (two) rows_block<NT, 4, 2>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
        else rows_block<NT, 4, 1>(base, yr, ow, OW, tap_off, ntaps, wv, w, b);
        break;
    }
  }
}

constexpr int64_t kMaxTaps = 64;

void dw_one_plane(const DwConvArgs& a) {
  const int64_t KH = a.k[1], KW = a.k[2];
  if (!a.scratch || a.in[0] != 1 || a.out[0] != 1 || a.k[0] != 1 || KH * KW > kMaxTaps)
    return conv_detail::dw_plane(a);
  const int64_t OH = a.out[1], OW = a.out[2];
  const int64_t sh = a.s[1], sw = a.s[2], dh = a.d[1], dw = a.d[2];
  if (OH <= 0 || OW <= 0) return;
  const int64_t rows = conv_dw_padded_rows(OH, KH, sh, dh);
  const int64_t rw = conv_dw_phase_width(OW, KW, sw, dw);
  float* p = a.scratch;
  pad_plane(a, rows, rw, p);
  const int64_t ntaps = KH * KW;
  int64_t tap_off[kMaxTaps];  // offset of tap (kh, kw) from the output row's first padded row
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t c = kw * dw;
      tap_off[kh * KW + kw] = kh * dh * sw * rw + (c % sw) * rw + c / sw;
    }
  const int64_t step = sh * sw * rw;
  if (ntaps == 9) plane_rows<9>(p, step, tap_off, ntaps, a.w, a.bias, a.y, OH, OW);
  else if (ntaps == 25) plane_rows<25>(p, step, tap_off, ntaps, a.w, a.bias, a.y, OH, OW);
  else plane_rows<0>(p, step, tap_off, ntaps, a.w, a.bias, a.y, OH, OW);
  conv_detail::dw_activate(a.y, OH * OW, a.act);
}

}  // namespace

void fill_conv_avx2(KernelTable& t) {
  t.conv_dw_plane = [](const DwConvArgs& a) { conv_detail::dw_each_plane(a, dw_one_plane); };
  t.conv_wino_in = [](const WinoArgs& a) { conv_detail::wino_in(a); };
  t.conv_wino_out = [](const WinoArgs& a) { conv_detail::wino_out(a); };
}

}  // namespace pyengine
