// Suspect channels: every bad answer of the black-box issue gets the right error, retries
// happen where they make sense, and the transcript never overwrites evidence.
#include "verifier/channels.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "sdk/blackbox.h"

namespace move::verifier_internal {
namespace {

std::string TempDir() {
  const char* t = std::getenv("TEST_TMPDIR");
  return t ? t : "/tmp";
}

std::string Rows(const std::string& row, int n) {
  std::string s = "{\"predictions\":[";
  for (int i = 0; i < n; ++i) s += absl::StrCat(i ? "," : "", "{\"probabilities\":", row, "}");
  return s + "]}";
}

TEST(ParseAnswersTest, AcceptsProbabilityVectors) {
  auto p = ParseAnswers(Rows("[0.25,0.75]", 3), 3, 2, false);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->probabilities.sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_FALSE(p->softmax_applied);
}

TEST(ParseAnswersTest, RefusesEveryKindOfBadAnswer) {
  EXPECT_EQ(ParseAnswers("{\"predictions\":[{\"probabil", 1, 2, false).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseAnswers(Rows("[0.25,0.75]", 2), 3, 2, false).status().code(), absl::StatusCode::kDataLoss);
  auto wrong_k = ParseAnswers(Rows("[0.2,0.3,0.5]", 1), 1, 2, false);
  EXPECT_EQ(wrong_k.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_k.status().message().find("3 classes"), std::string::npos);
  EXPECT_EQ(ParseAnswers(Rows("[\"NaN\",0.5]", 1), 1, 2, false).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseAnswers(Rows("[\"Infinity\",0.5]", 1), 1, 2, false).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseAnswers("{\"error\":\"model offline\"}", 1, 2, false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto labels = ParseAnswers(Rows("[0,1]", 4), 4, 2, false);
  EXPECT_EQ(labels.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(labels.status().message().find("labels only"), std::string::npos);
  // A line that reads only the top class takes them.
  auto taken = ParseAnswers(Rows("[0,1]", 4), 4, 2, false, /*accept_labels=*/true);
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->probabilities.argmax(1).sum().item<int64_t>(), 4);
  auto negative = ParseAnswers(Rows("[-0.5,1.5]", 1), 1, 2, false);
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  auto logits = ParseAnswers(Rows("[2.0,3.5]", 1), 1, 2, false);
  EXPECT_EQ(logits.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(logits.status().message().find("logits"), std::string::npos);
}

TEST(ParseAnswersTest, AcceptsLogitsWhenAskedAndSaysSo) {
  auto p = ParseAnswers(Rows("[2.0,3.0]", 2), 2, 2, true);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->softmax_applied);
  EXPECT_NEAR(p->probabilities[0][1].item<float>(), 1 / (1 + std::exp(-1.0)), 1e-6);
}

TEST(EncodingTest, RequestsCarryExactValues) {
  at::Tensor x = torch::rand({2, 3, 4, 4}).mul(255).round().div(255);
  const std::string json = EncodeRequest(x);
  EXPECT_NE(json.find("\"shape\":[3,4,4]"), std::string::npos) << json.substr(0, 80);
  auto back = ParseAnswers(EncodeResponse(torch::softmax(torch::randn({2, 5}), 1)), 2, 5, false);
  EXPECT_TRUE(back.ok());
}

TEST(TranscriptWriterTest, NeverOverwritesEvidence) {
  const std::string path = TempDir() + "/t.jsonl";
  std::remove(path.c_str());
  {
    auto w = TranscriptWriter::Create(path);
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE(w->Add("{\"request\":0}").ok());
    ASSERT_TRUE(w->Add("{\"request\":1}").ok());
  }
  std::ifstream in(path);
  std::string a, b;
  std::getline(in, a);
  std::getline(in, b);
  EXPECT_EQ(a, "{\"request\":0}");
  EXPECT_EQ(b, "{\"request\":1}");
  EXPECT_EQ(TranscriptWriter::Create(path).status().code(), absl::StatusCode::kAlreadyExists);
}

// A loopback server whose /v1/predict misbehaves as each test asks.
class FlakyServer {
 public:
  explicit FlakyServer(std::function<void(int call, httplib::Response&)> behave) : behave_(std::move(behave)) {
    http_.Post("/v1/predict", [this](const httplib::Request&, httplib::Response& res) { behave_(calls_++, res); });
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
  }
  ~FlakyServer() {
    http_.stop();
    thread_.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_, "/v1/predict"); }
  int calls() const { return calls_; }

 private:
  std::function<void(int, httplib::Response&)> behave_;
  httplib::Server http_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> calls_{0};
};

HttpChannelOptions Fast() {
  HttpChannelOptions o;
  o.connect_timeout_ms = 500;
  o.read_timeout_ms = 500;
  o.retries = 2;
  o.backoff_ms = 10;
  return o;
}

const at::Tensor kImages = torch::zeros({2, 1, 4, 4});

TEST(HttpChannelTest, RetriesServerErrorsThenSucceeds) {
  FlakyServer server([](int call, httplib::Response& res) {
    if (call < 2) {
      res.status = 503;
      res.set_content("{\"error\":\"busy\"}", "application/json");
    } else {
      res.set_content(Rows("[0.5,0.5]", 2), "application/json");
    }
  });
  auto ch = OpenHttpChannel(server.url(), Fast());
  ASSERT_TRUE(ch.ok());
  auto a = (*ch)->Predict(kImages);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->attempts, 3);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ((*ch)->Describe(), server.url());
}

TEST(HttpChannelTest, GivesUpAfterRetriesWithAClearError) {
  FlakyServer server([](int, httplib::Response& res) { res.status = 500; });
  auto a = (*OpenHttpChannel(server.url(), Fast()))->Predict(kImages);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(a.status().message().find("HTTP 500"), std::string::npos) << a.status();
  EXPECT_NE(a.status().message().find("3 attempts"), std::string::npos) << a.status();
  EXPECT_EQ(server.calls(), 3);
}

TEST(HttpChannelTest, ClientErrorsAreNotRetried) {
  FlakyServer server([](int, httplib::Response& res) {
    res.status = 400;
    res.set_content("{\"error\":\"bad image\"}", "application/json");
  });
  auto a = (*OpenHttpChannel(server.url(), Fast()))->Predict(kImages);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(a.status().message().find("bad image"), std::string::npos);
  EXPECT_EQ(server.calls(), 1);
}

TEST(HttpChannelTest, TimeoutsAreRetriedThenReported) {
  FlakyServer server([](int, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    res.set_content(Rows("[0.5,0.5]", 2), "application/json");
  });
  HttpChannelOptions o = Fast();
  o.retries = 1;
  auto a = (*OpenHttpChannel(server.url(), o))->Predict(kImages);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDeadlineExceeded) << a.status();
}

TEST(HttpChannelTest, AnEndpointThatDripsItsAnswerIsCutOffAtTheRequestDeadline) {
  // One byte every 100 ms: each read is well inside the 500 ms read timeout.
  FlakyServer server([](int, httplib::Response& res) {
    const std::string body = Rows("[0.5,0.5]", 2);
    res.set_chunked_content_provider("application/json", [body](size_t offset, httplib::DataSink& sink) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (offset >= body.size()) {
        sink.done();
        return true;
      }
      return sink.write(body.data() + offset, 1);
    });
  });
  HttpChannelOptions o = Fast();
  o.retries = 0;
  o.request_deadline_ms = 1500;
  const auto t0 = std::chrono::steady_clock::now();
  auto a = (*OpenHttpChannel(server.url(), o))->Predict(kImages);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDeadlineExceeded) << a.status();
  EXPECT_NE(a.status().message().find("1500 ms request deadline"), std::string::npos) << a.status();
  EXPECT_LT(seconds, 4.0);
}

