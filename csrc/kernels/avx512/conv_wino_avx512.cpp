// AVX-512 Winograd transforms.
//
// Both F(2x2, 3x3) and F(4x4, 3x3) written with intrinsics, 16 tiles per
// vector. The portable
// loops run over the tiles of one tile row, which are only 7 to 14 for the
// ResNet planes (28..56 wide), so the compiler's 16-wide loops never ran and
// everything went through the scalar remainder; here a partial group of tiles
// is one masked vector. Same formulas as the portable code (the rounding may
// differ from the other ISAs where FMAs are contracted differently).
#include <immintrin.h>

#include <algorithm>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/conv_wino_impl.h"

namespace pyengine {

namespace {

using avx512::lanes_between;
constexpr auto lanes_below = avx512::lanes;  // lanes [0, n), n in any range

// --- F(2x2, 3x3), 16 tiles per vector (see conv_wino_impl.h for the math) ---

// B^T (d0..d3) = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
inline void bt4(const __m512 d[4], __m512 r[4]) {
  r[0] = _mm512_sub_ps(d[0], d[2]);
  r[1] = _mm512_add_ps(d[1], d[2]);
  r[2] = _mm512_sub_ps(d[2], d[1]);
  r[3] = _mm512_sub_ps(d[1], d[3]);
}

inline __m512 shift_in(__m512 v, __m512 next) {  // lanes 1..15 of v, then lane 0 of next
  return _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(next), _mm512_castps_si512(v), 1));
}

void conv_wino_in_avx512(const WinoArgs& a) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (int64_t u = 0; u < a.units; ++u) {
    const int64_t tr = a.th0 + u, th = tr % a.TH;
    const float* x = a.x + (tr / a.TH) * a.plane;
    float* v = a.v + u * a.TW;
    for (int64_t jb = 0; jb < a.TW; jb += 16) {
      const __mmask16 valid = lanes_below(a.TW - jb);
      const int64_t c0 = 2 * jb - a.pw;  // input column of tile jb's patch column 0
      __m512 d[4][4];                    // [patch row][patch column]
      for (int r = 0; r < 4; ++r) {
        const int64_t ih = 2 * th + r - a.ph;
        if (ih < 0 || ih >= a.h) {
          for (int k = 0; k < 4; ++k) d[r][k] = _mm512_setzero_ps();
          continue;
        }
        const float* xr = x + ih * a.w;
        __m512 l[3];
        for (int q = 0; q < 3; ++q) {  // columns c0 + [0, 48); of the third only 2 are needed
          const int64_t i0 = 16 * q;
          const __mmask16 m = lanes_between(-c0 - i0, a.w - c0 - i0) & (q == 2 ? 0x3 : 0xFFFF);
          l[q] = m ? _mm512_maskz_loadu_ps(m, xr + (c0 + i0)) : _mm512_setzero_ps();
        }
        const __m512 e = _mm512_permutex2var_ps(l[0], even, l[1]);  // column 2j
        const __m512 o = _mm512_permutex2var_ps(l[0], odd, l[1]);   // column 2j + 1
        d[r][0] = e;
        d[r][1] = o;
        d[r][2] = shift_in(e, l[2]);                                        // column 2j + 2
        d[r][3] = shift_in(o, _mm512_permutexvar_ps(_mm512_set1_epi32(1), l[2]));  // column 2j + 3
      }
      __m512 t[4][4];  // B^T d: [row i][patch column]
      for (int k = 0; k < 4; ++k) {
        const __m512 col[4] = {d[0][k], d[1][k], d[2][k], d[3][k]};
        __m512 r[4];
        bt4(col, r);
        for (int i = 0; i < 4; ++i) t[i][k] = r[i];
      }
      for (int i = 0; i < 4; ++i) {  // V[i][*] = t[i] B
        __m512 r[4];
        bt4(t[i], r);
        for (int l2 = 0; l2 < 4; ++l2) _mm512_mask_storeu_ps(v + (4 * i + l2) * a.xi_stride + jb, valid, r[l2]);
      }
    }
  }
}

