// Serving a TorchScript model over the prediction protocol (sdk/prediction_protocol.proto):
// the "deployed model" side of black-box verification, for tests, demos and vendors who want
// a reference endpoint.
//
//   absl::StatusOr<std::unique_ptr<move::PredictionServer>> s =
//       move::PredictionServer::Start(model, {});   // loopback, a free port
//   std::string url = (*s)->url();                 // "http://127.0.0.1:PORT/v1/predict"
//   ...
//   (*s)->Stop();                                  // also on destruction
#ifndef MOVE_SDK_SERVING_H_
#define MOVE_SDK_SERVING_H_

#include <memory>
#include <string>

#include <torch/csrc/jit/api/module.h>

#include "absl/status/statusor.h"

namespace move {

struct ServeOptions {
  // Address and port to listen on; port 0 picks a free one. Default: loopback.
  std::string host = "127.0.0.1";
  int port = 0;
  // What the endpoint returns: "probabilities" (softmax, default), "logits" (raw outputs) or
  // "labels" (one-hot argmax, like a label-only API).
  std::string output = "probabilities";
  // Largest batch accepted (HTTP 413 beyond). Default: 1024.
  int max_batch = 1024;
  // "cpu" or "cuda[:N]". Default: "cpu".
  std::string device = "cpu";
};

class PredictionServer {
 public:
  // Binds and starts serving `model` on a background thread. kInvalidArgument for bad
  // options, kUnavailable if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<PredictionServer>> Start(const torch::jit::Module& model,
                                                                 const ServeOptions& options = {});
  virtual ~PredictionServer() = default;
  virtual int port() const = 0;
  // "http://HOST:PORT/v1/predict".
  virtual std::string url() const = 0;
  // Requests answered so far (images).
  virtual int64_t images_served() const = 0;
  // Stops listening and joins the thread. Idempotent.
  virtual void Stop() = 0;
  // Blocks until Stop() is called from another thread or the server fails.
  virtual void Wait() = 0;
};

}  // namespace move

#endif  // MOVE_SDK_SERVING_H_