TEST(HttpChannelTest, AFloodIsRefusedAtTheAnswerCapWithOrWithoutContentLength) {
  FlakyServer sized([](int, httplib::Response& res) { res.set_content(std::string(8 << 20, ' '), "application/json"); });
  HttpChannelOptions o = Fast();
  o.max_answer_bytes = 1 << 20;
  auto a = (*OpenHttpChannel(sized.url(), o))->Predict(kImages);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kResourceExhausted) << a.status();
  EXPECT_EQ(sized.calls(), 1);  // not retried
  FlakyServer chunked([](int, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [](size_t, httplib::DataSink& sink) {
      static const std::string block(64 << 10, ' ');
      return sink.write(block.data(), block.size());  // never ends
    });
  });
  auto b = (*OpenHttpChannel(chunked.url(), o))->Predict(kImages);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted) << b.status();
  EXPECT_NE(b.status().message().find("1048576-byte limit"), std::string::npos) << b.status();
}

TEST(HttpChannelTest, RedirectsAreNeverFollowed) {
  FlakyServer server([](int, httplib::Response& res) { res.set_redirect("http://169.254.169.254/latest/meta-data/"); });
  auto a = (*OpenHttpChannel(server.url(), Fast()))->Predict(kImages);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition) << a.status();
  EXPECT_NE(a.status().message().find("never followed"), std::string::npos) << a.status();
  EXPECT_NE(a.status().message().find("169.254.169.254"), std::string::npos) << a.status();
  EXPECT_EQ(server.calls(), 1);
}

