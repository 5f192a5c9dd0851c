// Scalar reference vector math: exact libm results, the oracle for SIMD.
#include <algorithm>
#include <cmath>

#include "kernels/dispatch.h"

namespace pyengine {

namespace {

inline float sigmoid1(float x) { return 1.f / (1.f + std::exp(-x)); }

void activation_ref(const float* x, float* y, int64_t n, const Activation& a) {
  switch (a.kind) {
    case Activation::None:
      if (x != y) std::copy(x, x + n, y);
      break;
    case Activation::Relu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.f ? 0.f : x[i];  // NaN stays NaN (as onnxruntime)
      break;
    case Activation::LeakyRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] >= 0.f ? x[i] : x[i] * a.alpha;
      break;
    case Activation::Clip:
      for (int64_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i], a.alpha), a.beta);
      break;
    case Activation::Sigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = sigmoid1(x[i]);
      break;
    case Activation::Tanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      break;
    case Activation::HardSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = std::max(0.f, std::min(1.f, a.alpha * x[i] + a.beta));
      break;
    case Activation::Elu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] >= 0.f ? x[i] : a.alpha * (std::exp(x[i]) - 1.f);
      break;
    case Activation::Gelu:  // as the Gelu op's reference (ops/activation.cpp)
      for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * 0.70710678118654752440f));
      break;
  }
}

void exp_ref(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]); }
void tanh_ref(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]); }
void sigmoid_ref(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = sigmoid1(x[i]); }
void erf_ref(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = std::erf(x[i]); }
void log_ref(const float* x, float* y, int64_t n) { for (int64_t i = 0; i < n; ++i) y[i] = std::log(x[i]); }

// Reductions accumulate in double: the reference is the accurate one.
float reduce_sum_ref(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return static_cast<float>(s);
}
float reduce_sumsq_ref(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(s);
}
template <bool MAX>
float reduce_ext_ref(const float* x, int64_t n) {
  float r = MAX ? -INFINITY : INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return NAN;
    r = MAX ? std::max(r, x[i]) : std::min(r, x[i]);
  }
  return r;
}
float exp_shift_sum_ref(const float* x, float shift, float* y, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - shift);
    s += y[i];
  }
  return static_cast<float>(s);
}

}  // namespace

void fill_vmath_ref(KernelTable& t) {
  t.activation = activation_ref;
  t.exp = exp_ref;
  t.tanh = tanh_ref;
  t.sigmoid = sigmoid_ref;
  t.erf = erf_ref;
  t.log = log_ref;
  t.reduce_sum = reduce_sum_ref;
  t.reduce_sumsq = reduce_sumsq_ref;
  t.reduce_max = reduce_ext_ref<true>;
  t.reduce_min = reduce_ext_ref<false>;
  t.exp_shift_sum = exp_shift_sum_ref;
}

}  // namespace pyengine
