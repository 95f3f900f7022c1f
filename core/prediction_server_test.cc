// The serving example's endpoint refuses hostile requests with a 4xx and a one-line reason,
// never a stack trace or NaN probabilities.
#include <string>

#include <gtest/gtest.h>
#include <httplib.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "sdk/model.h"
#include "sdk/serving.h"

namespace move {
namespace {

TEST(PredictionServerTest, RefusesOversizedShapesAndOutOfRangePixels) {
  auto model = CreateModel(ModelSpec{});
  ASSERT_TRUE(model.ok());
  auto server = PredictionServer::Start(*model, {});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string url = (*server)->url();
  const std::string origin = url.substr(0, url.find('/', 7));
  httplib::Client client(origin);
  auto huge = client.Post("/v1/predict", R"({"instances":[{"shape":[100000,100000,100000],"values":[0.5]}]})",
                          "application/json");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);
  EXPECT_NE(huge->body.find("exceeds"), std::string::npos) << huge->body;
  for (const auto& [name, value] : huge->headers) EXPECT_LT(value.size(), 200u) << name;
  std::string values;
  for (int i = 0; i < 3 * 8 * 8; ++i) absl::StrAppend(&values, i ? "," : "", i == 5 ? "1e38" : "0.5");
  auto bright = client.Post("/v1/predict", absl::StrCat(R"({"instances":[{"shape":[3,8,8],"values":[)", values, "]}]}"),
                            "application/json");
  ASSERT_TRUE(bright);
  EXPECT_EQ(bright->status, 400);
  EXPECT_NE(bright->body.find("outside [0, 1]"), std::string::npos) << bright->body;
}

}  // namespace
}  // namespace move
