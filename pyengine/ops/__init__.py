"""Operator definitions, one module per family; see registry.py."""
import importlib

FAMILIES = ("elementwise", "activation", "linalg", "conv", "pool", "normalization", "reduce",
            "tensor", "shape", "misc", "recurrent", "attention")


def load_all():
    for family in FAMILIES:
        importlib.import_module(f"{__name__}.{family}")