void conv_wino_out_avx512(const WinoArgs& a) {
  const __m512 bias = _mm512_set1_ps(a.bias);
  // 128-bit lanes of (lo, hi) = unpack{lo,hi}(r0, r1) in column order
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i second = _mm512_add_epi32(first, _mm512_set1_epi32(8));
  for (int64_t u = 0; u < a.units; ++u) {
    const int64_t tr = a.th0 + u, th = tr % a.TH;
    float* y = a.y + (tr / a.TH) * a.plane;
    for (int64_t jb = 0; jb < a.TW; jb += 16) {
      const __mmask16 valid = lanes_below(a.TW - jb);
      const float* mb = a.v + u * a.TW + jb;
      __m512 s[2][4];  // A^T m: [output row][m column]
      for (int col = 0; col < 4; ++col) {
        const __m512 m0 = _mm512_maskz_loadu_ps(valid, mb + (0 + col) * a.xi_stride);
        const __m512 m1 = _mm512_maskz_loadu_ps(valid, mb + (4 + col) * a.xi_stride);
        const __m512 m2 = _mm512_maskz_loadu_ps(valid, mb + (8 + col) * a.xi_stride);
        const __m512 m3 = _mm512_maskz_loadu_ps(valid, mb + (12 + col) * a.xi_stride);
        s[0][col] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        s[1][col] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
      }
      const int64_t cb = 2 * jb, ce = std::min(a.w, 2 * a.TW);
      for (int i = 0; i < 2; ++i) {
        const int64_t oh = 2 * th + i;
        if (oh >= a.h) break;
        const __m512 r0 = _mm512_add_ps(bias, _mm512_add_ps(_mm512_add_ps(s[i][0], s[i][1]), s[i][2]));
        const __m512 r1 = _mm512_add_ps(bias, _mm512_sub_ps(_mm512_sub_ps(s[i][1], s[i][2]), s[i][3]));
        const __m512 lo = _mm512_unpacklo_ps(r0, r1), hi = _mm512_unpackhi_ps(r0, r1);
        const __m512 out[2] = {_mm512_permutex2var_ps(lo, first, hi), _mm512_permutex2var_ps(lo, second, hi)};
        float* yr = y + oh * a.w;
        for (int q = 0; q < 2; ++q) {
          const int64_t c = cb + 16 * q;
          const __mmask16 m = lanes_below(ce - c);
          if (m) _mm512_mask_storeu_ps(yr + c, m, out[q]);
        }
      }
    }
  }
}

// B^T applied to 6 vectors (see wino43_bt).
inline void bt6(const __m512 d[6], __m512 r[6]) {
  const __m512 four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f), two = _mm512_set1_ps(2.f);
  const __m512 p = _mm512_fnmadd_ps(four, d[2], d[4]);                   // d4 - 4 d2
  const __m512 q = _mm512_fnmadd_ps(four, d[1], d[3]);                   // d3 - 4 d1
  const __m512 s = _mm512_sub_ps(d[4], d[2]);
  const __m512 t = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
  r[0] = _mm512_add_ps(_mm512_fnmadd_ps(five, d[2], _mm512_mul_ps(four, d[0])), d[4]);
  r[1] = _mm512_add_ps(p, q);
  r[2] = _mm512_sub_ps(p, q);
  r[3] = _mm512_add_ps(s, t);
  r[4] = _mm512_sub_ps(s, t);
  r[5] = _mm512_add_ps(_mm512_fnmadd_ps(five, d[3], _mm512_mul_ps(four, d[1])), d[5]);
}

// A^T applied to 6 vectors, plus b (see wino43_at).
inline void at6(const __m512 m[6], __m512 r[4], __m512 b) {
  const __m512 two = _mm512_set1_ps(2.f), four = _mm512_set1_ps(4.f), eight = _mm512_set1_ps(8.f);
  const __m512 p = _mm512_add_ps(m[1], m[2]), q = _mm512_sub_ps(m[1], m[2]);
  const __m512 s = _mm512_add_ps(m[3], m[4]), t = _mm512_sub_ps(m[3], m[4]);
  r[0] = _mm512_add_ps(b, _mm512_add_ps(_mm512_add_ps(m[0], p), s));
  r[1] = _mm512_add_ps(b, _mm512_fmadd_ps(two, t, q));
  r[2] = _mm512_add_ps(b, _mm512_fmadd_ps(four, s, p));
  r[3] = _mm512_add_ps(b, _mm512_add_ps(_mm512_fmadd_ps(eight, t, q), m[5]));
}

