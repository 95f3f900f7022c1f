#!/usr/bin/env bash
# Installs what is needed, then runs the main job on the embedded default (Fashion-MNIST,
# shipped leopard style): watermark 10% of the training set, train victim and benign models,
# report accuracies, write models, record, contact sheet and report to out/vendor/.
# Extra arguments go to the program (see: bazel run //examples:vendor -- --help).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
bazel run //examples:vendor -- --out_dir=out/vendor "$@"