TEST(HttpChannelTest, TruncatedJsonIsRetriedThenDataLoss) {
  FlakyServer server([](int, httplib::Response& res) {
    res.set_content("{\"predictions\":[{\"probabilities\":[0.5,", "application/json");
  });
  auto a = (*OpenHttpChannel(server.url(), Fast()))->Predict(kImages);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(server.calls(), 3);
}

TEST(HttpChannelTest, NobodyListeningIsUnavailable) {
  // A port that was free a moment ago: bind, read it back, close.
  int port;
  {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = ntohs(addr.sin_port);
    ::close(fd);
  }
  HttpChannelOptions o = Fast();
  o.retries = 0;
  auto a = (*OpenHttpChannel(absl::StrCat("http://127.0.0.1:", port, "/v1/predict"), o))->Predict(kImages);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable) << a.status();
}

TEST(HttpChannelTest, RateLimitSpacesRequests) {
  FlakyServer server([](int, httplib::Response& res) { res.set_content(Rows("[0.5,0.5]", 2), "application/json"); });
  HttpChannelOptions o = Fast();
  o.max_requests_per_second = 20;
  auto ch = *OpenHttpChannel(server.url(), o);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ch->Predict(kImages).ok());
  // Four gaps of at least 50 ms.
  EXPECT_GE(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 0.19);
}

