// The interface every operator implements. A kernel is built once, when the
// plan is compiled, from a NodeSpec holding the node's attributes and the
// concrete dtypes/shapes of its inputs and outputs; run() then only moves data.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "runtime/attrs.h"
#include "runtime/tensor.h"
#include "runtime/thread_pool.h"

namespace pyengine {

struct NodeSpec {
  std::string op_type;
  std::string name;
  Attrs attrs;
  std::vector<TensorDesc> inputs;   // absent optional inputs have dtype Undefined
  std::vector<TensorDesc> outputs;
  int num_threads = 1;              // size of the pool the kernel will run on

  const TensorDesc& input(size_t i) const;
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i].present(); }
};

struct KernelIO {
  const void* const* in;  // one pointer per NodeSpec input (nullptr when absent)
  void* const* out;       // one pointer per NodeSpec output
  void* scratch;          // scratch_bytes() of memory, private to this run
  ThreadPool* pool;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(const KernelIO& io) = 0;
  // Temporary memory the kernel needs while it runs (all threads together).
  virtual size_t scratch_bytes() const { return 0; }
  // Which implementation an op with several chose for this node's shapes
  // ("winograd_cl", "direct"...; empty when there is one): shown in profiles
  // and checked by the tests that target a path.
  virtual std::string path() const { return {}; }
  // False when this kernel copied (packed) constant input `i` when it was
  // built and never reads it again: the plan may then let that memory go.
  virtual bool reads_constant_at_run(size_t /*input*/) const { return true; }
};

using KernelFactory = std::unique_ptr<Kernel> (*)(const NodeSpec& spec);

// Thrown for errors the user can cause (bad attribute values, indices out of
// range); surfaces in Python as ValueError naming the node.
struct KernelError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

void register_kernel(const std::string& op_type, KernelFactory factory);
KernelFactory find_kernel(const std::string& op_type);
std::vector<std::string> registered_ops();
std::unique_ptr<Kernel> create_kernel(const NodeSpec& spec);

// Each family of operators (one file under csrc/ops/) registers its kernels here.
void register_elementwise_ops();
void register_activation_ops();
void register_linalg_ops();
void register_conv_ops();
void register_pool_ops();
void register_normalization_ops();
void register_reduce_ops();
void register_tensor_ops();
void register_shape_ops();
void register_misc_ops();
void register_recurrent_ops();
void register_attention_ops();

}  // namespace pyengine
