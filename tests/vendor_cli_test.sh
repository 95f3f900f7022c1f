#!/usr/bin/env bash
# End-to-end test of the main job (protect, bundle, verify suspects) at a tiny scale, plus its
# handling of bad input: one readable line on stderr and a non-zero exit, no crash.
set -euo pipefail
BIN="$1"
OUT="${TEST_TMPDIR:-/tmp}/vendor_e2e"
rm -rf "$OUT"

QUICK=(--train_size=600 --epochs=1 --fit_steps=20 --styled_test_size=200 --population=2 --calibration=1
       --verification_samples=40 --blackbox_m=20 --query_pool=300 --threads=2)
"$BIN" "${QUICK[@]}" --out="$OUT" > "$OUT.log" 2>&1 || { cat "$OUT.log"; echo "FAIL: vendor run failed"; exit 1; }
for f in victim.pt victim.move vendor.key vendor.key.pub watermark_record.json contact_sheet.png report.json \
         scores_whitebox.png scores_blackbox.png \
         suspects/fine_tuned_copy.report.json suspects/independent__disjoint_split.report.json; do
  [ -s "$OUT/$f" ] || { echo "FAIL: missing $OUT/$f"; exit 1; }
done
grep -q '"picked_indices"' "$OUT/watermark_record.json" || { echo "FAIL: record lacks picked_indices"; exit 1; }
grep -q "independent flagged" "$OUT.log" || { cat "$OUT.log"; echo "FAIL: no summary table"; exit 1; }
grep -q "^independent: wider net.*not examinable" "$OUT.log" || { echo "FAIL: wider net not refused"; exit 1; }
# Black-box: every suspect (the wider net too: no architecture assumption) over HTTP, with
# transcripts, fixed m and sequential.
grep -q "black-box: stolen flagged" "$OUT.log" || { cat "$OUT.log"; echo "FAIL: no black-box table"; exit 1; }
for f in independent__wider_net.blackbox.transcript.jsonl independent__wider_net.blackbox.report.json \
         victim.sequential.transcript.jsonl victim.sequential.report.json; do
  [ -s "$OUT/suspects/$f" ] || { echo "FAIL: missing $OUT/suspects/$f"; exit 1; }
done
# Fingerprint and the combined verdicts, both ways a legal team reaches a suspect.
grep -q "^combined: stolen flagged" "$OUT.log" || { cat "$OUT.log"; echo "FAIL: no combined table"; exit 1; }
grep -q "^fingerprint verifier: 4 helper models trained for it, 6 reused from the bundle" "$OUT.log" ||
  { cat "$OUT.log"; echo "FAIL: fingerprint helpers not reported"; exit 1; }
grep -q "^label-agreement verifier: 800 errors of the victim" "$OUT.log" ||
  { cat "$OUT.log"; echo "FAIL: label-agreement verifier not reported"; exit 1; }
for f in victim.fingerprint.report.json victim.fingerprint.transcript.jsonl victim.combined-file.json \
         victim.label-agreement.report.json victim.label-agreement.transcript.jsonl \
         victim.combined-endpoint.json independent__wider_net.combined-endpoint.json; do
  [ -s "$OUT/suspects/$f" ] || { echo "FAIL: missing $OUT/suspects/$f"; exit 1; }
done
# The report is valid JSON with both models' accuracies, and the models load in Python.
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys, torch
out = sys.argv[1]
r = json.load(open(out + "/report.json"))
rows = {row["suspect"]: row for row in r["suspects"]}
assert len(rows) == 12, rows.keys()
# The independents a default bundle must clear: a rival vendor's MOVE model and a model
# trained with appearance augmentation, examined both ways.
for name in ("independent: rival vendor's MOVE model", "independent: style-augmented"):
    assert name in rows, rows.keys()
    assert not rows[name]["verdict"].startswith("stolen"), rows[name]
    assert not rows[name]["blackbox_verdict"].startswith("stolen"), rows[name]
    assert not rows[name]["fingerprint_verdict"].startswith("stolen"), rows[name]
    assert not rows[name]["label_agreement_verdict"].startswith("stolen"), rows[name]
    assert not rows[name]["combined_file_verdict"].startswith("stolen"), rows[name]
    assert not rows[name]["combined_endpoint_verdict"].startswith("stolen"), rows[name]
