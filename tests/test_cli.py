"""The `pyengine` command, run for real as `python -m pyengine ...` (with the
same pyengine the tests import, see subproc.py): output and exit status of
every command, error cases and --help."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

import pyengine

from oracle import make_model
from subproc import PACKAGE_PARENT, child_env
from test_session_api import mlp_model, reference_mlp

COMMANDS = ["demo", "info", "run", "check", "bench", "convert", "train"]


def _start(args, env=None):
    full_env = child_env(env, drop=("NO_COLOR", "FORCE_COLOR", "PYENGINE_DEBUG"))
    return subprocess.Popen([sys.executable, "-m", "pyengine", *map(str, args)], cwd=PACKAGE_PARENT, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(popen, args, check_rc=None):
    out, err = popen.communicate(timeout=120)
    proc = subprocess.CompletedProcess(args, popen.returncode, out, err)
    if check_rc is not None:
        assert proc.returncode == check_rc, f"rc {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def cli(*args, env=None, check_rc=None):
    return _finish(_start(args, env), args, check_rc)


def cli_many(arg_lists, env=None) -> list:
    """Runs several commands at once (each is its own process) and returns them in order."""
    started = [(_start(a, env), a) for a in arg_lists]
    return [_finish(p, a) for p, a in started]


def assert_user_error(proc, *fragments):
    """One line `pyengine: error: ...`, no traceback, non-zero status."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("pyengine: error: "), proc.stderr
    for f in fragments:
        assert f in lines[-1], lines[-1]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_models")
    paths = {"mlp": d / "mlp.onnx", "dir": d}
    onnx.save(mlp_model(), str(paths["mlp"]))

    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 4)).astype(np.float32)
    unsupported = make_model([helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Shrink", ["h"], ["y"])],
                             {"x": np.zeros((2, 8), np.float32)}, ["y"], {"w": w})
    paths["unsupported"] = d / "unsupported.onnx"
    onnx.save(unsupported, str(paths["unsupported"]))

    # Gemm -> BatchNormalization -> Identity -> Relu, with a bias computed from constants (Add): all
    # of it folds away into one Gemm + Relu.
    w1 = rng.standard_normal((8, 6)).astype(np.float32)
    b_half = rng.standard_normal(6).astype(np.float32)
    bn = [rng.random(6).astype(np.float32) + 0.5, rng.standard_normal(6).astype(np.float32),
          rng.standard_normal(6).astype(np.float32), rng.random(6).astype(np.float32) + 0.5]
    nodes = [helper.make_node("Add", ["b_half", "b_half"], ["b"]),
             helper.make_node("Gemm", ["x", "w1", "b"], ["g"]),
             helper.make_node("BatchNormalization", ["g", "s", "t", "m", "v"], ["n"]),
             helper.make_node("Identity", ["n"], ["i"]),
             helper.make_node("Relu", ["i"], ["y"])]
    foldable = make_model(nodes, {"x": np.zeros((1, 8), np.float32)}, ["y"],
                          {"w1": w1, "b_half": b_half, "s": bn[0], "t": bn[1], "m": bn[2], "v": bn[3]},
                          input_shapes={"x": ["batch", 8]})
    paths["foldable"] = d / "foldable.onnx"
    onnx.save(foldable, str(paths["foldable"]))

    # A linear digits classifier (least squares on the first 80%): input N x 64, 10 scores.
    from sklearn.datasets import load_digits
    digits = load_digits()
    n_train = int(len(digits.target) * 0.8)
    X = np.hstack([digits.data[:n_train] / 16.0, np.ones((n_train, 1))])
    Y = np.eye(10)[digits.target[:n_train]]
    coef = np.linalg.lstsq(X, Y, rcond=None)[0].astype(np.float32)
    digits_model = make_model([helper.make_node("Gemm", ["x", "w", "b"], ["scores"])],
                              {"x": np.zeros((1, 64), np.float32)}, ["scores"],
                              {"w": coef[:64], "b": coef[64]}, input_shapes={"x": ["N", 64]})
    paths["digits"] = d / "digits_linear.onnx"
    onnx.save(digits_model, str(paths["digits"]))

    paths["x"] = d / "x.npy"
    np.save(paths["x"], rng.standard_normal((3, 8)).astype(np.float32))
    paths["x_int"] = d / "x_int.npy"
    np.save(paths["x_int"], np.ones((3, 8), np.int64))
    paths["x_bad_shape"] = d / "x_bad.npy"
    np.save(paths["x_bad_shape"], np.ones((3, 5), np.float32))
    return paths


# ---- help ---------------------------------------------------------------------

def test_top_level_help_lists_every_command():
    proc = cli("--help", check_rc=0)
    for c in COMMANDS:
        assert f"    {c} " in proc.stdout
    assert "examples:" in proc.stdout
    assert cli(check_rc=2).stdout.startswith("usage: pyengine")  # no command: help, status 2
    assert cli("--version", check_rc=0).stdout.startswith("pyengine ")


def test_command_help_has_options_and_example():
    for command, proc in zip(COMMANDS, cli_many([[c, "--help"] for c in COMMANDS])):
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"usage: pyengine {command}")
        assert "options:" in proc.stdout and "example:" in proc.stdout
        assert f"pyengine {command}" in proc.stdout.split("example:")[1]


