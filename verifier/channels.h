// Suspect channels (implements the channel half of sdk/blackbox.h): the wire encoding, the
// checks every answer goes through, and the transcript.
#ifndef MOVE_VERIFIER_CHANNELS_H_
#define MOVE_VERIFIER_CHANNELS_H_

#include <cstdint>
#include <string>

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
// (kDataLoss), label-only one-hot answers (kFailedPrecondition), and rows that are not
// probability vectors (kInvalidArgument; with accept_logits, softmax is applied instead).
absl::StatusOr<ParsedAnswers> ParseAnswers(const std::string& response, int64_t n, int64_t k, bool accept_logits);

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

}  // namespace move::verifier_internal

#endif  // MOVE_VERIFIER_CHANNELS_H_
