"""Optimizer steps and learning-rate schedules against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from pyengine import train as T


def _param(values, grad):
    p = T.Parameter(np.array(values, np.float64), "p")
    p.grad[...] = grad
    return p


def test_sgd_plain_and_weight_decay():
    p = _param([1.0, -2.0], [0.5, 0.5])
    T.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.95, -2.05])
    p = _param([1.0, -2.0], [0.5, 0.5])
    T.SGD([p], lr=0.1, weight_decay=0.1).step()  # g + wd*p = [0.6, 0.3]
    np.testing.assert_allclose(p.data, [0.94, -2.03])


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum(nesterov):
    p = _param([1.0], [1.0])
    opt = T.SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov)
    opt.step()  # v = 1
    first = 1 + 0.9 * 1 if nesterov else 1
    np.testing.assert_allclose(p.data, [1 - 0.1 * first])
    p.grad[...] = 2.0
    opt.step()  # v = 0.9*1 + 2 = 2.9
    second = 2 + 0.9 * 2.9 if nesterov else 2.9
    np.testing.assert_allclose(p.data, [1 - 0.1 * first - 0.1 * second])


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError):
        T.SGD([_param([1.0], [0.0])], nesterov=True)


def _adam_reference(p, grads, lr, b1, b2, eps, wd=0.0, decoupled=False):
    m = v = 0.0
    for t, g in enumerate(grads, 1):
        if wd and decoupled:
            p = p - lr * wd * p
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (math.sqrt(v / (1 - b2 ** t)) + eps)
    return p


@pytest.mark.parametrize("cls,wd", [(T.Adam, 0.0), (T.Adam, 0.1), (T.AdamW, 0.1)])
def test_adam_family(cls, wd):
    grads = [0.3, -0.1, 0.7]
    p = _param([0.5], grads[0])
    opt = cls([p], lr=0.01, betas=(0.8, 0.9), eps=1e-8, weight_decay=wd)
    for g in grads:
        p.grad[...] = g
        opt.step()
    ref = _adam_reference(0.5, grads, 0.01, 0.8, 0.9, 1e-8, wd, decoupled=cls is T.AdamW)
    np.testing.assert_allclose(p.data, [ref], rtol=1e-12)


def test_adam_first_step_is_lr_times_sign():
    p = _param([1.0, 1.0], [3.0, -0.01])
    T.Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [0.9, 1.1], rtol=1e-6)


def test_clip_grad_norm():
    a, b = _param([0.0, 0.0], [3.0, 0.0]), _param([0.0], [4.0])
    norm = T.clip_grad_norm([a, b], 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad, [0.6, 0.0])
    np.testing.assert_allclose(b.grad, [0.8])
    assert T.clip_grad_norm([a, b], 10.0) == pytest.approx(1.0)  # under the limit: unchanged
    np.testing.assert_allclose(b.grad, [0.8])


def test_optimizer_clips_before_step():
    p = _param([0.0, 0.0], [30.0, 40.0])
    T.SGD([p], lr=1.0, clip_norm=5.0).step()
    np.testing.assert_allclose(p.data, [-3.0, -4.0])


def test_step_schedule():
    s = T.StepLR(step_size=3, gamma=0.5)
    assert [s(i, 1.0) for i in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]


def test_cosine_schedule():
    s = T.CosineLR(total_steps=10, min_lr=0.1)
    assert s(0, 1.0) == pytest.approx(1.0)
    assert s(5, 1.0) == pytest.approx(0.55)
    assert s(10, 1.0) == pytest.approx(0.1)
    assert s(25, 1.0) == pytest.approx(0.1)
    assert s(2, 1.0) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.2)))


def test_linear_warmup_then_cosine():
    s = T.LinearWarmup(4, after=T.CosineLR(10))
    assert [s(i, 2.0) for i in range(4)] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert s(4, 2.0) == pytest.approx(2.0)
    assert s(9, 2.0) == pytest.approx(1.0)
    assert T.LinearWarmup(2)(7, 0.3) == 0.3


def test_optimizer_uses_schedule_per_step():
    p = _param([0.0], [1.0])
    opt = T.SGD([p], lr=1.0, schedule=T.StepLR(1, 0.1))
    for _ in range(3):
        opt.step()
    np.testing.assert_allclose(p.data, [-(1 + 0.1 + 0.01)])
    assert opt.lr == pytest.approx(0.01) and opt.steps == 3