# ---- info ---------------------------------------------------------------------

def test_info(models):
    out = cli("info", models["mlp"], check_rc=0).stdout
    assert "opset ai.onnx 17" in out
    assert "input   x     float32  [N, 8]" in out and "output  y     float32  [N, 4]" in out
    # Gemm 8->16 with bias: 2*8*16 + 16; MatMul 16->4: 2*16*4; Relu: 16 elements.
    assert "Gemm        1           272  yes" in out and "MatMul      1           128  yes" in out
    assert "parameters  208 (832 B)" in out
    assert "FLOPs       416 (400 in Conv/ConvTranspose/Gemm/MatMul) per sample" in out
    assert "supports every operator" in out
    # Symbolic dims given with --dim do not change per-sample FLOPs.
    assert "FLOPs       416" in cli("info", models["mlp"], "--dim", "N=4", check_rc=0).stdout


def test_info_lists_unsupported_operators(models):
    out = cli("info", models["unsupported"], check_rc=0).stdout
    assert "Shrink      1             4  no" in out and "does not support 1 operator(s)" in out
    assert "Shrink: not implemented" in out
    assert "MatMul      1            64  yes" in out  # fixed batch 2: per-sample FLOPs


def test_info_errors(models):
    assert_user_error(cli("info", models["dir"] / "missing.onnx"), "model file not found")
    assert_user_error(cli("info", models["x"]), "not a valid ONNX model")
    assert_user_error(cli("info", models["mlp"], "--dim", "N"), "--dim must look like NAME=VALUE")


# ---- run ----------------------------------------------------------------------

def test_run_with_input_file_and_output(models, tmp_path):
    out_file = tmp_path / "out.npz"
    proc = cli("run", models["mlp"], "--input", f"x={models['x']}", "--output", out_file, check_rc=0)
    assert "y       3x4    float32" in proc.stdout and f"saved 1 output(s) to {out_file}" in proc.stdout
    expected = reference_mlp(mlp_model(), np.load(models["x"]))
    np.testing.assert_allclose(np.load(out_file)["y"], expected, rtol=1e-5, atol=1e-5)
    assert f"{expected.min():.6g}" in proc.stdout


def test_run_random_with_dims(models, tmp_path):
    out_file = tmp_path / "out.npz"
    proc = cli("run", models["mlp"], "--random", "--dim", "N=5", "-o", out_file, check_rc=0)
    assert "x      5x8    float32" in proc.stdout
    assert np.load(out_file)["y"].shape == (5, 4)


def test_run_profile(models, tmp_path):
    """--profile: per-op and slowest-node tables of the extra runs; the trace is kept on request."""
    trace = tmp_path / "t.json"
    proc = cli("run", models["mlp"], "--random", "--profile", "4", "--profile-file", trace, check_rc=0)
    assert "profile of 4 runs:" in proc.stdout and "ms per run" in proc.stdout
    assert "slowest nodes" in proc.stdout and f"trace saved to {trace}" in proc.stdout
    events = json.loads(trace.read_text())
    session_ops = {n.op_type for n in pyengine.InferenceSession(str(models["mlp"]))._graph.nodes}
    assert {e["args"]["op_name"] for e in events if e["cat"] == "Node"} == session_ops
    assert len([e for e in events if e["name"] == "model_run"]) == 5  # the first run and 4 profiled
    for op in session_ops:
        assert op in proc.stdout


