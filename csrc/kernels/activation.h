// Activations that can be fused into the epilogue of Conv/Gemm/MatMul kernels.
#pragma once
#include <cstdint>
#include <string>

namespace pyengine {

struct Activation {
  // Gelu: exact 0.5 x (1 + erf(x / sqrt 2)) (fused into Gemm/MatMul only).
  enum Kind : int32_t { None = 0, Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, Elu, Gelu };
  Kind kind = None;
  float alpha = 0.f;  // LeakyRelu/Elu/HardSigmoid alpha, Clip min
  float beta = 0.f;   // Clip max, HardSigmoid beta

  static Activation from_name(const std::string& name, float alpha, float beta);
};

}  // namespace pyengine
