"""InferenceSession: onnxruntime's Python API over pyengine's compiled plans."""
from __future__ import annotations

import os
import threading
import time
from typing import Optional, Sequence

import numpy as np

from .. import _dtypes
from ..errors import InputError, InputTypeError, InvalidModelError, UnsupportedOperatorError
from ..graph import passes
from ..graph.ir import TensorInfo, aligned
from ..graph.specialize import specialize
from ..onnx_import.convert import to_graph
from ..onnx_import.loader import load_model
from ..ops.registry import get_opdef
from .compile import compile_plan
from . import input_diagnosis, native, profiling
from .limits import memory_limit
from .native import thread_pool
from .options import GraphOptimizationLevel, RunOptions, SessionOptions

CPU_PROVIDER = "CPUExecutionProvider"
_PLAN_CACHE_SIZE = 32


class NodeArg:
    """Name, shape and type of a model input or output (as onnxruntime's NodeArg)."""

    def __init__(self, name: str, shape, type_: str):
        self.name = name
        self.shape = shape
        self.type = type_

    def __repr__(self) -> str:
        return f"NodeArg(name='{self.name}', type='{self.type}', shape={self.shape})"


class ModelMetadata:
    def __init__(self, model):
        self.producer_name = model.producer_name
        self.graph_name = model.graph.name
        self.domain = model.domain
        self.description = model.doc_string
        self.graph_description = model.graph.doc_string
        self.version = model.model_version
        self.custom_metadata_map = {p.key: p.value for p in model.metadata_props}


def get_available_providers() -> list:
    from . import gpu  # GPU providers are delegated to onnxruntime when it has them
    return gpu.available_providers() + [CPU_PROVIDER]


def get_all_providers() -> list:
    return [CPU_PROVIDER, "CUDAExecutionProvider"]


def _provider_names(providers) -> list:
    names = []
    for p in providers or []:
        names.append(p[0] if isinstance(p, (tuple, list)) else p)
    return names


def check_supported(graph) -> None:
    """Raises one error listing every operator (and the nodes using it) that cannot run."""
    missing: dict = {}
    reasons = []
    for node in graph.nodes:
        opdef = get_opdef(node.op_type, node.domain)
        key = node.op_type if not node.domain else f"{node.domain}.{node.op_type}"
        if opdef is None:
            missing.setdefault(key, []).append(node.name)
            continue
        reason = opdef.check(node) or _dtype_problem(graph, node, opdef)
        if reason:
            missing.setdefault(key, []).append(node.name)
            reasons.append(f"{key} node '{node.name}': {reason}")
    if missing:
        listing = "; ".join(f"{op} (nodes: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
                            for op, names in sorted(missing.items()))
        detail = ("\n  " + "\n  ".join(reasons)) if reasons else ""
        raise UnsupportedOperatorError(
            f"the model uses operators pyengine does not support: {listing}{detail}", missing)


def _dtype_problem(graph, node, opdef):
    if opdef.dtypes is None or not node.inputs or not node.inputs[0]:
        return None
    info = graph.infos.get(node.inputs[0])
    dtype = info.dtype if info is not None else None
    if dtype is None and graph.is_const(node.inputs[0]):
        dtype = graph.const(node.inputs[0]).dtype
    if dtype is not None and dtype not in opdef.dtypes:
        return f"element type {dtype} is not supported (supported: {sorted(str(d) for d in opdef.dtypes)})"
    return None


def _align_constants(graph) -> None:
    """Large constants made by the passes are aligned (copied only in the rare
    case they are not already), so every plan reads them in place: the
    session's constants (kept to specialize for new input shapes) and the
    plans share one copy."""
    for name, value in graph.constants.items():
        graph.constants[name] = aligned(value)


class _FileSource:
    """The model file a session was created from, to read its weights again.
    Refuses when the file was replaced or changed since (its identity and
    modification time are recorded)."""

    def __init__(self, path: str, stat):
        self.path = path
        self.signature = self._signature(stat)

    @staticmethod
    def _signature(st) -> tuple:
        return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns

    @staticmethod
    def of(source):
        if not isinstance(source, (str, os.PathLike)):
            return None  # bytes or a ModelProto: the weights stay in memory
        path = os.path.abspath(os.fspath(source))
        try:
            return _FileSource(path, os.stat(path))
        except OSError:
            return None

    def reopen(self) -> str:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise InvalidModelError(f"model file {self.path} is gone ({e.strerror}); its weights were freed "
                                    "after packing, so this session cannot compile a plan for a new input "
                                    "shape: create a new session") from None
        if self._signature(st) != self.signature:
            raise InvalidModelError(f"model file {self.path} changed since the session was created; its weights "
                                    "were freed after packing, so this session cannot compile a plan for a new "
                                    "input shape: create a new session")
        return self.path


