"""`pyengine run MODEL`: run a model once and summarize (or save) its outputs."""
from __future__ import annotations

import time

import numpy as np

from ._common import (SUMMARY_HEADERS, CLIError, Style, input_specs, load_input_files, load_onnx,
                      parse_dims, pyengine_session, random_inputs, summary_row, table)


def register(sub):
    from . import add_command
    p = add_command(sub, "run", "run a model on given or random inputs",
                    "Runs the model once with pyengine and prints, for each output, its shape,\n"
                    "dtype, min/max/mean and first values. Inputs come from .npy files\n"
                    "(--input NAME=FILE.npy, or one .npz holding arrays named as the inputs) or\n"
                    "are random (--random) with the declared shapes, symbolic dims set by --dim\n"
                    "(default 1).",
                    "  pyengine run model.onnx --input x=x.npy --output out.npz\n"
                    "  pyengine run model.onnx --random --dim batch=8\n"
                    "  pyengine run model.onnx --random --profile 50 --profile-file trace.json")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--input", "-i", action="append", metavar="NAME=FILE.npy",
                   help="input array from a .npy file (repeatable); a .npz gives several by name")
    p.add_argument("--random", action="store_true",
                   help="random values for inputs not given with --input")
    p.add_argument("--dim", action="append", metavar="NAME=VALUE",
                   help="value of a symbolic dimension for --random (repeatable; default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of --random (default 0)")
    p.add_argument("--output", "-o", metavar="FILE.npz", help="save all outputs, by name, to this file")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (default: physical cores)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda delegates to onnxruntime-gpu (pip install 'pyengine[gpu]')")
    p.add_argument("--profile", type=int, metavar="RUNS", default=0,
                   help="then time RUNS more runs node by node and print where the time goes")
    p.add_argument("--profile-file", metavar="FILE.json",
                   help="with --profile: keep the trace (Chrome trace format, as onnxruntime writes)")
    p.set_defaults(func=run)


def make_feeds(model, args) -> dict:
    specs = input_specs(model)
    feeds = load_input_files(specs, args.input)
    missing = [s for s in specs if s[0] not in feeds]
    if missing and not args.random:
        names = [s[0] for s in missing]
        raise CLIError(f"missing input(s) {names}: give --input {names[0]}=FILE.npy or use --random")
    feeds.update(random_inputs(missing, parse_dims(args.dim), args.seed))
    return feeds


def run(args) -> int:
    style = Style()
    if args.profile < 0:
        raise CLIError("--profile must be a number of runs (>= 1)")
    if args.profile and args.device != "cpu":
        raise CLIError("--profile times pyengine's own CPU kernels: use it without --device cuda")
    if args.profile_file and not args.profile:
        raise CLIError("--profile-file needs --profile RUNS")
    model = load_onnx(args.model)
    feeds = make_feeds(model, args)
    sess = pyengine_session(model, args.threads, args.device, profile=bool(args.profile))
    start = time.perf_counter()
    outs = sess.run(None, feeds)
    elapsed = time.perf_counter() - start
    names = [o.name for o in sess.get_outputs()]
    print(table(["input"] + SUMMARY_HEADERS[1:], [summary_row(n, a) for n, a in feeds.items()], style))
    print()
    print(table(SUMMARY_HEADERS, [summary_row(n, a) for n, a in zip(names, outs)], style))
    print(f"\nran in {elapsed * 1e3:.3f} ms on {sess.get_providers()[0]} (first run, includes planning)")
    if args.output:
        np.savez(args.output, **dict(zip(names, outs)))
        print(f"saved {len(outs)} output(s) to {args.output}")
    if args.profile:
        print_profile(sess, feeds, args.profile, args.profile_file, style)
    return 0


def print_profile(sess, feeds: dict, runs: int, keep: str | None, style) -> None:
    """Times `runs` more runs node by node; prints the time per operator type
    and the slowest nodes (with the implementation each one chose)."""
    import os
    import shutil

    from ..runtime import profiling
    for _ in range(runs):
        sess.run(None, feeds)
    path = sess.end_profiling()
    events = profiling.drop_first_runs(profiling.load(path), 1)  # the run above, before profiling mattered
    if keep:
        shutil.move(path, keep)
    else:
        os.remove(path)
    s = profiling.summarize(events)
    per_run = s["run_us"] / max(s["runs"], 1)
    print(f"\nprofile of {s['runs']} runs: {per_run / 1e3:.3f} ms per run")
    rows = [[op, calls // s["runs"], f"{us / s['runs'] / 1e3:.3f}", f"{100 * us / max(s['run_us'], 1e-9):.1f}"]
            for op, us, calls in s["ops"]]
    print(table(["op", "nodes", "ms per run", "% of run"], rows, style))
    paths = {e["name"].removesuffix("_kernel_time"): e["args"].get("path", "") for e in events if e["cat"] == "Node"}
    rows = [[name, op, paths.get(name, ""), f"{us / s['runs'] / 1e3:.3f}"] for name, op, us, _ in s["nodes"][:10]]
    print()
    print(table(["slowest nodes", "op", "path", "ms per run"], rows, style))
    if keep:
        print(f"trace saved to {keep}")
