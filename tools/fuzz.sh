#!/usr/bin/env bash
# Fuzzes every parser a hostile party can feed (tests/fuzz): builds the libFuzzer targets with
# clang and AddressSanitizer in their own Bazel output base, runs each for --seconds on a
# scratch copy of its seed corpus (testdata/fuzz/<target>), and prints executions and
# findings per target. A crash, a leak of the sanitizer's kind or a timeout fails the run and
# leaves the input under $MOVE_FUZZ_DIR/artifacts/<target>/; copy it into
# testdata/fuzz/<target>/ once fixed, where the *_regression tests replay it.
#
#   tools/fuzz.sh [--seconds=30] [--jobs=1] [target ...]     (default: every target)
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=30
JOBS=1
TARGETS=()
for arg in "$@"; do
  case "$arg" in
    --seconds=*) SECONDS_PER_TARGET="${arg#--seconds=}" ;;
    --jobs=*) JOBS="${arg#--jobs=}" ;;
    -*) echo "fuzz.sh: unknown flag $arg" >&2; exit 2 ;;
    *) TARGETS+=("$arg") ;;
  esac
done
if [ "${#TARGETS[@]}" -eq 0 ]; then
  TARGETS=(bundle_fuzzer weights_fuzzer answers_fuzzer transcript_fuzzer dataset_fuzzer report_fuzzer)
fi
WORK="${MOVE_FUZZ_DIR:-${TMPDIR:-/tmp}/move-fuzz}"
# One output base per checkout (Bazel ties an output base to its workspace).
OUTPUT_BASE="${MOVE_FUZZ_OUTPUT_BASE:-$HOME/.cache/move-fuzz-bazel/$(pwd | sha256sum | cut -c1-16)}"
BAZEL=(bazel --output_base="$OUTPUT_BASE")
labels=()
for t in "${TARGETS[@]}"; do labels+=("//tests/fuzz:$t"); done
echo "fuzz: building ${TARGETS[*]} (clang, libFuzzer, AddressSanitizer)"
"${BAZEL[@]}" build --config=fuzz --symlink_prefix=/ "${labels[@]}" || exit 1
BIN="$("${BAZEL[@]}" info --config=fuzz bazel-bin 2>/dev/null)"
mkdir -p "$WORK"
status=0
for t in "${TARGETS[@]}"; do
  corpus="$WORK/corpus/$t" artifacts="$WORK/artifacts/$t"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$artifacts"
  cp testdata/fuzz/"$t"/* "$corpus"/
  log="$WORK/$t.log"
  (cd "$WORK" && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 OMP_NUM_THREADS=1 TMPDIR="$WORK" \
    "$BIN/tests/fuzz/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
    -jobs="$JOBS" -workers="$JOBS" -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus") > "$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
  crashes=$(find "$artifacts" -type f | wc -l)
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    echo "fuzz: $t FAILED after $runs executions ($crashes inputs in $artifacts; log $log)"
    grep -m3 -E "ERROR|SUMMARY|Timeout|deadly" "$log" | sed 's/^/  /'
    status=1
  else
    echo "fuzz: $t $runs executions in ${SECONDS_PER_TARGET} s, no crash (corpus $(ls "$corpus" | wc -l) inputs)"
  fi
done
exit $status
