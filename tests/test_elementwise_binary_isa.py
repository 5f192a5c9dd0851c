"""Float Add/Sub/Mul/Div through every ISA's vector kernels (AVX-512: x4
unrolled, masked tail; AVX2: x2 unrolled, scalar tail): lengths around
every vector and unroll boundary, vector-vector and both scalar-broadcast
forms (a op s, s op a), row/column broadcasting, size-1 and empty dims,
in-place-looking shapes, 1 and 2 threads. Lane-wise IEEE ops: compared exactly
(up to division rounding) with onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from oracle import assert_matches_ort, make_model

OPS = ["Add", "Sub", "Mul", "Div"]
LENGTHS = list(range(1, 18)) + [31, 33, 63, 64, 65, 129]


def binary(op, a, b):
    nodes = [helper.make_node(op, ["a", "b"], ["y"])]
    return make_model(nodes, {"a": a, "b": b}, ["y"])


def values(rng, shape):
    v = rng.standard_normal(shape).astype(np.float32)
    return np.where(np.abs(v) < 0.05, 0.5, v).astype(np.float32)  # no near-zero divisors


@pytest.mark.parametrize("op", OPS)
def test_vector_vector_lengths(isa, rng, op):
    for n in LENGTHS:
        a, b = values(rng, (n,)), values(rng, (n,))
        assert_matches_ort(binary(op, a, b), {"a": a, "b": b}, rtol=1e-6, atol=0)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("scalar_first", [False, True])
def test_scalar_broadcast_lengths(isa, rng, op, scalar_first):
    for n in LENGTHS:
        a, s = values(rng, (2, n)), values(rng, (1,))
        x, y = (s, a) if scalar_first else (a, s)
        assert_matches_ort(binary(op, x, y), {"a": x, "b": y}, rtol=1e-6, atol=0)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shapes", [((3, 17), (17,)), ((5, 33), (5, 1)), ((1, 65), (4, 1)), ((2, 3, 19), (3, 1)),
                                    ((0, 9), (9,)), ((4, 0), (1, 0)), ((7, 1, 23), (1, 6, 23)), ((), (31,)),
                                    ((64, 50), (64, 50)), ((2, 24, 56, 56), (2, 24, 56, 56))])
@pytest.mark.parametrize("threads", [1, 2])
def test_broadcasting(isa, rng, op, shapes, threads):
    a, b = values(rng, shapes[0]), values(rng, shapes[1])
    assert_matches_ort(binary(op, a, b), {"a": a, "b": b}, rtol=1e-6, atol=0, threads=threads)
