"""Access to the compiled extension: thread pools and one-node plans."""
from __future__ import annotations

import os
import threading

import numpy as np

from .. import _dtypes

try:
    from .. import _engine
except ImportError as e:  # pragma: no cover - only when the package was not built
    raise ImportError(
        "pyengine's native extension is missing; install the package with `pip install .` "
        f"(or build it in place with scripts/dev_build.sh): {e}") from None

KernelError = _engine.KernelError  # a kernel rejected its inputs at run time (a ValueError)

_VALID_ISAS = ("auto", "scalar", "avx2", "avx512")


def _check_isa_env():
    isa = os.environ.get("PYENGINE_ISA")
    if isa is None:
        return
    if isa not in _VALID_ISAS:
        raise ValueError(f"PYENGINE_ISA={isa!r} is not one of {', '.join(_VALID_ISAS)}")
    if isa not in ("auto",) and isa not in _engine.available_isas():
        raise ValueError(f"PYENGINE_ISA={isa!r}: this CPU or build supports only {_engine.available_isas()}")


_check_isa_env()

_pools: dict = {}
_pools_lock = threading.Lock()


def thread_pool(num_threads: int):
    """A process-wide pool per thread count; sessions with equal settings share it."""
    if num_threads <= 0:
        num_threads = _engine.default_num_threads()
    with _pools_lock:
        pool = _pools.get(num_threads)
        if pool is None:
            pool = _pools[num_threads] = _engine.ThreadPool(num_threads)
        return pool


def run_node(opdef, node, ins, outs):
    """Runs one node on constant inputs through its native kernel (used by
    constant folding, so folding and running share one implementation)."""
    if opdef.kernel is None:
        raise NotImplementedError(f"{node.op_type} has no native kernel to fold it with")
    plan = _engine.Plan(thread_pool(1))
    in_slots, arrays = [], []
    for info in ins:
        if info is None:
            in_slots.append(-1)
            continue
        arr = np.asarray(info.value, order="C")  # (ascontiguousarray makes 0-d 1-d)
        in_slots.append(plan.add_input(len(arrays), _dtypes.to_onnx(arr.dtype), list(arr.shape)))
        arrays.append(arr)
    results, out_slots = [], []
    for i, info in enumerate(outs):
        out_slots.append(plan.add_output(i, _dtypes.to_onnx(info.dtype), list(info.shape)))
        results.append(np.empty(info.shape, dtype=info.dtype))
    plan.add_node(opdef.kernel, node.name, opdef.kernel_attrs(node, ins), in_slots, out_slots)
    plan.finalize(0)
    plan.run(arrays, results)
    return results
