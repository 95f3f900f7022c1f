// Queries spent by black-box MOVE: the sequential (anytime-valid betting) test versus the
// paper's fixed m = 100 paired t-test (the bundle design's queries per sample each: 21 for
// style contrast, 10 for the paper's design), side by side on the same suspects.
//
//   bazel run //examples:vendor -- --out=out/vendor          # makes the bundle and suspects
//   bazel run //bench:blackbox_queries -- --run=out/vendor [--draws=20]
//
// For every suspect of the main job's report.json and each of --draws seeds (each seed draws
// another subset and order of the bundle's verification samples), runs both tests on the
// suspect's TorchScript file and prints per suspect: the share flagged and the median queries
// of the sequential test, and the queries ratio fixed / sequential. Targets (black-box issue):
// median queries to reach p < 0.01 on stolen models <= 200, false-positive rate on
// independent models <= alpha. The draws of one model are not independent trials of the
// model population: the rate over independent models is per model, with a Wilson interval
// over all (model, draw) pairs for scale.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "core/files.h"
#include "sdk/blackbox.h"
#include "sdk/bundle.h"
#include "sdk/runtime.h"

ABSL_FLAG(std::string, run, "out/vendor", "Output folder of the main job (victim.move, report.json, suspects/).");
ABSL_FLAG(int, draws, 20, "Seeds per suspect.");
ABSL_FLAG(int64_t, m, 100, "Samples of the fixed test and the sequential test's cap (the bundle design's queries each).");
ABSL_FLAG(double, alpha, 0.01, "Significance level.");

namespace {

std::pair<double, double> Wilson(int k, int n, double z = 1.96) {
  if (n == 0) return {0, 1};
  const double p = static_cast<double>(k) / n, d = 1 + z * z / n;
  const double c = (p + z * z / (2 * n)) / d, h = z * std::sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)) / d;
  return {std::max(0.0, c - h), std::min(1.0, c + h)};
}

int Main() {
  if (!move::SetNumThreads(0).ok()) return 1;
  std::string run = absl::GetFlag(FLAGS_run);
  if (const char* wd = std::getenv("BUILD_WORKING_DIRECTORY"); wd && !run.empty() && run[0] != '/') run = std::string(wd) + "/" + run;
  auto bundle = move::ReadBundle(run + "/victim.move");
  auto report_json = move::core::ReadFile(run + "/report.json");
  if (!bundle.ok() || !report_json.ok()) {
    std::fprintf(stderr, "blackbox_queries: %s\n",
                 std::string((bundle.ok() ? report_json.status() : bundle.status()).message()).c_str());
    return 1;
  }
  google::protobuf::Struct report;
  if (!google::protobuf::util::JsonStringToMessage(*report_json, &report).ok()) {
    std::fprintf(stderr, "blackbox_queries: %s/report.json is not the main job's report\n", run.c_str());
    return 1;
  }
  const int draws = absl::GetFlag(FLAGS_draws);
  std::printf("%-36s %-11s | %-14s | %-12s %8s %8s | %s\n", "suspect", "truth", "fixed flagged", "seq. flagged", "median q",
              "max q", "queries fixed / seq.");
  std::vector<int64_t> stolen_queries, decided_queries;
  int stolen_draws = 0;
  int indep_fixed = 0, indep_seq = 0, indep_n = 0;
  int64_t fixed_test_queries = 0;  // the fixed test's queries (the same for every draw)
  for (const auto& row : report.fields().at("suspects").list_value().values()) {
    const auto& f = row.struct_value().fields();
    const std::string name = f.at("suspect").string_value(), truth = f.at("truth").string_value();
    auto channel = move::OpenModelChannel(f.at("model_file").string_value());
    if (!channel.ok()) {
      std::printf("%-36s %-11s | %s\n", name.c_str(), truth.c_str(), std::string(channel.status().message()).c_str());
      continue;
    }
    int fixed_flagged = 0, seq_flagged = 0;
    int64_t fixed_queries = 0, seq_total = 0;
    std::vector<int64_t> q;
    for (int d = 0; d < draws; ++d) {
      move::BlackBoxOptions o;
      o.m = absl::GetFlag(FLAGS_m);
      o.alpha = absl::GetFlag(FLAGS_alpha);
      o.seed = 1000 + d;
      o.show_progress = false;
      auto fixed = move::VerifyBlackBox(*bundle, **channel, o);
      o.sequential = true;
      auto seq = move::VerifyBlackBox(*bundle, **channel, o);
      if (!fixed.ok() || !seq.ok()) {
        std::fprintf(stderr, "%s: %s\n", name.c_str(),
                     std::string((fixed.ok() ? seq.status() : fixed.status()).message()).c_str());
        return 1;
      }
      fixed_flagged += fixed->stolen();
      fixed_queries += fixed->queries();
      fixed_test_queries = fixed->queries();
      seq_flagged += seq->stolen();
      seq_total += seq->queries();
      q.push_back(seq->queries());
      if (truth == "stolen" && seq->stolen()) decided_queries.push_back(seq->queries());
      if (truth == "stolen") ++stolen_draws;
    }
    std::sort(q.begin(), q.end());
    const int64_t median = q[q.size() / 2];
    if (truth == "stolen") {
      stolen_queries.insert(stolen_queries.end(), q.begin(), q.end());
    } else {
      indep_fixed += fixed_flagged;
      indep_seq += seq_flagged;
      indep_n += draws;
    }
    std::printf("%-36s %-11s | %6d/%-7d | %5d/%-6d %8lld %8lld | %.2fx\n", name.c_str(), truth.c_str(), fixed_flagged, draws,
                seq_flagged, draws, static_cast<long long>(median), static_cast<long long>(q.back()),
                static_cast<double>(fixed_queries) / seq_total);
  }
  std::sort(stolen_queries.begin(), stolen_queries.end());
  std::sort(decided_queries.begin(), decided_queries.end());
  if (!decided_queries.empty()) {
    // The target's measure: queries the sequential test spent to reach p < alpha, over the
    // stolen draws it flagged; the draws it never flagged are reported beside it.
    const int64_t median = decided_queries[decided_queries.size() / 2];
    std::printf("\nstolen suspects: the sequential test reached p < %.2g in %zu/%d draws, median %lld queries there vs %lld "
                "for the fixed test (%.1fx fewer); target <= 200: %s; over all stolen draws (cap %lld when never "
                "decisive): median %lld\n",
                absl::GetFlag(FLAGS_alpha), decided_queries.size(), stolen_draws, static_cast<long long>(median),
                static_cast<long long>(fixed_test_queries), static_cast<double>(fixed_test_queries) / median,
                median <= 200 ? "met" : "MISSED", static_cast<long long>(fixed_test_queries),
                static_cast<long long>(stolen_queries[stolen_queries.size() / 2]));
  }
  if (indep_n > 0) {
    auto [lo, hi] = Wilson(indep_seq, indep_n);
    auto [flo, fhi] = Wilson(indep_fixed, indep_n);
    std::printf("independent suspects: flagged %d/%d draws sequential (95%% Wilson %.3f..%.3f), %d/%d fixed (%.3f..%.3f); "
                "alpha %.2g\n",
                indep_seq, indep_n, lo, hi, indep_fixed, indep_n, flo, fhi, absl::GetFlag(FLAGS_alpha));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return Main();
}
