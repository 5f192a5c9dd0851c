// AVX-512 depthwise convolution of one 2-D plane (1-D lifted), straight from
// the NCHW input: no padded copy. Masked loads (which never fault on masked-
// out lanes) supply the zero padding at the left/right edges, and a row
// outside the input gets an all-zero mask. Stride 1 along W loads 16
// consecutive columns per tap; stride 2 loads 32 and keeps the even ones
// (one permute). Outputs are computed 16 columns x kRows rows at a time, so
// there are kRows independent FMA chains even when a row is a single vector
// (7x7 and 14x14 planes, where the work per plane is small and the AVX2
// kernel's padded copy cost more than the taps). The bias starts each
// accumulator, taps are added in the reference order (kh, then kw) with one
// FMA each, and Relu / LeakyRelu / Clip are applied before the store.
// Other strides along W, 3-D windows and very wide rows use the AVX2 kernel.
#include <immintrin.h>

#include <algorithm>

#include "kernels/dispatch.h"

namespace pyengine {

namespace {

constexpr int kRows = 8;         // output rows per block (independent accumulators)
constexpr int64_t kMaxTaps = 64;  // KH * KW with the weights broadcast once per plane
constexpr int64_t kMaxEntries = 1024;  // chunks * KW of the per-plane offset/mask table

ConvDwPlaneFn g_fallback = nullptr;  // the AVX2 kernel, set by fill_conv_avx512

// Lanes [0, n) for n in (-inf, 16] (<= 0: none).
inline __mmask16 lanes(int64_t n) {
  return n <= 0 ? 0 : n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
}

// Lanes of 16 consecutive columns starting at `col` inside [0, iw).
inline __mmask16 cols_in(int64_t col, int64_t iw) {
  const int64_t lo = std::max<int64_t>(0, -col), hi = std::min<int64_t>(16, iw - col);
  return hi <= lo ? 0 : static_cast<__mmask16>(lanes(hi) & ~lanes(lo));
}

inline __m512 activate(__m512 v, const Activation& a, __m512 p0, __m512 p1) {
  switch (a.kind) {
    case Activation::Relu: return _mm512_max_ps(_mm512_setzero_ps(), v);  // NaN passes through
    case Activation::Clip: return _mm512_min_ps(p1, _mm512_max_ps(p0, v));
    case Activation::LeakyRelu:
      return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), v, p0);
    default: return v;
  }
}

// Per plane: for chunk c (output columns 16c..16c+15) and tap column kw, the
// first input column read (relative to the row start) and the load masks.
struct ColTable {
  int64_t off[kMaxEntries];
  __mmask16 m0[kMaxEntries], m1[kMaxEntries];
};

// One block of kRows output rows [oh0, oh0 + kRows) (rows >= OH computed but
// not stored) for every 16-column chunk. S: stride along W (1 or 2).
template <int S, int NT>
void block_rows(const DwConvArgs& a, const ColTable& ct, const __m512* wv, int64_t oh0, int64_t nchunks) {
  const int64_t IH = a.in[1], IW = a.in[2], OH = a.out[1], OW = a.out[2];
  const int64_t KH = a.k[1], KW = a.k[2], sh = a.s[1], dh = a.d[1], ph = a.pb[1];
  const __m512 bias = _mm512_set1_ps(a.bias);
  const __m512 p0 = _mm512_set1_ps(a.act.alpha), p1 = _mm512_set1_ps(a.act.beta);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t c = 0; c < nchunks; ++c) {
    __m512 acc[kRows];
    for (int r = 0; r < kRows; ++r) acc[r] = bias;
    for (int64_t kh = 0; kh < KH; ++kh) {
      const float* row[kRows];
      __mmask16 rm[kRows];  // all lanes when the input row exists, none otherwise
      for (int r = 0; r < kRows; ++r) {
        const int64_t ih = (oh0 + r) * sh - ph + kh * dh;
        const bool ok = ih >= 0 && ih < IH;
        row[r] = a.x + (ok ? ih : 0) * IW;
        rm[r] = ok ? static_cast<__mmask16>(0xFFFF) : 0;
      }
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t e = c * KW + kw;
        const int64_t t = kh * KW + kw;
        const __m512 w = NT > 0 ? wv[t] : _mm512_set1_ps(a.w[t]);
        const int64_t off = ct.off[e];
        const __mmask16 m0 = ct.m0[e];
        if (S == 1) {
          for (int r = 0; r < kRows; ++r)
            acc[r] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m0 & rm[r], row[r] + off), acc[r]);
        } else {
          const __mmask16 m1 = ct.m1[e];
          for (int r = 0; r < kRows; ++r) {
            const __m512 lo = _mm512_maskz_loadu_ps(m0 & rm[r], row[r] + off);
            const __m512 hi = _mm512_maskz_loadu_ps(m1 & rm[r], row[r] + off + 16);
            acc[r] = _mm512_fmadd_ps(w, _mm512_permutex2var_ps(lo, even, hi), acc[r]);
          }
        }
      }
    }
    const __mmask16 sm = lanes(OW - c * 16);
    for (int r = 0; r < kRows && oh0 + r < OH; ++r)
      _mm512_mask_storeu_ps(a.y + (oh0 + r) * OW + c * 16, sm, activate(acc[r], a.act, p0, p1));
  }
}

