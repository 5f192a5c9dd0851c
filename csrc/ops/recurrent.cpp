// LSTM, GRU and RNN (float32), one kernel for the three cells.
//
// Per direction the input projection of every time step is ONE GEMM,
// X[S*B, I] @ W^T -> xw[S*B, G*H], with the biases that are simply added
// (Wb + Rb, except GRU's Rbh under linear_before_reset) folded into its
// epilogue. Each time step then runs the recurrent GEMM h[B, H] @ R^T into a
// gates buffer and the fused gate math row by row, with the table's
// vectorized sigmoid/tanh. W and R are packed at construction when constant.
//
// Python (pyengine/ops/recurrent.py) hands over canonical attributes:
// num_directions, reverse, hidden_size, layout, clip, acts (comma-joined
// names, per direction), act_alpha/act_beta, input_forget,
// linear_before_reset, want_outputs.
//
// The common case (constant W and R, no sequence_lens; LSTM, RNN, GRU with
// linear_before_reset) runs the steps in "units" (run_units_path): slices
// of the hidden units, one per thread, each with its own packed slice of R,
// whose gate columns are adjacent (W, and so xw and the biases, are
// permuted to match). A unit does its GEMM columns and the cell math of its
// hidden units; the units of a step meet once through counters. With 8 or
// more batch rows per thread the batch rows are split instead ("batch
// groups"): each thread runs its rows' whole sequence with all of R and
// never waits for the other. The other cases run the step as one GEMM plus
// the gate math by rows. In the units path the cell math of a row's slice
// is one call to the table's fused lstm_cell / gru_cell where the ISA has
// one (AVX-512) and the activations are the default ones.
//
// Threads: the two directions of a bidirectional node run in parallel; with
// one direction the units (or the GEMMs and the row-split gate math) share
// the pool. Every element is computed by the same calls whatever the split,
// so the result does not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <sstream>
#include <thread>

#include "ops/common.h"

