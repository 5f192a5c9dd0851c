"""The trainer's layers. Each computes in the dtype of its input and
parameters (float32 for training, float64 for gradient checks), caches what
its backward needs, accumulates parameter gradients into Parameter.grad and
exports itself as standard ONNX (opset 17) nodes.

Weights are initialized from the module's generator (see `seed`) unless a
`rng` is given, so a script that calls `seed(s)` first builds the same model
every time.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Layer, Parameter
from .im2col import col2im, im2col, out_size

_rng = np.random.default_rng(0)


def seed(value: int) -> None:
    """Reseeds the generator used for weight initialization and dropout masks."""
    global _rng
    _rng = np.random.default_rng(value)


def _gen(rng):
    if rng is None:
        return _rng
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _init_weight(rng, shape, fan_in, init, dtype):
    if init == "he":  # ReLU nets: keeps the activations' variance
        w = rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)
    elif init == "xavier":  # tanh/sigmoid nets
        fan_out = shape[0] * (int(np.prod(shape[2:])) if len(shape) > 2 else 1)
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, shape)
    else:
        raise ValueError(f"unknown init {init!r}: expected 'he' or 'xavier'")
    return w.astype(dtype)


# ---------------------------------------------------------------- dense layers
class Linear(Layer):
    """y = x @ W.T + b over the last axis (any number of leading axes).
    W has PyTorch's (out_features, in_features) layout."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "he",
                 rng=None, dtype=np.float32):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(_init_weight(_gen(rng), (out_features, in_features), in_features, init, dtype),
                                "weight")
        self.bias = Parameter(np.zeros(out_features, dtype), "bias") if bias else None
        self._in_ndim = 2

    def forward(self, x):
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"Linear: expected input (..., {self.in_features}), got {x.shape}")
        self._in_ndim = x.ndim
        self._x = x
        # 2-D products only: NumPy runs stacked ones without BLAS.
        y = x.reshape(-1, self.in_features) @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        return y.reshape(x.shape[:-1] + (self.out_features,))

    def backward(self, grad):
        x2 = self._x.reshape(-1, self.in_features)
        g2 = grad.reshape(-1, self.out_features)
        self.weight.grad += g2.T @ x2
        if self.bias is not None:
            self.bias.grad += g2.sum(axis=0)
        return (g2 @ self.weight.data).reshape(self._x.shape)

    def export(self, ctx, x):
        w = ctx.constant("linear_weight", self.weight.data)
        if self._in_ndim == 2:
            ins = [x, w] + ([ctx.constant("linear_bias", self.bias.data)] if self.bias is not None else [])
            return ctx.node("Gemm", ins, transB=1, hint="linear")
        wt = ctx.constant("linear_weight_t", self.weight.data.T)
        y = ctx.node("MatMul", [x, wt], hint="linear_matmul")
        if self.bias is not None:
            y = ctx.node("Add", [y, ctx.constant("linear_bias", self.bias.data)], hint="linear_bias")
        return y


