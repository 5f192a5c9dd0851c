"""Export of every layer type and of small models: the ONNX file passes the
checker, keeps the batch dimension dynamic, and onnxruntime and pyengine
reproduce the trainer's eval-mode forward within 1e-5 at batch 1 and 7."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from pyengine import train as T
from train_core_helpers import run_ort, run_pyengine


def _bn(c):
    bn = T.BatchNorm(c)
    rng = np.random.default_rng(0)
    bn.weight.data[:] = rng.normal(size=c)
    bn.bias.data[:] = rng.normal(size=c)
    bn.running_mean[:] = rng.normal(size=c)
    bn.running_var[:] = rng.uniform(0.5, 2.0, size=c)
    return bn


def _trained_cnn():
    model = T.Sequential(T.Conv2D(1, 4, 3, padding=1), T.BatchNorm2d(4), T.ReLU(), T.MaxPool2D(2),
                         T.Conv2D(4, 4, 3, padding=1, groups=2), T.AvgPool2D(2), T.Flatten(), T.Dropout(0.5),
                         T.Linear(16, 5), T.Softmax())
    rng = np.random.default_rng(1)
    for _ in range(3):  # nontrivial running statistics
        model.forward(rng.normal(size=(6, 1, 8, 8)).astype(np.float32))
    return model


F = np.float32
CASES = {
    "linear": (lambda: T.Linear(6, 4), (6,), F),
    "linear_3d": (lambda: T.Linear(6, 4), (3, 6), F),
    "linear_nobias": (lambda: T.Linear(6, 4, bias=False), (6,), F),
    "linear_nobias_3d": (lambda: T.Linear(6, 4, bias=False), (2, 6), F),
    "conv": (lambda: T.Conv2D(3, 4, 3), (3, 7, 6), F),
    "conv_stride_pad": (lambda: T.Conv2D(3, 4, 3, stride=2, padding=1), (3, 7, 6), F),
    "conv_groups": (lambda: T.Conv2D(4, 6, (3, 2), padding=(1, 0), groups=2), (4, 5, 6), F),
    "conv_depthwise_dilated": (lambda: T.Conv2D(3, 3, 3, padding=2, dilation=2, groups=3), (3, 6, 6), F),
    "maxpool": (lambda: T.MaxPool2D(2), (2, 6, 7), F),
    "maxpool_pad": (lambda: T.MaxPool2D(3, 2, 1), (2, 7, 6), F),
    "avgpool": (lambda: T.AvgPool2D(2), (2, 6, 6), F),
    "avgpool_pad": (lambda: T.AvgPool2D(3, 2, 1), (2, 7, 6), F),
    "avgpool_pad_include": (lambda: T.AvgPool2D(3, 2, 1, count_include_pad=True), (2, 7, 6), F),
    "batchnorm_1d": (lambda: _bn(5), (5,), F),
    "batchnorm_2d": (lambda: _bn(3), (3, 4, 5), F),
    "layernorm": (lambda: T.LayerNorm(6), (4, 6), F),
    "layernorm_2axes": (lambda: T.LayerNorm((4, 6)), (4, 6), F),
    "relu": (T.ReLU, (3, 5), F),
    "leaky_relu": (lambda: T.LeakyReLU(0.2), (3, 5), F),
    "sigmoid": (T.Sigmoid, (3, 5), F),
    "tanh": (T.Tanh, (3, 5), F),
    "gelu": (T.GELU, (3, 5), F),
    "softmax": (T.Softmax, (3, 5), F),
    "softmax_axis1": (lambda: T.Softmax(axis=1), (3, 5), F),
    "flatten": (T.Flatten, (2, 3, 4), F),
    "dropout": (lambda: T.Sequential(T.Dropout(0.5), T.Tanh()), (5,), F),
    "embedding": (lambda: T.Embedding(11, 4), (6,), np.int64),
    "residual": (lambda: T.Residual(T.Sequential(T.Linear(5, 5), T.GELU())), (5,), F),
    "mlp": (lambda: T.Sequential(T.Linear(8, 16), T.ReLU(), T.Dropout(0.2), T.Linear(16, 16),
                                 T.BatchNorm1d(16), T.LeakyReLU(), T.Linear(16, 3), T.Softmax()), (8,), F),
    "cnn": (_trained_cnn, (1, 8, 8), F),
    "token_mlp": (lambda: T.Sequential(T.Embedding(9, 6), T.LayerNorm(6),
                                       T.Residual(T.Sequential(T.Linear(6, 6), T.GELU())), T.Linear(6, 2)),
                  (5,), np.int64),
}


def _inputs(shape, dtype, batch, seed):
    rng = np.random.default_rng(seed)
    if dtype == np.int64:
        return rng.integers(0, 9, (batch,) + shape).astype(np.int64)
    return rng.normal(size=(batch,) + shape).astype(dtype)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (model, path), exported once per module."""
    out, d = {}, tmp_path_factory.mktemp("export")
    for name, (build, shape, dtype) in CASES.items():
        T.seed(7)
        model = build()
        path = d / f"{name}.onnx"
        T.to_onnx(model, path, _inputs(shape, dtype, 2, 0))
        model.eval()
        out[name] = (model, path)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_onnxruntime_matches_trainer(exported, name):
    model, path = exported[name]
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version == 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    _, shape, dtype = CASES[name]
    for batch in (1, 7):
        x = _inputs(shape, dtype, batch, batch)
        np.testing.assert_allclose(run_ort(path, x), model.forward(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_pyengine_matches_trainer(exported, name):
    model, path = exported[name]
    _, shape, dtype = CASES[name]
    for batch in (1, 7):
        x = _inputs(shape, dtype, batch, batch)
        np.testing.assert_allclose(run_pyengine(path, x), model.forward(x), rtol=1e-5, atol=1e-5)


def test_export_leaves_training_mode_alone(tmp_path):
    model = T.Sequential(T.Linear(3, 3), T.Dropout(0.5))
    T.to_onnx(model, tmp_path / "m.onnx", np.zeros((2, 3), np.float32))
    assert model.training and model[1].training


def test_linear_exports_gemm_for_2d_and_matmul_for_3d(exported):
    ops = lambda n: [node.op_type for node in onnx.load(str(exported[n][1])).graph.node]  # noqa: E731
    assert "Gemm" in ops("linear") and "MatMul" not in ops("linear")
    assert "MatMul" in ops("linear_3d") and "Gemm" not in ops("linear_3d")


def test_unexportable_layer_says_so():
    class Custom(T.Layer):
        def forward(self, x):
            return x

    with pytest.raises(NotImplementedError, match="Custom"):
        T.to_onnx(Custom(), None, np.zeros((1, 2), np.float32))