namespace pyengine {

namespace {

enum class Cell { LSTM, GRU, RNN };

// Gate activation. Sigmoid and Tanh go to the table's dedicated vectorized
// functions, the rest through the generic activation entry.
struct GateFn {
  Activation act;
  void operator()(const KernelTable& t, const float* x, float* y, int64_t n) const {
    if (act.kind == Activation::Sigmoid) t.sigmoid(x, y, n);
    else if (act.kind == Activation::Tanh) t.tanh(x, y, n);
    else t.activation(x, y, n, act);
  }
  void operator()(const KernelTable& t, float* x, int64_t n) const { (*this)(t, x, x, n); }
};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

inline void clip_inplace(float* x, int64_t n, float c) {
  for (int64_t j = 0; j < n; ++j) x[j] = std::min(std::max(x[j], -c), c);
}

// Sub-buffers are rounded to whole cache lines so directions never share one.
inline int64_t lines(int64_t floats) { return (floats + 15) / 16 * 16; }

class RecurrentKernel : public Kernel {
 public:
  explicit RecurrentKernel(const NodeSpec& spec) : table_(kernels()) {
    const Attrs& at = spec.attrs;
    const std::string& cell = spec.op_type;
    if (cell == "LSTM") cell_ = Cell::LSTM, G_ = 4;
    else if (cell == "GRU") cell_ = Cell::GRU, G_ = 3;
    else if (cell == "RNN") cell_ = Cell::RNN, G_ = 1;
    else throw KernelError("Recurrent: unknown cell '" + cell + "'");
    const TensorDesc& x = spec.input(0);
    require_dtype(x, DType::Float32, (cell + " input X").c_str());
    require(x.rank() == 3, cell + ": X must be 3-D, got " + shape_str(x.shape));
    layout_ = static_cast<int>(at.get_int("layout", 0));
    S_ = layout_ == 0 ? x.shape[0] : x.shape[1];
    B_ = layout_ == 0 ? x.shape[1] : x.shape[0];
    I_ = x.shape[2];
    D_ = static_cast<int>(at.get_int("num_directions", 1));
    reverse_ = at.get_int("reverse", 0) != 0;
    H_ = at.get_int("hidden_size", 0);
    GH_ = G_ * H_;
    require(D_ == 1 || D_ == 2, cell + ": num_directions must be 1 or 2");
    require(spec.input(1).shape == Shape({D_, GH_, I_}), cell + ": W has shape " + shape_str(spec.input(1).shape) +
                                                             ", expected " + shape_str({D_, GH_, I_}));
    require(spec.input(2).shape == Shape({D_, GH_, H_}), cell + ": R has shape " + shape_str(spec.input(2).shape) +
                                                             ", expected " + shape_str({D_, GH_, H_}));
    require_dtype(spec.input(1), DType::Float32, (cell + " input W").c_str());
    require_dtype(spec.input(2), DType::Float32, (cell + " input R").c_str());
    clip_ = static_cast<float>(at.get_float("clip", 0.0));
    input_forget_ = at.get_int("input_forget", 0) != 0;
    lbr_ = at.get_int("linear_before_reset", 0) != 0;

    has_bias_ = spec.has_input(3);
    has_lens_ = spec.has_input(4);
    has_h0_ = spec.has_input(5);
    has_c0_ = cell_ == Cell::LSTM && spec.has_input(6);
    has_p_ = cell_ == Cell::LSTM && spec.has_input(7);
    if (has_bias_) require(spec.input(3).shape == Shape({D_, 2 * GH_}), cell + ": B must have shape " + shape_str({D_, 2 * GH_}));
    if (has_lens_) {
      require_dtype(spec.input(4), DType::Int32, (cell + " input sequence_lens").c_str());
      require(spec.input(4).shape == Shape({B_}), cell + ": sequence_lens must have shape " + shape_str({B_}));
    }
    Shape state = layout_ == 0 ? Shape{D_, B_, H_} : Shape{B_, D_, H_};
    if (has_h0_) require(spec.input(5).shape == state, cell + ": initial_h must have shape " + shape_str(state));
    if (has_c0_) require(spec.input(6).shape == state, cell + ": initial_c must have shape " + shape_str(state));
    if (has_p_) require(spec.input(7).shape == Shape({D_, 3 * H_}), cell + ": P must have shape " + shape_str({D_, 3 * H_}));

    std::vector<int64_t> want = at.get_ints("want_outputs", {1, 1, 1});
    size_t n_state = cell_ == Cell::LSTM ? 2 : 1;
    require(spec.outputs.size() <= 1 + n_state, cell + ": too many outputs");
    for (size_t i = 0; i < spec.outputs.size() && i < 3; ++i)
      want_[i] = i >= want.size() || want[i] != 0;

    // Activations: per direction f (and g, h).
    int per_dir = cell_ == Cell::LSTM ? 3 : cell_ == Cell::GRU ? 2 : 1;
    std::vector<std::string> names;
    {
      std::stringstream ss(at.get_string("acts", ""));
      std::string item;
      while (std::getline(ss, item, ',')) names.push_back(item);
    }
    std::vector<double> alphas = at.get_floats("act_alpha"), betas = at.get_floats("act_beta");
    require(static_cast<int>(names.size()) == per_dir * D_ && alphas.size() == names.size() && betas.size() == names.size(),
            cell + ": expected " + std::to_string(per_dir * D_) + " activations with alpha and beta each");
    for (int d = 0; d < D_; ++d)
      for (int k = 0; k < per_dir; ++k) {
        size_t i = static_cast<size_t>(d * per_dir + k);
        try {
          acts_[d][k].act = Activation::from_name(names[i], static_cast<float>(alphas[i]), static_cast<float>(betas[i]));
        } catch (const std::invalid_argument&) {
          throw KernelError(cell + ": activation '" + names[i] + "' is not supported");
        }
      }

    // Fused cell math (table_.lstm_cell / gru_cell, where the ISA has it):
    // the default activations, no peepholes, no coupled input-forget gate.
    for (int d = 0; d < D_; ++d) {
      const auto is = [&](int k, Activation::Kind kind) { return acts_[d][k].act.kind == kind; };
      if (cell_ == Cell::LSTM)
        fused_[d] = table_.lstm_cell && !has_p_ && !input_forget_ && is(0, Activation::Sigmoid) &&
                    is(1, Activation::Tanh) && is(2, Activation::Tanh);
      else if (cell_ == Cell::GRU)
        fused_[d] = table_.gru_cell && lbr_ && is(0, Activation::Sigmoid) && is(1, Activation::Tanh);
    }

    // The step-unit path (run_units_path): every case but sequence_lens and
    // GRU without linear_before_reset, with constant W and R.
    fast_ = !has_lens_ && H_ > 0 && I_ > 0 && spec.input(1).const_data && spec.input(2).const_data &&
            (cell_ != Cell::GRU || lbr_);
    if (fast_) {
      // Units: slices of the hidden units, one per thread. Results do not
      // depend on the split (see run_units_path), so it may follow the
      // thread count. Slices start at multiples of 16 and are at least 16 wide.
      // Batch groups: with 8 or more batch rows per thread, the rows are
      // split between the threads instead of the hidden units (when that
      // keeps at least as many threads busy). Rows are independent, so each
      // group runs its whole sequence with no synchronization at all (each
      // core keeps all of R in its L2), and a thread that loses its core
      // delays only its own rows instead of every step of the others.
      const int64_t max_units = std::max<int64_t>(1, std::min<int64_t>(spec.num_threads, H_ / 32));
      groups_ = std::max<int64_t>(1, std::min<int64_t>(spec.num_threads, B_ / 8));
      if (groups_ < max_units) groups_ = 1;
      const int64_t units = groups_ > 1 ? 1 : max_units;
      unit_j0_.assign(static_cast<size_t>(units + 1), H_);
      for (int64_t u = 0; u < units; ++u) unit_j0_[u] = H_ * u / units / 16 * 16;
      pack_units(spec);
    } else {
      pack_natural(spec);
    }

    // Scratch per direction: xw | gates | h | c | h2 | tmp | bias | rbias |
    // sync (units' step counters, a cache line each).
    off_gates_ = lines(S_ * B_ * GH_);
    off_h_ = off_gates_ + lines(B_ * GH_);
    off_c_ = off_h_ + lines(B_ * H_);
    off_h2_ = off_c_ + lines(B_ * H_);
    off_tmp_ = off_h2_ + lines(B_ * H_);
    off_bias_ = off_tmp_ + lines(B_ * H_);
    off_rbias_ = off_bias_ + lines(GH_);
    off_sync_ = off_rbias_ + lines(GH_);
    dir_floats_ = off_sync_ + 16 * (units() + 1);
  }

