// Activation operators (Relu, LeakyRelu, Sigmoid, Tanh, Clip, ...), all run by
// the dispatched activation kernel that Conv/Gemm epilogues use as well.
#include "ops/common.h"

namespace pyengine {

namespace {

class ActivationKernel : public Kernel {
 public:
  ActivationKernel(const NodeSpec& spec, Activation act) : act_(act), table_(kernels()), n_(spec.outputs[0].numel()) {
    require_dtype(spec.input(0), DType::Float32, spec.op_type.c_str());
  }
  void run(const KernelIO& io) override {
    const float* x = in_ptr<float>(io, 0);
    float* y = out_ptr<float>(io, 0);
    io.pool->parallel_for(n_, 16384, [&](int64_t b, int64_t e) { table_.activation(x + b, y + b, e - b, act_); });
  }

 private:
  Activation act_;
  const KernelTable& table_;
  int64_t n_;
};

std::unique_ptr<Kernel> make_relu(const NodeSpec& s) { return std::make_unique<ActivationKernel>(s, Activation{Activation::Relu, 0.f, 0.f}); }

}  // namespace

void register_activation_ops() { register_kernel("Relu", make_relu); }

}  // namespace pyengine
