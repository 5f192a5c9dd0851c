"""Attention layers for a tiny vision transformer: multi-head self-attention,
a pre-norm transformer encoder block, learned positional embedding, patch
embedding, a CLS token and a token readout.

Tokens are batch-first (N, T, D). Everything exports to standard opset-17 ONNX
ops: attention as MatMul/Reshape/Transpose/Softmax, layer norm as
LayerNormalization, and GELU written out with Erf (the Gelu op is opset 20).

The small dense / layer-norm / GELU pieces here are private on purpose: this
module does not depend on pyengine.train.layers.
"""
from __future__ import annotations

import math

import numpy as np

from .base import Layer, Parameter

try:  # scipy comes with scikit-learn (the `train` extra); math.erf is the fallback
    from scipy.special import erf as _erf
except ImportError:  # pragma: no cover
    _erf = np.vectorize(math.erf, otypes=[np.float64])

# Added to the scores of padded keys: exp() of it underflows to exactly 0 but,
# unlike -inf, a row whose keys are all padded still gives finite numbers.
MASK_VALUE = -1e9


def _rng(rng):
    return np.random.default_rng() if rng is None else rng


def _int64(ctx, hint, values):
    return ctx.constant(hint, np.array(values, dtype=np.int64))


# ---- private building blocks ---------------------------------------------------
class _Dense(Layer):
    """y = x @ W + b over the last axis of any-rank input; W is (in, out)."""

    def __init__(self, d_in, d_out, dtype=np.float32, rng=None, name="dense"):
        super().__init__()
        limit = 1.0 / math.sqrt(d_in)
        self.W = Parameter(_rng(rng).uniform(-limit, limit, (d_in, d_out)).astype(dtype), f"{name}.W")
        self.b = Parameter(np.zeros(d_out, dtype=dtype), f"{name}.b")
        self._x = None

    def forward(self, x):
        self._x = x
        return x @ self.W.data + self.b.data

    def backward(self, grad):
        x2 = self._x.reshape(-1, self._x.shape[-1])
        g2 = grad.reshape(-1, grad.shape[-1])
        self.W.grad += x2.T @ g2
        self.b.grad += g2.sum(axis=0)
        return grad @ self.W.data.T

    def export(self, ctx, x):
        y = ctx.node("MatMul", [x, ctx.constant(self.W.name, self.W.data)], hint=f"{self.W.name}_matmul")
        return ctx.node("Add", [y, ctx.constant(self.b.name, self.b.data)], hint=f"{self.b.name}_add")


class _LayerNorm(Layer):
    """Normalizes the last axis: (x - mean) / sqrt(var + eps) * gamma + beta."""

    def __init__(self, d, eps=1e-5, dtype=np.float32, name="ln"):
        super().__init__()
        self.eps = eps
        self.gamma = Parameter(np.ones(d, dtype=dtype), f"{name}.gamma")
        self.beta = Parameter(np.zeros(d, dtype=dtype), f"{name}.beta")
        self._cache = None

    def forward(self, x):
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        inv = 1.0 / np.sqrt((xc * xc).mean(axis=-1, keepdims=True) + self.eps)
        xhat = xc * inv
        self._cache = (xhat, inv)
        return xhat * self.gamma.data + self.beta.data

    def backward(self, grad):
        xhat, inv = self._cache
        d = xhat.shape[-1]
        self.gamma.grad += (grad * xhat).reshape(-1, d).sum(axis=0)
        self.beta.grad += grad.reshape(-1, d).sum(axis=0)
        g = grad * self.gamma.data
        return inv * (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True))

    def export(self, ctx, x):
        return ctx.node("LayerNormalization",
                        [x, ctx.constant(self.gamma.name, self.gamma.data),
                         ctx.constant(self.beta.name, self.beta.data)],
                        hint=self.gamma.name.rsplit(".", 1)[0], axis=-1, epsilon=float(self.eps))


