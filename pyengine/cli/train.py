"""`pyengine train ARCH`: retrain a zoo model with its script models/train_<arch>.py."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

from ._common import CLIError


def register(sub):
    from . import add_command
    p = add_command(sub, "train", "retrain a bundled model (needs a source checkout)",
                    "Runs the training script models/train_ARCH.py of the repository with this\n"
                    "Python; arguments after ARCH go to the script (see its own --help). The\n"
                    "scripts are part of the source checkout, not of the installed wheel.",
                    "  pyengine train digits_cnn\n  pyengine train digits_cnn -- --epochs 5")
    p.add_argument("arch", help="model to train, e.g. digits_cnn")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments passed on to the training script")
    p.set_defaults(func=run)


#: Overrides the folder holding train_<arch>.py (default: the checkout's models/).
MODELS_DIR_ENV = "PYENGINE_MODELS_DIR"


def scripts_dir() -> str:
    from .. import zoo
    return os.environ.get(MODELS_DIR_ENV) or zoo.REPO_MODELS_DIR


def available() -> list:
    folder = scripts_dir()
    if not os.path.isdir(folder):
        return []
    return sorted(f[len("train_"):-3] for f in os.listdir(folder) if f.startswith("train_") and f.endswith(".py"))


def run(args) -> int:
    folder = scripts_dir()
    if not args.arch.replace("_", "").isalnum():
        raise CLIError(f"bad model name {args.arch!r} (letters, digits and _ only)")
    script = os.path.join(folder, f"train_{args.arch}.py")
    if not os.path.isfile(script):
        known = available()
        hint = f"; available: {', '.join(known)}" if known else \
            " (no training scripts found: they come with the source checkout, in models/)"
        raise CLIError(f"no training script for '{args.arch}' (looked for {script}){hint}")
    repo = os.path.dirname(os.path.abspath(folder))
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    print(f"running {script}", flush=True)
    extra = list(args.script_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return subprocess.call([sys.executable, script, *extra], cwd=repo, env=env)
