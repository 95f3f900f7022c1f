// Suspect channels: local model, HTTP (cpp-httplib), offline answers, transcript replay.
#include "verifier/channels.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <cmath>
#include <map>
#include <numeric>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/model.h"
#include "sdk/prediction_protocol.pb.h"
#include "sdk/runtime.h"
#include "verifier/ownership_internal.h"

namespace move {
namespace verifier_internal {

std::string EncodeRequest(const at::Tensor& images) {
  at::Tensor x = images.to(torch::kCPU).to(torch::kFloat32).contiguous();
  PredictRequest request;
  const int64_t n = x.size(0), per = x[0].numel();
  const float* p = x.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    PredictImage* im = request.add_instances();
    for (int64_t d = 1; d < 4; ++d) im->add_shape(static_cast<int32_t>(x.size(d)));
    im->mutable_values()->Add(p + i * per, p + (i + 1) * per);
  }
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(request, &json);
  return json;
}

std::string EncodeResponse(const at::Tensor& rows) {
  at::Tensor x = rows.to(torch::kCPU).to(torch::kFloat32).contiguous();
  PredictResponse response;
  const int64_t n = x.size(0), k = x.size(1);
  const float* p = x.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) response.add_predictions()->mutable_probabilities()->Add(p + i * k, p + (i + 1) * k);
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(response, &json);
  return json;
}

absl::StatusOr<ParsedAnswers> ParseAnswers(const std::string& body, int64_t n, int64_t k, bool accept_logits,
                                           bool accept_labels) {
  PredictResponse response;
  if (!google::protobuf::util::JsonStringToMessage(body, &response).ok()) {
    return absl::DataLossError(absl::StrCat("the suspect's answer is not a PredictResponse in JSON (", body.size(),
                                            " bytes; truncated or malformed)"));
  }
  if (!response.error().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the suspect answered with an error: ", response.error()));
  }
  if (response.predictions_size() != n) {
    return absl::DataLossError(absl::StrCat("the suspect answered ", response.predictions_size(), " predictions for ", n,
                                            " images"));
  }
  at::Tensor rows = torch::empty({n, k});
  float* out = rows.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& p = response.predictions(i).probabilities();
    if (p.size() != k) {
      return absl::InvalidArgumentError(absl::StrCat("the suspect returned ", p.size(), " classes; the bundle's model has ",
                                                     k));
    }
    for (int64_t j = 0; j < k; ++j) {
      if (!std::isfinite(p[j])) return absl::DataLossError("the suspect returned a NaN or infinite value");
      out[i * k + j] = p[j];
    }
  }
  ParsedAnswers parsed;
  // Label-only: every value exactly 0 or 1 (one-hot rows).
  if (rows.eq(0).logical_or(rows.eq(1)).all().item<bool>() && rows.sum(1).eq(1).all().item<bool>()) {
    if (accept_labels) {
      parsed.probabilities = rows;
      return parsed;
    }
    return absl::FailedPreconditionError(
        "the suspect returns labels only (one-hot answers): black-box MOVE needs probability vectors; a harmless "
        "watermark leaves no signal in labels, which is why the paper excludes label-only APIs");
  }
  const double min_value = rows.min().item<double>();
  const at::Tensor sums = rows.sum(1);
  const double low = sums.min().item<double>(), high = sums.max().item<double>();
  if (min_value < 0 || low < 1 - 1e-3 || high > 1 + 1e-3) {
    if (!accept_logits) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the suspect's answers are not probability vectors (row sums ", low, " to ", high, ", smallest value ",
          min_value, "): they look like logits; re-run with --accept_logits to apply softmax"));
    }
    rows = torch::softmax(rows, 1);
    parsed.softmax_applied = true;
  }
  parsed.probabilities = rows;
  return parsed;
}

absl::StatusOr<TranscriptWriter> TranscriptWriter::Create(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat("transcript ", path, " already exists (evidence is never overwritten)"));
    }
    return absl::PermissionDeniedError(absl::StrCat("cannot create transcript ", path, ": ", std::strerror(errno)));
  }
  return TranscriptWriter(path, fd);
}

