// Helpers shared by operator implementations: shape arithmetic, broadcasting
// and typed access to the KernelIO pointers.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/dispatch.h"
#include "runtime/kernel.h"

namespace pyengine {

template <class T>
inline const T* in_ptr(const KernelIO& io, size_t i) { return static_cast<const T*>(io.in[i]); }
template <class T>
inline T* out_ptr(const KernelIO& io, size_t i) { return static_cast<T*>(io.out[i]); }

// Element strides of `in` when broadcast (numpy rules) to `out`: 0 along
// broadcast dimensions. The result has out.size() entries.
inline std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t s = 1;
  for (int64_t i = static_cast<int64_t>(in.size()) - 1, o = static_cast<int64_t>(out.size()) - 1; i >= 0; --i, --o) {
    if (in[i] != 1) strides[o] = s;
    s *= in[i];
  }
  return strides;
}

inline std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t i = static_cast<int64_t>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

// Fused activation read from the node attributes set by the fusion pass.
inline Activation fused_activation(const NodeSpec& spec) {
  return Activation::from_name(spec.attrs.get_string("activation", ""),
                               static_cast<float>(spec.attrs.get_float("activation_alpha", 0.0)),
                               static_cast<float>(spec.attrs.get_float("activation_beta", 0.0)));
}

inline void require(bool cond, const std::string& msg) {
  if (!cond) throw KernelError(msg);
}

inline void require_dtype(const TensorDesc& d, DType want, const char* what) {
  if (d.dtype != want)
    throw KernelError(std::string(what) + " must be " + dtype_name(want) + ", got " + dtype_name(d.dtype));
}

template <class K>
std::unique_ptr<Kernel> make_kernel(const NodeSpec& spec) { return std::make_unique<K>(spec); }

// The bias (input 2) copied to the start of the kernel's scratch memory and
// zero-padded to `padded` floats (all zeros without a bias), for SIMD
// kernels that read it in whole vectors. Returns that copy.
inline float* padded_bias(const KernelIO& io, bool has_bias, int64_t count, int64_t padded) {
  float* b = static_cast<float*>(io.scratch);
  std::fill(b, b + padded, 0.f);
  if (has_bias) std::memcpy(b, in_ptr<float>(io, 2), static_cast<size_t>(count) * sizeof(float));
  return b;
}

}  // namespace pyengine
