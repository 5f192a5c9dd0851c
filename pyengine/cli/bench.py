"""`pyengine bench MODEL`: latency and throughput, beside onnxruntime."""
from __future__ import annotations

import time

import numpy as np

from ._common import (CLIError, ProgressBar, Style, input_specs, load_onnx, ort_module, ort_session,
                      parse_dims, parse_int_list, pyengine_session, random_inputs, table)


def register(sub):
    from . import add_command
    p = add_command(sub, "bench", "measure latency and throughput (beside onnxruntime)",
                    "Times the model for every combination of --threads and --batch (the batch\n"
                    "replaces a symbolic first input dimension). pyengine and the --vs engine\n"
                    "run interleaved, one call each in turn, after a warm-up, so both see the\n"
                    "same machine state. Prints median and p90 latency, throughput\n"
                    "(samples/s) and the ratio onnxruntime/pyengine of median latencies (>1:\n"
                    "pyengine is faster). A progress bar goes to stderr on a terminal.",
                    "  pyengine bench model.onnx --threads 1,2 --batch 1,16\n"
                    "  pyengine bench model.onnx --vs none --runs 200 --dim seq=128")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--threads", default="1", metavar="N[,N...]", help="thread counts (default 1)")
    p.add_argument("--batch", metavar="N[,N...]",
                   help="batch sizes (default: the declared one, a symbolic batch dim being 1)")
    p.add_argument("--vs", choices=("onnxruntime", "none"), default="onnxruntime",
                   help="engine to compare with (default onnxruntime when installed)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="cuda delegates pyengine to onnxruntime-gpu (pip install 'pyengine[gpu]')")
    p.add_argument("--runs", type=int, default=50, help="timed runs per engine and setting (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    p.add_argument("--dim", action="append", metavar="NAME=VALUE",
                   help="value of another symbolic dimension (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def stats(times: list, batch: int) -> dict:
    t = np.asarray(times)
    median = float(np.median(t))
    return {"median": median, "p90": float(np.percentile(t, 90)), "throughput": batch / median}


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _declared_batch(feeds) -> int:
    """Samples per run without --batch: dim 0 of the first input of rank >= 2 (else 1)."""
    for a in feeds.values():
        if a.ndim >= 2:
            return max(int(a.shape[0]), 1)
    return 1


def run(args) -> int:
    style = Style()
    threads = parse_int_list(args.threads, "--threads")
    batches = parse_int_list(args.batch, "--batch") if args.batch else [None]
    if args.runs < 1 or args.warmup < 0:
        raise CLIError("--runs must be at least 1 and --warmup at least 0")
    model = load_onnx(args.model)
    specs = input_specs(model)
    dims = parse_dims(args.dim)
    vs = args.vs if args.vs != "none" else None
    if vs and ort_module() is None:
        print(style.warn("onnxruntime is not installed: timing pyengine alone"))
        vs = None
    engines = ["pyengine"] + ([vs] if vs else [])
    configs = [(t, b) for t in threads for b in batches]
    bar = ProgressBar(len(configs) * (args.runs + args.warmup) * len(engines), "",
                      enabled=False if args.no_progress else None)
    results = []
    try:
        for t, b in configs:
            feeds = random_inputs(specs, dims, args.seed, batch=b)
            sessions = {"pyengine": pyengine_session(model, t, args.device)}
            if vs:
                sessions[vs] = ort_session(model, t, args.device)
            times = {e: [] for e in engines}
            for i in range(args.warmup + args.runs):
                for e in engines:  # interleaved: one call per engine in turn
                    start = time.perf_counter()
                    sessions[e].run(None, feeds)
                    if i >= args.warmup:
                        times[e].append(time.perf_counter() - start)
                    bar.update(1, f"threads {t}" + (f" batch {b}" if b else ""))
            n = b if b is not None else _declared_batch(feeds)
            results.append((t, n, {e: stats(times[e], n) for e in engines}))
    finally:
        bar.close()

    headers = ["threads", "batch"]
    for e in engines:
        headers += [f"{e} median ms", "p90 ms", "samples/s"]
    if vs:
        headers.append(f"{vs}/pyengine")
    rows = []
    for t, b, res in results:
        row = [t, b]
        for e in engines:
            r = res[e]
            row += [f"{r['median'] * 1e3:.4g}", f"{r['p90'] * 1e3:.4g}", _rate(r['throughput'])]
        if vs:
            ratio = res[vs]["median"] / res["pyengine"]["median"]
            text = f"{ratio:.2f}x"
            row.append(style.ok(text) if ratio >= 1 else style.warn(text))
        rows.append(row)
    device = "CUDA (delegated to onnxruntime)" if args.device == "cuda" else "CPU"
    print(f"{args.model}: {args.runs} timed runs after {args.warmup} warm-up, on {device}")
    print(table(headers, rows, style, right=set(range(len(headers)))))
    if vs:
        print(f"{vs}/pyengine > 1 means pyengine is faster (ratio of median latencies)")
    return 0
