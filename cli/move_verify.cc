// move_verify: examines a suspect model with a signed MOVE verifier bundle.
//
// White-box (the suspect's weights are at hand):
//   move_verify --bundle=victim.move --suspect=suspect.pt [--trusted_key=vendor.key.pub]
//               [--m=0] [--alpha=0.01] [--seed=0] [--device=cpu] [--threads=0]
//               [--report=report.json] [--reference_compatible]
// Black-box (only predictions): one of
//   move_verify --mode=blackbox --bundle=B --suspect=suspect.pt            (local file)
//   move_verify --mode=blackbox --bundle=B --endpoint=http://host:port/v1/predict
//   move_verify --mode=blackbox --bundle=B --export_queries=DIR            (offline, step 1)
//   move_verify --mode=blackbox --bundle=B --queries=DIR --answers=answers.csv  (step 2)
//   move_verify --mode=blackbox --bundle=B --replay=case.transcript.jsonl  (no new queries)
// with [--sequential] [--max_queries] [--transcript=PATH] [--accept_logits] [--timeout_ms]
// [--retries] [--max_qps]. Every query and answer goes to the transcript (default: the report
// path + ".transcript.jsonl"), which must not exist yet.
//
// Bundles with a UAP fingerprint verifier: the suspect (file or endpoint, or a replay of
// <transcript>.fingerprint.jsonl) is also examined by fingerprint (--fingerprints, default 20),
// and the JSON is then the combined verdict (move.combined.v1: Holm over the lines, every
// line's full report inside); --fingerprint=false keeps MOVE alone; --mode=fingerprint runs
// the fingerprint line alone (--suspect, --endpoint or --replay of its own transcript).
// Bundles with a label-agreement verifier likewise add that line (the suspect's top labels on
// the victim's mistakes; transcript <transcript>.label-agreement.jsonl, --label_errors);
// --label_agreement=false leaves it out, --mode=label-agreement runs it alone.
//
// The suspect is hostile by assumption. White-box reads its weights only (TorchScript,
// torch.save state dicts or safetensors) into the SDK's own graph: none of its code runs. A
// local suspect examined in black-box or fingerprint mode runs in a sandboxed child process
// (no file or network access, no new processes, --suspect_memory_mb, --suspect_cpu_seconds,
// --timeout_ms per request).
//
// Prints a human summary and writes the JSON report (atomically) to --report; move_report
// renders it as the legal report (HTML and PDF). Exit status 0
// when the examination ran, whatever the verdict; 1 with one readable line on stderr when it
// could not run (bad flags or inputs); 3 when the examination failed because of the suspect
// ("examination failed: ..."; no verdict).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "sdk/blackbox.h"
#include "sdk/bundle.h"
#include "sdk/fingerprint.h"
#include "sdk/label_agreement.h"
#include "sdk/ownership.h"
#include "sdk/runtime.h"
#include "sdk/verdict.h"
#include "sdk/prediction_protocol.pb.h"
#include <google/protobuf/util/json_util.h>

ABSL_FLAG(std::string, bundle, "", "Signed verifier bundle (.move). Required.");
ABSL_FLAG(std::string, suspect, "", "Suspect TorchScript model file (from the SDK or PyTorch).");
ABSL_FLAG(std::string, trusted_key, "", "Vendor's public key file; the bundle must be signed by it.");
ABSL_FLAG(std::string, mode, "whitebox",
          "whitebox (needs the suspect's weights), blackbox (needs its predictions), fingerprint (the UAP "
          "fingerprint line alone; needs its predictions) or label-agreement (the label-agreement line alone; needs "
          "its top labels).");
ABSL_FLAG(int64_t, m, 0,
          "Verification samples to use; 0 = the mode's default (white-box: all in the bundle; black-box: 100, "
          "21 queries each with a style-contrast bundle, 10 with the paper's design).");
ABSL_FLAG(std::string, endpoint, "", "Black-box: the suspect's prediction URL (sdk/prediction_protocol.proto).");
ABSL_FLAG(std::string, export_queries, "", "Black-box, offline step 1: write the query images and manifest to this folder.");
ABSL_FLAG(std::string, queries, "", "Black-box, offline step 2: the folder --export_queries wrote.");
ABSL_FLAG(std::string, answers, "", "Black-box, offline step 2: the suspect's answers (JSON or CSV id,p0,p1,...).");
ABSL_FLAG(std::string, replay, "", "Black-box: re-run from a transcript's recorded answers, without new queries.");
ABSL_FLAG(std::string, transcript, "",
          "Black-box: transcript of every query and answer (default: <report>.transcript.jsonl, else "
          "move_transcript.jsonl); must not exist.");