def test_run_npz_inputs_on_delegated_cuda(models, tmp_path):
    """An .npz of named inputs, and --device cuda through the test hook (onnxruntime CPU stands in)."""
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=np.load(models["x"]))
    proc = cli("run", models["mlp"], "-i", inputs, "--device", "cuda", env={"PYENGINE_TEST_FAKE_CUDA": "1"},
               check_rc=0)
    expected = reference_mlp(mlp_model(), np.load(models["x"]))
    assert "y       3x4    float32" in proc.stdout and f"{expected.max():.6g}" in proc.stdout


def test_run_user_errors(models):
    m, x = models["mlp"], models["x"]
    cases = {
        "missing_input": ([m], "missing input(s) ['x']"),
        "wrong_name": ([m, "-i", f"z={x}"], "unknown input name(s) ['z']"),
        "wrong_dtype": ([m, "-i", f"x={models['x_int']}"], "expected element type tensor(float)"),
        "wrong_shape": ([m, "-i", f"x={models['x_bad_shape']}"], "dimension 1 must be 8"),
        "no_file": ([m, "-i", "x=/nonexistent.npy"], "input file not found"),
        "not_npy": ([m, "-i", f"x={m}"], "cannot read"),
        "unsupported": ([models["unsupported"], "--random"], "does not support: Shrink"),
        "bad_dim": ([m, "--random", "--dim", "N=two"], "must be an integer"),
        "profile_cuda": ([m, "--random", "--profile", "2", "--device", "cuda"], "use it without --device cuda"),
        "profile_file_alone": ([m, "--random", "--profile-file", "t.json"], "--profile-file needs --profile"),
        "profile_negative": ([m, "--random", "--profile", "-1"], "--profile must be a number of runs"),
    }
    procs = cli_many([["run", *args] for args, _ in cases.values()])
    for (case, (_, fragment)), proc in zip(cases.items(), procs):
        assert_user_error(proc, fragment)


# ---- check --------------------------------------------------------------------

def test_check_matches(models):
    proc = cli("check", models["mlp"], "--dim", "N=4", check_rc=0)
    assert "outputs match" in proc.stdout and "x [4, 8]" in proc.stdout
    proc = cli("check", models["mlp"], "--per-node", "-i", f"x={models['x']}", check_rc=0)
    assert "Gemm" in proc.stdout and "Relu" in proc.stdout and "every node output matches" in proc.stdout


def test_check_finds_first_diverging_node(models, monkeypatch, capsys):
    """A broken Relu (simulated: its output and everything after it are off) is named as the culprit."""
    import pyengine
    from pyengine import cli as pcli
    real_run = pyengine.InferenceSession.run

    def broken_run(self, output_names, feed, run_options=None):
        outs = real_run(self, output_names, feed, run_options)
        names = output_names or [o.name for o in self.get_outputs()]
        return [o + 0.5 if n in ("r", "y") else o for n, o in zip(names, outs)]

    monkeypatch.setattr(pyengine.InferenceSession, "run", broken_run)
    rc = pcli.main(["check", str(models["mlp"])])
    out = capsys.readouterr().out
    assert rc == 1
    assert "MISMATCH" in out and "outputs differ" in out
    assert "first divergence: node '#1' (Relu) output 'r'" in out
    row_gemm = next(ln for ln in out.splitlines() if ln.startswith("0 ") and "Gemm" in ln)
    assert row_gemm.rstrip().endswith("ok")


def test_check_errors(models):
    assert_user_error(cli("check", models["unsupported"]), "Shrink")
    assert_user_error(cli("check", models["dir"] / "nope.onnx"), "not found")


# ---- bench --------------------------------------------------------------------

