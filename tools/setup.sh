#!/usr/bin/env bash
# Installs everything the MOVE SDK needs on a fresh Debian 12 machine. Idempotent: a second
# run installs nothing new. Needs root (or sudo) and Debian's package mirror; nothing is
# downloaded from anywhere else, at install time or at run time.
set -euo pipefail

PACKAGES=(
  # Build: Bazel 4.2.3 and the stand-in rule repositories it needs offline.
  bazel-bootstrap bazel-bootstrap-source g++ zlib1g-dev
  # LibTorch (CPU) and a fast BLAS for it.
  libtorch-dev libopenblas0-openmp
  # Abseil, Protobuf, Boost.Math, libsodium, stb, cpp-httplib.
  libabsl-dev libprotobuf-dev protobuf-compiler libboost-math-dev libsodium-dev libstb-dev
  libcpp-httplib-dev
  # Reading suspects' zip archives (model weights without their code) and sandboxing their code.
  libzip-dev libseccomp-dev
  # Tests and benchmarks.
  libgtest-dev libbenchmark-dev
  # Printing the legal report to PDF and checking it in a real browser (headless).
  chromium
  # The embedded default dataset.
  dataset-fashion-mnist
  # Python PyTorch for the TorchScript interop tests (/usr/bin/python3).
  python3-torch python3-numpy
  # Texture patterns the shipped style images were converted from (tools/pat2png.py).
  gimp-data
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all ${#PACKAGES[@]} packages already installed"
fi

# Facts the build relies on; fail early with a clear message if one is off.
for f in /usr/src/bazel-bootstrap/mock_repos/rules_cc/cc/defs.bzl /usr/include/torch/script.h \
         /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz /usr/bin/protoc; do
  [ -e "$f" ] || { echo "setup: expected $f after installing packages" >&2; exit 1; }
done
echo "setup: ok"
