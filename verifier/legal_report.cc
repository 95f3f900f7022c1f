// The legal report (sdk/report.h): rendering, printing to PDF, and the examiner's signature.
#include "sdk/report.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <boost/math/distributions/students_t.hpp>
#include <google/protobuf/util/json_util.h>
#include <sodium.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/proto_json.h"
#include "core/status_macros.h"
#include "sdk/verdict.h"
#include "sdk/version.h"

extern char** environ;

namespace move {
namespace {

// ---------------------------------------------------------------------------------------------
// Text helpers.

std::string Esc(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        // Control characters (other than tab and newline) are shown, not passed on.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          absl::StrAppendFormat(&out, "\\x%02x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Num(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "+inf" : "-inf";
  return absl::StrFormat("%.3g", x);
}

std::string Fixed(double x, int digits = 3) {
  if (!std::isfinite(x)) return Num(x);
  return absl::StrFormat("%.*f", digits, x);
}

// A p-value with its log10; below double's range only the log10 is meaningful.
std::string PValue(double p, double log10_p) {
  if (p <= 0 && std::isfinite(log10_p)) return absl::StrFormat("10<sup>%.1f</sup>", log10_p);
  return absl::StrFormat("%s <span class=\"dim\">(log<sub>10</sub> %.2f)</span>", Num(p), log10_p);
}

std::string Percent(double x) { return absl::StrFormat("%.1f%%", 100 * x); }

// POSIX shell quoting, so the command line can be pasted back.
std::string ShellQuote(const google::protobuf::RepeatedPtrField<std::string>& args) {
  std::vector<std::string> out;
  for (const std::string& a : args) {
    const bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) || std::string_view("_./=:,@+-%").find(c) != std::string_view::npos;
    });
    out.push_back(plain ? a : absl::StrCat("'", absl::StrReplaceAll(a, {{"'", "'\\''"}}), "'"));
  }
  return absl::StrJoin(out, " ");
}

// The value of --name in a command line ("--name=v" or "--name v"); "" when absent.
std::string FlagValue(const google::protobuf::RepeatedPtrField<std::string>& args, absl::string_view name) {
  const std::string eq = absl::StrCat("--", name, "="), bare = absl::StrCat("--", name);
  for (int i = 0; i < args.size(); ++i) {
    if (absl::StartsWith(args[i], eq)) return args[i].substr(eq.size());
    if (args[i] == bare && i + 1 < args.size()) return args[i + 1];
  }
  return "";
}

enum class Finding { kStolen, kNotStolen, kInconclusive };

// The records are checked (ParseVerdictJson) before anything is rendered: the outcome is
// known and agrees with `stolen` and the text.
template <typename Record>
Finding FindingOf(const Record& r) {
  switch (OutcomeOf(r)) {
    case VERDICT_STOLEN: return Finding::kStolen;
    case VERDICT_INCONCLUSIVE: return Finding::kInconclusive;
    default: return Finding::kNotStolen;
  }
}

std::string LineTitle(const VerificationReport& r) {
  if (r.mode() == "whitebox") return "White-box MOVE";
  if (r.mode() == "blackbox") return "Black-box MOVE";
  if (r.mode() == "fingerprint") return "UAP fingerprint";
  if (r.mode() == "label-agreement") return "Label agreement on the victim's mistakes";
  return r.mode().empty() ? "Evidence line" : r.mode();
}

std::string LineMethod(const VerificationReport& r) {
  if (r.mode() == "whitebox") {
    return "The suspect's weights were read (none of its code was run) into the SDK's own graph of the matched "
           "architecture. For each verification image the SDK computes how the model's gradients respond to the "
           "vendor's secret style, and the bundle's meta-classifier scores that response: close to 1 means "
           "&ldquo;responds like a model trained on the vendor's watermarked data&rdquo;, close to 0 &ldquo;like an "
           "independent model&rdquo;.";
  }
  if (r.mode() == "blackbox") {
    return "Only the suspect's answers were used. The verification images were sent to it clean, styled toward the "
           "vendor's secret style and styled toward decoy styles, all shuffled so that the suspect cannot tell which "
           "style matters; the bundle's meta-classifier scores how its answers change under the secret style compared "
           "with the decoys: close to 1 means &ldquo;reacts like a model trained on the vendor's watermarked "
           "data&rdquo;, close to 0 &ldquo;like an independent model&rdquo;.";
  }
  if (r.mode() == "fingerprint") {
    return "Only the suspect's answers were used. The suspect answered fingerprint points and the same points perturbed "
           "by the victim's universal adversarial perturbations; models extracted from the victim (for example by "
           "querying it) share its decision boundary and answer these like the victim. The score is the similarity of "
           "the suspect's fingerprint to the victim's.";
  }
  if (r.mode() == "label-agreement") {
    return "Only the suspect's top labels were used. The suspect was asked to classify images that the victim "
           "misclassifies, mixed with images it classifies correctly so that the suspect cannot tell which ones "
           "matter. Independent models make some of the same mistakes; a model trained to imitate the victim repeats "
           "its particular ones. The score of an image is 1 when the suspect gives the victim's (wrong) label, else 0; "
           "the paired test compares the suspect's share with the benign reference's on the same images, the "
           "model-level test its " +
           std::string(r.model_level_statistic() == "rarity-weighted agreement"
                           ? "share weighted by how rarely the benign models repeat each mistake (a mistake every model "
                             "makes counts for nothing) with each benign model's, whose weights come from the other "
                             "benign models only."
                           : "share with the benign models' shares.");
  }
  return "";
}

std::string DescribeKind(const std::string& kind) {
  if (kind == "reference") return "benign reference";
  if (kind == "calibration") return "benign (other seed)";
  if (kind == "rival-vendor calibration") return "rival vendor (another secret style)";
  if (kind == "appearance-augmented calibration") return "appearance-augmented benign";
  return kind;
}

// ---------------------------------------------------------------------------------------------
// Figures (inline SVG; no script, no external resource).

constexpr char kSuspectColour[] = "#b03a2e";
constexpr char kReferenceColour[] = "#2874a6";

struct Axis {
  double lo, hi;
  double x0, x1;  // pixels
  double Map(double v) const { return x0 + (x1 - x0) * (v - lo) / (hi - lo); }
};

Axis MakeAxis(std::vector<double> values, double x0, double x1) {
  double lo = 0, hi = 1;
  bool any = false;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    if (!any) lo = hi = v;
    lo = std::min(lo, v), hi = std::max(hi, v);
    any = true;
  }
  // Scores on the 0-1 scale are drawn on all of it, so that distances read the same in every report.
  if (any && lo >= 0 && hi <= 1) return Axis{0, 1, x0, x1};
  if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
  const double pad = 0.04 * (hi - lo);
  return Axis{lo - pad, hi + pad, x0, x1};
}