constexpr int64_t kChunk = 32;         // tiles per chunk
constexpr int64_t kPhase = kChunk + 16;  // phase row length: chunk + 1, in whole vectors

void conv_wino43_in_avx512(const WinoArgs& a) {
  alignas(64) float ph[6][4][kPhase];  // [input row][column phase][tile]
  alignas(64) float t[6][6][16];       // B^T d of 16 tiles: [row i][patch column k]
  // Lanes k of idx[q] (k < 8) select element 4k + q of a 32-float pair of vectors.
  __m512i idx[4];
  for (int q = 0; q < 4; ++q)
    idx[q] = _mm512_setr_epi32(q, q + 4, q + 8, q + 12, q + 16, q + 20, q + 24, q + 28, q, q + 4, q + 8, q + 12,
                               q + 16, q + 20, q + 24, q + 28);
  for (int64_t u = 0; u < a.units; ++u) {
    const int64_t tr = a.th0 + u, th = tr % a.TH;
    const float* x = a.x + (tr / a.TH) * a.plane;
    for (int64_t j0 = 0; j0 < a.TW; j0 += kChunk) {
      const int64_t nj = std::min(kChunk, a.TW - j0), nblk = (nj + 16) / 16;  // phase blocks for nj + 1 entries
      const int64_t c0 = 4 * j0 - a.pw;  // input column of phase entry 0, phase 0
      for (int r = 0; r < 6; ++r) {
        const int64_t ih = 4 * th + r - a.ph;
        if (ih < 0 || ih >= a.h) {
          for (int q = 0; q < 4; ++q)
            for (int64_t b = 0; b < nblk; ++b) _mm512_store_ps(ph[r][q] + 16 * b, _mm512_setzero_ps());
          continue;
        }
        const float* xr = x + ih * a.w;
        for (int64_t b = 0; b < nblk; ++b) {  // 64 input columns -> 16 entries of each phase
          __m512 l[4];
          for (int v = 0; v < 4; ++v) {
            const int64_t i0 = 64 * b + 16 * v;  // line position; input column c0 + i0
            const __mmask16 m = lanes_between(-c0 - i0, a.w - c0 - i0);
            l[v] = m ? _mm512_maskz_loadu_ps(m, xr + (c0 + i0)) : _mm512_setzero_ps();
          }
          for (int q = 0; q < 4; ++q) {
            const __m512 lo = _mm512_permutex2var_ps(l[0], idx[q], l[1]);
            const __m512 hi = _mm512_permutex2var_ps(l[2], idx[q], l[3]);
            _mm512_store_ps(ph[r][q] + 16 * b, _mm512_shuffle_f32x4(lo, hi, _MM_SHUFFLE(1, 0, 1, 0)));
          }
        }
      }
      float* v = a.v + u * a.TW + j0;
      for (int64_t jb = 0; jb < nj; jb += 16) {
        const __mmask16 valid = lanes_below(nj - jb);
        for (int k = 0; k < 6; ++k) {  // columns of the patch
          const int q = k % 4, sh = k / 4;
          __m512 d[6], r[6];
          for (int i = 0; i < 6; ++i) d[i] = _mm512_loadu_ps(ph[i][q] + jb + sh);
          bt6(d, r);
          for (int i = 0; i < 6; ++i) _mm512_store_ps(t[i][k], r[i]);
        }
        for (int i = 0; i < 6; ++i) {  // V[i][*] = t[i] B
          __m512 d[6], r[6];
          for (int k = 0; k < 6; ++k) d[k] = _mm512_load_ps(t[i][k]);
          bt6(d, r);
          for (int l = 0; l < 6; ++l) _mm512_mask_storeu_ps(v + (6 * i + l) * a.xi_stride + jb, valid, r[l]);
        }
      }
    }
  }
}

