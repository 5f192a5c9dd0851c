"""The onnx package's light model zoo (AlexNet, ResNet-50, VGG-19, DenseNet-121,
Inception v1/v2, ShuffleNet, SqueezeNet, ZFNet-512): each loads, runs and
matches the output stored beside it. Their weights are ConstantOfShape nodes,
so constant folding does real work here. The input is the deterministic ramp
the onnx backend test runner feeds these models."""
from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import pytest

import pyengine

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
MODELS = sorted(glob.glob(os.path.join(LIGHT_DIR, "light_*.onnx")))


def ramp_input(vi) -> np.ndarray:
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


def test_all_light_models_found():
    names = {os.path.basename(p)[len("light_"):-len(".onnx")] for p in MODELS}
    assert {"bvlc_alexnet", "resnet50", "vgg19", "densenet121", "inception_v1", "inception_v2", "shufflenet",
            "squeezenet", "zfnet512"} <= names


@pytest.mark.parametrize("path", MODELS, ids=[os.path.basename(p)[6:-5] for p in MODELS])
def test_light_model_matches_stored_output(path):
    model = onnx.load(path)
    inits = {t.name for t in model.graph.initializer}
    feeds = {vi.name: ramp_input(vi) for vi in model.graph.input if vi.name not in inits}
    expected = []
    for i in range(len(model.graph.output)):
        t = onnx.TensorProto()
        with open(path[:-5] + f"_output_{i}.pb", "rb") as f:
            t.ParseFromString(f.read())
        expected.append(onnx.numpy_helper.to_array(t))
    sess = pyengine.InferenceSession(path)
    got = sess.run(None, feeds)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-3, atol=1e-5)
