"""Reading ONNX models: files, bytes or ModelProto objects, with external
data confined to the model's own folder, then checked and shape-inferred."""
from __future__ import annotations

import os
import stat
import sys
from typing import Optional, Union

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from ..errors import InvalidModelError
from . import wire
from ..runtime.limits import check_tensor, memory_limit

ModelSource = Union[str, bytes, os.PathLike, onnx.ModelProto]


def load_model(source: ModelSource, arrays: Optional[dict] = None) -> onnx.ModelProto:
    """Returns the checked, shape-inferred ModelProto of `source`.

    `arrays`: a dict that receives the large external initializers of the
    main graph as NumPy arrays, read straight from their files; their
    TensorProtos then keep no data (pass the dict on to to_graph)."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        base_dir = None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        skeleton = wire.split_bytes(source, _SKELETON_MAX_BYTES, _DIRECT_NP, arrays) if arrays is not None else None
        model = _parse(skeleton if skeleton is not None else bytes(source), "the given bytes")
        base_dir = None
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"model file not found: {path}")
        if os.path.isdir(path):
            raise InvalidModelError(f"{path} is a directory, not an ONNX model file")
        # Large weights go straight from the file into their arrays (see
        # onnx_import/wire.py); a file the splitter declines is parsed whole.
        skeleton = None
        if arrays is not None and os.path.isfile(path):
            skeleton = wire.split_file(path, _SKELETON_MAX_BYTES, _DIRECT_NP, arrays)
        if skeleton is None:
            with open(path, "rb") as f:
                skeleton = f.read()
        model = _parse(skeleton, path)
        del skeleton
        base_dir = os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(f"expected a path, bytes or onnx.ModelProto, got {type(source).__name__}")

    _load_external_data(model, base_dir, arrays)
    if model.functions:
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:  # noqa: BLE001 - report any inliner failure as a bad model
            raise InvalidModelError(f"cannot inline the model's local functions: {e}") from None
    for graph in _all_graphs(model.graph):
        for tensor in graph.initializer:
            if not (arrays and tensor.name in arrays):  # data already read into `arrays`, size checked
                _check_stored_size(tensor)
    skeleton = _skeleton(model)
    _check(skeleton)
    inferred = _infer_shapes(skeleton)
    if inferred is not skeleton:
        _copy_types(inferred.graph, model.graph)
    return model


# Initializers above this size are hidden from the checker and from shape
# inference: both serialize the whole model, and their cost would otherwise
# grow with the weights (seconds for a large CNN). Small ones stay, since
# shape inference propagates their values (shape computations).
_SKELETON_MAX_BYTES = 1024


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model whose large initializers are graph inputs of the
    same type and shape (their data is checked when it is decoded). Built
    field by field so the large initializers are never copied."""
    big = [t for t in model.graph.initializer if _stored_nbytes(t) > _SKELETON_MAX_BYTES]
    if not big:
        return model
    big_names = {t.name for t in big}
    skeleton = onnx.ModelProto()
    for field, value in model.ListFields():
        if field.name != "graph":
            _copy_field(skeleton, field, value)
    for field, value in model.graph.ListFields():
        if field.name != "initializer":
            _copy_field(skeleton.graph, field, value)
    skeleton.graph.initializer.extend(t for t in model.graph.initializer if t.name not in big_names)
    declared = {vi.name for vi in skeleton.graph.input}
    for t in big:
        if t.name not in declared:
            skeleton.graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return skeleton


# Element types of one byte or more (strings and sub-byte types excluded),
# whose stored size follows from dims and type.
_FIXED_SIZE_TYPES = frozenset(range(1, 21)) - {onnx.TensorProto.STRING}
_TYPED_FIELDS = ("float_data", "int32_data", "int64_data", "double_data", "uint64_data")


def _check_stored_size(tensor: onnx.TensorProto) -> None:
    """Rejects an initializer that stores less data than its dims declare.
    Checked before onnx's shape inference sees the model: it propagates the
    declared shape (a mutated [2**40] tensor holding 2 values made it loop
    for minutes)."""
    if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.data_type not in _FIXED_SIZE_TYPES:
        return  # external data is checked when read; other types when decoded
    count = 1
    for d in tensor.dims:
        count *= int(d)
    if tensor.raw_data:
        stored, wanted, unit = len(tensor.raw_data), _expected_nbytes(tensor), "bytes"
    else:
        per = 2 if tensor.data_type in (onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128) else 1
        stored, wanted, unit = sum(len(getattr(tensor, f)) for f in _TYPED_FIELDS), per * count, "values"
    if wanted is not None and stored < wanted:
        raise InvalidModelError(f"initializer '{tensor.name}': dims {list(tensor.dims)} call for {wanted} "
                                f"{unit} of data but {stored} are stored")


