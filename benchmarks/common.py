"""Timing helpers shared by the benchmark scripts: engines are timed in the
same process, interleaved round by round, and reported as medians, because
the machines are shared and noisy."""
from __future__ import annotations

import glob
import os
import platform
import statistics
import sys
import time

# A checkout with an in-place build (scripts/dev_build.sh) is measured, not an
# installed pyengine: without this the scripts, run as `python benchmarks/x.py`,
# would silently time whatever copy site-packages holds.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if glob.glob(os.path.join(_ROOT, "pyengine", "_engine*.so")) and _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os
    return f"{model}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def interleaved(fns: dict, rounds: int = 15, inner: int = 0, min_time: float = 0.02,
                settle: float = 0.05) -> dict:
    """Times each callable in `fns` round-robin. Each sample is the mean of
    `inner` calls (chosen so a sample lasts >= min_time). Returns name ->
    list of per-call seconds, one entry per round.

    Between samples the process sleeps `settle` seconds: an engine's idle
    worker threads keep spinning for a while after its last call (onnxruntime
    spins by default), and on a 2-core machine those spinning threads would
    take the core the next engine's own workers need."""
    for fn in fns.values():  # warm-up (plans compiled, caches filled)
        fn()
        fn()
    if not inner:
        t0 = time.perf_counter()
        next(iter(fns.values()))()
        one = max(time.perf_counter() - t0, 1e-7)
        inner = max(1, int(min_time / one))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner)
            time.sleep(settle)
    return samples


def median(xs) -> float:
    return statistics.median(xs)


def p90(xs) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def table(headers: list, rows: list) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join([line, sep] + body)
