"""PNG pictures of training: learning curves from a `<name>_curves.csv` and
the filters of a convolution layer. Needs matplotlib (the `train` extra);
`available()` tells whether it is installed."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, png_path, title: str) -> Path:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)  # pyplot keeps every open figure alive otherwise
    return Path(png_path)


def read_curves(csv_path) -> dict:
    """Column name -> float array (NaN where a cell is empty)."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) if r[k] != "" else np.nan for r in rows]) for k in rows[0]}


def plot_curves(csv_path, png_path, title: str = "") -> Path:
    """Loss and accuracy per epoch, train and (where present) validation."""
    cols = read_curves(csv_path)
    if not cols:
        raise ValueError(f"{csv_path}: no epochs to plot")
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    epoch = cols["epoch"]
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "accuracy")):
        for split, style in (("train", "-"), ("val", "--")):
            y = cols.get(f"{split}_{key}")
            if y is not None and not np.isnan(y).all():
                ax.plot(epoch, y, style, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if np.nanmin(cols.get("train_loss", [1.0])) > 0:
        ax_loss.set_yscale("log")  # the interesting part of a loss curve is its tail
    return _save(plt, fig, png_path, title)


def plot_filters(weights: np.ndarray, png_path, title: str = "") -> Path:
    """One small image per output channel of conv weights [Cout, Cin, kh, kw]
    (input channels averaged), each scaled to its own range, in a grid."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"expected conv weights [Cout, Cin, kh, kw], got shape {w.shape}")
    w = w.mean(axis=1)
    n = w.shape[0]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    plt = _pyplot()
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(w[i], cmap="gray", interpolation="nearest")
    return _save(plt, fig, png_path, title)


def first_conv_weights(onnx_path) -> np.ndarray:
    """Weights of the first Conv node of an ONNX model (from its initializers)."""
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(onnx_path))
    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Conv" and node.input[1] in inits:
            return numpy_helper.to_array(inits[node.input[1]])
    raise ValueError(f"{onnx_path}: no Conv node with constant weights")
