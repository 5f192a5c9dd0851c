#!/usr/bin/env python3
"""Regenerates tests/fixtures/{lstm_classifier,gru,bilstm}.{onnx,npz}: small
recurrent models exported by PyTorch's ONNX exporter (opset 17), with sample
inputs and PyTorch's own outputs, so tests/test_recurrent.py can check
pyengine against both onnxruntime and PyTorch without importing torch.

    pip install torch==2.13.0   # CPU build is enough
    python scripts/make_rnn_fixtures.py

Each .npz holds `in_<graph input name>` for every input and `out_<i>` for the
i-th graph output.
"""
from __future__ import annotations

import io
import pathlib

import numpy as np
import torch
from torch import nn

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
OPSET = 17


class LSTMClassifier(nn.Module):
    """Token ids -> embedding -> 2-layer LSTM -> linear on the last hidden state."""

    def __init__(self, vocab=50, emb=16, hidden=32, classes=4):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, classes)

    def forward(self, tokens):
        _, (h, _) = self.lstm(self.emb(tokens))
        return self.head(h[-1])


class GRUNet(nn.Module):
    def __init__(self, inp=8, hidden=32):
        super().__init__()
        self.gru = nn.GRU(inp, hidden)

    def forward(self, x, h0):
        y, h = self.gru(x, h0)
        return y, h


class BiLSTM(nn.Module):
    def __init__(self, inp=8, hidden=32):
        super().__init__()
        self.lstm = nn.LSTM(inp, hidden, bidirectional=True)

    def forward(self, x):
        y, (h, c) = self.lstm(x)
        return y, h, c


def export(name: str, model: nn.Module, inputs: dict, output_names: list, dynamic_axes: dict | None = None):
    model.eval()
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    with torch.no_grad():
        outs = model(*args)
    outs = outs if isinstance(outs, tuple) else (outs,)
    buf = io.BytesIO()
    torch.onnx.export(model, args, buf, input_names=list(inputs), output_names=output_names,
                      opset_version=OPSET, dynamo=False, dynamic_axes=dynamic_axes, do_constant_folding=True)
    data = buf.getvalue()
    (OUT / f"{name}.onnx").write_bytes(data)
    arrays = {f"in_{k}": v for k, v in inputs.items()}
    arrays.update({f"out_{i}": o.numpy() for i, o in enumerate(outs)})
    np.savez(OUT / f"{name}.npz", **arrays)
    print(f"{name}: {len(data) / 1024:.1f} KB, outputs {[tuple(o.shape) for o in outs]}")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 50, size=(3, 7)).astype(np.int64)
    export("lstm_classifier", LSTMClassifier(), {"tokens": tokens}, ["logits"],
           dynamic_axes={"tokens": {0: "batch", 1: "seq"}, "logits": {0: "batch"}})
    x = rng.standard_normal((6, 3, 8)).astype(np.float32)
    h0 = rng.standard_normal((1, 3, 32)).astype(np.float32)
    export("gru", GRUNet(), {"x": x, "h0": h0}, ["y", "h"])
    x = rng.standard_normal((5, 2, 8)).astype(np.float32)
    export("bilstm", BiLSTM(), {"x": x}, ["y", "h", "c"])


if __name__ == "__main__":
    main()