TranscriptWriter::TranscriptWriter(TranscriptWriter&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

TranscriptWriter::~TranscriptWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status TranscriptWriter::Add(const std::string& json_line) {
  std::string line = json_line;
  line.push_back('\n');
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t w = ::write(fd_, line.data() + done, line.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(absl::StrCat("writing transcript ", path_, ": ", std::strerror(errno)));
    }
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd_) != 0) return absl::DataLossError(absl::StrCat("syncing transcript ", path_, ": ", std::strerror(errno)));
  return absl::OkStatus();
}

absl::StatusOr<at::Tensor> QueryClient::Ask(const at::Tensor& images) {
  constexpr size_t kPool = 512;
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < images.size(0); s += per_request_) {
    const at::Tensor batch = images.narrow(0, s, std::min(per_request_, images.size(0) - s));
    const int64_t len = batch.size(0);
    // Repeats: images asked before (or, for the very first request, in this one), at random
    // positions among the new ones, so they look like any other query.
    int64_t r = 0;
    std::vector<int64_t> from_pool;  // pool index, or -1 - i for batch image i
    if (repeats_.share > 0 && channel_.CanRepeat()) {
      r = std::max<int64_t>(1, static_cast<int64_t>(std::llround(repeats_.share * len)));
      for (int64_t j = 0; j < r; ++j) {
        if (pool_.empty()) {
          from_pool.push_back(-1 - static_cast<int64_t>(rng_() % static_cast<uint64_t>(len)));
        } else {
          from_pool.push_back(static_cast<int64_t>(rng_() % pool_.size()));
        }
      }
    }
    std::vector<at::Tensor> sent_parts = {batch};
    for (int64_t idx : from_pool) {
      sent_parts.push_back((idx >= 0 ? pool_[idx].first : batch[-1 - idx]).unsqueeze(0));
    }
    at::Tensor sent = torch::cat(sent_parts);
    std::vector<int64_t> order(len + r);
    std::iota(order.begin(), order.end(), 0);
    if (r > 0) std::shuffle(order.begin(), order.end(), rng_);
    const at::Tensor order_t = torch::tensor(order, torch::kInt64);
    sent = sent.index_select(0, order_t);

    TranscriptEntry e;
    e.set_request(requests_++);
    e.set_time(absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()));
    e.set_channel(channel_.Describe());
    for (int64_t i = 0; i < sent.size(0); ++i) e.add_image_sha256(core::TensorSha256(sent[i].contiguous()));
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<ChannelAnswer> answer = channel_.Predict(sent);
    e.set_seconds(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!answer.ok()) return answer.status();
    queries_ += len;
    e.set_response(answer->response);
    e.set_response_sha256(core::Sha256Hex(answer->response));
    e.set_status(answer->status);
    e.set_attempts(answer->attempts);
    if (transcript_ != nullptr) {
      std::string line;
      google::protobuf::util::JsonPrintOptions jo;
      jo.preserve_proto_field_names = true;
      (void)google::protobuf::util::MessageToJsonString(e, &line, jo);
      MOVE_RETURN_IF_ERROR(transcript_->Add(line));
    }
    MOVE_ASSIGN_OR_RETURN(ParsedAnswers parsed, ParseAnswers(answer->response, sent.size(0), k_, accept_logits_, accept_labels_));
    softmax_applied_ |= parsed.softmax_applied;
    // Back to the sent order: rows 0..len-1 answer the batch, the rest the repeats.
    at::Tensor unshuffled = torch::empty_like(parsed.probabilities);
    unshuffled.index_copy_(0, order_t, parsed.probabilities);
    const at::Tensor answers = unshuffled.narrow(0, 0, len);
    for (int64_t j = 0; j < r; ++j) {
      const int64_t idx = from_pool[j];
      const at::Tensor first = idx >= 0 ? pool_[idx].second : answers[-1 - idx];
      const double d = (unshuffled[len + j] - first).abs().max().item<double>();
      ++repeat_count_;
      max_difference_ = std::max(max_difference_, d);
      if (d > repeats_.tolerance) ++disagreements_;
    }
    for (int64_t i = 0; i < len; ++i) {
      if (pool_.size() < kPool) {
        pool_.emplace_back(batch[i], answers[i].clone());
      } else {
        const uint64_t slot = rng_() % static_cast<uint64_t>(queries_);
        if (slot < kPool) pool_[slot] = {batch[i], answers[i].clone()};
      }
    }
    parts.push_back(answers);
  }
  return torch::cat(parts);
}

}  // namespace verifier_internal

