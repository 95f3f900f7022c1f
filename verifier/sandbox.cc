// The examiner's side of the suspect sandbox (sdk/blackbox.h: OpenSandboxedModelChannel):
// starts move_suspect_worker (verifier/suspect_worker.cc) as a child process, hands it the
// model's bytes over a socket, and asks it for predictions under a deadline per request. The
// child confines itself before it parses anything; this side assumes it may do anything
// (crash, hang, flood, lie about sizes) and turns each of those into one "examination
// failed: <reason>" status (kAborted), after which the child is killed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/status_macros.h"
#include "sdk/blackbox.h"
#include "verifier/channels.h"
#include "verifier/sandbox_protocol.h"

extern char** environ;

namespace move {
namespace {

using Clock = std::chrono::steady_clock;

absl::StatusOr<std::string> ResolveWorker(const SandboxOptions& o) {
  std::string path = o.worker_path;
  if (path.empty()) {
    if (const char* env = std::getenv("MOVE_SUSPECT_WORKER"); env != nullptr && *env) path = env;
  }
  if (path.empty()) {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) path = (self.parent_path() / "move_suspect_worker").string();
  }
  if (path.empty() || ::access(path.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the sandbox worker '", path.empty() ? "move_suspect_worker" : path,
        "' is not an executable (install move_suspect_worker beside this program, or set "
        "SandboxOptions::worker_path or MOVE_SUSPECT_WORKER)"));
  }
  return path;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGXCPU) return "killed for exceeding its CPU-time limit";
    return absl::StrCat("killed by signal ", sig, " (", strsignal(sig), ")");
  }
  return "ended";
}

class SandboxedModelChannel final : public SuspectChannel {
 public:
  SandboxedModelChannel(std::string path, std::string sha, SandboxOptions o)
      : path_(std::move(path)), sha_(std::move(sha)), o_(std::move(o)) {}

  ~SandboxedModelChannel() override { Stop(/*graceful=*/true); }

