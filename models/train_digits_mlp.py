"""Trains the digits MLP of the zoo: models/digits_mlp.{onnx,md} and _curves.csv.

    python models/train_digits_mlp.py [--quiet]
"""
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices: one thread is fastest on a shared machine
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pyengine import train as T  # noqa: E402
from pyengine.train.data import load_digits, shift_augment  # noqa: E402
from pyengine.train.zoo import publish  # noqa: E402

SEED, EPOCHS, BATCH, LR, WD, DROP = 0, 150, 32, 1e-3, 1e-4, 0.3


def main(quiet=False):
    T.seed(SEED)
    splits = {s: load_digits(s, flat=True) for s in ("train", "val", "test")}
    (X, y), (Xv, yv) = splits["train"], splits["val"]
    model = T.Sequential(T.Linear(64, 1024), T.ReLU(), T.Dropout(DROP),
                         T.Linear(1024, 512), T.ReLU(), T.Dropout(DROP),
                         T.Linear(512, 10), T.Softmax())
    steps = EPOCHS * -(-len(X) // BATCH)
    # The Softmax layer stays in the exported model (probabilities out); the
    # loss is computed on the logits before it, so train the part before it.
    body = T.Sequential(*model.layers[:-1])
    opt = T.AdamW(body.parameters(), lr=LR, weight_decay=WD, schedule=T.CosineLR(steps))
    hist = T.fit(body, T.SoftmaxCrossEntropy(), opt, X, y, Xv, yv, epochs=EPOCHS, batch_size=BATCH,
                 seed=SEED, patience=None, augment=shift_augment, quiet=quiet)
    # Selection: of the sizes/epochs tried (256-128/60, 512-256/100, 1024-512/150
    # epochs) this one had the best validation accuracy.
    acc = publish("digits_mlp", model, hist, splits, out_dir=os.path.dirname(os.path.abspath(__file__)),
                  title="multilayer perceptron for 8x8 digits",
                  data="scikit-learn's 1,797 8x8 digits, pixels scaled to [0, 1] and flattened to 64 "
                       "features; the fixed stratified split of `pyengine.train.data` (seed 0): 1,079 "
                       "train / 359 val / 359 test. Training images randomly shifted by up to 1 pixel.",
                  hyper={"optimizer": f"AdamW lr={LR} weight_decay={WD}", "schedule": "cosine to 0",
                         "batch size": BATCH, "max epochs": EPOCHS,
                         "early stopping": "none (the cosine schedule runs out); the weights of the epoch with the lowest validation loss are restored", "dropout": DROP,
                         "loss": "softmax cross-entropy", "seed": SEED},
                  notes="\nChosen on validation accuracy among 256-128 (60 epochs), 512-256 (100) and "
                        "1024-512 (150) hidden sizes.\n",
                  command="python models/train_digits_mlp.py")
    print({k: round(v, 4) for k, v in acc.items()})
    return acc


if __name__ == "__main__":
    main(quiet="--quiet" in sys.argv)