def _stored_nbytes(tensor: onnx.TensorProto) -> int:
    """The tensor's data size from its dims and type; ByteSize() only for
    types without a fixed size (it serializes the tensor, a copy of the data)."""
    n = _expected_nbytes(tensor)
    return tensor.ByteSize() if n is None else n


def _copy_field(dst, field, value) -> None:
    repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
    if repeated:
        getattr(dst, field.name).extend(value)
    elif field.type == field.TYPE_MESSAGE:
        getattr(dst, field.name).CopyFrom(value)
    else:
        setattr(dst, field.name, value)


def _copy_types(src: onnx.GraphProto, dst: onnx.GraphProto) -> None:
    """Inferred value_info, and inferred output types where none were declared."""
    del dst.value_info[:]
    dst.value_info.extend(src.value_info)
    inferred_outputs = {vi.name: vi for vi in src.output}
    for vi in dst.output:
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.elem_type:
            if vi.name in inferred_outputs:
                vi.type.CopyFrom(inferred_outputs[vi.name].type)
        elif not vi.type.tensor_type.HasField("shape") and vi.name in inferred_outputs:
            vi.type.CopyFrom(inferred_outputs[vi.name].type)


# onnx's own shape inference (C++) aborts the whole process when a Slice
# node sees a negative dim (produced upstream by e.g. a Resize with a
# negative scale) or a step of 2**31 or more (a std::clamp assertion, found
# by the fuzzer with onnx 1.23). Inference is only a help here, so it runs
# first with every Slice hidden (renamed to an op onnx does not know, which
# non-strict inference skips), then again with the Slices whose data input
# came out with a sane shape and whose steps are sane. pyengine infers every
# shape itself when the plan is specialized.
_HIDDEN_OP = "PyengineHiddenFromOnnxInference"


