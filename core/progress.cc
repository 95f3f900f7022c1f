#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_format.h"

namespace move::core {
namespace {

std::string FormatSeconds(double s) {
  int total = static_cast<int>(s + 0.5);
  return absl::StrFormat("%02d:%02d", total / 60, total % 60);
}

}  // namespace

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 1)),
      enabled_(enabled),
      tty_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::Update(int64_t done, const std::string& detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double frac = std::min(1.0, static_cast<double>(done) / total_);
  const double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
  if (tty_) {
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    std::fprintf(stderr, "\r%s [%s] %3.0f%% %s ETA %s %s\033[K", label_.c_str(), bar.c_str(),
                 frac * 100, FormatSeconds(elapsed).c_str(), FormatSeconds(eta).c_str(),
                 detail.c_str());
  } else {
    const int decile = static_cast<int>(frac * 10);
    if (decile == last_decile_ || decile == 10) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s %3.0f%% elapsed %s ETA %s %s\n", label_.c_str(), frac * 100,
                 FormatSeconds(elapsed).c_str(), FormatSeconds(eta).c_str(), detail.c_str());
  }
  std::fflush(stderr);
}

void Progress::Finish(const std::string& detail) {
  if (!enabled_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "%s%s done in %s %s%s\n", tty_ ? "\r" : "", label_.c_str(),
               FormatSeconds(elapsed).c_str(), detail.c_str(), tty_ ? "\033[K" : "");
  std::fflush(stderr);
}

}  // namespace move::core