for row in rows.values():
    assert "combined_file_verdict" in row and "combined_endpoint_verdict" in row, row
c = json.load(open(out + "/suspects/victim.combined-file.json"))
assert c["format"] == "move.combined.v1" and c["rule"] == "holm", c
assert [l["name"] for l in c["lines"]] == ["white-box MOVE", "UAP fingerprint", "label agreement"], c["lines"]
c = json.load(open(out + "/suspects/independent__wider_net.combined-endpoint.json"))
assert [l["name"] for l in c["lines"]] == ["black-box MOVE", "UAP fingerprint", "label agreement"], c["lines"]
assert r["combined_stolen_examined"] == 6 and r["combined_independent_examined"] == 6, r
assert 0 <= rows["victim"]["clean_test_accuracy"] <= 1, rows["victim"]
assert "p_value" in rows["independent: disjoint split"], rows
for row in rows.values():
    assert "blackbox_p_value" in row and "sequential_queries" in row, row
    assert row["blackbox_queries"] == 420, row  # m = 20 samples x (5 x (secret + 3 decoys) + clean)
    assert row["sequential_queries"] <= 420, row
    assert row["label_agreement_queries"] == 1000, row  # 800 of the victim's mistakes + 200 covers
bb = json.load(open(out + "/suspects/victim.blackbox.report.json"))
assert bb["mode"] == "blackbox" and bb["transcript_sha256"], bb
assert bb["feature_design"] == "blackbox-style-contrast", bb["feature_design"]
la = json.load(open(out + "/suspects/victim.label-agreement.report.json"))
assert la["mode"] == "label-agreement" and la["transcript_sha256"], la
assert la["suspect_mean_score"] >= 0.99, la["suspect_mean_score"]  # the victim repeats its own mistakes
assert len(la["suspect_scores"]) == 800 and la["model_level_benign_models"] == 6, la
assert r["styled_images"] == 60, r["styled_images"]
m = torch.jit.load(out + "/victim.pt")
m.eval()
assert m(torch.rand(2, 3, 28, 28)).shape == (2, 10)
PY
# Same seed, same record (the transformed images and output hashes).
"$BIN" "${QUICK[@]}" --suspects=false --blackbox=false --out="$OUT/again" > /dev/null 2>&1
for key in output_sha256 transformed_sha256 engine_weights_sha256; do
  a=$(grep "\"$key\"" "$OUT/watermark_record.json"); b=$(grep "\"$key\"" "$OUT/again/watermark_record.json")
  [ "$a" = "$b" ] || { echo "FAIL: $key differs between identical runs"; exit 1; }
done

expect_error() {  # expect_error "message part" args...
  local want="$1"; shift
  set +e
  "$BIN" "$@" --out="$OUT/bad" > "$OUT.bad.out" 2> "$OUT.bad.err"
  local rc=$?
  set -e
  [ "$rc" -ne 0 ] || { echo "FAIL: exit 0 for $*"; exit 1; }
  [ "$(wc -l < "$OUT.bad.err")" -eq 1 ] || { echo "FAIL: expected one line on stderr for $*:"; cat "$OUT.bad.err"; exit 1; }
  grep -q -- "$want" "$OUT.bad.err" || { echo "FAIL: stderr for $* lacks '$want':"; cat "$OUT.bad.err"; exit 1; }
}
expect_error "gamma" --gamma=1.5 --train_size=100
expect_error "style" --style=/no/such/style.png --train_size=100
expect_error "not_an_image.png" --style=testdata/corrupt/not_an_image.png --train_size=100
expect_error "model" --arch=resnet50 --train_size=100 --fit_steps=1
expect_error "device" --device=tpu
expect_error "train-images-idx3-ubyte.gz" --data_dir=/no/such/dir
expect_error "engine" --engine=magic --train_size=100
expect_error "blackbox_design" --blackbox_design=magic
expect_error "query_pool" --query_pool=10 --train_size=100
expect_error "fingerprint" --calibration=1 --rival_calibration=0 --augmented_calibration=0 --train_size=100
# The bundle's options are refused before any training (no victim is written).
rm -rf "$OUT/bad"
expect_error "population: must be >= 2" --population=1
[ ! -e "$OUT/bad/victim.pt" ] || { echo "FAIL: --population=1 refused only after training the victim"; exit 1; }
expect_error "alpha: must be in" --alpha=1.5
echo "PASS"
