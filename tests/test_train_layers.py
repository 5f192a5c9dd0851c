"""Every layer's backward against central finite differences in float64."""
from __future__ import annotations

import numpy as np
import pytest

from pyengine import train as T
from train_core_helpers import check_layer_grads, numeric_grad, rel_error


@pytest.fixture(autouse=True)
def _seed():
    T.seed(1234)


def test_linear(rng):
    check_layer_grads(T.Linear(5, 3), rng.normal(size=(4, 5)), rng)


def test_linear_3d_input_and_no_bias(rng):
    check_layer_grads(T.Linear(4, 3, bias=False), rng.normal(size=(2, 3, 4)), rng)


@pytest.mark.parametrize("cin,cout,k,stride,pad,dil,groups,hw", [
    (2, 3, 3, 1, 0, 1, 1, (5, 6)),
    (2, 4, 3, 2, 1, 1, 1, (7, 6)),
    (4, 6, 3, 1, 1, 1, 2, (5, 5)),      # groups
    (3, 3, 3, 2, 1, 1, 3, (6, 7)),      # depthwise, stride 2
    (2, 2, (2, 3), (1, 2), (1, 0), 1, 1, (5, 6)),  # rectangular kernel/stride, padding in one axis
    (1, 2, 3, 1, 2, 2, 1, (6, 6)),      # dilation
])
def test_conv2d(rng, cin, cout, k, stride, pad, dil, groups, hw):
    layer = T.Conv2D(cin, cout, k, stride=stride, padding=pad, dilation=dil, groups=groups)
    check_layer_grads(layer, rng.normal(size=(2, cin) + hw), rng)


def test_conv2d_forward_matches_direct_loop(rng):
    layer = T.Conv2D(4, 6, 3, stride=2, padding=1, groups=2).astype(np.float64)
    x = rng.normal(size=(2, 4, 5, 6))
    y = layer.forward(x)
    w, b = layer.weight.data, layer.bias.data
    layer.bias.data[:] = rng.normal(size=6)
    y = layer.forward(x)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros_like(y)
    for o in range(6):
        gi = o // 3
        for i in range(y.shape[2]):
            for j in range(y.shape[3]):
                patch = xp[:, gi * 2:gi * 2 + 2, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
                ref[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3)) + b[o]
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k,stride,pad", [(2, None, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (2, 1), 0)])
def test_maxpool(rng, k, stride, pad):
    check_layer_grads(T.MaxPool2D(k, stride, pad), rng.normal(size=(2, 3, 6, 7)), rng)


@pytest.mark.parametrize("k,stride,pad,include", [(2, None, 0, False), (3, 2, 1, False), (3, 2, 1, True),
                                                   (3, 1, 1, False)])
def test_avgpool(rng, k, stride, pad, include):
    check_layer_grads(T.AvgPool2D(k, stride, pad, count_include_pad=include), rng.normal(size=(2, 2, 6, 5)), rng)


def test_avgpool_padding_divides_by_real_pixels():
    x = np.ones((1, 1, 4, 4), np.float32)
    y = T.AvgPool2D(3, 1, 1).forward(x)
    np.testing.assert_allclose(y, 1.0)  # count_include_pad=False: padding does not dilute
    y2 = T.AvgPool2D(3, 1, 1, count_include_pad=True).forward(x)
    assert y2[0, 0, 0, 0] == pytest.approx(4 / 9)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 3)])
def test_batchnorm_train(rng, shape):
    bn = T.BatchNorm(3)
    bn.weight.data[:] = rng.normal(size=3)
    bn.bias.data[:] = rng.normal(size=3)
    check_layer_grads(bn, rng.normal(size=shape) * 2 + 1, rng)


