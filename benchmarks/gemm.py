"""SGEMM benchmark: GFLOP/s of pyengine's SIMD SGEMMs (AVX2 and, where the
CPU has it, AVX-512; each unpacked and with B pre-packed as for constant
weights) against NumPy's matmul (its OpenBLAS) and the machine's FMA peak.
Prints a Markdown table; not a test.

    python benchmarks/gemm.py [--threads 1 2] [--quick] [--haswell] [--clock thread_cpu]

Every timing is a median over interleaved rounds (ours, packed, NumPy, ours...)
so background load hits all columns alike. The peak is measured on one core
with independent FMA chains of the widest ISA (AVX2: 12 chains of 8 lanes;
AVX-512: 16 chains of 16 lanes; 2 flops per lane) and also given from the
nominal clock in /proc/cpuinfo (2 FMA pipes x lanes x 2 flops x GHz). The
"% of peak" column is the best ISA's packed kernel against its own peak.
--haswell adds NumPy restricted to OpenBLAS's AVX2 (Haswell) kernels, run in
a child process (OPENBLAS_CORETYPE must be set before import).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402,F401  (puts a built checkout before an installed pyengine)

SQUARE = [63, 64, 128, 255, 256, 512, 1023, 1024, 2048]
LAYERS = [(m, k, n) for m in (1, 8, 32) for k, n in [(256, 256), (1024, 1024), (4096, 1024), (1024, 4096),
                                                      (4096, 4096)]]
QUICK_SQUARE = [63, 256, 1024]
QUICK_LAYERS = [(1, 1024, 1024), (8, 1024, 1024), (32, 4096, 1024)]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def nominal_ghz() -> float:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1]) / 1000
    except OSError:
        pass
    return float("nan")


def blas_limits(threads):
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(limits=threads, user_api="blas")
    except ImportError:  # fall back to whatever the environment set
        import contextlib
        return contextlib.nullcontext()


CLOCKS = {"wall": time.perf_counter, "thread_cpu": time.thread_time}


def time_numpy(a, b, c, calls, clock="wall"):
    now = CLOCKS[clock]
    t = now()
    for _ in range(calls):
        np.matmul(a, b, out=c)
    return (now() - t) / calls


def operands(m, k, n):
    rng = np.random.default_rng(m * 31 + k * 7 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    return a, b, np.zeros((m, n), np.float32)


def calls_for(flops):
    return max(1, int(2e7 / flops))  # each measurement >= ~0.3 ms of work


def numpy_worker(shapes, threads_list, rounds, clock):
    """Child process: NumPy only, printed as JSON (used with OPENBLAS_CORETYPE)."""
    res = {}
    for threads in threads_list:
        with blas_limits(threads):
            for m, k, n in shapes:
                a, b, c = operands(m, k, n)
                calls = calls_for(2 * m * n * k)
                time_numpy(a, b, c, 1)
                res[f"{m},{k},{n},{threads}"] = float(np.median([time_numpy(a, b, c, calls, clock)
                                                                 for _ in range(rounds)]))
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="a few shapes only")
    ap.add_argument("--haswell", action="store_true", help="also NumPy with OpenBLAS's AVX2 kernels")
    ap.add_argument("--clock", choices=list(CLOCKS), default="wall",
                    help="thread_cpu: CPU time of the calling thread (1 thread only; leaves out time "
                         "taken by other processes on a shared machine)")
    ap.add_argument("--numpy-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    shapes = [(s, s, s) for s in (QUICK_SQUARE if args.quick else SQUARE)]
    shapes += QUICK_LAYERS if args.quick else LAYERS
    if args.numpy_worker:
        return numpy_worker(shapes, args.threads, args.rounds, args.clock)
    if args.clock == "thread_cpu" and args.threads != [1]:
        ap.error("--clock thread_cpu needs --threads 1")

    from pyengine._engine import testing

    haswell = {}
    if args.haswell:
        env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
        cmd = [sys.executable, __file__, "--numpy-worker", "--rounds", str(args.rounds), "--clock", args.clock,
               "--threads", *map(str, args.threads)] + (["--quick"] if args.quick else [])
        haswell = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)

    from pyengine._engine import available_isas
    isas = [i for i in ("avx2", "avx512") if i in available_isas()]
    best = isas[-1]
    lanes = {"avx2": 8, "avx512": 16}[best]
    # The peak is re-measured between shapes and the best kept: turbo clocks
    # and background load make any single measurement low.
    peaks = [testing.fma_peak_gflops(0.05, best) for _ in range(5)]
    ghz = nominal_ghz()
    load0 = os.getloadavg()[0]
    rows = []
    hdr = "| M x K x N | thr |" + "".join(f" {i} | {i} packed |" for i in isas) + f" NumPy | {best} packed / NumPy |"
    sep = "|---|---|" + "---|---|" * len(isas) + "---|---|"
    if args.haswell:
        hdr += f" NumPy AVX2 | {best} packed / NumPy AVX2 |"
        sep += "---|---|"
    hdr += f" {best} packed % of peak (per thread) |"
    sep += "---|"
    for threads in args.threads:
        with blas_limits(threads):
            for m, k, n in shapes:
                a, b, c = operands(m, k, n)
                flops = 2.0 * m * n * k
                calls = calls_for(flops)
                times = {(isa, packed): [] for isa in isas for packed in (False, True)}
                numpy_t = []
                peaks.append(testing.fma_peak_gflops(0.02, best))
                for r in range(args.rounds + 1):  # round 0 warms up
                    for isa, packed in times:
                        t = float(np.median(testing.sgemm(isa, False, False, 1.0, a, b, 0.0, c, threads=threads,
                                                          packed=packed, repeat=calls, clock=args.clock)))
                        if r:
                            times[isa, packed].append(t)
                    t = time_numpy(a, b, c, calls, args.clock)
                    if r:
                        numpy_t.append(t)
                g = {key: flops / np.median(t) / 1e9 for key, t in times.items()}
                gn = flops / np.median(numpy_t) / 1e9
                gb = g[best, True]
                row = f"| {m} x {k} x {n} | {threads} |" + "".join(f" {v:.1f} |" for v in g.values())
                row += f" {gn:.1f} | {gb / gn:.2f} |"
                if args.haswell:
                    gh = flops / haswell[f"{m},{k},{n},{threads}"] / 1e9
                    row += f" {gh:.1f} | {gb / gh:.2f} |"
                rows.append((row, gb / threads))
                print(row, file=sys.stderr, flush=True)  # progress
    peak = max(peaks)
    print(f"CPU: {cpu_model()}; NumPy {np.__version__} (OpenBLAS); nominal clock {ghz:.2f} GHz; "
          f"load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end; clock: {args.clock}")
    print(f"1-core {best} FMA peak = 2 FMA pipes x {lanes} lanes x 2 flops x clock: {4 * lanes * ghz:.1f} GFLOP/s "
          f"at the nominal clock; measured (independent FMA chains, best of {len(peaks)}) {peak:.1f} GFLOP/s")
    print()
    print(hdr)
    print(sep)
    for row, per_thread in rows:
        print(row + f" {100 * per_thread / peak:.0f}% |")


if __name__ == "__main__":
    main()
