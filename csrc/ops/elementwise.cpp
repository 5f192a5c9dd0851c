// Broadcasting binary arithmetic. float32 rows go through the dispatched
// vector kernels; other element types use the generic template loop.
#include <cmath>

#include "ops/broadcast.h"

namespace pyengine {

namespace {

enum class BinOp { Add, Sub, Mul, Div };

template <class T>
inline T apply(BinOp op, T a, T b) {
  switch (op) {
    case BinOp::Add: return a + b;
    case BinOp::Sub: return a - b;
    case BinOp::Mul: return a * b;
    case BinOp::Div:
      if constexpr (std::is_integral_v<T>) return b == 0 ? T(0) : static_cast<T>(a / b);
      else return a / b;
  }
  return a;
}

class BinaryKernel : public Kernel {
 public:
  BinaryKernel(const NodeSpec& spec, BinOp op)
      : op_(op), dtype_(spec.outputs[0].dtype), table_(kernels()),
        loop_({spec.input(0).shape, spec.input(1).shape}, spec.outputs[0].shape) {
    require(spec.input(0).dtype == spec.input(1).dtype, "inputs must have the same element type");
  }

  void run(const KernelIO& io) override {
    if (dtype_ == DType::Float32) {
      run_f32(io);
      return;
    }
    PYENGINE_DISPATCH_NUMERIC(dtype_, T, run_generic<T>(io));
  }

 private:
  void run_f32(const KernelIO& io) {
    const float* a = in_ptr<float>(io, 0);
    const float* b = in_ptr<float>(io, 1);
    float* y = out_ptr<float>(io, 0);
    int64_t len = loop_.row_len();
    int64_t sa = loop_.inner_stride(0), sb = loop_.inner_stride(1);
    BinaryFn vv = op_ == BinOp::Add ? table_.add : op_ == BinOp::Sub ? table_.sub : op_ == BinOp::Mul ? table_.mul : table_.div;
    BinaryScalarFn vs = op_ == BinOp::Add ? table_.add_scalar : op_ == BinOp::Sub ? table_.sub_scalar
                      : op_ == BinOp::Mul ? table_.mul_scalar : table_.div_scalar;
    BinaryScalarFn sv = op_ == BinOp::Add ? table_.add_scalar : op_ == BinOp::Sub ? table_.rsub_scalar
                      : op_ == BinOp::Mul ? table_.mul_scalar : table_.rdiv_scalar;
    int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(len, 1));
    io.pool->parallel_for(loop_.rows(), grain, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const float* pa = a + loop_.offset(0, r);
        const float* pb = b + loop_.offset(1, r);
        float* py = y + r * len;
        if (sa && sb) vv(pa, pb, py, len);
        else if (sa) vs(pa, *pb, py, len);
        else if (sb) sv(pb, *pa, py, len);
        else for (int64_t i = 0; i < len; ++i) py[i] = apply(op_, *pa, *pb);
      }
    });
  }

  template <class T>
  void run_generic(const KernelIO& io) {
    const T* a = in_ptr<T>(io, 0);
    const T* b = in_ptr<T>(io, 1);
    T* y = out_ptr<T>(io, 0);
    int64_t len = loop_.row_len();
    int64_t sa = loop_.inner_stride(0), sb = loop_.inner_stride(1);
    for (int64_t r = 0; r < loop_.rows(); ++r) {
      const T* pa = a + loop_.offset(0, r);
      const T* pb = b + loop_.offset(1, r);
      T* py = y + r * len;
      for (int64_t i = 0; i < len; ++i) py[i] = apply(op_, pa[i * sa], pb[i * sb]);
    }
  }

  BinOp op_;
  DType dtype_;
  const KernelTable& table_;
  BroadcastLoop loop_;
};

template <BinOp OP>
std::unique_ptr<Kernel> make_binary(const NodeSpec& spec) { return std::make_unique<BinaryKernel>(spec, OP); }

}  // namespace

void register_elementwise_ops() {
  register_kernel("Add", make_binary<BinOp::Add>);
  register_kernel("Sub", make_binary<BinOp::Sub>);
  register_kernel("Mul", make_binary<BinOp::Mul>);
  register_kernel("Div", make_binary<BinOp::Div>);
}

}  // namespace pyengine