def test_bench_grid_beside_onnxruntime(models):
    proc = cli("bench", models["mlp"], "--threads", "1,2", "--batch", "1,3", "--runs", "3", "--warmup", "1",
               check_rc=0)
    lines = proc.stdout.splitlines()
    assert "pyengine median ms" in lines[1] and "onnxruntime median ms" in lines[1] and "onnxruntime/pyengine" in lines[1]
    rows = [ln.split() for ln in lines[3:7]]
    assert [(r[0], r[1]) for r in rows] == [("1", "1"), ("1", "3"), ("2", "1"), ("2", "3")]
    assert all(r[-1].endswith("x") and float(r[-1][:-1]) > 0 for r in rows)
    assert "\r[" not in proc.stderr  # no progress bar when stderr is not a terminal


def test_bench_alone_and_errors(models):
    proc = cli("bench", models["unsupported"].with_name("mlp.onnx"), "--vs", "none", "--runs", "2", check_rc=0)
    assert "onnxruntime" not in proc.stdout
    assert_user_error(cli("bench", models["mlp"], "--threads", "0"), "--threads takes positive integers")
    assert_user_error(cli("bench", models["unsupported"], "--batch", "3", "--vs", "none"), "fixed batch size 2")


def test_bench_cuda_delegation(models):
    proc = cli("bench", models["mlp"], "--device", "cuda", "--runs", "2", env={"PYENGINE_TEST_FAKE_CUDA": "1"},
               check_rc=0)
    assert "CUDA (delegated to onnxruntime)" in proc.stdout
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert_user_error(cli("bench", models["mlp"], "--device", "cuda", "--runs", "2"),
                          "CUDAExecutionProvider was requested")


def test_progress_bar():
    from pyengine.cli._common import ProgressBar
    stream = io.StringIO()
    bar = ProgressBar(4, "work", stream=stream, enabled=True)
    for _ in range(4):
        bar.update()
    assert "[" + "#" * 30 + "] 100.0% work" in stream.getvalue()
    silent = io.StringIO()
    ProgressBar(4, stream=silent).update(4)  # StringIO is no terminal: nothing drawn
    assert silent.getvalue() == ""


# ---- convert ------------------------------------------------------------------

def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_convert_optimizes_to_standard_ops(models, tmp_path):
    out = tmp_path / "opt.onnx"
    proc = cli("convert", models["foldable"], "-o", out, check_rc=0)
    assert "ok" in proc.stdout and "nodes 5 -> 2" in proc.stdout
    assert _ops(out) == ["Gemm", "Relu"]
    import onnxruntime
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    ref = onnxruntime.InferenceSession(str(models["foldable"])).run(None, {"x": x})[0]
    got = onnxruntime.InferenceSession(str(out)).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    assert [o.name for o in onnx.load(str(out)).graph.output] == ["y"]
    assert_user_error(cli("convert", models["foldable"], "-o", out), "exists; use --force")


