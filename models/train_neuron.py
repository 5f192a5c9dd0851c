"""Trains a single sigmoid neuron on a linearly separable rule:
models/neuron.{onnx,md} and _curves.csv.

    python models/train_neuron.py [--quiet]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pyengine import train as T  # noqa: E402
from pyengine.train.data import NEURON_RULE, NEURON_SPLITS, neuron_data  # noqa: E402
from pyengine.train.zoo import publish  # noqa: E402

SEED, EPOCHS, BATCH, LR = 0, 200, 32, 0.5
SPLIT_SEEDS = NEURON_SPLITS  # (samples, data seed) per split: different points each

def build():
    return T.Sequential(T.Linear(2, 1, init="xavier"), T.Sigmoid())


def main(quiet=False):
    T.seed(SEED)
    splits = {s: neuron_data(n, sd) for s, (n, sd) in SPLIT_SEEDS.items()}
    (X, y), (Xv, yv) = splits["train"], splits["val"]
    model = build()
    opt = T.SGD(model.parameters(), lr=LR, momentum=0.9)
    hist = T.fit(model, T.BCE(), opt, X, y, Xv, yv, epochs=EPOCHS, batch_size=BATCH, seed=SEED, quiet=True)
    w, b = model[0].weight.data.ravel(), model[0].bias.data
    acc = publish("neuron", model, hist, splits, out_dir=os.path.dirname(os.path.abspath(__file__)),
                  title="a single sigmoid neuron learning a linear rule",
                  data=f"Rule: {NEURON_RULE}; points within 0.02 of the boundary are left out "
                       f"(`pyengine.train.data.neuron_data`). Samples/seeds per split: {SPLIT_SEEDS}.",
                  hyper={"model": "y = sigmoid(w . x + b)", "loss": "binary cross-entropy",
                         "optimizer": f"SGD lr={LR} momentum=0.9", "batch size": BATCH, "epochs": EPOCHS,
                         "seed": SEED},
                  notes=f"\nLearned w = [{w[0]:.3f}, {w[1]:.3f}], b = {b[0]:.3f} (the rule's "
                        f"weights are proportional to w = [2, -1], b = -0.25).\n",
                  command="python models/train_neuron.py")
    if not quiet:
        print({k: round(v, 4) for k, v in acc.items()})
    return acc


if __name__ == "__main__":
    main(quiet="--quiet" in sys.argv)
