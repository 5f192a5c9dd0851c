#include "kernels/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

namespace pyengine {

Activation Activation::from_name(const std::string& name, float alpha, float beta) {
  Activation a;
  a.alpha = alpha;
  a.beta = beta;
  if (name.empty() || name == "None") a.kind = None;
  else if (name == "Relu") a.kind = Relu;
  else if (name == "LeakyRelu") a.kind = LeakyRelu;
  else if (name == "Clip") a.kind = Clip;
  else if (name == "Sigmoid") a.kind = Sigmoid;
  else if (name == "Tanh") a.kind = Tanh;
  else if (name == "HardSigmoid") a.kind = HardSigmoid;
  else if (name == "Elu") a.kind = Elu;
  else if (name == "Gelu") a.kind = Gelu;
  else throw std::invalid_argument("unknown fused activation '" + name + "'");
  return a;
}

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2:
#if defined(PYENGINE_HAVE_AVX2) && (defined(__GNUC__) || defined(__clang__))
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    case Isa::Avx512:
#if defined(PYENGINE_HAVE_AVX512) && (defined(__GNUC__) || defined(__clang__))
      // libgcc's probe also checks (XGETBV) that the OS saves the ZMM/opmask state.
      __builtin_cpu_init();
      return cpu_supports(Isa::Avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
      return false;
#endif
  }
  return false;
}

namespace {

KernelTable make_table(Isa isa) {
  KernelTable t;
  fill_gemm_ref(t);
  fill_vmath_ref(t);
  fill_vbinary_ref(t);
  fill_conv_ref(t);
  fill_conv_direct_ref(t);  // small-cnn
  fill_conv_wino_cl_ref(t);  // small-wino
#if defined(PYENGINE_HAVE_AVX2)
  if (isa == Isa::Avx2 || isa == Isa::Avx512) {
    t.isa = Isa::Avx2;
    t.name = "avx2";
    fill_gemm_avx2(t);
    fill_vmath_avx2(t);
    fill_vbinary_avx2(t);
    fill_conv_avx2(t);
    fill_conv_direct_avx2(t);  // small-cnn
    fill_conv_wino_cl_avx2(t);  // small-wino
    fill_conv_wino_avx2(t);  // [conv3x3]
    fill_pool_avx2(t);  // pool
  }
#endif
#if defined(PYENGINE_HAVE_AVX512)
  if (isa == Isa::Avx512) {  // families without AVX-512 code keep the AVX2 kernels
    t.isa = Isa::Avx512;
    t.name = "avx512";
    fill_gemm_avx512(t);
    fill_conv_direct_avx512(t);  // small-cnn
    fill_conv_wino_cl_avx512(t);  // small-wino
    fill_conv_avx512(t);  // dw-pool
    fill_vbinary_avx512(t);  // dw-pool
    fill_conv1x1_avx512(t);  // dw-pool
    fill_conv_wino_avx512(t);  // [conv3x3]
    fill_vmath_avx512(t);
    fill_pool_avx512(t);  // pool
    fill_rnn_avx512(t);  // rnn
  }
#endif
  return t;
}

Isa best_isa() {
  if (cpu_supports(Isa::Avx512)) return Isa::Avx512;
  return cpu_supports(Isa::Avx2) ? Isa::Avx2 : Isa::Scalar;
}

Isa parse_isa(const std::string& name) {
  if (name == "auto" || name.empty()) return best_isa();
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") {
    if (!cpu_supports(Isa::Avx2)) throw std::invalid_argument("ISA 'avx2' is not supported by this CPU or build");
    return Isa::Avx2;
  }
  if (name == "avx512") {
    if (!cpu_supports(Isa::Avx512)) throw std::invalid_argument("ISA 'avx512' is not supported by this CPU or build");
    return Isa::Avx512;
  }
  throw std::invalid_argument("unknown ISA '" + name + "' (expected auto, scalar, avx2 or avx512)");
}

Isa initial_isa() {
  const char* env = std::getenv("PYENGINE_ISA");
  if (!env) return best_isa();
  try {
    return parse_isa(env);
  } catch (const std::invalid_argument&) {
    return best_isa();  // reported by the Python layer, which validates the variable
  }
}

std::atomic<int32_t>& current() {
  static std::atomic<int32_t> isa{static_cast<int32_t>(initial_isa())};
  return isa;
}

}  // namespace

const KernelTable& kernels_for(Isa isa) {
  static const KernelTable scalar = make_table(Isa::Scalar);
  if (isa == Isa::Scalar) return scalar;
  static const KernelTable avx2 = make_table(cpu_supports(Isa::Avx2) ? Isa::Avx2 : Isa::Scalar);
  if (isa == Isa::Avx2 || !cpu_supports(Isa::Avx512)) return avx2;
  static const KernelTable avx512 = make_table(Isa::Avx512);
  return avx512;
}

const KernelTable& kernels() { return kernels_for(static_cast<Isa>(current().load())); }

void set_isa(const std::string& name) { current().store(static_cast<int32_t>(parse_isa(name))); }

std::string current_isa() { return kernels().name; }

std::vector<std::string> available_isas() {
  std::vector<std::string> v{"scalar"};
  if (cpu_supports(Isa::Avx2)) v.push_back("avx2");
  if (cpu_supports(Isa::Avx512)) v.push_back("avx512");
  return v;
}

}  // namespace pyengine
