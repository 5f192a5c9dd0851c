#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the kernel and operator
# tests (issue 7). Builds the extension with PYENGINE_SANITIZE=ON into
# build/asan (the normal in-place build is left alone), copies the package
# next to the ASan module in a temporary folder, and runs the tests against
# that copy with the compiler's sanitizer runtimes preloaded.
# Exits non-zero on any sanitizer report (or test failure).
#
#   scripts/sanitize.sh                 # the default test subset (CI: ~6 min on 2 cores)
#   scripts/sanitize.sh tests/test_conv.py -k depthwise   # any pytest arguments
#   SANITIZE_FULL=1 scripts/sanitize.sh # every kernel/operator test file, no -x
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD_DIR:-build/asan}
PY=${PYTHON:-python3}
CXX=${CXX:-g++}

if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPYENGINE_SANITIZE=ON \
    -DCMAKE_CXX_COMPILER="$(command -v "$CXX")" -DCMAKE_CXX_FLAGS="-g1" \
    -DPython_EXECUTABLE="$(command -v "$PY")" \
    -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" >/dev/null
fi
cmake --build "$BUILD" -j "${JOBS:-2}" --target _engine

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pyengine-asan.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# The package without its normal native module, plus the ASan one.
mkdir -p "$WORK/pkg" "$WORK/logs"
tar -C "$ROOT" --exclude='*.so' --exclude='__pycache__' -cf - pyengine | tar -C "$WORK/pkg" -xf -
cp "$BUILD"/_engine*.so "$WORK/pkg/pyengine/"

ASAN_LIB=$($CXX -print-file-name=libasan.so)
UBSAN_LIB=$($CXX -print-file-name=libubsan.so)
for lib in "$ASAN_LIB" "$UBSAN_LIB"; do
  [ -e "$lib" ] || { echo "sanitize.sh: $lib not found (install the compiler's sanitizer runtimes)" >&2; exit 2; }
done

TESTS=(tests/test_linalg.py tests/test_conv.py tests/test_pool.py tests/test_normalization.py
       tests/test_tensor_ops.py tests/test_shape_ops.py tests/test_fuzz.py tests/test_reliability.py)
for t in tests/test_elementwise*.py tests/test_activation*.py tests/test_softmax*.py tests/test_gemm*.py \
         tests/test_vmath*.py tests/test_reduce*.py tests/test_conv_*.py tests/test_pool_*.py tests/test_maxpool*.py \
         tests/test_recurrent*.py tests/test_fold_affine.py tests/test_session_cost.py tests/test_wire_loader.py; do
  [ -e "$t" ] && TESTS+=("$t")
done
if [ $# -gt 0 ]; then
  ARGS=("$@")
elif [ -n "${SANITIZE_FULL:-}" ]; then
  ARGS=("${TESTS[@]}" -q -p no:cacheprovider)
else
  ARGS=("${TESTS[@]}" -q -x -p no:cacheprovider)
fi

# Python leaks by design: leak detection off. Reports also go to log files,
# so one in a subprocess (the fuzz children) fails the run too.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$WORK/logs/asan:${ASAN_OPTIONS_EXTRA:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$WORK/logs/ubsan"
export PYENGINE_SANITIZED=1  # the fuzz harness drops its RLIMIT_AS cap (ASan reserves terabytes of shadow)
status=0
# Proof that the sanitized module is the one the tests import.
(cd "$WORK/pkg" && PYTHONPATH="$WORK/pkg" LD_PRELOAD="$ASAN_LIB $UBSAN_LIB" "$PY" -c \
   "import pyengine; print('sanitize.sh: testing', pyengine._engine.__file__)")
(cd "$WORK/pkg" && PYTHONPATH="$WORK/pkg" LD_PRELOAD="$ASAN_LIB $UBSAN_LIB" \
   "$PY" -m pytest --rootdir="$ROOT" -c "$ROOT/pyproject.toml" "${ARGS[@]/#tests\//$ROOT/tests/}") || status=$?

if compgen -G "$WORK/logs/*" >/dev/null; then
  echo "==== sanitizer reports ====" >&2
  cat "$WORK"/logs/* >&2
  exit 1
fi
if [ $status -ne 0 ]; then
  echo "sanitize.sh: tests failed (exit $status) under ASan/UBSan" >&2
  exit $status
fi
echo "sanitize.sh: no sanitizer reports"
