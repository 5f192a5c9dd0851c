"""Losses: `forward(output, target)` returns the mean loss (a float),
`backward()` its gradient with respect to `output`, and `accuracy(output,
target)` the fraction of correct predictions, used by fit() for reporting."""
from __future__ import annotations

import numpy as np


class Loss:
    def __call__(self, output, target):
        return self.forward(output, target)

    def forward(self, output, target) -> float:
        raise NotImplementedError

    def backward(self):
        raise NotImplementedError

    def accuracy(self, output, target) -> float:
        raise NotImplementedError


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of softmax(logits) (N, K) against integer labels (N,),
    computed from log-softmax so it is stable for large logits."""

    def forward(self, logits, target):
        target = np.asarray(target)
        if logits.ndim != 2 or target.shape != logits.shape[:1]:
            raise ValueError(f"SoftmaxCrossEntropy: expected logits (N, K) and labels (N,), got "
                             f"{logits.shape} and {target.shape}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = logits.shape[0]
        self._p, self._t = np.exp(logp), target
        return float(-logp[np.arange(n), target].mean())

    def backward(self):
        g = self._p.copy()
        g[np.arange(len(self._t)), self._t] -= 1
        return g / len(self._t)

    def accuracy(self, logits, target):
        return float((logits.argmax(axis=1) == np.asarray(target)).mean())


class BCEWithLogits(Loss):
    """Binary cross-entropy on logits (any shape) against 0/1 targets:
    max(z, 0) - z*t + log(1 + exp(-|z|)), which never overflows."""

    def forward(self, z, target):
        t = np.asarray(target, dtype=z.dtype).reshape(z.shape)
        self._z, self._t = z, t
        return float((np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean())

    def backward(self):
        p = np.exp(-np.logaddexp(0, -self._z))
        return (p - self._t) / self._z.size

    def accuracy(self, z, target):
        return float(((z > 0) == (np.asarray(target).reshape(z.shape) > 0.5)).mean())


class BCE(Loss):
    """Binary cross-entropy on probabilities (e.g. after a Sigmoid layer);
    probabilities are clipped to [eps, 1-eps]."""

    def __init__(self, eps: float = 1e-7):
        self.eps = eps

    def forward(self, p, target):
        t = np.asarray(target, dtype=p.dtype).reshape(p.shape)
        self._p, self._t = np.clip(p, self.eps, 1 - self.eps), t
        q = self._p
        return float(-(t * np.log(q) + (1 - t) * np.log(1 - q)).mean())

    def backward(self):
        q, t = self._p, self._t
        return (q - t) / (q * (1 - q)) / q.size

    def accuracy(self, p, target):
        return float(((p > 0.5) == (np.asarray(target).reshape(p.shape) > 0.5)).mean())


class MSE(Loss):
    """Mean squared error. Its accuracy counts outputs within 0.5 of the
    target (for 0/1 or integer targets: the rounded output is right)."""

    def forward(self, y, target):
        t = np.asarray(target, dtype=y.dtype).reshape(y.shape)
        self._d = y - t
        return float((self._d ** 2).mean())

    def backward(self):
        return 2 * self._d / self._d.size

    def accuracy(self, y, target):
        return float((np.abs(y - np.asarray(target).reshape(y.shape)) < 0.5).mean())