  absl::Status Start(const std::string& worker, const std::string& model_bytes) {
    int sv[2], err[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("sandbox: cannot create its socket: ", std::strerror(errno)));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    std::vector<std::string> args = {worker, absl::StrCat("--threads=", o_.threads),
                                     absl::StrCat("--memory_bytes=", o_.memory_bytes),
                                     absl::StrCat("--cpu_seconds=", o_.cpu_seconds)};
    std::vector<std::string> env = {absl::StrCat("OMP_NUM_THREADS=", o_.threads), "MKL_NUM_THREADS=1"};
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const int rc = posix_spawn(&pid_, worker.c_str(), &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(sv[1]);
    ::close(err[1]);
    sock_ = sv[0];
    err_ = err[0];
    ::fcntl(err_, F_SETFL, O_NONBLOCK);
    if (rc != 0) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("sandbox: cannot start ", worker, ": ", std::strerror(rc)));
    }
    MOVE_RETURN_IF_ERROR(Exchange(sandbox::kLoadModel, model_bytes, o_.load_timeout_ms, "loading the model"));
    if (reply_type_ != sandbox::kOk) return Fail("loading the model", "unexpected reply");
    return absl::OkStatus();
  }

  absl::StatusOr<ChannelAnswer> Predict(const at::Tensor& images) override {
    if (images.dim() != 4) return absl::InvalidArgumentError("images: expected N x C x H x W");
    at::Tensor x = images.to(torch::kCPU).to(torch::kFloat32).contiguous();
    const std::string payload = sandbox::EncodeTensor(x.sizes().vec(), x.data_ptr<float>(), x.numel());
    MOVE_RETURN_IF_ERROR(Exchange(sandbox::kPredict, payload, o_.request_timeout_ms, "answering a query"));
    std::vector<int64_t> sizes;
    std::vector<float> data;
    if (reply_type_ != sandbox::kProbabilities || !sandbox::DecodeTensor(reply_, &sizes, &data) || sizes.size() != 2 ||
        sizes[0] != x.size(0)) {
      return Fail("answering a query", "its answer is not one probability row per image");
    }
    at::Tensor p = torch::from_blob(data.data(), sizes, torch::kFloat32).clone();
    return ChannelAnswer{verifier_internal::EncodeResponse(p), 0, 1};
  }

  std::string Describe() const override { return "sandbox:" + path_; }
  std::string ModelSha256() const override { return sha_; }

 private:
  // Sends one frame and reads the reply into reply_type_ / reply_, all within timeout_ms.
  absl::Status Exchange(uint32_t type, const std::string& payload, int timeout_ms, const char* doing) {
    if (!failure_.ok()) return failure_;
    timeout_ms_ = timeout_ms;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    const std::string header = sandbox::Header(type, payload.size());
    MOVE_RETURN_IF_ERROR(SendAll(header.data(), header.size(), deadline, doing));
    MOVE_RETURN_IF_ERROR(SendAll(payload.data(), payload.size(), deadline, doing));
    char h[sandbox::kHeaderBytes];
    MOVE_RETURN_IF_ERROR(RecvAll(h, sizeof(h), deadline, doing));
    reply_type_ = static_cast<uint32_t>(sandbox::GetLe(h, 4));
    const uint64_t length = sandbox::GetLe(h + 4, 8);
    if (length > static_cast<uint64_t>(o_.max_answer_bytes)) {
      return Fail(doing, absl::StrCat("it announced a ", length, "-byte answer, over the ", o_.max_answer_bytes,
                                      "-byte limit"));
    }
    reply_.assign(length, '\0');
    MOVE_RETURN_IF_ERROR(RecvAll(reply_.data(), length, deadline, doing));
    if (reply_type_ == sandbox::kError) {
      // The suspect's own code raised: a failure of the examination, reported in its words.
      std::string msg = reply_.substr(0, 300);
      for (char& c : msg) {
        if (c < 0x20 || c == 0x7f) c = ' ';
      }
      return Fail(doing, absl::StrCat("its code raised an error: ", msg));
    }
    return absl::OkStatus();
  }

  absl::Status Wait(short events, Clock::time_point deadline, const char* doing) {
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Fail(doing, absl::StrCat("it did not finish within the ", timeout_ms_, " ms limit"));
      struct pollfd p = {sock_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Fail(doing, std::strerror(errno));
      if (r > 0) return absl::OkStatus();
    }
  }

  absl::Status SendAll(const char* p, size_t n, Clock::time_point deadline, const char* doing) {
    while (n > 0) {
      MOVE_RETURN_IF_ERROR(Wait(POLLOUT, deadline, doing));
      const ssize_t w = ::send(sock_, p, std::min<size_t>(n, 1 << 20), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (w <= 0) return Fail(doing, "it stopped reading");
      p += w;
      n -= static_cast<size_t>(w);
    }
    return absl::OkStatus();
  }

  absl::Status RecvAll(char* p, size_t n, Clock::time_point deadline, const char* doing) {
    while (n > 0) {
      MOVE_RETURN_IF_ERROR(Wait(POLLIN, deadline, doing));
      const ssize_t r = ::recv(sock_, p, std::min<size_t>(n, 1 << 20), MSG_DONTWAIT);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) return Fail(doing, "it ended without answering");
      p += r;
      n -= static_cast<size_t>(r);
    }
    return absl::OkStatus();
  }

  // Kills the child, records why, and returns the failure (every later call returns it too).
  absl::Status Fail(const char* doing, const std::string& why) {
    const int status = Stop(/*graceful=*/false);
    std::string detail = why;
    if (status >= 0 && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && killed_by_us_)) {
      absl::StrAppend(&detail, "; the suspect's process ", DescribeExit(status));
    }
    if (!stderr_tail_.empty()) absl::StrAppend(&detail, "; it wrote: ", stderr_tail_);
    failure_ = absl::AbortedError(absl::StrCat("examination failed: the suspect's code (", path_, ", sandboxed) failed ",
                                               doing, ": ", detail));
    return failure_;
  }

  // Ends the child: closes the socket and, unless graceful and it exits within a second,
  // kills it. Returns its wait status (-1 if there was none).
  int Stop(bool graceful) {
    if (sock_ >= 0) {
      ::close(sock_);
      sock_ = -1;
    }
    int status = -1;
    if (pid_ > 0) {
      bool done = false;
      if (graceful) {
        for (int k = 0; k < 100 && !done; ++k) {
          done = ::waitpid(pid_, &status, WNOHANG) == pid_;
          if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      } else {
        done = ::waitpid(pid_, &status, WNOHANG) == pid_;
      }
      if (!done) {
        ::kill(-pid_, SIGKILL);  // its process group: the worker cannot create others, but be thorough
        ::kill(pid_, SIGKILL);
        killed_by_us_ = true;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
      }
      pid_ = -1;
    }
    if (err_ >= 0) {
      char buf[4096];
      std::string all;
      ssize_t r;
      while ((r = ::read(err_, buf, sizeof(buf))) > 0 && all.size() < (1 << 16)) all.append(buf, r);
      ::close(err_);
      err_ = -1;
      if (all.size() > 300) all = all.substr(all.size() - 300);
      for (char& c : all) {
        if (c < 0x20 || c == 0x7f) c = ' ';
      }
      stderr_tail_ = all;
    }
    return status;
  }

  std::string path_, sha_;
  SandboxOptions o_;
  pid_t pid_ = -1;
  int sock_ = -1, err_ = -1;
  bool killed_by_us_ = false;
  int timeout_ms_ = 0;
  uint32_t reply_type_ = 0;
  std::string reply_, stderr_tail_;
  absl::Status failure_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenSandboxedModelChannel(const std::string& path,
                                                                          const SandboxOptions& o) {
  if (o.threads < 1 || o.threads > 256) return absl::InvalidArgumentError("sandbox threads: must be in [1, 256]");
  if (o.memory_bytes < (int64_t{256} << 20)) return absl::InvalidArgumentError("sandbox memory_bytes: must be >= 256 MiB");
  if (o.cpu_seconds < 1) return absl::InvalidArgumentError("sandbox cpu_seconds: must be >= 1");
  if (o.load_timeout_ms < 1 || o.request_timeout_ms < 1) return absl::InvalidArgumentError("sandbox timeouts: must be > 0 ms");
  if (o.max_model_bytes < 1 || o.max_answer_bytes < 1) return absl::InvalidArgumentError("sandbox size limits: must be >= 1");
  MOVE_ASSIGN_OR_RETURN(const std::string worker, ResolveWorker(o));
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::NotFoundError(absl::StrCat("model file not found: ", path));
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat(path, ": not a readable file"));
  if (size > static_cast<uintmax_t>(o.max_model_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(path, ": ", size, " bytes, over the sandbox's ", o.max_model_bytes,
                                                     "-byte model limit"));
  }
  MOVE_ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(path));
  auto channel = std::make_unique<SandboxedModelChannel>(path, core::Sha256Hex(bytes), o);
  MOVE_RETURN_IF_ERROR(channel->Start(worker, bytes));
  return std::unique_ptr<SuspectChannel>(std::move(channel));
}

}  // namespace move
