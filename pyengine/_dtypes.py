"""Element types: ONNX TensorProto codes, NumPy dtypes and onnxruntime's type strings."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto

_ONNX_TO_NUMPY = {
    TensorProto.FLOAT: np.dtype(np.float32),
    TensorProto.DOUBLE: np.dtype(np.float64),
    TensorProto.FLOAT16: np.dtype(np.float16),
    TensorProto.INT8: np.dtype(np.int8),
    TensorProto.INT16: np.dtype(np.int16),
    TensorProto.INT32: np.dtype(np.int32),
    TensorProto.INT64: np.dtype(np.int64),
    TensorProto.UINT8: np.dtype(np.uint8),
    TensorProto.UINT16: np.dtype(np.uint16),
    TensorProto.UINT32: np.dtype(np.uint32),
    TensorProto.UINT64: np.dtype(np.uint64),
    TensorProto.BOOL: np.dtype(np.bool_),
    TensorProto.STRING: np.dtype(object),
}
_NUMPY_TO_ONNX = {v: k for k, v in _ONNX_TO_NUMPY.items()}

_TYPE_STRINGS = {
    TensorProto.FLOAT: "tensor(float)",
    TensorProto.DOUBLE: "tensor(double)",
    TensorProto.FLOAT16: "tensor(float16)",
    TensorProto.INT8: "tensor(int8)",
    TensorProto.INT16: "tensor(int16)",
    TensorProto.INT32: "tensor(int32)",
    TensorProto.INT64: "tensor(int64)",
    TensorProto.UINT8: "tensor(uint8)",
    TensorProto.UINT16: "tensor(uint16)",
    TensorProto.UINT32: "tensor(uint32)",
    TensorProto.UINT64: "tensor(uint64)",
    TensorProto.BOOL: "tensor(bool)",
    TensorProto.STRING: "tensor(string)",
}

# Element types the native runtime can hold in its buffers.
NATIVE_DTYPES = frozenset(
    np.dtype(t)
    for t in (np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64,
              np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)
)

FLOAT = np.dtype(np.float32)
INT64 = np.dtype(np.int64)
BOOL = np.dtype(np.bool_)


def to_numpy(elem_type: int) -> np.dtype:
    try:
        return _ONNX_TO_NUMPY[elem_type]
    except KeyError:
        name = TensorProto.DataType.Name(elem_type) if elem_type in TensorProto.DataType.values() else elem_type
        raise TypeError(f"element type {name} is not supported") from None


def to_onnx(dtype) -> int:
    try:
        return _NUMPY_TO_ONNX[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"element type {np.dtype(dtype)} is not supported") from None


def type_string(dtype) -> str:
    return _TYPE_STRINGS[to_onnx(dtype)]