namespace {

using verifier_internal::EncodeRequest;
using verifier_internal::EncodeResponse;

class ModelChannel final : public SuspectChannel {
 public:
  ModelChannel(torch::jit::Module model, std::string path, std::string sha, c10::Device device)
      : model_(std::move(model)), path_(std::move(path)), sha_(std::move(sha)), device_(device) {}
  absl::StatusOr<ChannelAnswer> Predict(const at::Tensor& images) override {
    MOVE_ASSIGN_OR_RETURN(at::Tensor p, PredictProbabilities(model_, images.to(device_)));
    if (p.dim() != 2) return absl::InvalidArgumentError("the suspect model's output is not N x K");
    return ChannelAnswer{EncodeResponse(p), 0, 1};
  }
  std::string Describe() const override { return prefix_ + path_; }
  std::string ModelSha256() const override { return sha_; }
  void set_prefix(std::string p) { prefix_ = std::move(p); }

 private:
  torch::jit::Module model_;
  std::string path_, sha_;
  c10::Device device_;
  std::string prefix_ = "file:";
};

class HttpChannel final : public SuspectChannel {
 public:
  HttpChannel(std::string url, const std::string& origin, std::string path, HttpChannelOptions o)
      : url_(std::move(url)), path_(std::move(path)), o_(o), client_(origin) {
    client_.set_connection_timeout(std::chrono::milliseconds(o.connect_timeout_ms));
    client_.set_read_timeout(std::chrono::milliseconds(o.read_timeout_ms));
    client_.set_write_timeout(std::chrono::milliseconds(o.read_timeout_ms));
  }

