#!/usr/bin/env bash
# Installs what is needed, then runs the main job on the embedded default (Fashion-MNIST,
# shipped leopard style): watermark 10% of the owner's split, train the victim, build and sign
# the verifier bundle (white-box, black-box, fingerprint, label agreement), then verify stolen
# and independent suspects and print the tables. Everything goes to out/vendor/ (see
# examples/vendor_main.cc). About 20 minutes on 2 cores.
# Extra arguments go to the program (see: bazel run //examples:vendor -- --help).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel run //examples:vendor -- --out=out/vendor "$@"
