// The prediction-protocol server (implements sdk/serving.h) on cpp-httplib.
#include <atomic>
#include <mutex>
#include <thread>

#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "core/torch_errors.h"
#include "sdk/model.h"
#include "sdk/prediction_protocol.pb.h"
#include "sdk/runtime.h"
#include "sdk/serving.h"

namespace move {
namespace {

std::string ErrorJson(const std::string& message) {
  PredictResponse r;
  r.set_error(message);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(r, &json);
  return json;
}

class Server final : public PredictionServer {
 public:
  Server(torch::jit::Module model, ServeOptions options, c10::Device device)
      : model_(std::move(model)), options_(std::move(options)), device_(device) {}
  ~Server() override { Stop(); }

  absl::Status Bind() {
    model_.eval();
    http_.Post("/v1/predict", [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); });
    http_.Get("/v1/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{\"status\":\"ok\"}", "application/json");
    });
    // Whatever escapes a handler: a plain 500, never the exception's text (which may carry a
    // LibTorch backtrace) in a header.
    http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content(ErrorJson("internal error"), "application/json");
    });
    port_ = options_.port == 0 ? http_.bind_to_any_port(options_.host)
                               : (http_.bind_to_port(options_.host, options_.port) ? options_.port : -1);
    if (port_ <= 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.host, ":", options_.port));
    }
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    return absl::OkStatus();
  }

  int port() const override { return port_; }
  std::string url() const override { return absl::StrCat("http://", options_.host, ":", port_, "/v1/predict"); }
  int64_t images_served() const override { return served_.load(); }
  void Stop() override {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }
  void Wait() override {
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Handle(const httplib::Request& req, httplib::Response& res) {
    auto fail = [&](int status, const std::string& message) {
      res.status = status;
      res.set_content(ErrorJson(message), "application/json");
    };
    PredictRequest request;
    google::protobuf::util::JsonParseOptions po;
    if (!google::protobuf::util::JsonStringToMessage(req.body, &request, po).ok()) {
      return fail(400, "body is not a PredictRequest in JSON");
    }
    const int n = request.instances_size();
    if (n == 0) return fail(400, "no instances");
    if (n > options_.max_batch) return fail(413, absl::StrCat("batch of ", n, " exceeds ", options_.max_batch));
    const auto& shape = request.instances(0).shape();
    if (shape.size() != 3 || shape[0] <= 0 || shape[1] <= 0 || shape[2] <= 0) {
      return fail(400, "shape must be [channels, height, width]");
    }
    // At most 2^24 values per image (a 4096 x 4096 colour image is 50M): larger shapes are
    // refused before anything is allocated.
    constexpr int64_t kMaxValues = int64_t{1} << 24;
    if (shape[0] > kMaxValues || shape[1] > kMaxValues || shape[2] > kMaxValues ||
        static_cast<int64_t>(shape[0]) * shape[1] > kMaxValues ||
        static_cast<int64_t>(shape[0]) * shape[1] * shape[2] > kMaxValues) {
      return fail(413, absl::StrCat("shape [", shape[0], ", ", shape[1], ", ", shape[2], "] exceeds ", kMaxValues,
                                    " values per image"));
    }
    const int64_t per = static_cast<int64_t>(shape[0]) * shape[1] * shape[2];
    at::Tensor images = torch::empty({n, shape[0], shape[1], shape[2]});
    float* out = images.data_ptr<float>();
    for (int i = 0; i < n; ++i) {
      const PredictImage& im = request.instances(i);
      if (im.shape_size() != 3 || im.shape(0) != shape[0] || im.shape(1) != shape[1] || im.shape(2) != shape[2]) {
        return fail(400, absl::StrCat("instance ", i, ": all instances must have the same shape"));
      }
      if (im.values_size() != per) {
        return fail(400, absl::StrCat("instance ", i, ": ", im.values_size(), " values for shape of ", per));
      }
      for (int64_t j = 0; j < per; ++j) {
        const float v = im.values(j);
        if (!std::isfinite(v)) return fail(400, absl::StrCat("instance ", i, ": non-finite value"));
        if (v < 0 || v > 1) return fail(400, absl::StrCat("instance ", i, ": pixel value ", v, " outside [0, 1]"));
        out[i * per + j] = v;
      }
    }
    absl::StatusOr<at::Tensor> outputs = core::GuardTorch("running the model", [&]() -> absl::StatusOr<at::Tensor> {
      std::lock_guard<std::mutex> lock(model_mu_);
      torch::NoGradGuard no_grad;
      at::Tensor logits = model_.forward({images.to(device_)}).toTensor().to(torch::kCPU).to(torch::kFloat32);
      if (logits.dim() != 2 || logits.size(0) != n) {
        return absl::InternalError("the model's output is not N x K");
      }
      if (!torch::isfinite(logits).all().item<bool>()) return absl::InternalError("the model's output is not finite");
      if (options_.output == "logits") return logits.contiguous();
      if (options_.output == "labels") {
        return torch::zeros_like(logits).scatter_(1, logits.argmax(1, true), 1.0).contiguous();
      }
      return torch::softmax(logits, 1).contiguous();
    });
    if (!outputs.ok()) return fail(absl::IsInternal(outputs.status()) ? 500 : 400, std::string(outputs.status().message()));
    PredictResponse response;
    const int64_t k = outputs->size(1);
    const float* p = outputs->data_ptr<float>();
    for (int i = 0; i < n; ++i) {
      Prediction* pr = response.add_predictions();
      for (int64_t j = 0; j < k; ++j) pr->add_probabilities(p[i * k + j]);
    }
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(response, &json);
    served_ += n;
    res.set_content(json, "application/json");
  }

  torch::jit::Module model_;
  ServeOptions options_;
  c10::Device device_;
  httplib::Server http_;
  std::thread thread_;
  std::mutex model_mu_, stop_mu_;
  bool stopped_ = false;
  int port_ = -1;
  std::atomic<int64_t> served_{0};
};

}  // namespace

absl::StatusOr<std::unique_ptr<PredictionServer>> PredictionServer::Start(const torch::jit::Module& model,
                                                                         const ServeOptions& options) {
  if (options.output != "probabilities" && options.output != "logits" && options.output != "labels") {
    return absl::InvalidArgumentError(
        absl::StrCat("output: expected probabilities, logits or labels, got '", options.output, "'"));
  }
  if (options.port < 0 || options.port > 65535) return absl::InvalidArgumentError("port: must be in [0, 65535]");
  if (options.max_batch < 1) return absl::InvalidArgumentError("max_batch: must be >= 1");
  absl::StatusOr<c10::Device> device = ResolveDevice(options.device);
  if (!device.ok()) return device.status();
  torch::jit::Module m = model;
  absl::Status moved = core::GuardTorch("moving the model", [&]() -> absl::Status {
    m.to(*device);
    return absl::OkStatus();
  });
  if (!moved.ok()) return moved;
  auto server = std::make_unique<Server>(m, options, *device);
  absl::Status s = server->Bind();
  if (!s.ok()) return s;
  return std::unique_ptr<PredictionServer>(std::move(server));
}

}  // namespace move
