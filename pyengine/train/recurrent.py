"""Recurrent layers: RNN (tanh), LSTM and GRU over batch-first sequences.

Input is (N, T, F); the output is the whole hidden sequence (N, T, H) when
`return_sequences` is set, otherwise the last hidden state (N, H). The initial
state is zero. backward() runs full backpropagation through time.

The weights are stored exactly as ONNX's RNN/LSTM/GRU operators lay them out
(one direction), so each layer exports as a single ONNX node:
  W  (G*H, F)   input weights, gate blocks stacked along the first axis
  R  (G*H, H)   recurrent weights
  Wb (G*H,)     input bias       (ONNX B = concat(Wb, Rb))
  Rb (G*H,)     recurrent bias
Gate order: LSTM i, o, f, c; GRU z, r, h (linear_before_reset=1, which is
also PyTorch's GRU); RNN has one tanh block. onnxruntime supports only
layout=0 (time-major), so export wraps the node in Transposes.
Bidirectional pairs two such layers and exports them as one node with
direction="bidirectional".
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from .base import Layer, Parameter


def _sigmoid(x):
    # sigmoid(x) = (1 + tanh(x/2)) / 2: never overflows, and avoids the
    # boolean-mask gathers of a split by sign (the hot loop calls it per step).
    return 0.5 + 0.5 * np.tanh(0.5 * x)


def _matmul_2d(x, w):
    """(N, T, K) @ (K, G) -> (N, T, G) as one 2-D BLAS product (a 3-D
    operand makes NumPy run one small product per sample)."""
    n, t, k = x.shape
    return (x.reshape(n * t, k) @ w).reshape(n, t, w.shape[1])


def _sum_outer(a, b):
    """sum over (n, t) of outer(a[n, t], b[n, t]): (N, T, G), (N, T, K) -> (G, K).
    One BLAS matrix product (np.einsum would loop in C without BLAS, far slower)."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


class _Recurrent(Layer):
    """Shared parameters, shape checks and ONNX export; subclasses run the cell."""

    GATES = 1
    ONNX_OP = ""

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = True,
                 dtype=np.float32, rng=None):
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"{type(self).__name__}: sizes must be positive, got "
                             f"input_size={input_size}, hidden_size={hidden_size}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.return_sequences = bool(return_sequences)
        rng = np.random.default_rng() if rng is None else rng
        dtype = np.dtype(dtype)
        gh = self.GATES * self.hidden_size
        # PyTorch's default: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias.
        k = 1.0 / np.sqrt(self.hidden_size)

        def init(*shape):
            return rng.uniform(-k, k, size=shape).astype(dtype)

        self.W = Parameter(init(gh, self.input_size), "W")
        self.R = Parameter(init(gh, self.hidden_size), "R")
        self.Wb = Parameter(init(gh), "Wb")
        self.Rb = Parameter(init(gh), "Rb")
        self._cache = None

    # ---- forward / backward --------------------------------------------
    def forward(self, x):
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{type(self).__name__}: expected input (N, T, {self.input_size}), "
                             f"got shape {x.shape}")
        if x.shape[1] == 0:
            raise ValueError(f"{type(self).__name__}: sequence length must be at least 1")
        dtype = np.result_type(x.dtype, self.W.data.dtype)
        x = x.astype(dtype, copy=False)
        hs = self._run(x)  # (N, T, H)
        return hs if self.return_sequences else hs[:, -1]

    def backward(self, grad):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        x = self._cache["x"]
        n, t, _ = x.shape
        grad = np.asarray(grad, dtype=x.dtype)
        want = (n, t, self.hidden_size) if self.return_sequences else (n, self.hidden_size)
        if grad.shape != want:
            raise ValueError(f"{type(self).__name__}: gradient shape {grad.shape} does not match "
                             f"the output shape {want}")
        if self.return_sequences:
            dhs = grad
        else:
            dhs = np.zeros((n, t, self.hidden_size), dtype=x.dtype)
            dhs[:, -1] = grad
        dxa = self._backward_steps(dhs)  # gradient of x @ W.T + Wb, (N, T, G*H)
        self.W.grad += _sum_outer(dxa, x)
        self.Wb.grad += dxa.sum(axis=(0, 1))
        return _matmul_2d(dxa, self.W.data)

    def _input_proj(self, x):
        return _matmul_2d(x, self.W.data.T) + self.Wb.data

    # ---- ONNX export ---------------------------------------------------
    def _extra_attrs(self) -> dict:
        return {}

    def export(self, ctx, x: str) -> str:
        name = type(self).__name__.lower()
        w = ctx.constant(f"{name}_W", self.W.data[None])
        r = ctx.constant(f"{name}_R", self.R.data[None])
        b = ctx.constant(f"{name}_B", np.concatenate([self.Wb.data, self.Rb.data])[None])
        xt = ctx.node("Transpose", [x], hint=f"{name}_time_major", perm=[1, 0, 2])  # (T, N, F)
        y = ctx.fresh(f"{name}_Y")
        y_h = ctx.fresh(f"{name}_Y_h")
        outputs = [y] if self.return_sequences else ["", y_h]
        ctx.nodes.append(helper.make_node(self.ONNX_OP, [xt, w, r, b], outputs, name=ctx.fresh(self.ONNX_OP),
                                          hidden_size=self.hidden_size, direction="forward",
                                          **self._extra_attrs()))
        if self.return_sequences:
            # Y is (T, num_directions=1, N, H) -> (N, T, H)
            axes = ctx.constant(f"{name}_dir_axis", np.array([1], dtype=np.int64))
            y3 = ctx.node("Squeeze", [y, axes], hint=f"{name}_squeeze")
            return ctx.node("Transpose", [y3], hint=f"{name}_batch_major", perm=[1, 0, 2])
        # Y_h is (num_directions=1, N, H) -> (N, H)
        axes = ctx.constant(f"{name}_dir_axis", np.array([0], dtype=np.int64))
        return ctx.node("Squeeze", [y_h, axes], hint=f"{name}_last")


