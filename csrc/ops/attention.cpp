// pyengine.Attention: y = softmax((q @ kt) * scale + mask) @ v, fused.
//
// Each work item is one block of query rows of one (batch..., head) entry:
// its scores (rows x Sk) live in per-thread scratch, are turned into
// unnormalized probabilities in place, multiplied by V straight into the
// output, and the rows are then divided by their sums. The full score matrix
// never exists. Q, K^T, V and the output are read/written through strides
// (the permutations the fusion pass absorbed), so a multi-head layout
// [B, S, H, D] needs no transpose copies; the dispatched SGEMM takes them as
// row strides with trans flags.
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/common.h"

namespace pyengine {

namespace {

// Logical view of a stored tensor: shape and element strides per logical dim.
struct View {
  Shape shape;
  std::vector<int64_t> stride;
};

View permuted(const Shape& phys, const std::vector<int64_t>& perm, const char* what) {
  require(perm.size() == phys.size(), std::string("Attention: ") + what + " permutation has the wrong rank");
  auto st = contiguous_strides(phys);
  View v;
  for (int64_t p : perm) {
    require(p >= 0 && p < static_cast<int64_t>(phys.size()), std::string("Attention: bad ") + what + " permutation");
    v.shape.push_back(phys[p]);
    v.stride.push_back(st[p]);
  }
  return v;
}

// Strides of `v`'s batch dims (all but the last two) aligned right to
// `batch` dims, 0 where broadcast.
std::vector<int64_t> batch_strides(const View& v, const Shape& batch, size_t tail) {
  std::vector<int64_t> st(batch.size(), 0);
  size_t nb = v.shape.size() - tail;
  for (size_t i = 0; i < nb; ++i) {
    size_t o = batch.size() - nb + i;
    if (v.shape[i] != 1) st[o] = v.stride[i];
  }
  return st;
}

constexpr int64_t kScoreBlockFloats = 32768;  // 128 KB of scores per thread, L2-sized

class AttentionKernel : public Kernel {
 public:
  explicit AttentionKernel(const NodeSpec& spec) : table_(kernels()) {
    for (size_t i = 0; i < 3; ++i) require_dtype(spec.input(i), DType::Float32, "Attention Q/KT/V");
    View q = permuted(spec.input(0).shape, spec.attrs.get_ints("q_perm"), "q");
    View kt = permuted(spec.input(1).shape, spec.attrs.get_ints("k_perm"), "k");
    View v = permuted(spec.input(2).shape, spec.attrs.get_ints("v_perm"), "v");
    require(q.shape.size() >= 2 && kt.shape.size() >= 2 && v.shape.size() >= 2, "Attention: inputs need rank >= 2");
    sq_ = q.shape[q.shape.size() - 2];
    d_ = q.shape.back();
    sk_ = kt.shape.back();
    dv_ = v.shape.back();
    require(kt.shape[kt.shape.size() - 2] == d_ && v.shape[v.shape.size() - 2] == sk_,
            "Attention: shapes of q, k^T and v do not chain");
    scale_ = static_cast<float>(spec.attrs.get_float("scale", 1.0));

    const TensorDesc& out = spec.outputs.at(0);
    std::vector<int64_t> out_perm = spec.attrs.get_ints("out_perm");
    require(out_perm.size() == out.shape.size() && out.rank() >= 2, "Attention: out_perm has the wrong rank");
    // Physical out dim j holds logical dim out_perm[j]: invert to get logical strides.
    auto ost = contiguous_strides(out.shape);
    size_t rank = out.shape.size();
    View o;
    o.shape.assign(rank, 0);
    o.stride.assign(rank, 0);
    for (size_t j = 0; j < rank; ++j) {
      o.shape[out_perm[j]] = out.shape[j];
      o.stride[out_perm[j]] = ost[j];
    }
    require(o.stride.back() == 1 || dv_ <= 1, "Attention: the output's last logical axis must be contiguous");
    batch_.assign(o.shape.begin(), o.shape.end() - 2);
    require(o.shape[rank - 2] == sq_ && o.shape[rank - 1] == dv_, "Attention: output shape mismatch");

    // Each operand must have one of its two matrix axes contiguous (GEMM row stride + trans flag).
    auto mat = [](const View& w, const char* what, bool& trans, int64_t& ld) {
      size_t r = w.shape.size();
      int64_t s_row = w.stride[r - 2], s_col = w.stride[r - 1];
      if (s_col == 1 || w.shape[r - 1] <= 1) {
        trans = false;
        ld = std::max<int64_t>(s_row, std::max<int64_t>(w.shape[r - 1], 1));
      } else if (s_row == 1 || w.shape[r - 2] <= 1) {
        trans = true;
        ld = std::max<int64_t>(s_col, std::max<int64_t>(w.shape[r - 2], 1));
      } else {
        throw KernelError(std::string("Attention: ") + what + " has no contiguous matrix axis");
      }
    };
    mat(q, "q", q_trans_, q_ld_);
    mat(kt, "k^T", k_trans_, k_ld_);
    mat(v, "v", v_trans_, v_ld_);
    q_row_ = q.stride[q.shape.size() - 2];
    o_row_ = o.stride[rank - 2];
    q_bs_ = batch_strides(q, batch_, 2);
    k_bs_ = batch_strides(kt, batch_, 2);
    v_bs_ = batch_strides(v, batch_, 2);
    o_bs_.assign(o.stride.begin(), o.stride.end() - 2);

    if (spec.has_input(3)) {
      const TensorDesc& m = spec.input(3);
      require_dtype(m, DType::Float32, "Attention mask");
      Shape full = batch_;
      full.push_back(sq_);
      full.push_back(sk_);
      require(m.rank() <= full.size(), "Attention: mask rank exceeds the scores rank");
      auto mst = broadcast_strides(m.shape, full);
      m_bs_.assign(mst.begin(), mst.end() - 2);
      m_row_ = mst[full.size() - 2];
      m_col_ = mst[full.size() - 1];
      has_mask_ = true;
    }
    nbatch_ = shape_numel(batch_);
    // Query rows per block: enough for an efficient GEMM, few enough that the
    // scores of a block stay in cache. Independent of the thread count.
    block_ = std::max<int64_t>(1, std::min<int64_t>({sq_, 128, std::max<int64_t>(4, kScoreBlockFloats / std::max<int64_t>(sk_, 1))}));
    nblocks_ = sq_ > 0 ? (sq_ + block_ - 1) / block_ : 0;
    per_thread_ = static_cast<size_t>(((block_ * (sk_ + 1)) + 15) / 16 * 16);
    scratch_ = per_thread_ * sizeof(float) * static_cast<size_t>(std::max(spec.num_threads, 1));
  }

