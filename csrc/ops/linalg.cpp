// Gemm and MatMul on float32, with fused bias and activation. Constant B
// operands are packed once here, in the layout of the dispatched GEMM.
#include <cstring>

#include "ops/common.h"

namespace pyengine {

namespace {

class GemmKernel : public Kernel {
 public:
  explicit GemmKernel(const NodeSpec& spec) : table_(kernels()) {
    const TensorDesc& a = spec.input(0);
    const TensorDesc& b = spec.input(1);
    require_dtype(a, DType::Float32, "Gemm input A");
    require_dtype(b, DType::Float32, "Gemm input B");
    require(a.rank() == 2 && b.rank() == 2, "Gemm expects 2-D A and B");
    args_.trans_a = spec.attrs.get_int("transA", 0) != 0;
    args_.trans_b = spec.attrs.get_int("transB", 0) != 0;
    args_.alpha = static_cast<float>(spec.attrs.get_float("alpha", 1.0));
    beta_ = static_cast<float>(spec.attrs.get_float("beta", 1.0));
    args_.M = args_.trans_a ? a.shape[1] : a.shape[0];
    args_.K = args_.trans_a ? a.shape[0] : a.shape[1];
    args_.N = args_.trans_b ? b.shape[0] : b.shape[1];
    int64_t kb = args_.trans_b ? b.shape[1] : b.shape[0];
    require(kb == args_.K, "Gemm inner dimensions differ: A has K=" + std::to_string(args_.K) + ", B has K=" + std::to_string(kb));
    args_.lda = a.shape[1];
    args_.ldb = b.shape[1];
    args_.ldc = args_.N;
    args_.act = fused_activation(spec);
    if (b.const_data) {
      packed_ = std::make_unique<PackedB>();
      table_.pack_b(static_cast<const float*>(b.const_data), args_.ldb, args_.trans_b, args_.K, args_.N, packed_.get());
    }
    if (spec.has_input(2) && beta_ != 0.f) {
      c_shape_ = spec.input(2).shape;
      require_dtype(spec.input(2), DType::Float32, "Gemm input C");
      bool row_vec = (c_shape_.size() == 1 && c_shape_[0] == args_.N) || (c_shape_.size() == 2 && c_shape_[0] == 1 && c_shape_[1] == args_.N);
      if (row_vec && args_.N > 1) c_mode_ = CMode::PerCol;
      else if (c_shape_.size() == 2 && c_shape_[1] == 1 && c_shape_[0] == args_.M && args_.M > 1) c_mode_ = CMode::PerRow;
      else c_mode_ = CMode::Full;
      if (c_mode_ != CMode::Full && beta_ != 1.f) scaled_bias_len_ = c_mode_ == CMode::PerCol ? args_.N : args_.M;
    }
  }

  size_t scratch_bytes() const override { return static_cast<size_t>(scaled_bias_len_) * sizeof(float); }
  bool reads_constant_at_run(size_t i) const override { return !(i == 1 && packed_); }

  void run(const KernelIO& io) override {
    GemmArgs g = args_;
    g.A = in_ptr<float>(io, 0);
    g.B = in_ptr<float>(io, 1);
    g.C = out_ptr<float>(io, 0);
    g.beta = 0.f;
    if (c_mode_ != CMode::None) {
      const float* c = in_ptr<float>(io, 2);
      const float* bias = c;
      if (scaled_bias_len_) {
        float* s = static_cast<float*>(io.scratch);
        for (int64_t i = 0; i < scaled_bias_len_; ++i) s[i] = beta_ * c[i];
        bias = s;
      }
      if (c_mode_ == CMode::PerCol) g.bias_col = bias;
      else if (c_mode_ == CMode::PerRow) g.bias_row = bias;
      else {
        // Broadcast beta*C into Y, then accumulate the product on top.
        Shape out{args_.M, args_.N};
        auto st = broadcast_strides(c_shape_, out);
        for (int64_t m = 0; m < args_.M; ++m)
          for (int64_t n = 0; n < args_.N; ++n) g.C[m * args_.N + n] = beta_ * c[m * st[0] + n * st[1]];
        g.beta = 1.f;
      }
    }
    if (args_.K == 0) {
      // Empty reduction: the product is zero, only C and the activation remain.
      for (int64_t m = 0; m < g.M; ++m) {
        float* row = g.C + m * g.ldc;
        for (int64_t n = 0; n < g.N; ++n) {
          float v = g.beta != 0.f ? row[n] : 0.f;
          if (g.bias_col) v += g.bias_col[n];
          if (g.bias_row) v += g.bias_row[m];
          row[n] = v;
        }
        table_.activation(row, row, g.N, g.act);
      }
      return;
    }
    if (packed_) {
      g.B = nullptr;  // the packed copy only (B's memory may have been released)
      table_.sgemm_packed(g, *packed_, io.pool);
    } else {
      table_.sgemm(g, io.pool);
    }
  }