  absl::StatusOr<ChannelAnswer> Predict(const at::Tensor& images) override {
    const std::string body = EncodeRequest(images);
    absl::Status last;
    for (int attempt = 0; attempt <= o_.retries; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o_.backoff_ms << (attempt - 1)));
      Throttle();
      // The whole request, headers and body, must finish by the deadline: a watchdog stops the
      // client (shuts its socket) if it has not, so an endpoint that drips its answer a byte
      // at a time cannot outlast it. Answers are read into a capped buffer.
      httplib::Request req;
      req.method = "POST";
      req.path = path_;
      req.body = body;
      req.set_header("Content-Type", "application/json");
      std::string answer;
      bool too_big = false;
      req.response_handler = [&](const httplib::Response& r) {
        if (r.has_header("Content-Length") &&
            std::strtoull(r.get_header_value("Content-Length").c_str(), nullptr, 10) > static_cast<uint64_t>(o_.max_answer_bytes)) {
          too_big = true;
          return false;
        }
        return true;
      };
      req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        if (answer.size() + n > static_cast<uint64_t>(o_.max_answer_bytes)) {
          too_big = true;
          return false;
        }
        answer.append(data, n);
        return true;
      };
      bool timed_out = false;
      httplib::Result res(nullptr, httplib::Error::Unknown);
      {
        std::mutex mu;
        std::condition_variable cv;
        bool done = false;
        std::thread watchdog([&] {
          std::unique_lock<std::mutex> lock(mu);
          if (!cv.wait_for(lock, std::chrono::milliseconds(o_.request_deadline_ms), [&] { return done; })) {
            timed_out = true;
            client_.stop();
          }
        });
        res = client_.send(req);
        {
          std::lock_guard<std::mutex> lock(mu);
          done = true;
        }
        cv.notify_all();
        watchdog.join();
      }
      if (too_big) {
        return absl::ResourceExhaustedError(absl::StrCat(url_, " sent an answer larger than the ", o_.max_answer_bytes,
                                                         "-byte limit (HttpChannelOptions::max_answer_bytes)"));
      }
      if (timed_out) {
        last = absl::DeadlineExceededError(absl::StrCat("no complete answer from ", url_, " within the ",
                                                        o_.request_deadline_ms, " ms request deadline"));
        continue;
      }
      if (!res) {
        const httplib::Error e = res.error();
        const std::string what = absl::StrCat("no answer from ", url_, " (", httplib::to_string(e), ")");
        last = (e == httplib::Error::ConnectionTimeout || e == httplib::Error::Read) ? absl::DeadlineExceededError(what)
                                                                                      : absl::UnavailableError(what);
        continue;
      }
      res->body = std::move(answer);
      if (res->status == 429 || res->status >= 500) {
        last = absl::UnavailableError(absl::StrCat(url_, " answered HTTP ", res->status, ": ", Excerpt(res->body)));
        continue;
      }
      if (res->status >= 300 && res->status < 400) {
        // Never followed: a redirect could send the examiner's requests anywhere.
        return absl::FailedPreconditionError(absl::StrCat(url_, " answered with a redirect (HTTP ", res->status, " to '",
                                                          Excerpt(res->get_header_value("Location")),
                                                          "'), which is never followed: examine the final URL itself"));
      }
      if (res->status < 200 || res->status >= 300) {
        // Client errors do not get better by retrying.
        return absl::FailedPreconditionError(
            absl::StrCat(url_, " refused the request with HTTP ", res->status, ": ", Excerpt(res->body)));
      }
      PredictResponse probe;
      if (!google::protobuf::util::JsonStringToMessage(res->body, &probe).ok()) {
        last = absl::DataLossError(absl::StrCat(url_, " sent an unreadable answer (", res->body.size(),
                                                " bytes of invalid or truncated JSON)"));
        continue;
      }
      return ChannelAnswer{res->body, res->status, attempt + 1};
    }
    return absl::Status(last.code(), absl::StrCat(last.message(), "; gave up after ", o_.retries + 1, " attempts"));
  }
  std::string Describe() const override { return url_; }

 private:
  static std::string Excerpt(const std::string& s) { return s.size() > 200 ? s.substr(0, 200) + "..." : s; }
  void Throttle() {
    if (o_.max_requests_per_second <= 0) return;
    const auto gap = std::chrono::duration<double>(1.0 / o_.max_requests_per_second);
    const auto now = std::chrono::steady_clock::now();
    if (has_last_ && now - last_request_ < gap) std::this_thread::sleep_for(gap - (now - last_request_));
    last_request_ = std::chrono::steady_clock::now();
    has_last_ = true;
  }

  std::string url_, path_;
  HttpChannelOptions o_;
  httplib::Client client_;
  std::chrono::steady_clock::time_point last_request_;
  bool has_last_ = false;
};

// Answers looked up by image SHA-256 (offline answers and transcript replay).
// Answers looked up by image SHA-256: offline answers (one per image), and transcript replay,
// where an image asked more than once gets its recorded answers in the order they came.
class LookupChannel final : public SuspectChannel {
 public:
  LookupChannel(std::string description, std::map<std::string, std::vector<std::vector<float>>> answers, bool can_repeat)
      : description_(std::move(description)), answers_(std::move(answers)), can_repeat_(can_repeat) {}
  absl::StatusOr<ChannelAnswer> Predict(const at::Tensor& images) override {
    PredictResponse response;
    at::Tensor x = images.to(torch::kCPU).contiguous();
    for (int64_t i = 0; i < x.size(0); ++i) {
      const std::string sha = core::TensorSha256(x[i]);
      auto it = answers_.find(sha);
      if (it == answers_.end() || it->second.empty()) {
        return absl::NotFoundError(absl::StrCat(description_, " holds no answer for query image ", sha.substr(0, 16),
                                                "... (different bundle, m or seed?)"));
      }
      size_t& next = next_[sha];
      const std::vector<float>& row = it->second[std::min(next, it->second.size() - 1)];
      ++next;
      response.add_predictions()->mutable_probabilities()->Add(row.begin(), row.end());
    }
    std::string json;
    (void)google::protobuf::util::MessageToJsonString(response, &json);
    return ChannelAnswer{json, 0, 1};
  }
  std::string Describe() const override { return description_; }
  bool CanRepeat() const override { return can_repeat_; }

