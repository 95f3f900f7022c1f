// move_suspect_worker: runs a suspect's TorchScript code for the examiner, inside a sandbox.
//
// Started by the examiner (verifier/sandbox.cc) with one stream socket on fds 0 and 1 and a
// pipe on fd 2, every other descriptor closed. Before it reads a byte of the suspect's file it
// (1) caps its address space, CPU time, file size and core dumps with setrlimit, (2) warms
// LibTorch up (thread pools, the TorchScript loader and interpreter) so nothing later needs a
// file, and (3) installs a seccomp filter (libseccomp) that lets through only memory
// management, threads (clone with CLONE_THREAD; no new processes), futexes, clocks, signals
// to itself, reads on fd 0 and writes on fds 1 and 2: no open, no socket, no exec. Any other
// system call fails with EPERM. Then it loads the model from the bytes it is sent and
// answers prediction frames (verifier/sandbox_protocol.h) until the socket closes.
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "sdk/model.h"
#include "verifier/sandbox_protocol.h"

ABSL_FLAG(int, threads, 1, "LibTorch CPU threads.");
ABSL_FLAG(int64_t, memory_bytes, int64_t{8} << 30, "Address-space limit (RLIMIT_AS).");
ABSL_FLAG(int64_t, cpu_seconds, 600, "CPU-time limit (RLIMIT_CPU).");

namespace {

using namespace move::sandbox;  // NOLINT: the frame constants

bool ReadAll(char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(0, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteAll(const std::string& s) {
  const char* p = s.data();
  size_t n = s.size();
  while (n > 0) {
    const ssize_t w = ::write(1, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool Send(uint32_t type, const std::string& payload) { return WriteAll(Header(type, payload.size()) + payload); }

void Die(const std::string& why) {
  std::string line = absl::StrCat("move_suspect_worker: ", why, "\n");
  (void)!::write(2, line.data(), line.size());
  std::_Exit(2);
}

void LimitResources() {
  auto set = [](int what, rlim_t soft, rlim_t hard, const char* name) {
    struct rlimit r = {soft, hard};
    if (::setrlimit(what, &r) != 0) Die(absl::StrCat("setrlimit(", name, ") failed"));
  };
  const rlim_t mem = static_cast<rlim_t>(absl::GetFlag(FLAGS_memory_bytes));
  const rlim_t cpu = static_cast<rlim_t>(absl::GetFlag(FLAGS_cpu_seconds));
  set(RLIMIT_AS, mem, mem, "RLIMIT_AS");
  set(RLIMIT_CPU, cpu, cpu + 1, "RLIMIT_CPU");
  set(RLIMIT_FSIZE, 0, 0, "RLIMIT_FSIZE");
  set(RLIMIT_CORE, 0, 0, "RLIMIT_CORE");
}

// Runs what the loader and interpreter need once, so lazy initialisation (thread pools,
// kernels' CPU dispatch, operator registration) happens before the filter is installed.
void WarmUp() {
  at::set_num_threads(absl::GetFlag(FLAGS_threads));
  at::set_num_interop_threads(1);
  torch::NoGradGuard no_grad;
  torch::jit::Module m(c10::QualifiedName({"__torch__", "warmup", "M"}));
  m.register_parameter("w", torch::randn({4, 3, 3, 3}), false);
  m.define(R"(
def forward(self, x):
    y = torch.conv2d(x, self.w, None, [1], [1])
    y = torch.relu(torch.batch_norm(y, None, None, None, None, False, 0.1, 1e-5, False))
    return torch.softmax(torch.mean(y, [2, 3]), 1)
)");
  std::ostringstream out;
  m.save(out);
  std::istringstream in(out.str());
  torch::jit::Module loaded = torch::jit::load(in);
  (void)move::PredictProbabilities(loaded, torch::rand({2, 3, 16, 16}));
}

void InstallFilter() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (ctx == nullptr) Die("seccomp_init failed");
  auto allow = [&](int nr) {
    if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0) != 0 && nr >= 0) Die(absl::StrCat("seccomp rule ", nr));
  };
  for (int nr : {SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(lseek), SCMP_SYS(mmap), SCMP_SYS(munmap),
                 SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(brk), SCMP_SYS(madvise), SCMP_SYS(futex),
                 SCMP_SYS(sched_yield), SCMP_SYS(sched_getaffinity), SCMP_SYS(getcpu), SCMP_SYS(clock_gettime),
                 SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
                 SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getrandom), SCMP_SYS(rt_sigaction),
                 SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(exit),
                 SCMP_SYS(exit_group), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(getrusage),
                 SCMP_SYS(sysinfo), SCMP_SYS(uname), SCMP_SYS(membarrier), SCMP_SYS(restart_syscall)}) {
    allow(nr);
  }
  // Reads from the socket, writes to the socket and the error pipe only.
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(read), 1, SCMP_A0(SCMP_CMP_EQ, 0));
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, 1));
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, 2));
  // fstat through newfstatat on a descriptor only (AT_EMPTY_PATH), never on a path.
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1, SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
  // Threads, never processes: clone only with CLONE_THREAD; clone3 (whose flags a filter
  // cannot read) answers ENOSYS, so the C library falls back to clone.
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
  seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  // Signals to itself (abort), limits read but never raised.
  const pid_t self = ::getpid();
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(self)));
  seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A2(SCMP_CMP_EQ, 0));
  if (seccomp_load(ctx) != 0) Die("seccomp_load failed (the kernel refused the filter)");
  seccomp_release(ctx);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  LimitResources();
  try {
    WarmUp();
  } catch (const std::exception& e) {
    Die(absl::StrCat("LibTorch warm-up failed: ", e.what()));
  }
  InstallFilter();

  torch::jit::Module model;
  bool loaded = false;
  while (true) {
    char header[kHeaderBytes];
    if (!ReadAll(header, sizeof(header))) return 0;  // the examiner closed the socket
    const uint32_t type = static_cast<uint32_t>(GetLe(header, 4));
    const uint64_t length = GetLe(header + 4, 8);
    if (length > (uint64_t{16} << 30)) Die("oversized frame");
    std::string payload(length, '\0');
    if (!ReadAll(payload.data(), length)) return 0;
    try {
      if (type == kLoadModel) {
        std::istringstream in(payload);
        payload.clear();
        model = torch::jit::load(in);
        if (!model.find_method("forward")) {
          Send(kError, "the TorchScript module has no forward()");
          continue;
        }
        model.eval();
        loaded = true;
        Send(kOk, "");
      } else if (type == kPredict) {
        std::vector<int64_t> sizes;
        std::vector<float> data;
        if (!loaded || !DecodeTensor(payload, &sizes, &data) || sizes.size() != 4) Die("bad predict frame");
        at::Tensor x = torch::from_blob(data.data(), sizes, torch::kFloat32).clone();
        absl::StatusOr<at::Tensor> p = move::PredictProbabilities(model, x);
        if (!p.ok()) {
          Send(kError, std::string(p.status().message()).substr(0, 4000));
          continue;
        }
        at::Tensor c = p->to(torch::kFloat32).contiguous();
        Send(kProbabilities, EncodeTensor(c.sizes().vec(), c.data_ptr<float>(), c.numel()));
      } else {
        Die("unknown frame type");
      }
    } catch (const std::exception& e) {
      Send(kError, std::string(e.what()).substr(0, 4000));
    }
  }
}
