// AVX-512 depthwise convolution of one 2-D plane (1-D lifted), straight from
// the NCHW input: no padded copy. Masked loads (which never fault on masked-
// out lanes) supply the zero padding at the left/right edges, and a row
// outside the input reads a static row of zeros. Stride 1 along W loads 16
// consecutive columns per tap; stride 2 loads 32 and keeps the even ones
// (one permute). Outputs are computed 16 columns x kRows rows at a time, so
// there are kRows independent FMA chains even when a row is a single vector
// (7x7 and 14x14 planes, where the work per plane is small and the AVX2
// kernel's padded copy cost more than the taps). The bias starts each
// accumulator, taps are added in the reference order (kh, then kw) with one
// FMA each, and Relu / LeakyRelu / Clip are applied before the store.
// Small planes of the same size as their input (7x7, 14x14 with pads k/2)
// take a flat path instead (flat_plane). Stride-1 rows wider than kMaxWidth, other
// strides along W and 3-D windows use the AVX2 kernel.
#include <immintrin.h>

#include <algorithm>
#include <utility>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/dispatch.h"

namespace pyengine {

namespace {

constexpr int kRows = 8;         // output rows per block (independent accumulators)
constexpr int64_t kMaxTaps = 64;  // KH * KW with the weights broadcast once per plane
constexpr int64_t kMaxEntries = 256;  // chunks * KW of the per-call offset/mask table
constexpr int64_t kMaxWidth = 32;     // output columns; wider stride-1 rows go to the AVX2 kernel

// Stands in for input rows above/below the plane: the column masks keep
// every load within [0, IW), so IW <= kZeroWidth is enough.
constexpr int64_t kZeroWidth = 4096;
alignas(64) const float kZeroRow[kZeroWidth] = {};

ConvDwPlaneFn g_fallback = nullptr;  // the AVX2 kernel, set by fill_conv_avx512

using avx512::activate;
using avx512::lanes;

// Lanes of 16 consecutive columns starting at `col` inside [0, iw).
inline __mmask16 cols_in(int64_t col, int64_t iw) { return avx512::lanes_between(-col, iw - col); }

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
      const float* row[kRows];  // rows outside the input read the zero row
      for (int r = 0; r < kRows; ++r) {
        const int64_t ih = (oh0 + r) * sh - ph + kh * dh;
        row[r] = ih >= 0 && ih < IH ? a.x + ih * IW : kZeroRow;
      }
      const __m512* wk = wv + (NT > 0 ? kh * KW : 0);
      const float* wf = a.w + kh * KW;
      const int64_t* off = ct.off + c * KW;
      const __mmask16* m0 = ct.m0 + c * KW;
      const __mmask16* m1 = ct.m1 + c * KW;
      for (int64_t kw = 0; kw < KW; ++kw) {
        const __m512 w = NT > 0 ? wk[kw] : _mm512_set1_ps(wf[kw]);
        const __mmask16 k0 = m0[kw];
        if (S == 1) {
          for (int r = 0; r < kRows; ++r)
            acc[r] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(k0, row[r] + off[kw]), acc[r]);
        } else {
          const __mmask16 k1 = m1[kw];
          for (int r = 0; r < kRows; ++r) {
            const __m512 lo = _mm512_maskz_loadu_ps(k0, row[r] + off[kw]);
            const __m512 hi = _mm512_maskz_loadu_ps(k1, row[r] + off[kw] + 16);
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

// --- Small "same" planes (stride 1, output size == input size, at most
// kFlatMax outputs): the plane is one flat array, output vector v covers
// flat outputs 16v..16v+15 across row ends, and tap t reads the 16 floats at
// flat offset off[t] from them; its mask drops the lanes whose input falls
// in the padding (a column past a row end, a row outside the plane) or past
// the plane. A 7x7 plane is 4 vectors instead of 7 rows of 7 lanes.
constexpr int64_t kFlatMax = 256;   // outputs (16 vectors)
constexpr int64_t kFlatTaps = 25;

struct FlatTable {
  int64_t off[kFlatTaps];
  __mmask16 m[kFlatTaps * (kFlatMax / 16)];  // [tap][vector]
  __mmask16 store[kFlatMax / 16];
};

bool flat_fits(const DwConvArgs& a) {
  return a.s[1] == 1 && a.s[2] == 1 && a.out[1] == a.in[1] && a.out[2] == a.in[2] &&
         a.out[1] * a.out[2] <= kFlatMax && a.k[1] * a.k[2] <= kFlatTaps;
}

void build_flat(const DwConvArgs& a, FlatTable& ft) {
  const int64_t H = a.out[1], W = a.out[2], KW = a.k[2], nt = a.k[1] * KW, P = H * W, nv = (P + 15) / 16;
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t dy = (t / KW) * a.d[1] - a.pb[1], dx = (t % KW) * a.d[2] - a.pb[2];
    ft.off[t] = dy * W + dx;
    for (int64_t v = 0; v < nv; ++v) {
      uint32_t m = 0;
      for (int64_t l = 0; l < 16; ++l) {
        const int64_t q = 16 * v + l, ih = q / W + dy, iw = q % W + dx;
        if (q < P && ih >= 0 && ih < H && iw >= 0 && iw < W) m |= 1u << l;
      }
      ft.m[t * nv + v] = static_cast<__mmask16>(m);
    }
  }
  for (int64_t v = 0; v < nv; ++v) ft.store[v] = lanes(P - 16 * v);
}

template <int NV, int NT>
void flat_plane(const DwConvArgs& a, const FlatTable& ft, int64_t ntaps) {
  const int64_t nt = NT > 0 ? NT : ntaps;
  const __m512 p0 = _mm512_set1_ps(a.act.alpha), p1 = _mm512_set1_ps(a.act.beta);
  __m512 acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = _mm512_set1_ps(a.bias);
  for (int64_t t = 0; t < nt; ++t) {
    const __m512 w = _mm512_set1_ps(a.w[t]);
    const float* src = a.x + ft.off[t];
    const __mmask16* m = ft.m + t * NV;
    for (int v = 0; v < NV; ++v) acc[v] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m[v], src + 16 * v), acc[v]);
  }
  for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(a.y + 16 * v, ft.store[v], activate(acc[v], a.act, p0, p1));
}

using FlatFn = void (*)(const DwConvArgs&, const FlatTable&, int64_t);

template <int NT, int... V>
FlatFn flat_fn(int64_t nv, std::integer_sequence<int, V...>) {
  static const FlatFn fns[] = {flat_plane<V + 1, NT>...};
  return fns[nv - 1];
}

// Plane i of the call, as a one-plane argument set.
inline DwConvArgs plane_args(const DwConvArgs& a, int64_t i) {
  DwConvArgs p = a;
  p.planes = 1;
  p.x = a.x + i * a.x_stride;
  p.w = a.w + i * a.w_stride;
  p.y = a.y + i * a.y_stride;
  p.bias = a.biases ? a.biases[i] : a.bias;
  return p;
}

void conv_dw_plane_f32_avx512(const DwConvArgs& a) {
  const int64_t KH = a.k[1], KW = a.k[2], OH = a.out[1], OW = a.out[2], IW = a.in[2];
  const int64_t S = a.s[2], dw = a.d[2], pw = a.pb[2];
  const int64_t nchunks = (OW + 15) / 16;
  if (a.in[0] != 1 || a.out[0] != 1 || a.k[0] != 1 || (S != 1 && S != 2) || KH * KW > kMaxTaps ||
      nchunks * KW > kMaxEntries || IW > kZeroWidth)
    return g_fallback(a);
  if (OH <= 0 || OW <= 0) return;
  const int64_t nt = KH * KW;
  // Measured (MobileNet planes, this Xeon): for stride-1 rows wider than
  // kMaxWidth (56, 112) the AVX2 kernel was ~10% faster, the 16-wide rows
  // gaining nothing there; for 7..28 this file's kernels were 1.3x to 5x
  // faster. Stride 2 stays here at any width: 96x112x112/2 446 -> 377 us
  // (the AVX2 kernel's phase-split copy of the plane costs a pass).
  const bool flat = flat_fits(a) && a.planes >= 4;
  if (!flat && OW > kMaxWidth && S == 1) return g_fallback(a);
  // The tables cost about as much as a few small planes: built once per call.
  if (flat) {
    FlatTable ft;
    build_flat(a, ft);
    const int64_t nv = (OH * OW + 15) / 16;
    const FlatFn fn = nt == 9 ? flat_fn<9>(nv, std::make_integer_sequence<int, kFlatMax / 16>())
                              : flat_fn<0>(nv, std::make_integer_sequence<int, kFlatMax / 16>());
    for (int64_t i = 0; i < a.planes; ++i) fn(plane_args(a, i), ft, nt);
    return;
  }
  ColTable ct;
  for (int64_t c = 0; c < nchunks; ++c) {
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t e = c * KW + kw;
      const int64_t col = c * 16 * S + kw * dw - pw;
      ct.off[e] = col;
      if (S == 1) {
        ct.m0[e] = cols_in(col, IW) & lanes(OW - c * 16);
        ct.m1[e] = 0;
      } else {  // column col + j, j in [0, 32), feeds lane j / 2 when j is even
        const int64_t n = std::min<int64_t>(16, OW - c * 16);  // output lanes of this chunk
        const uint32_t want = n >= 16 ? 0x55555555u : 0x55555555u & ((1u << (2 * n)) - 1);
        ct.m0[e] = cols_in(col, IW) & static_cast<__mmask16>(want);
        ct.m1[e] = cols_in(col + 16, IW) & static_cast<__mmask16>(want >> 16);
      }
    }
  }
  for (int64_t i = 0; i < a.planes; ++i) {
    const DwConvArgs p = plane_args(a, i);
    if (S == 1) {
      if (nt == 9) plane<1, 9>(p, ct, nchunks);
      else if (nt == 25) plane<1, 25>(p, ct, nchunks);
      else plane<1, 0>(p, ct, nchunks);
    } else {
      if (nt == 9) plane<2, 9>(p, ct, nchunks);
      else if (nt == 25) plane<2, 25>(p, ct, nchunks);
      else plane<2, 0>(p, ct, nchunks);
    }
  }
}

}  // namespace

void fill_conv_avx512(KernelTable& t) {
  g_fallback = t.conv_dw_plane;  // the AVX2 kernel (the table starts as the AVX2 one)
  t.conv_dw_plane = conv_dw_plane_f32_avx512;
}

}  // namespace pyengine