class _InputSpec:
    __slots__ = ("name", "dtype", "shape", "rank", "static_dims")

    def __init__(self, name: str, info: TensorInfo):
        if info.dtype is None:
            raise InvalidModelError(f"graph input '{name}' has no tensor element type")
        self.name = name
        self.dtype = info.dtype
        self.shape = info.shape
        self.rank = None if info.shape is None else len(info.shape)
        self.static_dims = [] if info.shape is None else [(i, d) for i, d in enumerate(info.shape)
                                                           if isinstance(d, int) and d > 0]


class InferenceSession:
    """Loads an ONNX model and runs it on the CPU through pyengine's native plans.

    `path_or_bytes` is a file path, the serialized model, or an onnx.ModelProto.
    """

    def __new__(cls, path_or_bytes=None, sess_options=None, providers=None, *args, **kwargs):
        # CUDAExecutionProvider first and onnxruntime-gpu present: an onnxruntime-backed session.
        from . import gpu
        if cls is InferenceSession and gpu.wants_delegation(providers):
            cls = gpu.delegated_class()
        return super().__new__(cls)

    def __init__(self, path_or_bytes, sess_options: Optional[SessionOptions] = None,
                 providers: Optional[Sequence] = None, provider_options=None, strict: bool = False,
                 **kwargs):
        """`strict=True`: raise instead of warning when a requested GPU provider is unavailable."""
        self._options = sess_options or SessionOptions()
        self._memory_limit = memory_limit(getattr(self._options, "_config", None))
        self._providers = self._choose_providers(providers, strict)
        self._graph = self._build_graph(path_or_bytes, first=True)
        # Weights a kernel keeps packed are freed once a plan has packed them
        # (compile_plan's `release`), when they can be read again from the
        # model file should a new input shape need another plan.
        self._source = _FileSource.of(path_or_bytes)
        self._stale = False  # the graph lost weights to a plan: reload before the next compile
        self._inputs = [_InputSpec(n, self._declared.get(n, TensorInfo())) for n in self._input_names]
        self._pool = thread_pool(int(self._options.intra_op_num_threads or 0))
        self._plans: dict = {}
        self._lock = threading.Lock()
        self._profiler = (profiling.Profiler(getattr(self._options, "profile_file_prefix", ""))
                          if self._options.enable_profiling else None)
        if all(s.rank is not None and len(s.static_dims) == s.rank for s in self._inputs):
            self._plan_for(tuple(tuple(s.shape) for s in self._inputs))

    def _build_graph(self, source, first: bool = False):
        """The optimized graph of `source`. The first build also records the
        model's metadata and declared inputs and outputs."""
        external: dict = {}  # large external initializers, read straight into arrays
        model = load_model(source, external)
        graph = to_graph(model, external)
        del external
        if first:
            # The graph holds the weights now: the ModelProto (a second copy
            # of them) is dropped, only its metadata is kept.
            self._metadata = ModelMetadata(model)
        del model
        check_supported(graph)
        if first:
            self._declared = dict(graph.infos)
            self._input_names = list(graph.inputs)
            self._output_names = list(graph.outputs)
        optimized = passes.optimize(graph, int(self._options.graph_optimization_level))
        del graph  # constants replaced by the passes (folded BatchNorm weights...) are freed here
        _align_constants(optimized)
        return optimized

    def _release_constant(self, name: str) -> None:
        """A plan packed constant `name` and no longer reads it: drop the session's copy."""
        if self._graph.constants.pop(name, None) is not None:
            self._stale = True

    # ---- onnxruntime API ---------------------------------------------------
    def get_inputs(self) -> list:
        return [self._node_arg(n) for n in self._input_names]

    def get_outputs(self) -> list:
        return [self._node_arg(n) for n in self._output_names]

    def get_overridable_initializers(self) -> list:
        return []

    def get_providers(self) -> list:
        return list(self._providers)

    def get_provider_options(self) -> dict:
        return {p: {} for p in self._providers}

    def get_session_options(self) -> SessionOptions:
        return self._options

    def get_modelmeta(self) -> ModelMetadata:
        return self._metadata

    def end_profiling(self) -> str:
        """Stops profiling and writes the per-node timings of every run since
        the session was created (a Chrome trace JSON, as onnxruntime writes);
        returns its path, or "" when SessionOptions.enable_profiling was off."""
        with self._lock:
            prof, self._profiler = self._profiler, None
            if prof is None:
                return ""
            for compiled in self._plans.values():
                compiled.plan.set_profiling(False)
                prof.collect(compiled.plan)
        return prof.write()

    def get_profiling_start_time_ns(self) -> int:
        """Wall-clock time (ns since the epoch) at which profiling started; 0 when it is off."""
        return self._profiler.start_wall_ns if self._profiler is not None else 0

    def set_providers(self, providers=None, provider_options=None) -> None:
        self._providers = self._choose_providers(providers)

    def run(self, output_names, input_feed: dict, run_options: Optional[RunOptions] = None) -> list:
        arrays = self._check_inputs(input_feed)
        key = tuple(a.shape for a in arrays)
        try:
            compiled = self._plans.get(key) or self._plan_for(key)
            if self._profiler is None:
                outs = compiled.run(arrays)
            else:
                start = time.monotonic_ns()
                outs = compiled.run(arrays)
                self._profiler.run_event(start, time.monotonic_ns())
        except (InvalidModelError, native.KernelError) as e:
            # Say which of the caller's arrays is at fault, not only which node failed.
            raise type(e)(input_diagnosis.explain(str(e), self._graph, self._input_names,
                                                  [s.shape for s in self._inputs], key)) from None
        if not output_names:
            return outs
        return [outs[self._output_index(n)] for n in output_names]

    # ---- internals -----------------------------------------------------------
    @staticmethod
    def _choose_providers(providers, strict: bool = False) -> list:
        from . import gpu
        names = _provider_names(providers)
        unknown = [p for p in names if p not in get_all_providers()]
        if unknown:
            raise ValueError(f"unknown execution provider(s) {unknown}; available: {get_available_providers()}")
        gpu.fallback(names, strict)  # warns (or raises under strict) when a GPU was asked for
        return [CPU_PROVIDER]

    def _node_arg(self, name: str) -> NodeArg:
        info = self._declared.get(name, TensorInfo())
        shape = None if info.shape is None else [d if d is not None else None for d in info.shape]
        type_ = _dtypes.type_string(info.dtype) if info.dtype is not None else "tensor(undefined)"
        return NodeArg(name, shape, type_)

    def _output_index(self, name: str) -> int:
        try:
            return self._output_names.index(name)
        except ValueError:
            raise InputError(f"unknown output name '{name}'; the model's outputs are "
                             f"{self._output_names}") from None

    def _check_inputs(self, feed: dict) -> list:
        if not isinstance(feed, dict):
            raise TypeError(f"input_feed must be a dict of name -> array, got {type(feed).__name__}")
        if len(feed) != len(self._inputs) or any(s.name not in feed for s in self._inputs):
            expected = [s.name for s in self._inputs]
            unknown = [k for k in feed if k not in expected]
            missing = [n for n in expected if n not in feed]
            parts = []
            if unknown:
                parts.append(f"unknown input name(s) {unknown}")
            if missing:
                parts.append(f"missing input(s) {missing}")
            raise InputError(f"{' and '.join(parts)}; the model's inputs are {expected}")
        arrays = []
        for spec in self._inputs:
            value = feed[spec.name]
            arr = value if type(value) is np.ndarray else np.asarray(value)
            if arr.dtype != spec.dtype:
                raise InputTypeError(
                    f"input '{spec.name}': expected element type {_dtypes.type_string(spec.dtype)} "
                    f"({spec.dtype}), got {arr.dtype}")
            if spec.rank is not None:
                if arr.ndim != spec.rank:
                    raise InputError(f"input '{spec.name}': expected rank {spec.rank} "
                                     f"(shape {list(spec.shape)}), got shape {list(arr.shape)}")
                for i, d in spec.static_dims:
                    if arr.shape[i] != d:
                        raise InputError(f"input '{spec.name}': dimension {i} must be {d} "
                                         f"(shape {list(spec.shape)}), got shape {list(arr.shape)}")
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
            arrays.append(arr)
        return arrays

    def _plan_for(self, shapes: tuple):
        with self._lock:
            compiled = self._plans.get(shapes)
            if compiled is not None:
                return compiled
            if self._stale:  # an earlier plan freed packed weights: read them again
                self._graph = self._build_graph(self._source.reopen())
                self._stale = False
            infos = {s.name: TensorInfo(s.dtype, tuple(shape)) for s, shape in zip(self._inputs, shapes)}
            spec = specialize(self._graph, infos)
            release = self._release_constant if self._source is not None else None
            compiled = compile_plan(spec, self._input_names, self._output_names, self._pool,
                                    self._memory_limit, release=release)
            del spec
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                evicted = self._plans.pop(next(iter(self._plans)))
                if self._profiler is not None:
                    self._profiler.collect(evicted.plan)
            if self._profiler is not None:
                compiled.plan.set_profiling(True)
            self._plans[shapes] = compiled
            return compiled
