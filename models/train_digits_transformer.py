"""Trains digits_transformer of the zoo: models/digits_transformer.{onnx,md} and _curves.csv.

    python models/train_digits_transformer.py [--quiet] [--patch 4] [--epochs 200] [--out models/digits_transformer.onnx]

A tiny vision transformer: PatchEmbed (4x4 -> 4 tokens, or 2x2 -> 16 tokens)
+ learned positional embedding, `depth` pre-norm encoder blocks (multi-head
self-attention, GELU MLP), a final LayerNorm, mean-pool (or CLS-token)
readout and a linear classifier, followed by a Softmax in the exported model
(probabilities out, like the other zoo models). Exported with standard
opset-17 operators (MatMul, Softmax, LayerNormalization, Erf...).

Uses the fixed train/val/test split of pyengine.train.data.load_digits; fit
restores the weights of the lowest validation loss. Exit status 0 when the
test accuracy reaches --target (96%) and the ONNX file matches the trainer
in onnxruntime.
"""
from __future__ import annotations

import argparse
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

TARGET = 0.96
BATCH = 32


def build(d_model: int = 64, heads: int = 4, depth: int = 2, patch: int = 4, readout: str = "mean",
          seed: int = 0) -> T.Sequential:
    """The ViT up to the logits (the Softmax is added for export)."""
    rng = np.random.default_rng(seed)
    layers = [T.PatchEmbed(8, patch, 1, d_model, rng=rng)]
    tokens = (8 // patch) ** 2
    if readout == "cls":
        layers.append(T.ClsToken(d_model, rng=rng))
        tokens += 1
    layers.append(T.PositionalEmbedding(tokens, d_model, rng=rng))
    layers += [T.TransformerEncoderBlock(d_model, heads, mlp_hidden=2 * d_model, rng=rng) for _ in range(depth)]
    layers += [T.LayerNorm(d_model), T.TokenPool("first" if readout == "cls" else "mean"),
               T.Linear(d_model, 10, rng=rng)]
    return T.Sequential(*layers)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--patch", type=int, default=4, choices=[2, 4])
    ap.add_argument("--readout", default="mean", choices=["mean", "cls"])
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--no-augment", action="store_true", help="no random 1-pixel shifts of training images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "digits_transformer.onnx"))
    ap.add_argument("--target", type=float, default=TARGET, help="test accuracy needed for exit status 0")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    T.seed(args.seed)
    splits = {s: load_digits(s) for s in ("train", "val", "test")}
    (X, y), (Xv, yv) = splits["train"], splits["val"]
    body = build(args.d_model, args.heads, args.depth, args.patch, args.readout, args.seed)
    steps = args.epochs * -(-len(X) // BATCH)
    min_lr = args.lr * 0.02
    opt = T.Adam(body.parameters(), lr=args.lr, clip_norm=5.0, schedule=T.CosineLR(steps, min_lr))
    hist = T.fit(body, T.SoftmaxCrossEntropy(), opt, X, y, Xv, yv, epochs=args.epochs, batch_size=BATCH,
                 seed=args.seed, augment=None if args.no_augment else shift_augment, quiet=args.quiet)
    model = T.Sequential(*body.layers, T.Softmax())  # exported: probabilities out
    out_dir, name = os.path.split(os.path.abspath(args.out))
    name = os.path.splitext(name)[0]
    tokens = f"{(8 // args.patch) ** 2} patches of {args.patch}x{args.patch}" + (" + CLS token" if args.readout == "cls" else "")
    acc = publish(name, model, hist, splits, out_dir=out_dir,
                  title="tiny vision transformer for 8x8 digits",
                  data="scikit-learn's 1,797 8x8 digits, pixels scaled to [0, 1], shaped (N, 1, 8, 8); the fixed "
                       "stratified split of `pyengine.train.data` (seed 0): 1,079 train / 359 val / 359 test."
                       + ("" if args.no_augment else " Training images randomly shifted by up to 1 pixel."),
                  hyper={"tokens": tokens, "d_model": args.d_model, "heads": args.heads, "depth": args.depth,
                         "MLP hidden": 2 * args.d_model, "readout": args.readout,
                         "optimizer": f"Adam lr={args.lr}, gradient norm clipped to 5.0",
                         "schedule": f"cosine to {min_lr:g} over all epochs", "batch size": BATCH,
                         "max epochs": args.epochs,
                         "early stopping": "none (the cosine schedule runs out); the weights of the epoch with "
                                           "the lowest validation loss are restored",
                         "loss": "softmax cross-entropy", "seed": args.seed},
                  notes="\nDefaults kept from the trainer's layer work (4x4 patches, d_model 64, depth 2, 200 "
                        "epochs); 2x2 patches and a CLS-token readout are options of the script.\n",
                  command="python models/train_digits_transformer.py")
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