template <int S, int NT>
void plane(const DwConvArgs& a, const ColTable& ct, int64_t nchunks) {
  __m512 wv[NT > 0 ? NT : 1] = {};
  if (NT > 0)
    for (int t = 0; t < NT; ++t) wv[t] = _mm512_set1_ps(a.w[t]);
  for (int64_t oh0 = 0; oh0 < a.out[1]; oh0 += kRows) block_rows<S, NT>(a, ct, wv, oh0, nchunks);
}

void conv_dw_plane_f32_avx512(const DwConvArgs& a) {
  const int64_t KH = a.k[1], KW = a.k[2], OH = a.out[1], OW = a.out[2], IW = a.in[2];
  const int64_t S = a.s[2], dw = a.d[2], pw = a.pb[2];
  const int64_t nchunks = (OW + 15) / 16;
  if (a.in[0] != 1 || a.out[0] != 1 || a.k[0] != 1 || (S != 1 && S != 2) || KH * KW > kMaxTaps ||
      nchunks * KW > kMaxEntries)
    return g_fallback(a);
  if (OH <= 0 || OW <= 0) return;
  // The table is ~12 KB; built per plane since it costs chunks * KW steps,
  // far less than the plane's OH * chunks * KH * KW FMAs.
  ColTable ct;
  for (int64_t c = 0; c < nchunks; ++c) {
    const __mmask16 out = lanes(OW - c * 16);
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t e = c * KW + kw;
      const int64_t col = c * 16 * S + kw * dw - pw;
      ct.off[e] = col;
      if (S == 1) {
        ct.m0[e] = cols_in(col, IW) & out;
        ct.m1[e] = 0;
      } else {  // column col + j, j in [0, 32), feeds lane j / 2 when j is even
        uint32_t want = 0;
        for (int l = 0; l < 16; ++l)
          if (out >> l & 1) want |= 1u << (2 * l);
        ct.m0[e] = cols_in(col, IW) & static_cast<__mmask16>(want);
        ct.m1[e] = cols_in(col + 16, IW) & static_cast<__mmask16>(want >> 16);
      }
    }
  }
  const int64_t nt = KH * KW;
  if (S == 1) {
    if (nt == 9) plane<1, 9>(a, ct, nchunks);
    else if (nt == 25) plane<1, 25>(a, ct, nchunks);
    else plane<1, 0>(a, ct, nchunks);
  } else {
    if (nt == 9) plane<2, 9>(a, ct, nchunks);
    else if (nt == 25) plane<2, 25>(a, ct, nchunks);
    else plane<2, 0>(a, ct, nchunks);
  }
}

}  // namespace

void fill_conv_avx512(KernelTable& t) {
  g_fallback = t.conv_dw_plane;  // the AVX2 kernel (the table starts as the AVX2 one)
  t.conv_dw_plane = conv_dw_plane_f32_avx512;
}

}  // namespace pyengine
