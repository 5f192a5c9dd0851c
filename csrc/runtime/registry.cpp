#include <map>
#include <mutex>

#include "runtime/kernel.h"

namespace pyengine {

namespace {
std::map<std::string, KernelFactory>& table() {
  static std::map<std::string, KernelFactory> t;
  return t;
}

void register_all_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_elementwise_ops();
    register_activation_ops();
    register_linalg_ops();
    register_conv_ops();
    register_pool_ops();
    register_normalization_ops();
    register_reduce_ops();
    register_tensor_ops();
    register_shape_ops();
    register_misc_ops();
    register_recurrent_ops();
    register_attention_ops();
  });
}
}  // namespace

const TensorDesc& NodeSpec::input(size_t i) const {
  static const TensorDesc absent;
  return i < inputs.size() ? inputs[i] : absent;
}

void register_kernel(const std::string& op_type, KernelFactory factory) { table()[op_type] = factory; }

KernelFactory find_kernel(const std::string& op_type) {
  register_all_once();
  auto it = table().find(op_type);
  return it == table().end() ? nullptr : it->second;
}

std::vector<std::string> registered_ops() {
  register_all_once();
  std::vector<std::string> names;
  for (auto& kv : table()) names.push_back(kv.first);
  return names;
}

std::unique_ptr<Kernel> create_kernel(const NodeSpec& spec) {
  KernelFactory f = find_kernel(spec.op_type);
  if (!f) throw KernelError("no kernel registered for operator '" + spec.op_type + "'");
  return f(spec);
}

}  // namespace pyengine