def test_batchnorm_eval_and_running_stats(rng):
    bn = T.BatchNorm(3, momentum=0.5).astype(np.float64)
    x = rng.normal(size=(8, 3, 2, 2)) * 3 + 2
    bn.forward(x)
    m = x.mean(axis=(0, 2, 3))
    v = x.var(axis=(0, 2, 3)) * 32 / 31  # unbiased
    np.testing.assert_allclose(bn.running_mean, 0.5 * m)
    np.testing.assert_allclose(bn.running_var, 0.5 + 0.5 * v)
    bn.eval()
    y = bn.forward(x)
    ref = (x - bn.running_mean[None, :, None, None]) / np.sqrt(bn.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    check_layer_grads(bn, x, rng)  # eval-mode backward


@pytest.mark.parametrize("shape,norm", [((4, 5), 5), ((2, 3, 4), 4), ((2, 3, 4), (3, 4))])
def test_layernorm(rng, shape, norm):
    ln = T.LayerNorm(norm)
    ln.weight.data[...] = rng.normal(size=ln.weight.shape)
    ln.bias.data[...] = rng.normal(size=ln.bias.shape)
    check_layer_grads(ln, rng.normal(size=shape), rng)


@pytest.mark.parametrize("layer", [T.ReLU(), T.LeakyReLU(0.1), T.Sigmoid(), T.Tanh(), T.GELU(), T.Softmax(),
                                   T.Softmax(axis=1), T.Flatten(), T.Identity()],
                         ids=lambda l: type(l).__name__)
def test_activations(rng, layer):
    check_layer_grads(layer, rng.normal(size=(3, 4, 5)) * 2, rng)


def test_gelu_values():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 2.0])
    ref = np.array([-0.0040496, -0.1586553, 0.0, 0.3457312, 1.9544997])
    np.testing.assert_allclose(T.GELU().forward(x), ref, atol=1e-6)


def test_sigmoid_is_stable_for_large_inputs():
    y = T.Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0], np.float32))
    assert np.all(np.isfinite(y)) and y[0] == 0 and y[1] == 0.5 and y[2] == 1


def test_embedding(rng):
    emb = T.Embedding(7, 3).astype(np.float64)
    idx = np.array([[1, 3, 1], [6, 0, 1]])  # repeated index: gradients must add up
    y = emb.forward(idx)
    g = rng.normal(size=y.shape)
    emb.zero_grad()
    assert emb.backward(g) is None

    def f():
        return float(np.sum(emb.forward(idx) * g))

    assert rel_error(emb.weight.grad, numeric_grad(f, emb.weight.data)) < 1e-6
    with pytest.raises(IndexError):
        emb.forward(np.array([7]))


def test_residual(rng):
    check_layer_grads(T.Residual(T.Sequential(T.Linear(4, 4), T.Tanh())), rng.normal(size=(3, 4)), rng)


def test_sequential_cnn(rng):
    model = T.Sequential(T.Conv2D(1, 2, 3, padding=1, bias=False), T.BatchNorm(2), T.ReLU(), T.MaxPool2D(2),
                         T.Flatten(), T.Linear(8, 3), T.Softmax())
    check_layer_grads(model, rng.normal(size=(3, 1, 4, 4)), rng)


def test_dropout(rng):
    d = T.Dropout(0.4, rng=0)
    x = np.ones((200, 50), np.float32)
    y = d.forward(x)
    kept = y != 0
    assert 0.5 < kept.mean() < 0.7
    np.testing.assert_allclose(y[kept], 1 / 0.6, rtol=1e-6)
    g = rng.normal(size=x.shape).astype(np.float32)
    np.testing.assert_array_equal(d.backward(g), g * y)  # same mask, same scale
    d.eval()
    assert d.forward(x) is x


def test_float32_stays_float32(rng):
    model = T.Sequential(T.Conv2D(1, 2, 3), T.BatchNorm(2), T.GELU(), T.Flatten(), T.Linear(8, 2),
                         T.LayerNorm(2), T.Softmax())
    y = model.forward(rng.normal(size=(2, 1, 4, 4)).astype(np.float32))
    assert y.dtype == np.float32
    assert model.backward(np.ones_like(y)).dtype == np.float32