  size_t scratch_bytes() const override { return static_cast<size_t>(D_ * dir_floats_) * sizeof(float); }

  void run(const KernelIO& io) override {
    Inputs in;
    in.X = in_ptr<float>(io, 0);
    in.W = in_ptr<float>(io, 1);
    in.R = in_ptr<float>(io, 2);
    in.B = has_bias_ ? in_ptr<float>(io, 3) : nullptr;
    in.lens = has_lens_ ? in_ptr<int32_t>(io, 4) : nullptr;
    in.h0 = has_h0_ ? in_ptr<float>(io, 5) : nullptr;
    in.c0 = has_c0_ ? in_ptr<float>(io, 6) : nullptr;
    in.P = has_p_ ? in_ptr<float>(io, 7) : nullptr;
    in.Y = want_[0] ? out_ptr<float>(io, 0) : nullptr;
    in.Yh = want_[1] ? out_ptr<float>(io, 1) : nullptr;
    in.Yc = want_[2] ? out_ptr<float>(io, 2) : nullptr;
    if (in.lens) {
      // Validated here, before any parallel part (which must never throw).
      for (int64_t b = 0; b < B_; ++b)
        if (in.lens[b] < 0 || in.lens[b] > S_)
          throw KernelError("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(in.lens[b]) +
                            " is outside [0, " + std::to_string(S_) + "] (the sequence length of X)");
      // Steps past a sequence's end are zero in Y.
      if (in.Y)
        for (int d = 0; d < D_; ++d)
          for (int64_t b = 0; b < B_; ++b)
            for (int64_t t = in.lens[b]; t < S_; ++t) std::memset(in.Y + y_index(t, d, b), 0, H_ * sizeof(float));
    }
    if (B_ == 0 || H_ == 0) return;
    float* scratch = static_cast<float*>(io.scratch);
    ThreadPool* pool = io.pool && io.pool->size() > 1 ? io.pool : nullptr;
    // Two directions on two threads, unless there are many threads and each
    // step's GEMM is big enough to use them all.
    const bool dir_parallel = pool && (pool->size() <= 3 || B_ * GH_ * H_ < (int64_t{1} << 21));
    if (D_ == 2 && dir_parallel) {
      pool->parallel_for(2, 1, [&](int64_t d0, int64_t d1) {
        for (int64_t d = d0; d < d1; ++d) run_direction(in, static_cast<int>(d), scratch + d * dir_floats_, nullptr);
      });
    } else {
      for (int d = 0; d < D_; ++d) run_direction(in, d, scratch + d * dir_floats_, pool);
    }
  }

 private:
  struct Inputs {
    const float *X, *W, *R, *B, *h0, *c0, *P;
    const int32_t* lens;
    float *Y, *Yh, *Yc;
  };

  // Packs W and R (per direction) in the ONNX gate order.
  void pack_natural(const NodeSpec& spec) {
    if (H_ > 0 && spec.input(1).const_data && I_ > 0) {
      const float* w = static_cast<const float*>(spec.input(1).const_data);
      for (int d = 0; d < D_; ++d) {
        w_packed_[d] = std::make_unique<PackedB>();
        table_.pack_b(w + d * GH_ * I_, I_, true, I_, GH_, w_packed_[d].get());
      }
    }
    if (H_ > 0 && spec.input(2).const_data) {
      const float* r = static_cast<const float*>(spec.input(2).const_data);
      for (int d = 0; d < D_; ++d) {
        const float* rd = r + d * GH_ * H_;
        r_packed_[d] = std::make_unique<PackedB>();
        if (split_r()) {
          table_.pack_b(rd, H_, true, H_, 2 * H_, r_packed_[d].get());
          rh_packed_[d] = std::make_unique<PackedB>();
          table_.pack_b(rd + 2 * H_ * H_, H_, true, H_, H_, rh_packed_[d].get());
        } else {
          table_.pack_b(rd, H_, true, H_, GH_, r_packed_[d].get());
        }
      }
    }
  }