class _GELU(Layer):
    """Exact GELU: 0.5 * x * (1 + erf(x / sqrt(2)))."""

    def __init__(self):
        super().__init__()
        self._x = None

    def forward(self, x):
        self._x = x
        return (x * (1.0 + _erf(x / math.sqrt(2.0))) * 0.5).astype(x.dtype, copy=False)

    def backward(self, grad):
        x = self._x
        cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return (grad * (cdf + x * pdf)).astype(grad.dtype, copy=False)

    def export(self, ctx, x):
        # Gelu is an opset-20 op; opset 17 spells it with Erf.
        t = ctx.node("Div", [x, ctx.constant("sqrt2", np.array(math.sqrt(2.0)))], hint="gelu_div")
        t = ctx.node("Erf", [t], hint="gelu_erf")
        t = ctx.node("Add", [t, ctx.constant("one", np.array(1.0))], hint="gelu_add")
        t = ctx.node("Mul", [x, t], hint="gelu_mul")
        return ctx.node("Mul", [t, ctx.constant("half", np.array(0.5))], hint="gelu_half")


# ---- attention -------------------------------------------------------------------
class MultiHeadSelfAttention(Layer):
    """softmax(Q K^T / sqrt(d_k) + mask) V over `heads` heads, then an output projection.

    forward(x, mask=None): x is (N, T, d_model); mask is an optional (N, T)
    boolean key-padding mask, True for real tokens, False for padding (padded
    keys get no attention; padded queries are still computed)."""

    def __init__(self, d_model, heads, dtype=np.float32, rng=None):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"MultiHeadSelfAttention: d_model={d_model} is not divisible by heads={heads}")
        rng = _rng(rng)
        self.d_model, self.heads, self.d_k = d_model, heads, d_model // heads
        self.q = _Dense(d_model, d_model, dtype, rng, "attn_q")
        self.k = _Dense(d_model, d_model, dtype, rng, "attn_k")
        self.v = _Dense(d_model, d_model, dtype, rng, "attn_v")
        self.out = _Dense(d_model, d_model, dtype, rng, "attn_out")
        self._cache = None

    def _split(self, t):  # (N, T, D) -> (N, h, T, d_k)
        n, s, _ = t.shape
        return t.reshape(n, s, self.heads, self.d_k).transpose(0, 2, 1, 3)

    def _merge(self, t):  # (N, h, T, d_k) -> (N, T, D)
        n, _, s, _ = t.shape
        return t.transpose(0, 2, 1, 3).reshape(n, s, self.d_model)

    def forward(self, x, mask=None):
        if x.ndim != 3 or x.shape[2] != self.d_model:
            raise ValueError(f"MultiHeadSelfAttention: expected input (N, T, {self.d_model}), got {x.shape}")
        q, k, v = (self._split(lin.forward(x)) for lin in (self.q, self.k, self.v))
        scale = np.asarray(1.0 / math.sqrt(self.d_k), dtype=q.dtype)
        s = (q @ k.transpose(0, 1, 3, 2)) * scale
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != x.shape[:2]:
                raise ValueError(f"MultiHeadSelfAttention: mask shape {mask.shape} != (N, T) {x.shape[:2]}")
            s = s + np.where(mask, 0.0, MASK_VALUE).astype(s.dtype)[:, None, None, :]
        s = s - s.max(axis=-1, keepdims=True)
        e = np.exp(s)
        p = e / e.sum(axis=-1, keepdims=True)
        self._cache = (q, k, v, p, scale)
        return self.out.forward(self._merge(p @ v))

    def backward(self, grad):
        q, k, v, p, scale = self._cache
        do = self._split(self.out.backward(grad))
        dp = do @ v.transpose(0, 1, 3, 2)
        dv = p.transpose(0, 1, 3, 2) @ do
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) * scale
        dq = ds @ k
        dk = ds.transpose(0, 1, 3, 2) @ q
        return (self.q.backward(self._merge(dq)) + self.k.backward(self._merge(dk))
                + self.v.backward(self._merge(dv)))

    def export(self, ctx, x, mask=None):
        """`mask`: name of an ONNX bool (N, T) value, or None."""
        split_shape = _int64(ctx, "heads_shape", [0, 0, self.heads, self.d_k])

        def heads(lin, perm):
            t = ctx.node("Reshape", [lin.export(ctx, x), split_shape], hint="attn_split")
            return ctx.node("Transpose", [t], hint="attn_heads", perm=perm)

        q = heads(self.q, [0, 2, 1, 3])
        k_t = heads(self.k, [0, 2, 3, 1])  # already transposed: (N, h, d_k, T)
        v = heads(self.v, [0, 2, 1, 3])
        s = ctx.node("MatMul", [q, k_t], hint="attn_scores")
        s = ctx.node("Mul", [s, ctx.constant("attn_scale", np.array(1.0 / math.sqrt(self.d_k)))],
                     hint="attn_scaled")
        if mask is not None:
            bias = ctx.node("Where", [mask, ctx.constant("mask_keep", np.array(0.0)),
                                      ctx.constant("mask_drop", np.array(MASK_VALUE))], hint="attn_mask")
            bias = ctx.node("Unsqueeze", [bias, _int64(ctx, "mask_axes", [1, 2])], hint="attn_mask4d")
            s = ctx.node("Add", [s, bias], hint="attn_masked")
        p = ctx.node("Softmax", [s], hint="attn_softmax", axis=-1)
        o = ctx.node("MatMul", [p, v], hint="attn_context")
        o = ctx.node("Transpose", [o], hint="attn_merge", perm=[0, 2, 1, 3])
        o = ctx.node("Reshape", [o, _int64(ctx, "merge_shape", [0, 0, self.d_model])], hint="attn_merged")
        return self.out.export(ctx, o)


