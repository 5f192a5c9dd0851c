"""GPU execution by delegation to onnxruntime: fallback with a warning, strict
mode, and the delegated session's API. Without a GPU the delegation is tested
through the PYENGINE_TEST_FAKE_CUDA hook (onnxruntime's CPU provider stands in
for CUDA); tests marked gpu run the real CUDA path where onnxruntime has it."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import pyengine
from pyengine.runtime import gpu
from test_session_api import mlp_model, reference_mlp

CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
no_real_cuda = pytest.mark.skipif(HAS_CUDA, reason="onnxruntime has CUDA here: nothing falls back")


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setenv(gpu.FAKE_CUDA_ENV, "1")


@pytest.fixture
def model_bytes():
    return mlp_model().SerializeToString()


def x_input(rng, n=3):
    return rng.standard_normal((n, 8)).astype(np.float32)


# ---- fallback to the CPU engine ----------------------------------------------

@no_real_cuda
def test_fallback_warns_and_runs_on_cpu(model_bytes, rng):
    with pytest.warns(RuntimeWarning, match=r"CUDAExecutionProvider was requested but .*no CUDAExecutionProvider.*"
                                             r"pyengine\[gpu\].*running on pyengine's CPUExecutionProvider"):
        sess = pyengine.InferenceSession(model_bytes, providers=CUDA)
    assert type(sess) is pyengine.InferenceSession
    assert sess.get_providers() == ["CPUExecutionProvider"]
    x = x_input(rng)
    np.testing.assert_allclose(sess.run(None, {"x": x})[0], reference_mlp(mlp_model(), x), rtol=1e-5, atol=1e-5)
    assert "CUDAExecutionProvider" not in pyengine.get_available_providers()


@no_real_cuda
def test_strict_raises_instead_of_falling_back(model_bytes):
    with pytest.raises(gpu.ProviderUnavailableError, match="strict=True") as info:
        pyengine.InferenceSession(model_bytes, providers=CUDA, strict=True)
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, pyengine.PyEngineError)


def test_fallback_reason_when_onnxruntime_missing(model_bytes, monkeypatch):
    monkeypatch.setattr(gpu, "_onnxruntime", lambda: None)
    assert "onnxruntime is not installed" in gpu.unavailable_reason("CUDAExecutionProvider")
    with pytest.warns(RuntimeWarning, match="onnxruntime is not installed"):
        sess = pyengine.InferenceSession(model_bytes, providers=["CUDAExecutionProvider"])
    assert sess.get_providers() == ["CPUExecutionProvider"]


@pytest.mark.parametrize("providers", [None, ["CPUExecutionProvider"], [("CPUExecutionProvider", {})],
                                       ["CPUExecutionProvider", "CUDAExecutionProvider"]])
def test_cpu_first_never_warns_nor_delegates(model_bytes, providers, monkeypatch):
    monkeypatch.setenv(gpu.FAKE_CUDA_ENV, "1")  # even when CUDA is "available"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sess = pyengine.InferenceSession(model_bytes, providers=providers)
    assert type(sess) is pyengine.InferenceSession


def test_unknown_provider_is_an_error(model_bytes):
    with pytest.raises(ValueError, match="unknown execution provider"):
        pyengine.InferenceSession(model_bytes, providers=["NoSuchExecutionProvider"])


# ---- delegation (onnxruntime's CPU provider standing in for CUDA) --------------

def test_delegated_session_matches_cpu_engine(model_bytes, fake_cuda, rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sess = pyengine.InferenceSession(model_bytes, providers=CUDA)
    assert isinstance(sess, gpu.delegated_class()) and isinstance(sess, pyengine.InferenceSession)
    assert sess.engine == "onnxruntime"
    # The hook runs onnxruntime on its CPU provider, and get_providers says what really runs.
    assert sess.get_providers() == ["CPUExecutionProvider"]
    assert pyengine.get_available_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    cpu = pyengine.InferenceSession(model_bytes)
    for a, b in zip(sess.get_inputs() + sess.get_outputs(), cpu.get_inputs() + cpu.get_outputs()):
        assert type(a) is type(b) and (a.name, a.shape, a.type) == (b.name, b.shape, b.type)
    assert isinstance(sess.get_modelmeta(), pyengine.ModelMetadata)
    for n in (1, 5):
        x = x_input(rng, n)
        (got,) = sess.run(None, {"x": x})
        assert type(got) is np.ndarray and got.dtype == np.float32 and got.shape == (n, 4)
        np.testing.assert_allclose(got, cpu.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
    assert len(sess.run(["y"], {"x": x_input(rng)})) == 1
    assert isinstance(pyengine.InferenceSession(model_bytes, None, CUDA), gpu.delegated_class())  # positional


def test_delegated_session_checks_inputs_like_the_cpu_engine(model_bytes, fake_cuda):
    sess = pyengine.InferenceSession(model_bytes, providers=CUDA)
    x = np.zeros((2, 8), np.float32)
    with pytest.raises(pyengine.InputError, match=r"unknown input name\(s\) \['z'\]"):
        sess.run(None, {"z": x})
    with pytest.raises(pyengine.InputTypeError, match="expected element type tensor\\(float\\)"):
        sess.run(None, {"x": x.astype(np.float64)})
    with pytest.raises(pyengine.InputError, match="dimension 1 must be 8"):
        sess.run(None, {"x": np.zeros((2, 5), np.float32)})
    with pytest.raises(pyengine.InputError, match="unknown output name 'nope'"):
        sess.run(["nope"], {"x": x})


@pytest.mark.parametrize("source", ["path", "bytes", "proto"])
def test_delegated_session_sources(tmp_path, source, fake_cuda):
    model = mlp_model()
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    arg = {"path": str(path), "bytes": model.SerializeToString(), "proto": model}[source]
    sess = pyengine.InferenceSession(arg, providers=CUDA)
    assert isinstance(sess, gpu.delegated_class())
    assert sess.run(None, {"x": np.ones((1, 8), np.float32)})[0].shape == (1, 4)


def test_delegated_session_bad_model_raises_pyengine_errors(tmp_path, fake_cuda):
    with pytest.raises(FileNotFoundError):
        pyengine.InferenceSession(str(tmp_path / "missing.onnx"), providers=CUDA)
    with pytest.raises(pyengine.InvalidModelError):
        pyengine.InferenceSession(b"not a model", providers=CUDA)


@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_onnxruntime_silent_fallback_is_reported(model_bytes, monkeypatch):
    """onnxruntime quietly runs on CPU when CUDA cannot load: pyengine warns, or raises under strict."""
    if HAS_CUDA:
        pytest.skip("CUDA really available")
    monkeypatch.setenv(gpu.FAKE_CUDA_ENV, "1")
    monkeypatch.setattr(gpu, "_ort_providers", lambda providers, opts: (list(CUDA), [{}, {}]))
    with pytest.warns(RuntimeWarning, match="onnxruntime could not use CUDAExecutionProvider"):
        sess = pyengine.InferenceSession(model_bytes, providers=CUDA)
    assert sess.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(gpu.ProviderUnavailableError):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pyengine.InferenceSession(model_bytes, providers=CUDA, strict=True)


def test_cpu_session_cannot_switch_to_gpu(model_bytes, fake_cuda):
    sess = pyengine.InferenceSession(model_bytes)
    with pytest.warns(RuntimeWarning, match="cannot switch"):
        sess.set_providers(CUDA)
    assert sess.get_providers() == ["CPUExecutionProvider"]


# ---- the real CUDA path ------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="onnxruntime has no CUDAExecutionProvider here")
def test_cuda_matches_cpu_engine(model_bytes, rng):
    sess = pyengine.InferenceSession(model_bytes, providers=CUDA, strict=True)
    assert sess.get_providers()[0] == "CUDAExecutionProvider"
    cpu = pyengine.InferenceSession(model_bytes)
    for n in (1, 7, 64):
        x = x_input(rng, n)
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], cpu.run(None, {"x": x})[0], rtol=1e-3, atol=1e-3)
