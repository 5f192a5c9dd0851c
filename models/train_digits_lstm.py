"""Trains digits_lstm of the zoo: models/digits_lstm.{onnx,md} and _curves.csv.

    python models/train_digits_lstm.py [--quiet] [--epochs 150] [--hidden 128] [--out models/digits_lstm.onnx]

An LSTM reads each 8x8 digit row by row (8 time steps of 8 pixels); stacked
LSTMs (the lower ones return their whole sequence, exported as standard ONNX
LSTM nodes) and a linear classifier on the last hidden state, followed by a
Softmax in the exported model (probabilities out, like the other zoo models).

Uses the fixed train/val/test split of pyengine.train.data.load_digits; fit
restores the weights of the lowest validation loss, and every choice below
was made on validation accuracy (the test split is measured once, for the
card). Exit status 0 when the test accuracy reaches --target (97%) and the
ONNX file matches the trainer in onnxruntime.

What was tried: SWEEP_NOTES below (also written into the card).

Result of the chosen configuration (150 epochs, seed 0): train 100%, val
100%, test 96.66% (12 errors; 97% allows 10), so the 97% requirement is not
met: validation accuracy saturates at 100% for several variants and no
longer separates them, and the test split was not used to pick another.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys

if __name__ == "__main__":
    # The matrices here are tiny: BLAS threads only add spinning and contention
    # (10x slower on a busy machine). Set before NumPy loads its BLAS.
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from pyengine import train as T  # noqa: E402
from pyengine.train.data import load_digits, shift_augment  # noqa: E402
from pyengine.train.zoo import publish  # noqa: E402

TARGET = 0.97
BATCH = 32
DEFAULTS = dict(epochs=150, hidden=128, layers=2, dropout=0.0, lr=3e-3, wd=0.0, shift=1, clip=5.0, seed=0,
                readout="last", bidir=0)
READOUTS = ("last", "flatten")

SWEEP_NOTES = """
Choices made on validation accuracy (359 images; ties broken by the lower
validation loss); the test split was measured once, for the chosen model.
All runs: 2 stacked LSTM(128) unless noted, cosine decay to 2% of lr 3e-3,
gradient norm clipped to 5, 1-pixel shifts, seed 0.

| variant | val accuracy | val loss |
|---|---|---|
| Adam, 100 epochs (previous default) | 99.16% | 0.0160 |
| hidden 64 | 98.89% | 0.0228 |
| dropout 0.2 between the LSTMs and before the classifier | 99.72% | 0.0069 |
| AdamW weight decay 0.01 | 100.00% | 0.0086 |
| AdamW weight decay 0.05 | 99.72% | 0.0141 |
| AdamW weight decay 0.1 | 98.89% | 0.0201 |
| AdamW weight decay 0.01 + dropout 0.2 | 99.72% | 0.0103 |
| **Adam, 150 epochs (chosen)** | 100.00% | 0.0043 |
| AdamW weight decay 0.01, 150 epochs | 99.72% | 0.0076 |

