// The vendor's side of MOVE, end to end (the README's main job).
//
//   bazel run //examples:vendor -- --out_dir=/tmp/move_vendor
//
// Loads Fashion-MNIST (Debian's dataset-fashion-mnist), watermarks 10% of the training set
// with the shipped style image, trains a victim on the watermarked set and a benign model on
// the clean set with the same recipe, saves both as TorchScript, and reports their clean test
// accuracy and their accuracy on styled test images (the external feature), plus the
// embedding's speed and style figures. Writes, atomically, into --out_dir:
//   victim.pt, benign.pt        TorchScript models (torch.jit.load-able from Python)
//   watermark_record.json       the owner's secret record of the embedding
//   contact_sheet.png           originals (odd rows) over their styled versions (even rows)
//   report.json                 everything printed, machine-readable
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/files.h"
#include "core/status_macros.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/image.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/train.h"
#include "sdk/version.h"

ABSL_FLAG(std::string, data_dir, move::kDefaultFashionMnistDir,
          "Fashion-MNIST directory (gzip IDX files), or CIFAR-10 binary batches with --dataset=cifar10.");
ABSL_FLAG(std::string, dataset, "fashion-mnist", "fashion-mnist or cifar10.");
ABSL_FLAG(std::string, style, "testdata/style_leopard.png", "Secret style image (PNG/JPEG).");
ABSL_FLAG(double, gamma, 0.1, "Fraction of training samples to style, in (0, 1].");
ABSL_FLAG(double, style_strength, 1.0, "Content/style balance (> 0; AdaIN: alpha in (0, 1]).");
ABSL_FLAG(std::string, engine, "texture", "Style engine: texture (built-in) or adain.");
ABSL_FLAG(std::string, adain_encoder, "", "AdaIN encoder TorchScript file (with --engine=adain).");
ABSL_FLAG(std::string, adain_decoder, "", "AdaIN decoder TorchScript file (with --engine=adain).");
ABSL_FLAG(int64_t, fit_steps, 300, "Texture engine: optimisation steps when fitting the stylizer.");
ABSL_FLAG(uint64_t, seed, 0, "Seed of the embedding (victim and benign use seed+1, seed+2).");
ABSL_FLAG(std::string, arch, "cnn", "Model architecture: cnn, cnn-wN, resnet18, wrn-D-K, vgg11.");
ABSL_FLAG(int, epochs, 5, "Training epochs for each model.");
ABSL_FLAG(int, train_size, 0, "Use this many training samples (seeded subset); 0 = all.");
ABSL_FLAG(int, batch_size, 128, "Training batch size.");
ABSL_FLAG(double, learning_rate, 0.05, "Peak SGD learning rate (cosine schedule).");
ABSL_FLAG(int, styled_test_size, 1000, "Test images styled to measure the external feature.");
ABSL_FLAG(int, threads, 0, "LibTorch CPU threads; 0 = all cores.");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N.");
ABSL_FLAG(std::string, out_dir, "out/vendor", "Output directory (created if missing).");

namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

Value Num(double v) { Value x; x.set_number_value(v); return x; }
Value Str(const std::string& v) { Value x; x.set_string_value(v); return x; }

// `bazel run` starts the program in its runfiles tree; relative paths the user typed are
// meant relative to where they ran the command (BUILD_WORKING_DIRECTORY).
std::string UserPath(const std::string& path, bool must_exist) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (cwd == nullptr || path.empty() || path[0] == '/') return path;
  const std::string candidate = absl::StrCat(cwd, "/", path);
  if (!must_exist || std::filesystem::exists(candidate)) return candidate;
  return path;
}

absl::StatusOr<move::Dataset> Load(move::Split split) {
  const std::string which = absl::GetFlag(FLAGS_dataset);
  if (which == "fashion-mnist") return move::LoadFashionMnist(absl::GetFlag(FLAGS_data_dir), split);
  if (which == "cifar10") return move::LoadCifar10(absl::GetFlag(FLAGS_data_dir), split);
  return absl::InvalidArgumentError(absl::StrCat("--dataset: expected fashion-mnist or cifar10, got '", which, "'"));
}

