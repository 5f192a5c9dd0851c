"""Helpers for the model-zoo scripts in models/: describe a model, export it
and write its card (<name>.md) and learning curves (<name>_curves.csv)."""
from __future__ import annotations

import datetime
import platform
from pathlib import Path

import numpy as np

from .base import Layer, Parameter, Sequential
from .export import to_onnx

_SHOWN = ("in_features", "out_features", "in_channels", "out_channels", "kernel_size", "stride", "padding",
          "groups", "num_features", "normalized_shape", "p", "alpha", "axis",
          "input_size", "hidden_size", "return_sequences", "d_model", "heads", "patch_size", "mode")
# Parameter attributes shown as shapes for layers none of whose _SHOWN
# attributes exist (e.g. the attention layers' internal dense/norm parts).
_PARAM_ATTRS = ("W", "b", "gamma", "beta", "pos", "cls")


def describe(layer: Layer, indent: str = "") -> str:
    """One line per layer, children indented; parameter count at the top level."""
    attrs = ", ".join(f"{k}={getattr(layer, k)}" for k in _SHOWN if hasattr(layer, k))
    if not attrs:
        attrs = ", ".join(f"{k}={getattr(layer, k).shape}" for k in _PARAM_ATTRS
                          if isinstance(getattr(layer, k, None), Parameter))
    lines = [f"{indent}{type(layer).__name__}({attrs})"]
    kids = layer.layers if isinstance(layer, Sequential) else layer.children()
    for c in kids:
        lines.append(describe(c, indent + "  "))
    text = "\n".join(lines)
    if not indent:
        n = sum(p.data.size for p in layer.parameters())
        text += f"\n\n{n:,} trainable parameters"
    return text


def onnx_accuracy(path, X, y, batch_size: int = 256) -> float:
    """Accuracy of the exported model run by onnxruntime (argmax for several
    outputs, > 0.5 for one: the zoo's single-output models end in Sigmoid)."""
    import onnxruntime as ort
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = np.concatenate([sess.run(None, {name: X[i:i + batch_size]})[0] for i in range(0, len(X), batch_size)])
    pred = outs.argmax(axis=1) if outs.ndim == 2 and outs.shape[1] > 1 else (outs.reshape(-1) > 0.5)
    return float((pred == np.asarray(y).reshape(-1)).mean())


def save_pictures(name: str, out_dir) -> str:
    """Writes <name>_curves.png (and <name>_filters.png when the model starts
    with a convolution) from the files publish() wrote; returns the card's
    sentence about them ('' without matplotlib)."""
    from . import plots
    out_dir = Path(out_dir)
    if not plots.available():
        print("matplotlib is not installed (pip install 'pyengine[train]'): no PNG pictures written")
        return ""
    made = []
    if plots.read_curves(out_dir / f"{name}_curves.csv"):
        plots.plot_curves(out_dir / f"{name}_curves.csv", out_dir / f"{name}_curves.png", title=name)
        made.append(f"plotted in `{name}_curves.png`")
    try:
        weights = plots.first_conv_weights(out_dir / f"{name}.onnx")
    except ValueError:
        weights = None
    if weights is not None:
        plots.plot_filters(weights, out_dir / f"{name}_filters.png",
                           title=f"{name}: first-layer filters ({weights.shape[0]})")
        made.append(f"the learned first-layer filters in `{name}_filters.png`")
    return ("; " + " and ".join(made)) if made else ""


def publish(name: str, model: Layer, hist, splits: dict, *, out_dir, title: str, data: str, hyper: dict,
            command: str, notes: str = "") -> dict:
    """Exports models/<name>.onnx, writes <name>_curves.csv and <name>.md;
    returns {split: accuracy} measured on the ONNX file with onnxruntime."""
    out_dir = Path(out_dir)
    onnx_path = out_dir / f"{name}.onnx"
    X0 = next(iter(splits.values()))[0]
    to_onnx(model, onnx_path, X0[:1])
    hist.to_csv(out_dir / f"{name}_curves.csv")
    pictures = save_pictures(name, out_dir)
    acc = {s: onnx_accuracy(onnx_path, X, y) for s, (X, y) in splits.items()}
    rows = "\n".join(f"| {s} | {len(y)} | {acc[s] * 100:.2f}% |" for s, (X, y) in splits.items())
    hp = "\n".join(f"- {k}: {v}" for k, v in hyper.items())
    epochs_run = len(hist.epoch)
    best = f", best validation epoch {hist.best_epoch} (weights restored)" if hist.best_epoch > 0 else ""
    card = f"""# {name}: {title}

Trained with pyengine.train (NumPy) on {datetime.date.today().isoformat()}
(Python {platform.python_version()}, NumPy {np.__version__}).

## Architecture
```
{describe(model)}
```
Exported to `{name}.onnx` (opset 17, dynamic batch dimension; input
`input` of shape {['batch'] + list(X0.shape[1:])}, float32).

## Data
{data}

## Hyperparameters
{hp}
- epochs run: {epochs_run}{best}

## Accuracy (ONNX file run by onnxruntime)
| split | samples | accuracy |
|---|---|---|
{rows}

Learning curves per epoch: `{name}_curves.csv` (train loss/accuracy are means
over the epoch's training batches, with augmentation and dropout active){pictures}.
{notes}
## Reproduce
```
{command}
```
"""
    (out_dir / f"{name}.md").write_text(card)
    return acc