class RNN(_Recurrent):
    """Elman RNN: h_t = tanh(x_t W^T + Wb + h_{t-1} R^T + Rb)."""

    GATES = 1
    ONNX_OP = "RNN"

    def _extra_attrs(self):
        return {"activations": ["Tanh"]}

    def _run(self, x):
        n, t, _ = x.shape
        xa = self._input_proj(x) + self.Rb.data
        hs = np.zeros((n, t + 1, self.hidden_size), dtype=x.dtype)  # hs[:, 0] is h_0 = 0
        rt = self.R.data.T
        for s in range(t):
            hs[:, s + 1] = np.tanh(xa[:, s] + hs[:, s] @ rt)
        self._cache = {"x": x, "hs": hs}
        return hs[:, 1:]

    def _backward_steps(self, dhs):
        hs = self._cache["hs"]
        n, t, h = dhs.shape
        da = np.empty_like(dhs)
        dh_next = np.zeros((n, h), dtype=dhs.dtype)
        r = self.R.data
        for s in range(t - 1, -1, -1):
            dh = dhs[:, s] + dh_next
            da[:, s] = dh * (1.0 - hs[:, s + 1] ** 2)
            dh_next = da[:, s] @ r
        self.R.grad += _sum_outer(da, hs[:, :-1])
        self.Rb.grad += da.sum(axis=(0, 1))
        return da


class LSTM(_Recurrent):
    """LSTM with ONNX's gate order i, o, f, c (no peepholes):
    i, o, f = sigmoid(.), c~ = tanh(.), c_t = f*c_{t-1} + i*c~, h_t = o*tanh(c_t)."""

    GATES = 4
    ONNX_OP = "LSTM"

    def _run(self, x):
        n, t, _ = x.shape
        h = self.hidden_size
        xa = self._input_proj(x) + self.Rb.data
        hs = np.zeros((n, t + 1, h), dtype=x.dtype)
        cs = np.zeros((n, t + 1, h), dtype=x.dtype)
        gates = np.empty((n, t, 4 * h), dtype=x.dtype)  # activated i, o, f, c~
        rt = self.R.data.T
        for s in range(t):
            a = xa[:, s] + hs[:, s] @ rt
            g = gates[:, s]
            g[:, :3 * h] = _sigmoid(a[:, :3 * h])
            g[:, 3 * h:] = np.tanh(a[:, 3 * h:])
            i, o, f, c_bar = g[:, :h], g[:, h:2 * h], g[:, 2 * h:3 * h], g[:, 3 * h:]
            cs[:, s + 1] = f * cs[:, s] + i * c_bar
            hs[:, s + 1] = o * np.tanh(cs[:, s + 1])
        self._cache = {"x": x, "hs": hs, "cs": cs, "gates": gates}
        return hs[:, 1:]

    def _backward_steps(self, dhs):
        hs, cs, gates = self._cache["hs"], self._cache["cs"], self._cache["gates"]
        n, t, h = dhs.shape
        da = np.empty((n, t, 4 * h), dtype=dhs.dtype)
        dh_next = np.zeros((n, h), dtype=dhs.dtype)
        dc_next = np.zeros((n, h), dtype=dhs.dtype)
        r = self.R.data
        for s in range(t - 1, -1, -1):
            g = gates[:, s]
            i, o, f, c_bar = g[:, :h], g[:, h:2 * h], g[:, 2 * h:3 * h], g[:, 3 * h:]
            tc = np.tanh(cs[:, s + 1])
            dh = dhs[:, s] + dh_next
            dc = dc_next + dh * o * (1.0 - tc ** 2)
            d = da[:, s]
            d[:, :h] = dc * c_bar * i * (1.0 - i)              # i
            d[:, h:2 * h] = dh * tc * o * (1.0 - o)             # o
            d[:, 2 * h:3 * h] = dc * cs[:, s] * f * (1.0 - f)   # f
            d[:, 3 * h:] = dc * i * (1.0 - c_bar ** 2)          # c~
            dc_next = dc * f
            dh_next = d @ r
        self.R.grad += _sum_outer(da, hs[:, :-1])
        self.Rb.grad += da.sum(axis=(0, 1))
        return da


