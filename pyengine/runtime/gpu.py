"""GPU execution by delegation to onnxruntime.

pyengine's own engine runs on the CPU only. When a session asks for
"CUDAExecutionProvider" first, and an onnxruntime with CUDA is installed
(`pip install 'pyengine[gpu]'`, which brings onnxruntime-gpu), the session is
an onnxruntime session behind pyengine's API: same NodeArg/ModelMetadata
types, same input checks and errors, NumPy outputs. `get_providers()` reports
what onnxruntime really uses. When CUDA is not there, the session runs on
pyengine's CPU engine with a RuntimeWarning that says why; `strict=True`
makes that an error instead.

Test hook: with the environment variable PYENGINE_TEST_FAKE_CUDA=1,
CUDAExecutionProvider counts as available and the delegated onnxruntime
session uses CPUExecutionProvider in its place. That lets the delegation
logic be tested on machines without a GPU; it is not meant for users.
"""
from __future__ import annotations

import os
import warnings

from .. import _dtypes
from ..errors import PyEngineError
from ..onnx_import.convert import value_info
from ..onnx_import.loader import load_model
from .options import GraphOptimizationLevel, SessionOptions

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
#: Providers pyengine hands to onnxruntime instead of running itself.
DELEGATED = (CUDA_PROVIDER,)
FAKE_CUDA_ENV = "PYENGINE_TEST_FAKE_CUDA"


class ProviderUnavailableError(PyEngineError, RuntimeError):
    """A provider was required (strict=True) but cannot be used."""


def fake_cuda() -> bool:
    """True when the test hook makes onnxruntime's CPU provider stand in for CUDA."""
    return os.environ.get(FAKE_CUDA_ENV, "") not in ("", "0")


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def unavailable_reason(provider: str):
    """Why `provider` cannot be delegated to onnxruntime here, or None when it can."""
    if provider not in DELEGATED:
        return f"{provider} is not a provider pyengine can delegate"
    if fake_cuda():
        return None
    ort = _onnxruntime()
    if ort is None:
        return ("onnxruntime is not installed; install the GPU extra with "
                "pip install 'pyengine[gpu]' (onnxruntime-gpu)")
    available = list(ort.get_available_providers())
    if provider not in available:
        return (f"the installed onnxruntime {getattr(ort, '__version__', '?')} has no {provider} "
                f"(it offers {available}); install onnxruntime-gpu with pip install 'pyengine[gpu]'")
    return None


def available_providers() -> list:
    """Delegated providers usable here, in onnxruntime's preference order."""
    return [p for p in DELEGATED if unavailable_reason(p) is None]


def requested_delegate(names) -> str | None:
    """The delegated provider the list asks for first (before CPU), if any."""
    for name in names:
        if name == CPU_PROVIDER:
            return None
        if name in DELEGATED:
            return name
    return None


def wants_delegation(providers) -> bool:
    """True when the session should be a DelegatedSession (checked before it is built)."""
    name = requested_delegate(_names(providers))
    return name is not None and unavailable_reason(name) is None


def fallback(names, strict: bool, stacklevel: int = 4) -> None:
    """Called when a delegated provider was asked for but the CPU engine will run:
    raises under strict, else warns (never silently)."""
    name = requested_delegate(names)
    if name is None:
        return
    reason = unavailable_reason(name) or ("a session already running on the CPU cannot switch to it "
                                          "(create a new InferenceSession with this provider list)")
    message = f"{name} was requested but {reason}"
    if strict:
        raise ProviderUnavailableError(message + " (strict=True)")
    warnings.warn(message + f"; running on pyengine's {CPU_PROVIDER} instead", RuntimeWarning,
                  stacklevel=stacklevel)


def _names(providers) -> list:
    return [p[0] if isinstance(p, (tuple, list)) else p for p in providers or []]


def _ort_providers(providers, provider_options):
    """The provider list (and options) handed to onnxruntime; the test hook swaps CUDA for CPU."""
    names = _names(providers)
    opts = list(provider_options or [{} for _ in names])
    for i, p in enumerate(providers or []):
        if isinstance(p, (tuple, list)) and len(p) > 1:
            opts[i] = dict(p[1])
    if fake_cuda():
        pairs, seen = [], set()
        for n, o in zip(names, opts):
            n, o = (CPU_PROVIDER, {}) if n in DELEGATED else (n, o)
            if n not in seen:
                seen.add(n)
                pairs.append((n, o))
        names, opts = [n for n, _ in pairs], [o for _, o in pairs]
    return names, opts