Earlier (trainer-seq): one LSTM(128) 95.8-96.4% test, a mean-over-steps
readout 94.7% test, 60 epochs 96.7% test. Hidden 192 was not kept: two
LSTM(192) are 1.8 MB of weights (the zoo keeps each file under 1 MB).
"""

def build(hidden: int = 128, layers: int = 2, dropout: float = 0.0, seed: int = 0,
          readout: str = DEFAULTS["readout"], bidir: int = DEFAULTS["bidir"]) -> T.Sequential:
    """ImageRows -> `layers` stacked LSTM(hidden) (dropout between them and
    before the classifier when > 0) -> Linear(., 10): logits. readout "last"
    classifies the last hidden state (N, hidden); "flatten" classifies the
    hidden states of all 8 rows side by side (N, 8*hidden), so the classifier
    sees each row's state directly instead of only what the last step kept.
    bidir: each LSTM is bidirectional (T.Bidirectional: one reads the rows
    top to bottom, the other bottom to top; their states are concatenated,
    2*hidden features)."""
    if readout not in READOUTS:
        raise ValueError(f"build: readout must be one of {READOUTS}, got {readout!r}")
    rng = np.random.default_rng(seed)
    mods = [T.ImageRows()]                                          # (N, 1, 8, 8) -> (N, 8, 8)
    width = 2 * hidden if bidir else hidden                         # features per step out of each LSTM
    for i in range(layers):
        seq = i < layers - 1 or readout == "flatten"

        def lstm():
            return T.LSTM(8 if i == 0 else width, hidden, return_sequences=seq, rng=rng)
        mods.append(T.Bidirectional(lstm(), lstm()) if bidir else lstm())
        if dropout > 0:
            mods.append(T.Dropout(dropout, rng=rng))
    if readout == "flatten":
        mods.append(T.Flatten())                                    # (N, 8, width) -> (N, 8*width)
    return T.Sequential(*mods, T.Linear(width * (8 if readout == "flatten" else 1), 10, rng=rng))


def train(cfg: dict, splits: dict, quiet: bool = True):
    """Builds and fits one configuration; returns (logits model, history)."""
    cfg = {**DEFAULTS, **cfg}
    (X, y), (Xv, yv) = splits["train"], splits["val"]
    body = build(cfg["hidden"], cfg["layers"], cfg["dropout"], cfg["seed"], cfg["readout"], cfg["bidir"])
    steps = cfg["epochs"] * -(-len(X) // BATCH)
    schedule = T.CosineLR(steps, cfg["lr"] * 0.02)
    opt = (T.AdamW(body.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"], clip_norm=cfg["clip"], schedule=schedule)
           if cfg["wd"] else T.Adam(body.parameters(), lr=cfg["lr"], clip_norm=cfg["clip"], schedule=schedule))
    augment = functools.partial(shift_augment, max_shift=cfg["shift"]) if cfg["shift"] else None
    hist = T.fit(body, T.SoftmaxCrossEntropy(), opt, X, y, Xv, yv, epochs=cfg["epochs"], batch_size=BATCH,
                 seed=cfg["seed"], augment=augment, quiet=quiet)
    return body, hist


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for k, v in DEFAULTS.items():
        ap.add_argument(f"--{k}", type=type(v), default=v)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits_lstm.onnx"))
    ap.add_argument("--target", type=float, default=TARGET, help="test accuracy needed for exit status 0")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    cfg = {k: getattr(args, k) for k in DEFAULTS}

    T.seed(cfg["seed"])
    splits = {s: load_digits(s) for s in ("train", "val", "test")}
    body, hist = train(cfg, splits, quiet=args.quiet)
    model = T.Sequential(*body.layers, T.Softmax())  # exported: probabilities out
    opt_name = "AdamW" if cfg["wd"] else "Adam"
    wd = f" weight_decay={cfg['wd']}" if cfg["wd"] else ""
    out_dir, name = os.path.split(os.path.abspath(args.out))
    name = os.path.splitext(name)[0]
    acc = publish(name, model, hist, splits, out_dir=out_dir,
                  title="stacked LSTM reading 8x8 digits row by row",
                  data="scikit-learn's 1,797 8x8 digits, pixels scaled to [0, 1], shaped (N, 1, 8, 8) and read "
                       "as 8 time steps (rows) of 8 features; the fixed stratified split of `pyengine.train.data` "
                       f"(seed 0): 1,079 train / 359 val / 359 test. Training images randomly shifted by up to "
                       f"{cfg['shift']} pixel(s).",
                  hyper={"layers": f"{cfg['layers']} stacked LSTM({cfg['hidden']}), last hidden state -> Linear",
                         "optimizer": f"{opt_name} lr={cfg['lr']}{wd}, gradient norm clipped to {cfg['clip']}",
                         "schedule": f"cosine to {cfg['lr'] * 0.02:g} over all epochs",
                         "batch size": BATCH, "max epochs": cfg["epochs"],
                         "early stopping": "none (the cosine schedule runs out); the weights of the epoch with "
                                           "the lowest validation loss are restored",
                         "dropout": cfg["dropout"], "loss": "softmax cross-entropy", "seed": cfg["seed"]},
                  notes=SWEEP_NOTES, command="python models/train_digits_lstm.py")
    print(f"{name}: " + ", ".join(f"{s} accuracy {a:.4f}" for s, a in acc.items()) + f" (target {args.target})")

    import onnxruntime as ort
    Xt = splits["test"][0]
    sess = ort.InferenceSession(args.out, providers=["CPUExecutionProvider"])
    model.eval()
    diff = np.abs(sess.run(None, {"input": Xt})[0] - model.forward(Xt)).max()
    print(f"wrote {args.out}; onnxruntime max |diff| vs trainer: {diff:.2e}")
    if diff > 1e-4:
        return 1
    return 0 if acc["test"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
