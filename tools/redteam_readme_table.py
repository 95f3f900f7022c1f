#!/usr/bin/python3
"""Condenses a red-team run (results.json) into the README's table and flag-rate lines.

Usage: redteam_readme_table.py RUN_DIR [--independents-only]
Cells: paired p (the paper's test) and, after a slash, the model-level p; bold when the
verdict is "stolen" (both reject, bundle sound, suspect in range); "inconcl." when the range
check or the soundness check withheld a verdict; n/c when white-box does not cover the
suspect's architecture.
"""
import json
import math
import sys


def fmt_p(log10_p):
    if log10_p < -300:
        return "1e%d" % round(log10_p)
    p = 10 ** log10_p
    return "%.2g" % p


def cell(m):
    if not m.get("examined"):
        return "n/c"
    text = fmt_p(m["log10_p_value"])
    if m.get("model_level_tested"):
        text += " / " + fmt_p(m["model_level_log10_p_value"])
    if m["flagged"]:
        text = "**%s**" % text
    elif m["verdict"].startswith("inconclusive"):
        text += " (inconcl.)"
    return text


def seq_cell(m):
    if not m.get("examined"):
        return "-"
    text = "%d, %s" % (m["queries"], fmt_p(m["log10_p_value"]))
    return "**%s**" % text if m["flagged"] else text + (" (inconcl.)" if m["verdict"].startswith("inconclusive") else "")


def wilson(k, n, z=1.959964):
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def rate(rows, method, key="flagged"):
    ex = [r for r in rows if r[method].get("examined")]
    k = sum(1 for r in ex if r[method].get(key))
    lo, hi = wilson(k, len(ex))
    return "%d/%d (%.2f-%.2f)" % (k, len(ex), lo, hi)


def main():
    run = json.load(open(sys.argv[1] + "/results.json"))
    only_independent = "--independents-only" in sys.argv
    print("| group | suspect | clean acc | styled acc | white-box p / model-level p | black-box p / model-level p "
          "(m = 100) | sequential: queries, p | correct? |")
    print("|---|---|---|---|---|---|---|---|")
    for r in run["suspects"]:
        if only_independent and r["group"] != "independent":
            continue
        stolen = r["truth"] == "stolen"
        wrong = []
        for name, m in (("WB", r["whitebox"]), ("BB", r["blackbox"]), ("seq", r["sequential"])):
            if m.get("examined") and m["flagged"] != stolen:
                wrong.append(name + (" missed" if stolen else " FALSE POSITIVE"))
        print("| %s | %s | %.3f | %.3f | %s | %s | %s | %s |" % (
            r["group"], r["suspect"], r["clean_test_accuracy"], r["styled_test_accuracy"], cell(r["whitebox"]),
            cell(r["blackbox"]), seq_cell(r["sequential"]), ", ".join(wrong) if wrong else "yes"))
    print()
    for group in ("source", "stealing", "multi-stage", "adaptive", "independent"):
        rows = [r for r in run["suspects"] if r["group"] == group]
        if not rows:
            continue
        print("- %s: white-box %s, black-box %s, sequential %s; paired test alone: white-box %s, black-box %s" % (
            group, rate(rows, "whitebox"), rate(rows, "blackbox"), rate(rows, "sequential"),
            rate(rows, "whitebox", "paired_test_flagged"), rate(rows, "blackbox", "paired_test_flagged")))


if __name__ == "__main__":
    main()
