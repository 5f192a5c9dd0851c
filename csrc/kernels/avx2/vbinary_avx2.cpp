// AVX2 elementwise binary kernels: 8 floats a step, unrolled x2, scalar tail.
#include <immintrin.h>

#include "kernels/dispatch.h"

namespace pyengine {

namespace {

#define PYENGINE_AVX2_BINARY(NAME, VOP, SOP)                                          \
  void NAME##_avx2(const float* a, const float* b, float* y, int64_t n) {             \
    int64_t i = 0;                                                                    \
    for (; i + 16 <= n; i += 16) {                                                    \
      __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(a + i + 8);            \
      __m256 z0 = _mm256_loadu_ps(b + i), z1 = _mm256_loadu_ps(b + i + 8);            \
      _mm256_storeu_ps(y + i, VOP(x0, z0));                                           \
      _mm256_storeu_ps(y + i + 8, VOP(x1, z1));                                       \
    }                                                                                 \
    for (; i + 8 <= n; i += 8)                                                        \
      _mm256_storeu_ps(y + i, VOP(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));   \
    for (; i < n; ++i) { float x = a[i], z = b[i]; y[i] = (SOP); }                    \
  }                                                                                   \
  void NAME##_scalar_avx2(const float* a, float s, float* y, int64_t n) {             \
    __m256 zs = _mm256_set1_ps(s);                                                    \
    int64_t i = 0;                                                                    \
    for (; i + 8 <= n; i += 8) {                                                      \
      __m256 x0 = _mm256_loadu_ps(a + i), z0 = zs;                                    \
      _mm256_storeu_ps(y + i, VOP(x0, z0));                                           \
    }                                                                                 \
    for (; i < n; ++i) { float x = a[i], z = s; y[i] = (SOP); }                       \
  }

#define V_ADD(x, z) _mm256_add_ps(x, z)
#define V_SUB(x, z) _mm256_sub_ps(x, z)
#define V_MUL(x, z) _mm256_mul_ps(x, z)
#define V_DIV(x, z) _mm256_div_ps(x, z)
#define V_RSUB(x, z) _mm256_sub_ps(z, x)
#define V_RDIV(x, z) _mm256_div_ps(z, x)
PYENGINE_AVX2_BINARY(add, V_ADD, x + z)
PYENGINE_AVX2_BINARY(sub, V_SUB, x - z)
PYENGINE_AVX2_BINARY(mul, V_MUL, x * z)
PYENGINE_AVX2_BINARY(div, V_DIV, x / z)
PYENGINE_AVX2_BINARY(rsub, V_RSUB, z - x)
PYENGINE_AVX2_BINARY(rdiv, V_RDIV, z / x)

}  // namespace

void fill_vbinary_avx2(KernelTable& t) {
  t.add = add_avx2;
  t.sub = sub_avx2;
  t.mul = mul_avx2;
  t.div = div_avx2;
  t.add_scalar = add_scalar_avx2;
  t.sub_scalar = sub_scalar_avx2;
  t.rsub_scalar = rsub_scalar_avx2;
  t.mul_scalar = mul_scalar_avx2;
  t.div_scalar = div_scalar_avx2;
  t.rdiv_scalar = rdiv_scalar_avx2;
}

}  // namespace pyengine