def _ort_options(options: SessionOptions, ort):
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(options.intra_op_num_threads or 0)
    so.inter_op_num_threads = int(options.inter_op_num_threads or 0)
    level = int(options.graph_optimization_level)
    so.graph_optimization_level = {
        int(GraphOptimizationLevel.ORT_DISABLE_ALL): ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        int(GraphOptimizationLevel.ORT_ENABLE_BASIC): ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        int(GraphOptimizationLevel.ORT_ENABLE_EXTENDED): ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }.get(level, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    so.log_severity_level = int(options.log_severity_level)
    return so


def _make_delegated_class():
    # Defined lazily: the base class lives in session.py, which imports this module lazily too.
    from .session import InferenceSession, ModelMetadata, NodeArg, _InputSpec

    class DelegatedSession(InferenceSession):
        """An InferenceSession whose run() is onnxruntime's, on a delegated provider."""

        def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None,
                     strict: bool = False, **kwargs):
            ort = _onnxruntime()
            if ort is None:  # only possible under the test hook
                raise ProviderUnavailableError("onnxruntime is not installed; pip install 'pyengine[gpu]'")
            self._options = sess_options or SessionOptions()
            self._strict = strict
            self._model = load_model(path_or_bytes)  # same checks and errors as the CPU engine
            g = self._model.graph
            inits = {t.name for t in g.initializer}
            self._input_names = [vi.name for vi in g.input if vi.name not in inits]
            self._output_names = [vi.name for vi in g.output]
            self._declared = {vi.name: value_info(vi) for vi in list(g.input) + list(g.output)}
            self._inputs = [_InputSpec(n, self._declared[n]) for n in self._input_names]
            self._requested = _names(providers)
            names, opts = _ort_providers(providers, provider_options)
            source = os.fspath(path_or_bytes) if isinstance(path_or_bytes, (str, os.PathLike)) \
                else self._model.SerializeToString()
            self._ort = ort.InferenceSession(source, _ort_options(self._options, ort),
                                             providers=names, provider_options=opts)
            self._verify_provider(names)

        def _verify_provider(self, names):
            # onnxruntime falls back to CPU quietly when CUDA libraries fail to load: say so.
            used = self._ort.get_providers()
            if names and names[0] not in used:
                message = (f"onnxruntime could not use {names[0]} (missing CUDA/cuDNN libraries or no "
                           f"GPU?); it runs on {used}")
                if self._strict:
                    raise ProviderUnavailableError(message + " (strict=True)")
                warnings.warn(message, RuntimeWarning, stacklevel=4)

        # ---- onnxruntime API ---------------------------------------------
        def get_providers(self) -> list:
            return list(self._ort.get_providers())

        def get_provider_options(self) -> dict:
            return dict(self._ort.get_provider_options())

        def get_modelmeta(self) -> ModelMetadata:
            return ModelMetadata(self._model)

        def set_providers(self, providers=None, provider_options=None) -> None:
            names, opts = _ort_providers(providers, provider_options)
            self._ort.set_providers(names, opts)
            self._verify_provider(names)

        def run(self, output_names, input_feed: dict, run_options=None) -> list:
            arrays = self._check_inputs(input_feed)
            names = list(output_names) if output_names else self._output_names
            for n in names:
                self._output_index(n)  # raises InputError for unknown names, as the CPU engine does
            return self._ort.run(names, dict(zip(self._input_names, arrays)))

        def _node_arg(self, name: str) -> NodeArg:
            info = self._declared.get(name)
            shape = None if info is None or info.shape is None else list(info.shape)
            type_ = _dtypes.type_string(info.dtype) if info is not None and info.dtype is not None \
                else "tensor(undefined)"
            return NodeArg(name, shape, type_)

        @property
        def engine(self) -> str:
            return "onnxruntime"

    return DelegatedSession


_delegated_class = None


def delegated_class():
    global _delegated_class
    if _delegated_class is None:
        _delegated_class = _make_delegated_class()
    return _delegated_class
