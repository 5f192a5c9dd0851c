"""Export of trainer models to standard ONNX (opset 17, default domain only)."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17


class ExportContext:
    """Collects nodes and initializers while layers export themselves."""

    def __init__(self, dtype=np.float32):
        self.nodes: list = []
        self.initializers: list = []
        self.dtype = np.dtype(dtype)
        self._names: set = set()

    def fresh(self, hint: str) -> str:
        base = hint or "v"
        name, i = base, 0
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def constant(self, hint: str, array) -> str:
        """Adds an initializer (floats cast to the export dtype); returns its name."""
        array = np.asarray(array)
        if array.dtype.kind == "f":
            array = array.astype(self.dtype)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def node(self, op_type: str, inputs: list, num_outputs: int = 1, hint: str = "", **attrs):
        """Adds a node; returns its output name (or list of names if num_outputs > 1)."""
        outs = [self.fresh(f"{hint or op_type.lower()}_out") for _ in range(num_outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.fresh(hint or op_type), **attrs))
        return outs[0] if num_outputs == 1 else outs


def to_onnx(model, path, sample_input, input_name: str = "input", output_name: str = "output",
            dynamic_batch: bool = True) -> onnx.ModelProto:
    """Writes `model` (a Layer) as an ONNX file at `path` (None: only return it).
    The first dimension is named 'batch' when dynamic_batch is set."""
    sample_input = np.asarray(sample_input)
    was_training = model.training
    model.eval()
    try:
        ctx = ExportContext()
        elem = onnx.helper.np_dtype_to_tensor_dtype(sample_input.dtype)
        in_shape = list(sample_input.shape)
        if dynamic_batch:
            in_shape[0] = "batch"
        # Forward first: layers may record what they saw (e.g. the input rank)
        # to pick their ONNX form.
        out = model.forward(sample_input)
        x = ctx.fresh(input_name)
        y = model.export(ctx, x)
        ctx.nodes.append(helper.make_node("Identity", [y], [output_name], name=ctx.fresh("output_identity")))
        out_shape = list(np.asarray(out).shape)
        if dynamic_batch:
            out_shape[0] = "batch"
        out_elem = onnx.helper.np_dtype_to_tensor_dtype(np.asarray(out).dtype)
        graph = helper.make_graph(
            ctx.nodes, type(model).__name__,
            [helper.make_tensor_value_info(x, elem, in_shape)],
            [helper.make_tensor_value_info(output_name, out_elem, out_shape)], ctx.initializers)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="pyengine.train")
        proto.ir_version = 8
        onnx.checker.check_model(proto)
        if path is not None:
            onnx.save(proto, str(path))
        return proto
    finally:
        model.train(was_training)