ABSL_FLAG(bool, sequential, false, "Black-box: stop as soon as the evidence is decisive (anytime-valid betting test).");
ABSL_FLAG(int64_t, max_queries, 0, "Black-box: hard cap on images sent; 0 = every sample's queries.");
ABSL_FLAG(bool, accept_logits, false, "Black-box: apply softmax to answers that are not probability vectors.");
ABSL_FLAG(double, min_relative_accuracy, 0.5,
          "Range check: a suspect whose clean accuracy on the verification images is below this fraction of the "
          "benign reference's is outside what the soundness check covers; a flag is then reported as inconclusive. "
          "0 disables.");
ABSL_FLAG(int, timeout_ms, 60000,
          "Black-box: wall-clock limit per request (HTTP endpoint, or a local suspect's sandboxed code).");
ABSL_FLAG(int64_t, suspect_memory_mb, 8192,
          "Black-box with a local --suspect: memory limit of the sandbox its code runs in (MiB).");
ABSL_FLAG(int64_t, suspect_cpu_seconds, 1800,
          "Black-box with a local --suspect: CPU-time limit of the sandbox its code runs in, for the whole examination.");
ABSL_FLAG(int, retries, 3, "Black-box HTTP: retries after errors that may pass (timeouts, 5xx, 429, garbled bodies).");
ABSL_FLAG(double, max_qps, 0, "Black-box HTTP: at most this many requests per second; 0 = no limit.");
ABSL_FLAG(double, alpha, 0.01, "Significance level of the one-sided paired t-test.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the sample subset when --m is below the bundle's set.");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N.");
ABSL_FLAG(int, threads, 0, "LibTorch CPU threads; 0 = all cores.");
ABSL_FLAG(std::string, report, "", "Where to write the JSON report (default: print it).");
ABSL_FLAG(bool, overwrite, false,
          "Replace an existing --report. Never an input of the run; transcripts and query exports are never "
          "replaced.");
ABSL_FLAG(bool, fingerprint, true,
          "When the bundle has a UAP fingerprint verifier, also examine the suspect by fingerprint (same channel: "
          "--suspect, --endpoint, or --replay of a transcript with fingerprint queries) and report the combined "
          "verdict (Holm over the lines of evidence).");
ABSL_FLAG(int64_t, fingerprints, 20, "Fingerprints to query (2 x points per fingerprint queries each); 0 = all in the bundle.");
ABSL_FLAG(bool, label_agreement, true,
          "When the bundle has a label-agreement verifier, also examine the suspect by its labels on the victim's "
          "mistakes (same channel; --replay of a transcript with label-agreement queries) and report the combined "
          "verdict.");
ABSL_FLAG(int64_t, label_errors, 0,
          "Label agreement: the victim's mistakes to ask about (with covers in the bundle's proportion); 0 = all in "
          "the bundle.");
ABSL_FLAG(bool, reference_compatible, false,
          "Also report the reference code's 40 x (m = 10) harmonic-mean p (for comparison with published numbers only).");

