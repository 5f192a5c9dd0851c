"""Optimizers and learning-rate schedules.

One Optimizer base does what every optimizer shares (learning-rate schedule,
gradient clipping by global norm, step counting, state for checkpoints);
each optimizer only writes `_step(p, g, state, lr)` updating one parameter.
Schedules are callables `schedule(step, base_lr) -> lr`, evaluated per
optimizer step (one mini-batch).
"""
from __future__ import annotations

import math

import numpy as np


def clip_grad_norm(params, max_norm: float) -> float:
    """Scales all gradients together so their global L2 norm is at most
    max_norm; returns the norm before clipping."""
    total = math.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in params))
    if total > max_norm > 0:
        scale = max_norm / total
        for p in params:
            p.grad *= p.grad.dtype.type(scale)
    return total


class Optimizer:
    def __init__(self, params, lr: float, weight_decay: float = 0.0, clip_norm=None, schedule=None):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got no parameters")
        self.base_lr, self.lr = lr, lr
        self.weight_decay, self.clip_norm, self.schedule = weight_decay, clip_norm, schedule
        self.steps = 0
        self.state = [{} for _ in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def step(self) -> None:
        self.lr = self.schedule(self.steps, self.base_lr) if self.schedule else self.base_lr
        if self.clip_norm:
            clip_grad_norm(self.params, self.clip_norm)
        for p, state in zip(self.params, self.state):
            self._step(p, p.grad, state, self.lr)
        self.steps += 1

    def _step(self, p, g, state: dict, lr: float) -> None:
        raise NotImplementedError

    # ---- checkpoints ---------------------------------------------------------
    def state_dict(self) -> dict:
        out = {"steps": np.array(self.steps)}
        for i, st in enumerate(self.state):
            for k, v in st.items():
                out[f"{i}.{k}"] = np.asarray(v)
        return out

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])
        self.state = [{} for _ in self.params]
        for key, v in state.items():
            if key == "steps":
                continue
            i, k = key.split(".", 1)
            self.state[int(i)][k] = np.array(v)


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum and L2 weight decay, PyTorch's
    formulation: v = mu*v + g; step = g + mu*v (Nesterov) or v."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm=None, schedule=None):
        super().__init__(params, lr, weight_decay, clip_norm, schedule)
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum, self.nesterov = momentum, nesterov

    def _step(self, p, g, state, lr):
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            v = state.get("v")
            v = g.copy() if v is None else self.momentum * v + g
            state["v"] = v
            g = g + self.momentum * v if self.nesterov else v
        p.data -= (lr * g).astype(p.data.dtype, copy=False)


class Adam(Optimizer):
    """Adam with bias correction; weight_decay is L2 added to the gradient."""

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, clip_norm=None, schedule=None):
        super().__init__(params, lr, weight_decay, clip_norm, schedule)
        self.beta1, self.beta2 = betas
        self.eps = eps

    def _step(self, p, g, state, lr):
        if self.weight_decay:
            if self.decoupled:
                p.data -= (lr * self.weight_decay * p.data).astype(p.data.dtype, copy=False)
            else:
                g = g + self.weight_decay * p.data
        t = int(state.get("t", 0)) + 1
        m = self.beta1 * state.get("m", 0.0) + (1 - self.beta1) * g
        v = self.beta2 * state.get("v", 0.0) + (1 - self.beta2) * g * g
        state.update(t=np.array(t), m=m, v=v)
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        p.data -= (lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.data.dtype, copy=False)


class AdamW(Adam):
    """Adam with decoupled weight decay: p -= lr*wd*p before the Adam update."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, clip_norm=None, schedule=None):
        super().__init__(params, lr, betas, eps, weight_decay, clip_norm, schedule)


# ---------------------------------------------------------------- schedules
class StepLR:
    """lr = base * gamma ** (step // step_size)."""

    def __init__(self, step_size: int, gamma: float = 0.1):
        self.step_size, self.gamma = step_size, gamma

    def __call__(self, step, base_lr):
        return base_lr * self.gamma ** (step // self.step_size)


class CosineLR:
    """Cosine decay from base to min_lr over total_steps, then min_lr."""

    def __init__(self, total_steps: int, min_lr: float = 0.0):
        self.total_steps, self.min_lr = max(1, total_steps), min_lr

    def __call__(self, step, base_lr):
        frac = min(step, self.total_steps) / self.total_steps
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * frac))


class LinearWarmup:
    """Linear ramp base*(step+1)/warmup_steps, then `after` (counted from the
    end of the warm-up) or the constant base."""

    def __init__(self, warmup_steps: int, after=None):
        self.warmup_steps, self.after = warmup_steps, after

    def __call__(self, step, base_lr):
        if step < self.warmup_steps:
            return base_lr * (step + 1) / self.warmup_steps
        return self.after(step - self.warmup_steps, base_lr) if self.after else base_lr
