"""Trains the textbook 2-2-1 XOR network: models/xor.{onnx,md} and _curves.csv.

    python models/train_xor.py [--quiet]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pyengine import train as T  # noqa: E402
from pyengine.train.data import xor_data  # noqa: E402
from pyengine.train.zoo import publish  # noqa: E402

SEED, EPOCHS, LR, MOMENTUM = 0, 1000, 0.5, 0.9


def build():
    return T.Sequential(T.Linear(2, 2, init="xavier"), T.Tanh(), T.Linear(2, 1, init="xavier"), T.Sigmoid())


def main(quiet=False):
    T.seed(SEED)
    X, y = xor_data()
    model = build()
    opt = T.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    hist = T.fit(model, T.BCE(), opt, X, y, epochs=EPOCHS, batch_size=4, seed=SEED, quiet=True)
    acc = publish("xor", model, hist, {"train": (X, y)}, out_dir=os.path.dirname(os.path.abspath(__file__)),
                  title="the textbook 2-2-1 network for XOR",
                  data="The four points of {0,1}^2 with label x0 XOR x1 (no held-out data: the task is "
                       "to represent the function).",
                  hyper={"hidden activation": "tanh", "output": "sigmoid", "loss": "binary cross-entropy",
                         "optimizer": f"SGD lr={LR} momentum={MOMENTUM}", "batch": "full (4 points)",
                         "epochs": EPOCHS, "init": "Xavier uniform", "seed": SEED},
                  command="python models/train_xor.py")
    if not quiet:
        print({k: round(v, 4) for k, v in acc.items()}, "final loss", hist.train_loss[-1])
    return acc


if __name__ == "__main__":
    main(quiet="--quiet" in sys.argv)
