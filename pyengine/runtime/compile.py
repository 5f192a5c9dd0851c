"""Specialized graph -> native Plan.

Decides where every value lives (the caller's input and output buffers,
constants - read in place from the session's arrays when aligned, else
copied into the plan -, arena offsets, or views of another value), then builds
the kernels in order. Graph outputs are written in place into the arrays
returned to the caller, except where an output must be copied (it is an
input, a constant, a view, or listed twice).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import _dtypes
from ..errors import InvalidModelError
from ..graph.ir import TensorInfo
from ..graph.specialize import Specialized, node_error
from . import limits, memory
from .native import _engine


@dataclasses.dataclass
class CompiledPlan:
    plan: object          # _engine.Plan
    output_dtypes: list
    output_shapes: list
    arena_bytes: int
    num_steps: int

    @property
    def constant_bytes(self) -> dict:
        """Constant data the plan holds: copied into its own buffers, or read
        in place from the session's arrays (testing hook; packed weights excluded)."""
        return {"owned": int(self.plan.owned_constant_bytes), "borrowed": int(self.plan.borrowed_constant_bytes)}

    def run(self, arrays: list) -> list:
        outs = [np.empty(s, dtype=d) for s, d in zip(self.output_shapes, self.output_dtypes)]
        self.plan.run(arrays, outs)
        return outs


def _release_packed(plan, step, pending: dict, kept: set, slots: dict, env: dict, release) -> None:
    """After `step`'s kernel is built: constants whose every reader keeps a
    packed copy are released as soon as the last reader is built."""
    for k, name in enumerate(step.node.inputs):
        if name not in pending:
            continue
        if plan.last_node_reads_input(k):
            kept.add(name)
        pending[name] -= 1
        if pending[name] == 0 and name not in kept:
            plan.release_constant(slots[name])
            env[name] = TensorInfo(env[name].dtype, env[name].shape)  # this plan's reference
            release(name)


def _nbytes(info) -> int:
    n = info.dtype.itemsize
    for d in info.shape:
        n *= int(d)
    return n


def _unnamed(node, k: int) -> str:
    return f"{node.name}#unused_output_{k}"


def _check_shapes(spec: Specialized, output_names: list, limit: int) -> None:
    """Every tensor the plan holds has a sane shape and fits the memory limit
    (checked before anything is allocated; Python ints cannot overflow)."""
    for step in spec.steps:
        for k, info in enumerate(step.outs):
            name = step.node.outputs[k] if k < len(step.node.outputs) and step.node.outputs[k] else \
                _unnamed(step.node, k)
            where = f"output {k} of node '{step.node.name}' ({step.node.op_type})"
            if info.shape is None or any(not isinstance(d, (int, np.integer)) or d < 0 for d in info.shape):
                raise InvalidModelError(f"tensor '{name}' ({where}) has no valid concrete shape: {info.shape}")
            limits.check_tensor(name, where, _nbytes(info), limit)
    for name in output_names:
        info = spec.env.get(name)
        if info is not None and info.shape is not None:
            limits.check_tensor(name, "graph output", _nbytes(info), limit)


