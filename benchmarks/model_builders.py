"""Networks the benchmarks build themselves with onnx.helper: an MLP, a LeNet,
a ResNet-18-shaped and a MobileNetV2-shaped CNN (random weights, real shapes,
BatchNormalization included so the folding pass has work to do)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Builder:
    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.n = [], [], 0

    def name(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def const(self, arr, p="w"):
        nm = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), nm))
        return nm

    def const_int(self, values, p="i"):
        nm = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), nm))
        return nm

    def node(self, op, inputs, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x, cin, cout, k, stride=1, groups=1, bn=True, act="Relu"):
        fan_in = cin // groups * k * k
        w = self.const(self.rng.standard_normal((cout, cin // groups, k, k)) * np.sqrt(2.0 / fan_in))
        inputs = [x, w] if bn else [x, w, self.const(self.rng.standard_normal(cout) * 0.1, "b")]
        y = self.node("Conv", inputs, kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4, group=groups)
        if bn:
            y = self.node("BatchNormalization", [y, self.const(self.rng.uniform(0.5, 1.5, cout), "g"),
                                                 self.const(self.rng.standard_normal(cout) * 0.1, "be"),
                                                 self.const(self.rng.standard_normal(cout) * 0.1, "m"),
                                                 self.const(self.rng.uniform(0.5, 1.5, cout), "v")])
        if act == "Relu":
            y = self.node("Relu", [y])
        elif act == "Relu6":
            y = self.node("Clip", [y, self.const(np.array(0.0), "lo"), self.const(np.array(6.0), "hi")])
        return y

    def dense(self, x, din, dout, act=None):
        y = self.node("Gemm", [x, self.const(self.rng.standard_normal((din, dout)) * np.sqrt(2.0 / din)),
                               self.const(self.rng.standard_normal(dout) * 0.1, "b")])
        return self.node(act, [y]) if act else y

    def model(self, x_shape, out, name):
        g = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        return onnx.shape_inference.infer_shapes(m)


def mlp():
    b = Builder(1)
    y = b.dense("x", 784, 512, "Relu")
    y = b.dense(y, 512, 256, "Relu")
    y = b.dense(y, 256, 10)
    return b.model(["N", 784], y, "mlp"), (784,)


def lenet():
    b = Builder(2)
    y = b.conv("x", 1, 6, 5, bn=False)
    y = b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = b.conv(y, 6, 16, 5, bn=False)
    y = b.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2])
    y = b.node("Flatten", [y])
    y = b.dense(y, 16 * 7 * 7, 120, "Relu")
    y = b.dense(y, 120, 84, "Relu")
    y = b.dense(y, 84, 10)
    return b.model(["N", 1, 28, 28], y, "lenet"), (1, 28, 28)


def resnet18():
    b = Builder(3)
    y = b.conv("x", 3, 64, 7, stride=2)
    y = b.node("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = 64
    for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
        for i in range(2):
            s = stride if i == 0 else 1
            h = b.conv(y, cin, cout, 3, stride=s)
            h = b.conv(h, cout, cout, 3, act=None)
            short = y if (s == 1 and cin == cout) else b.conv(y, cin, cout, 1, stride=s, act=None)
            y = b.node("Relu", [b.node("Add", [h, short])])
            cin = cout
    y = b.node("Flatten", [b.node("GlobalAveragePool", [y])])
    y = b.dense(y, 512, 1000)
    return b.model(["N", 3, 224, 224], y, "resnet18"), (3, 224, 224)


def mobilenetv2():
    b = Builder(4)
    y = b.conv("x", 3, 32, 3, stride=2, act="Relu6")
    cin = 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                       (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            h = y if t == 1 else b.conv(y, cin, hidden, 1, act="Relu6")
            h = b.conv(h, hidden, hidden, 3, stride=stride, groups=hidden, act="Relu6")
            h = b.conv(h, hidden, c, 1, act=None)
            y = b.node("Add", [y, h]) if (stride == 1 and cin == c) else h
            cin = c
    y = b.conv(y, cin, 1280, 1, act="Relu6")
    y = b.node("Flatten", [b.node("GlobalAveragePool", [y])])
    y = b.dense(y, 1280, 1000)
    return b.model(["N", 3, 224, 224], y, "mobilenetv2"), (3, 224, 224)


BUILT = {"mlp": mlp, "lenet": lenet, "resnet18": resnet18, "mobilenetv2": mobilenetv2}


# ---- sequence models (issue: recurrent and transformer networks) ---------------

def _recurrent(op, gates, hidden=256, layers=2, steps=64, features=128):
    """A stacked `op` (LSTM/GRU) over (T, N, F) sequences, then a classifier on the last state."""
    b = Builder(5 if op == "LSTM" else 6)
    x, din = "x", features
    y_h = None
    for layer in range(layers):
        s = 1.0 / np.sqrt(hidden)
        w = b.const(b.rng.uniform(-s, s, (1, gates * hidden, din)))
        r = b.const(b.rng.uniform(-s, s, (1, gates * hidden, hidden)))
        bias = b.const(b.rng.uniform(-s, s, (1, 2 * gates * hidden)))
        y, y_h = b.name("y"), b.name("yh")
        attrs = {"hidden_size": hidden}
        if op == "GRU":
            attrs["linear_before_reset"] = 1
        b.nodes.append(helper.make_node(op, [x, w, r, bias], [y, y_h], name=b.name(op.lower()), **attrs))
        x = b.node("Squeeze", [y, b.const_int([1])])  # (T, 1, N, H) -> (T, N, H)
        din = hidden
    last = b.node("Squeeze", [y_h, b.const_int([0])])
    out = b.dense(last, hidden, 10)
    return b.model([steps, "N", features], out, op.lower()), None


def lstm():
    return _recurrent("LSTM", 4)


def gru():
    return _recurrent("GRU", 3)


def _encoder_layer(b, x, d, heads, ffn, mask=None):
    """Post-norm transformer layer written out as exporters write it (Q/K/V
    projections, head reshapes, scaled scores, Softmax, LayerNorm, Erf GELU)."""
    dh = d // heads

    def proj(inp, din, dout):
        y = b.node("MatMul", [inp, b.const(b.rng.standard_normal((din, dout)) / np.sqrt(din))])
        return b.node("Add", [y, b.const(b.rng.standard_normal(dout) * 0.02, "b")])

    def heads_of(t, perm):
        t = b.node("Reshape", [t, b.const_int([0, 0, heads, dh])])
        return b.node("Transpose", [t], perm=perm)

    q = heads_of(proj(x, d, d), [0, 2, 1, 3])
    k = heads_of(proj(x, d, d), [0, 2, 3, 1])
    v = heads_of(proj(x, d, d), [0, 2, 1, 3])
    s = b.node("Div", [b.node("MatMul", [q, k]), b.const(np.array(np.sqrt(dh)), "scale")])
    if mask is not None:
        s = b.node("Add", [s, mask])
    a = b.node("MatMul", [b.node("Softmax", [s], axis=-1), v])
    a = b.node("Reshape", [b.node("Transpose", [a], perm=[0, 2, 1, 3]), b.const_int([0, 0, d])])
    x = b.node("LayerNormalization", [b.node("Add", [x, proj(a, d, d)]), b.const(np.ones(d), "g"),
                                      b.const(np.zeros(d), "be")], axis=-1, epsilon=1e-5)
    h = proj(x, d, ffn)
    g = b.node("Mul", [b.node("Mul", [h, b.node("Add", [b.node("Erf", [b.node("Div", [h, b.const(np.array(np.sqrt(2.0)), "s2")])]),
                                                          b.const(np.array(1.0), "one")])]),
                       b.const(np.array(0.5), "half")])
    return b.node("LayerNormalization", [b.node("Add", [x, proj(g, ffn, d)]), b.const(np.ones(d), "g"),
                                         b.const(np.zeros(d), "be")], axis=-1, epsilon=1e-5)


def transformer_encoder(layers=4, d=256, heads=4, seq=128):
    b = Builder(7)
    x = "x"
    for _ in range(layers):
        x = _encoder_layer(b, x, d, heads, 4 * d)
    return b.model(["N", seq, d], x, "transformer_encoder"), (seq, d)


def bert(layers=6, d=384, heads=12, seq=128, vocab=8000):
    """BERT-style encoder: token + position + token-type embeddings, LayerNorm,
    attention mask input turned into an additive mask, `layers` encoder layers."""
    b = Builder(8)
    tok = b.node("Gather", [b.const(b.rng.standard_normal((vocab, d)) * 0.02, "emb"), "x"])
    pos = b.const(b.rng.standard_normal((1, seq, d)) * 0.02, "pos")
    typ = b.const(b.rng.standard_normal((1, 1, d)) * 0.02, "typ")
    x = b.node("LayerNormalization", [b.node("Add", [b.node("Add", [tok, pos]), typ]), b.const(np.ones(d), "g"),
                                      b.const(np.zeros(d), "be")], axis=-1, epsilon=1e-12)
    m = b.node("Cast", ["mask"], to=TensorProto.FLOAT)
    m = b.node("Unsqueeze", [m, b.const_int([1, 2])])
    m = b.node("Mul", [b.node("Sub", [b.const(np.array(1.0), "one"), m]), b.const(np.array(-10000.0), "neg")])
    for _ in range(layers):
        x = _encoder_layer(b, x, d, heads, 4 * d, mask=m)
    g = helper.make_graph(b.nodes, "bert", [helper.make_tensor_value_info("x", TensorProto.INT64, ["N", seq]),
                                            helper.make_tensor_value_info("mask", TensorProto.INT64, ["N", seq])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], b.inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return onnx.shape_inference.infer_shapes(model), (seq,)


SEQUENCE = {"lstm": lstm, "gru": gru, "transformer_encoder": transformer_encoder, "bert": bert}
