#!/usr/bin/env bash
# Cross-compiles the kernel layers (core, tensor, kernels) and their unit tests for ARM64 and
# runs them under qemu-aarch64 (the `arm64` presets; docs/kernels.md, "NEON / ARM64").
#   scripts/test-arm64.sh            configure + build + ctest -L arm64
#   scripts/test-arm64.sh <args>     extra arguments go to ctest (e.g. -R neon_)
# qemu proves the NEON kernels compute the right numbers, not how fast they are.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 || missing+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null 2>&1 || missing+=(qemu-user)
[ -f /usr/src/googletest/CMakeLists.txt ] || missing+=(libgtest-dev)
command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
if ((${#missing[@]})); then
  echo "test-arm64: missing ${missing[*]}: run scripts/setup.sh --arm64" \
    "(or apt-get install ${missing[*]})" >&2
  exit 2
fi

jobs="${JOBS:-$(nproc)}"
cmake --preset arm64
cmake --build --preset arm64 -j"$jobs"
# QEMU_CPU=max (the test preset's environment) offers dotprod; a CPU model without it would
# skip every neon kernel test, so a skipped neon test is a failure here.
log="build/arm64/ctest-arm64.log"
set +e
ctest --preset arm64 -j"$jobs" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if grep -E '/neon_[A-Za-z0-9_]+ .*\(Skipped\)' "$log" >/dev/null; then
  echo "test-arm64: neon kernel tests were skipped: the emulated CPU lacks dotprod" \
    "(the arm64 test preset sets QEMU_CPU=max; check the qemu-user version)" >&2
  exit 1
fi
exit "$status"
