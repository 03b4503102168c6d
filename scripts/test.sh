#!/usr/bin/env bash
# test.sh: install what is needed, build with warnings as errors and the
# sanitizers, and run the whole test suite (unit and integration: a private
# slapd and HTTP servers on 127.0.0.1, started and stopped by the tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
build=${OFFBOARD_TEST_BUILD:-$root/build-test}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DOFFBOARD_WERROR=ON -DOFFBOARD_SANITIZE=ON
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 600