class GRU(_Recurrent):
    """GRU with ONNX's gate order z, r, h and linear_before_reset=1 (PyTorch's form):
    z, r = sigmoid(.), h~ = tanh(x W_h^T + Wb_h + r*(h_{t-1} R_h^T + Rb_h)),
    h_t = (1 - z)*h~ + z*h_{t-1}."""

    GATES = 3
    ONNX_OP = "GRU"

    def _extra_attrs(self):
        return {"linear_before_reset": 1}

    def _run(self, x):
        n, t, _ = x.shape
        h = self.hidden_size
        xa = self._input_proj(x)
        hs = np.zeros((n, t + 1, h), dtype=x.dtype)
        zr = np.empty((n, t, 2 * h), dtype=x.dtype)
        cand = np.empty((n, t, h), dtype=x.dtype)
        rec_h = np.empty((n, t, h), dtype=x.dtype)  # h_{t-1} R_h^T + Rb_h, needed for dr
        rt, rb = self.R.data.T, self.Rb.data
        for s in range(t):
            ha = hs[:, s] @ rt + rb
            zr[:, s] = _sigmoid(xa[:, s, :2 * h] + ha[:, :2 * h])
            z, r = zr[:, s, :h], zr[:, s, h:]
            rec_h[:, s] = ha[:, 2 * h:]
            cand[:, s] = np.tanh(xa[:, s, 2 * h:] + r * rec_h[:, s])
            hs[:, s + 1] = (1.0 - z) * cand[:, s] + z * hs[:, s]
        self._cache = {"x": x, "hs": hs, "zr": zr, "cand": cand, "rec_h": rec_h}
        return hs[:, 1:]

    def _backward_steps(self, dhs):
        c = self._cache
        hs, zr, cand, rec_h = c["hs"], c["zr"], c["cand"], c["rec_h"]
        n, t, h = dhs.shape
        dxa = np.empty((n, t, 3 * h), dtype=dhs.dtype)
        dha = np.empty((n, t, 3 * h), dtype=dhs.dtype)  # gradient of h_{t-1} R^T + Rb
        dh_next = np.zeros((n, h), dtype=dhs.dtype)
        r_w = self.R.data
        for s in range(t - 1, -1, -1):
            z, r = zr[:, s, :h], zr[:, s, h:]
            n_t = cand[:, s]
            dh = dhs[:, s] + dh_next
            dn = dh * (1.0 - z) * (1.0 - n_t ** 2)
            dz = dh * (hs[:, s] - n_t) * z * (1.0 - z)
            dr = dn * rec_h[:, s] * r * (1.0 - r)
            dxa[:, s, :h] = dz
            dxa[:, s, h:2 * h] = dr
            dxa[:, s, 2 * h:] = dn
            dha[:, s, :2 * h] = dxa[:, s, :2 * h]
            dha[:, s, 2 * h:] = dn * r
            dh_next = dh * z + dha[:, s] @ r_w
        self.R.grad += _sum_outer(dha, hs[:, :-1])
        self.Rb.grad += dha.sum(axis=(0, 1))
        return dxa


