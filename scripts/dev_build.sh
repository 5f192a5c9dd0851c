#!/usr/bin/env bash
# Fast developer build: compiles the extension into build/dev and links the
# resulting modules into the source tree so `pytest` runs against this checkout.
# (The released path is `pip install .`, which CI uses.)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build/dev}
PY=${PYTHON:-python3}
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} \
    -DPython_EXECUTABLE="$(command -v $PY)" \
    -Dpybind11_DIR="$($PY -m pybind11 --cmakedir)" ${CMAKE_ARGS:-} >/dev/null
fi
cmake --build "$BUILD" -j "${JOBS:-2}"
for so in "$BUILD"/_engine*.so; do cp -f "$so" pyengine/; done
for so in "$BUILD"/_im2col*.so; do [ -e "$so" ] && cp -f "$so" pyengine/train/; done
true