  size_t scratch_bytes() const override { return scratch_; }

  void run(const KernelIO& io) override {
    const float* Q = in_ptr<float>(io, 0);
    const float* KT = in_ptr<float>(io, 1);
    const float* V = in_ptr<float>(io, 2);
    const float* M = has_mask_ ? in_ptr<float>(io, 3) : nullptr;
    float* Y = out_ptr<float>(io, 0);
    int64_t items = nbatch_ * nblocks_;
    if (items == 0 || dv_ == 0) return;
    float* scratch = static_cast<float*>(io.scratch);
    io.pool->parallel_for(items, 1, [&](int64_t i0, int64_t i1) {
      float* s = scratch + per_thread_ * static_cast<size_t>(ThreadPool::thread_index());
      for (int64_t it = i0; it < i1; ++it) block(it / nblocks_, it % nblocks_, Q, KT, V, M, Y, s);
    });
  }

 private:
  void block(int64_t b, int64_t qb, const float* Q, const float* KT, const float* V, const float* M, float* Y,
             float* scores) const {
    int64_t qo = 0, ko = 0, vo = 0, oo = 0, mo = 0;
    for (int64_t d = static_cast<int64_t>(batch_.size()) - 1, rem = b; d >= 0; --d) {
      int64_t idx = rem % batch_[d];
      rem /= batch_[d];
      qo += idx * q_bs_[d];
      ko += idx * k_bs_[d];
      vo += idx * v_bs_[d];
      oo += idx * o_bs_[d];
      if (has_mask_) mo += idx * m_bs_[d];
    }
    int64_t r0 = qb * block_;
    int64_t rows = std::min(block_, sq_ - r0);
    float* sums = scores + rows * sk_;
    float* out = Y + oo + r0 * o_row_;
    if (sk_ == 0) {  // softmax over nothing, product with an empty V: zeros
      for (int64_t r = 0; r < rows; ++r) std::memset(out + r * o_row_, 0, sizeof(float) * dv_);
      return;
    }
    // scores = scale * q_block @ kt
    if (d_ == 0) {
      std::memset(scores, 0, sizeof(float) * rows * sk_);
    } else {
      GemmArgs g;
      g.M = rows;
      g.N = sk_;
      g.K = d_;
      g.alpha = scale_;
      g.trans_a = q_trans_;
      g.A = Q + qo + r0 * q_row_;
      g.lda = q_ld_;
      g.trans_b = k_trans_;
      g.B = KT + ko;
      g.ldb = k_ld_;
      g.C = scores;
      g.ldc = sk_;
      table_.sgemm(g, nullptr);
    }
    // + mask, then exp(x - rowmax) in place and the row sums.
    for (int64_t r = 0; r < rows; ++r) {
      float* row = scores + r * sk_;
      if (has_mask_) {
        const float* mrow = M + mo + (r0 + r) * m_row_;
        if (m_col_ == 1) table_.add(row, mrow, row, sk_);
        else table_.add_scalar(row, mrow[0], row, sk_);
      }
      // A row of -inf (all keys masked) gives NaN, as Softmax does.
      const float mx = table_.reduce_max(row, sk_);
      sums[r] = 1.f / table_.exp_shift_sum(row, mx, row, sk_);
    }
    // out = p @ v, then each row divided by its sum.
    GemmArgs g;
    g.M = rows;
    g.N = dv_;
    g.K = sk_;
    g.A = scores;
    g.lda = sk_;
    g.trans_b = v_trans_;
    g.B = V + vo;
    g.ldb = v_ld_;
    g.C = out;
    g.ldc = o_row_;
    table_.sgemm(g, nullptr);
    for (int64_t r = 0; r < rows; ++r) table_.mul_scalar(out + r * o_row_, sums[r], out + r * o_row_, dv_);
  }

  const KernelTable& table_;
  int64_t sq_ = 0, sk_ = 0, d_ = 0, dv_ = 0;
  float scale_ = 1.f;
  bool q_trans_ = false, k_trans_ = false, v_trans_ = false, has_mask_ = false;
  int64_t q_ld_ = 0, k_ld_ = 0, v_ld_ = 0, q_row_ = 0, o_row_ = 0, m_row_ = 0, m_col_ = 0;
  Shape batch_;
  std::vector<int64_t> q_bs_, k_bs_, v_bs_, o_bs_, m_bs_;
  int64_t nbatch_ = 0, block_ = 1, nblocks_ = 0;
  size_t per_thread_ = 0, scratch_ = 0;
};

}  // namespace

void register_attention_ops() { register_kernel("Attention", make_kernel<AttentionKernel>); }

}  // namespace pyengine
