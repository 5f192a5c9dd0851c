"""The trainer's building blocks: Parameter, Layer and Sequential.

A Layer computes `forward(x)` and remembers what `backward(grad)` needs;
backward returns the gradient with respect to the layer's input and adds the
gradients of its parameters to `Parameter.grad`. Layers that contain layers
list them in `children()`, so parameters, train/eval mode and export walk the
whole model.
"""
from __future__ import annotations

import numpy as np


class Parameter:
    """A trainable array and its accumulated gradient."""

    def __init__(self, data: np.ndarray, name: str = ""):
        self.data = np.asarray(data)
        self.grad = np.zeros_like(self.data)
        self.name = name

    def zero_grad(self) -> None:
        self.grad[...] = 0

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


class Layer:
    """Base class. Subclasses implement forward/backward (and export for ONNX)."""

    def __init__(self):
        self.training = True

    # ---- computation -----------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    # ---- structure -------------------------------------------------------
    def params(self) -> list:
        """Parameters owned directly by this layer (not its children)."""
        return [v for v in vars(self).values() if isinstance(v, Parameter)]

    def children(self) -> list:
        found = []
        for v in vars(self).values():
            if isinstance(v, Layer):
                found.append(v)
            elif isinstance(v, (list, tuple)):
                found.extend(x for x in v if isinstance(x, Layer))
        return found

    def parameters(self) -> list:
        out = list(self.params())
        for c in self.children():
            out.extend(c.parameters())
        return out

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def train(self, mode: bool = True) -> "Layer":
        self.training = mode
        for c in self.children():
            c.train(mode)
        return self

    def eval(self) -> "Layer":
        return self.train(False)

    def astype(self, dtype) -> "Layer":
        """Converts every parameter and buffer in place (float64 for gradient checks)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = np.zeros_like(p.data)
        self._cast_buffers(dtype)
        return self

    def _cast_buffers(self, dtype) -> None:
        for key in getattr(self, "_buffers", ()):
            setattr(self, key, np.asarray(getattr(self, key)).astype(dtype))
        for c in self.children():
            c._cast_buffers(dtype)

    def state_dict(self, prefix: str = "") -> dict:
        """name -> array for every parameter and buffer (running statistics)."""
        state = {}
        for key, v in vars(self).items():
            if isinstance(v, Parameter):
                state[prefix + key] = v.data
            elif isinstance(v, Layer):
                state.update(v.state_dict(prefix + key + "."))
            elif isinstance(v, (list, tuple)):
                for i, x in enumerate(v):
                    if isinstance(x, Layer):
                        state.update(x.state_dict(f"{prefix}{key}.{i}."))
        for key in getattr(self, "_buffers", ()):
            state[prefix + key] = getattr(self, key)
        return state

    def load_state_dict(self, state: dict, prefix: str = "") -> None:
        for key, v in vars(self).items():
            if isinstance(v, Parameter):
                arr = state[prefix + key]
                if arr.shape != v.data.shape:
                    raise ValueError(f"{prefix + key}: checkpoint shape {arr.shape} != model shape {v.data.shape}")
                v.data[...] = arr
            elif isinstance(v, Layer):
                v.load_state_dict(state, prefix + key + ".")
            elif isinstance(v, (list, tuple)):
                for i, x in enumerate(v):
                    if isinstance(x, Layer):
                        x.load_state_dict(state, f"{prefix}{key}.{i}.")
        for key in getattr(self, "_buffers", ()):
            setattr(self, key, np.array(state[prefix + key]))

    # ---- ONNX export -----------------------------------------------------
    def export(self, ctx, x: str) -> str:
        """Adds this layer's ONNX nodes reading value `x`; returns the output value's name."""
        raise NotImplementedError(f"{type(self).__name__} cannot be exported to ONNX yet")


class Sequential(Layer):
    def __init__(self, *layers: Layer):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def export(self, ctx, x: str) -> str:
        for layer in self.layers:
            x = layer.export(ctx, x)
        return x

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)