  int64_t units() const { return std::max<int64_t>(0, static_cast<int64_t>(unit_j0_.size()) - 1); }
  // Column of gate g, hidden unit j in the permuted order: unit by unit,
  // inside a unit of width w gate block g at g*w. One unit: the ONNX order.
  int64_t col(int64_t g, int64_t j) const {
    int64_t u = 0;
    while (j >= unit_j0_[u + 1]) ++u;
    const int64_t j0 = unit_j0_[u], w = unit_j0_[u + 1] - j0;
    return G_ * j0 + g * w + (j - j0);
  }

  // W packed with its rows (gate columns of xw) permuted, R packed per unit.
  void pack_units(const NodeSpec& spec) {
    const float* w = static_cast<const float*>(spec.input(1).const_data);
    const float* r = static_cast<const float*>(spec.input(2).const_data);
    std::vector<float> tmp(static_cast<size_t>(GH_ * std::max(I_, H_)));
    for (int d = 0; d < D_; ++d) {
      for (int64_t g = 0; g < G_; ++g)
        for (int64_t j = 0; j < H_; ++j)
          std::memcpy(&tmp[col(g, j) * I_], w + (d * GH_ + g * H_ + j) * I_, I_ * sizeof(float));
      w_packed_[d] = std::make_unique<PackedB>();
      table_.pack_b(tmp.data(), I_, true, I_, GH_, w_packed_[d].get());
      for (int64_t g = 0; g < G_; ++g)
        for (int64_t j = 0; j < H_; ++j)
          std::memcpy(&tmp[col(g, j) * H_], r + (d * GH_ + g * H_ + j) * H_, H_ * sizeof(float));
      for (int64_t u = 0; u < units(); ++u) {
        const int64_t j0 = unit_j0_[u], wd = unit_j0_[u + 1] - j0;
        ru_packed_[d].push_back(std::make_unique<PackedB>());
        table_.pack_b(&tmp[G_ * j0 * H_], H_, true, H_, G_ * wd, ru_packed_[d].back().get());
      }
    }
  }

  // v (GH floats, ONNX gate order) -> the permuted order, via `work`.
  void permute_cols(float* v, float* work) const {
    for (int64_t g = 0; g < G_; ++g)
      for (int64_t j = 0; j < H_; ++j) work[col(g, j)] = v[g * H_ + j];
    std::memcpy(v, work, GH_ * sizeof(float));
  }

  // GRU without linear_before_reset multiplies r into h before the h-gate
  // GEMM, so R's z/r rows and h rows are two GEMMs.
  bool split_r() const { return cell_ == Cell::GRU && !lbr_; }

  int64_t x_row(int64_t t, int64_t b) const { return layout_ == 0 ? t * B_ + b : b * S_ + t; }
  int64_t y_index(int64_t t, int d, int64_t b) const {
    return (layout_ == 0 ? (t * D_ + d) * B_ + b : (b * S_ + t) * D_ + d) * H_;
  }
  int64_t state_index(int d, int64_t b) const { return (layout_ == 0 ? d * B_ + b : b * D_ + d) * H_; }

  // C[B, n] (row stride GH) = A[B, H] @ R_rows^T (+ bias), R_rows the n rows of R from `rd`.
  // With beta = 1 the product is added to C (C then holds the step's xw rows).
  void recurrent_gemm(const float* A, const float* rd, const PackedB* packed, int64_t n, float* C, const float* bias,
                      ThreadPool* pool, int64_t ldc = 0, float beta = 0.f) const {
    GemmArgs g;
    g.trans_b = true;
    g.M = B_;
    g.N = n;
    g.K = H_;
    g.A = A;
    g.lda = H_;
    g.B = rd;
    g.ldb = H_;
    g.C = C;
    g.ldc = ldc ? ldc : GH_;
    g.beta = beta;
    g.bias_col = bias;
    if (packed) table_.sgemm_packed(g, *packed, pool);
    else table_.sgemm(g, pool);
  }

  // Calls fn(b0, b1) over the batch rows, split over the pool when the
  // per-step work is large enough to pay for waking the threads.
  template <class F>
  void for_rows(ThreadPool* pool, const F& fn) const {
    constexpr int64_t kMinParallel = 16384;  // gate elements per step
    if (pool && B_ > 1 && B_ * GH_ >= kMinParallel) {
      int64_t grain = std::max<int64_t>(1, 4096 / GH_);
      pool->parallel_for(B_, grain, [&](int64_t b0, int64_t b1) { fn(b0, b1); });
    } else {
      fn(0, B_);
    }
  }

