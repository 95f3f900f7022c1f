#!/usr/bin/env bash
# Installs what is needed, then builds everything and runs every test (the README's test
# command, also run by CI). Ends with a plain "N passed, M failed" line counted over the
# GoogleTest cases of all test targets.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh || exit 1
bazel build //... || exit 1
bazel test //... "$@"
rc=$?
python3 - <<'PY'
import glob, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in glob.glob("bazel-testlogs/**/test.xml", recursive=True):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        failed += 1
        continue
    for case in root.iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.get("status") == "notrun" or case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
print(f"tests: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PY
exit $rc