def test_convert_fp16_and_opset(models, tmp_path):
    out = tmp_path / "half.onnx"
    proc = cli("convert", models["mlp"], "-o", out, "--fp16", "--opset", "18", check_rc=0)
    assert "3 float16 initializers" in proc.stdout
    m = onnx.load(str(out))
    assert {t.data_type for t in m.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert _ops(out).count("Cast") == 3
    assert [i.version for i in m.opset_import if i.domain in ("", "ai.onnx")] == [18]
    assert os.path.getsize(out) < os.path.getsize(models["mlp"])


def test_convert_errors(models, tmp_path):
    assert_user_error(cli("convert", tmp_path / "ckpt.npz", "-o", tmp_path / "o.onnx"), "checkpoint not found")
    assert_user_error(cli("convert", models["mlp"], "-o", tmp_path / "o.onnx", "--opset", "99"),
                      "cannot convert to opset 99")
    assert not (tmp_path / "o.onnx").exists()
    assert cli("convert", models["mlp"]).returncode == 2  # -o is required (argparse usage error)


# ---- demo and train -------------------------------------------------------------

def test_demo_with_a_digits_model(models):
    proc = cli("demo", "--model", models["digits"], "--runs", "5", "--show", "3", check_rc=0)
    out = proc.stdout
    acc = float(out.split("accuracy")[1].split("%")[0])
    assert acc > 85.0, out
    assert "held-out 8x8 digits" in out
    drawing = [ln for ln in out.splitlines() if ln.startswith("|")]
    assert len(drawing) == 8 and drawing[0].count("|") == 6 and any(c in out for c in "#%@")
    assert "latency, batch 1" in out and "onnxruntime" in out


def test_demo_uses_the_bundled_model():
    from pyengine import zoo
    proc = cli("demo", "--runs", "2", "--show", "1")
    try:
        zoo.path("digits_cnn")
    except FileNotFoundError:
        assert_user_error(proc, "digits_cnn.onnx not found", "pyengine train digits_cnn")
    else:
        assert proc.returncode == 0 and "accuracy" in proc.stdout


def test_zoo_path(tmp_path, monkeypatch):
    from pyengine import zoo
    pkg, repo = tmp_path / "pkg", tmp_path / "repo"
    pkg.mkdir()
    repo.mkdir()
    monkeypatch.setattr(zoo, "PACKAGE_DIR", str(pkg))
    monkeypatch.setattr(zoo, "REPO_MODELS_DIR", str(repo))
    with pytest.raises(FileNotFoundError, match="tiny.onnx not found"):
        zoo.path("tiny")
    (repo / "tiny.onnx").write_bytes(b"x")
    assert zoo.path("tiny") == str(repo / "tiny.onnx")
    (pkg / "tiny.onnx").write_bytes(b"x")  # the installed copy wins
    assert zoo.path("tiny") == str(pkg / "tiny.onnx") and zoo.available() == ["tiny"]


def test_train_runs_the_script(tmp_path):
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "train_tiny.py").write_text(
        "import os, sys\nimport pyengine\nprint('trained', sys.argv[1:], os.getcwd())\nsys.exit(3)\n")
    env = {"PYENGINE_MODELS_DIR": str(models_dir)}
    proc = cli("train", "tiny", "--epochs", "2", env=env)
    assert proc.returncode == 3, proc.stderr
    assert f"trained ['--epochs', '2'] {tmp_path}" in proc.stdout
    assert_user_error(cli("train", "other", env=env), "no training script for 'other'", "available: tiny")
    assert_user_error(cli("train", "../evil", env=env), "bad model name")


# ---- colour ---------------------------------------------------------------------

def test_colour_only_when_asked_and_allowed(models):
    plain = cli("info", models["mlp"], check_rc=0).stdout
    assert "\033[" not in plain  # piped: plain text
    coloured = cli("info", models["mlp"], env={"FORCE_COLOR": "1"}, check_rc=0).stdout
    assert "\033[32myes\033[0m" in coloured
    assert "\033[" not in cli("info", models["mlp"], env={"FORCE_COLOR": "1", "NO_COLOR": "1"}, check_rc=0).stdout


# ---- helpers, in process ----------------------------------------------------------

def test_flops_from_inferred_shapes():
    from pyengine.cli.info import node_flops
    rng = np.random.default_rng(0)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),           # 1x4x8x8
             helper.make_node("ConvTranspose", ["c", "wt"], ["d"], strides=[2, 2]),     # 1x2x17x17
             helper.make_node("Reshape", ["d", "shape"], ["r"]),                        # 17x34
             helper.make_node("MatMul", ["r", "m"], ["mm"]),                            # 17x5
             helper.make_node("Gemm", ["mm", "g"], ["y"], transA=1)]                     # 5x3
    model = make_model(nodes, {"x": f32(1, 3, 8, 8)}, ["y"],
                       {"w": f32(4, 3, 3, 3), "wt": f32(4, 2, 3, 3), "shape": np.array([17, 34], np.int64),
                        "m": f32(34, 5), "g": f32(17, 3)}, input_shapes={"x": ["N", 3, 8, 8]})
    flops = node_flops(model, {"N": 1})
    assert flops == [2 * 4 * 64 * 27, 2 * 4 * 64 * 2 * 9, 0, 2 * 17 * 5 * 34, 2 * 5 * 3 * 17]
    assert node_flops(model, {"N": 2})[0] == 2 * 2 * 4 * 64 * 27


