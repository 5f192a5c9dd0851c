"""pyengine: a fast CPU inference engine for ONNX networks.

`import pyengine as ort` gives the parts of onnxruntime's Python API most
code uses: InferenceSession, SessionOptions, get_available_providers.
"""
from .errors import (InputError, InputTypeError, InvalidModelError, PyEngineError, ResourceLimitError,
                     UnsupportedOperatorError)
from .runtime.gpu import ProviderUnavailableError
from .runtime.native import _engine
from .runtime.options import ExecutionMode, GraphOptimizationLevel, RunOptions, SessionOptions
from .runtime.session import (InferenceSession, ModelMetadata, NodeArg, get_all_providers,
                              get_available_providers)

__version__ = "0.1.0"


def get_device() -> str:
    return "CPU"


def set_isa(name: str) -> None:
    """Forces the kernels' instruction set ('auto', 'scalar', 'avx2', 'avx512') for sessions created afterwards."""
    _engine.set_isa(name)


def current_isa() -> str:
    return _engine.current_isa()


def available_isas() -> list:
    return list(_engine.available_isas())


__all__ = [
    "InferenceSession", "SessionOptions", "RunOptions", "GraphOptimizationLevel", "ExecutionMode",
    "NodeArg", "ModelMetadata", "get_available_providers", "get_all_providers", "get_device",
    "set_isa", "current_isa", "available_isas", "PyEngineError", "InvalidModelError",
    "UnsupportedOperatorError", "InputError", "InputTypeError", "ResourceLimitError", "ProviderUnavailableError",
    "__version__",
]