TEST(HttpChannelTest, MalformedUrlsAndOptionsAreRefused) {
  EXPECT_EQ(OpenHttpChannel("ftp://x/y").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenHttpChannel("localhost:80").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenHttpChannel("http://").status().code(), absl::StatusCode::kInvalidArgument);
  HttpChannelOptions o;
  o.retries = -1;
  EXPECT_EQ(OpenHttpChannel("http://127.0.0.1:1/v1/predict", o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OfflineChannelTest, RefusesUnknownIdsAndBadNumbers) {
  const std::string dir = TempDir() + "/offline";
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  at::Tensor img = torch::zeros({1, 4, 4});
  {
    std::ofstream m(dir + "/manifest.json");
    m << "{\"queries\":[{\"id\":\"q000000\",\"file\":\"q000000.png\",\"image_sha256\":\"abc\"}]}";
  }
  {
    std::ofstream a(dir + "/unknown.csv");
    a << "id,p0,p1\nq000099,0.5,0.5\n";
  }
  EXPECT_EQ(OpenOfflineChannel(dir, dir + "/unknown.csv").status().code(), absl::StatusCode::kInvalidArgument);
  {
    std::ofstream a(dir + "/bad.csv");
    a << "q000000,0.5,zero\n";
  }
  EXPECT_EQ(OpenOfflineChannel(dir, dir + "/bad.csv").status().code(), absl::StatusCode::kDataLoss);
  {
    std::ofstream a(dir + "/ok.csv");
    a << "q000000,0.5,0.5\n";
  }
  auto ch = OpenOfflineChannel(dir, dir + "/ok.csv");
  ASSERT_TRUE(ch.ok()) << ch.status();
  // The image is not the one the manifest names: no answer.
  EXPECT_EQ((*ch)->Predict(img.unsqueeze(0)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(OpenOfflineChannel(dir + "/missing", dir + "/ok.csv").status().code(), absl::StatusCode::kNotFound);
}

// Answers that depend on the image only; with `noisy`, every second request adds noise.
class ContentChannel final : public SuspectChannel {
 public:
  explicit ContentChannel(bool noisy) : noisy_(noisy) {}
  absl::StatusOr<ChannelAnswer> Predict(const at::Tensor& images) override {
    at::Tensor logits = images.flatten(1).narrow(1, 0, 10) * 5;
    if (noisy_ && (calls_ % 2 == 1)) logits = logits + torch::randn(logits.sizes(), at::make_generator<at::CPUGeneratorImpl>(calls_));
    ++calls_;
    return ChannelAnswer{EncodeResponse(torch::softmax(logits, 1)), 200, 1};
  }
  std::string Describe() const override { return "content"; }

 private:
  bool noisy_;
  int calls_ = 0;
};

at::Tensor Many(int n) { return torch::rand({n, 1, 4, 4}, at::make_generator<at::CPUGeneratorImpl>(9)); }

TEST(QueryClientTest, RepeatsAreExtraShuffledInAndConsistentForAnHonestSuspect) {
  ContentChannel honest(false);
  const std::string path = TempDir() + "/repeats.jsonl";
  std::remove(path.c_str());
  auto t = TranscriptWriter::Create(path);
  ASSERT_TRUE(t.ok());
  QueryClient client(honest, &*t, 10, 40, false, RepeatOptions{0.05, 0.01, 3});
  auto p = client.Ask(Many(200));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->size(0), 200);
  EXPECT_EQ(client.queries(), 200);   // repeats are not counted as queries
  EXPECT_EQ(client.repeats(), 10);    // 2 per request of 40
  EXPECT_EQ(client.repeat_disagreements(), 0);
  EXPECT_LT(client.max_repeat_difference(), 1e-6);
  // The answers are those of the images asked, in order, whatever was shuffled in.
  ContentChannel direct(false);
  auto want = ParseAnswers((*direct.Predict(Many(200))).response, 200, 10, false);
  EXPECT_TRUE(torch::allclose(*p, want->probabilities, 1e-6, 1e-6));
}

TEST(QueryClientTest, AnInconsistentSuspectIsCaughtAndTheReplayReproducesIt) {
  ContentChannel noisy(true);
  const std::string path = TempDir() + "/noisy.jsonl";
  std::remove(path.c_str());
  {
    auto t = TranscriptWriter::Create(path);
    QueryClient client(noisy, &*t, 10, 40, false, RepeatOptions{0.05, 0.01, 3});
    ASSERT_TRUE(client.Ask(Many(200)).ok());
    EXPECT_GT(client.repeat_disagreements(), 0);
    EXPECT_GT(client.max_repeat_difference(), 0.01);
  }
  auto replay = OpenReplayChannel(path);
  ASSERT_TRUE(replay.ok());
  ContentChannel again(true);
  QueryClient original(again, nullptr, 10, 40, false, RepeatOptions{0.05, 0.01, 3});
  QueryClient replayed(**replay, nullptr, 10, 40, false, RepeatOptions{0.05, 0.01, 3});
  auto a = original.Ask(Many(200));
  auto b = replayed.Ask(Many(200));
  ASSERT_TRUE(a.ok() && b.ok()) << b.status();
  EXPECT_TRUE(torch::allclose(*a, *b, 1e-5, 1e-6));
  EXPECT_EQ(replayed.repeat_disagreements(), original.repeat_disagreements());
  EXPECT_NEAR(replayed.max_repeat_difference(), original.max_repeat_difference(), 1e-5);
}

}  // namespace
}  // namespace move::verifier_internal
