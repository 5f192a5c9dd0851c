#include "ops/broadcast.h"

namespace pyengine {

BroadcastLoop::BroadcastLoop(const std::vector<Shape>& inputs, const Shape& out) {
  size_t n = inputs.size();
  std::vector<std::vector<int64_t>> strides;
  for (const Shape& s : inputs) strides.push_back(broadcast_strides(s, out));
  // Merge adjacent output dims when every input treats them alike.
  Shape dims;
  std::vector<std::vector<int64_t>> mstrides(n);
  for (size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;
    bool merge = !dims.empty();
    for (size_t i = 0; i < n && merge; ++i) {
      int64_t prev = mstrides[i].back();
      int64_t cur = strides[i][d];
      // previous dim's stride must equal cur * out[d] (contiguous) or both be 0.
      merge = (prev == 0 && cur == 0) || (cur != 0 && prev == cur * out[d]);
    }
    if (merge) {
      dims.back() *= out[d];
      for (size_t i = 0; i < n; ++i) mstrides[i].back() = strides[i][d];
    } else {
      dims.push_back(out[d]);
      for (size_t i = 0; i < n; ++i) mstrides[i].push_back(strides[i][d]);
    }
  }
  inner_strides_.assign(n, 0);
  outer_strides_.assign(n, {});
  if (dims.empty()) {
    inner_ = shape_numel(out);  // all ones (or empty): a single element or none
    for (size_t i = 0; i < n; ++i) inner_strides_[i] = 0;
    rows_ = inner_ == 0 ? 0 : 1;
    return;
  }
  inner_ = dims.back();
  for (size_t i = 0; i < n; ++i) inner_strides_[i] = mstrides[i].back();
  outer_.assign(dims.begin(), dims.end() - 1);
  for (size_t i = 0; i < n; ++i) outer_strides_[i].assign(mstrides[i].begin(), mstrides[i].end() - 1);
  rows_ = shape_numel(outer_);
  if (inner_ == 0) rows_ = 0;
}

int64_t BroadcastLoop::offset(size_t i, int64_t r) const {
  int64_t off = 0;
  const auto& st = outer_strides_[i];
  for (int64_t d = static_cast<int64_t>(outer_.size()) - 1; d >= 0 && r; --d) {
    off += (r % outer_[d]) * st[d];
    r /= outer_[d];
  }
  return off;
}

}  // namespace pyengine