class Bidirectional(Layer):
    """Runs `forward_layer` over the sequence and `backward_layer` over it in
    reverse time, and concatenates their outputs on the feature axis:
    (N, T, 2H) with return_sequences (the reverse half at each step t is the
    state after reading steps T-1..t), else (N, 2H) with the reverse half
    being its state after the whole reversed sequence (time step 0).

    Both layers must be the same type (RNN, LSTM or GRU) and sizes, and agree
    on return_sequences. Exported as ONE ONNX node with
    direction="bidirectional" (weights stacked forward first, as ONNX orders
    the directions)."""

    def __init__(self, forward_layer: _Recurrent, backward_layer: _Recurrent):
        super().__init__()
        f, b = forward_layer, backward_layer
        if not isinstance(f, _Recurrent) or type(f) is not type(b):
            raise TypeError(f"Bidirectional: expected two RNN/LSTM/GRU layers of one type, got "
                            f"{type(f).__name__} and {type(b).__name__}")
        if (f.input_size, f.hidden_size, f.return_sequences) != (b.input_size, b.hidden_size, b.return_sequences):
            raise ValueError("Bidirectional: the layers differ in input_size, hidden_size or return_sequences: "
                             f"{(f.input_size, f.hidden_size, f.return_sequences)} vs "
                             f"{(b.input_size, b.hidden_size, b.return_sequences)}")
        self.fwd, self.bwd = f, b
        self.input_size, self.hidden_size, self.return_sequences = f.input_size, f.hidden_size, f.return_sequences

    def forward(self, x):
        x = np.asarray(x)
        yf = self.fwd.forward(x)
        yb = self.bwd.forward(x[:, ::-1])
        if self.return_sequences:
            yb = yb[:, ::-1]  # back to the input's time order
        return np.concatenate([yf, yb], axis=-1)

    def backward(self, grad):
        h = self.hidden_size
        grad = np.asarray(grad)
        gf, gb = grad[..., :h], grad[..., h:]
        if self.return_sequences:
            gb = gb[:, ::-1]
        return self.fwd.backward(np.ascontiguousarray(gf)) + self.bwd.backward(np.ascontiguousarray(gb))[:, ::-1]

    def export(self, ctx, x: str) -> str:
        f, b = self.fwd, self.bwd
        name = type(f).__name__.lower()
        w = ctx.constant(f"bi{name}_W", np.stack([f.W.data, b.W.data]))
        r = ctx.constant(f"bi{name}_R", np.stack([f.R.data, b.R.data]))
        bias = ctx.constant(f"bi{name}_B", np.stack([np.concatenate([l.Wb.data, l.Rb.data]) for l in (f, b)]))
        xt = ctx.node("Transpose", [x], hint=f"bi{name}_time_major", perm=[1, 0, 2])  # (T, N, F)
        y = ctx.fresh(f"bi{name}_Y")
        y_h = ctx.fresh(f"bi{name}_Y_h")
        # Per-direction attribute lists (RNN's activations) are given once per direction.
        attrs = {k: v * 2 if isinstance(v, list) else v for k, v in f._extra_attrs().items()}
        ctx.nodes.append(helper.make_node(f.ONNX_OP, [xt, w, r, bias], [y] if self.return_sequences else ["", y_h],
                                          name=ctx.fresh(f.ONNX_OP), hidden_size=self.hidden_size,
                                          direction="bidirectional", **attrs))
        if self.return_sequences:
            # Y is (T, 2, N, H) -> (N, T, 2, H) -> (N, T, 2H): forward half first
            yt = ctx.node("Transpose", [y], hint=f"bi{name}_batch_major", perm=[2, 0, 1, 3])
            shape = ctx.constant(f"bi{name}_concat", np.array([0, 0, -1], dtype=np.int64))
        else:
            # Y_h is (2, N, H) -> (N, 2, H) -> (N, 2H)
            yt = ctx.node("Transpose", [y_h], hint=f"bi{name}_batch_major", perm=[1, 0, 2])
            shape = ctx.constant(f"bi{name}_concat", np.array([0, -1], dtype=np.int64))
        return ctx.node("Reshape", [yt, shape], hint=f"bi{name}_out")


class ImageRows(Layer):
    """Reads images (N, C, H, W) as sequences of their rows: (N, H, C*W), so a
    recurrent layer sees H time steps of C*W features."""

    def __init__(self):
        super().__init__()
        self._shape = None

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim != 4:
            raise ValueError(f"ImageRows: expected images (N, C, H, W), got shape {x.shape}")
        self._shape = x.shape
        n, c, h, w = x.shape
        return x.transpose(0, 2, 1, 3).reshape(n, h, c * w)

    def backward(self, grad):
        n, c, h, w = self._shape
        return grad.reshape(n, h, c, w).transpose(0, 2, 1, 3)

    def export(self, ctx, x):
        t = ctx.node("Transpose", [x], hint="rows_order", perm=[0, 2, 1, 3])
        return ctx.node("Reshape", [t, ctx.constant("rows_shape", np.array([0, 0, -1], dtype=np.int64))],
                        hint="rows")
