"""Memory limit for compiled plans.

A plan's memory is known before anything is allocated: the arena of
intermediates, the constants it owns and the output arrays each run returns.
A hostile or mistaken model (a dim of 2**40, a ConstantOfShape of a huge
shape, a batch far larger than the machine) is refused here with an error
naming the tensor, instead of being killed by the kernel's out-of-memory
killer halfway through an allocation.

The limit is, in order of precedence: the session config entry
`pyengine.max_memory_bytes`, the environment variable
PYENGINE_MAX_MEMORY_BYTES, else 75% of the memory available to the process
(physical memory, a cgroup limit or RLIMIT_AS, whichever is smallest).
0 or a negative value disables the check.
"""
from __future__ import annotations

import functools
import os
import resource

from ..errors import ResourceLimitError

CONFIG_KEY = "pyengine.max_memory_bytes"
ENV_VAR = "PYENGINE_MAX_MEMORY_BYTES"
DEFAULT_FRACTION = 0.75


@functools.lru_cache(maxsize=1)
def _available_memory() -> int:
    """Physical memory, the cgroup's limit and RLIMIT_AS, whichever is least.
    Read once per process (the cgroup files cost milliseconds to read here,
    on every session's creation)."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
            if text.isdigit() and int(text) < 1 << 60:
                sizes.append(int(text))
        except OSError:
            pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY and soft > 0:
        sizes.append(soft)
    return min(sizes) if sizes else 1 << 62


def _parse(text: str, where: str) -> int:
    try:
        return int(float(text))
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a number of bytes, got {text!r}") from None


def memory_limit(config: dict | None = None) -> int:
    """Bytes one plan may need, or 0 for no limit."""
    if config and CONFIG_KEY in config:
        return max(_parse(config[CONFIG_KEY], f"session config '{CONFIG_KEY}'"), 0)
    if os.environ.get(ENV_VAR):
        return max(_parse(os.environ[ENV_VAR], ENV_VAR), 0)
    return int(_available_memory() * DEFAULT_FRACTION)


def _fmt(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def check_tensor(name: str, where: str, nbytes: int, limit: int) -> None:
    if limit and nbytes > limit:
        raise ResourceLimitError(
            f"tensor '{name}' ({where}) needs {_fmt(nbytes)}, more than the memory limit of {_fmt(limit)} "
            f"(set SessionOptions config '{CONFIG_KEY}' or {ENV_VAR} to change it)")


def check_total(parts: dict, largest: str, limit: int) -> None:
    """`parts`: what -> bytes (arena, constants, outputs, scratch)."""
    total = sum(parts.values())
    if limit and total > limit:
        detail = ", ".join(f"{k} {_fmt(v)}" for k, v in parts.items())
        raise ResourceLimitError(
            f"the plan needs {_fmt(total)} ({detail}; largest tensor: {largest}), more than the memory "
            f"limit of {_fmt(limit)} (set SessionOptions config '{CONFIG_KEY}' or {ENV_VAR} to change it)")
