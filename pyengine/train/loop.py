"""The training loop: fit(), evaluate(), predict() and .npz checkpoints.

fit() shuffles the training set into mini-batches with a generator seeded
from `seed` (which also reseeds the model's dropout layers), so the same
model, data and seed give the same weights. After each epoch it records the
train loss/accuracy (means over the epoch's batches, in training mode) and
the validation loss/accuracy (eval mode); with `patience` it stops when the
validation loss has not improved for that many epochs, and it always ends
with the weights of the best validation epoch.
"""
from __future__ import annotations

import copy
import csv
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .base import Layer


class OverfittingWarning(UserWarning):
    """Training accuracy runs far ahead of validation accuracy."""


@dataclass
class History:
    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False
    overfit_epochs: list = field(default_factory=list)

    def to_csv(self, path) -> None:
        cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            series = [getattr(self, c) for c in cols]
            for i in range(len(self.epoch)):  # columns never filled (no validation data) stay empty
                row = [s[i] if i < len(s) else "" for s in series]
                w.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in row])


def _walk(layer: Layer):
    yield layer
    for c in layer.children():
        yield from _walk(c)


def predict(model: Layer, X, batch_size: int = 512):
    """Eval-mode outputs for X, computed in batches."""
    was = model.training
    model.eval()
    try:
        outs = [model.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    finally:
        model.train(was)
    return np.concatenate(outs) if outs else np.zeros((0,))


def evaluate(model: Layer, loss, X, y, batch_size: int = 512):
    """(mean loss, accuracy) of the model in eval mode."""
    out = predict(model, X, batch_size)
    return loss.forward(out, y), loss.accuracy(out, y)


class _Progress:
    def __init__(self, quiet: bool, stream=None):
        self.quiet, self.stream = quiet, stream or sys.stderr

    def batch(self, epoch, epochs, done, total, loss):
        if self.quiet:
            return
        width = 24
        fill = int(width * done / max(total, 1))
        self.stream.write(f"\repoch {epoch}/{epochs} [{'#' * fill}{'.' * (width - fill)}] "
                          f"{done}/{total} loss {loss:.4f}")
        self.stream.flush()

    def epoch(self, epoch, epochs, h: History, seconds):
        if self.quiet:
            return
        msg = f"\repoch {epoch}/{epochs} train loss {h.train_loss[-1]:.4f} acc {h.train_acc[-1]:.4f}"
        if h.val_loss and h.val_loss[-1] is not None:
            msg += f" | val loss {h.val_loss[-1]:.4f} acc {h.val_acc[-1]:.4f}"
        self.stream.write(msg + f" ({seconds:.1f}s)" + " " * 8 + "\n")
        self.stream.flush()


def fit(model: Layer, loss, optimizer, X, y, X_val=None, y_val=None, *, epochs: int = 10,
        batch_size: int = 32, seed: int = 0, patience=None, min_delta: float = 0.0, augment=None,
        overfit_gap: float = 0.10, checkpoint=None, quiet: bool = False, stream=None) -> History:
    """Trains `model` in place and returns its History.

    augment: optional callable(xb, rng) -> xb applied to each training batch.
    patience: stop after this many epochs without a validation-loss
      improvement of more than min_delta (needs validation data).
    overfit_gap: warn (OverfittingWarning) when train accuracy exceeds
      validation accuracy by more than this.
    checkpoint: path of an .npz written at the end of every epoch.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"fit: {len(X)} inputs but {len(y)} targets")
    has_val = X_val is not None and y_val is not None
    if patience is not None and not has_val:
        raise ValueError("fit: early stopping (patience) needs validation data")
    rng = np.random.default_rng(seed)
    for layer in _walk(model):  # dropout masks follow the fit seed
        if isinstance(getattr(layer, "rng", None), np.random.Generator):
            layer.rng = np.random.default_rng(rng.integers(2**63))
    progress = _Progress(quiet, stream)
    hist = History()
    best_loss, best_state, wait = np.inf, None, 0
    n = len(X)
    nb = (n + batch_size - 1) // batch_size
    warned = False
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(n)
        tot_loss = tot_acc = 0.0
        for b in range(nb):
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb, yb = X[idx], y[idx]
            if augment is not None:
                xb = augment(xb, rng)
            optimizer.zero_grad()
            out = model.forward(xb)
            lval = loss.forward(out, yb)
            model.backward(loss.backward())
            optimizer.step()
            tot_loss += lval * len(idx)
            tot_acc += loss.accuracy(out, yb) * len(idx)
            progress.batch(epoch, epochs, b + 1, nb, tot_loss / ((b * batch_size) + len(idx)))
        hist.epoch.append(epoch)
        hist.train_loss.append(tot_loss / n)
        hist.train_acc.append(tot_acc / n)
        hist.lr.append(float(optimizer.lr))
        if has_val:
            vl, va = evaluate(model, loss, X_val, y_val)
            hist.val_loss.append(vl)
            hist.val_acc.append(va)
            if hist.train_acc[-1] - va > overfit_gap:
                hist.overfit_epochs.append(epoch)
                if not warned:
                    warnings.warn(f"epoch {epoch}: train accuracy {hist.train_acc[-1]:.3f} is more than "
                                  f"{overfit_gap:.2f} above validation accuracy {va:.3f}; the model may be "
                                  f"overfitting", OverfittingWarning, stacklevel=2)
                    warned = True
            if vl < best_loss - min_delta:
                best_loss, best_state, wait = vl, copy.deepcopy(model.state_dict()), 0
                hist.best_epoch = epoch
            else:
                wait += 1
        progress.epoch(epoch, epochs, hist, time.perf_counter() - t0)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, epoch=epoch)
        if patience is not None and wait >= patience:
            hist.stopped_early = True
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return hist


def save_checkpoint(path, model: Layer, optimizer=None, **meta) -> None:
    """Writes model parameters and buffers (model/...), optimizer state
    (optim/...) and integer/float metadata (meta/...) to one .npz file."""
    arrays = {f"model/{k}": np.asarray(v) for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim/{k}": v for k, v in optimizer.state_dict().items()})
    arrays.update({f"meta/{k}": np.asarray(v) for k, v in meta.items()})
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to other names
        np.savez(f, **arrays)


def load_checkpoint(path, model: Layer, optimizer=None) -> dict:
    """Restores what save_checkpoint wrote; returns the metadata."""
    with np.load(path) as data:
        model.load_state_dict({k[6:]: data[k] for k in data.files if k.startswith("model/")})
        if optimizer is not None:
            optimizer.load_state_dict({k[6:]: data[k] for k in data.files if k.startswith("optim/")})
        return {k[5:]: data[k].item() for k in data.files if k.startswith("meta/")}