def test_compare_reports_abs_rel_and_mismatch():
    from pyengine.cli.check import compare
    assert compare(np.array([1.0, 2.0]), np.array([1.0, 2.1]), 1e-4, 1e-5)[2] is False
    abs_err, rel_err, ok = compare(np.array([1.0, 2.0], np.float32), np.array([1.0, 2.5], np.float32), 1.0, 0)
    assert ok and abs_err == pytest.approx(0.5) and rel_err == pytest.approx(0.2)
    assert compare(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]), 0, 0)[2] is True
    assert compare(np.array([np.nan]), np.array([1.0]), 1, 1)[2] is False
    assert compare(np.zeros((2, 3)), np.zeros((3, 2)), 1, 1) == (float("inf"), float("inf"), False)
    assert compare(np.zeros(2, np.float64), np.zeros(2, np.float32), 1, 1)[2] is False  # dtype differs


def test_convert_old_ir_model(tmp_path):
    """IR version 3 (initializers listed as graph inputs too): still valid after optimizing and fp16."""
    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", "light_squeezenet.onnx")
    if not os.path.exists(path):
        pytest.skip("onnx's light model files are not installed")
    out = tmp_path / "sq.onnx"
    cli("convert", path, "-o", out, "--fp16", check_rc=0)
    m = onnx.load(str(out))
    assert m.ir_version < 4
    onnx.checker.check_model(m)
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in m.graph.initializer)


ARCH = """
from pyengine.train import Sequential, Linear, ReLU, seed

def build():
    seed(0)
    return Sequential(Linear(4, 6), ReLU(), Linear(6, 3))

def wider():
    return Sequential(Linear(4, 7), ReLU(), Linear(7, 3))
"""


def test_convert_trainer_checkpoint(tmp_path):
    """The checkpoint's weights (not the architecture's fresh ones) end up in the ONNX file."""
    import importlib.util

    import onnxruntime as ort

    from pyengine.train import save_checkpoint
    arch = tmp_path / "arch.py"
    arch.write_text(ARCH)
    spec = importlib.util.spec_from_file_location("arch_mod", arch)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model = mod.build()
    rng = np.random.default_rng(5)
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.data.shape)
    save_checkpoint(str(tmp_path / "ck.npz"), model)
    out = tmp_path / "ck.onnx"
    proc = cli("convert", tmp_path / "ck.npz", "--arch", f"{arch}:build", "--input-shape", "1,4", "-o", out,
               check_rc=0)
    assert "wrote" in proc.stdout
    x = rng.standard_normal((5, 4)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], model.eval().forward(x),
                               rtol=1e-5, atol=1e-5)
    assert_user_error(cli("convert", tmp_path / "ck.npz", "-o", tmp_path / "x.onnx"), "--arch")
    assert_user_error(cli("convert", tmp_path / "ck.npz", "--arch", f"{arch}:wider", "--input-shape", "1,4",
                          "-o", tmp_path / "y.onnx"), "does not fit")


def _real_models():
    from pyengine import zoo
    light = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
    paths = [zoo.path("digits_cnn"), zoo.path("digits_lstm"), os.path.join(light, "light_squeezenet.onnx")]
    return [p for p in paths if os.path.exists(p)]


@pytest.mark.parametrize("path", _real_models(), ids=lambda p: os.path.basename(p))
def test_commands_on_zoo_and_light_models(path, tmp_path):
    """info, run, check and bench on real models (the bundled zoo and onnx's light zoo)."""
    dims = ["--dim", "batch=2"]
    info, run, check, bench = cli_many([
        ["info", path, *dims],
        ["run", path, "--random", *dims, "--output", tmp_path / "o.npz"],
        ["check", path, *dims],
        ["bench", path, "--threads", "1", "--runs", "2", "--warmup", "1", *dims],
    ])
    assert info.returncode == 0 and "supports every operator" in info.stdout, info.stdout + info.stderr
    assert run.returncode == 0 and np.load(tmp_path / "o.npz").files, run.stderr
    assert check.returncode == 0 and "MISMATCH" not in check.stdout, check.stdout + check.stderr
    assert bench.returncode == 0 and "onnxruntime/pyengine" in bench.stdout, bench.stdout + bench.stderr