  // One row of the LSTM cell over hidden units [j0, j0 + w): g holds the
  // pre-activation gates as blocks i, o, f, c of w each; c is updated in
  // place and h = o * tanh(c) written (tmp: w floats). Shared by the
  // natural-order path (w = H) and the unit slices.
  void lstm_row(const GateFn* fn, float* g, float* c, float* h, int64_t w, int64_t j0, const float* Pd, float clip,
                float* tmp) const {
    const KernelTable& T = table_;
    const int64_t H = H_;
    float *gi = g, *go = g + w, *gf = g + 2 * w, *gc = g + 3 * w;
    if (!Pd && !input_forget_) {
      // The common case: i, o, f in one activation call.
      if (clip > 0.f) clip_inplace(g, 4 * w, clip);
      fn[0](T, g, 3 * w);
      fn[1](T, gc, w);
      // c = f * c + i * g (gi is dead afterwards and takes i * g).
      T.mul(gf, c, c, w);
      T.mul(gi, gc, gi, w);
      T.add(c, gi, c, w);
    } else {
      // Peepholes see c before (i, f) and after (o) the update.
      if (Pd)
        for (int64_t j = 0; j < w; ++j) {
          gi[j] += Pd[j0 + j] * c[j];
          gf[j] += Pd[2 * H + j0 + j] * c[j];
        }
      if (clip > 0.f) {
        clip_inplace(gi, w, clip);
        clip_inplace(gf, 2 * w, clip);  // f and c blocks
      }
      fn[0](T, gi, w);
      if (input_forget_) {
        for (int64_t j = 0; j < w; ++j) gf[j] = 1.f - gi[j];
      } else {
        fn[0](T, gf, w);
      }
      fn[1](T, gc, w);
      for (int64_t j = 0; j < w; ++j) c[j] = gf[j] * c[j] + gi[j] * gc[j];
      if (Pd)
        for (int64_t j = 0; j < w; ++j) go[j] += Pd[H + j0 + j] * c[j];
      if (clip > 0.f) clip_inplace(go, w, clip);
      fn[0](T, go, w);
    }
    fn[2](T, c, tmp, w);
    T.mul(go, tmp, h, w);
  }

