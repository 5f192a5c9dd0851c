"""Redraws the zoo's PNG pictures (learning curves, CNN first-layer filters)
from the committed `<name>_curves.csv` and `<name>.onnx` files, without
retraining, and mentions them in each card. The training scripts draw the
same pictures themselves (pyengine.train.zoo.publish); this is for when only
the pictures need to change.

    python models/plot_zoo.py
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pyengine.train.zoo import save_pictures  # noqa: E402

HERE = Path(__file__).resolve().parent
SENTENCE_END = "with augmentation and dropout active)"


def main():
    for csv_path in sorted(HERE.glob("*_curves.csv")):
        name = csv_path.name[: -len("_curves.csv")]
        sentence = save_pictures(name, HERE)
        card = HERE / f"{name}.md"
        text = card.read_text()
        if sentence and ".png`" not in text and SENTENCE_END in text:
            card.write_text(text.replace(SENTENCE_END, SENTENCE_END + sentence, 1))
        print(name, sentence or "(no pictures)")


if __name__ == "__main__":
    main()
