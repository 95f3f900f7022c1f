// A console progress bar for long work (training, embedding, verifying).
//
//   core::Progress bar("train victim", total_steps);
//   for (...) { ...; bar.Update(step + 1, absl::StrFormat("loss %.3f", loss)); }
//   bar.Finish("acc 0.91");
//
// On a terminal it redraws one line in place; when stderr is not a terminal (CI logs) it
// prints a plain line about every 10% so logs stay short and readable.
#ifndef MOVE_CORE_PROGRESS_H_
#define MOVE_CORE_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace move::core {

class Progress {
 public:
  // `enabled` = false makes every call a no-op.
  Progress(std::string label, int64_t total, bool enabled = true);
  void Update(int64_t done, const std::string& detail = "");
  void Finish(const std::string& detail = "");

 private:
  std::string label_;
  int64_t total_;
  bool enabled_;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace move::core

#endif  // MOVE_CORE_PROGRESS_H_
