"""The bundled models ("zoo"): ONNX files installed inside the package as
pyengine/_zoo/<name>.onnx by the wheel, or found in the repository's models/
folder when running from a checkout."""
from __future__ import annotations

import os

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_zoo")
REPO_MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")


def search_dirs() -> list:
    return [PACKAGE_DIR, REPO_MODELS_DIR]


def path(name: str) -> str:
    """Path of the bundled model `name` (e.g. "digits_cnn"); FileNotFoundError
    naming the folders searched when it is not there."""
    filename = name if name.endswith(".onnx") else name + ".onnx"
    for folder in search_dirs():
        candidate = os.path.join(folder, filename)
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"bundled model {filename} not found (looked in {' and '.join(search_dirs())})")


def available() -> list:
    """Names of the bundled models found in either folder."""
    names = set()
    for folder in search_dirs():
        if os.path.isdir(folder):
            names.update(f[:-5] for f in os.listdir(folder) if f.endswith(".onnx"))
    return sorted(names)