  void run_direction(const Inputs& in, int d, float* base, ThreadPool* pool) const {
    float* xw = base;
    float* gates = base + off_gates_;
    float* h = base + off_h_;
    float* c = base + off_c_;
    float* tmp = base + off_tmp_;
    float* bias = base + off_bias_;
    float* rbias = base + off_rbias_;
    const bool rev = D_ == 2 ? d == 1 : reverse_;
    const GateFn* fn = acts_[d];
    const int64_t H = H_, GH = GH_;

    // Biases: everything that is simply added goes into the input GEMM.
    const float* Bd = in.B ? in.B + d * 2 * GH : nullptr;
    for (int64_t j = 0; j < GH; ++j) bias[j] = Bd ? Bd[j] + Bd[GH + j] : 0.f;
    const bool gru_lbr = cell_ == Cell::GRU && lbr_;
    if (gru_lbr) {
      // h = g(xWh + Wbh + r * (h Rh^T + Rbh)): Rbh stays with the recurrent GEMM.
      std::fill(rbias, rbias + 2 * H, 0.f);
      for (int64_t j = 0; j < H; ++j) {
        bias[2 * H + j] = Bd ? Bd[2 * H + j] : 0.f;
        rbias[2 * H + j] = Bd ? Bd[GH + 2 * H + j] : 0.f;
      }
    }

    if (fast_) {  // xw's columns (and so the biases) in the units' order
      permute_cols(bias, gates);
      if (gru_lbr) permute_cols(rbias, gates);
    }

    // Input projection of all time steps: xw = X @ W^T + bias.
    const int64_t rows = S_ * B_;
    if (rows > 0) {
      if (I_ == 0) {
        for (int64_t r = 0; r < rows; ++r) std::memcpy(xw + r * GH, bias, GH * sizeof(float));
      } else {
        GemmArgs g;
        g.trans_b = true;
        g.M = rows;
        g.N = GH;
        g.K = I_;
        g.A = in.X;
        g.lda = I_;
        g.B = in.W + d * GH * I_;
        g.ldb = I_;
        g.C = xw;
        g.ldc = GH;
        g.bias_col = bias;
        if (w_packed_[d]) table_.sgemm_packed(g, *w_packed_[d], pool);
        else table_.sgemm(g, pool);
      }
    }

    // Initial state.
    for (int64_t b = 0; b < B_; ++b) {
      if (in.h0) std::memcpy(h + b * H, in.h0 + state_index(d, b), H * sizeof(float));
      else std::fill(h + b * H, h + (b + 1) * H, 0.f);
      if (cell_ == Cell::LSTM) {
        if (in.c0) std::memcpy(c + b * H, in.c0 + state_index(d, b), H * sizeof(float));
        else std::fill(c + b * H, c + (b + 1) * H, 0.f);
      }
    }

    const float* Rd = in.R + d * GH * H;
    const float* Pd = in.P ? in.P + d * 3 * H : nullptr;
    const float clip = clip_;
    const KernelTable& T = table_;
    // Time index of batch row b at step s, or -1 when its sequence has ended.
    auto time_of = [&](int64_t s, int64_t b) -> int64_t {
      int64_t len = in.lens ? in.lens[b] : S_;
      if (s >= len) return -1;
      return rev ? len - 1 - s : s;
    };
    auto emit = [&](int64_t t, int64_t b) {
      if (in.Y) std::memcpy(in.Y + y_index(t, d, b), h + b * H, H * sizeof(float));
    };

    if (fast_) {
      auto rows = [&](int64_t b0, int64_t b1, ThreadPool* p) {
        run_units_path(in, d, rev, b0, b1, xw, gates, h, base + off_h2_, c, tmp, rbias, base + off_sync_, p);
      };
      if (groups_ > 1 && pool) {
        pool->parallel_for(groups_, 1, [&](int64_t g0, int64_t g1) {
          for (int64_t q = g0; q < g1; ++q) rows(B_ * q / groups_, B_ * (q + 1) / groups_, nullptr);
        });
      } else {
        rows(0, B_, pool);
      }
      // Final states below read h.
      if (S_ % 2) std::memcpy(h, base + off_h2_, B_ * H * sizeof(float));
    }
    for (int64_t s = 0; s < (fast_ ? 0 : S_); ++s) {
      // Without sequence_lens every row is at the same time step: the
      // recurrent product is accumulated straight into that step's xw rows
      // (beta = 1), which then serve as the gates buffer.
      const bool in_place = !in.lens && cell_ != Cell::GRU;
      const int64_t t_all = rev ? S_ - 1 - s : s;
      float* step_rows = xw + x_row(t_all, 0) * GH;
      const int64_t step_ld = layout_ == 0 ? GH : S_ * GH;
      auto gates_of = [&](int64_t t, int64_t b) { return in_place ? xw + x_row(t, b) * GH : gates + b * GH; };
      if (cell_ == Cell::LSTM) {
        if (in_place) recurrent_gemm(h, Rd, r_packed_[d].get(), GH, step_rows, nullptr, pool, step_ld, 1.f);
        else recurrent_gemm(h, Rd, r_packed_[d].get(), GH, gates, nullptr, pool);
        for_rows(pool, [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b) {
            int64_t t = time_of(s, b);
            if (t < 0) continue;
            float* g = gates_of(t, b);
            if (!in_place) T.add(g, xw + x_row(t, b) * GH, g, GH);
            lstm_row(fn, g, c + b * H, h + b * H, H, 0, Pd, clip, tmp + b * H);
            emit(t, b);
          }
        });
      } else if (cell_ == Cell::GRU) {
        // z and r (and with linear_before_reset the h-gate's h Rh^T + Rbh).
        recurrent_gemm(h, Rd, r_packed_[d].get(), lbr_ ? GH : 2 * H, gates, lbr_ ? rbias : nullptr, pool);
        for_rows(pool, [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b) {
            int64_t t = time_of(s, b);
            float* g = gates + b * GH;
            if (t < 0) {
              if (!lbr_) std::fill(tmp + b * H, tmp + (b + 1) * H, 0.f);
              continue;
            }
            const float* xr = xw + x_row(t, b) * GH;
            T.add(g, xr, g, 2 * H);
            if (clip > 0.f) clip_inplace(g, 2 * H, clip);
            fn[0](T, g, 2 * H);  // z and r
            const float* r = g + H;
            const float* hb = h + b * H;
            if (lbr_) {
              finish_gru_row(g, xr, hb, h + b * H, r, clip, fn[1]);
              emit(t, b);
            } else {
              float* rt = tmp + b * H;
              for (int64_t j = 0; j < H; ++j) rt[j] = r[j] * hb[j];
            }
          }
        });
        if (!lbr_) {
          // h-gate: (r * h) @ Rh^T; its biases Wbh + Rbh are already in xw.
          recurrent_gemm(tmp, Rd + 2 * H * H, rh_packed_[d].get(), H, gates + 2 * H, nullptr, pool);
          for_rows(pool, [&](int64_t b0, int64_t b1) {
            for (int64_t b = b0; b < b1; ++b) {
              int64_t t = time_of(s, b);
              if (t < 0) continue;
              float* g = gates + b * GH;
              finish_gru_row(g, xw + x_row(t, b) * GH, h + b * H, h + b * H, nullptr, clip, fn[1]);
              emit(t, b);
            }
          });
        }
      } else {
        if (in_place) recurrent_gemm(h, Rd, r_packed_[d].get(), H, step_rows, nullptr, pool, step_ld, 1.f);
        else recurrent_gemm(h, Rd, r_packed_[d].get(), H, gates, nullptr, pool);
        for_rows(pool, [&](int64_t b0, int64_t b1) {
          for (int64_t b = b0; b < b1; ++b) {
            int64_t t = time_of(s, b);
            if (t < 0) continue;
            float* g = gates_of(t, b);
            if (!in_place) T.add(g, xw + x_row(t, b) * GH, g, H);
            if (clip > 0.f) clip_inplace(g, H, clip);
            fn[0](T, g, H);
            std::memcpy(h + b * H, g, H * sizeof(float));
            emit(t, b);
          }
        });
      }
    }