class TransformerEncoderBlock(Layer):
    """Pre-norm encoder block: x + MHSA(LN(x)), then x + MLP(LN(x)) with a GELU MLP."""

    def __init__(self, d_model, heads, mlp_hidden=None, eps=1e-5, dtype=np.float32, rng=None):
        super().__init__()
        rng = _rng(rng)
        mlp_hidden = 4 * d_model if mlp_hidden is None else mlp_hidden
        self.ln1 = _LayerNorm(d_model, eps, dtype, "ln1")
        self.attn = MultiHeadSelfAttention(d_model, heads, dtype, rng)
        self.ln2 = _LayerNorm(d_model, eps, dtype, "ln2")
        self.fc1 = _Dense(d_model, mlp_hidden, dtype, rng, "mlp_fc1")
        self.act = _GELU()
        self.fc2 = _Dense(mlp_hidden, d_model, dtype, rng, "mlp_fc2")

    def forward(self, x, mask=None):
        x = x + self.attn.forward(self.ln1.forward(x), mask)
        return x + self.fc2.forward(self.act.forward(self.fc1.forward(self.ln2.forward(x))))

    def backward(self, grad):
        grad = grad + self.ln2.backward(self.fc1.backward(self.act.backward(self.fc2.backward(grad))))
        return grad + self.ln1.backward(self.attn.backward(grad))

    def export(self, ctx, x, mask=None):
        x = ctx.node("Add", [x, self.attn.export(ctx, self.ln1.export(ctx, x), mask)], hint="residual1")
        h = self.fc2.export(ctx, self.act.export(ctx, self.fc1.export(ctx, self.ln2.export(ctx, x))))
        return ctx.node("Add", [x, h], hint="residual2")


# ---- tokens in and out -------------------------------------------------------------
class PositionalEmbedding(Layer):
    """Adds a learned (max_len, d_model) table to the first T positions of (N, T, d_model)."""

    def __init__(self, max_len, d_model, dtype=np.float32, rng=None):
        super().__init__()
        self.pos = Parameter((_rng(rng).standard_normal((max_len, d_model)) * 0.02).astype(dtype), "pos")
        self._t = None

    def forward(self, x):
        t = x.shape[1]
        if x.ndim != 3 or t > self.pos.shape[0] or x.shape[2] != self.pos.shape[1]:
            raise ValueError(f"PositionalEmbedding: expected (N, T <= {self.pos.shape[0]}, {self.pos.shape[1]}), "
                             f"got {x.shape}")
        self._t = t
        return x + self.pos.data[:t]

    def backward(self, grad):
        self.pos.grad[:self._t] += grad.sum(axis=0)
        return grad

    def export(self, ctx, x):
        # Slice the table to the input's length: Shape(x)[1:2] is T.
        t = ctx.node("Shape", [x], hint="pos_len", start=1, end=2)
        table = ctx.node("Slice", [ctx.constant("pos_table", self.pos.data), _int64(ctx, "pos_start", [0]), t,
                                   _int64(ctx, "pos_axis", [0])], hint="pos_slice")
        return ctx.node("Add", [x, table], hint="pos_add")


