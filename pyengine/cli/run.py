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
                    "  pyengine run model.onnx --random --dim batch=8")
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
    model = load_onnx(args.model)
    feeds = make_feeds(model, args)
    sess = pyengine_session(model, args.threads, args.device)
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
    return 0
