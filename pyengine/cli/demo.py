"""`pyengine demo`: the bundled digits CNN classifies the held-out digits."""
from __future__ import annotations

import time

import numpy as np

from ._common import CLIError, Style, load_onnx, ort_module, ort_session, pyengine_session, table

RAMP = " .:-=+*#%@"


def register(sub):
    from . import add_command
    p = add_command(sub, "demo", "classify handwritten digits with the bundled model",
                    "Loads the bundled digits CNN (pyengine/zoo/digits_cnn.onnx, or models/ in a\n"
                    "checkout), classifies the held-out test split of the 8x8 digits data set,\n"
                    "prints the accuracy, draws a few predictions as text and times the model\n"
                    "beside onnxruntime when it is installed.",
                    "  pyengine demo\n  pyengine demo --show 10 --runs 500")
    p.add_argument("--model", help="another digits classifier (input N x 1 x 8 x 8 or N x 64, 10 scores)")
    p.add_argument("--show", type=int, default=6, help="how many predictions to draw (default 6)")
    p.add_argument("--runs", type=int, default=100, help="timed runs for the latency (default 100)")
    p.add_argument("--threads", type=int, default=1, help="threads (default 1)")
    p.set_defaults(func=run)


def load_test_digits():
    """(X (N,1,8,8) float32 in [0,1], y, where the data came from)."""
    try:
        from ..train.data import load_digits
    except ImportError:
        load_digits = None
    if load_digits is not None:
        X, y = load_digits("test")[:2]
        return np.asarray(X, np.float32), np.asarray(y), "pyengine.train.data.load_digits('test')"
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise CLIError("the demo data needs scikit-learn: pip install 'pyengine[train]'") from None
    d = sk_digits()
    start = int(len(d.target) * 0.8)
    X = (d.images[start:] / 16.0).astype(np.float32)[:, None]
    return X, d.target[start:], "scikit-learn digits, last 20% (pyengine.train.data is not available)"


def draw(images, captions, style) -> str:
    """8x8 images side by side, each pixel two characters wide, captions below."""
    blocks = []
    for img in images:
        img = np.clip(np.asarray(img, np.float64).reshape(8, 8), 0, 1)
        blocks.append(["".join(RAMP[min(int(v * len(RAMP)), len(RAMP) - 1)] * 2 for v in row) for row in img])
    lines = ["   ".join(f"|{b[r]}|" for b in blocks) for r in range(8)]
    lines.append("   ".join(c for c in captions))
    return "\n".join(lines)


def _caption(pred, true, style) -> str:
    text = f"{pred} ok" if pred == true else f"{pred} (is {true})"
    text = text.center(18)
    return style.ok(text) if pred == true else style.bad(text)


def _fit_input(X, shape):
    rank = len(shape) if shape is not None else 4
    if rank == 4:
        return X
    if rank == 3:
        return X.reshape(len(X), 8, 8)
    if rank == 2:
        return X.reshape(len(X), 64)
    raise CLIError(f"the model's input has rank {rank}; the demo needs N x 1 x 8 x 8 or N x 64")


def _median_ms(fn, runs) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def run(args) -> int:
    from .. import zoo
    style = Style()
    if args.model:
        path = args.model
    else:
        try:
            path = zoo.path("digits_cnn")
        except FileNotFoundError as e:
            raise CLIError(f"{e}; train it with `pyengine train digits_cnn` (needs a source checkout) "
                           f"or pass --model") from None
    model = load_onnx(path)
    X, y, source = load_test_digits()
    sess = pyengine_session(model, args.threads)
    inp = sess.get_inputs()[0]
    X = _fit_input(X, inp.shape)
    fixed_batch = inp.shape and isinstance(inp.shape[0], int) and inp.shape[0] > 0
    if fixed_batch and inp.shape[0] != len(X):
        b = inp.shape[0]
        scores = np.concatenate([sess.run(None, {inp.name: X[i:i + b]})[0] for i in range(0, len(X) - b + 1, b)])
        y = y[:len(scores)]
    else:
        scores = sess.run(None, {inp.name: X})[0]
    if scores.ndim != 2 or scores.shape[1] != 10:
        raise CLIError(f"the model's first output has shape {list(scores.shape)}; the demo needs N x 10 scores")
    pred = scores.argmax(axis=1)
    correct = int((pred == y).sum())
    print(f"{style.head('model')}     {path}")
    print(f"{style.head('data')}      {len(y)} held-out 8x8 digits from {source}")
    print(f"{style.head('accuracy')}  {100.0 * correct / len(y):.2f}% ({correct}/{len(y)})")

    if args.show > 0:
        wrong = [i for i in range(len(y)) if pred[i] != y[i]]
        picks = list(range(min(args.show, len(y))))
        if wrong and wrong[0] not in picks and len(picks) > 1:
            picks[-1] = wrong[0]  # show one mistake too
        for start in range(0, len(picks), 6):
            chunk = picks[start:start + 6]
            print()
            print(draw([X[i] for i in chunk], [_caption(int(pred[i]), int(y[i]), style) for i in chunk], style))

    if args.runs > 0:
        one = {inp.name: X[:1] if not fixed_batch else X[:inp.shape[0]]}
        ours = _median_ms(lambda: sess.run(None, one), args.runs)
        rows = [["pyengine", f"{ours:.4g}", "1.00x"]]
        if ort_module() is not None:
            ref = ort_session(model, args.threads)
            theirs = _median_ms(lambda: ref.run(None, one), args.runs)
            rows.append(["onnxruntime", f"{theirs:.4g}", f"{theirs / ours:.2f}x"])
        else:
            rows.append(["onnxruntime", "not installed", "-"])
        print()
        print(f"latency, batch {len(one[inp.name])}, median of {args.runs} runs, {args.threads} thread(s) "
              f"(relative: its time / pyengine's):")
        print(table(["engine", "ms", "relative"], rows, style, right={1, 2}))
    return 0