class Conv2D(Layer):
    """2-D convolution (cross-correlation) with stride, symmetric zero padding,
    dilation and groups, computed as im2col + one matrix product per group."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, init: str = "he", rng=None, dtype=np.float32):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2D: channels ({in_channels} in, {out_channels} out) must be divisible "
                             f"by groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        kh, kw = self.kernel_size
        fan_in = in_channels // groups * kh * kw
        self.weight = Parameter(
            _init_weight(_gen(rng), (out_channels, in_channels // groups, kh, kw), fan_in, init, dtype), "weight")
        self.bias = Parameter(np.zeros(out_channels, dtype), "bias") if bias else None

    def _geometry(self):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        return kh, kw, sh, sw, ph, pw, dh, dw

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2D: expected input (N, {self.in_channels}, H, W), got {x.shape}")
        kh, kw, sh, sw, ph, pw, dh, dw = self._geometry()
        n, c, h, w = x.shape
        oh, ow = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
        g, og = self.groups, self.out_channels // self.groups
        cols = im2col(x, kh, kw, sh, sw, ph, pw, dh, dw)
        # One 2-D matrix product per group, (Og, K) @ (K, N*L): NumPy hands
        # 2-D products to BLAS but loops stacked (3-D) ones itself, far slower.
        cols_t = cols.reshape(n, g, -1, oh * ow).transpose(1, 2, 0, 3).reshape(g, -1, n * oh * ow)
        wg = self.weight.data.reshape(g, og, -1)
        y = np.concatenate([wg[i] @ cols_t[i] for i in range(g)])
        y = y.reshape(self.out_channels, n, oh, ow).transpose(1, 0, 2, 3)
        y = np.ascontiguousarray(y)
        if self.bias is not None:
            y += self.bias.data[:, None, None]
        self._cols_t, self._xshape = cols_t, x.shape
        return y

    def backward(self, grad):
        kh, kw, sh, sw, ph, pw, dh, dw = self._geometry()
        n, c, h, w = self._xshape
        g, og = self.groups, self.out_channels // self.groups
        oh, ow = grad.shape[2:]
        g_t = grad.transpose(1, 0, 2, 3).reshape(g, og, n * oh * ow)
        if self.bias is not None:
            self.bias.grad += grad.sum(axis=(0, 2, 3))
        cols_t = self._cols_t
        self.weight.grad += np.stack([g_t[i] @ cols_t[i].T for i in range(g)]).reshape(self.weight.shape)
        wg = self.weight.data.reshape(g, og, -1)
        dcols_t = np.stack([wg[i].T @ g_t[i] for i in range(g)])  # (G, Cg*kh*kw, N*L)
        dcols = dcols_t.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 1, 2, 4, 5)
        dcols = np.ascontiguousarray(dcols)
        return col2im(dcols, h, w, sh, sw, ph, pw, dh, dw)

    def export(self, ctx, x):
        kh, kw, sh, sw, ph, pw, dh, dw = self._geometry()
        ins = [x, ctx.constant("conv_weight", self.weight.data)]
        if self.bias is not None:
            ins.append(ctx.constant("conv_bias", self.bias.data))
        return ctx.node("Conv", ins, hint="conv", kernel_shape=[kh, kw], strides=[sh, sw],
                        pads=[ph, pw, ph, pw], dilations=[dh, dw], group=self.groups)


# ---------------------------------------------------------------- pooling
class _Pool2D(Layer):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride) if stride is not None else self.kernel_size
        self.padding = _pair(padding)
        if any(p * 2 > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{type(self).__name__}: padding {self.padding} must be at most half the kernel "
                             f"{self.kernel_size}")

    def _windows(self, x, pad_value):
        """(N*C, kh*kw, oh*ow) windows of x, padded with pad_value."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n, c, h, w = x.shape
        x1 = x.reshape(n * c, 1, h, w)
        if ph or pw:
            x1 = np.pad(x1, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
        cols = im2col(x1, kh, kw, sh, sw, 0, 0, 1, 1)
        oh, ow = cols.shape[4:]
        return cols.reshape(n * c, kh * kw, oh * ow), (oh, ow)

    def _unwindows(self, dcols, xshape, out_hw):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n, c, h, w = xshape
        oh, ow = out_hw
        dx = col2im(dcols.reshape(n * c, 1, kh, kw, oh, ow), h + 2 * ph, w + 2 * pw, sh, sw, 0, 0, 1, 1)
        return dx[:, :, ph:ph + h, pw:pw + w].reshape(xshape)

    def _attrs(self):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return dict(kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw])


class MaxPool2D(_Pool2D):
    """Max over each window; padding never wins (ONNX MaxPool semantics)."""

    def forward(self, x):
        cols, hw = self._windows(x, -np.inf)
        self._arg = cols.argmax(axis=1)[:, None, :]
        self._xshape, self._hw = x.shape, hw
        y = np.take_along_axis(cols, self._arg, axis=1)
        return y.reshape(x.shape[0], x.shape[1], *hw)

    def backward(self, grad):
        n, c = self._xshape[:2]
        kh, kw = self.kernel_size
        dcols = np.zeros((n * c, kh * kw, self._hw[0] * self._hw[1]), dtype=grad.dtype)
        np.put_along_axis(dcols, self._arg, grad.reshape(n * c, 1, -1), axis=1)
        return self._unwindows(dcols, self._xshape, self._hw)

    def export(self, ctx, x):
        return ctx.node("MaxPool", [x], hint="maxpool", **self._attrs())


