// Identity: the copy the compiler inserts where a graph output must have its
// own memory (an output that is an input, a constant or a view).
#include <cstring>

#include "ops/common.h"

namespace pyengine {

namespace {

class CopyKernel : public Kernel {
 public:
  explicit CopyKernel(const NodeSpec& spec) : nbytes_(spec.outputs[0].nbytes()) {
    require(spec.input(0).nbytes() == nbytes_, "Identity input and output sizes differ");
  }
  void run(const KernelIO& io) override {
    if (nbytes_ && io.out[0] != io.in[0]) std::memcpy(io.out[0], io.in[0], nbytes_);
  }

 private:
  size_t nbytes_;
};

}  // namespace

void register_misc_ops() { register_kernel("Identity", make_kernel<CopyKernel>); }

}  // namespace pyengine