class PatchEmbed(Layer):
    """Cuts (N, C, H, W) images (or their flat (N, C*H*W) form) into non-overlapping
    p x p patches, flattened channel-major as (C, p, p), and projects each to d_model:
    output (N, (H/p)*(W/p), d_model), patches in row-major order."""

    def __init__(self, image_size=8, patch_size=4, in_channels=1, d_model=32, dtype=np.float32, rng=None):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"PatchEmbed: image_size={image_size} is not a multiple of patch_size={patch_size}")
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.grid = image_size // patch_size
        self.num_patches = self.grid ** 2
        self.proj = _Dense(in_channels * patch_size ** 2, d_model, dtype, rng, "patch_proj")

    def _patch_shape(self):
        g, p = self.grid, self.patch_size
        return (self.in_channels, g, p, g, p)

    def forward(self, x):
        n = x.shape[0]
        if x[0].size != self.in_channels * self.image_size ** 2:
            raise ValueError(f"PatchEmbed: expected images of {self.in_channels}x{self.image_size}x"
                             f"{self.image_size} values, got input shape {x.shape}")
        self._in_shape = x.shape
        t = x.reshape((n,) + self._patch_shape()).transpose(0, 2, 4, 1, 3, 5)
        return self.proj.forward(t.reshape(n, self.num_patches, -1))

    def backward(self, grad):
        n = grad.shape[0]
        g, p, c = self.grid, self.patch_size, self.in_channels
        d = self.proj.backward(grad).reshape(n, g, g, c, p, p).transpose(0, 3, 1, 4, 2, 5)
        return d.reshape(self._in_shape)

    def export(self, ctx, x):
        t = ctx.node("Reshape", [x, _int64(ctx, "patch_grid", (-1,) + self._patch_shape())], hint="patch_grid")
        t = ctx.node("Transpose", [t], hint="patch_order", perm=[0, 2, 4, 1, 3, 5])
        t = ctx.node("Reshape", [t, _int64(ctx, "patch_flat", [-1, self.num_patches,
                                                                self.in_channels * self.patch_size ** 2])],
                     hint="patch_flat")
        return self.proj.export(ctx, t)


class ClsToken(Layer):
    """Prepends one learned token: (N, T, D) -> (N, T + 1, D)."""

    def __init__(self, d_model, dtype=np.float32, rng=None):
        super().__init__()
        self.cls = Parameter((_rng(rng).standard_normal((1, 1, d_model)) * 0.02).astype(dtype), "cls")

    def forward(self, x):
        tok = np.broadcast_to(self.cls.data, (x.shape[0], 1, x.shape[2]))
        return np.concatenate([tok.astype(x.dtype, copy=False), x], axis=1)

    def backward(self, grad):
        self.cls.grad += grad[:, :1].sum(axis=0, keepdims=True)
        return grad[:, 1:]

    def export(self, ctx, x):
        n = ctx.node("Shape", [x], hint="cls_batch", start=0, end=1)
        shape = ctx.node("Concat", [n, _int64(ctx, "cls_rest", [1, self.cls.shape[2]])], hint="cls_shape", axis=0)
        tok = ctx.node("Expand", [ctx.constant("cls_token", self.cls.data), shape], hint="cls_expand")
        return ctx.node("Concat", [tok, x], hint="cls_concat", axis=1)


class TokenPool(Layer):
    """Reads one vector per sequence: mode 'mean' averages the tokens, 'first'
    takes token 0 (the CLS token). (N, T, D) -> (N, D)."""

    def __init__(self, mode="mean"):
        super().__init__()
        if mode not in ("mean", "first"):
            raise ValueError(f"TokenPool: mode must be 'mean' or 'first', got {mode!r}")
        self.mode = mode
        self._shape = None

    def forward(self, x):
        self._shape = x.shape
        return x.mean(axis=1) if self.mode == "mean" else x[:, 0]

    def backward(self, grad):
        n, t, d = self._shape
        if self.mode == "mean":
            return np.broadcast_to((grad / t)[:, None, :], (n, t, d)).copy()
        out = np.zeros(self._shape, dtype=grad.dtype)
        out[:, 0] = grad
        return out

    def export(self, ctx, x):
        if self.mode == "mean":
            return ctx.node("ReduceMean", [x], hint="token_mean", axes=[1], keepdims=0)
        # ExportContext.constant stores 0-d arrays as shape (1,), so gather [0] and squeeze.
        t = ctx.node("Gather", [x, _int64(ctx, "token_index", [0])], hint="token_first", axis=1)
        return ctx.node("Squeeze", [t, _int64(ctx, "token_axis", [1])], hint="token_squeeze")
