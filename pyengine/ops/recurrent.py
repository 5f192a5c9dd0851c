"""Recurrent operators: LSTM, GRU and RNN (float32, opsets 7 to 22).

One OpDef per op, sharing the attribute handling. Python resolves everything
the kernel should not care about: the direction becomes a count of
directions, the activations list gets its defaults and every activation
its alpha/beta, and which outputs the node really names.
The kernel (csrc/ops/recurrent.cpp) sees:

  num_directions  1 or 2;  reverse: 1 when the only direction is "reverse"
  hidden_size, layout (0: [seq, batch, ...], 1: [batch, seq, ...])
  clip            > 0 clips every gate pre-activation to [-clip, clip]; 0: none
  acts            comma-joined activation names, gates_per_direction x directions
  act_alpha, act_beta  one float per entry of acts
  input_forget (LSTM), linear_before_reset (GRU)
  want_outputs    one int per output: 1 when the node names it
"""
from __future__ import annotations

import numpy as np

from ..graph.ir import TensorInfo
from .registry import FLOAT_TYPES, OpDef, register

# name -> (canonical name, default alpha, default beta); the activations the
# kernel's table can run. Others in the ONNX list (Affine, ScaledTanh,
# ThresholdedRelu, Softsign, Softplus) are reported unsupported by check().
_ACTIVATIONS = {
    "sigmoid": ("Sigmoid", None, None),
    "tanh": ("Tanh", None, None),
    "relu": ("Relu", None, None),
    "leakyrelu": ("LeakyRelu", 0.01, None),
    "hardsigmoid": ("HardSigmoid", 0.2, 0.5),
    "elu": ("Elu", 1.0, None),
}
_DIRECTIONS = ("forward", "reverse", "bidirectional")


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class _Recurrent(OpDef):
    dtypes = FLOAT_TYPES
    gates = 1             # gate blocks stacked in W and R
    default_acts = ()     # per direction
    state_outputs = 1     # Y_h (+ Y_c for LSTM)

    # ---- attributes ----------------------------------------------------
    def _direction(self, node) -> str:
        return _str(node.attrs.get("direction", "forward"))

    def _num_dirs(self, node) -> int:
        return 2 if self._direction(node) == "bidirectional" else 1

    def _activation_names(self, node) -> list:
        names = [_str(a) for a in node.attrs.get("activations", [])]
        return names or list(self.default_acts) * self._num_dirs(node)

    def check(self, node):
        direction = self._direction(node)
        if direction not in _DIRECTIONS:
            return f"direction '{direction}' is not one of {', '.join(_DIRECTIONS)}"
        layout = node.attrs.get("layout", 0)
        if layout not in (0, 1):
            return f"layout {layout} is not 0 or 1"
        bad = [n for n in self._activation_names(node) if n.lower() not in _ACTIVATIONS]
        if bad:
            return (f"activation(s) {', '.join(bad)} not supported (supported: "
                    f"{', '.join(v[0] for v in _ACTIVATIONS.values())})")
        return self._check_extra(node)

    def _check_extra(self, node):
        return None

    def _activations(self, node):
        """Canonical names and each one's alpha and beta. activation_alpha/beta
        are consumed in order by the functions that take the parameter (as
        onnxruntime does); missing ones take the ONNX operator's default."""
        alphas = list(node.attrs.get("activation_alpha", []))
        betas = list(node.attrs.get("activation_beta", []))
        names, a_out, b_out = [], [], []
        for n in self._activation_names(node):
            canon, da, db = _ACTIVATIONS[n.lower()]
            a = b = 0.0
            if da is not None:
                a = float(alphas.pop(0)) if alphas else da
            if db is not None:
                b = float(betas.pop(0)) if betas else db
            names.append(canon)
            a_out.append(a)
            b_out.append(b)
        return names, a_out, b_out

    # ---- shapes --------------------------------------------------------
    def infer(self, node, ins):
        reason = self.check(node)
        if reason:
            raise NotImplementedError(f"node '{node.name}' ({node.op_type}): {reason}")

        def fail(msg):
            raise ValueError(f"node '{node.name}' ({node.op_type}): {msg}")

        n_acts, want = len(self._activation_names(node)), len(self.default_acts) * self._num_dirs(node)
        if n_acts != want:
            fail(f"activations lists {n_acts} functions, expected {want} ({len(self.default_acts)} per direction)")

        x, w, r = ins[0], ins[1], ins[2]
        if len(x.shape) != 3:
            fail(f"X must be 3-D, got shape {x.shape}")
        layout = node.attrs.get("layout", 0)
        seq, batch = (x.shape[0], x.shape[1]) if layout == 0 else (x.shape[1], x.shape[0])
        isz = x.shape[2]
        d = self._num_dirs(node)
        gh = r.shape[1] if len(r.shape) == 3 else -1
        hidden = node.attrs.get("hidden_size", gh // self.gates if gh > 0 else 0)
        g = self.gates
        if tuple(w.shape) != (d, g * hidden, isz):
            fail(f"W must have shape {(d, g * hidden, isz)} (directions, {g}*hidden_size, input_size), got {w.shape}")
        if tuple(r.shape) != (d, g * hidden, hidden):
            fail(f"R must have shape {(d, g * hidden, hidden)}, got {r.shape}")
        if w.dtype != x.dtype or r.dtype != x.dtype:
            fail(f"W and R must be {x.dtype}, got {w.dtype} and {r.dtype}")

        def opt(i):
            return ins[i] if i < len(ins) and ins[i] is not None else None

        bias_len = 2 * g * hidden
        if opt(3) is not None and tuple(opt(3).shape) != (d, bias_len):
            fail(f"B must have shape {(d, bias_len)}, got {opt(3).shape}")
        if opt(4) is not None:
            if opt(4).dtype != np.int32 or tuple(opt(4).shape) != (batch,):
                fail(f"sequence_lens must be int32 of shape {(batch,)}, got {opt(4).dtype} {opt(4).shape}")
        state = (d, batch, hidden) if layout == 0 else (batch, d, hidden)
        for i, what in self._state_inputs():
            if opt(i) is not None and tuple(opt(i).shape) != state:
                fail(f"{what} must have shape {state}, got {opt(i).shape}")
        self._infer_extra(node, ins, d, hidden, fail)
        y = (seq, d, batch, hidden) if layout == 0 else (batch, seq, d, hidden)
        return [TensorInfo(x.dtype, y)] + [TensorInfo(x.dtype, state) for _ in range(self.state_outputs)]

    def _state_inputs(self):
        return [(5, "initial_h")]

    def _infer_extra(self, node, ins, d, hidden, fail):
        pass

    def kernel_attrs(self, node, ins):
        names, alphas, betas = self._activations(node)
        d = self._num_dirs(node)
        hidden = ins[2].shape[1] // self.gates
        clip = node.attrs.get("clip")
        n_out = 1 + self.state_outputs
        want = [1 if i < len(node.outputs) and node.outputs[i] else 0 for i in range(n_out)]
        return {
            "num_directions": d,
            "reverse": int(self._direction(node) == "reverse"),
            "hidden_size": int(hidden),
            "layout": int(node.attrs.get("layout", 0)),
            "clip": float(clip) if clip is not None else 0.0,
            "acts": ",".join(names),
            "act_alpha": [float(a) for a in alphas],
            "act_beta": [float(b) for b in betas],
            "input_forget": int(node.attrs.get("input_forget", 0)),
            "linear_before_reset": int(node.attrs.get("linear_before_reset", 0)),
            "want_outputs": want,
        }


@register
class LSTM(_Recurrent):
    op_type = kernel = "LSTM"
    gates = 4
    default_acts = ("Sigmoid", "Tanh", "Tanh")
    state_outputs = 2

    def _state_inputs(self):
        return [(5, "initial_h"), (6, "initial_c")]

    def _infer_extra(self, node, ins, d, hidden, fail):
        if len(ins) > 7 and ins[7] is not None and tuple(ins[7].shape) != (d, 3 * hidden):
            fail(f"P must have shape {(d, 3 * hidden)}, got {ins[7].shape}")


@register
class GRU(_Recurrent):
    op_type = kernel = "GRU"
    gates = 3
    default_acts = ("Sigmoid", "Tanh")


@register
class RNN(_Recurrent):
    op_type = kernel = "RNN"
    gates = 1
    default_acts = ("Tanh",)