void conv_wino43_out_avx512(const WinoArgs& a) {
  alignas(64) float s[4][6][16];  // A^T m of 16 tiles: [output row][m column]
  const __m512 zero = _mm512_setzero_ps(), bias = _mm512_set1_ps(a.bias);
  for (int64_t u = 0; u < a.units; ++u) {
    const int64_t tr = a.th0 + u, th = tr % a.TH;
    float* y = a.y + (tr / a.TH) * a.plane;
    for (int64_t jb = 0; jb < a.TW; jb += 16) {
      const __mmask16 valid = lanes_below(a.TW - jb);
      const float* mb = a.v + u * a.TW + jb;
      for (int l = 0; l < 6; ++l) {
        __m512 m[6], r[4];
        for (int i = 0; i < 6; ++i) m[i] = _mm512_maskz_loadu_ps(valid, mb + (6 * i + l) * a.xi_stride);
        at6(m, r, zero);
        for (int i = 0; i < 4; ++i) _mm512_store_ps(s[i][l], r[i]);
      }
      const int64_t cb = 4 * jb, ce = std::min(a.w, 4 * a.TW);  // output columns of these tiles: [cb, cb + 64)
      for (int i = 0; i < 4; ++i) {
        const int64_t oh = 4 * th + i;
        if (oh >= a.h) break;
        __m512 m[6], r[4];
        for (int l = 0; l < 6; ++l) m[l] = _mm512_load_ps(s[i][l]);
        at6(m, r, bias);
        // Interleave r[b][j] into columns 4j + b: within each 128-bit lane a
        // 4x4 transpose, then the lanes put back in tile order.
        const __m512 lo01 = _mm512_unpacklo_ps(r[0], r[1]), hi01 = _mm512_unpackhi_ps(r[0], r[1]);
        const __m512 lo23 = _mm512_unpacklo_ps(r[2], r[3]), hi23 = _mm512_unpackhi_ps(r[2], r[3]);
        const __m512 A = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(lo01), _mm512_castps_pd(lo23)));
        const __m512 B = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(lo01), _mm512_castps_pd(lo23)));
        const __m512 C = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(hi01), _mm512_castps_pd(hi23)));
        const __m512 D = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(hi01), _mm512_castps_pd(hi23)));
        // lane L of A/B/C/D holds tile 4L + 0/1/2/3
        const __m512 t1 = _mm512_shuffle_f32x4(A, B, _MM_SHUFFLE(2, 0, 2, 0));  // A0 A2 B0 B2
        const __m512 t2 = _mm512_shuffle_f32x4(C, D, _MM_SHUFFLE(2, 0, 2, 0));  // C0 C2 D0 D2
        const __m512 t3 = _mm512_shuffle_f32x4(A, B, _MM_SHUFFLE(3, 1, 3, 1));  // A1 A3 B1 B3
        const __m512 t4 = _mm512_shuffle_f32x4(C, D, _MM_SHUFFLE(3, 1, 3, 1));  // C1 C3 D1 D3
        const __m512 out[4] = {_mm512_shuffle_f32x4(t1, t2, _MM_SHUFFLE(2, 0, 2, 0)),   // tiles 0-3
                               _mm512_shuffle_f32x4(t3, t4, _MM_SHUFFLE(2, 0, 2, 0)),   // tiles 4-7
                               _mm512_shuffle_f32x4(t1, t2, _MM_SHUFFLE(3, 1, 3, 1)),   // tiles 8-11
                               _mm512_shuffle_f32x4(t3, t4, _MM_SHUFFLE(3, 1, 3, 1))};  // tiles 12-15
        float* yr = y + oh * a.w;
        for (int v = 0; v < 4; ++v) {
          const int64_t c = cb + 16 * v;
          const __mmask16 m = lanes_below(ce - c);
          if (m) _mm512_mask_storeu_ps(yr + c, m, out[v]);
        }
      }
    }
  }
}

}  // namespace

void fill_conv_wino_avx512(KernelTable& t) {
  t.conv_wino_in = conv_wino_in_avx512;
  t.conv_wino_out = conv_wino_out_avx512;
  t.conv_wino43_in = conv_wino43_in_avx512;
  t.conv_wino43_out = conv_wino43_out_avx512;
}

}  // namespace pyengine
