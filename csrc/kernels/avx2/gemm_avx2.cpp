// AVX2/FMA SGEMM. Until the packed, register-blocked kernel lands, the AVX2
// table keeps the reference entries.
#include "kernels/dispatch.h"

namespace pyengine {

void fill_gemm_avx2(KernelTable& t) { (void)t; }

}  // namespace pyengine
