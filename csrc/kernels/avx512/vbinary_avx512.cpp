// AVX-512 elementwise binary kernels: 16 floats a step, unrolled x4 (these
// loops stream from L2/memory, so more loads in flight), then single
// vectors, then one masked vector for the tail (no scalar loop). Lane-wise
// IEEE operations: the results are the same bits as the AVX2/scalar ones.
#include <immintrin.h>

#include "kernels/avx512/simd_avx512.h"
#include "kernels/dispatch.h"

namespace pyengine {

namespace {

constexpr auto tail = avx512::lanes;

#define PYENGINE_AVX512_BINARY(NAME, VOP)                                                         \
  void NAME##_avx512(const float* a, const float* b, float* y, int64_t n) {                       \
    int64_t i = 0;                                                                                \
    for (; i + 64 <= n; i += 64) {                                                                \
      const __m512 x0 = _mm512_loadu_ps(a + i), x1 = _mm512_loadu_ps(a + i + 16);                 \
      const __m512 x2 = _mm512_loadu_ps(a + i + 32), x3 = _mm512_loadu_ps(a + i + 48);            \
      const __m512 z0 = _mm512_loadu_ps(b + i), z1 = _mm512_loadu_ps(b + i + 16);                 \
      const __m512 z2 = _mm512_loadu_ps(b + i + 32), z3 = _mm512_loadu_ps(b + i + 48);            \
      _mm512_storeu_ps(y + i, VOP(x0, z0));                                                       \
      _mm512_storeu_ps(y + i + 16, VOP(x1, z1));                                                  \
      _mm512_storeu_ps(y + i + 32, VOP(x2, z2));                                                  \
      _mm512_storeu_ps(y + i + 48, VOP(x3, z3));                                                  \
    }                                                                                             \
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, VOP(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))); \
    if (i < n) {                                                                                  \
      const __mmask16 m = tail(n - i);                                                            \
      /* masked-off lanes load 1.0, so a division's unused lanes raise no flags */                \
      const __m512 one = _mm512_set1_ps(1.f);                                                     \
      _mm512_mask_storeu_ps(y + i, m, VOP(_mm512_mask_loadu_ps(one, m, a + i), _mm512_mask_loadu_ps(one, m, b + i))); \
    }                                                                                             \
  }                                                                                               \
  void NAME##_scalar_avx512(const float* a, float s, float* y, int64_t n) {                       \
    const __m512 z = _mm512_set1_ps(s);                                                           \
    int64_t i = 0;                                                                                \
    for (; i + 32 <= n; i += 32) {                                                                \
      const __m512 x0 = _mm512_loadu_ps(a + i), x1 = _mm512_loadu_ps(a + i + 16);                 \
      _mm512_storeu_ps(y + i, VOP(x0, z));                                                        \
      _mm512_storeu_ps(y + i + 16, VOP(x1, z));                                                   \
    }                                                                                             \
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, VOP(_mm512_loadu_ps(a + i), z));         \
    if (i < n) {                                                                                  \
      const __mmask16 m = tail(n - i);                                                            \
      _mm512_mask_storeu_ps(y + i, m, VOP(_mm512_mask_loadu_ps(_mm512_set1_ps(1.f), m, a + i), z)); \
    }                                                                                             \
  }

#define V_ADD(x, z) _mm512_add_ps(x, z)
#define V_SUB(x, z) _mm512_sub_ps(x, z)
#define V_MUL(x, z) _mm512_mul_ps(x, z)
#define V_DIV(x, z) _mm512_div_ps(x, z)
#define V_RSUB(x, z) _mm512_sub_ps(z, x)
#define V_RDIV(x, z) _mm512_div_ps(z, x)
PYENGINE_AVX512_BINARY(add, V_ADD)
PYENGINE_AVX512_BINARY(sub, V_SUB)
PYENGINE_AVX512_BINARY(mul, V_MUL)
PYENGINE_AVX512_BINARY(div, V_DIV)
PYENGINE_AVX512_BINARY(rsub, V_RSUB)
PYENGINE_AVX512_BINARY(rdiv, V_RDIV)

}  // namespace

void fill_vbinary_avx512(KernelTable& t) {
  t.add = add_avx512;
  t.sub = sub_avx512;
  t.mul = mul_avx512;
  t.div = div_avx512;
  t.add_scalar = add_scalar_avx512;
  t.sub_scalar = sub_scalar_avx512;
  t.rsub_scalar = rsub_scalar_avx512;
  t.mul_scalar = mul_scalar_avx512;
  t.div_scalar = div_scalar_avx512;
  t.rdiv_scalar = rdiv_scalar_avx512;
}

}  // namespace pyengine
