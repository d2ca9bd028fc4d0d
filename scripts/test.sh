#!/usr/bin/env bash
# Builds (incrementally) and runs the test suite of one preset (default: release).
#   scripts/test.sh [preset] [extra ctest args...]     e.g. scripts/test.sh asan-ubsan -L unit
# Fixtures are read from $THINKMESH_FIXTURES (default ../shared). Under CI=true a missing
# fixtures folder fails the `model` tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
shift || true
[ -f "build/$preset/build.ninja" ] || cmake --preset "$preset"
cmake --build --preset "$preset"
ctest --preset "$preset" -j2 "$@"
