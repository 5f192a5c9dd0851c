"""Exceptions raised by pyengine. Each subclasses the built-in exception a
caller would catch for the same problem (ValueError, TypeError)."""


class PyEngineError(Exception):
    """Base class of pyengine's own errors."""


class InvalidModelError(PyEngineError, ValueError):
    """The file or bytes are not a valid ONNX model, or the model is inconsistent."""


class UnsupportedOperatorError(PyEngineError, NotImplementedError):
    """The model uses operators (or operator features) that pyengine does not implement."""

    def __init__(self, message, unsupported=None):
        super().__init__(message)
        #: {op_type: [node names]} of what is missing.
        self.unsupported = dict(unsupported or {})


class InputError(PyEngineError, ValueError):
    """An input given to run() has a wrong name, rank or shape."""


class InputTypeError(PyEngineError, TypeError):
    """An input given to run() has the wrong element type."""


class ResourceLimitError(PyEngineError, MemoryError):
    """A plan would need more memory than the configured limit (refused before allocating)."""
