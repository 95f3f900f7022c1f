// Suspect channels (implements the channel half of sdk/blackbox.h): the wire encoding, the
// checks every answer goes through, and the transcript.
#ifndef MOVE_VERIFIER_CHANNELS_H_
#define MOVE_VERIFIER_CHANNELS_H_

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "absl/status/statusor.h"
#include "sdk/blackbox.h"

namespace move::verifier_internal {

// A PredictRequest in JSON for N x C x H x W images.
std::string EncodeRequest(const at::Tensor& images);

// A PredictResponse in JSON for N x K rows.
std::string EncodeResponse(const at::Tensor& rows);

struct ParsedAnswers {
  at::Tensor probabilities;  // N x K float32, rows are probability vectors
  bool softmax_applied = false;
};

// Reads and checks an answer to `n` images from a model with `k` classes. Refuses (with the
// problem named): unreadable JSON (kDataLoss), an error field (kFailedPrecondition), a wrong
// number of predictions (kDataLoss) or classes (kInvalidArgument), NaN/infinite values
// (kDataLoss), label-only one-hot answers (kFailedPrecondition, unless accept_labels: a line
// that reads only the top class takes them as they are), and rows that are not probability
// vectors (kInvalidArgument; with accept_logits, softmax is applied instead).
absl::StatusOr<ParsedAnswers> ParseAnswers(const std::string& response, int64_t n, int64_t k, bool accept_logits,
                                           bool accept_labels = false);

// An append-only JSON Lines transcript; every entry is flushed to disk before Add returns.
class TranscriptWriter {
 public:
  // kAlreadyExists if `path` exists (evidence is never overwritten).
  static absl::StatusOr<TranscriptWriter> Create(const std::string& path);
  TranscriptWriter(TranscriptWriter&& other) noexcept;
  TranscriptWriter& operator=(TranscriptWriter&&) = delete;
  ~TranscriptWriter();
  absl::Status Add(const std::string& json_line);
  const std::string& path() const { return path_; }

 private:
  TranscriptWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

// Sends query images to a suspect channel in requests of `images_per_request`, records every
// request and answer in the transcript (when there is one) before using it, and returns the
// checked probabilities (ParseAnswers). Shared by black-box MOVE and fingerprint verification.
// How a QueryClient checks that the suspect answers the same image the same way.
struct RepeatOptions {
  // Share of each request's images that are repeats of images already asked (earlier
  // requests, or this one for the first), shuffled in. 0: none.
  double share = 0;
  // Largest L-infinity difference between two answers for the same image still counted as
  // consistent.
  double tolerance = 0.01;
  uint64_t seed = 0;
};

// Sends images to a channel in requests, records each request and answer in the
// transcript, checks every answer (ParseAnswers), and repeats a share of images to measure
// whether the suspect answers consistently.
class QueryClient {
 public:
  QueryClient(SuspectChannel& channel, TranscriptWriter* transcript, int64_t num_classes, int64_t images_per_request,
              bool accept_logits, RepeatOptions repeats = {})
      : channel_(channel),
        transcript_(transcript),
        k_(num_classes),
        per_request_(images_per_request),
        accept_logits_(accept_logits),
        repeats_(repeats),
        rng_(repeats.seed * 0x9E3779B97F4A7C15ULL + 17) {}
  // `images`: N x C x H x W; returns N x K probabilities.
  absl::StatusOr<at::Tensor> Ask(const at::Tensor& images);
  // Distinct images asked (repeats not counted).
  int64_t queries() const { return queries_; }
  bool softmax_applied() const { return softmax_applied_; }
  // Repeated images sent, how many were answered beyond the tolerance, the largest difference.
  int64_t repeats() const { return repeat_count_; }
  int64_t repeat_disagreements() const { return disagreements_; }
  double max_repeat_difference() const { return max_difference_; }
  const RepeatOptions& repeat_options() const { return repeats_; }
  // Take label-only (one-hot) answers instead of refusing them: for lines that read only the
  // top class (label agreement).
  void AcceptLabels() { accept_labels_ = true; }

 private:
  SuspectChannel& channel_;
  TranscriptWriter* transcript_;
  int64_t k_, per_request_;
  bool accept_logits_;
  bool accept_labels_ = false;
  RepeatOptions repeats_;
  std::mt19937_64 rng_;
  int64_t requests_ = 0, queries_ = 0;
  bool softmax_applied_ = false;
  // Images already answered (at most kPool) for repeats.
  std::vector<std::pair<at::Tensor, at::Tensor>> pool_;
  int64_t repeat_count_ = 0, disagreements_ = 0;
  double max_difference_ = 0;
};

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_CHANNELS_H_