namespace {

// The exact command line, recorded in every report (chain of custody; the legal report's
// "how to reproduce").
std::vector<std::string>& CommandLine() {
  static std::vector<std::string> argv;
  return argv;
}

void Stamp(move::VerificationReport* r) {
  r->clear_command_line();
  for (const std::string& a : CommandLine()) r->add_command_line(a);
}

// A combined verdict: the command line, and the span of its lines' examinations.
void Stamp(move::CombinedVerdict* c) {
  c->clear_command_line();
  for (const std::string& a : CommandLine()) c->add_command_line(a);
  for (move::VerificationReport& r : *c->mutable_reports()) {
    Stamp(&r);
    // RFC 3339 UTC strings of one format order as their times.
    if (c->started_at().empty() || (!r.started_at().empty() && r.started_at() < c->started_at())) {
      c->set_started_at(r.started_at());
    }
    if (r.finished_at() > c->finished_at()) c->set_finished_at(r.finished_at());
  }
}

absl::Status WriteOrPrintJson(const std::string& json) {
  if (absl::GetFlag(FLAGS_report).empty()) {
    std::printf("%s", json.c_str());
    return absl::OkStatus();
  }
  const std::string& path = absl::GetFlag(FLAGS_report);
  MOVE_RETURN_IF_ERROR(absl::GetFlag(FLAGS_overwrite) ? move::core::WriteFileAtomically(path, json)
                                                      : move::core::WriteNewFileAtomically(path, json));
  std::printf("  report:         %s\n", absl::GetFlag(FLAGS_report).c_str());
  return absl::OkStatus();
}

// The model-level test's line: the suspect's statistic against the held-out benign models'.
void PrintModelLevel(const move::VerificationReport& r) {
  if (!r.model_level_tested()) {
    std::printf("  model level:    not tested (the bundle has no benign score table)\n");
    return;
  }
  std::string means;
  for (double x : r.benign_mean_scores()) absl::StrAppendFormat(&means, " %.3f", x);
  std::printf("  model level:    p %.3g (log10 %.2f): suspect's %s %.3f vs %d held-out benign models'%s (%s)\n",
              r.model_level_p_value(), r.model_level_log10_p_value(), std::string(move::ModelLevelStatisticOf(r)).c_str(),
              move::ModelLevelSuspectValueOf(r), r.model_level_benign_models(), means.c_str(),
              r.model_level_reject() ? "rejects" : "does not reject");
}

// The consistency line: images asked twice and whether their answers agreed.
void PrintConsistency(const move::VerificationReport& r) {
  if (r.repeat_queries() == 0) return;
  std::printf("  consistency:    %lld images asked twice, %lld answered differently (largest difference %.2g, tolerance %.2g)%s\n",
              static_cast<long long>(r.repeat_queries()), static_cast<long long>(r.repeat_disagreements()),
              r.max_repeat_difference(), r.repeat_tolerance(), r.answers_inconsistent() ? ": INCONSISTENT" : "");
}

// The end of a query line's summary beside MOVE: consistency, soundness, transcript, warnings.
void PrintLineTail(const move::VerificationReport& r) {
  PrintConsistency(r);
  std::printf("  verifier:       %s\n", r.classifier_sound() ? "passed its soundness check" : "FAILED its soundness check");
  if (!r.transcript_path().empty()) {
    std::printf("  transcript:     %s (sha256 %s)\n", r.transcript_path().c_str(), r.transcript_sha256().c_str());
  }
  for (const auto& w : r.warnings()) std::printf("  warning: %s\n", w.c_str());
  std::printf("\n");
}

absl::StatusOr<std::unique_ptr<move::SuspectChannel>> OpenEndpoint(const std::string& endpoint) {
  move::HttpChannelOptions h;
  h.read_timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  h.request_deadline_ms = absl::GetFlag(FLAGS_timeout_ms);
  h.retries = absl::GetFlag(FLAGS_retries);
  h.max_requests_per_second = absl::GetFlag(FLAGS_max_qps);
  absl::StatusOr<std::unique_ptr<move::SuspectChannel>> c = move::OpenHttpChannel(endpoint, h);
  if (!c.ok()) return absl::Status(c.status().code(), absl::StrCat("--endpoint: ", c.status().message()));
  return c;
}

// A local suspect file whose code must run (black-box, fingerprint): in the sandbox, on the CPU.
absl::StatusOr<std::unique_ptr<move::SuspectChannel>> OpenSandboxed(const std::string& path) {
  move::SandboxOptions s;
  s.memory_bytes = absl::GetFlag(FLAGS_suspect_memory_mb) << 20;
  s.cpu_seconds = absl::GetFlag(FLAGS_suspect_cpu_seconds);
  s.request_timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  s.load_timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  absl::StatusOr<std::unique_ptr<move::SuspectChannel>> c = move::OpenSandboxedModelChannel(path, s);
  if (!c.ok() && c.status().code() != absl::StatusCode::kAborted) {
    return absl::Status(c.status().code(), absl::StrCat("--suspect: ", c.status().message()));
  }
  return c;
}

std::string TranscriptBase() {
  std::string t = absl::GetFlag(FLAGS_transcript);
  if (t.empty()) {
    t = absl::GetFlag(FLAGS_report).empty() ? "move_transcript.jsonl" : absl::GetFlag(FLAGS_report) + ".transcript.jsonl";
  }
  return t;
}

// How a query line beside the MOVE line reaches the suspect: the MOVE line's channel (a file,
// an endpoint), or a replay of the line's own transcript (<replay><suffix>). Returns nullopt
// with a printed reason when the line cannot run here (offline answers, no transcript to
// replay). `alone` (--mode=<the line>): --replay names the line's transcript itself and new
// queries go to the transcript path without a suffix.
struct LineChannel {
  std::unique_ptr<move::SuspectChannel> channel;
  std::string transcript_path;  // "" for a replay
};
absl::StatusOr<std::optional<LineChannel>> OpenLineChannel(const move::OpenedBundle& bundle, const char* title,
                                                           const char* mode, const std::string& suffix, bool alone) {
  const std::string suspect = absl::GetFlag(FLAGS_suspect), endpoint = absl::GetFlag(FLAGS_endpoint),
                    replay = absl::GetFlag(FLAGS_replay);
  LineChannel c;
  if (!replay.empty()) {
    const std::string transcript = alone ? replay : replay + suffix;
    if (!std::filesystem::exists(transcript)) {
      if (alone) return absl::NotFoundError(absl::StrCat("--replay: ", transcript, " does not exist"));
      std::printf("%s: not run (no %s to replay)\n\n", title, transcript.c_str());
      return std::nullopt;
    }
    MOVE_ASSIGN_OR_RETURN(c.channel, move::OpenReplayChannel(transcript));
  } else if (!suspect.empty()) {
    // White-box: the same weights-only reading as the MOVE line; otherwise the suspect's code
    // runs in the sandbox.
    if (absl::GetFlag(FLAGS_mode) == "whitebox") {
      MOVE_ASSIGN_OR_RETURN(c.channel, move::OpenWeightsChannel(bundle, suspect, absl::GetFlag(FLAGS_device)));
    } else {
      MOVE_ASSIGN_OR_RETURN(c.channel, OpenSandboxed(suspect));
    }
    c.transcript_path = TranscriptBase() + (alone ? "" : suffix);
  } else if (!endpoint.empty()) {
    MOVE_ASSIGN_OR_RETURN(c.channel, OpenEndpoint(endpoint));
    c.transcript_path = TranscriptBase() + (alone ? "" : suffix);
  } else if (alone) {
    return absl::InvalidArgumentError(absl::StrCat(mode, " mode needs one of --suspect, --endpoint or --replay"));
  } else {
    std::printf("%s: not run (offline answers cover the MOVE queries only)\n\n", title);
    return std::nullopt;
  }
  return std::optional<LineChannel>(std::move(c));
}

// The fingerprint line: runs when the bundle has a fingerprint verifier and the suspect can be
// queried here (OpenLineChannel). Returns nullopt with a printed reason otherwise.
absl::StatusOr<std::optional<move::VerificationReport>> RunFingerprint(const move::OpenedBundle& bundle,
                                                                       bool alone = false) {
  if (!alone && !absl::GetFlag(FLAGS_fingerprint)) return std::nullopt;
  if (!bundle.contents.has_fingerprint() || bundle.contents.fingerprint().method().empty()) {
    if (alone) return absl::FailedPreconditionError("the bundle has no fingerprint verifier (built without one)");
    return std::nullopt;
  }
  move::FingerprintVerifyOptions o;
  o.fingerprints = absl::GetFlag(FLAGS_fingerprints);
  o.alpha = absl::GetFlag(FLAGS_alpha);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.accept_logits = absl::GetFlag(FLAGS_accept_logits);
  o.min_relative_accuracy = absl::GetFlag(FLAGS_min_relative_accuracy);
  o.sequential = absl::GetFlag(FLAGS_sequential);
  MOVE_ASSIGN_OR_RETURN(std::optional<LineChannel> lc,
                        OpenLineChannel(bundle, "UAP fingerprint", "fingerprint", ".fingerprint.jsonl", alone));
  if (!lc) return std::nullopt;
  o.transcript_path = lc->transcript_path;
  absl::StatusOr<move::VerificationReport> rep = move::VerifyFingerprint(bundle, *lc->channel, o);
  if (!rep.ok()) return absl::Status(rep.status().code(), absl::StrCat("fingerprint: ", rep.status().message()));
  const move::VerificationReport& r = *rep;
  std::printf("UAP fingerprint verification of %s\n", r.suspect_channel().c_str());
  std::printf("  verdict:        %s\n", r.verdict().c_str());
  std::printf("  p-value:        %.3g (log10 %.2f), %s, alpha %.3g, %lld fingerprints\n", r.p_value(), r.log10_p_value(),
              r.test().c_str(), r.alpha(), static_cast<long long>(r.m()));
  std::printf("  similarity:     suspect %.3f vs reference %.3f to the victim's fingerprints (delta %+.4f)\n",
              r.suspect_mean_score(), r.reference_mean_score(), r.delta_mu());
  std::printf("  clean accuracy: suspect %.3f vs reference %.3f on the fingerprint points (range check %s)\n",
              r.suspect_clean_accuracy(), r.reference_clean_accuracy(), r.suspect_in_range() ? "passed" : "FAILED");
  std::printf("  agreement:      suspect answers as the victim did on %.1f%% of the points and %.1f%% of the UAP-perturbed "
              "points (reference %.1f%% / %.1f%%)\n",
              100 * r.fingerprint_clean_agreement(), 100 * r.fingerprint_perturbed_agreement(),
              100 * r.reference_clean_agreement(), 100 * r.reference_perturbed_agreement());
  PrintModelLevel(r);
  std::printf("  queries:        %lld%s\n", static_cast<long long>(r.queries()), r.stopped_early() ? " (stopped early: decisive)" : "");
  PrintLineTail(r);
  return std::optional<move::VerificationReport>(r);
}

// The label-agreement line, like RunFingerprint.
absl::StatusOr<std::optional<move::VerificationReport>> RunLabelAgreement(const move::OpenedBundle& bundle,
                                                                          bool alone = false) {
  if (!alone && !absl::GetFlag(FLAGS_label_agreement)) return std::nullopt;
  if (!bundle.contents.has_label_agreement() || bundle.contents.label_agreement().method().empty()) {
    if (alone) return absl::FailedPreconditionError("the bundle has no label-agreement verifier (built without one)");
    return std::nullopt;
  }
  move::LabelAgreementVerifyOptions o;
  o.errors = absl::GetFlag(FLAGS_label_errors);
  o.alpha = absl::GetFlag(FLAGS_alpha);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.accept_logits = absl::GetFlag(FLAGS_accept_logits);
  o.min_relative_accuracy = absl::GetFlag(FLAGS_min_relative_accuracy);
  MOVE_ASSIGN_OR_RETURN(std::optional<LineChannel> lc, OpenLineChannel(bundle, "Label agreement", "label-agreement",
                                                                       ".label-agreement.jsonl", alone));
  if (!lc) return std::nullopt;
  o.transcript_path = lc->transcript_path;
  absl::StatusOr<move::VerificationReport> rep = move::VerifyLabelAgreement(bundle, *lc->channel, o);
  if (!rep.ok()) return absl::Status(rep.status().code(), absl::StrCat("label agreement: ", rep.status().message()));
  const move::VerificationReport& r = *rep;
  std::printf("Label agreement on the victim's mistakes, %s\n", r.suspect_channel().c_str());
  std::printf("  verdict:        %s\n", r.verdict().c_str());
  std::printf("  p-value:        %.3g (log10 %.2f), %s, alpha %.3g, %lld of the victim's mistakes\n", r.p_value(),
              r.log10_p_value(), r.test().c_str(), r.alpha(), static_cast<long long>(r.m()));
  std::printf("  agreement:      the suspect gives the victim's wrong label on %.1f%% of them (reference %.1f%%)\n",
              100 * r.suspect_mean_score(), 100 * r.reference_mean_score());
  std::printf("  accuracy:       suspect %.3f vs reference %.3f on the covers (range check %s)\n",
              r.suspect_clean_accuracy(), r.reference_clean_accuracy(), r.suspect_in_range() ? "passed" : "FAILED");
  PrintModelLevel(r);
  std::printf("  queries:        %lld (mistakes and covers, shuffled)\n", static_cast<long long>(r.queries()));
  PrintLineTail(r);
  return std::optional<move::VerificationReport>(r);
}

// Prints the combined verdict and writes it (or the single report when there is one line).
absl::Status Finish(const move::OpenedBundle& bundle, const move::VerificationReport& move_report) {
  std::vector<move::VerificationReport> lines = {move_report};
  MOVE_ASSIGN_OR_RETURN(std::optional<move::VerificationReport> fp, RunFingerprint(bundle));
  if (fp) lines.push_back(*fp);
  MOVE_ASSIGN_OR_RETURN(std::optional<move::VerificationReport> la, RunLabelAgreement(bundle));
  if (la) lines.push_back(*la);
  if (lines.size() == 1) {
    move::VerificationReport r = move_report;
    Stamp(&r);
    return WriteOrPrintJson(move::ReportToJson(r));
  }
  MOVE_ASSIGN_OR_RETURN(move::CombinedVerdict c, move::CombineEvidence(lines, absl::GetFlag(FLAGS_alpha)));
  Stamp(&c);
  int family = 0;
  for (const move::EvidenceLine& l : c.lines()) family += !l.excluded_from_family();
  std::printf("Combined verdict (Holm over %d of %d lines, alpha %.3g)\n", family, c.lines_size(), c.alpha());
  std::printf("  verdict:        %s%s\n", c.verdict().c_str(),
              c.stolen() ? absl::StrCat(" (carried by ", c.decided_by(), ")").c_str() : "");
  for (const move::EvidenceLine& l : c.lines()) {
    if (l.excluded_from_family()) {
      std::printf("  %-22s left out of the family (%s)\n", (l.name() + ":").c_str(), l.note().c_str());
      continue;
    }
    std::printf("  %-22s p %.3g (log10 %.2f) vs Holm threshold %.3g: %s%s\n", (l.name() + ":").c_str(), l.p_value(),
                l.log10_p_value(), l.holm_threshold(), l.rejected() ? "rejects" : "does not reject",
                l.note().empty() ? "" : absl::StrCat(" (", l.note(), ")").c_str());
  }
  std::printf("  combined p:     %.3g (log10 %.2f, Holm-adjusted smallest line)\n", c.p_value(), c.log10_p_value());
  return WriteOrPrintJson(move::CombinedToJson(c));
}

// Offline step 2 finishes the test step 1 exported: same bundle, --m and --seed.
absl::Status CheckExportMatches(const move::OpenedBundle& bundle, const std::string& queries, const move::BlackBoxOptions& o) {
  MOVE_ASSIGN_OR_RETURN(std::string json, move::core::ReadFile(queries + "/manifest.json", int64_t{256} << 20));
  move::QueryManifest manifest;
  if (!google::protobuf::util::JsonStringToMessage(json, &manifest).ok() || manifest.format() != "move.queries.v1") {
    return absl::DataLossError(absl::StrCat("--queries: ", queries, "/manifest.json is not a query manifest"));
  }
  if (manifest.bundle_sha256() != bundle.file_sha256) {
    return absl::FailedPreconditionError(absl::StrCat("--queries: exported from another bundle (sha256 ",
                                                      manifest.bundle_sha256().substr(0, 16), "...)"));
  }
  if (manifest.m() != o.m || manifest.seed() != o.seed) {
    return absl::InvalidArgumentError(absl::StrCat("--queries: exported with --m=", manifest.m(), " --seed=", manifest.seed(),
                                                   "; step 2 must use the same (got --m=", o.m, " --seed=", o.seed, ")"));
  }
  return absl::OkStatus();
}

absl::Status RunBlackBox(const move::OpenedBundle& bundle) {
  const std::string suspect = absl::GetFlag(FLAGS_suspect), endpoint = absl::GetFlag(FLAGS_endpoint),
                    exported = absl::GetFlag(FLAGS_export_queries), replay = absl::GetFlag(FLAGS_replay),
                    answers = absl::GetFlag(FLAGS_answers), queries = absl::GetFlag(FLAGS_queries);
  const int channels = !suspect.empty() + !endpoint.empty() + !exported.empty() + !replay.empty() + !answers.empty();
  if (channels != 1) {
    return absl::InvalidArgumentError(
        "black-box mode needs exactly one of --suspect, --endpoint, --export_queries, --answers (with --queries) or "
        "--replay");
  }
  if (!answers.empty() && queries.empty()) return absl::InvalidArgumentError("--answers: needs --queries=DIR (the exported folder)");
  move::BlackBoxOptions o;
  o.m = absl::GetFlag(FLAGS_m);
  if (o.m == 0) o.m = std::min<int64_t>(100, bundle.contents.samples().labels().shape_size() ? bundle.contents.samples().labels().shape(0) : 0);
  o.alpha = absl::GetFlag(FLAGS_alpha);
  o.seed = absl::GetFlag(FLAGS_seed);
  o.sequential = absl::GetFlag(FLAGS_sequential);
  o.max_queries = absl::GetFlag(FLAGS_max_queries);
  o.accept_logits = absl::GetFlag(FLAGS_accept_logits);
  o.min_relative_accuracy = absl::GetFlag(FLAGS_min_relative_accuracy);
  o.device = absl::GetFlag(FLAGS_device);
  if (!exported.empty()) {
    MOVE_ASSIGN_OR_RETURN(const int64_t written, move::ExportQueries(bundle, o, exported));
    std::printf("wrote %lld query images and manifest.json to %s: have the suspect answer them (CSV id,p0,p1,... or "
                "JSON), then run --queries=%s --answers=FILE with the same --m and --seed\n",
                static_cast<long long>(written), exported.c_str(), exported.c_str());
    return absl::OkStatus();
  }
  std::unique_ptr<move::SuspectChannel> channel;
  if (!suspect.empty()) {
    MOVE_ASSIGN_OR_RETURN(channel, OpenSandboxed(suspect));
  } else if (!endpoint.empty()) {
    MOVE_ASSIGN_OR_RETURN(channel, OpenEndpoint(endpoint));
  } else if (!answers.empty()) {
    MOVE_RETURN_IF_ERROR(CheckExportMatches(bundle, queries, o));
    MOVE_ASSIGN_OR_RETURN(channel, move::OpenOfflineChannel(queries, answers));
  } else {
    MOVE_ASSIGN_OR_RETURN(channel, move::OpenReplayChannel(replay));
  }
  if (replay.empty()) o.transcript_path = TranscriptBase();
  absl::StatusOr<move::VerificationReport> rep = move::VerifyBlackBox(bundle, *channel, o);
  if (!rep.ok()) {
    return absl::Status(rep.status().code(),
                        absl::StrCat(rep.status().message(),
                                     o.transcript_path.empty() ? "" : absl::StrCat(" (queries so far are in ", o.transcript_path, ")")));
  }
  const move::VerificationReport& r = *rep;
  std::printf("MOVE black-box verification of %s\n", r.suspect_channel().c_str());
  std::printf("  verdict:        %s\n", r.verdict().c_str());
  std::printf("  p-value:        %.3g (log10 %.2f), %s, alpha %.3g, m = %lld pairs\n", r.p_value(), r.log10_p_value(),
              r.test().c_str(), r.alpha(), static_cast<long long>(r.m()));
  std::printf("  delta_mu:       %+.4f (%.0f%% CI %+.4f .. %+.4f); suspect %.3f vs reference %.3f\n", r.delta_mu(),
              100 * (1 - r.alpha()), r.delta_mu_ci_low(), r.delta_mu_ci_high(), r.suspect_mean_score(),
              r.reference_mean_score());
  std::printf("  clean accuracy: suspect %.3f vs reference %.3f on the verification images (range check %s)\n",
              r.suspect_clean_accuracy(), r.reference_clean_accuracy(), r.suspect_in_range() ? "passed" : "FAILED");
  PrintModelLevel(r);
  std::printf("  queries:        %lld of at most %lld%s\n", static_cast<long long>(r.queries()),
              static_cast<long long>(r.max_queries()), r.stopped_early() ? " (stopped early: decisive)" : "");
  PrintConsistency(r);
  std::printf("  classifier:     %s\n", r.classifier_sound() ? "passed its soundness check" : "FAILED its soundness check");
  if (!r.transcript_path().empty()) {
    std::printf("  transcript:     %s (sha256 %s)\n", r.transcript_path().c_str(), r.transcript_sha256().c_str());
  }
  std::printf("  bundle sha256:  %s (signer %s..., %s)\n", r.bundle_sha256().c_str(),
              r.signer_fingerprint().substr(0, 16).c_str(), r.signer_pinned() ? "trusted key" : "not pinned");
  for (const auto& w : r.warnings()) std::printf("  warning: %s\n", w.c_str());
  std::printf("\n");
  return Finish(bundle, r);
}

// Every output path is checked before any work: no output is an input of this run or another
// output, transcripts and exports are new, the report is new unless --overwrite, and every
// folder is writable.
absl::Status CheckPaths(const std::string& mode, bool bundle_has_fingerprint, bool bundle_has_label_agreement) {
  using move::core::NamedPath;
  const std::string replay = absl::GetFlag(FLAGS_replay), queries = absl::GetFlag(FLAGS_queries);
  std::vector<NamedPath> inputs = {{"--bundle", absl::GetFlag(FLAGS_bundle)},
                                   {"--suspect", absl::GetFlag(FLAGS_suspect)},
                                   {"--trusted_key", absl::GetFlag(FLAGS_trusted_key)},
                                   {"--answers", absl::GetFlag(FLAGS_answers)},
                                   {"--replay", replay},
                                   {"--replay (fingerprint)", replay.empty() ? "" : replay + ".fingerprint.jsonl"},
                                   {"--replay (label agreement)", replay.empty() ? "" : replay + ".label-agreement.jsonl"},
                                   {"--queries", queries.empty() ? "" : queries + "/manifest.json"}};
  const bool new_queries = replay.empty() && absl::GetFlag(FLAGS_export_queries).empty();
  std::vector<NamedPath> transcripts;
  const bool alone = mode == "fingerprint" || mode == "label-agreement";
  if (new_queries && mode != "whitebox" && !alone) transcripts.push_back({"--transcript", TranscriptBase()});
  const bool line_queries = new_queries && (!absl::GetFlag(FLAGS_suspect).empty() || !absl::GetFlag(FLAGS_endpoint).empty());
  if (line_queries && alone) transcripts.push_back({"--transcript", TranscriptBase()});
  if (line_queries && !alone && absl::GetFlag(FLAGS_fingerprint) && bundle_has_fingerprint) {
    transcripts.push_back({"--transcript (fingerprint)", TranscriptBase() + ".fingerprint.jsonl"});
  }
  if (line_queries && !alone && absl::GetFlag(FLAGS_label_agreement) && bundle_has_label_agreement) {
    transcripts.push_back({"--transcript (label agreement)", TranscriptBase() + ".label-agreement.jsonl"});
  }
  for (const NamedPath& t : transcripts) {
    absl::Status s = move::core::CheckOutputPath(t.flag, t.path, inputs, /*overwrite=*/false);
    if (absl::IsAlreadyExists(s)) {
      return absl::AlreadyExistsError(absl::StrCat(t.flag, "=", t.path,
                                                   " already exists: a transcript is evidence and is never overwritten; "
                                                   "choose another --transcript (or --report)"));
    }
    MOVE_RETURN_IF_ERROR(s);
  }
  std::vector<NamedPath> taken = inputs;
  taken.insert(taken.end(), transcripts.begin(), transcripts.end());
  MOVE_RETURN_IF_ERROR(move::core::CheckOutputPath("--report", absl::GetFlag(FLAGS_report), taken, absl::GetFlag(FLAGS_overwrite)));
  return move::core::CheckOutputFolder("--export_queries", absl::GetFlag(FLAGS_export_queries), inputs);
}

absl::Status Run() {
  if (absl::GetFlag(FLAGS_bundle).empty()) return absl::InvalidArgumentError("--bundle: required");
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "whitebox" && mode != "blackbox" && mode != "fingerprint" && mode != "label-agreement") {
    return absl::InvalidArgumentError(
        absl::StrCat("--mode: expected whitebox, blackbox, fingerprint or label-agreement, got '", mode, "'"));
  }
  if (mode == "whitebox" && absl::GetFlag(FLAGS_suspect).empty()) {
    return absl::InvalidArgumentError("--suspect: required in white-box mode");
  }
  if (mode == "whitebox" && (!absl::GetFlag(FLAGS_endpoint).empty() || !absl::GetFlag(FLAGS_replay).empty() ||
                             !absl::GetFlag(FLAGS_answers).empty() || !absl::GetFlag(FLAGS_export_queries).empty())) {
    return absl::InvalidArgumentError("--endpoint, --answers, --export_queries and --replay need --mode=blackbox");
  }
  MOVE_RETURN_IF_ERROR(move::SetNumThreads(absl::GetFlag(FLAGS_threads)));
  MOVE_RETURN_IF_ERROR(move::ResolveDevice(absl::GetFlag(FLAGS_device)).status());
  std::string trusted;
  if (!absl::GetFlag(FLAGS_trusted_key).empty()) {
    absl::StatusOr<std::string> pub = move::LoadPublicKey(absl::GetFlag(FLAGS_trusted_key));
    if (!pub.ok()) return absl::Status(pub.status().code(), absl::StrCat("--trusted_key: ", pub.status().message()));
    trusted = *pub;
  }
  MOVE_ASSIGN_OR_RETURN(move::OpenedBundle bundle, move::ReadBundle(absl::GetFlag(FLAGS_bundle), trusted));
  // Reading the bundle wrote nothing; every output is checked before anything else runs.
  MOVE_RETURN_IF_ERROR(CheckPaths(mode, bundle.contents.has_fingerprint() && !bundle.contents.fingerprint().method().empty(),
                                  bundle.contents.has_label_agreement() &&
                                      !bundle.contents.label_agreement().method().empty()));
  if (mode == "blackbox") return RunBlackBox(bundle);
  if (mode == "fingerprint") {
    MOVE_ASSIGN_OR_RETURN(std::optional<move::VerificationReport> fp, RunFingerprint(bundle, /*alone=*/true));
    if (!fp) return absl::InternalError("fingerprint: the line did not run");
    Stamp(&*fp);
    return WriteOrPrintJson(move::ReportToJson(*fp));
  }
  if (mode == "label-agreement") {
    MOVE_ASSIGN_OR_RETURN(std::optional<move::VerificationReport> la, RunLabelAgreement(bundle, /*alone=*/true));
    if (!la) return absl::InternalError("label agreement: the line did not run");
    Stamp(&*la);
    return WriteOrPrintJson(move::ReportToJson(*la));
  }
  move::VerifyOptions options;
  options.m = absl::GetFlag(FLAGS_m);
  options.alpha = absl::GetFlag(FLAGS_alpha);
  options.seed = absl::GetFlag(FLAGS_seed);
  options.device = absl::GetFlag(FLAGS_device);
  options.reference_compatible = absl::GetFlag(FLAGS_reference_compatible);
  options.min_relative_accuracy = absl::GetFlag(FLAGS_min_relative_accuracy);
  MOVE_ASSIGN_OR_RETURN(move::VerificationReport r, move::VerifyWhiteBox(bundle, absl::GetFlag(FLAGS_suspect), options));