std::string AxisTicks(const Axis& a, double y, const std::string& label) {
  std::string s = absl::StrFormat("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>", a.x0, y, a.x1, y);
  for (int i = 0; i <= 4; ++i) {
    const double v = a.lo + (a.hi - a.lo) * i / 4, x = a.Map(v);
    absl::StrAppendFormat(&s, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"axis\"/>", x, y, x, y + 4);
    absl::StrAppendFormat(&s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", x, y + 16, Esc(Num(v)));
  }
  absl::StrAppendFormat(&s, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"label\">%s</text>", (a.x0 + a.x1) / 2,
                        y + 32, Esc(label));
  return s;
}

// Histograms of the suspect's and the reference's scores on the same samples.
std::string ScoreHistogram(const VerificationReport& r) {
  if (r.suspect_scores_size() == 0 && r.reference_scores_size() == 0) return "";
  constexpr double kW = 460, kH = 230, kLeft = 40, kRight = 450, kTop = 58, kBottom = 170;
  std::vector<double> all(r.suspect_scores().begin(), r.suspect_scores().end());
  all.insert(all.end(), r.reference_scores().begin(), r.reference_scores().end());
  const Axis a = MakeAxis(all, kLeft, kRight);
  constexpr int kBins = 20;
  auto counts = [&](const google::protobuf::RepeatedField<double>& v) {
    std::vector<int> c(kBins, 0);
    for (double x : v) {
      if (!std::isfinite(x)) continue;
      c[std::clamp(static_cast<int>((x - a.lo) / (a.hi - a.lo) * kBins), 0, kBins - 1)]++;
    }
    return c;
  };
  const std::vector<int> cs = counts(r.suspect_scores()), cr = counts(r.reference_scores());
  const int top = std::max(1, std::max(*std::max_element(cs.begin(), cs.end()), *std::max_element(cr.begin(), cr.end())));
  std::string s = absl::StrFormat(
      "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"score distributions\">",
      kW, kH);
  absl::StrAppendFormat(&s, "<text x=\"%.0f\" y=\"16\" class=\"title\">Scores per verification sample (%d pairs)</text>", kLeft,
                        static_cast<int>(std::min(r.suspect_scores_size(), r.reference_scores_size())));
  const double bw = (kRight - kLeft) / kBins;
  auto bars = [&](const std::vector<int>& c, const char* colour, double shift) {
    for (int i = 0; i < kBins; ++i) {
      if (c[i] == 0) continue;
      const double h = (kBottom - kTop) * c[i] / top;
      absl::StrAppendFormat(&s, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"0.75\"/>",
                            kLeft + i * bw + shift, kBottom - h, bw / 2 - 0.5, h, colour);
    }
  };
  bars(cr, kReferenceColour, 0);
  bars(cs, kSuspectColour, bw / 2);
  absl::StrAppendFormat(&s, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" class=\"axis\"/>", kLeft, kTop, kLeft, kBottom);
  absl::StrAppendFormat(&s, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%d</text>", kLeft - 4, kTop + 4, top);
  absl::StrAppendFormat(&s, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">0</text>", kLeft - 4, kBottom);
  s += AxisTicks(a, kBottom, "meta-classifier score (1 = carries the vendor's feature)");
  absl::StrAppendFormat(&s,
                        "<rect x=\"%.0f\" y=\"24\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"33\">suspect "
                        "(mean %s)</text>",
                        kRight - 170, kSuspectColour, kRight - 156, Esc(Fixed(r.suspect_mean_score())));
  absl::StrAppendFormat(&s,
                        "<rect x=\"%.0f\" y=\"38\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.0f\" y=\"47\">benign "
                        "reference (mean %s)</text>",
                        kRight - 170, kReferenceColour, kRight - 156, Esc(Fixed(r.reference_mean_score())));
  s += "</svg>";
  return s;
}

struct BenignSummary {
  int n = 0;
  double mean = 0, sd = 0;
  double threshold = NAN;  // the mean score above which the model-level test rejects at alpha
};

// What the model-level test compared and the suspect's value of it (sdk/verdict.h).
std::string StatisticName(const VerificationReport& r) { return std::string(ModelLevelStatisticOf(r)); }
double SuspectStatistic(const VerificationReport& r) { return ModelLevelSuspectValueOf(r); }

BenignSummary SummariseBenign(const VerificationReport& r) {
  BenignSummary b;
  b.n = r.benign_mean_scores_size();
  if (b.n < 2) return b;
  for (double v : r.benign_mean_scores()) b.mean += v;
  b.mean /= b.n;
  double ss = 0;
  for (double v : r.benign_mean_scores()) ss += (v - b.mean) * (v - b.mean);
  b.sd = std::sqrt(ss / (b.n - 1));
  if (r.alpha() > 0 && r.alpha() < 1 && b.sd > 0) {
    const boost::math::students_t t(b.n - 1);
    b.threshold = b.mean + boost::math::quantile(boost::math::complement(t, r.alpha())) * b.sd * std::sqrt(1.0 + 1.0 / b.n);
  }
  return b;
}

// The model-level picture: every held-out benign model's mean score (one row per kind), the
// suspect's, and the line above which the model-level test rejects.
std::string ModelLevelPlot(const VerificationReport& r) {
  if (!r.model_level_tested() || r.benign_mean_scores_size() == 0) return "";
  std::vector<std::string> kinds;  // rows, in order of first appearance
  std::vector<int> row_of;
  for (int i = 0; i < r.benign_mean_scores_size(); ++i) {
    const std::string k = i < r.benign_kinds_size() ? DescribeKind(r.benign_kinds(i)) : "benign";
    auto it = std::find(kinds.begin(), kinds.end(), k);
    row_of.push_back(static_cast<int>(it - kinds.begin()));
    if (it == kinds.end()) kinds.push_back(k);
  }
  const BenignSummary b = SummariseBenign(r);
  std::vector<double> all(r.benign_mean_scores().begin(), r.benign_mean_scores().end());
  all.push_back(SuspectStatistic(r));
  if (std::isfinite(b.threshold)) all.push_back(b.threshold);
  constexpr double kW = 460, kLeft = 190, kRight = 450, kTop = 34, kRow = 22;
  const double bottom = kTop + kRow * (kinds.size() + 1);
  const double h = bottom + 44;
  const Axis a = MakeAxis(all, kLeft, kRight);
  std::string s = absl::StrFormat(
      "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"model-level test\">", kW, h);
  std::string title = StatisticName(r);
  title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
  absl::StrAppendFormat(&s, "<text x=\"10\" y=\"16\" class=\"title\">%s per model: suspect vs %d held-out benign models</text>",
                        Esc(title), r.benign_mean_scores_size());
  for (size_t k = 0; k < kinds.size(); ++k) {
    const double y = kTop + kRow * (k + 0.5);
    absl::StrAppendFormat(&s, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>", kLeft - 8, y + 4, Esc(kinds[k]));
    absl::StrAppendFormat(&s, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" class=\"grid\"/>", kLeft, y, kRight, y);
  }
  for (int i = 0; i < r.benign_mean_scores_size(); ++i) {
    const double y = kTop + kRow * (row_of[i] + 0.5);
    absl::StrAppendFormat(&s, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\" fill-opacity=\"0.7\"/>",
                          a.Map(r.benign_mean_scores(i)), y, kReferenceColour);
  }
  const double ys = kTop + kRow * (kinds.size() + 0.5), xs = a.Map(SuspectStatistic(r));
  absl::StrAppendFormat(&s, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" class=\"strong\">suspect</text>", kLeft - 8, ys + 4);
  absl::StrAppendFormat(&s, "<path d=\"M %.1f %.1f l 7 7 l -7 7 l -7 -7 z\" fill=\"%s\"/>", xs, ys - 7, kSuspectColour);
  if (std::isfinite(b.threshold)) {
    const double xt = a.Map(b.threshold);
    absl::StrAppendFormat(&s, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.1f\" class=\"threshold\"/>", xt, kTop - 6, xt,
                          bottom);
    // The label hangs away from the nearer edge, so that it is never cut off.
    const bool right_half = xt > (kLeft + kRight) / 2;
    absl::StrAppendFormat(&s, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"%s\" class=\"small\">rejects above (alpha %s)</text>",
                          right_half ? xt - 4 : xt + 4, kTop - 9, right_half ? "end" : "start", Esc(Num(r.alpha())));
  }
  s += AxisTicks(a, bottom, "mean score over the verification samples");
  s += "</svg>";
  return s;
}

// ---------------------------------------------------------------------------------------------
// Sections.

void Row(std::string* s, absl::string_view key, absl::string_view value_html) {
  absl::StrAppend(s, "<tr><th>", key, "</th><td>", value_html, "</td></tr>\n");
}

std::string Code(absl::string_view text) { return absl::StrCat("<code>", Esc(text), "</code>"); }

std::string Sha(absl::string_view hex) {
  return hex.empty() ? "<span class=\"dim\">not recorded</span>" : absl::StrCat("<code class=\"hash\">", Esc(hex), "</code>");
}

std::string ClaimParagraph(const CombinedVerdict& c, Finding f) {
  const double alpha = c.alpha() > 0 ? c.alpha() : (c.reports_size() ? c.reports(0).alpha() : 0.01);
  const std::string a = Esc(Num(alpha)), a_pct = Esc(Percent(alpha));
  const bool combined = c.lines_size() > 0;
  int family = 0;
  for (const EvidenceLine& l : c.lines()) family += !l.excluded_from_family();
  switch (f) {
    case Finding::kStolen:
      return absl::StrCat(
          "<p>The suspect model carries the external feature that the vendor embedded in the training data of its own "
          "model. Independent models do not carry it. The examination is built so that an independent model is flagged "
          "with probability at most ",
          a_pct, " (significance level alpha = ", a,
          combined ? absl::StrCat(", over all ", family, " sound lines of evidence together, by Holm's rule")
                   : std::string(),
          "); the evidence here reached p = ", PValue(c.p_value(), c.log10_p_value()),
          combined ? absl::StrCat(" (Holm-adjusted; carried by ", Esc(c.decided_by()), ")") : std::string(),
          ". Both tests of the deciding line rejected: the suspect scores above the benign reference model on the same "
          "images, and above what every independent model the vendor held out reaches.</p>");
    case Finding::kNotStolen:
      return absl::StrCat(
          "<p>The examination found no evidence, at significance level alpha = ", a,
          ", that the suspect derives from the vendor's model. This is not proof of independence: a model derived in a "
          "way that removes the external feature, or examined with too few samples, can also read &ldquo;not "
          "stolen&rdquo;. See the limitations below.</p>");
    case Finding::kInconclusive:
      return absl::StrCat("<p>The examination could not reach a verdict it can stand behind, and claims nothing: ",
                          Esc(c.verdict()), ".</p>");
  }
  return "";
}

std::string FindingWord(Finding f) {
  switch (f) {
    case Finding::kStolen: return "Derived from the vendor's model (stolen)";
    case Finding::kNotStolen: return "No evidence of derivation (not stolen)";
    case Finding::kInconclusive: return "Inconclusive";
  }
  return "";
}

std::string FindingClass(Finding f) {
  switch (f) {
    case Finding::kStolen: return "stolen";
    case Finding::kNotStolen: return "clear";
    case Finding::kInconclusive: return "inconclusive";
  }
  return "";
}

std::string LinesTable(const CombinedVerdict& c) {
  std::string s =
      "<table class=\"grid\"><thead><tr><th>Line of evidence</th><th>usable</th><th>p (larger of paired and model "
      "level)</th><th>Holm threshold</th><th>rejects</th><th>the line's own verdict</th></tr></thead><tbody>\n";
  for (const EvidenceLine& l : c.lines()) {
    absl::StrAppend(&s, "<tr><td>", Esc(l.name()), "</td><td>", l.usable() ? "yes" : "no", "</td><td>",
                    PValue(l.p_value(), l.log10_p_value()), "</td><td>",
                    l.excluded_from_family() ? std::string("left out (unsound)") : Esc(Num(l.holm_threshold())), "</td><td>",
                    l.rejected() ? "<b>yes</b>" : "no", "</td><td>", Esc(l.verdict()),
                    l.note().empty() ? "" : absl::StrCat("<br><span class=\"dim\">", Esc(l.note()), "</span>"), "</td></tr>\n");
  }
  absl::StrAppend(&s, "</tbody></table>\n<p class=\"dim\">Holm's step-down rule: the lines are ordered by p-value and the "
                      "k-th smallest is compared with alpha / (L &minus; k + 1); the probability that an independent model "
                      "is flagged by the combined verdict is at most alpha whatever the dependence between the lines. A "
                      "line enters with the larger of its two p-values because it claims theft only when both of its "
                      "tests reject; a line unusable for this suspect (range check, inconsistent answers) enters with p = 1. A line whose "
                      "classifier failed the bundle's build-time soundness check is left out of the family: that was "
                      "known before the examination, so the guarantee holds over the other lines.</p>\n");
  return s;
}

std::string LineSection(const VerificationReport& r, int index) {
  std::string s;
  const Finding f = FindingOf(r);
  absl::StrAppend(&s, "<section class=\"line\" id=\"line-", index, "\"><h3>", Esc(LineTitle(r)), ": <span class=\"",
                  FindingClass(f), "-text\">", Esc(r.verdict()), "</span></h3>\n<p>", LineMethod(r), "</p>\n");
  absl::StrAppend(&s, "<div class=\"figures\"><figure>", ScoreHistogram(r), "</figure><figure>", ModelLevelPlot(r),
                  "</figure></div>\n");
  s += "<table class=\"facts\">\n";
  Row(&s, "Paired test",
      absl::StrCat(Esc(r.test()), ", m = ", r.m(), " samples: p = ", PValue(r.p_value(), r.log10_p_value()),
                   "<br><span class=\"dim\">Were the suspect independent of the vendor's model, its scores would exceed "
                   "the benign reference's by this much or more with probability p.</span>"));
  Row(&s, "Difference",
      absl::StrCat("suspect ", Esc(Fixed(r.suspect_mean_score())), " vs reference ", Esc(Fixed(r.reference_mean_score())),
                   ": &Delta;&mu; = ", Esc(absl::StrFormat("%+.4f", r.delta_mu())), " (", Esc(absl::StrFormat("%.0f", 100 * (1 - r.alpha()))),
                   "% interval ", Esc(absl::StrFormat("%+.4f", r.delta_mu_ci_low())), " .. ",
                   Esc(absl::StrFormat("%+.4f", r.delta_mu_ci_high())), ")"));
  if (r.model_level_tested()) {
    const BenignSummary b = SummariseBenign(r);
    Row(&s, "Model-level test",
        absl::StrCat("suspect&rsquo;s ", Esc(StatisticName(r)), " ", Esc(Fixed(SuspectStatistic(r))), " vs ",
                     r.model_level_benign_models(), " held-out benign models (mean ", Esc(Fixed(b.mean)), ", sd ", Esc(Fixed(b.sd)),
                     "): p = ", PValue(r.model_level_p_value(), r.model_level_log10_p_value()), ", ",
                     r.model_level_reject() ? "<b>rejects</b>" : "does not reject",
                     "<br><span class=\"dim\">The probability that one more independent model would score as high as the "
                     "suspect (one-sided prediction-interval t-test, n &minus; 1 degrees of freedom). Theft is claimed "
                     "only when this test and the paired test both reject at alpha = ",
                     Esc(Num(r.alpha())), ".</span>"));
  } else {
    Row(&s, "Model-level test", "<span class=\"warn\">not run: the bundle has no benign score table</span>");
  }
  Row(&s, "Range check",
      absl::StrCat("clean accuracy of the suspect ", Esc(Fixed(r.suspect_clean_accuracy())), " vs the reference ",
                   Esc(Fixed(r.reference_clean_accuracy())), " (needs at least ", Esc(Num(r.min_relative_accuracy())),
                   " &times;): ", r.suspect_in_range() ? "passed" : "<b class=\"warn\">failed</b>",
                   "<br><span class=\"dim\">The classifier is vouched for on competent models of the vendor's task; a "
                   "flag on a model far below them would be reported as inconclusive.</span>"));
  Row(&s, "Classifier",
      absl::StrCat(r.classifier_sound() ? "passed" : "<b class=\"warn\">failed</b>",
                   " its soundness check at bundle build (no held-out benign model flagged); errors on held-out models: "
                   "Type-I ",
                   Esc(Num(r.classifier_type1_error())), ", Type-II ", Esc(Num(r.classifier_type2_error())),
                   "; Theorem 1 asks for m &ge; ", r.minimum_m() > 0 ? absl::StrCat(r.minimum_m()) : "(none reaches alpha)",
                   r.m_below_minimum() ? " <b class=\"warn\">(m used is below)</b>" : ""));
  if (r.mode() != "whitebox") {
    Row(&s, "Queries",
        absl::StrCat(r.queries(), r.max_queries() > 0 ? absl::StrCat(" of at most ", r.max_queries()) : "",
                     r.sequential() ? ", anytime-valid sequential test" : "",
                     r.stopped_early() ? ", stopped early (decisive)" : "", r.softmax_applied() ? ", logits softmaxed" : ""));
    if (r.repeat_queries() > 0) {
      Row(&s, "Consistency",
          absl::StrCat(r.repeat_queries(), " images asked twice (shuffled in), ", r.repeat_disagreements(),
                       " answered differently (largest difference ", Esc(Num(r.max_repeat_difference())), ", tolerance ",
                       Esc(Num(r.repeat_tolerance())), ")", r.answers_inconsistent() ? ": <b class=\"warn\">inconsistent</b>" : ""));
    }
  }
  if (r.mode() == "fingerprint") {
    Row(&s, "Agreement with the victim",
        absl::StrCat("suspect ", Esc(Percent(r.fingerprint_clean_agreement())), " of the points, ",
                     Esc(Percent(r.fingerprint_perturbed_agreement())), " of the perturbed points; reference ",
                     Esc(Percent(r.reference_clean_agreement())), " / ", Esc(Percent(r.reference_perturbed_agreement())),
                     " <span class=\"dim\">(descriptive, not part of the test)</span>"));
  }
  if (r.mode() == "label-agreement") {
    Row(&s, "The victim&rsquo;s mistakes",
        absl::StrCat("the suspect gives the victim&rsquo;s wrong label on ", Esc(Percent(r.suspect_mean_score())), " of the ",
                     r.m(), " images the victim misclassifies; the benign reference on ",
                     Esc(Percent(r.reference_mean_score())),
                     " <span class=\"dim\">(the range check compares accuracy on the covers: ordinary images the victim "
                     "classifies correctly, asked with the mistakes)</span>"));
  }
  if (r.reference_compatible_harmonic_p() > 0) {
    Row(&s, "Published protocol",
        absl::StrCat("40 draws of m = 10, Welch, harmonic-mean p = ", Esc(Num(r.reference_compatible_harmonic_p())),
                     " <span class=\"dim\">(for comparison with published figures only; not the decision)</span>"));
  }
  s += "</table>\n";
  if (r.warnings_size() > 0) {
    s += "<ul class=\"warnings\">";
    for (const std::string& w : r.warnings()) absl::StrAppend(&s, "<li>", Esc(w), "</li>");
    s += "</ul>\n";
  }
  s += "</section>\n";
  return s;
}

std::string CalibrationSection(const CombinedVerdict& c) {
  std::string s =
      "<section><h2>Calibration: who the suspect was compared with</h2>\n<p>Each line's classifier was trained and "
      "checked when the vendor built the bundle, before this examination, on models that never served as suspects. "
      "The benign models below were held out from training the classifier; the suspect is judged against them.</p>\n";
  for (const VerificationReport& r : c.reports()) {
    absl::StrAppend(&s, "<h3>", Esc(LineTitle(r)), "</h3>\n<table class=\"grid\"><thead><tr><th>#</th><th>held-out model</th>"
                        "<th>architecture</th><th>", Esc(StatisticName(r)), "</th></tr></thead><tbody>\n");
    for (int i = 0; i < r.benign_mean_scores_size(); ++i) {
      absl::StrAppend(&s, "<tr><td>", i + 1, "</td><td>",
                      Esc(i < r.benign_kinds_size() ? DescribeKind(r.benign_kinds(i)) : "benign"), "</td><td>",
                      Esc(i < r.benign_architectures_size() ? r.benign_architectures(i) : ""), "</td><td>",
                      Esc(Fixed(r.benign_mean_scores(i))), "</td></tr>\n");
    }
    absl::StrAppend(&s, "<tr class=\"suspect\"><td></td><td>suspect</td><td>", Esc(r.architecture()), "</td><td>",
                    Esc(Fixed(SuspectStatistic(r))), "</td></tr>\n</tbody></table>\n");
    absl::StrAppend(&s, "<p>Measured errors of the classifier on held-out models: Type-I (an independent model's sample "
                        "scored as watermarked) ",
                    Esc(Num(r.classifier_type1_error())), ", Type-II (a watermarked model's sample scored as independent) ",
                    Esc(Num(r.classifier_type2_error())), ". With these errors Theorem 1 of the method needs at least ",
                    r.minimum_m() > 0 ? absl::StrCat(r.minimum_m()) : "more", " samples to reach alpha = ", Esc(Num(r.alpha())),
                    "; ", r.m(), " were used. Feature design: ", Code(r.feature_design()), ".</p>\n");
  }
  s += "</section>\n";
  return s;
}

std::string CustodySection(const CombinedVerdict& c, const std::string& verdict_sha, const LegalReportOptions& o) {
  const VerificationReport& first = c.reports(0);
  std::string s = "<section><h2>Chain of custody</h2>\n<table class=\"facts\">\n";
  Row(&s, "Verdict file", absl::StrCat(Code(o.verdict_file_name), " SHA-256 ", Sha(verdict_sha),
                                       " <span class=\"dim\">(the JSON this report was rendered from)</span>"));
  Row(&s, "Examination", absl::StrCat("started ", Esc(c.started_at().empty() ? first.started_at() : c.started_at()),
                                      ", finished ", Esc(c.finished_at().empty() ? first.finished_at() : c.finished_at()),
                                      " (UTC)"));
  Row(&s, "Verifier bundle", absl::StrCat("SHA-256 ", Sha(first.bundle_sha256()), "<br>built ",
                                          Esc(first.bundle_created_at().empty() ? "(not recorded)" : first.bundle_created_at())));
  Row(&s, "Bundle signer",
      absl::StrCat("Ed25519 key fingerprint ", Sha(first.signer_fingerprint()), "<br>",
                   first.signer_pinned() ? "checked against the vendor's public key (--trusted_key)"
                                         : "<b class=\"warn\">not checked against the vendor's public key</b>"));
  Row(&s, "Victim model", absl::StrCat("SHA-256 ", Sha(first.victim_model_sha256()),
                                       " <span class=\"dim\">(the model the bundle was built for)</span>"));
  for (const VerificationReport& r : c.reports()) {
    std::string what = absl::StrCat(Esc(r.suspect_channel().empty() ? r.suspect_path() : r.suspect_channel()));
    if (!r.suspect_sha256().empty()) absl::StrAppend(&what, "<br>file SHA-256 ", Sha(r.suspect_sha256()));
    if (!r.suspect_format().empty()) absl::StrAppend(&what, " (", Esc(r.suspect_format()), ", weights only; none of its code ran)");
    if (!r.transcript_path().empty()) {
      absl::StrAppend(&what, "<br>transcript ", Code(r.transcript_path()), " SHA-256 ", Sha(r.transcript_sha256()),
                      " <span class=\"dim\">(every query and answer)</span>");
    }
    Row(&s, absl::StrCat("Suspect (", Esc(LineTitle(r)), ")"), what);
  }
  Row(&s, "Software", absl::StrCat("MOVE SDK ", Esc(first.sdk_version()), "; device ", Esc(first.device()), ", ",
                                   first.threads(), " threads; seed ", first.seed(), "; ", Esc(Fixed(first.seconds(), 1)),
                                   " s"));
  const auto& argv = c.command_line_size() ? c.command_line() : first.command_line();
  Row(&s, "Command line", argv.empty() ? "<span class=\"dim\">not recorded (run through the library)</span>"
                                       : absl::StrCat("<pre>", Esc(ShellQuote(argv)), "</pre>"));
  s += "</table>\n</section>\n";
  return s;
}

std::string LimitationsSection(const CombinedVerdict& c) {
  std::vector<std::string> items = {
      "The test controls the rate of false accusations (flagging an independent model) at alpha under its assumptions: "
      "that the held-out benign models the vendor trained are representative of independent models of this task. "
      "Independent models made very differently from all of them are outside what the calibration shows.",
      "&ldquo;Not stolen&rdquo; is not proof of independence: the external feature can be weakened by heavy "
      "modification of a model, and a line with few samples has little power.",
      "The bundle was built by the vendor, a party to the dispute; its SHA-256 and signature above identify it, and "
      "its build (populations, seeds, soundness check) can be inspected with <code>move_bundle inspect</code>.",
  };
  for (const VerificationReport& r : c.reports()) {
    if (r.mode() != "whitebox") {
      items.push_back(absl::StrCat(Esc(LineTitle(r)),
                                   ": the suspect's answers came from a party to the dispute; they are recorded in the "
                                   "transcript and their consistency was measured, but an endpoint can serve a different "
                                   "model than the one in dispute."));
    }
    if (r.m_below_minimum()) {
      items.push_back(absl::StrCat(Esc(LineTitle(r)), ": the number of samples used (", r.m(),
                                   ") is below what Theorem 1 asks for with this classifier's errors."));
    }
    if (!r.signer_pinned()) {
      items.push_back("The bundle's signature was valid but its signer was not checked against a key the vendor "
                      "published; compare the fingerprint above with the vendor's.");
    }
    for (const std::string& w : r.warnings()) items.push_back(absl::StrCat(Esc(LineTitle(r)), ": ", Esc(w)));
  }
  std::sort(items.begin() + 3, items.end());
  items.erase(std::unique(items.begin() + 3, items.end()), items.end());
  std::string s = "<section><h2>Limitations</h2>\n<ul>";
  for (const std::string& i : items) absl::StrAppend(&s, "<li>", i, "</li>");
  s += "</ul>\n</section>\n";
  return s;
}

std::string ReproduceSection(const CombinedVerdict& c) {
  const VerificationReport& first = c.reports(0);
  const auto& argv = c.command_line_size() ? c.command_line() : first.command_line();
  std::string bundle = FlagValue(argv, "bundle");
  if (bundle.empty()) bundle = "BUNDLE.move";
  std::string s = "<section><h2>How to reproduce</h2>\n";
  if (!argv.empty()) {
    absl::StrAppend(&s, "<p>The examination was run as:</p><pre>", Esc(ShellQuote(argv)), "</pre>\n");
  }
  // A line that queried the suspect can be re-run from its transcript without asking it again.
  const VerificationReport* queried = nullptr;
  for (const VerificationReport& r : c.reports()) {
    if (r.mode() == "blackbox" && !r.transcript_path().empty()) queried = &r;
  }
  if (queried == nullptr) {
    for (const VerificationReport& r : c.reports()) {
      if (r.mode() == "fingerprint" && c.reports_size() == 1 && !r.transcript_path().empty()) queried = &r;
    }
  }
  if (queried != nullptr) {
    google::protobuf::RepeatedPtrField<std::string> replay;
    replay.Add("move_verify");
    replay.Add(absl::StrCat("--mode=", queried->mode()));
    replay.Add(absl::StrCat("--bundle=", bundle));
    replay.Add(absl::StrCat("--replay=", queried->transcript_path()));
    if (queried->mode() == "blackbox") replay.Add(absl::StrCat("--m=", queried->m()));
    replay.Add(absl::StrCat("--seed=", queried->seed()));
    replay.Add(absl::StrFormat("--alpha=%g", queried->alpha()));
    if (queried->sequential()) replay.Add("--sequential");
    if (queried->max_queries() > 0 && queried->mode() == "blackbox") replay.Add(absl::StrCat("--max_queries=", queried->max_queries()));
    if (queried->softmax_applied()) replay.Add("--accept_logits");
    replay.Add(absl::StrFormat("--min_relative_accuracy=%g", queried->min_relative_accuracy()));
    replay.Add("--report=replayed.json");
    absl::StrAppend(&s,
                    "<p>Anyone holding the bundle and the transcript can recompute every figure from the recorded answers, "
                    "without querying the suspect again (first check the files' SHA-256 against the chain of custody with "
                    "<code>sha256sum</code>):</p><pre>",
                    Esc(ShellQuote(replay)), "</pre>\n");
  }
  bool whitebox = false;
  for (const VerificationReport& r : c.reports()) whitebox |= r.mode() == "whitebox";
  if (whitebox) {
    s += "<p>White-box examination is deterministic: the same bundle, suspect file, <code>--m</code> and "
         "<code>--seed</code> give the same scores and p-values on any machine with the same SDK version.</p>\n";
  }
  s += "<p>Every score behind the tests is in the verdict file (<code>suspect_scores</code>, "
       "<code>reference_scores</code>, <code>benign_mean_scores</code>), so the statistics can also be recomputed by "
       "hand or in any statistics package.</p>\n</section>\n";
  return s;
}

constexpr char kStyle[] = R"css(
@page { size: A4; margin: 16mm 14mm; }
body { font: 10.5pt/1.45 "DejaVu Sans", "Liberation Sans", Arial, sans-serif; color: #1b1b1b; max-width: 62em; margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 19pt; margin: 0 0 .2em; } h2 { font-size: 14pt; border-bottom: 1px solid #bbb; margin-top: 1.6em; }
h3 { font-size: 11.5pt; margin: 1.2em 0 .4em; }
.meta { color: #555; margin: 0 0 1em; } .dim { color: #666; font-size: 92%; }
.finding { border-left: 8px solid; padding: .6em 1em; margin: 1em 0; background: #f6f6f6; page-break-inside: avoid; }
.finding h2 { border: none; margin: 0 0 .3em; font-size: 15pt; }
.finding.stolen { border-color: #b03a2e; background: #fbeeec; } .finding.clear { border-color: #1e8449; background: #edf7f0; }
.finding.inconclusive { border-color: #b7950b; background: #fbf6e6; }
.stolen-text { color: #b03a2e; } .clear-text { color: #1e8449; } .inconclusive-text { color: #9a7d0a; }
.warn { color: #9a3412; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 .8em; page-break-inside: auto; }
table.facts th { text-align: left; vertical-align: top; width: 11em; padding: .25em .6em .25em 0; font-weight: 600; }
table.facts td { padding: .25em 0; vertical-align: top; }
table.grid th, table.grid td { border: 1px solid #ccc; padding: .2em .45em; text-align: left; vertical-align: top; }
table.grid thead th { background: #eee; } tr.suspect td { font-weight: 600; color: #b03a2e; }
code, pre { font-family: "DejaVu Sans Mono", monospace; font-size: 88%; } code.hash { word-break: break-all; }
pre { white-space: pre-wrap; word-break: break-all; background: #f4f4f4; padding: .5em .7em; border: 1px solid #ddd; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; page-break-inside: avoid; }
figure { margin: 0; flex: 1 1 22em; min-width: 20em; } figure:empty { display: none; }
svg { width: 100%; height: auto; font: 10px "DejaVu Sans", sans-serif; }
svg .title { font-weight: 600; font-size: 11px; } svg .label { fill: #444; } svg .small { font-size: 9px; fill: #444; }
svg .strong { font-weight: 600; fill: #b03a2e; }
svg .axis { stroke: #333; stroke-width: 1; } svg .grid { stroke: #ddd; stroke-width: 1; }
svg .threshold { stroke: #b03a2e; stroke-width: 1.2; stroke-dasharray: 4 3; }
ul.warnings li { color: #9a3412; }
details pre { max-height: none; font-size: 75%; }
footer { margin-top: 2em; color: #666; font-size: 85%; border-top: 1px solid #ccc; padding-top: .5em; }
@media print { details { display: none; } section.line { page-break-inside: avoid; } }
)css";

}  // namespace

namespace {

// Every double in the record, nested and repeated ones included, is finite: the JSON format
// accepts "NaN" and "Infinity", which no figure of a real examination can be.
absl::Status CheckFinite(const google::protobuf::Message& m, const std::string& where) {
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const google::protobuf::Reflection* r = m.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    const std::string name = absl::StrCat(where, where.empty() ? "" : ".", f->name());
    if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_DOUBLE) {
      if (f->is_repeated()) {
        for (int k = 0; k < r->FieldSize(m, f); ++k) {
          if (!std::isfinite(r->GetRepeatedDouble(m, f, k))) {
            return absl::InvalidArgumentError(absl::StrCat("verdict: ", name, "[", k, "] is not a finite number"));
          }
        }
      } else if (!std::isfinite(r->GetDouble(m, f))) {
        return absl::InvalidArgumentError(absl::StrCat("verdict: ", name, " is not a finite number"));
      }
    } else if (f->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int k = 0; k < r->FieldSize(m, f); ++k) {
          MOVE_RETURN_IF_ERROR(CheckFinite(r->GetRepeatedMessage(m, f, k), absl::StrCat(name, "[", k, "]")));
        }
      } else if (r->HasField(m, f)) {
        MOVE_RETURN_IF_ERROR(CheckFinite(r->GetMessage(m, f), name));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Contradiction(const std::string& where, const std::string& what);

// The decision as an enum agrees with `stolen` and with the text (an older record without the
// enum is read from its text, which must then say one of the three).
template <typename Record>
absl::Status CheckOutcome(const Record& r, const std::string& where) {
  Record text_only;
  text_only.set_stolen(r.stolen());
  text_only.set_verdict(r.verdict());
  const Verdict from_text = OutcomeOf(text_only);
  if (from_text == VERDICT_UNSPECIFIED) {
    return Contradiction(where, absl::StrCat("the verdict reads '", r.verdict(),
                                             "', which is neither 'stolen', 'not stolen' nor 'inconclusive'"));
  }
  if (r.outcome() != VERDICT_UNSPECIFIED && r.outcome() != from_text) {
    return Contradiction(where, absl::StrCat("the outcome is '", VerdictName(r.outcome()), "' but the verdict reads '",
                                             r.verdict(), "'"));
  }
  return absl::OkStatus();
}

absl::Status Contradiction(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("verdict: ", where, " contradicts itself: ", what));
}

// A p-value and its log10 describe the same number (to 0.01 decades; p may underflow to 0).
absl::Status CheckP(double p, double log10_p, const std::string& where, const std::string& which) {
  if (p < 0 || p > 1) return absl::InvalidArgumentError(absl::StrCat("verdict: ", where, " ", which, " ", p, " is not in [0, 1]"));
  if (log10_p > 1e-9) {
    return absl::InvalidArgumentError(absl::StrCat("verdict: ", where, " log10 of the ", which, " is ", log10_p, " > 0"));
  }
  if (p > 1e-300 && std::abs(std::log10(p) - log10_p) > 0.01) {
    return Contradiction(where, absl::StrCat("the ", which, " ", p, " and its log10 ", log10_p, " differ"));
  }
  if (p == 0 && log10_p > -300) return Contradiction(where, absl::StrCat("the ", which, " is 0 but its log10 is ", log10_p));
  return absl::OkStatus();
}

// log10 p at or below log10 alpha (what every decision in the SDK compares), with room for
// the rounding of a JSON round trip.
bool AtOrBelow(double log10_p, double alpha) { return log10_p <= std::log10(alpha) + 1e-9; }

// A report whose recorded decision does not follow from its own figures is refused: a page that
// says "stolen" must be what the numbers beside it say.
absl::Status CheckReportConsistent(const VerificationReport& r, const std::string& where) {
  if (!(r.alpha() > 0 && r.alpha() < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("verdict: ", where, " alpha ", r.alpha(), " is not in (0, 1)"));
  }
  MOVE_RETURN_IF_ERROR(CheckP(r.p_value(), r.log10_p_value(), where, "paired p-value"));
  if (r.model_level_tested()) {
    MOVE_RETURN_IF_ERROR(CheckP(r.model_level_p_value(), r.model_level_log10_p_value(), where, "model-level p-value"));
    const bool below = AtOrBelow(r.model_level_log10_p_value(), r.alpha());
    const bool above = r.model_level_log10_p_value() >= std::log10(r.alpha()) - 1e-9;
    if (r.model_level_reject() ? !below : !above) {
      return Contradiction(where, absl::StrCat("model-level p ", r.model_level_p_value(), " against alpha ", r.alpha(),
                                               " but the model-level test is recorded as ",
                                               r.model_level_reject() ? "rejecting" : "not rejecting"));
    }
    if (r.benign_mean_scores_size() > 0 && r.benign_mean_scores_size() != r.model_level_benign_models()) {
      return Contradiction(where, absl::StrCat(r.benign_mean_scores_size(), " benign mean scores for ",
                                               r.model_level_benign_models(), " benign models"));
    }
  }
  if (r.suspect_scores_size() != r.reference_scores_size()) {
    return Contradiction(where, absl::StrCat(r.suspect_scores_size(), " suspect scores but ", r.reference_scores_size(),
                                             " reference scores"));
  }
  if ((r.verdict() == "stolen") != r.stolen()) {
    return Contradiction(where, absl::StrCat("stolen is ", r.stolen() ? "true" : "false", " but the verdict reads '",
                                             r.verdict(), "'"));
  }
  MOVE_RETURN_IF_ERROR(CheckOutcome(r, where));
  if (!r.stolen()) return absl::OkStatus();
  if (!AtOrBelow(r.log10_p_value(), r.alpha())) {
    return Contradiction(where, absl::StrCat("it claims theft but its paired p-value ", r.p_value(), " is above alpha ",
                                             r.alpha()));
  }
  if (r.model_level_tested() && !r.model_level_reject()) {
    return Contradiction(where, "it claims theft but its model-level test did not reject");
  }
  if (!r.classifier_sound()) return Contradiction(where, "it claims theft but its classifier failed the soundness check");
  if (!r.suspect_in_range()) return Contradiction(where, "it claims theft but the suspect is outside the range check");
  if (r.answers_inconsistent()) return Contradiction(where, "it claims theft from inconsistent answers");
  return absl::OkStatus();
}

absl::Status CheckCombinedConsistent(const CombinedVerdict& c) {
  if (c.rule() != "holm") return absl::InvalidArgumentError(absl::StrCat("verdict: rule '", c.rule(), "', expected holm"));
  if (!(c.alpha() > 0 && c.alpha() < 1)) {
    return absl::InvalidArgumentError(absl::StrCat("verdict: alpha ", c.alpha(), " is not in (0, 1)"));
  }
  if (c.lines_size() != c.reports_size()) {
    return Contradiction("the combined verdict", absl::StrCat(c.lines_size(), " lines but ", c.reports_size(), " reports"));
  }
  MOVE_RETURN_IF_ERROR(CheckP(c.p_value(), c.log10_p_value(), "the combined verdict", "p-value"));
  std::vector<std::string> rejected;
  for (int i = 0; i < c.lines_size(); ++i) {
    const EvidenceLine& l = c.lines(i);
    const VerificationReport& r = c.reports(i);
    const std::string where = absl::StrCat("line ", i + 1, " (", l.name(), ")");
    MOVE_RETURN_IF_ERROR(CheckReportConsistent(r, where));
    MOVE_RETURN_IF_ERROR(CheckP(l.p_value(), l.log10_p_value(), where, "line p-value"));
    const bool may_be_usable = r.classifier_sound() && r.suspect_in_range() && !r.answers_inconsistent();
    if (l.usable() && !may_be_usable) return Contradiction(where, "the line is marked usable but its report is not");
    if (l.usable()) {
      const double floor = std::max(r.log10_p_value(), r.model_level_tested() ? r.model_level_log10_p_value() : -1e300);
      if (l.log10_p_value() < floor - 1e-9) {
        return Contradiction(where, absl::StrCat("the line's p-value ", l.p_value(), " is smaller than its report's tests allow"));
      }
    }
    if (l.excluded_from_family()) {
      // Only a line the bundle itself declared unsound may leave the family, and it claims nothing.
      if (r.classifier_sound()) return Contradiction(where, "left out of Holm's family although its classifier is sound");
      if (l.usable() || l.rejected() || l.holm_threshold() != 0) {
        return Contradiction(where, "left out of Holm's family but recorded as usable, rejected or with a threshold");
      }
      continue;
    }
    if (!r.classifier_sound()) return Contradiction(where, "an unsound line is in Holm's family");
    if (!(l.holm_threshold() > 0 && l.holm_threshold() <= c.alpha() * (1 + 1e-12))) {
      return Contradiction(where, absl::StrCat("Holm threshold ", l.holm_threshold(), " is not in (0, alpha]"));
    }
    if (l.rejected()) {
      if (!l.usable()) return Contradiction(where, "an unusable line is recorded as rejected");
      if (!AtOrBelow(l.log10_p_value(), l.holm_threshold())) {
        return Contradiction(where, absl::StrCat("recorded as rejected but its p-value ", l.p_value(),
                                                 " is above its Holm threshold ", l.holm_threshold()));
      }
      rejected.push_back(l.name());
    }
  }
  for (int i = 0; i < c.lines_size(); ++i) {
    const EvidenceLine& l = c.lines(i);
    const VerificationReport& r = c.reports(i);
    const std::string where = absl::StrCat("line ", i + 1, " (", l.name(), ")");
    if (l.outcome() != VERDICT_UNSPECIFIED && l.outcome() != OutcomeOf(r)) {
      return Contradiction(where, absl::StrCat("the line records '", VerdictName(l.outcome()), "' but its report reads '",
                                               VerdictName(OutcomeOf(r)), "'"));
    }
    if (l.line() != LINE_UNSPECIFIED && l.line() != LineOf(r)) {
      return Contradiction(where, absl::StrCat("the line is ", LineTitle(l.line()), " but its report is ", LineTitle(LineOf(r))));
    }
  }
  if (c.stolen() != !rejected.empty()) {
    return Contradiction("the combined verdict", absl::StrCat("stolen is ", c.stolen() ? "true" : "false", " but ",
                                                              rejected.size(), " lines were rejected"));
  }
  if ((c.verdict() == "stolen") != c.stolen()) {
    return Contradiction("the combined verdict", absl::StrCat("stolen is ", c.stolen() ? "true" : "false",
                                                              " but the verdict reads '", c.verdict(), "'"));
  }
  MOVE_RETURN_IF_ERROR(CheckOutcome(c, "the combined verdict"));
  if (c.decided_by_lines_size() > 0 && c.decided_by_lines_size() != static_cast<int>(rejected.size())) {
    return Contradiction("the combined verdict", absl::StrCat(c.decided_by_lines_size(), " deciding lines recorded but ",
                                                              rejected.size(), " lines were rejected"));
  }
  std::vector<std::string> named = absl::StrSplit(c.decided_by(), ", ", absl::SkipEmpty());
  std::sort(named.begin(), named.end());
  std::sort(rejected.begin(), rejected.end());
  if (named != rejected) {
    return Contradiction("the combined verdict", absl::StrCat("decided_by names '", c.decided_by(), "' but the rejected lines are '",
                                                              absl::StrJoin(rejected, ", "), "'"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CombinedVerdict> ParseVerdictJson(absl::string_view json) {
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  CombinedVerdict c;
  if (absl::StrContains(json, "\"move.combined.v1\"")) {
    auto st = google::protobuf::util::JsonStringToMessage(std::string(json), &c, opts);
    if (!st.ok() || c.format() != "move.combined.v1") {
      return absl::InvalidArgumentError(absl::StrCat("verdict: not a move.combined.v1 verdict (", std::string(st.message()), ")"));
    }
    if (c.reports_size() == 0) return absl::InvalidArgumentError("verdict: the combined verdict holds no report");
    MOVE_RETURN_IF_ERROR(CheckFinite(c, ""));
    MOVE_RETURN_IF_ERROR(CheckCombinedConsistent(c));
    return c;
  }
  VerificationReport r;
  auto st = google::protobuf::util::JsonStringToMessage(std::string(json), &r, opts);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("verdict: not a move_verify report (move.report.v1 or move.combined.v1): ", std::string(st.message())));
  }
  if (r.format() != "move.report.v1") {
    return absl::InvalidArgumentError(absl::StrCat("verdict: format is '", r.format(), "', expected move.report.v1 or move.combined.v1"));
  }
  MOVE_RETURN_IF_ERROR(CheckFinite(r, ""));
  MOVE_RETURN_IF_ERROR(CheckReportConsistent(r, "the report"));
  c.set_format("move.report.v1");
  c.set_alpha(r.alpha());
  c.set_stolen(r.stolen());
  c.set_verdict(r.verdict());
  c.set_p_value(std::max(r.p_value(), r.model_level_tested() ? r.model_level_p_value() : r.p_value()));
  c.set_log10_p_value(std::max(r.log10_p_value(), r.model_level_tested() ? r.model_level_log10_p_value() : r.log10_p_value()));
  c.set_started_at(r.started_at());
  c.set_finished_at(r.finished_at());
  *c.mutable_command_line() = r.command_line();
  *c.add_reports() = r;
  return c;
}

absl::StatusOr<std::string> RenderLegalReportHtml(absl::string_view verdict_json, const LegalReportOptions& o) {
  MOVE_ASSIGN_OR_RETURN(const CombinedVerdict c, ParseVerdictJson(verdict_json));
  const std::string verdict_sha = core::Sha256Hex(verdict_json);
  const Finding f = FindingOf(c);
  std::string s;
  s.reserve(64 << 10);
  absl::StrAppend(&s,
                  "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                  "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
                  "img-src data:; base-uri 'none'; form-action 'none'\">\n"
                  "<meta name=\"referrer\" content=\"no-referrer\">\n<title>Ownership examination: ",
                  Esc(FindingWord(f)), o.case_reference.empty() ? "" : absl::StrCat(" &ndash; ", Esc(o.case_reference)),
                  "</title>\n<style>", kStyle, "</style></head><body>\n");
  absl::StrAppend(&s, "<header><h1>Ownership examination of a suspect model</h1>\n<p class=\"meta\">",
                  o.case_reference.empty() ? "" : absl::StrCat("Case ", Esc(o.case_reference), " &middot; "),
                  o.examiner.empty() ? "" : absl::StrCat("Examiner ", Esc(o.examiner), " &middot; "), "Examination finished ",
                  Esc(c.finished_at().empty() ? "(time not recorded)" : c.finished_at()), " &middot; MOVE SDK ",
                  Esc(c.reports(0).sdk_version()), "</p></header>\n");
  absl::StrAppend(&s, "<section class=\"finding ", FindingClass(f), "\"><h2>Finding: ", Esc(FindingWord(f)), "</h2>\n",
                  ClaimParagraph(c, f), "<p class=\"dim\">Verdict as recorded: ", Esc(c.verdict()), "</p></section>\n");
  s += "<section><h2>What was tested</h2>\n<p>Before training its model, the vendor re-rendered a small share of its "
       "training images toward a secret style, labels unchanged (MOVE: model ownership verification with an external "
       "feature). Models trained on that data, or derived from such a model by fine-tuning, pruning or distillation, "
       "react to the style in a way that independent models do not; the feature causes no misclassification and is not "
       "a backdoor. The vendor built and signed a verifier bundle beforehand: classifiers trained on populations of "
       "watermarked and benign models, a benign reference model, verification images, and the scores of benign models "
       "held out from all training. The examination asks whether the suspect responds like the vendor's model or like "
       "those independent models.</p>\n";
  absl::StrAppend(&s, "<p>Null hypothesis H<sub>0</sub>: the suspect is independent of the vendor's model. Each line "
                      "claims theft only when two one-sided tests reject H<sub>0</sub> at alpha = ",
                  Esc(Num(c.alpha() > 0 ? c.alpha() : c.reports(0).alpha())),
                  ": a paired test against the benign reference on the same samples, and a model-level test against the "
                  "held-out benign models; and only when its classifier passed its soundness check and the suspect is "
                  "within the range of models that check covers. Otherwise the line answers &ldquo;not stolen&rdquo; or "
                  "&ldquo;inconclusive&rdquo;.</p>\n</section>\n");
  if (c.lines_size() > 0) {
    absl::StrAppend(&s, "<section><h2>Lines of evidence, combined</h2>\n", LinesTable(c), "</section>\n");
  }
  s += "<section><h2>Evidence</h2>\n";
  for (int i = 0; i < c.reports_size(); ++i) s += LineSection(c.reports(i), i);
  s += "</section>\n";
  s += CalibrationSection(c);
  s += CustodySection(c, verdict_sha, o);
  s += LimitationsSection(c);
  s += ReproduceSection(c);
  absl::StrAppend(&s, "<details><summary>The verdict file as recorded (", Esc(o.verdict_file_name),
                  ")</summary><pre>", Esc(verdict_json), "</pre></details>\n");
  absl::StrAppend(&s, "<footer>Rendered by move_report (MOVE SDK ", kSdkVersion, ") from ", Esc(o.verdict_file_name),
                  ", SHA-256 ", Esc(verdict_sha),
                  ". This page loads nothing from anywhere: every figure is drawn in the file itself.</footer>\n</body></html>\n");
  return s;
}

// ---------------------------------------------------------------------------------------------
// PDF.

namespace {

std::string FileUrl(const std::string& absolute_path) {
  std::string url = "file://";
  for (unsigned char c : absolute_path) {
    if (absl::ascii_isalnum(c) || std::string_view("/-._~").find(static_cast<char>(c)) != std::string_view::npos) {
      url += static_cast<char>(c);
    } else {
      absl::StrAppendFormat(&url, "%%%02X", c);
    }
  }
  return url;
}

// Finds `name` on the PATH (or takes it as given when it holds a '/').
std::string FindExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

struct TempDir {
  std::string path;
  ~TempDir() {
    if (!path.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  }
};

}  // namespace

absl::StatusOr<std::string> FindChromium(const PdfOptions& o) {
  const std::string chromium = FindExecutable(o.chromium.empty() ? "chromium" : o.chromium);
  if (chromium.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pdf: headless Chromium not found (", o.chromium.empty() ? "chromium" : o.chromium,
        "); install Debian's package `chromium` (tools/setup.sh does), or write the HTML alone"));
  }
  return chromium;
}

absl::Status PrintHtmlToPdf(const std::string& html_path, const std::string& pdf_path, const PdfOptions& o) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(html_path, ec)) return absl::NotFoundError(absl::StrCat("html: no file ", html_path));
  if (!o.overwrite && std::filesystem::exists(pdf_path, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("pdf: ", pdf_path, " already exists; a report is never overwritten"));
  }
  MOVE_ASSIGN_OR_RETURN(const std::string chromium, FindChromium(o));
  TempDir tmp;
  {
    std::string tmpl = (std::filesystem::temp_directory_path(ec) / "move-report-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("pdf: cannot create a temporary folder");
    tmp.path = tmpl;
  }
  const std::string out = tmp.path + "/report.pdf", log = tmp.path + "/chromium.log";
  const std::string url = FileUrl(std::filesystem::absolute(html_path, ec).string());
  std::vector<std::string> args = {chromium,
                                   "--headless",
                                   "--disable-gpu",
                                   "--no-first-run",
                                   "--no-default-browser-check",
                                   "--disable-extensions",
                                   "--disable-sync",
                                   "--disable-background-networking",
                                   "--disable-component-update",
                                   "--disable-default-apps",
                                   "--no-proxy-server",
                                   "--host-resolver-rules=MAP * ~NOTFOUND",
                                   "--user-data-dir=" + tmp.path + "/profile",
                                   "--no-pdf-header-footer",
                                   "--print-to-pdf-no-header",
                                   "--print-to-pdf=" + out};
  // Chromium refuses to start as root with its sandbox on; the page it prints is our own,
  // escaped and under a Content-Security-Policy that forbids every fetch.
  if (geteuid() == 0) args.push_back("--no-sandbox");
  args.push_back(url);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = {"HOME=" + tmp.path, "TMPDIR=" + tmp.path, "PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  std::vector<char*> env;
  for (std::string& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, chromium.c_str(), &actions, &attr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return absl::InternalError(absl::StrCat("pdf: cannot start ", chromium, ": ", strerror(rc)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.timeout_ms);
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(-pid, SIGKILL);  // the browser's helper processes too
  if (!exited) {
    waitpid(pid, &status, 0);
    return absl::DeadlineExceededError(absl::StrCat("pdf: Chromium did not finish within ", o.timeout_ms, " ms"));
  }
  absl::StatusOr<std::string> pdf = core::ReadFile(out, int64_t{1} << 30);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !pdf.ok() || !absl::StartsWith(*pdf, "%PDF-")) {
    absl::StatusOr<std::string> text = core::ReadFile(log, 1 << 20);
    std::string last;
    if (text.ok()) {
      std::vector<absl::string_view> lines = absl::StrSplit(*text, '\n', absl::SkipWhitespace());
      if (!lines.empty()) last = std::string(lines.back());
    }
    return absl::InternalError(absl::StrCat("pdf: Chromium did not print the report (",
                                            WIFEXITED(status) ? absl::StrCat("exit ", WEXITSTATUS(status)) : "killed by a signal",
                                            last.empty() ? "" : absl::StrCat(": ", last), ")"));
  }
  return o.overwrite ? core::WriteFileAtomically(pdf_path, *pdf) : core::WriteNewFileAtomically(pdf_path, *pdf);
}

// ---------------------------------------------------------------------------------------------
// Signatures.

namespace {

constexpr char kSignatureFormat[] = "move.report_signature.v1";

absl::StatusOr<std::string> FromHex(const std::string& hex, size_t bytes, absl::string_view what) {
  if (hex.size() != 2 * bytes || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("signature: ", what, " is not ", bytes, " bytes of hex"));
  }
  return absl::HexStringToBytes(hex);
}

void Field(std::string* s, absl::string_view key, absl::string_view value) {
  absl::StrAppend(s, key, "=", value.size(), ":", value, "\n");
}

bool PlainName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

std::string SignatureStatement(const ReportSignature& g) {
  std::string s;
  Field(&s, "format", g.format());
  Field(&s, "signed_at", g.signed_at());
  Field(&s, "examiner", g.examiner());
  Field(&s, "case_reference", g.case_reference());
  Field(&s, "sdk_version", g.sdk_version());
  Field(&s, "public_key", g.public_key());
  Field(&s, "files", absl::StrCat(g.files_size()));
  for (const ReportSignature::SignedFile& f : g.files()) {
    Field(&s, "role", f.role());
    Field(&s, "name", f.name());
    Field(&s, "sha256", f.sha256());
  }
  return s;
}

absl::StatusOr<ReportSignature> SignReportFiles(const std::vector<FileToSign>& files, const SigningKey& key,
                                                const LegalReportOptions& o) {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  if (files.empty()) return absl::InvalidArgumentError("signature: no files to sign");
  if (key.secret_key.size() != crypto_sign_SECRETKEYBYTES || key.public_key.size() != crypto_sign_PUBLICKEYBYTES) {
    return absl::InvalidArgumentError("signature: the examiner's key is not an Ed25519 key pair");
  }
  unsigned char derived[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_ed25519_sk_to_pk(derived, reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  if (std::string(reinterpret_cast<const char*>(derived), sizeof(derived)) != key.public_key) {
    return absl::InvalidArgumentError("signature: the key file's public and secret halves do not match");
  }
  ReportSignature g;
  g.set_format(kSignatureFormat);
  g.set_signed_at(absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()));
  g.set_examiner(o.examiner);
  g.set_case_reference(o.case_reference);
  g.set_sdk_version(kSdkVersion);
  g.set_public_key(absl::BytesToHexString(key.public_key));
  g.set_signer_fingerprint(KeyFingerprint(key.public_key));
  for (const FileToSign& f : files) {
    absl::StatusOr<std::string> bytes = core::ReadFile(f.path);
    if (!bytes.ok()) return absl::Status(bytes.status().code(), absl::StrCat("signature: ", f.role, ": ", bytes.status().message()));
    ReportSignature::SignedFile* s = g.add_files();
    s->set_role(f.role);
    s->set_name(std::filesystem::path(f.path).filename().string());
    s->set_sha256(core::Sha256Hex(*bytes));
  }
  const std::string statement = SignatureStatement(g);
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(statement.data()), statement.size(),
                       reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  g.set_signature(absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(sig), sizeof(sig))));
  return g;
}

absl::Status CheckReportSignature(const ReportSignature& g, const std::string& folder, const std::string& trusted) {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  if (g.format() != kSignatureFormat) {
    return absl::InvalidArgumentError(absl::StrCat("signature: format is '", g.format(), "', expected ", kSignatureFormat));
  }
  if (g.files_size() == 0) return absl::InvalidArgumentError("signature: signs no file");
  MOVE_ASSIGN_OR_RETURN(const std::string pk, FromHex(g.public_key(), crypto_sign_PUBLICKEYBYTES, "public_key"));
  MOVE_ASSIGN_OR_RETURN(const std::string sig, FromHex(g.signature(), crypto_sign_BYTES, "signature"));
  const std::string statement = SignatureStatement(g);
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(sig.data()),
                                  reinterpret_cast<const unsigned char*>(statement.data()), statement.size(),
                                  reinterpret_cast<const unsigned char*>(pk.data())) != 0) {
    return absl::UnauthenticatedError("signature: does not verify: the signature record was altered or not made with its key");
  }
  if (!trusted.empty() && trusted != pk) {
    return absl::PermissionDeniedError(absl::StrCat("signature: valid, but made by key ", KeyFingerprint(pk).substr(0, 16),
                                                    "..., not the examiner's key given"));
  }
  for (const ReportSignature::SignedFile& f : g.files()) {
    if (!PlainName(f.name())) return absl::InvalidArgumentError(absl::StrCat("signature: file name '", f.name(), "' is not a plain name"));
    const std::string path = (std::filesystem::path(folder) / f.name()).string();
    absl::StatusOr<std::string> bytes = core::ReadFile(path);
    if (!bytes.ok()) return absl::Status(bytes.status().code(), absl::StrCat("signature: ", f.role(), ": ", bytes.status().message()));
    if (core::Sha256Hex(*bytes) != f.sha256()) {
      return absl::DataLossError(absl::StrCat("signature: ", path, " (", f.role(),
                                              ") has changed since it was signed: its SHA-256 is not the one signed"));
    }
  }
  return absl::OkStatus();
}

std::string ReportSignatureToJson(const ReportSignature& g) { return core::ProtoToJson(g); }

absl::StatusOr<ReportSignature> ParseReportSignatureJson(absl::string_view json) {
  ReportSignature g;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(std::string(json), &g, opts);
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("signature: not a signature record: ", std::string(st.message())));
  return g;
}

}  // namespace move