def _infer_shapes(model):
    slices = [(g, n) for g in _all_graphs(model.graph) for n in g.node
              if n.op_type == "Slice" and n.domain in ("", "ai.onnx")]
    if not slices:
        return _onnx_infer(model)
    for _, n in slices:
        n.op_type = _HIDDEN_OP
    first = _onnx_infer(model)
    shapes = {}
    for g in _all_graphs(first.graph):
        for v in list(g.input) + list(g.value_info) + list(g.output):
            t = v.type.tensor_type
            if v.type.HasField("tensor_type") and t.HasField("shape"):
                shapes[v.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        for t in g.initializer:
            shapes[t.name] = list(t.dims)
    for g, n in slices:
        dims = shapes.get(n.input[0]) if n.input else None
        if dims is not None and all(d is None or d >= 0 for d in dims) and _sane_steps(g, n):
            n.op_type = "Slice"
    inferred = _onnx_infer(model)
    for m in (model, inferred):
        for g in _all_graphs(m.graph):
            for n in g.node:
                if n.op_type == _HIDDEN_OP:
                    n.op_type = "Slice"
    return inferred


def _onnx_infer(model):
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - inference is a help, not a requirement
        return model


def _all_graphs(graph):
    yield graph
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_graphs(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _all_graphs(g)


def _sane_steps(graph, node) -> bool:
    if len(node.input) < 5 or not node.input[4]:
        return True
    for t in graph.initializer:
        if t.name == node.input[4]:
            try:
                steps = onnx.numpy_helper.to_array(t)
            except Exception:  # noqa: BLE001 - undecodable: pyengine reports it later
                return False
            return bool(((steps != 0) & (abs(steps.astype(float)) < 2**31)).all())
    return True  # computed steps: onnx cannot read their values either


def _parse(data: bytes, what: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise InvalidModelError(f"{what} is not a valid ONNX model (protobuf parse failed: {e})") from None
    if not model.HasField("graph") or model.ir_version == 0:
        raise InvalidModelError(f"{what} is not an ONNX model (no graph or IR version)")
    return model


def _external_file(tensor, location: str, real_base: str) -> str:
    """The real path of `location`, which must be a relative path to a file
    inside the model's folder (symbolic links resolved before the check)."""
    if not location or "\x00" in location or os.path.isabs(location):
        raise InvalidModelError(f"tensor '{tensor.name}': external data location {location!r} is not a relative path")
    path = os.path.realpath(os.path.join(real_base, location))
    if os.path.commonpath([path, real_base]) != real_base:
        raise InvalidModelError(
            f"tensor '{tensor.name}': external data location {location!r} points outside the model's folder")
    return path


def _expected_nbytes(tensor):
    """Bytes the tensor's dims and element type call for (None if the type has no fixed size)."""
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except Exception:  # noqa: BLE001 - unknown or string types: the converter reports them
        return None
    if tensor.data_type in (onnx.TensorProto.STRING, 0):
        return None
    n = itemsize
    for d in tensor.dims:
        n *= int(d)
    return n


def _read_range(tensor, path: str, location: str, info: dict, into=None):
    """The tensor's bytes, or, with `into` (a uint8 array of the right size),
    read straight into it (no intermediate bytes object)."""
    # Opened without following a final symlink and without blocking (a FIFO
    # or device swapped in after the path check must not hang or stream
    # forever), then checked on the open descriptor itself.
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise InvalidModelError(f"tensor '{tensor.name}': cannot open external data file {location!r} "
                                f"({e.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InvalidModelError(f"tensor '{tensor.name}': external data location {location!r} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        size = st.st_size
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if info.get("length") else size - offset
        except ValueError:
            raise InvalidModelError(f"tensor '{tensor.name}': bad external data offset/length") from None
        if offset < 0 or length < 0 or offset + length > size:
            raise InvalidModelError(
                f"tensor '{tensor.name}': external data range [{offset}, {offset + length}) exceeds "
                f"the {size}-byte file {location!r}")
        expected = _expected_nbytes(tensor)
        if expected is None:
            raise InvalidModelError(f"tensor '{tensor.name}': element type {tensor.data_type} cannot be read "
                                    "from external data (no fixed element size)")
        if length != expected:
            raise InvalidModelError(
                f"tensor '{tensor.name}': external data holds {length} bytes, its dims {list(tensor.dims)} and "
                f"element type need {expected}")
        f.seek(offset)
        if into is not None:
            got = f.readinto(memoryview(into)) if length else 0
            data = into
        else:
            data = f.read(length)
            got = len(data)
    if got != length:
        raise InvalidModelError(f"tensor '{tensor.name}': external data file {location!r} changed while reading")
    return data


def _load_external_data(model: onnx.ModelProto, base_dir, arrays=None) -> None:
    tensors = [t for t in external_data_helper._get_all_tensors(model) if _is_external(t)]
    if not tensors:
        return
    if base_dir is None:
        raise InvalidModelError(
            "the model keeps tensors in external files; load it from its path so they can be found")
    real_base = os.path.realpath(base_dir)
    # Several tensors may name the same bytes: the total read is what must fit.
    total, limit = 0, memory_limit()

    def read(tensor, direct: bool) -> None:
        nonlocal total
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        path = _external_file(tensor, location, real_base)
        expected = _expected_nbytes(tensor)
        total += expected or 0
        check_tensor(tensor.name, f"external data in {location!r}; all external tensors so far", total, limit)
        dtype = _direct_dtype(tensor) if direct else None
        if dtype is not None and expected > _SKELETON_MAX_BYTES:
            buf = _read_range(tensor, path, location, info, into=np.empty(expected, dtype=np.uint8))
            arr = buf.view(dtype).reshape(tuple(tensor.dims))
            arr.flags.writeable = False
            arrays[tensor.name] = arr  # the TensorProto keeps no data
        else:
            tensor.raw_data = _read_range(tensor, path, location, info)
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]

    # Large initializers of the main graph go straight into NumPy arrays when
    # the caller takes them (one copy of the weights, not two or three); the
    # rest (small ones, attribute tensors) into raw_data.
    for tensor in model.graph.initializer:
        if _is_external(tensor):
            read(tensor, arrays is not None)
    for tensor in tensors:
        if _is_external(tensor):  # not an initializer read above
            read(tensor, False)


def _is_external(t) -> bool:
    return t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL


# Element types whose external bytes are the NumPy array's bytes as they are
# (little-endian machines); others (4-bit, float8, bfloat16...) go through onnx.
_DIRECT_TYPES = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
                 onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.INT8: np.int8,
                 onnx.TensorProto.INT16: np.int16, onnx.TensorProto.INT32: np.int32,
                 onnx.TensorProto.INT64: np.int64, onnx.TensorProto.UINT8: np.uint8,
                 onnx.TensorProto.UINT16: np.uint16, onnx.TensorProto.UINT32: np.uint32,
                 onnx.TensorProto.UINT64: np.uint64, onnx.TensorProto.BOOL: np.bool_}


# The same types by ONNX element type, as NumPy dtypes (onnx_import/wire.py).
_DIRECT_NP = {k: np.dtype(v) for k, v in _DIRECT_TYPES.items()} if sys.byteorder == "little" else {}


def _direct_dtype(tensor):
    if sys.byteorder != "little" or tensor.data_type not in _DIRECT_TYPES:
        return None
    return np.dtype(_DIRECT_TYPES[tensor.data_type])


def _check(model: onnx.ModelProto) -> None:
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "validation failed"
        raise InvalidModelError(f"invalid ONNX model: {first}") from None
    except Exception as e:  # noqa: BLE001 - the checker raises assorted errors on garbage
        raise InvalidModelError(f"invalid ONNX model: {e}") from None
