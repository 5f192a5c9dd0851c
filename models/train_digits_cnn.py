"""Trains the digits CNN of the zoo: models/digits_cnn.{onnx,md} and _curves.csv.

    python models/train_digits_cnn.py [--quiet]
"""
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: one thread is fastest on a shared machine
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pyengine import train as T  # noqa: E402
from pyengine.train.data import load_digits, shift_augment  # noqa: E402
from pyengine.train.zoo import publish  # noqa: E402

SEED, EPOCHS, BATCH, LR, WD = 0, 60, 32, 2e-3, 1e-4


def build():
    return T.Sequential(
        T.Conv2D(1, 32, 3, padding=1), T.BatchNorm2d(32), T.ReLU(),             # 32 x 8 x 8
        T.Conv2D(32, 64, 3, padding=1), T.BatchNorm2d(64), T.ReLU(),
        T.MaxPool2D(2),                                                          # 64 x 4 x 4
        T.Conv2D(64, 64, 3, padding=1), T.BatchNorm2d(64), T.ReLU(),
        T.MaxPool2D(2),                                                          # 64 x 2 x 2
        T.Flatten(), T.Dropout(0.3), T.Linear(256, 10))


def main(quiet=False):
    T.seed(SEED)
    splits = {s: load_digits(s) for s in ("train", "val", "test")}
    (X, y), (Xv, yv) = splits["train"], splits["val"]
    body = build()
    model = T.Sequential(*body.layers, T.Softmax())  # exported: probabilities out
    steps = EPOCHS * -(-len(X) // BATCH)
    opt = T.AdamW(body.parameters(), lr=LR, weight_decay=WD, schedule=T.CosineLR(steps))
    hist = T.fit(body, T.SoftmaxCrossEntropy(), opt, X, y, Xv, yv, epochs=EPOCHS, batch_size=BATCH,
                 seed=SEED, patience=None, augment=shift_augment, quiet=quiet)
    acc = publish("digits_cnn", model, hist, splits, out_dir=os.path.dirname(os.path.abspath(__file__)),
                  title="small convolutional network for 8x8 digits",
                  data="scikit-learn's 1,797 8x8 digits, pixels scaled to [0, 1], shaped (N, 1, 8, 8); the "
                       "fixed stratified split of `pyengine.train.data` (seed 0): 1,079 train / 359 val / "
                       "359 test. Training images randomly shifted by up to 1 pixel.",
                  hyper={"optimizer": f"AdamW lr={LR} weight_decay={WD}", "schedule": "cosine to 0",
                         "batch size": BATCH, "max epochs": EPOCHS,
                         "early stopping": "none (the cosine schedule runs out); the weights of the epoch with the lowest validation loss are restored", "dropout": 0.3,
                         "batch norm": "momentum 0.1, eps 1e-5 (exported as BatchNormalization)",
                         "loss": "softmax cross-entropy", "seed": SEED},
                  notes="\nChosen on validation accuracy among 40 and 60 epochs and a wider last "
                        "convolution (128 channels, dropout 0.4).\n",
                  command="python models/train_digits_cnn.py")
    print({k: round(v, 4) for k, v in acc.items()})
    return acc


if __name__ == "__main__":
    main(quiet="--quiet" in sys.argv)