  std::printf("MOVE white-box verification of %s\n", absl::GetFlag(FLAGS_suspect).c_str());
  std::printf("  verdict:        %s\n", r.verdict().c_str());
  std::printf("  p-value:        %.3g (log10 %.2f), one-sided paired t-test, alpha %.3g, m = %lld\n", r.p_value(),
              r.log10_p_value(), r.alpha(), static_cast<long long>(r.m()));
  std::printf("  delta_mu:       %+.4f (%.0f%% CI %+.4f .. %+.4f); suspect %.3f vs reference %.3f\n", r.delta_mu(),
              100 * (1 - r.alpha()), r.delta_mu_ci_low(), r.delta_mu_ci_high(), r.suspect_mean_score(),
              r.reference_mean_score());
  std::printf("  clean accuracy: suspect %.3f vs reference %.3f on the verification images (range check %s)\n",
              r.suspect_clean_accuracy(), r.reference_clean_accuracy(), r.suspect_in_range() ? "passed" : "FAILED");
  PrintModelLevel(r);
  std::printf("  architecture:   %s, features %s, classifier %s\n", r.architecture().c_str(), r.feature_design().c_str(),
              r.classifier_sound() ? "passed its soundness check" : "FAILED its soundness check");
  std::printf("  bundle sha256:  %s (signer %s..., %s)\n", r.bundle_sha256().c_str(), r.signer_fingerprint().substr(0, 16).c_str(),
              r.signer_pinned() ? "trusted key" : "not pinned");
  std::printf("  suspect sha256: %s (%s, weights read without running its code)\n", r.suspect_sha256().c_str(),
              r.suspect_format().c_str());
  if (options.reference_compatible) {
    std::printf("  reference-compatible (40 draws of m = 10, Welch, harmonic mean; NOT the decision): p %.3g, delta_mu %+.4f\n",
                r.reference_compatible_harmonic_p(), r.reference_compatible_delta_mu());
  }
  for (const auto& w : r.warnings()) std::printf("  warning: %s\n", w.c_str());
  std::printf("\n");
  return Finish(bundle, r);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "move_verify --bundle=B --suspect=model.pt [--report=out.json]\n"
      "  or --mode=blackbox --bundle=B (--suspect=model.pt | --endpoint=URL | --export_queries=DIR | "
      "--queries=DIR --answers=FILE | --replay=TRANSCRIPT) [--sequential]");
  CommandLine().assign(argv, argv + argc);
  absl::ParseCommandLine(argc, argv);
  absl::Status s = Run();
  if (!s.ok()) {
    std::fprintf(stderr, "move_verify: %s\n", std::string(s.message()).c_str());
    // 3: the examination itself failed because of the suspect (its sandboxed code crashed,
    // hung, ran out of its limits or raised); no verdict was reached.
    return s.code() == absl::StatusCode::kAborted ? 3 : 1;
  }
  return 0;
}
