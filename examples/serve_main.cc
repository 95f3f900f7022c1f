// move_serve: serves a TorchScript model over MOVE's prediction protocol
// (sdk/prediction_protocol.proto), e.g. as the "deployed victim" black-box verification talks
// to, or to let a suspect's owner answer queries without shipping their model.
//
//   move_serve --model=victim.pt [--host=127.0.0.1] [--port=0] [--port_file=PATH]
//              [--output=probabilities|logits|labels] [--device=cpu] [--threads=0]
//
// Prints "serving <url>" once it listens (with --port=0 a free port is chosen; --port_file
// also writes it there, atomically) and runs until SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/serving.h"

ABSL_FLAG(std::string, model, "", "TorchScript model to serve. Required.");
ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on (loopback by default).");
ABSL_FLAG(int, port, 0, "Port; 0 picks a free one.");
ABSL_FLAG(std::string, port_file, "", "Also write the port number to this file once listening.");
ABSL_FLAG(std::string, output, "probabilities", "probabilities, logits or labels (one-hot, like a label-only API).");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N.");
ABSL_FLAG(int, threads, 0, "LibTorch CPU threads; 0 = all cores.");

namespace {

absl::Status Run() {
  if (absl::GetFlag(FLAGS_model).empty()) return absl::InvalidArgumentError("--model: required");
  MOVE_RETURN_IF_ERROR(move::SetNumThreads(absl::GetFlag(FLAGS_threads)));
  MOVE_ASSIGN_OR_RETURN(c10::Device device, move::ResolveDevice(absl::GetFlag(FLAGS_device)));
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module model, move::LoadModel(absl::GetFlag(FLAGS_model), device));
  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  move::ServeOptions o;
  o.host = absl::GetFlag(FLAGS_host);
  o.port = absl::GetFlag(FLAGS_port);
  o.output = absl::GetFlag(FLAGS_output);
  o.device = absl::GetFlag(FLAGS_device);
  MOVE_ASSIGN_OR_RETURN(std::unique_ptr<move::PredictionServer> server, move::PredictionServer::Start(model, o));
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(absl::GetFlag(FLAGS_port_file), absl::StrCat(server->port(), "\n")));
  }
  std::printf("serving %s (%s; POST JSON, see sdk/prediction_protocol.proto)\n", server->url().c_str(), o.output.c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop, &sig);
  server->Stop();
  std::printf("stopped after %lld images\n", static_cast<long long>(server->images_served()));
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("move_serve --model=model.pt [--port=0] [--output=probabilities]");
  absl::ParseCommandLine(argc, argv);
  absl::Status s = Run();
  if (!s.ok()) {
    std::fprintf(stderr, "move_serve: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
