// Scalar reference elementwise binary kernels (contiguous and vector-scalar).
#include "kernels/dispatch.h"

namespace pyengine {

namespace {

#define PYENGINE_REF_BINARY(NAME, EXPR)                                              \
  void NAME##_ref(const float* a, const float* b, float* y, int64_t n) {             \
    for (int64_t i = 0; i < n; ++i) { float x = a[i], z = b[i]; y[i] = (EXPR); }     \
  }                                                                                  \
  void NAME##_scalar_ref(const float* a, float s, float* y, int64_t n) {             \
    for (int64_t i = 0; i < n; ++i) { float x = a[i], z = s; y[i] = (EXPR); }        \
  }

PYENGINE_REF_BINARY(add, x + z)
PYENGINE_REF_BINARY(sub, x - z)
PYENGINE_REF_BINARY(mul, x * z)
PYENGINE_REF_BINARY(div, x / z)
PYENGINE_REF_BINARY(rsub, z - x)
PYENGINE_REF_BINARY(rdiv, z / x)
#undef PYENGINE_REF_BINARY

}  // namespace

void fill_vbinary_ref(KernelTable& t) {
  t.add = add_ref;
  t.sub = sub_ref;
  t.mul = mul_ref;
  t.div = div_ref;
  t.add_scalar = add_scalar_ref;
  t.sub_scalar = sub_scalar_ref;
  t.rsub_scalar = rsub_scalar_ref;
  t.mul_scalar = mul_scalar_ref;
  t.div_scalar = div_scalar_ref;
  t.rdiv_scalar = rdiv_scalar_ref;
}

}  // namespace pyengine
