// Broadcasting iteration for elementwise operators. The output is walked as
// rows of the innermost merged dimension; for each row every input is either
// contiguous (stride 1) or a repeated scalar (stride 0), so the inner loop is
// one call of a vector kernel.
#pragma once
#include <vector>

#include "ops/common.h"

namespace pyengine {

class BroadcastLoop {
 public:
  BroadcastLoop(const std::vector<Shape>& inputs, const Shape& out);

  int64_t rows() const { return rows_; }
  int64_t row_len() const { return inner_; }
  // Element stride of input i along the row (0 or 1).
  int64_t inner_stride(size_t i) const { return inner_strides_[i]; }
  // Element offset of input i at the start of row r.
  int64_t offset(size_t i, int64_t r) const;

 private:
  Shape outer_;  // merged outer dims
  std::vector<std::vector<int64_t>> outer_strides_;
  std::vector<int64_t> inner_strides_;
  int64_t rows_ = 1, inner_ = 1;
};

}  // namespace pyengine
