"""pyengine.train: a readable NumPy trainer whose models export to ONNX."""
from .base import Layer, Parameter, Sequential
from .export import ExportContext, to_onnx

__all__ = ["Layer", "Parameter", "Sequential", "ExportContext", "to_onnx"]
