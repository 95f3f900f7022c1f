#!/usr/bin/python3
"""Gathers red-team harness runs (results.json) into one Markdown table per attack row.

Usage: redteam_study_table.py STUDY_DIR [--baseline=RUN_DIR] SETTING... (each SETTING's run is STUDY_DIR/<name>,
named as tools/redteam_study.sh names it). A row is printed per suspect; a column per setting
holds "BB p / WB p" and the styled-test accuracy, a verdict mark when flagged.
"""
import json
import os
import re
import sys


def cell(row):
    def p(method):
        m = row.get(method, {})
        if not m.get("examined"):
            return "-"
        mark = "*" if m.get("flagged") else ""
        return "%.2g%s" % (m["p_value"], mark)
    bb = row.get("blackbox", {})
    dmu = " (Δμ %+.2f)" % bb["delta_mu"] if bb.get("examined") else ""
    return "%s%s / %s (styled acc %.2f)" % (p("blackbox"), dmu, p("whitebox"), row["styled_test_accuracy"])


def main():
    root, settings = sys.argv[1], sys.argv[2:]
    runs = []
    if settings and settings[0].startswith("--baseline="):
        with open(os.path.join(settings[0].split("=", 1)[1], "results.json")) as f:
            runs.append(("defaults", json.load(f)))
        settings = settings[1:]
    for s in settings:
        name = re.sub(r"[^a-zA-Z0-9.\n]", "_", s)
        with open(os.path.join(root, name, "results.json")) as f:
            runs.append((s, json.load(f)))
    print("| suspect | truth | " + " | ".join(s for s, _ in runs) + " |")
    print("|---|---|" + "---|" * len(runs))
    names = [r["suspect"] for r in runs[-1][1]["suspects"]]  # the study runs' rows
    for n in names:
        cells = []
        truth = ""
        for _, res in runs:
            row = next((r for r in res["suspects"] if r["suspect"] == n), None)
            cells.append(cell(row) if row else "-")
            truth = row["truth"] if row else truth
        print("| %s | %s | %s |" % (n, truth, " | ".join(cells)))
    print()
    for s, res in runs:
        print("- `%s`: victim clean accuracy %.3f vs benign %.3f; victim styled %.3f vs benign %.3f; "
              "bundle sound: see results.md" % (s, res["victim_clean_accuracy"], res["benign_clean_accuracy"],
                                                res["victim_styled_accuracy"], res["benign_styled_accuracy"]))
    print("\nCells: black-box p (m = 100) and its Δμ / white-box p (all 200 samples); * = flagged at alpha 0.01.")


if __name__ == "__main__":
    main()
