"""Trainer checkpoint (.npz written by pyengine.train.save_checkpoint) to
ONNX: the architecture is a Python function that builds the untrained model
(`path/to/script.py:build` or `package.module:build`); its parameters are
loaded from the checkpoint, the model is exported with pyengine.train.to_onnx,
and the file is kept only if onnxruntime reproduces the trainer's forward pass."""
from __future__ import annotations

import importlib
import importlib.util
import os

import numpy as np

from ._common import CLIError


def load_architecture(spec: str):
    """The callable named by `spec` ("file.py:func" or "module:func")."""
    if ":" not in spec:
        raise CLIError(f"--arch must look like 'file.py:function' or 'module:function', got {spec!r}")
    where, func = spec.rsplit(":", 1)
    if where.endswith(".py"):
        if not os.path.isfile(where):
            raise CLIError(f"architecture file not found: {where}")
        mod_spec = importlib.util.spec_from_file_location("_pyengine_arch", where)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise CLIError(f"cannot import architecture module {where!r}: {e}") from None
    fn = getattr(module, func, None)
    if not callable(fn):
        raise CLIError(f"{where} has no function {func!r}")
    return fn


def convert_checkpoint(checkpoint: str, arch: str, input_shape: str, output: str, rtol: float = 1e-4) -> dict:
    from ..train import load_checkpoint, to_onnx
    from ._common import ort_module
    if not input_shape:
        raise CLIError("converting a checkpoint needs --input-shape (one sample with its batch, e.g. 1,1,8,8)")
    try:
        shape = tuple(int(d) for d in input_shape.split(","))
    except ValueError:
        raise CLIError(f"--input-shape must be comma-separated integers, got {input_shape!r}") from None
    model = load_architecture(arch)()
    try:
        load_checkpoint(checkpoint, model)
    except (KeyError, ValueError) as e:
        raise CLIError(f"checkpoint {checkpoint} does not fit architecture {arch}: {e}") from None
    model.eval()
    sample = np.random.default_rng(0).random(shape).astype(np.float32)
    proto = to_onnx(model, None, sample)
    expected = np.asarray(model.forward(sample))
    ort = ort_module()
    if ort is not None:
        sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: sample})[0]
        err = float(np.max(np.abs(got - expected))) if got.size else 0.0
        if not np.allclose(got, expected, rtol=rtol, atol=rtol):
            raise CLIError(f"the exported model differs from the trainer (max abs error {err:.3g}); nothing written")
    else:
        err = None
    with open(output, "wb") as f:
        f.write(proto.SerializeToString())
    return {"nodes": len(proto.graph.node), "max_abs_err": err}
