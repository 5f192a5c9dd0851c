"""ModelProto -> Graph IR: attributes decoded to Python values, initializers
and Constant nodes to NumPy constants, declared and inferred types kept."""
from __future__ import annotations

from typing import Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .. import _dtypes
from ..errors import InvalidModelError, UnsupportedOperatorError
from ..graph.ir import Graph, Node, TensorInfo, aligned
from .loader import _stored_nbytes


def default_opset(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return int(imp.version)
    return 1


def value_info(vi: onnx.ValueInfoProto) -> TensorInfo:
    t = vi.type
    if not t.HasField("tensor_type"):
        return TensorInfo()
    tt = t.tensor_type
    try:
        dtype = _dtypes.to_numpy(tt.elem_type) if tt.elem_type else None
    except TypeError:
        dtype = None
    shape = None
    if tt.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim)
    return TensorInfo(dtype, shape)


def tensor_to_array(t: onnx.TensorProto, what: str) -> np.ndarray:
    if t.data_type == onnx.TensorProto.STRING:
        raise UnsupportedOperatorError(f"{what}: string tensors are not supported")
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001
        raise InvalidModelError(f"{what}: cannot decode tensor data ({e})") from None
    try:
        _dtypes.to_onnx(arr.dtype)
    except TypeError:
        raise UnsupportedOperatorError(f"{what}: element type {arr.dtype} is not supported") from None
    # Aligned, so the plans read large weights in place (one copy in memory).
    return aligned(np.asarray(arr, order="C"))  # (np.ascontiguousarray would turn a 0-d tensor into 1-d)


def _initializer(t: onnx.TensorProto, arrays: dict) -> np.ndarray:
    arr = arrays.get(t.name)
    if arr is None:
        return tensor_to_array(t, f"initializer '{t.name}'")
    try:
        _dtypes.to_onnx(arr.dtype)
    except TypeError:
        raise UnsupportedOperatorError(f"initializer '{t.name}': element type {arr.dtype} is not supported") from None
    return aligned(arr)


def attribute_value(attr: onnx.AttributeProto, node_name: str):
    if attr.type == onnx.AttributeProto.TENSOR:
        return tensor_to_array(attr.t, f"attribute '{attr.name}' of node '{node_name}'")
    if attr.type == onnx.AttributeProto.TENSORS:
        return [tensor_to_array(t, f"attribute '{attr.name}' of node '{node_name}'") for t in attr.tensors]
    value = helper.get_attribute_value(attr)
    if attr.type == onnx.AttributeProto.STRING:
        return value.decode("utf-8", "replace")
    if attr.type == onnx.AttributeProto.STRINGS:
        return [v.decode("utf-8", "replace") for v in value]
    if attr.type in (onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS):
        return list(value)
    return value


def _constant_node_value(node: onnx.NodeProto, name: str) -> np.ndarray:
    for attr in node.attribute:
        v = attribute_value(attr, name)
        if attr.name == "value":
            return v
        if attr.name == "value_float":
            return np.array(v, dtype=np.float32)
        if attr.name == "value_floats":
            return np.array(v, dtype=np.float32)
        if attr.name == "value_int":
            return np.array(v, dtype=np.int64)
        if attr.name == "value_ints":
            return np.array(v, dtype=np.int64)
        if attr.name == "sparse_value":
            raise UnsupportedOperatorError(f"Constant node '{name}': sparse values are not supported")
        if attr.name in ("value_string", "value_strings"):
            raise UnsupportedOperatorError(f"Constant node '{name}': string constants are not supported")
    raise InvalidModelError(f"Constant node '{name}' has no value")


def to_graph(model: onnx.ModelProto, arrays: Optional[dict] = None) -> Graph:
    """`arrays`: initializers load_model already read into NumPy arrays (by name)."""
    g = model.graph
    arrays = arrays or {}
    if g.sparse_initializer:
        raise UnsupportedOperatorError("sparse initializers are not supported")
    # Largest first: each decode briefly holds the tensor's bytes twice, which
    # then happens while few other arrays exist (a lower peak of memory).
    order = sorted(range(len(g.initializer)), key=lambda i: -_stored_nbytes(g.initializer[i]))
    decoded = {i: _initializer(g.initializer[i], arrays) for i in order}
    constants = {g.initializer[i].name: decoded.pop(i) for i in range(len(g.initializer))}
    infos = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        infos[vi.name] = value_info(vi)
    for name, arr in constants.items():
        # type and shape only: the value lives in `constants` (an info holding
        # it would keep a weight alive after the passes replace or free it)
        infos[name] = TensorInfo(arr.dtype, tuple(arr.shape))
    inputs = [vi.name for vi in g.input if vi.name not in constants]
    for vi in list(g.input) + list(g.output):
        elem = vi.type.tensor_type.elem_type if vi.type.HasField("tensor_type") else 0
        if elem and infos[vi.name].dtype is None:
            kind = onnx.TensorProto.DataType.Name(elem) if elem in onnx.TensorProto.DataType.values() else elem
            raise UnsupportedOperatorError(f"graph input/output '{vi.name}' has element type {kind}, "
                                           "which pyengine does not support")
    outputs = [vi.name for vi in g.output]

    opsets = {("" if imp.domain == "ai.onnx" else imp.domain): int(imp.version) for imp in model.opset_import}
    nodes = []
    used_names = set()
    for i, n in enumerate(g.node):
        name = n.name or f"{n.op_type}_{i}"
        if name in used_names:
            name = f"{name}_{i}"
        used_names.add(name)
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.output) == 1:
            constants[n.output[0]] = _constant_node_value(n, name)
            infos[n.output[0]] = TensorInfo.of(constants[n.output[0]])
            continue
        attrs = {}
        for a in n.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                attrs[a.name] = a  # kept raw; ops with subgraphs are not supported yet
            else:
                attrs[a.name] = attribute_value(a, name)
        domain = "" if n.domain == "ai.onnx" else n.domain
        nodes.append(Node(n.op_type, list(n.input), list(n.output), attrs, name, domain,
                          opsets.get(domain, 1)))

    return Graph(nodes, inputs, outputs, constants, infos, default_opset(model), g.name or "graph")
