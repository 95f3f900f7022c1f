// Black-box ownership verification: examine a suspect that can only be queried for
// probabilities (a local TorchScript file, an HTTP prediction endpoint, or answers obtained
// offline), with a chain-of-custody transcript of every query.
//
//   absl::StatusOr<move::OpenedBundle> b = move::ReadBundle("victim.move", vendor_public_key);
//   absl::StatusOr<std::unique_ptr<move::SuspectChannel>> suspect =
//       move::OpenHttpChannel("http://10.0.0.7:8080/v1/predict", {});
//   move::BlackBoxOptions o;
//   o.transcript_path = "case-17.transcript.jsonl";   // every query and answer, as it happens
//   o.sequential = true;                               // stop as soon as the evidence is decisive
//   absl::StatusOr<move::VerificationReport> r = move::VerifyBlackBox(*b, **suspect, o);
//
// Later, anyone can re-run the test from the transcript alone:
//   auto replay = move::OpenReplayChannel("case-17.transcript.jsonl");
//   r = move::VerifyBlackBox(*b, **replay, same options, transcript_path = "");
//
// The wire format is sdk/prediction_protocol.proto. Answers are checked before use: wrong
// class count, NaN or infinite values, negative values or rows not summing to 1 (logits; see
// accept_logits), and label-only (one-hot) answers are refused with an error naming the
// problem, never turned into a verdict.
#ifndef MOVE_SDK_BLACKBOX_H_
#define MOVE_SDK_BLACKBOX_H_

#include <cstdint>
#include <memory>
#include <string>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "sdk/bundle.h"
#include "sdk/report.pb.h"

