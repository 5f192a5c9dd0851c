// AVX2 float32 Max/AveragePool over 2-D windows: the portable separable
// kernel (kernels/pool_rows_impl.h) compiled with -mavx2.
#include "kernels/pool_rows_impl.h"

namespace pyengine {

void fill_pool_avx2(KernelTable& t) { t.pool2d_f32 = pool_detail::pool2d_rows; }

}  // namespace pyengine