    // Final states: the state of each row's last valid step. A sequence of
    // length 0 has none: its final state is zero (as in onnxruntime), not the initial one.
    for (int64_t b = 0; b < B_; ++b) {
      bool empty = (in.lens ? in.lens[b] : S_) == 0;
      if (empty) {
        if (in.Yh) std::fill(in.Yh + state_index(d, b), in.Yh + state_index(d, b) + H, 0.f);
        if (in.Yc) std::fill(in.Yc + state_index(d, b), in.Yc + state_index(d, b) + H, 0.f);
        continue;
      }
      if (in.Yh) std::memcpy(in.Yh + state_index(d, b), h + b * H, H * sizeof(float));
      if (in.Yc) std::memcpy(in.Yc + state_index(d, b), c + b * H, H * sizeof(float));
    }
  }

  // The step-unit path. Step s of unit u: the recurrent GEMM for the
  // unit's gate columns (G blocks of its w hidden units, adjacent in the
  // permuted order, R packed per unit), then the cell math for its hidden
  // units of every batch row: h(s) is read whole from one buffer and the
  // unit's slice of h(s+1) written to the other.
  //
  // With several threads the units of a step are claimed through per-unit
  // counters once every unit of step s-1 is done: one wait per step instead
  // of two fork-joins, and deadlock-free however many threads show up (a
  // thread only waits for a step whose units have all been taken by threads
  // that are running them, never while holding an unfinished unit).
  // Rows [b0, b1) only: batch groups (groups_) run on separate threads.
  // Determinism: each C element of a unit GEMM is reduced in the same order
  // whatever its column position or the GEMM's width (gemm_avx512.cpp,
  // gemm_avx2.cpp), and the cell math is elementwise with lane-independent
  // vector functions, so the result does not depend on the number of units.
  void run_units_path(const Inputs& in, int d, bool rev, int64_t b0, int64_t b1, float* xw, float* gates,
                      float* h0buf, float* h1buf, float* c, float* tmp, const float* rbias, float* sync,
                      ThreadPool* pool) const {
    const int64_t H = H_, GH = GH_, U = units();
    const GateFn* fn = acts_[d];
    const float* Pd = in.P ? in.P + d * 3 * H : nullptr;
    const float clip = clip_;
    const KernelTable& T = table_;
    float* hb[2] = {h0buf, h1buf};
    ThreadPool* gemm_pool = U == 1 ? pool : nullptr;
    const int64_t step_ld = layout_ == 0 ? GH : S_ * GH;  // xw rows of one step
    auto unit_step = [&](int64_t s, int64_t u) {
      const int64_t t = rev ? S_ - 1 - s : s;
      const float* hp = hb[s & 1];
      float* hn = hb[(s + 1) & 1];
      const int64_t j0 = unit_j0_[u], w = unit_j0_[u + 1] - j0, cb = G_ * j0;
      float* xs = xw + x_row(t, b0) * GH + cb;  // the unit's gate columns of row b0
      if (U > 1 && pool) {
        // h(s) was written by the other units' threads: fetch all of it at
        // once rather than line by line as the GEMM's broadcasts reach it.
        for (int64_t i = b0 * H; i < b1 * H; i += 16) __builtin_prefetch(hp + i, 0, 3);
      }
      GemmArgs g;
      g.M = b1 - b0;
      g.N = G_ * w;
      g.K = H;
      g.A = hp + b0 * H;
      g.lda = H;
      if (cell_ == Cell::GRU) {  // h Rh^T + Rbh must stay apart from xw's h-gate part
        g.C = gates + b0 * GH + cb;
        g.ldc = GH;
        g.bias_col = rbias + cb;
      } else {
        g.C = xs;
        g.ldc = step_ld;
        g.beta = 1.f;
      }
      T.sgemm_packed(g, *ru_packed_[d][u], gemm_pool);
      for (int64_t b = b0; b < b1; ++b) {
        float* gx = xs + (b - b0) * step_ld;
        const float* hprev = hp + b * H + j0;
        float* hout = hn + b * H + j0;
        if (fused_[d]) {
          if (cell_ == Cell::LSTM) T.lstm_cell(gx, c + b * H + j0, hout, w, clip);
          else T.gru_cell(gates + b * GH + cb, gx, hprev, hout, w, clip);
        } else if (cell_ == Cell::LSTM) {
          lstm_row(fn, gx, c + b * H + j0, hout, w, j0, Pd, clip, tmp + b * H + j0);
        } else if (cell_ == Cell::GRU) {  // linear_before_reset
          float* gg = gates + b * GH + cb;
          T.add(gg, gx, gg, 2 * w);
          if (clip > 0.f) clip_inplace(gg, 2 * w, clip);
          fn[0](T, gg, 2 * w);  // z and r
          const float *z = gg, *r = gg + w;
          float* hg = gg + 2 * w;
          T.mul(r, hg, hg, w);
          T.add(gx + 2 * w, hg, hg, w);
          if (clip > 0.f) clip_inplace(hg, w, clip);
          fn[1](T, hg, w);
          for (int64_t j = 0; j < w; ++j) hout[j] = (1.f - z[j]) * hg[j] + z[j] * hprev[j];
        } else {
          if (clip > 0.f) clip_inplace(gx, w, clip);
          fn[0](T, gx, hout, w);
        }
        if (in.Y) std::memcpy(in.Y + y_index(t, d, b) + j0, hout, w * sizeof(float));
      }
    };
    if (!pool || U == 1) {
      for (int64_t s = 0; s < S_; ++s)
        for (int64_t u = 0; u < U; ++u) unit_step(s, u);
      return;
    }
    // claimed[u]: steps of unit u taken so far; done: units finished. The
    // counters live in this run's scratch, a cache line each.
    auto counter = [sync](int64_t i) { return reinterpret_cast<std::atomic<int64_t>*>(sync + 16 * i); };
    for (int64_t i = 0; i <= U; ++i) new (counter(i)) std::atomic<int64_t>(0);
    std::atomic<int64_t>& done = *counter(U);
    auto wait_step = [&](int64_t s) {  // until every unit of step s-1 is done
      for (int spins = 0; done.load(std::memory_order_acquire) < s * U; ++spins) {
        if (spins < 2000) cpu_relax();
        else std::this_thread::yield();  // the thread we wait for lost its core
      }
    };
    auto claim = [&](int64_t s, int64_t u) {
      int64_t expect = s;
      std::atomic<int64_t>& claimed = *counter(u);
      return claimed.load(std::memory_order_relaxed) == s &&
             claimed.compare_exchange_strong(expect, s + 1, std::memory_order_acq_rel);
    };
    auto run_unit = [&](int64_t s, int64_t u) {
      unit_step(s, u);
      done.fetch_add(1, std::memory_order_release);
    };
    pool->parallel_for(std::min<int64_t>(pool->size(), U), 1, [&](int64_t t0, int64_t) {
      // A thread takes its own unit first (its slice of R then stays in one
      // core's L2), then any other unit of the step nobody has taken.
      for (int64_t s = 0; s < S_; ++s) {
        wait_step(s);
        for (int64_t k = 0; k < U; ++k) {
          const int64_t u = (t0 + k) % U;
          if (claim(s, u)) run_unit(s, u);
        }
      }
    });
  }