namespace move {

// What a channel returned for one request.
struct ChannelAnswer {
  // The response body: a PredictResponse in JSON (sdk/prediction_protocol.proto).
  std::string response;
  // HTTP status (0 where there is none) and attempts made.
  int status = 0;
  int attempts = 1;
};

// A way to reach a suspect model: images in, probability vectors out.
class SuspectChannel {
 public:
  virtual ~SuspectChannel() = default;
  // `images`: N x C x H x W float32 in [0, 1]. Errors: kUnavailable / kDeadlineExceeded (the
  // suspect could not be reached after retries), kNotFound (offline/replay: no answer for an
  // image), kResourceExhausted (budget).
  virtual absl::StatusOr<ChannelAnswer> Predict(const at::Tensor& images) = 0;
  // "file:<path>", the URL, "offline:<answers>", "replay:<transcript>".
  virtual std::string Describe() const = 0;
  // SHA-256 of the suspect model file where the channel knows it, else "".
  virtual std::string ModelSha256() const { return ""; }
  // Whether asking the same image again can tell anything (false for offline answers, which
  // hold one answer per image): verification repeats a share of its queries only then.
  virtual bool CanRepeat() const { return true; }
};

// A local TorchScript model (any architecture), run in this process: softmax of its outputs.
// `device` as in VerifyOptions. Loading and running it executes the file's code with this
// process's rights: only for models you trust (your own); a suspect's goes through
// OpenSandboxedModelChannel or OpenWeightsChannel.
absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenModelChannel(const std::string& path,
                                                                 const std::string& device = "cpu");

// Limits of the sandbox a suspect's code runs in (OpenSandboxedModelChannel).
struct SandboxOptions {
  // The worker program (move_suspect_worker, installed beside move_verify). Empty: the
  // MOVE_SUSPECT_WORKER environment variable, else move_suspect_worker beside the running
  // program. Default: empty.
  std::string worker_path;
  // Address space (RLIMIT_AS) and CPU time (RLIMIT_CPU, the whole examination) of the child.
  // Defaults: 8 GiB, 1800 s.
  int64_t memory_bytes = int64_t{8} << 30;
  int64_t cpu_seconds = 1800;
  // Wall-clock limits: for loading the model, and for each request. Defaults: 120 s, 120 s.
  int load_timeout_ms = 120000;
  int request_timeout_ms = 120000;
  // LibTorch threads in the child. Default: 1.
  int threads = 1;
  // Largest model file, and largest answer the child may announce. Defaults: 4 GiB, 64 MiB.
  int64_t max_model_bytes = int64_t{4} << 30;
  int64_t max_answer_bytes = int64_t{64} << 20;
};

// A local TorchScript model (any architecture) whose code runs in a sandboxed child process:
// the child caps its memory, CPU time and file sizes, then installs a seccomp filter (no
// file or network access, no new processes, no exec) before it is handed the model's bytes
// over a socket; it never sees the file's path. Runs on the CPU. Whatever the suspect's code
// does (crash, endless loop, unbounded allocation, exceptions, malformed answers), the
// examiner survives: the child is killed and the call returns kAborted with a message
// beginning "examination failed:" (and every later Predict returns the same). kNotFound /
// kResourceExhausted for the file; kFailedPrecondition if the worker is not installed.
absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenSandboxedModelChannel(const std::string& path,
                                                                          const SandboxOptions& options = {});

// A local model file examined through its weights alone (ReadModelWeights, sdk/model.h): they
// are loaded into the SDK's own graph of the bundle architecture they fit and answer as the
// model would, without compiling or running any of the file's code. Describe() is
// "weights:<architecture>:<path>". kFailedPrecondition if they fit none of the bundle's
// architectures (a suspect of another architecture needs OpenModelChannel's code execution).
absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenWeightsChannel(const OpenedBundle& bundle, const std::string& path,
                                                                   const std::string& device = "cpu");

struct HttpChannelOptions {
  // Per-request limits. Defaults: 5 s to connect, 60 s between bytes read.
  int connect_timeout_ms = 5000;
  int read_timeout_ms = 60000;
  // Deadline of a whole request, headers and body (an endpoint dripping its answer a byte at
  // a time is cut off here; the attempt counts as a timeout). Default: 120 s.
  int request_deadline_ms = 120000;
  // Largest answer accepted (by Content-Length or as read); a larger one is kResourceExhausted,
  // not retried. Redirects are never followed (kFailedPrecondition naming the target).
  // Default: 64 MiB.
  int64_t max_answer_bytes = int64_t{64} << 20;
  // Extra attempts after a connection error, timeout, HTTP 429/5xx or an unreadable body,
  // waiting backoff_ms * 2^attempt in between. Defaults: 3, 200 ms.
  int retries = 3;
  int backoff_ms = 200;
  // Rate limit in requests per second; 0 = none. Default: 0.
  double max_requests_per_second = 0;
};

// An HTTP(S) endpoint speaking sdk/prediction_protocol.proto, e.g.
// "http://127.0.0.1:8080/v1/predict". kInvalidArgument for a malformed URL.
absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenHttpChannel(const std::string& url,
                                                                const HttpChannelOptions& options = {});

// Answers obtained offline for images exported with ExportQueries: `queries_dir` holds the
// manifest, `answers_path` a JSON OfflineAnswers file or a CSV "id,p0,p1,...".
absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenOfflineChannel(const std::string& queries_dir,
                                                                   const std::string& answers_path);

// The recorded answers of a transcript: reproduces a verification without new queries.
absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenReplayChannel(const std::string& transcript_path);

struct BlackBoxOptions {
  // Verification samples; each costs the bundle's design's queries per sample: 5 (1 + D) + 1
  // for style contrast (5 augmentations of the secret-styled image and of each of D
  // decoy-styled versions, plus the clean image; 21 with the default D = 3), 10 for the
  // paper's probability difference (5 augmentations x styled/clean). Every round's images
  // are shuffled together, so the suspect cannot tell secret from decoy or clean.
  // 0 = all in the bundle. Default: 100 (the paper's m).
  int64_t m = 100;
  double alpha = 0.01;
  // Seed of the sample subset and of the query order. Default: 0.
  uint64_t seed = 0;
  // Sequential mode: an anytime-valid betting test after every `pairs_per_round` pairs, stopping
  // as soon as p < alpha; otherwise the paired t-test on all m pairs. Default: false.
  bool sequential = false;
  int64_t pairs_per_round = 2;
  // Hard cap on images sent; 0 = every sample's queries (21 m or 10 m). Verification fails with kResourceExhausted rather than
  // exceed it (the sequential test stops and reports instead). Default: 0.
  int64_t max_queries = 0;
  // Images per request in fixed-m mode. Default: 50.
  int64_t images_per_request = 50;
  // Treat rows that are not probability vectors as logits and apply softmax (reported).
  // Default: false (such answers are refused).
  bool accept_logits = false;
  // Transcript of every request and answer (JSON Lines, written as they happen). Must not
  // exist yet. Empty: no transcript (only for replays and tests).
  std::string transcript_path;
  // Device for the bundle's reference model. Default: "cpu".
  std::string device = "cpu";
  bool show_progress = true;
  // Range check as in VerifyOptions::min_relative_accuracy (the suspect's accuracy from its
  // answers to the unaugmented clean queries). 0 disables. Default: 0.5.
  double min_relative_accuracy = 0.5;
  // Consistency: this share of every request's images repeats images already asked, shuffled
  // in (extra queries, not counted in m or max_queries); a suspect that answers a repeated
  // image differently by more than repeat_tolerance (L-infinity between the two probability
  // vectors) gets "inconclusive: inconsistent answers", never a verdict. Not done for offline
  // answers (one per image). Defaults: 0.05, 0.01.
  double repeat_share = 0.05;
  double repeat_tolerance = 0.01;
};

// Runs black-box verification of the suspect behind `channel`: per sample a score (the
// bundle's design: style contrast, see sdk/bundle.proto BlackBoxVerifier, or the paper's
// meta-classifier), the one-sided paired test against the bundle's benign reference, and the
// model-level test against every held-out benign model of the bundle (benign, rival-vendor
// and appearance-augmented); theft only when both reject and the line passed its build-time
// soundness check. Options are all checked before the transcript is created or any query
// sent. Returns a report whatever the verdict; kFailedPrecondition if the bundle has no
// black-box verifier or the suspect answers labels only.
absl::StatusOr<VerificationReport> VerifyBlackBox(const OpenedBundle& bundle, SuspectChannel& channel,
                                                  const BlackBoxOptions& options = {});

// Offline channel, step 1: writes the query images of a fixed-m verification (options.m,
// options.seed) as PNG files to `dir`, with manifest.json. Their answers finish the test
// through OpenOfflineChannel and VerifyBlackBox with the same m and seed. Returns the number
// of images written (m times the bundle design's queries per sample).
absl::StatusOr<int64_t> ExportQueries(const OpenedBundle& bundle, const BlackBoxOptions& options, const std::string& dir);

}  // namespace move

#endif  // MOVE_SDK_BLACKBOX_H_
