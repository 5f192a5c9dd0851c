// Tensor descriptions shared by the plan and every kernel.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pyengine {

// Element types use ONNX TensorProto codes so Python can pass them unchanged.
enum class DType : int32_t {
  Undefined = 0,
  Float32 = 1,
  UInt8 = 2,
  Int8 = 3,
  UInt16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  Bool = 9,
  Float16 = 10,
  Float64 = 11,
  UInt32 = 12,
  UInt64 = 13,
};

size_t dtype_size(DType t);
const char* dtype_name(DType t);

using Shape = std::vector<int64_t>;

inline int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s);

// Static description of a tensor that a kernel reads or writes: its dtype and
// concrete shape are fixed when the plan is compiled; only the data pointer
// changes from run to run.
struct TensorDesc {
  DType dtype = DType::Undefined;
  Shape shape;
  // Present for constant inputs (weights): valid for the lifetime of the plan,
  // so kernels may pre-pack from it at construction.
  const void* const_data = nullptr;

  bool present() const { return dtype != DType::Undefined; }
  int64_t numel() const { return shape_numel(shape); }
  size_t rank() const { return shape.size(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
};

// Calls `f(T*)` with a typed null pointer for the element type `t`, so generic
// kernels are written once as templates.
#define PYENGINE_DISPATCH_NUMERIC(t, T, ...)                       \
  switch (t) {                                                     \
    case DType::Float32: { using T = float; __VA_ARGS__; break; }   \
    case DType::Float64: { using T = double; __VA_ARGS__; break; }  \
    case DType::Int32: { using T = int32_t; __VA_ARGS__; break; }   \
    case DType::Int64: { using T = int64_t; __VA_ARGS__; break; }   \
    case DType::Int8: { using T = int8_t; __VA_ARGS__; break; }     \
    case DType::UInt8: { using T = uint8_t; __VA_ARGS__; break; }   \
    case DType::Int16: { using T = int16_t; __VA_ARGS__; break; }   \
    case DType::UInt16: { using T = uint16_t; __VA_ARGS__; break; } \
    case DType::UInt32: { using T = uint32_t; __VA_ARGS__; break; } \
    case DType::UInt64: { using T = uint64_t; __VA_ARGS__; break; } \
    default: throw std::invalid_argument(std::string("unsupported element type ") + dtype_name(t)); \
  }

}  // namespace pyengine
