"""Running Python subprocesses that import the same pyengine as the tests.

`python -c`/`-m` put the working directory first on sys.path, so a child
started in the repository root would import the source tree (which holds no
compiled extension when the package was pip-installed). Children therefore
start in the folder that holds the imported package, which is also put on
PYTHONPATH."""
from __future__ import annotations

import os

import pyengine

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(pyengine.__file__)))


def child_env(extra: dict | None = None, drop=()) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in drop}
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + path if path else "")
    env.update(extra or {})
    return env