 private:
  enum class CMode { None, PerCol, PerRow, Full };
  const KernelTable& table_;
  GemmArgs args_;
  float beta_ = 1.f;
  CMode c_mode_ = CMode::None;
  Shape c_shape_;
  int64_t scaled_bias_len_ = 0;
  std::unique_ptr<PackedB> packed_;
};

// MatMul with numpy semantics (1-D promotion, broadcast batch dimensions).
// Internal extension from the fusion pass: optional input 2 is a bias of
// length N and the fused activation attributes.
class MatMulKernel : public Kernel {
 public:
  explicit MatMulKernel(const NodeSpec& spec) : table_(kernels()) {
    const TensorDesc& a = spec.input(0);
    const TensorDesc& b = spec.input(1);
    require_dtype(a, DType::Float32, "MatMul input A");
    require_dtype(b, DType::Float32, "MatMul input B");
    require(a.rank() >= 1 && b.rank() >= 1, "MatMul inputs must have rank >= 1");
    Shape as = a.shape, bs = b.shape;
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    M_ = as[as.size() - 2];
    K_ = as.back();
    N_ = bs.back();
    require(bs[bs.size() - 2] == K_, "MatMul inner dimensions differ: " + shape_str(a.shape) + " @ " + shape_str(b.shape));
    Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
    size_t nb = std::max(abatch.size(), bbatch.size());
    abatch.insert(abatch.begin(), nb - abatch.size(), 1);
    bbatch.insert(bbatch.begin(), nb - bbatch.size(), 1);
    for (size_t i = 0; i < nb; ++i) {
      require(abatch[i] == bbatch[i] || abatch[i] == 1 || bbatch[i] == 1, "MatMul batch dimensions do not broadcast");
      batch_.push_back(std::max(abatch[i], bbatch[i]));
    }
    a_strides_ = broadcast_strides(abatch, batch_);
    b_strides_ = broadcast_strides(bbatch, batch_);
    act_ = fused_activation(spec);
    has_bias_ = spec.has_input(2);
    // B shared by every batch entry: fold A's batch into M and pack B once.
    b_shared_ = shape_numel(bbatch) == 1;
    a_dense_ = b_shared_;  // then batch_ == A's batch, stored densely ahead of M x K
    if (b_shared_ && b.const_data) {
      packed_ = std::make_unique<PackedB>();
      table_.pack_b(static_cast<const float*>(b.const_data), N_, false, K_, N_, packed_.get());
    }
  }

  bool reads_constant_at_run(size_t i) const override { return !(i == 1 && packed_); }

  void run(const KernelIO& io) override {
    const float* A = in_ptr<float>(io, 0);
    const float* B = packed_ ? nullptr : in_ptr<float>(io, 1);
    float* Y = out_ptr<float>(io, 0);
    GemmArgs g;
    g.K = K_;
    g.N = N_;
    g.lda = K_;
    g.ldb = N_;
    g.ldc = N_;
    g.bias_col = has_bias_ ? in_ptr<float>(io, 2) : nullptr;
    g.act = act_;
    int64_t nbatch = shape_numel(batch_);
    if (K_ == 0) {
      int64_t rows = nbatch * M_;
      for (int64_t r = 0; r < rows; ++r) {
        float* row = Y + r * N_;
        for (int64_t n = 0; n < N_; ++n) row[n] = g.bias_col ? g.bias_col[n] : 0.f;
        table_.activation(row, row, N_, act_);
      }
      return;
    }
    if (a_dense_) {
      g.M = nbatch * M_;
      g.A = A;
      g.B = B;  // null when packed: only the packed copy is read
      g.C = Y;
      if (packed_) table_.sgemm_packed(g, *packed_, io.pool);
      else table_.sgemm(g, io.pool);
      return;
    }
    g.M = M_;
    auto one = [&](int64_t bi) {
      int64_t aoff = 0, boff = 0, rem = bi;
      for (int64_t d = static_cast<int64_t>(batch_.size()) - 1; d >= 0; --d) {
        int64_t idx = rem % batch_[d];
        rem /= batch_[d];
        aoff += idx * a_strides_[d];
        boff += idx * b_strides_[d];
      }
      GemmArgs gi = g;
      gi.A = A + aoff * M_ * K_;
      gi.B = B + boff * K_ * N_;
      gi.C = Y + bi * M_ * N_;
      return gi;
    };
    if (nbatch >= io.pool->size()) {
      io.pool->parallel_for(nbatch, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t bi = b0; bi < b1; ++bi) table_.sgemm(one(bi), nullptr);
      });
    } else {
      for (int64_t bi = 0; bi < nbatch; ++bi) table_.sgemm(one(bi), io.pool);
    }
  }

 private:
  const KernelTable& table_;
  int64_t M_ = 0, K_ = 0, N_ = 0;
  Shape batch_;
  std::vector<int64_t> a_strides_, b_strides_;
  Activation act_;
  bool has_bias_ = false, b_shared_ = false, a_dense_ = false;
  std::unique_ptr<PackedB> packed_;
};

}  // namespace

void register_linalg_ops() {
  register_kernel("Gemm", make_kernel<GemmKernel>);
  register_kernel("MatMul", make_kernel<MatMulKernel>);
}

}  // namespace pyengine
