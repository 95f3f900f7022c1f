#!/usr/bin/env python3
"""Recomputes the label-agreement line's model-level test from its inputs, independently of
the SDK's C++ code: the benign models' per-image agreements sealed in a bundle and a suspect's
per-image agreements in move_verify's JSON report. Both statistics are given, the plain share
of the victim's mistakes repeated (label-agreement-v1) and the rarity-weighted agreement
(label-agreement-v2, the default; see sdk/label_agreement.h), with the prediction-interval
t-test (n - 1 degrees of freedom) and the build-time soundness check (leave-one-out).

Standard library only. The bundle is read, not verified: check its signature with
`move_bundle inspect` first.

  tools/label_agreement_recompute.py BUNDLE.move REPORT.json [REPORT.json ...]
"""
import json
import math
import struct
import sys


def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b):
    """(field number, value) of a protobuf message's length-delimited and scalar fields."""
    i, out = 0, []
    while i < len(b):
        key, i = _varint(b, i)
        f, t = key >> 3, key & 7
        if t == 0:
            v, i = _varint(b, i)
        elif t == 1:
            v, i = b[i:i + 8], i + 8
        elif t == 5:
            v, i = b[i:i + 4], i + 4
        elif t == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError("unsupported wire type %d" % t)
        out.append((f, v))
    return out


def _get(b, f):
    return [v for ff, v in _fields(b) if ff == f]


def benign_table(path):
    """[(kind, [agreement per error image])] of the bundle's label-agreement line (bundle.proto:
    SignedBundle.contents = 2, BundleContents.label_agreement = 12, benign_scores = 13)."""
    contents = _get(open(path, "rb").read(), 2)
    la = _get(contents[0], 12) if contents else []
    if not la:
        sys.exit("%s: no label-agreement verifier in this bundle" % path)
    table = []
    for entry in _get(la[0], 13):
        raw = b"".join(_get(entry, 3))
        table.append((_get(entry, 1)[0].decode(), list(struct.unpack("<%df" % (len(raw) // 4), raw))))
    return table


def _betacf(a, b, x):
    tiny, c, d = 1e-300, 1.0, 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for aa in (m * (b - m) * x / ((a - 1 + 2 * m) * (a + 2 * m)),
                   -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1 + 2 * m))):
            d = 1 + aa * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 3e-16:
            break
    return h


def t_upper_tail(t, df):
    """P(T > t) for Student's t with df degrees of freedom."""
    x = df / (df + t * t)
    a, b = df / 2, 0.5
    bt = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
    ibeta = bt * _betacf(a, b, x) / a if x < (a + 1) / (a + b + 2) else 1 - bt * _betacf(b, a, 1 - x) / b
    return 0.5 * ibeta if t > 0 else 1 - 0.5 * ibeta


def model_level_log10_p(suspect, benign):
    n = len(benign)
    mean = sum(benign) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in benign) / (n - 1))
    if sd == 0:
        return 0.0
    t = (suspect - mean) / (sd * math.sqrt(1 + 1 / n))
    return math.log10(max(t_upper_tail(t, n - 1), 1e-300))


def rarity_weighted(rows, a):
    w = [1 - sum(r[i] for r in rows) / len(rows) for i in range(len(a))]
    total = sum(w)
    return sum(wi * ai for wi, ai in zip(w, a)) / total if total > 0 else 0.0


def statistics(rows, a, rarity):
    """The suspect's statistic and each benign row's (its weights from the other rows)."""
    if not rarity:
        return sum(a) / len(a), [sum(r) / len(r) for r in rows]
    return rarity_weighted(rows, a), [rarity_weighted(rows[:j] + rows[j + 1:], rows[j]) for j in range(len(rows))]


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    table = benign_table(argv[1])
    rows = [r for _, r in table]
    for rarity, name in ((False, "share"), (True, "rarity-weighted")):
        loo = [model_level_log10_p(*statistics(rows[:k] + rows[k + 1:], rows[k], rarity)) for k in range(1, len(rows))]
        print("soundness check, %s: calibration models' leave-one-out model-level log10 p: %s"
              % (name, " ".join("%.2f" % x for x in loo)))
    print("| report | share | model-level log10 p (share) | rarity-weighted | model-level log10 p (weighted) | paired log10 p |")
    print("|---|---|---|---|---|---|")
    for path in argv[2:]:
        r = json.load(open(path))
        for rep in r.get("reports", [r]):
            if rep.get("mode") != "label-agreement":
                continue
            a = rep["suspect_scores"]
            if len(a) != len(rows[0]):
                print("| %s | asked %d of %d mistakes: recompute needs all | | | | |" % (path, len(a), len(rows[0])))
                continue
            s1, b1 = statistics(rows, a, False)
            s2, b2 = statistics(rows, a, True)
            print("| %s | %.3f | %.2f | %.3f | %.2f | %.2f |" % (path, s1, model_level_log10_p(s1, b1), s2,
                                                              model_level_log10_p(s2, b2), rep.get("log10_p_value", 0)))


if __name__ == "__main__":
    main(sys.argv)