def compile_plan(spec: Specialized, input_names: list, output_names: list, pool,
                 memory_limit: int | None = None, release=None) -> CompiledPlan:
    """`memory_limit`: bytes the plan may need (None: the default of
    runtime/limits.py, 0: unlimited). `release(name)`: called for each
    constant every reading kernel packed a copy of, once the last of them is
    built; the plan has let go of it and so should the caller (peak memory:
    the weights are freed one by one as their packed copies appear)."""
    env, steps = spec.env, spec.steps
    limit = limits.memory_limit() if memory_limit is None else memory_limit
    _check_shapes(spec, output_names, limit)
    plan = _engine.Plan(pool)
    slots: dict = {}

    def desc(info):
        return _dtypes.to_onnx(info.dtype), [int(d) for d in info.shape]

    for i, name in enumerate(input_names):
        slots[name] = plan.add_input(i, *desc(env[name]))

    # Values written directly into the caller's output arrays.
    produced_by = {}
    for idx, step in enumerate(steps):
        for o in step.node.outputs:
            if o:
                produced_by[o] = idx
    direct_output: dict = {}
    for j, name in enumerate(output_names):
        if name not in env:
            raise InvalidModelError(f"graph output '{name}' is not produced by any node")
        step = produced_by.get(name)
        if step is not None and not steps[step].opdef.view and name not in direct_output:
            direct_output[name] = j

    # Lifetimes of arena tensors. A view shares its base's buffer, so reading
    # the view keeps the base alive.
    root: dict = {}
    buffers: dict = {}
    for idx, step in enumerate(steps):
        for name in step.node.inputs:
            r = root.get(name)
            if r in buffers:
                buffers[r].last = max(buffers[r].last, idx)
        if step.opdef.view:
            out = step.node.outputs[0]
            root[out] = root.get(step.node.inputs[0], step.node.inputs[0])
            continue
        for k, (name, info) in enumerate(zip(step.node.outputs, step.outs)):
            if name not in direct_output:
                key = name or _unnamed(step.node, k)
                root[key] = key
                buffers[key] = memory.Buffer(key, _nbytes(info), idx, idx)
    # Outputs copied at the end keep their source alive until then.
    for name in output_names:
        r = root.get(name)
        if name not in direct_output and r in buffers:
            buffers[r].last = len(steps)
    arena_bytes = memory.plan_offsets(list(buffers.values()))
    const_names = {n for step in steps for n in step.node.inputs if n and n in env and env[n].value is not None}
    const_names.update(n for n in output_names if n in env and env[n].value is not None)
    sizes = {"arena": arena_bytes,
             "constants": sum(env[n].value.nbytes for n in const_names),
             "outputs": sum(_nbytes(env[n]) for n in set(output_names) if n in env)}
    largest = max(buffers.values(), key=lambda b: b.nbytes, default=None)
    largest_desc = f"'{largest.name}' {largest.nbytes} bytes" if largest else "none"
    limits.check_total(sizes, largest_desc, limit)

    def slot_of(name):
        if name not in slots:
            if name in env and env[name].value is not None:
                value = np.asarray(env[name].value, order="C")  # (ascontiguousarray makes 0-d 1-d)
                # Large aligned constants are read in place (kept alive by the plan), not copied;
                # the session keeps them for plans of other input shapes anyway.
                slots[name] = plan.add_constant(value, _dtypes.to_onnx(value.dtype), True)
            else:
                raise InvalidModelError(f"value '{name}' is read before any node writes it")
        return slots[name]

    # Constants still to be read by a later node, and those some kernel reads at run time.
    pending: dict = {}
    for step in steps:
        for n in step.node.inputs:
            if n in const_names:
                pending[n] = pending.get(n, 0) + 1
    kept = set(output_names)

    for step in steps:
        node = step.node
        in_slots = [slot_of(n) if n else -1 for n in node.inputs]
        if step.opdef.view:
            slots[node.outputs[0]] = plan.add_view(in_slots[0], *desc(step.outs[0]))
            continue
        out_slots = []
        for k, (name, info) in enumerate(zip(node.outputs, step.outs)):
            key = name or _unnamed(node, k)
            if key in direct_output:
                slots[key] = plan.add_output(direct_output[key], *desc(info))
            else:
                slots[key] = plan.add_arena(buffers[key].offset, *desc(info))
            out_slots.append(slots[key])
        try:
            plan.add_node(step.opdef.kernel, node.name, step.opdef.kernel_attrs(node, step.ins), in_slots, out_slots)
        except (ValueError, TypeError, RuntimeError, IndexError, KeyError, ArithmeticError) as e:
            raise node_error(node, e) from None
        if release is not None:
            step.ins = None  # read no more, and it references the constants
            _release_packed(plan, step, pending, kept, slots, env, release)

    # Outputs that cannot be written in place get a copy.
    for j, name in enumerate(output_names):
        if direct_output.get(name) == j:
            continue
        src = slot_of(name)
        dst = plan.add_output(j, *desc(env[name]))
        plan.add_node("Identity", f"output_copy_{j}", {}, [src], [dst])

    sizes["scratch"] = int(plan.scratch_bytes)  # known once the kernels are built, before any run
    limits.check_total(sizes, largest_desc, limit)
    plan.finalize(arena_bytes)
    return CompiledPlan(plan, [env[n].dtype for n in output_names],
                        [tuple(int(d) for d in env[n].shape) for n in output_names], arena_bytes, len(steps))