 private:
  std::string description_;
  std::map<std::string, std::vector<std::vector<float>>> answers_;
  std::map<std::string, size_t> next_;
  bool can_repeat_;
};

// "http://host[:port]/path" -> origin "http://host:port" and path.
absl::Status SplitUrl(const std::string& url, std::string* origin, std::string* path) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos || (url.compare(0, scheme, "http") != 0 && url.compare(0, scheme, "https") != 0)) {
    return absl::InvalidArgumentError(absl::StrCat("endpoint '", url, "': expected http://HOST[:PORT]/PATH or https://..."));
  }
  const size_t slash = url.find('/', scheme + 3);
  *origin = url.substr(0, slash);
  *path = slash == std::string::npos ? "/v1/predict" : url.substr(slash);
  if (origin->size() <= scheme + 3) return absl::InvalidArgumentError(absl::StrCat("endpoint '", url, "': no host"));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenModelChannel(const std::string& path, const std::string& device) {
  MOVE_ASSIGN_OR_RETURN(c10::Device d, ResolveDevice(device));
  MOVE_ASSIGN_OR_RETURN(std::string bytes, core::ReadFile(path));
  MOVE_ASSIGN_OR_RETURN(torch::jit::Module model, LoadModel(path, d));
  model.eval();
  return std::unique_ptr<SuspectChannel>(new ModelChannel(model, path, core::Sha256Hex(bytes), d));
}

absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenWeightsChannel(const OpenedBundle& bundle, const std::string& path,
                                                                   const std::string& device) {
  MOVE_ASSIGN_OR_RETURN(c10::Device d, ResolveDevice(device));
  MOVE_ASSIGN_OR_RETURN(ModelWeights weights, ReadModelWeights(path));
  MOVE_ASSIGN_OR_RETURN(verifier_internal::MatchedSuspect matched,
                        verifier_internal::MatchArchitecture(bundle.contents, weights, d));
  auto channel = std::make_unique<ModelChannel>(matched.model, path, weights.sha256, d);
  channel->set_prefix(absl::StrCat("weights:", matched.verifier->architecture(), ":"));
  return std::unique_ptr<SuspectChannel>(std::move(channel));
}

absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenHttpChannel(const std::string& url, const HttpChannelOptions& o) {
  if (o.connect_timeout_ms <= 0 || o.read_timeout_ms <= 0) return absl::InvalidArgumentError("timeouts: must be > 0 ms");
  if (o.retries < 0 || o.retries > 10) return absl::InvalidArgumentError("retries: must be in [0, 10]");
  if (o.request_deadline_ms <= 0) return absl::InvalidArgumentError("request_deadline_ms: must be > 0");
  if (o.max_answer_bytes < 1) return absl::InvalidArgumentError("max_answer_bytes: must be >= 1");
  if (o.backoff_ms < 0 || o.backoff_ms > 60000) return absl::InvalidArgumentError("backoff_ms: must be in [0, 60000]");
  if (!(o.max_requests_per_second >= 0)) return absl::InvalidArgumentError("max_requests_per_second: must be >= 0");
  std::string origin, path;
  MOVE_RETURN_IF_ERROR(SplitUrl(url, &origin, &path));
  return std::unique_ptr<SuspectChannel>(new HttpChannel(url, origin, path, o));
}

absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenOfflineChannel(const std::string& queries_dir,
                                                                   const std::string& answers_path) {
  MOVE_ASSIGN_OR_RETURN(std::string manifest_json, core::ReadFile(queries_dir + "/manifest.json"));
  QueryManifest manifest;
  if (!google::protobuf::util::JsonStringToMessage(manifest_json, &manifest).ok()) {
    return absl::DataLossError(absl::StrCat(queries_dir, "/manifest.json is not a query manifest"));
  }
  std::map<std::string, std::string> sha_of_id;
  for (const auto& q : manifest.queries()) sha_of_id[q.id()] = q.image_sha256();
  MOVE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(answers_path));
  std::vector<std::pair<std::string, std::vector<float>>> rows;
  const std::string trimmed(absl::StripAsciiWhitespace(text));
  if (!trimmed.empty() && trimmed[0] == '{') {
    OfflineAnswers answers;
    if (!google::protobuf::util::JsonStringToMessage(trimmed, &answers).ok()) {
      return absl::DataLossError(absl::StrCat(answers_path, ": not an OfflineAnswers JSON file (truncated or malformed)"));
    }
    for (const auto& a : answers.answers()) rows.push_back({a.id(), {a.probabilities().begin(), a.probabilities().end()}});
  } else {
    int line_no = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_no;
      line = absl::StripAsciiWhitespace(line);
      if (line.empty()) continue;
      std::vector<std::string> cells = absl::StrSplit(line, ',');
      if (line_no == 1 && cells[0] == "id") continue;  // header
      std::vector<float> p;
      for (size_t j = 1; j < cells.size(); ++j) {
        float v;
        if (!absl::SimpleAtof(absl::StripAsciiWhitespace(cells[j]), &v)) {
          return absl::DataLossError(absl::StrCat(answers_path, ":", line_no, ": '", cells[j], "' is not a number"));
        }
        p.push_back(v);
      }
      rows.push_back({cells[0], p});
    }
  }
  std::map<std::string, std::vector<float>> by_sha;
  for (auto& [id, p] : rows) {
    auto it = sha_of_id.find(id);
    if (it == sha_of_id.end()) {
      return absl::InvalidArgumentError(absl::StrCat(answers_path, ": answer for unknown query id '", id, "'"));
    }
    by_sha[it->second] = std::move(p);
  }
  std::map<std::string, std::vector<std::vector<float>>> one_each;
  for (auto& [sha, row] : by_sha) one_each[sha].push_back(std::move(row));
  return std::unique_ptr<SuspectChannel>(new LookupChannel("offline:" + answers_path, std::move(one_each), false));
}

absl::StatusOr<std::unique_ptr<SuspectChannel>> OpenReplayChannel(const std::string& transcript_path) {
  MOVE_ASSIGN_OR_RETURN(std::string text, core::ReadFile(transcript_path));
  std::map<std::string, std::vector<std::vector<float>>> by_sha;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    ++line_no;
    TranscriptEntry e;
    if (!google::protobuf::util::JsonStringToMessage(std::string(line), &e).ok()) {
      return absl::DataLossError(absl::StrCat(transcript_path, ":", line_no, ": not a transcript entry"));
    }
    if (core::Sha256Hex(e.response()) != e.response_sha256()) {
      return absl::DataLossError(absl::StrCat(transcript_path, ":", line_no, ": response does not match its SHA-256"));
    }
    PredictResponse r;
    if (!google::protobuf::util::JsonStringToMessage(e.response(), &r).ok()) continue;  // recorded as received
    for (int i = 0; i < e.image_sha256_size() && i < r.predictions_size(); ++i) {
      const auto& p = r.predictions(i).probabilities();
      by_sha[e.image_sha256(i)].emplace_back(p.begin(), p.end());
    }
  }
  return std::unique_ptr<SuspectChannel>(new LookupChannel("replay:" + transcript_path, std::move(by_sha), true));
}

}  // namespace move
