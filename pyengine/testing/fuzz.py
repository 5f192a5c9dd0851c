"""Model fuzzing: mutate valid ONNX models, load and run each mutant, and
check that every case ends either in results or in an ordinary Python
exception - never a crash, a hang or an out-of-memory kill.

Cases run in a child process (`run_cases`), so a crash is observed rather
than suffered; the parent reports the seed of the case that killed it.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

STRUCTURAL = ("attr_type", "drop_input", "bad_dim", "cycle", "duplicate_output", "short_initializer",
              "unknown_dtype", "rename_input", "wrong_op", "extra_input", "huge_constant_of_shape",
              "negative_attr", "drop_initializer",
              # added for issue 7
              "hostile_attr", "add_attr", "hostile_const_input", "reshape_initializer", "overflow_dims",
              "duplicate_node_name", "duplicate_initializer", "duplicate_graph_input", "swap_inputs",
              "input_elem_type", "opset", "huge_expand", "huge_range", "self_loop", "drop_output")

# Hostile values for integer attributes (kernel_shape, strides, pads, axes,
# perm, group...): zero, negative, huge, and products that overflow int64.
HOSTILE_INTS = (0, -1, -2, 2**31, 2**31 - 1, 2**40, 2**62, -(2**62), 2**63 - 1, -(2**63))
HOSTILE_FLOATS = (float("nan"), float("inf"), float("-inf"), -1.0, 0.0, 1e38, -1e-45)
HOSTILE_STRINGS = ("", "SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "junk", "reflect", "edge", "wrap",
                   "linear", "cubic", "nearest", "tf_crop_and_resize", "align_corners", "DCR", "CRD", "\x00\xff")
# Attribute names the seed ops understand, added with random values.
EXTRA_ATTRS = ("group", "dilations", "strides", "pads", "kernel_shape", "auto_pad", "ceil_mode", "axis", "axes",
               "perm", "keepdims", "epsilon", "output_padding", "output_shape", "count_include_pad", "mode",
               "storage_order", "split", "num_outputs", "blocksize", "exclusive", "reverse", "upper",
               "coordinate_transformation_mode", "nearest_mode", "transA", "transB", "alpha", "beta",
               "stash_type", "num_groups", "size", "p", "batch_dims", "reduction", "allowzero")
OPSETS = (1, 6, 7, 9, 10, 11, 12, 13, 17, 18, 19, 21, 23, 99)


def _model(nodes, inputs, outputs, inits, opset=17):
    g = helper.make_graph(nodes, "fuzz", inputs, outputs,
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10 if opset >= 21 else 8
    return m


def seed_models() -> list:
    """Small valid models covering the op families (ops not merged yet just
    end in UnsupportedOperatorError until they are)."""
    rng = np.random.default_rng(0)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    vi = helper.make_tensor_value_info
    F, I = TensorProto.FLOAT, TensorProto.INT64
    N = helper.make_node
    model = _model
    models = []
    models.append(model([N("Gemm", ["x", "w", "b"], ["h"], transB=1),
                         N("Relu", ["h"], ["r"]), N("MatMul", ["r", "w2"], ["y"])],
                        [vi("x", F, ["N", 6])], [vi("y", F, ["N", 3])],
                        {"w": f(5, 6), "b": f(5), "w2": f(5, 3)}))
    models.append(model([N("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                         N("Relu", ["c"], ["r"]),
                         N("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                         N("Flatten", ["p"], ["fl"]),
                         N("Gemm", ["fl", "w2"], ["y"])],
                        [vi("x", F, [1, 2, 6, 6])], [vi("y", F, [1, 4])],
                        {"w": f(3, 2, 3, 3), "b": f(3), "w2": f(27, 4)}))
    models.append(model([N("Shape", ["x"], ["s"]),
                         N("Reshape", ["x", "shp"], ["r"]),
                         N("Transpose", ["r"], ["t"], perm=[1, 0]),
                         N("Concat", ["t", "t"], ["c"], axis=0),
                         N("Softmax", ["c"], ["y"], axis=-1),
                         N("Gather", ["s", "idx"], ["g"], axis=0)],
                        [vi("x", F, [2, 3, 4])],
                        [vi("y", F, [24, 2]), vi("g", I, [])],
                        {"shp": i64(2, 12), "idx": np.array(1, np.int64)}))
    models.append(model([N("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"]),
                         N("Add", ["bn", "x"], ["a"]),
                         N("ReduceMean", ["a"], ["y"], axes=[2, 3], keepdims=1)],
                        [vi("x", F, [2, 3, 4, 5])], [vi("y", F, [2, 3, 1, 1])],
                        {"s": f(3), "b": f(3), "m": f(3), "v": np.abs(f(3)) + 0.5}))
    # Conv family: grouped + dilated + strided conv, ConvTranspose, pools.
    models.append(model([N("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], strides=[2, 1], dilations=[1, 2],
                           pads=[1, 2, 1, 2], group=2),
                         N("ConvTranspose", ["c", "wt", "bt"], ["ct"], kernel_shape=[2, 2], strides=[2, 2],
                           output_padding=[1, 0]),
                         N("AveragePool", ["ct"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                           count_include_pad=1, ceil_mode=1),
                         N("GlobalAveragePool", ["ap"], ["y"])],
                        [vi("x", F, ["N", 4, 7, 9])], [vi("y", F, ["N", 3, 1, 1])],
                        {"w": f(4, 2, 3, 3), "wt": f(4, 3, 2, 2), "bt": f(3)}))
    # 1-D conv, depthwise conv, LpPool, MaxPool with indices, GlobalMaxPool.
    models.append(model([N("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3], group=3, auto_pad="SAME_UPPER"),
                         N("MaxPool", ["c"], ["mp", "idx"], kernel_shape=[2], strides=[1], dilations=[2]),
                         N("LpPool", ["mp"], ["lp"], kernel_shape=[2], p=3),
                         N("GlobalMaxPool", ["lp"], ["y"])],
                        [vi("x", F, [2, 3, "L"])], [vi("y", F, [2, 3, 1]), vi("idx", I, [2, 3, "M"])],
                        {"w": f(3, 1, 3), "b": f(3)}))
    # Normalizations.
    models.append(model([N("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-5),
                         N("InstanceNormalization", ["ln", "s", "b2"], ["inn"]),
                         N("LRN", ["inn"], ["lrn"], size=3),
                         N("GroupNormalization", ["lrn", "s", "b2"], ["y"], num_groups=3)],
                        [vi("x", F, [2, 3, 4, 5])], [vi("y", F, [2, 3, 4, 5])],
                        {"g": f(5), "b": f(5), "s": f(3), "b2": f(3)}, opset=21))
    # Data movement: Pad, Resize, Slice, Split, Tile, Expand, Depth/SpaceToDepth.
    models.append(model([N("Pad", ["x", "pads"], ["p"], mode="reflect"),
                         N("Resize", ["p", "", "scales"], ["r"], mode="linear"),
                         N("Slice", ["r", "st", "en", "ax", "sp"], ["s"]),
                         N("Split", ["s", "split"], ["a", "b"], axis=1),
                         N("Tile", ["a", "reps"], ["t"]),
                         N("Expand", ["b", "eshape"], ["e"]),
                         N("Concat", ["t", "e"], ["c"], axis=1),
                         N("SpaceToDepth", ["c"], ["sd"], blocksize=2),
                         N("DepthToSpace", ["sd"], ["y"], blocksize=2, mode="CRD")],
                        [vi("x", F, [1, 3, 4, 6])], [vi("y", F, ["a", "b", "c", "d"])],
                        {"pads": i64(0, 0, 1, 2, 0, 0, 1, 2), "scales": np.array([1, 1, 2, 1.5], np.float32),
                         "st": i64(0, 1), "en": i64(100, -2), "ax": i64(2, 3), "sp": i64(1, 1),
                         "split": i64(1, 2), "reps": i64(1, 2, 1, 1), "eshape": i64(1, 2, 1, 1)}))
    # Index ops with a data-dependent index input (hostile inputs reach the kernels).
    models.append(model([N("Gather", ["x", "ind"], ["g"], axis=1),
                         N("GatherElements", ["x", "ind2"], ["ge"], axis=0),
                         N("ScatterND", ["x", "sind", "upd"], ["sc"]),
                         N("CumSum", ["sc", "cax"], ["cs"], exclusive=1, reverse=1),
                         N("Trilu", ["cs", "k"], ["y"], upper=0)],
                        [vi("x", F, [4, 5]), vi("ind", I, [2, 3]), vi("ind2", I, [2, 5]), vi("sind", I, [2, 1])],
                        [vi("g", F, [4, 2, 3]), vi("ge", F, [2, 5]), vi("y", F, [4, 5])],
                        {"upd": f(2, 5), "cax": np.array(1, np.int64), "k": np.array(1, np.int64)}))
    # Shape arithmetic folded at compile time: ConstantOfShape, Range, Unsqueeze/Squeeze.
    models.append(model([N("Shape", ["x"], ["s"]),
                         N("ConstantOfShape", ["s"], ["z"], value=helper.make_tensor("v", F, [1], [0.5])),
                         N("Add", ["x", "z"], ["a"]),
                         N("Range", ["r0", "r1", "r2"], ["rg"]),
                         N("Unsqueeze", ["a", "uax"], ["u"]),
                         N("Squeeze", ["u", "uax"], ["q"]),
                         N("Sub", ["q", "x"], ["d"]),
                         N("Mul", ["d", "x"], ["m"]),
                         N("Div", ["m", "x"], ["y"])],
                        [vi("x", F, ["N", 5])], [vi("y", F, ["N", 5]), vi("rg", TensorProto.FLOAT, ["R"])],
                        {"r0": np.array(1.0, np.float32), "r1": np.array(7.0, np.float32),
                         "r2": np.array(1.5, np.float32), "uax": i64(0)}))
    # Elementwise and activations (arrive with the ops-elementwise merge).
    models.append(model([N("Sigmoid", ["x"], ["a"]), N("Tanh", ["a"], ["b"]), N("Exp", ["b"], ["c"]),
                         N("Log", ["c"], ["d"]), N("Sqrt", ["d"], ["e"]), N("Pow", ["e", "x"], ["p"]),
                         N("LeakyRelu", ["p"], ["l"], alpha=0.1), N("Clip", ["l", "lo", "hi"], ["cl"]),
                         N("Where", ["cond", "cl", "x"], ["w"]), N("Softmax", ["w"], ["y"], axis=1)],
                        [vi("x", F, [3, "M"]), vi("cond", TensorProto.BOOL, [3, "M"])], [vi("y", F, [3, "M"])],
                        {"lo": np.array(-1.0, np.float32), "hi": np.array(1.0, np.float32)}))
    return models


def _rand_attr_value(rng):
    return [b"junk", 3.5, [1, 2], -7, onnx.helper.make_tensor("t", TensorProto.FLOAT, [1], [1.0])][int(rng.integers(5))]


def mutate(model: onnx.ModelProto, rng) -> bytes:
    """One mutant of `model`, serialized (byte-level or structural)."""
    if rng.random() < 0.4:
        data = bytearray(model.SerializeToString())
        kind = int(rng.integers(3))
        if kind == 0 and data:
            for _ in range(int(rng.integers(1, 8))):
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
        elif kind == 1:
            data = data[: int(rng.integers(len(data) + 1))]
        else:
            pos = int(rng.integers(len(data) + 1))
            data[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 16))).tolist())
        return bytes(data)
    m = copy.deepcopy(model)
    g = m.graph
    kind = STRUCTURAL[int(rng.integers(len(STRUCTURAL)))]
    node = g.node[int(rng.integers(len(g.node)))] if len(g.node) else None
    if kind == "attr_type" and node is not None and node.attribute:
        a = node.attribute[int(rng.integers(len(node.attribute)))]
        name = a.name
        node.attribute.remove(a)
        node.attribute.append(helper.make_attribute(name, _rand_attr_value(rng)))
    elif kind == "drop_input" and node is not None and node.input:
        del node.input[int(rng.integers(len(node.input)))]
    elif kind == "bad_dim":
        targets = list(g.input) + list(g.output)
        vi = targets[int(rng.integers(len(targets)))]
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dims[int(rng.integers(len(dims)))].dim_value = int(rng.choice([-1, -100, 0, 2**40, 2**62]))
        elif g.initializer:
            g.initializer[0].dims.append(int(rng.choice([-3, 2**40])))
    elif kind == "cycle" and len(g.node) >= 1:
        last = g.node[len(g.node) - 1]
        if node.input:
            node.input[0] = last.output[0]
    elif kind == "duplicate_output" and len(g.node) >= 2:
        g.node[0].output[0] = g.node[1].output[0]
    elif kind == "short_initializer" and g.initializer:
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        arr = numpy_helper.to_array(t)
        t.ClearField("float_data")
        t.ClearField("int64_data")
        t.raw_data = arr.tobytes()[: max(0, arr.nbytes - int(rng.integers(1, 9)))]
    elif kind == "unknown_dtype" and g.initializer:
        g.initializer[int(rng.integers(len(g.initializer)))].data_type = int(rng.choice([0, 8, 99, 17, 40]))
    elif kind == "rename_input" and node is not None and node.input:
        node.input[0] = "does_not_exist"
    elif kind == "wrong_op" and node is not None:
        node.op_type = str(rng.choice(["Conv", "Gemm", "Softmax", "Reshape", "NotAnOp", "Concat", "Gather"]))
    elif kind == "extra_input" and node is not None:
        node.input.append(g.input[0].name)
    elif kind == "huge_constant_of_shape":
        shape_name = "huge_shape"
        g.initializer.append(numpy_helper.from_array(np.array([2**20, 2**20, 64], np.int64), shape_name))
        g.node.append(helper.make_node("ConstantOfShape", [shape_name], ["huge"]))
        g.node.append(helper.make_node("Add", ["huge", "huge"], ["huge2"]))
        g.output.append(helper.make_tensor_value_info("huge2", TensorProto.FLOAT, None))
    elif kind == "negative_attr" and node is not None:
        ints = [a for a in node.attribute if a.type == onnx.AttributeProto.INTS or a.type == onnx.AttributeProto.INT]
        if ints:
            a = ints[int(rng.integers(len(ints)))]
            if a.type == onnx.AttributeProto.INT:
                a.i = int(rng.choice([-1, -(2**40), 2**40, 0]))
            elif a.ints:
                a.ints[int(rng.integers(len(a.ints)))] = int(rng.choice([-1, -5, 0, 2**40]))
    elif kind == "drop_initializer" and g.initializer:
        del g.initializer[int(rng.integers(len(g.initializer)))]
    elif kind == "hostile_attr" and node is not None and node.attribute:
        a = node.attribute[int(rng.integers(len(node.attribute)))]
        _hostile_attr(a, rng)
    elif kind == "add_attr" and node is not None:
        name = str(rng.choice(EXTRA_ATTRS))
        for a in list(node.attribute):
            if a.name == name:
                node.attribute.remove(a)
        pick = int(rng.integers(4))
        value = ([int(rng.choice(HOSTILE_INTS + (1, 2, 3))) for _ in range(int(rng.integers(0, 7)))] if pick == 0
                 else int(rng.choice(HOSTILE_INTS + (1, 2, 3))) if pick == 1
                 else float(rng.choice(HOSTILE_FLOATS)) if pick == 2 else str(rng.choice(HOSTILE_STRINGS)))
        node.attribute.append(helper.make_attribute(name, value, attr_type=onnx.AttributeProto.INTS)
                              if value == [] else helper.make_attribute(name, value))
    elif kind == "hostile_const_input" and g.initializer:
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        arr = numpy_helper.to_array(t)
        if arr.dtype.kind in "iu":
            n = int(rng.choice([0, 1, max(arr.size, 1), max(arr.size, 1) + 1, 2 * max(arr.size, 1)]))
            new = np.array([int(rng.choice(HOSTILE_INTS + (0, 1, -1, 5))) for _ in range(n)], np.int64)
            new = new.reshape(()) if arr.ndim == 0 and n == 1 else new
        else:
            new = arr.copy().astype(arr.dtype)
            if new.size:
                flat = new.reshape(-1)
                flat[int(rng.integers(flat.size))] = float(rng.choice(HOSTILE_FLOATS))
        t.CopyFrom(numpy_helper.from_array(new.astype(arr.dtype, copy=False) if arr.dtype.kind in "iu" else new,
                                           t.name))
    elif kind == "reshape_initializer" and g.initializer:
        # Consistent data, inconsistent shape for the op (weights of another layout).
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        arr = numpy_helper.to_array(t)
        choice = int(rng.integers(4))
        arr = (arr.reshape(-1) if choice == 0 else arr.reshape(arr.shape + (1,)) if choice == 1
               else arr.T.copy() if choice == 2 else arr.reshape(-1)[: max(arr.size - 1, 0)])
        t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr), t.name))
    elif kind == "overflow_dims" and g.initializer:
        t = g.initializer[int(rng.integers(len(g.initializer)))]
        del t.dims[:]
        t.dims.extend([int(rng.choice([2**31, 2**32, 2**40, 2**62, 0, 3])) for _ in range(int(rng.integers(1, 4)))])
    elif kind == "duplicate_node_name" and len(g.node) >= 2:
        g.node[0].name = g.node[1].name = "dup"
    elif kind == "duplicate_initializer" and g.initializer:
        t = copy.deepcopy(g.initializer[int(rng.integers(len(g.initializer)))])
        if numpy_helper.to_array(t).size:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).reshape(-1)[:1], t.name))
        g.initializer.append(t)
    elif kind == "duplicate_graph_input" and g.input:
        g.input.append(copy.deepcopy(g.input[int(rng.integers(len(g.input)))]))
    elif kind == "swap_inputs" and node is not None and len(node.input) >= 2:
        i, j = rng.choice(len(node.input), 2, replace=False)
        node.input[int(i)], node.input[int(j)] = node.input[int(j)], node.input[int(i)]
    elif kind == "input_elem_type":
        targets = list(g.input) + list(g.output)
        targets[int(rng.integers(len(targets)))].type.tensor_type.elem_type = int(rng.choice([0, 2, 6, 7, 8, 9, 10,
                                                                                            11, 16, 99]))
    elif kind == "opset":
        m.opset_import[0].version = int(rng.choice(OPSETS))
    elif kind == "huge_expand":
        g.initializer.append(numpy_helper.from_array(np.array([2**31, 2**31], np.int64), "huge_eshape"))
        g.node.append(helper.make_node("Expand", [g.input[0].name, "huge_eshape"], ["huge_e"]))
        g.output.append(helper.make_tensor_value_info("huge_e", g.input[0].type.tensor_type.elem_type,
                                                      ["h1", "h2", "h3", "h4", "h5"][:2]))
    elif kind == "huge_range":
        lim = float(rng.choice([2**31, 2**40, 1e30, float("inf"), float("nan")]))
        g.initializer.extend([numpy_helper.from_array(np.array(0, np.float32), "r_start"),
                              numpy_helper.from_array(np.array(lim, np.float32), "r_limit"),
                              numpy_helper.from_array(np.array(float(rng.choice([1.0, 1e-30, 0.0, -1.0])),
                                                               np.float32), "r_delta")])
        g.node.append(helper.make_node("Range", ["r_start", "r_limit", "r_delta"], ["huge_r"]))
        g.output.append(helper.make_tensor_value_info("huge_r", TensorProto.FLOAT, ["R"]))
    elif kind == "self_loop" and node is not None and node.input and node.output:
        node.input[0] = node.output[0]
    elif kind == "drop_output" and len(g.output) >= 1:
        del g.output[int(rng.integers(len(g.output)))]
    return m.SerializeToString()


def _hostile_attr(a, rng) -> None:
    if a.type == onnx.AttributeProto.INT:
        a.i = int(rng.choice(HOSTILE_INTS))
    elif a.type == onnx.AttributeProto.INTS:
        vals = list(a.ints)
        pick = int(rng.integers(4))
        if pick == 0 and vals:  # one entry out of range
            vals[int(rng.integers(len(vals)))] = int(rng.choice(HOSTILE_INTS))
        elif pick == 1:  # wrong length
            vals = vals + [1] if rng.random() < 0.5 else vals[:-1]
        elif pick == 2 and vals:  # duplicates (perm, axes)
            vals = [vals[0]] * len(vals)
        else:  # a product overflowing int64
            vals = [2**31] * max(len(vals), 2)
        del a.ints[:]
        a.ints.extend(vals)
    elif a.type == onnx.AttributeProto.FLOAT:
        a.f = float(rng.choice(HOSTILE_FLOATS))
    elif a.type == onnx.AttributeProto.FLOATS and a.floats:
        a.floats[int(rng.integers(len(a.floats)))] = float(rng.choice(HOSTILE_FLOATS))
    elif a.type == onnx.AttributeProto.STRING:
        a.s = str(rng.choice(HOSTILE_STRINGS)).encode("utf-8", "surrogatepass")
    elif a.type == onnx.AttributeProto.TENSOR:
        value = float(rng.choice(HOSTILE_FLOATS))
        a.t.CopyFrom(helper.make_tensor(a.t.name or "t", TensorProto.FLOAT, [], [value]) if rng.random() < 0.5
                     else helper.make_tensor(a.t.name or "t", TensorProto.INT64, [2], [2**62, -1]))


_NP_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
             "tensor(double)": np.float64, "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8,
             "tensor(int8)": np.int8, "tensor(float16)": np.float16}


def random_feeds(sess, rng) -> dict:
    feeds = {}
    symbolic: dict = {}  # one size per dim name, so inputs sharing 'N' agree
    for arg in sess.get_inputs():
        shape = [d if isinstance(d, int) and 0 <= d <= 64 else symbolic.setdefault(d, int(rng.integers(3, 9)))
                 for d in (arg.shape or [])]
        dtype = _NP_TYPES.get(arg.type, np.float32)
        if np.dtype(dtype).kind in "iu":  # mostly valid indices for the index ops
            feeds[arg.name] = rng.integers(-2, 3, shape).astype(dtype)
        else:
            feeds[arg.name] = (rng.standard_normal(shape) * 3).astype(dtype)
    return feeds


INPUT_KINDS = ("nan_inf", "empty_dim", "huge_batch", "bad_indices", "wrong_dtype", "wrong_rank", "non_contiguous",
               "zero_dim_everywhere", "python_list", "huge_values")


def hostile_feeds(sess, rng) -> tuple:
    """(kind, feeds): a valid model's inputs made hostile - NaN/inf, empty
    dims, a batch whose intermediates exceed the memory limit, index inputs
    out of range, wrong types and ranks, non-contiguous arrays."""
    kind = str(rng.choice(INPUT_KINDS))
    feeds = random_feeds(sess, rng)
    args = sess.get_inputs()
    arg = args[int(rng.integers(len(args)))]
    x = feeds[arg.name]
    symbolic_axes = [i for i, d in enumerate(arg.shape or []) if not isinstance(d, int)]
    if kind == "nan_inf" and x.dtype.kind == "f" and x.size:
        flat = x.reshape(-1)
        for _ in range(int(rng.integers(1, 4))):
            flat[int(rng.integers(flat.size))] = rng.choice([np.nan, np.inf, -np.inf])
    elif kind == "empty_dim":
        axes = symbolic_axes or list(range(x.ndim))
        if axes:
            shape = list(x.shape)
            shape[int(rng.choice(axes))] = 0
            # every input sharing that dim name becomes empty too
            feeds = {a.name: _resized(feeds[a.name], a, arg, shape, x) for a in args}
    elif kind == "huge_batch" and symbolic_axes:
        shape = list(x.shape)
        shape[symbolic_axes[0]] = int(rng.choice([2**12, 2**16, 2**20]))
        if int(np.prod(shape)) * x.itemsize <= 256 << 20:  # the input itself stays affordable
            feeds = {a.name: _resized(feeds[a.name], a, arg, shape, x) for a in args}
    elif kind == "bad_indices" and x.dtype.kind in "iu" and x.size:
        flat = x.reshape(-1)
        for _ in range(int(rng.integers(1, 4))):
            flat[int(rng.integers(flat.size))] = int(rng.choice([2**31, -(2**31), 2**62, -(2**63), 100, -100, 5, -6]))
    elif kind == "wrong_dtype":
        feeds[arg.name] = x.astype(rng.choice([np.float64, np.int32, np.float16, np.bool_, np.uint8]))
    elif kind == "wrong_rank":
        feeds[arg.name] = x.reshape(x.shape + (1,)) if rng.random() < 0.5 else x.reshape(-1)
    elif kind == "non_contiguous" and x.ndim:
        feeds[arg.name] = np.repeat(x, 2, axis=-1)[..., ::2]
    elif kind == "zero_dim_everywhere":
        feeds = {k: np.zeros([0] * v.ndim, v.dtype) for k, v in feeds.items()}
    elif kind == "python_list":
        feeds[arg.name] = x.tolist()
    elif kind == "huge_values" and x.dtype.kind == "f":
        feeds[arg.name] = (x * np.float32(1e38)).astype(x.dtype)
    return kind, feeds


def _resized(value, arg, changed_arg, shape, changed_value):
    """`value` (input `arg`) with the dims it shares by name with the changed input resized."""
    if arg.name == changed_arg.name:
        return np.resize(changed_value, shape) if np.prod(shape) else np.zeros(shape, changed_value.dtype)
    names = {d: shape[i] for i, d in enumerate(changed_arg.shape or []) if not isinstance(d, int)}
    new = [names.get(d, value.shape[i]) if not isinstance(d, int) else value.shape[i]
           for i, d in enumerate(arg.shape or [])]
    return np.resize(value, new) if np.prod(new) else np.zeros(new, value.dtype)


# Exceptions that are an acceptable end of a hostile case. Anything else
# (AttributeError, KeyError, IndexError, ZeroDivisionError, RecursionError...)
# is a bug: an error path nobody wrote, with a message nobody can act on.
ACCEPTED = (ValueError, TypeError, NotImplementedError, MemoryError, OSError)


def run_one(data: bytes, rng, input_fuzz: bool = False) -> str:
    """Loads and runs one case in this process; returns 'ok' or the exception type."""
    import pyengine
    try:
        opts = pyengine.SessionOptions()
        opts.intra_op_num_threads = int(rng.integers(1, 3))
        sess = pyengine.InferenceSession(data, opts)
        feeds = hostile_feeds(sess, rng)[1] if input_fuzz else random_feeds(sess, rng)
        sess.run(None, feeds)
        return "ok"
    except Exception as e:  # noqa: BLE001 - any Python exception is an acceptable outcome
        name = type(e).__name__
        if not str(e).strip():
            return f"{name}:EMPTY_MESSAGE"
        if not isinstance(e, ACCEPTED):
            return f"UNEXPECTED:{name}: {str(e)[:300]}"
        return name


def make_case(i: int, seed: int, models: list):
    """(description, model bytes, rng, input_fuzz) of case i: a quarter are
    valid models with hostile inputs, the rest mutated models."""
    rng = np.random.default_rng([seed, i])
    base = models[i % len(models)]
    if rng.random() < 0.25:
        return "inputs", base.SerializeToString(), rng, True
    return "model", mutate(base, rng), rng, rng.random() < 0.2


def _child(start: int, count: int, seed: int, case_timeout: float = 60.0) -> None:
    import faulthandler

    import pyengine
    isas = pyengine.available_isas()
    models = seed_models()
    outcomes: dict = {}
    unexpected = []
    for i in range(start, start + count):
        print(f"CASE {i}", flush=True)  # before anything can fail, so a restart moves past this case
        what, data, rng, input_fuzz = make_case(i, seed, models)
        isa = isas[i % len(isas)]
        pyengine.set_isa(isa)
        print(f"CASE {i} {what} seed-model {i % len(models)} isa {isa}", flush=True)
        faulthandler.dump_traceback_later(case_timeout, exit=True)  # a hang kills the child, reported as such
        kind = run_one(data, rng, input_fuzz)
        faulthandler.cancel_dump_traceback_later()
        print(f"RESULT {kind.split(':')[0]}", flush=True)  # tallied by the parent, which survives a crash
        if kind.startswith("UNEXPECTED:") or kind.endswith("EMPTY_MESSAGE"):
            if len(unexpected) < 20:
                unexpected.append({"case": i, "outcome": kind})
            kind = kind.split(":")[0] + ":" + kind.split(":")[1] if kind.startswith("UNEXPECTED:") else kind
        outcomes[kind] = outcomes.get(kind, 0) + 1
    print("DONE " + json.dumps({"outcomes": outcomes, "unexpected": unexpected}), flush=True)


# The child must import the same pyengine as this process (an installed one,
# or an in-place build), whatever its working directory holds.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child_env() -> dict:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONFAULTHANDLER": "1",
            "PYTHONPATH": _PACKAGE_ROOT + (os.pathsep + path if path else "")}


def run_cases(count: int, seed: int = 0, timeout: float = 600.0, memory_limit_gb: float = 8.0,
              plan_memory_limit: int = 256 << 20, case_timeout: float = 60.0) -> dict:
    """Runs `count` cases in child processes; returns a report dict with the
    outcomes, any crashes (case index, what the case was and how the child
    died: signal, hang, out of memory) and any unexpected exception types.
    A crashed child is restarted after the failing case. The child's address
    space is capped at `memory_limit_gb` and plans at `plan_memory_limit`
    bytes, so huge tensors must be refused, not allocated."""
    report = {"cases": count, "outcomes": {}, "crashes": [], "unexpected": []}
    env = {**child_env(), "PYENGINE_MAX_MEMORY_BYTES": str(plan_memory_limit)}
    start = 0
    while start < count:
        cap = int(memory_limit_gb * 2**30)
        # Under AddressSanitizer (scripts/sanitize.sh) the shadow memory alone
        # exceeds any address-space cap; the plan memory limit still applies.
        rlimit = "" if os.environ.get("PYENGINE_SANITIZED") else f"resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}));"
        cmd = [sys.executable, "-c",
               "import sys, resource;" + rlimit +
               "from pyengine.testing.fuzz import _child;"
               f"_child({start}, {count - start}, {seed}, {case_timeout})"]
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                                  cwd=os.path.dirname(_PACKAGE_ROOT))
            out, err, rc, hung = proc.stdout, proc.stderr, proc.returncode, False
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err, rc, hung = "", None, True
        last, what = start - 1, ""
        for line in out.splitlines():
            if line.startswith("CASE "):
                last, what = int(line.split()[1]), line[5:]
            elif line.startswith("RESULT "):
                k = line[7:].strip()
                report["outcomes"][k] = report["outcomes"].get(k, 0) + 1
            elif line.startswith("DONE "):
                report["unexpected"].extend(json.loads(line[5:])["unexpected"])
        if rc == 0 and "DONE " in out:
            break
        hung = hung or "Timeout (" in err
        report["crashes"].append({"case": last, "what": what, "returncode": rc, "hung": hung,
                                  "seconds": round(time.time() - t0, 1), "stderr": err[-2000:]})
        start = last + 1
    return report


def replay(case: int, seed: int = 0) -> str:
    """Runs one case in this process (to debug a crash the report names)."""
    what, data, rng, input_fuzz = make_case(case, seed, seed_models())
    return run_one(data, rng, input_fuzz)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(json.dumps(run_cases(n), indent=1))