class AvgPool2D(_Pool2D):
    """Mean over each window. With padding, count_include_pad=False (the ONNX
    default) divides by the number of real pixels in the window."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = False):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = count_include_pad

    def _divisor(self, xshape, dtype):
        kh, kw = self.kernel_size
        if self.count_include_pad or self.padding == (0, 0):
            return np.asarray(kh * kw, dtype)
        ones = np.ones((1, 1) + tuple(xshape[2:]), dtype)
        cnt, _ = self._windows(ones, 0.0)
        return cnt.sum(axis=1)  # (1, oh*ow)

    def forward(self, x):
        cols, hw = self._windows(x, 0.0)
        self._div = self._divisor(x.shape, x.dtype)
        self._xshape, self._hw = x.shape, hw
        return (cols.sum(axis=1) / self._div).reshape(x.shape[0], x.shape[1], *hw)

    def backward(self, grad):
        n, c = self._xshape[:2]
        kh, kw = self.kernel_size
        g = grad.reshape(n * c, 1, -1) / self._div.reshape(1, 1, -1) if self._div.ndim else \
            grad.reshape(n * c, 1, -1) / self._div
        dcols = np.broadcast_to(g, (n * c, kh * kw, g.shape[2]))
        return self._unwindows(np.ascontiguousarray(dcols), self._xshape, self._hw)

    def export(self, ctx, x):
        return ctx.node("AveragePool", [x], hint="avgpool", count_include_pad=int(self.count_include_pad),
                        **self._attrs())


# ---------------------------------------------------------------- normalization
def _norm_backward(grad_xhat, xhat, inv_std, axes, m):
    """Gradient through xhat = (x - mean) / std with mean/std over `axes` (m elements)."""
    s1 = grad_xhat.sum(axis=axes, keepdims=True)
    s2 = (grad_xhat * xhat).sum(axis=axes, keepdims=True)
    return inv_std / m * (m * grad_xhat - s1 - xhat * s2)


class BatchNorm(Layer):
    """Batch normalization over axis 1 of (N, C) or (N, C, H, W) inputs.
    Training normalizes with the batch statistics and updates running
    averages (unbiased variance, like PyTorch); eval uses the running ones."""

    _buffers = ("running_mean", "running_var")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype), "weight")
        self.bias = Parameter(np.zeros(num_features, dtype), "bias")
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm: expected (N, {self.num_features}, ...), got {x.shape}")
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if self.training:
            m = x.size // x.shape[1]
            mean = x.mean(axis=axes, keepdims=True)
            var = x.var(axis=axes, keepdims=True)
            mom = self.momentum
            self.running_mean = ((1 - mom) * self.running_mean + mom * mean.reshape(-1)).astype(
                self.running_mean.dtype)
            unbiased = var.reshape(-1) * (m / max(m - 1, 1))
            self.running_var = ((1 - mom) * self.running_var + mom * unbiased).astype(self.running_var.dtype)
        else:
            mean = self.running_mean.reshape(shape).astype(x.dtype)
            var = self.running_var.reshape(shape).astype(x.dtype)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = (x - mean) * inv_std
        self._cache = (xhat, inv_std, axes, shape, self.training)
        return xhat * self.weight.data.reshape(shape) + self.bias.data.reshape(shape)

    def backward(self, grad):
        xhat, inv_std, axes, shape, training = self._cache
        self.weight.grad += (grad * xhat).sum(axis=axes)
        self.bias.grad += grad.sum(axis=axes)
        gx = grad * self.weight.data.reshape(shape)
        if not training:
            return gx * inv_std
        return _norm_backward(gx, xhat, inv_std, axes, grad.size // grad.shape[1])

    def export(self, ctx, x):
        ins = [x, ctx.constant("bn_scale", self.weight.data), ctx.constant("bn_bias", self.bias.data),
               ctx.constant("bn_mean", self.running_mean), ctx.constant("bn_var", self.running_var)]
        return ctx.node("BatchNormalization", ins, hint="batchnorm", epsilon=float(self.eps))


BatchNorm1d = BatchNorm2d = BatchNorm


class LayerNorm(Layer):
    """Normalizes over the last len(normalized_shape) axes, then scales and shifts."""

    def __init__(self, normalized_shape, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = Parameter(np.ones(self.normalized_shape, dtype), "weight")
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype), "bias")

    def forward(self, x):
        k = len(self.normalized_shape)
        if x.shape[x.ndim - k:] != self.normalized_shape:
            raise ValueError(f"LayerNorm: expected input ending in {self.normalized_shape}, got {x.shape}")
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        inv_std = 1.0 / np.sqrt(x.var(axis=axes, keepdims=True) + self.eps)
        xhat = (x - mean) * inv_std
        self._cache = (xhat, inv_std, axes)
        return xhat * self.weight.data + self.bias.data

    def backward(self, grad):
        xhat, inv_std, axes = self._cache
        lead = tuple(range(grad.ndim - len(axes)))
        self.weight.grad += (grad * xhat).sum(axis=lead)
        self.bias.grad += grad.sum(axis=lead)
        m = int(np.prod(self.normalized_shape))
        return _norm_backward(grad * self.weight.data, xhat, inv_std, axes, m)

    def export(self, ctx, x):
        ins = [x, ctx.constant("ln_scale", self.weight.data), ctx.constant("ln_bias", self.bias.data)]
        return ctx.node("LayerNormalization", ins, hint="layernorm", axis=-len(self.normalized_shape),
                        epsilon=float(self.eps))


class Dropout(Layer):
    """Inverted dropout: in training zeroes a fraction p and scales the rest
    by 1/(1-p); identity in eval (and in the exported model)."""

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p
        self.rng = np.random.default_rng(_gen(rng).integers(2**63)) if rng is None else _gen(rng)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        self._mask = ((self.rng.random(x.shape) >= self.p) / (1.0 - self.p)).astype(x.dtype)
        return x * self._mask

    def backward(self, grad):
        return grad if self._mask is None else grad * self._mask

    def export(self, ctx, x):
        return x


# ---------------------------------------------------------------- activations
class ReLU(Layer):
    def forward(self, x):
        self._pos = x > 0
        return np.where(self._pos, x, 0).astype(x.dtype, copy=False)

    def backward(self, grad):
        return grad * self._pos

    def export(self, ctx, x):
        return ctx.node("Relu", [x])


class LeakyReLU(Layer):
    def __init__(self, alpha: float = 0.01):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        self._pos = x > 0
        return np.where(self._pos, x, x * x.dtype.type(self.alpha))

    def backward(self, grad):
        return np.where(self._pos, grad, grad * grad.dtype.type(self.alpha))

    def export(self, ctx, x):
        return ctx.node("LeakyRelu", [x], alpha=float(self.alpha))


def sigmoid(x):
    # exp(-log(1 + exp(-x))): never overflows for large |x|.
    return np.exp(-np.logaddexp(0, -x)).astype(x.dtype, copy=False)


class Sigmoid(Layer):
    def forward(self, x):
        self._y = sigmoid(x)
        return self._y

    def backward(self, grad):
        return grad * self._y * (1 - self._y)

    def export(self, ctx, x):
        return ctx.node("Sigmoid", [x])


class Tanh(Layer):
    def forward(self, x):
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad):
        return grad * (1 - self._y * self._y)

    def export(self, ctx, x):
        return ctx.node("Tanh", [x])


def _erf(x):
    try:
        from scipy.special import erf
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        erf = np.vectorize(math.erf, otypes=[np.float64])
    return erf(x).astype(x.dtype, copy=False)


class GELU(Layer):
    """Exact GELU, x * Phi(x). Opset 17 has no Gelu op, so it exports as
    0.5 * x * (1 + Erf(x / sqrt(2)))."""

    def forward(self, x):
        self._x = x
        self._cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
        return x * self._cdf

    def backward(self, grad):
        x = self._x
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return grad * (self._cdf + x * pdf)

    def export(self, ctx, x):
        d = ctx.node("Div", [x, ctx.constant("gelu_sqrt2", np.array(math.sqrt(2.0)))])
        e = ctx.node("Erf", [d])
        a = ctx.node("Add", [e, ctx.constant("gelu_one", np.array(1.0))])
        m = ctx.node("Mul", [x, a])
        return ctx.node("Mul", [m, ctx.constant("gelu_half", np.array(0.5))], hint="gelu")


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class Softmax(Layer):
    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        self._y = softmax(x, self.axis)
        return self._y

    def backward(self, grad):
        y = self._y
        return y * (grad - (grad * y).sum(axis=self.axis, keepdims=True))

    def export(self, ctx, x):
        return ctx.node("Softmax", [x], axis=self.axis)


# ---------------------------------------------------------------- shape / structure
class Flatten(Layer):
    """(N, ...) -> (N, prod(...))."""

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._shape)

    def export(self, ctx, x):
        return ctx.node("Flatten", [x], axis=1)


class Embedding(Layer):
    """Integer indices (any shape) -> rows of a (num_embeddings, dim) table."""

    def __init__(self, num_embeddings: int, embedding_dim: int, rng=None, dtype=np.float32):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(_gen(rng).normal(0.0, 1.0, (num_embeddings, embedding_dim)).astype(dtype), "weight")

    def forward(self, idx):
        idx = np.asarray(idx)
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding: expected integer indices, got {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise IndexError(f"Embedding: indices must be in [0, {self.num_embeddings}), got "
                             f"[{idx.min()}, {idx.max()}]")
        self._idx = idx
        return self.weight.data[idx]

    def backward(self, grad):
        np.add.at(self.weight.grad, self._idx.reshape(-1), grad.reshape(-1, self.embedding_dim))
        return None  # indices have no gradient

    def export(self, ctx, x):
        return ctx.node("Gather", [ctx.constant("embedding_weight", self.weight.data), x], axis=0,
                        hint="embedding")


class Residual(Layer):
    """y = x + f(x)."""

    def __init__(self, f: Layer):
        super().__init__()
        self.f = f

    def forward(self, x):
        return x + self.f.forward(x)

    def backward(self, grad):
        return grad + self.f.backward(grad)

    def export(self, ctx, x):
        return ctx.node("Add", [x, self.f.export(ctx, x)], hint="residual")


class Identity(Layer):
    def forward(self, x):
        return x

    def backward(self, grad):
        return grad

    def export(self, ctx, x):
        return x
