"""Shared pieces of the `pyengine` commands: user errors, colour, tables, a
progress bar, model inputs (from .npy files or random), array summaries."""
from __future__ import annotations

import os
import sys
import time

import numpy as np


class CLIError(Exception):
    """A problem the user can fix (bad argument, missing file...): printed as one line."""


# ---- colour and tables ------------------------------------------------------

def colour_enabled(stream) -> bool:
    """Colour only for terminals, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Style:
    CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36"}

    def __init__(self, stream=None):
        self.enabled = colour_enabled(stream if stream is not None else sys.stdout)

    def __call__(self, text, *styles) -> str:
        if not self.enabled or not styles:
            return str(text)
        return "\033[" + ";".join(self.CODES[s] for s in styles) + "m" + str(text) + "\033[0m"

    def ok(self, text) -> str:
        return self(text, "green")

    def bad(self, text) -> str:
        return self(text, "red", "bold")

    def warn(self, text) -> str:
        return self(text, "yellow")

    def head(self, text) -> str:
        return self(text, "bold")


def _visible_len(text: str) -> int:
    out, i = 0, 0
    while i < len(text):
        if text[i] == "\033":
            i = text.index("m", i) + 1
            continue
        out += 1
        i += 1
    return out


def table(headers, rows, style: Style | None = None, right=None) -> str:
    """Aligned columns. `right`: column indexes aligned right (default: the
    numeric-looking ones). With colour the header is bold and underlined by a rule."""
    style = style or Style(None)
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    ncol = len(headers)
    widths = [max(_visible_len(r[i]) for r in cells) for i in range(ncol)]
    if right is None:
        right = {i for i in range(ncol)
                 if rows and all(_looks_numeric(str(r[i])) for r in rows)}

    def fmt(row):
        parts = []
        for i, c in enumerate(row):
            pad = " " * (widths[i] - _visible_len(c))
            parts.append(pad + c if i in right else c + pad)
        return "  ".join(parts).rstrip()

    lines = [style.head(fmt(cells[0]))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(fmt(r) for r in cells[1:])
    return "\n".join(lines)


def _looks_numeric(text: str) -> bool:
    t = text.strip()
    if t in ("-", "?"):
        return True
    if t.endswith(("x", "%")) and len(t) > 1:
        t = t[:-1]
    try:
        float(t.replace(",", "").split()[0])
        return True
    except (ValueError, IndexError):
        return False


def human(n: float, unit: str = "") -> str:
    """1234567 -> '1.23 M'."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:.0f} {unit}".rstrip() if float(n).is_integer() else f"{n:.3g} {unit}".rstrip()


class ProgressBar:
    """A one-line bar on stderr, redrawn in place; silent when stderr is not a terminal."""

    def __init__(self, total: int, label: str = "", stream=None, enabled=None, width: int = 30):
        self.total, self.label, self.width = max(int(total), 1), label, width
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.done = 0
        self._last = 0.0

    def update(self, n: int = 1, label: str | None = None) -> None:
        self.done = min(self.done + n, self.total)
        if label is not None:
            self.label = label
        now = time.perf_counter()
        if self.enabled and (now - self._last > 0.05 or self.done == self.total):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        pct = 100 * self.done / self.total
        self.stream.write(f"\r[{bar}] {pct:5.1f}% {self.label}"[:120].ljust(80))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 80 + "\r")
            self.stream.flush()


# ---- models and inputs ------------------------------------------------------

def load_onnx(path: str):
    """The checked, shape-inferred model; user-readable errors for bad paths."""
    from ..onnx_import.loader import load_model
    if str(path).endswith(".npz"):
        raise CLIError(f"{path} is a NumPy archive, not an ONNX model")
    return load_model(path)


def input_specs(model) -> list:
    """(name, numpy dtype, shape with str/None for unknown dims) of each runtime input."""
    from ..onnx_import.convert import value_info
    inits = {t.name for t in model.graph.initializer}
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        info = value_info(vi)
        if info.dtype is None:
            raise CLIError(f"input '{vi.name}' has no tensor element type pyengine can create")
        specs.append((vi.name, np.dtype(info.dtype), info.shape))
    return specs


