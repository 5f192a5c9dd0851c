"""Reading ONNX models: files, bytes or ModelProto objects, with external
data confined to the model's own folder, then checked and shape-inferred."""
from __future__ import annotations

import os
from typing import Union

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from ..errors import InvalidModelError

ModelSource = Union[str, bytes, os.PathLike, onnx.ModelProto]


def load_model(source: ModelSource) -> onnx.ModelProto:
    """Returns the checked, shape-inferred ModelProto of `source`."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        base_dir = None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        model = _parse(bytes(source), "the given bytes")
        base_dir = None
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"model file not found: {path}")
        if os.path.isdir(path):
            raise InvalidModelError(f"{path} is a directory, not an ONNX model file")
        with open(path, "rb") as f:
            model = _parse(f.read(), path)
        base_dir = os.path.dirname(os.path.abspath(path))
    else:
        raise TypeError(f"expected a path, bytes or onnx.ModelProto, got {type(source).__name__}")

    _load_external_data(model, base_dir)
    if model.functions:
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as e:  # noqa: BLE001 - report any inliner failure as a bad model
            raise InvalidModelError(f"cannot inline the model's local functions: {e}") from None
    skeleton = _skeleton(model)
    _check(skeleton)
    try:
        inferred = onnx.shape_inference.infer_shapes(skeleton, strict_mode=False, data_prop=True)
        _copy_types(inferred.graph, model.graph)
    except Exception:  # noqa: BLE001 - inference is a help, not a requirement
        pass
    return model


# Initializers above this size are hidden from the checker and from shape
# inference: both serialize the whole model, and their cost would otherwise
# grow with the weights (seconds for a large CNN). Small ones stay, since
# shape inference propagates their values (shape computations).
_SKELETON_MAX_BYTES = 1024


def _skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model whose large initializers are graph inputs of the
    same type and shape (their data is checked when it is decoded)."""
    # ByteSize() does not copy the data out (reading t.raw_data would).
    big = [t for t in model.graph.initializer if t.ByteSize() > _SKELETON_MAX_BYTES]
    if not big:
        return model
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    keep = [t for t in skeleton.graph.initializer if t.ByteSize() <= _SKELETON_MAX_BYTES]
    declared = {vi.name for vi in skeleton.graph.input}
    del skeleton.graph.initializer[:]
    skeleton.graph.initializer.extend(keep)
    for t in big:
        if t.name not in declared:
            skeleton.graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return skeleton


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


def _parse(data: bytes, what: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise InvalidModelError(f"{what} is not a valid ONNX model (protobuf parse failed: {e})") from None
    if not model.HasField("graph") or model.ir_version == 0:
        raise InvalidModelError(f"{what} is not an ONNX model (no graph or IR version)")
    return model


def _load_external_data(model: onnx.ModelProto, base_dir) -> None:
    tensors = [t for t in external_data_helper._get_all_tensors(model)
               if t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL]
    if not tensors:
        return
    if base_dir is None:
        raise InvalidModelError(
            "the model keeps tensors in external files; load it from its path so they can be found")
    real_base = os.path.realpath(base_dir)
    for tensor in tensors:
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        if not location or os.path.isabs(location):
            raise InvalidModelError(f"tensor '{tensor.name}': external data location {location!r} is not a relative path")
        path = os.path.realpath(os.path.join(real_base, location))
        if os.path.commonpath([path, real_base]) != real_base:
            raise InvalidModelError(
                f"tensor '{tensor.name}': external data location {location!r} points outside the model's folder")
        if not os.path.isfile(path):
            raise InvalidModelError(f"tensor '{tensor.name}': external data file {location!r} not found")
        size = os.path.getsize(path)
        try:
            offset = int(info.get("offset", 0) or 0)
            length = int(info["length"]) if info.get("length") else size - offset
        except ValueError:
            raise InvalidModelError(f"tensor '{tensor.name}': bad external data offset/length") from None
        if offset < 0 or length < 0 or offset + length > size:
            raise InvalidModelError(
                f"tensor '{tensor.name}': external data range [{offset}, {offset + length}) exceeds "
                f"the {size}-byte file {location!r}")
        with open(path, "rb") as f:
            f.seek(offset)
            tensor.raw_data = f.read(length)
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]


def _check(model: onnx.ModelProto) -> None:
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "validation failed"
        raise InvalidModelError(f"invalid ONNX model: {first}") from None
    except Exception as e:  # noqa: BLE001 - the checker raises assorted errors on garbage
        raise InvalidModelError(f"invalid ONNX model: {e}") from None