  // GRU h-gate and state update for one row. g = [z | r | hg] with z, r
  // activated; hg holds h Rh^T + Rbh (r given: linear_before_reset) or
  // (r * h) Rh^T (r null). hout may alias hprev.
  void finish_gru_row(float* g, const float* xr, const float* hprev, float* hout, const float* r, float clip,
                      const GateFn& gfn) const {
    const int64_t H = H_;
    float* z = g;
    float* hg = g + 2 * H;
    const float* xh = xr + 2 * H;
    if (r) table_.mul(r, hg, hg, H);
    table_.add(xh, hg, hg, H);
    if (clip > 0.f) clip_inplace(hg, H, clip);
    gfn(table_, hg, H);
    for (int64_t j = 0; j < H; ++j) hout[j] = (1.f - z[j]) * hg[j] + z[j] * hprev[j];
  }

  const KernelTable& table_;
  Cell cell_ = Cell::RNN;
  int64_t G_ = 1, S_ = 0, B_ = 0, I_ = 0, H_ = 0, GH_ = 0;
  int D_ = 1, layout_ = 0;
  bool reverse_ = false, input_forget_ = false, lbr_ = false;
  float clip_ = 0.f;
  bool has_bias_ = false, has_lens_ = false, has_h0_ = false, has_c0_ = false, has_p_ = false;
  bool want_[3] = {false, false, false};
  GateFn acts_[2][3];
  std::unique_ptr<PackedB> w_packed_[2], r_packed_[2], rh_packed_[2];
  // Step-unit path: gate columns permuted unit by unit (see col()), R packed per unit.
  bool fast_ = false;
  std::vector<int64_t> unit_j0_;  // unit u: hidden units [unit_j0_[u], unit_j0_[u+1])
  std::vector<std::unique_ptr<PackedB>> ru_packed_[2];
  int64_t groups_ = 1;  // batch groups, one per thread (see the constructor)
  bool fused_[2] = {false, false};  // per direction: the table's fused cell math (units path)
  int64_t off_gates_ = 0, off_h_ = 0, off_c_ = 0, off_h2_ = 0, off_tmp_ = 0, off_bias_ = 0, off_rbias_ = 0, off_sync_ = 0, dir_floats_ = 0;
};

}  // namespace

void register_recurrent_ops() {
  register_kernel("LSTM", make_kernel<RecurrentKernel>);
  register_kernel("GRU", make_kernel<RecurrentKernel>);
  register_kernel("RNN", make_kernel<RecurrentKernel>);
}

}  // namespace pyengine