def parse_assignments(items, what: str) -> dict:
    """['a=1', 'b=x.npy'] -> {'a': '1', 'b': 'x.npy'}."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise CLIError(f"{what} must look like NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def parse_dims(items) -> dict:
    dims = {}
    for name, value in parse_assignments(items, "--dim").items():
        try:
            dims[name] = int(value)
        except ValueError:
            raise CLIError(f"--dim {name}={value}: the value must be an integer") from None
        if dims[name] < 0:
            raise CLIError(f"--dim {name}={value}: the value must not be negative")
    return dims


def parse_int_list(text: str, what: str) -> list:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"{what} takes comma-separated integers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise CLIError(f"{what} takes positive integers, got {text!r}")
    return values


def concrete_shape(name, shape, dims: dict, batch=None) -> tuple:
    """Replaces symbolic dims by --dim values (default 1); `batch` sets a symbolic dim 0."""
    if shape is None:
        raise CLIError(f"input '{name}' has an unknown rank; give it with --input {name}=FILE.npy")
    out = []
    for i, d in enumerate(shape):
        if isinstance(d, int) and d > 0:
            if i == 0 and batch is not None and d != batch:
                raise CLIError(f"input '{name}' has a fixed batch size {d} (shape {list(shape)}); "
                               f"cannot run batch {batch}")
            out.append(d)
        elif i == 0 and batch is not None:
            out.append(batch)
        elif isinstance(d, str) and d in dims:
            out.append(dims[d])
        else:
            out.append(1)
    return tuple(out)


def random_array(dtype, shape, rng) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 4, size=shape).astype(dtype)  # small: safe as indices too
    return rng.standard_normal(shape).astype(dtype)


def random_inputs(specs, dims: dict, seed: int = 0, batch=None) -> dict:
    rng = np.random.default_rng(seed)
    return {name: random_array(dtype, concrete_shape(name, shape, dims, batch), rng)
            for name, dtype, shape in specs}


def load_input_files(specs, items) -> dict:
    """--input NAME=FILE.npy (or a FILE.npz holding arrays named as the inputs)."""
    names = [s[0] for s in specs]
    feeds = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = "", item
        if not os.path.isfile(path):
            raise CLIError(f"input file not found: {path}")
        try:
            data = np.load(path, allow_pickle=False)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
            raise CLIError(f"cannot read {path} as a NumPy file: {e}") from None
        if isinstance(data, np.lib.npyio.NpzFile):
            arrays = {k: data[k] for k in data.files}
            if name:
                if name not in arrays:
                    raise CLIError(f"{path} has no array named '{name}' (it has {sorted(arrays)})")
                arrays = {name: arrays[name]}
            feeds.update(arrays)
        else:
            if not name:
                if len(names) != 1:
                    raise CLIError(f"--input {item}: say which input it is (NAME=FILE.npy); inputs: {names}")
                name = names[0]
            feeds[name] = data
    unknown = [k for k in feeds if k not in names]
    if unknown:
        raise CLIError(f"unknown input name(s) {unknown}; the model's inputs are {names}")
    return feeds


def summary_row(name, arr, n_first: int = 4) -> list:
    arr = np.asarray(arr)
    if arr.size == 0:
        stats = ["-", "-", "-"]
    elif arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number):
        a = arr.astype(np.float64)
        stats = [f"{a.min():.6g}", f"{a.max():.6g}", f"{a.mean():.6g}"]
    else:
        stats = ["-", "-", "-"]
    flat = arr.reshape(-1)[:n_first]
    first = " ".join(f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v) for v in flat.tolist())
    if arr.size > n_first:
        first += " ..."
    return [name, "x".join(map(str, arr.shape)) or "scalar", str(arr.dtype)] + stats + [first]


SUMMARY_HEADERS = ["output", "shape", "dtype", "min", "max", "mean", "first values"]


def ort_module():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def require_ort(what: str):
    ort = ort_module()
    if ort is None:
        raise CLIError(f"{what} needs onnxruntime: pip install onnxruntime")
    return ort


def providers_for(device: str) -> list:
    if device == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def pyengine_session(model_or_path, threads: int = 0, device: str = "cpu", level=None, profile: bool = False):
    import os
    import tempfile

    import pyengine
    so = pyengine.SessionOptions()
    so.intra_op_num_threads = int(threads or 0)
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tempfile.gettempdir(), f"pyengine_profile_{os.getpid()}")
    if level is not None:
        so.graph_optimization_level = level
    return pyengine.InferenceSession(model_or_path, so, providers=providers_for(device),
                                     strict=(device == "cuda"))


def ort_session(model_or_path, threads: int = 0, device: str = "cpu", disable_opt: bool = False):
    ort = require_ort("comparing with onnxruntime")
    from ..runtime import gpu
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads or 0)
    so.log_severity_level = 3
    if disable_opt:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    providers = providers_for(device)
    if device == "cuda":
        if gpu.fake_cuda():
            providers = ["CPUExecutionProvider"]
        elif "CUDAExecutionProvider" not in ort.get_available_providers():
            raise CLIError("onnxruntime has no CUDAExecutionProvider here (pip install 'pyengine[gpu]')")
    source = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else model_or_path
    return ort.InferenceSession(source, so, providers=providers)
