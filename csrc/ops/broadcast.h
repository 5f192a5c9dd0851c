// Broadcasting iteration for elementwise operators. The output is walked as
// rows of the innermost merged dimension; for each row every input is either
// contiguous (stride 1) or a repeated scalar (stride 0), so the inner loop is
// one call of a vector kernel.
#pragma once
#include <algorithm>
#include <vector>

#include "ops/common.h"

namespace pyengine {

class BroadcastLoop {
 public:
  BroadcastLoop() = default;
  BroadcastLoop(const std::vector<Shape>& inputs, const Shape& out);

  int64_t rows() const { return rows_; }
  int64_t row_len() const { return inner_; }
  // Element stride of input i along the row (0 or 1).
  int64_t inner_stride(size_t i) const { return inner_strides_[i]; }
  // Element offset of input i at the start of row r.
  int64_t offset(size_t i, int64_t r) const;

  // Runs fn(row, col0, n) over every row piece: rows are split into blocks of
  // at most `block` elements so a single long row still spreads over threads.
  // The split depends only on the shapes, never on the thread count.
  template <class F>
  void for_pieces(ThreadPool* pool, F&& fn, int64_t block = 16384) const {
    if (rows_ == 0 || inner_ == 0) return;
    const int64_t blk = inner_ > 2 * block ? block : inner_;
    const int64_t nb = (inner_ + blk - 1) / blk;
    pool->parallel_for(rows_ * nb, std::max<int64_t>(1, 32768 / blk), [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        int64_t r = u / nb, c0 = (u % nb) * blk;
        fn(r, c0, std::min(blk, inner_ - c0));
      }
    });
  }

 private:
  Shape outer_;  // merged outer dims
  std::vector<std::vector<int64_t>> outer_strides_;
  std::vector<int64_t> inner_strides_;
  int64_t rows_ = 1, inner_ = 1;
};

}  // namespace pyengine
