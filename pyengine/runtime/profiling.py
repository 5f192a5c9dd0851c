"""Per-node timing of a session (SessionOptions.enable_profiling).

The native plan records (node, start, duration) for every node of every run
while profiling is on; this module gathers those events, adds one
`model_run` event per run() and writes them as onnxruntime does: a JSON
list of Chrome trace events (open it in chrome://tracing or Perfetto, or
read it back with `load` and `summarize`).
"""
from __future__ import annotations

import datetime
import json
import os
import time


class Profiler:
    """Collects the events of one session between its creation and end_profiling()."""

    def __init__(self, prefix: str):
        self.prefix = prefix or "pyengine_profile"
        self.start_ns = time.monotonic_ns()  # the native clock is steady_clock: the same on Linux
        self.start_wall_ns = time.time_ns()
        self.events: list = []

    def run_event(self, start_ns: int, end_ns: int) -> None:
        self._add("Session", "model_run", start_ns, end_ns - start_ns, {})

    def collect(self, plan) -> None:
        """Moves the node events a native plan recorded into this profile.
        Nodes whose op has several implementations name the one chosen
        (args "path")."""
        paths = {name: path for name, _, path in plan.node_paths() if path}
        for name, op_type, start, duration in plan.take_profile():
            args = {"op_name": op_type, "provider": "CPUExecutionProvider"}
            if name in paths:
                args["path"] = paths[name]
            self._add("Node", f"{name}_kernel_time", start, duration, args)

    def _add(self, cat: str, name: str, start_ns: int, duration_ns: int, args: dict) -> None:
        # Microseconds as the trace format wants, kept fractional: many nodes take less than one.
        self.events.append({"cat": cat, "pid": os.getpid(), "tid": 0, "dur": round(duration_ns / 1000, 3),
                            "ts": round(max(start_ns - self.start_ns, 0) / 1000, 3), "ph": "X", "name": name,
                            "args": args})

    def write(self) -> str:
        """Writes the events (ordered by start) to `<prefix>_<date>_<time>.json`; returns the path."""
        stamp = datetime.datetime.fromtimestamp(self.start_wall_ns / 1e9).strftime("%Y-%m-%d_%H-%M-%S")
        path = f"{self.prefix}_{stamp}.json"
        n = 1
        while os.path.exists(path):  # two sessions started in the same second
            path = f"{self.prefix}_{stamp}_{n}.json"
            n += 1
        events = sorted(self.events, key=lambda e: e["ts"])
        with open(path, "w") as f:
            json.dump(events, f, indent=0)
        return path


def load(path: str) -> list:
    with open(path) as f:
        return json.load(f)


def drop_first_runs(events: list, n: int) -> list:
    """The events from the (n+1)-th model_run on, by start time (warm-up runs
    out: cold caches, first touch of the arena)."""
    events = sorted(events, key=lambda e: e["ts"])
    starts = [e["ts"] for e in events if e.get("name") == "model_run"]
    if n <= 0 or len(starts) <= n:
        return events
    return [e for e in events if e["ts"] >= starts[n]]


def summarize(events: list) -> dict:
    """{"runs": n, "run_us": total, "nodes": [(name, op, total us, calls)],
    "ops": [(op, total us, calls)]}, nodes and ops by decreasing time."""
    nodes: dict = {}
    ops: dict = {}
    runs = run_us = 0
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            runs += 1
            run_us += e["dur"]
        elif e.get("cat") == "Node":
            name = e["name"].removesuffix("_kernel_time")
            op = e.get("args", {}).get("op_name", "?")
            t = nodes.setdefault(name, [op, 0, 0])
            t[1] += e["dur"]
            t[2] += 1
            o = ops.setdefault(op, [0, 0])
            o[0] += e["dur"]
            o[1] += 1
    return {"runs": runs, "run_us": run_us,
            "nodes": sorted(((n, *v) for n, v in nodes.items()), key=lambda r: -r[2]),
            "ops": sorted(((o, *v) for o, v in ops.items()), key=lambda r: -r[1])}
