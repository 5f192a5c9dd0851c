"""Exports the small transformer models of tests/test_transformer_models.py
with PyTorch (torch.onnx.export, legacy TorchScript exporter, opset 17) and
saves, per model, tests/fixtures/<name>.onnx and <name>.npz (the inputs under
their graph input names, and torch's outputs as out0, out1, ...).

    python scripts/make_transformer_fixtures.py        # needs torch (CPU build)

Models:
- transformer_encoder: nn.TransformerEncoder, 2 layers, d_model 32, 4 heads,
  batch_first, activation "gelu".
- transformer_encoder_padmask: the same with a src_key_padding_mask input
  (bool, True = padding), keys of the second sequence partly padded.
- transformer_bert: a BERT-style encoder written by hand: token + token-type +
  position embeddings, LayerNorm, 2 layers of multi-head attention with the
  additive mask built the HF way ((1 - mask) * -10000), erf-GELU MLP,
  hand-written LayerNorm (ReduceMean/Sub/Pow/Sqrt/Div, as before opset 17).
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np
import torch
from torch import nn

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
OPSET = 17


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, dropout=0.0,
                                           activation="gelu", batch_first=True)
        self.enc = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)

    def forward(self, x, pad=None):
        return self.enc(x, src_key_padding_mask=pad)


class HandLayerNorm(nn.Module):
    """LayerNorm spelled out, as older BERT code and pre-17 exports have it."""

    def __init__(self, d, eps=1e-12):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d) + 0.1 * torch.randn(d))
        self.bias = nn.Parameter(0.1 * torch.randn(d))
        self.eps = eps

    def forward(self, x):
        u = x.mean(-1, keepdim=True)
        s = (x - u).pow(2).mean(-1, keepdim=True)
        return self.weight * ((x - u) / torch.sqrt(s + self.eps)) + self.bias


class BertLayer(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = HandLayerNorm(d), HandLayerNorm(d)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def split(self, t):
        b, s, _ = t.shape
        return t.view(b, s, self.h, self.dh).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        b, s, d = x.shape
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + ext_mask
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous().view(b, s, d)
        x = self.ln1(x + self.o(ctx))
        hmid = self.ff1(x)
        hmid = hmid * 0.5 * (1.0 + torch.erf(hmid / math.sqrt(2.0)))
        return self.ln2(x + self.ff2(hmid))


class Bert(nn.Module):
    def __init__(self, vocab=50, d=32, heads=4, ff=64, layers=2, max_pos=16, types=2):
        super().__init__()
        self.tok, self.pos, self.typ = nn.Embedding(vocab, d), nn.Embedding(max_pos, d), nn.Embedding(types, d)
        self.ln = HandLayerNorm(d)
        self.layers = nn.ModuleList(BertLayer(d, heads, ff) for _ in range(layers))

    def forward(self, input_ids, token_type_ids, attention_mask):
        s = input_ids.shape[1]
        pos = torch.arange(s, dtype=torch.long).unsqueeze(0)
        x = self.ln(self.tok(input_ids) + self.typ(token_type_ids) + self.pos(pos))
        ext = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -10000.0
        for layer in self.layers:
            x = layer(x, ext)
        return x


def export(name, model, args, input_names, dynamic_axes=None):
    model.eval()
    path = os.path.join(OUT, name + ".onnx")
    with torch.no_grad():
        outs = model(*args)
        torch.onnx.export(model, args, path, input_names=input_names, output_names=["y"], opset_version=OPSET,
                          dynamo=False, dynamic_axes=dynamic_axes)
    outs = outs if isinstance(outs, tuple) else (outs,)
    arrays = {n: a.numpy() for n, a in zip(input_names, args)}
    arrays.update({f"out{i}": o.numpy() for i, o in enumerate(outs)})
    np.savez(os.path.join(OUT, name + ".npz"), **arrays)
    size = os.path.getsize(path)
    assert size < 300_000, f"{path} is {size} bytes"
    print(f"{name}: {size} bytes, inputs {[tuple(a.shape) for a in args]}")


def main():
    os.makedirs(OUT, exist_ok=True)
    # In eval mode nn.TransformerEncoderLayer takes a fused "fast path"
    # (aten::_transformer_encoder_layer_fwd) that the ONNX exporter cannot
    # export; switched off, the layer traces into ordinary ops.
    torch.backends.mha.set_fastpath_enabled(False)
    torch.manual_seed(0)
    enc = Encoder()
    x = torch.randn(2, 7, 32)
    export("transformer_encoder", enc, (x,), ["x"])
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 5:] = True
    export("transformer_encoder_padmask", enc, (x, pad), ["x", "pad"])

    torch.manual_seed(1)
    bert = Bert()
    ids = torch.randint(0, 50, (2, 9))
    types = torch.cat([torch.zeros(2, 5, dtype=torch.long), torch.ones(2, 4, dtype=torch.long)], 1)
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[0, 6:] = 0
    export("transformer_bert", bert, (ids, types, mask), ["input_ids", "token_type_ids", "attention_mask"],
           dynamic_axes={n: {0: "batch", 1: "seq"} for n in ("input_ids", "token_type_ids", "attention_mask")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
