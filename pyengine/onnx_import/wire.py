"""Reading a model's large weights straight from the file into NumPy arrays.

Parsing a serialized ModelProto with protobuf holds the file's bytes and the
decoded message at once, and decoding the initializers makes a third copy
of the weights: a model's load used to peak near three times its size. This
module walks the protobuf wire format instead (varint tags and lengths only,
https://protobuf.dev/programming-guides/encoding/), copies everything but the
payloads of the main graph's large `raw_data` initializers into a small
"skeleton" message, and reads each of those payloads once, into its final
array. The skeleton's tensors keep their name, type and dims but no data, as
external initializers do after the loader has read them.

Anything unusual (groups, a tensor with two raw_data fields, external or
segmented tensors, a payload whose size does not match its dims) is left in
the skeleton as it was, for the normal decoder and its checks.
"""
from __future__ import annotations

import mmap
import os
from typing import Optional

import numpy as np

# Field numbers (onnx.proto).
_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_TENSOR_DIMS, _TENSOR_TYPE, _TENSOR_SEGMENT, _TENSOR_NAME = 1, 2, 3, 8
_TENSOR_RAW, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 9, 13, 14


class _Unusual(Exception):
    """The wire data is not what the splitter handles: use the normal parse."""


def _varint(buf, pos: int, end: int):
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Unusual
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf, pos: int, end: int):
    """(field number, wire type, start of field, start of value, end of field) of each field."""
    while pos < end:
        start = pos
        tag, pos = _varint(buf, pos, end)
        number, wt = tag >> 3, tag & 7
        if wt == 0:
            _, pos = _varint(buf, pos, end)
            yield number, wt, start, pos, pos
            continue
        if wt == 1:
            vstart, pos = pos, pos + 8
        elif wt == 5:
            vstart, pos = pos, pos + 4
        elif wt == 2:
            n, vstart = _varint(buf, pos, end)
            pos = vstart + n
        else:  # groups (deprecated) and invalid wire types
            raise _Unusual
        if pos > end:
            raise _Unusual
        yield number, wt, start, vstart, pos


def _tensor_split(buf, start: int, end: int, min_bytes: int, direct: dict):
    """(tensor bytes without raw_data, (name, dtype, dims, payload offset, length))
    when this TensorProto's data should be read into an array, else None."""
    raw = []
    name, dtype, dims, keep = None, None, [], []
    for number, wt, fstart, vstart, fend in _fields(buf, start, end):
        if number in (_TENSOR_SEGMENT, _TENSOR_EXTERNAL, _TENSOR_LOCATION):
            return None
        if number == _TENSOR_RAW and wt == 2:
            raw.append((vstart, fend - vstart))
            continue
        if number == _TENSOR_NAME and wt == 2:
            name = bytes(buf[vstart:fend]).decode("utf-8", errors="strict")
        elif number == _TENSOR_TYPE and wt == 0:
            dtype, _ = _varint(buf, vstart if vstart != fend else fstart + 1, fend)
        elif number == _TENSOR_DIMS:
            if wt == 0:
                dims.append(_varint(buf, fstart + 1, fend)[0])
            elif wt == 2:  # packed
                p = vstart
                while p < fend:
                    d, p = _varint(buf, p, fend)
                    dims.append(d)
        keep.append((fstart, fend))
    if len(raw) != 1 or not name or dtype not in direct:
        return None
    dims = [d - (1 << 64) if d >= 1 << 63 else d for d in dims]  # int64 on the wire
    if any(d < 0 for d in dims):
        return None
    np_dtype = direct[dtype]
    offset, length = raw[0]
    if length <= min_bytes or length != np_dtype.itemsize * int(np.prod(dims, dtype=object)):
        return None
    return b"".join(bytes(buf[a:b]) for a, b in keep), (name, np_dtype, tuple(dims), offset, length)


def _split(buf, min_bytes: int, direct: dict):
    """(skeleton bytes, [(name, dtype, dims, offset, length)]) of the main graph's large initializers."""
    end = len(buf)
    out, found = [], []
    for number, wt, fstart, vstart, fend in _fields(buf, 0, end):
        if number != _MODEL_GRAPH or wt != 2:
            out.append(bytes(buf[fstart:fend]))
            continue
        graph = []
        for gnum, gwt, gstart, gvstart, gend in _fields(buf, vstart, fend):
            split = _tensor_split(buf, gvstart, gend, min_bytes, direct) \
                if gnum == _GRAPH_INITIALIZER and gwt == 2 else None
            if split is None:
                graph.append(bytes(buf[gstart:gend]))
                continue
            tensor, entry = split
            graph.append(bytes(buf[gstart:gvstart - len(_encode_varint(gend - gvstart))]))  # the tag
            graph.append(_encode_varint(len(tensor)) + tensor)
            found.append(entry)
        body = b"".join(graph)
        out.append(bytes(buf[fstart:vstart - len(_encode_varint(fend - vstart))]))  # the graph's tag
        out.append(_encode_varint(len(body)) + body)
    names = [e[0] for e in found]
    if len(set(names)) != len(names):
        raise _Unusual  # duplicate initializer names: the checker reports them
    return b"".join(out), found


def split_bytes(data, min_bytes: int, direct: dict, arrays: dict) -> Optional[bytes]:
    """split_file for a model given as bytes: the payloads are copied out
    (the caller's buffer is not kept alive by the arrays)."""
    view = memoryview(data).cast("B")
    try:
        skeleton, found = _split(view, min_bytes, direct)
    except (_Unusual, UnicodeDecodeError):
        return None
    for name, dtype, dims, offset, length in found:
        arr = np.frombuffer(view, dtype=np.uint8, count=length, offset=offset).copy().view(dtype).reshape(dims)
        arr.flags.writeable = False
        arrays[name] = arr
    return skeleton


def split_file(path: str, min_bytes: int, direct: dict, arrays: dict) -> Optional[bytes]:
    """The skeleton bytes of the model file at `path`, its large raw_data
    initializers read into `arrays` (name -> read-only array); None when the
    file is not one the splitter handles (parse it whole instead). `direct`:
    ONNX element type -> NumPy dtype of the types whose bytes are the
    array's bytes."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                skeleton, found = _split(view, min_bytes, direct)
            except (_Unusual, UnicodeDecodeError):
                return None
            finally:
                view.release()
        # The payloads are read with pread, not through the mapping: only the
        # arrays' pages become this process's memory.
        got = {}
        for name, dtype, dims, offset, length in found:
            buf = np.empty(length, dtype=np.uint8)
            if os.preadv(f.fileno(), [memoryview(buf)], offset) != length:
                return None  # the file shrank meanwhile
            arr = buf.view(dtype).reshape(dims)
            arr.flags.writeable = False
            got[name] = arr
    arrays.update(got)
    return skeleton