absl::Status Run() {
  MOVE_RETURN_IF_ERROR(move::SetNumThreads(absl::GetFlag(FLAGS_threads)));
  MOVE_RETURN_IF_ERROR(move::ResolveDevice(absl::GetFlag(FLAGS_device)).status());
  const std::string out = UserPath(absl::GetFlag(FLAGS_out_dir), /*must_exist=*/false);
  MOVE_RETURN_IF_ERROR(move::core::MakeDirs(out));
  // Flags are checked before any work starts.
  if (absl::GetFlag(FLAGS_epochs) < 1) return absl::InvalidArgumentError("--epochs: must be >= 1");
  MOVE_ASSIGN_OR_RETURN(move::ModelSpec spec, move::ParseModelSpec(absl::GetFlag(FLAGS_arch)));
  std::printf("MOVE SDK %s vendor example | %s\n", move::kSdkVersion, move::RuntimeDescription().c_str());

  MOVE_ASSIGN_OR_RETURN(move::Dataset train, Load(move::Split::kTrain));
  MOVE_ASSIGN_OR_RETURN(move::Dataset test, Load(move::Split::kTest));
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  if (absl::GetFlag(FLAGS_train_size) < 0) return absl::InvalidArgumentError("--train_size: must be >= 0");
  if (absl::GetFlag(FLAGS_train_size) > 0) {
    MOVE_ASSIGN_OR_RETURN(train, move::SampleSubset(train, absl::GetFlag(FLAGS_train_size), seed));
  }
  std::printf("data: %s, %lld training / %lld test images of %lldx%lldx%lld\n", train.name.c_str(),
              static_cast<long long>(train.size()), static_cast<long long>(test.size()),
              static_cast<long long>(train.images.size(1)), static_cast<long long>(train.images.size(2)),
              static_cast<long long>(train.images.size(3)));

  // 1. Embed the watermark.
  auto style = move::LoadImage(UserPath(absl::GetFlag(FLAGS_style), /*must_exist=*/true));
  if (!style.ok()) return absl::Status(style.status().code(), absl::StrCat("--style: ", style.status().message()));
  move::EmbedDatasetOptions eo;
  eo.gamma = absl::GetFlag(FLAGS_gamma);
  eo.seed = seed;
  eo.style_strength = absl::GetFlag(FLAGS_style_strength);
  eo.device = absl::GetFlag(FLAGS_device);
  eo.texture.fit_steps = absl::GetFlag(FLAGS_fit_steps);
  const std::string engine = absl::GetFlag(FLAGS_engine);
  if (engine == "adain") {
    eo.engine = move::StyleEngine::kAdaIn;
    eo.adain.encoder_path = absl::GetFlag(FLAGS_adain_encoder);
    eo.adain.decoder_path = absl::GetFlag(FLAGS_adain_decoder);
  } else if (engine != "texture") {
    return absl::InvalidArgumentError(absl::StrCat("--engine: expected texture or adain, got '", engine, "'"));
  }
  MOVE_ASSIGN_OR_RETURN(move::EmbedResult wm, move::EmbedDataset(train, *style, eo));
  const auto& rec = wm.record;
  const double embed_seconds = rec.seconds_fit() + rec.seconds_apply();
  std::printf("embedded: %d images styled (gamma %.3g) in %.1f s (fit %.1f s + apply %.1f s, %.0f images/s)\n",
              rec.picked_indices_size(), rec.gamma(), embed_seconds, rec.seconds_fit(), rec.seconds_apply(),
              rec.picked_indices_size() / embed_seconds);
  std::printf("style distance to the style image: %.3f before, %.3f after (%.1fx closer)\n",
              rec.style_distance_before(), rec.style_distance_after(),
              rec.style_distance_before() / rec.style_distance_after());
  MOVE_RETURN_IF_ERROR(move::SaveWatermarkRecord(rec, out + "/watermark_record.json"));
  {
    at::Tensor idx = wm.picked_indices.narrow(0, 0, std::min<int64_t>(16, wm.picked_indices.size(0)));
    MOVE_RETURN_IF_ERROR(move::SaveContactSheet(out + "/contact_sheet.png",
                                                move::ToRgb(train).images.index_select(0, idx),
                                                wm.dataset.images.index_select(0, idx), 8, 3));
  }

  // 2. Train victim (watermarked) and benign (clean) with the same recipe.
  spec.in_channels = 3;
  spec.num_classes = train.num_classes;
  move::TrainOptions to;
  to.epochs = absl::GetFlag(FLAGS_epochs);
  to.batch_size = absl::GetFlag(FLAGS_batch_size);
  to.learning_rate = absl::GetFlag(FLAGS_learning_rate);
  to.device = absl::GetFlag(FLAGS_device);
  move::Dataset clean = move::ToRgb(train);
  move::Dataset test_rgb = move::ToRgb(test);
  MOVE_ASSIGN_OR_RETURN(move::Dataset styled_test,
                        move::SampleSubset(test_rgb, std::min<int64_t>(absl::GetFlag(FLAGS_styled_test_size), test.size()), seed + 3));
  MOVE_ASSIGN_OR_RETURN(styled_test.images, wm.StyleImages(styled_test.images));

  Struct report;
  auto& fields = *report.mutable_fields();
  fields["sdk_version"] = Str(move::kSdkVersion);
  fields["runtime"] = Str(move::RuntimeDescription());
  fields["dataset"] = Str(train.name);
  fields["train_size"] = Num(train.size());
  fields["architecture"] = Str(move::ModelSpecName(spec));
  fields["epochs"] = Num(to.epochs);
  fields["seed"] = Num(seed);
  fields["styled_images"] = Num(rec.picked_indices_size());
  fields["embed_seconds"] = Num(embed_seconds);
  fields["embed_images_per_second"] = Num(rec.picked_indices_size() / embed_seconds);
  fields["style_distance_before"] = Num(rec.style_distance_before());
  fields["style_distance_after"] = Num(rec.style_distance_after());

  struct Role { std::string name; const move::Dataset* data; uint64_t seed; };
  for (const Role& role : {Role{"victim", &wm.dataset, seed + 1}, Role{"benign", &clean, seed + 2}}) {
    spec.seed = role.seed;
    to.seed = role.seed;
    to.label = absl::StrCat("train ", role.name);
    MOVE_ASSIGN_OR_RETURN(torch::jit::Module model, move::CreateModel(spec));
    MOVE_ASSIGN_OR_RETURN(move::TrainReport tr, move::TrainModel(model, *role.data, to));
    MOVE_ASSIGN_OR_RETURN(move::EvalResult clean_eval, move::Evaluate(model, test_rgb));
    MOVE_ASSIGN_OR_RETURN(move::EvalResult styled_eval, move::Evaluate(model, styled_test));
    model.to(torch::kCPU);
    MOVE_RETURN_IF_ERROR(move::SaveModel(model, absl::StrCat(out, "/", role.name, ".pt")));
    std::printf("%s: clean test accuracy %.4f, styled test accuracy %.4f (trained %.0f s)\n", role.name.c_str(),
                clean_eval.accuracy, styled_eval.accuracy, tr.seconds);
    Struct r;
    (*r.mutable_fields())["clean_test_accuracy"] = Num(clean_eval.accuracy);
    (*r.mutable_fields())["styled_test_accuracy"] = Num(styled_eval.accuracy);
    (*r.mutable_fields())["train_seconds"] = Num(tr.seconds);
    (*r.mutable_fields())["model_file"] = Str(absl::StrCat(out, "/", role.name, ".pt"));
    Value v;
    *v.mutable_struct_value() = r;
    fields[role.name] = v;
  }
  const double gap = fields["benign"].struct_value().fields().at("clean_test_accuracy").number_value() -
                     fields["victim"].struct_value().fields().at("clean_test_accuracy").number_value();
  fields["clean_accuracy_cost_points"] = Num(100 * gap);
  std::printf("cost of the watermark on clean accuracy: %+.2f points (benign - victim)\n", 100 * gap);

  std::string json;
  google::protobuf::util::JsonPrintOptions jo;
  jo.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(report, &json, jo);
  MOVE_RETURN_IF_ERROR(move::core::WriteFileAtomically(out + "/report.json", json));
  std::printf("wrote %s/{victim.pt, benign.pt, watermark_record.json, contact_sheet.png, report.json}\n", out.c_str());
  std::printf("%s", json.c_str());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Watermarks a training set with MOVE and trains victim and benign models.");
  absl::ParseCommandLine(argc, argv);
  absl::Status s = Run();
  if (!s.ok()) {
    std::fprintf(stderr, "vendor: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
