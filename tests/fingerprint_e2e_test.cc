// UAP fingerprinting and label agreement end to end on real models: helper models made with
// the red-team attacks, the verifiers built (twice for determinism), signed into a bundle and
// read back, suspects examined through model channels and move_verify, transcripts replayed,
// tampering detected.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <google/protobuf/util/message_differencer.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "redteam/attacks.h"
#include "sdk/blackbox.h"
#include "sdk/bundle.h"
#include "sdk/dataset.h"
#include "sdk/embed.h"
#include "sdk/fingerprint.h"
#include "sdk/label_agreement.h"
#include "sdk/model.h"
#include "sdk/runtime.h"
#include "sdk/serving.h"
#include "sdk/train.h"

namespace move {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct World {
  Dataset train, substitute, test;
  ModelSpec spec;
  TrainOptions recipe;
  torch::jit::Module victim;
  FingerprintBuildInputs inputs;
  std::string dir;
};

torch::jit::Module Train(const ModelSpec& spec0, const Dataset& data, uint64_t seed, const TrainOptions& recipe) {
  ModelSpec spec = spec0;
  spec.seed = seed;
  torch::jit::Module m = *CreateModel(spec);
  TrainOptions o = recipe;
  o.seed = seed;
  EXPECT_TRUE(TrainModel(m, data, o).ok());
  return m;
}

World& GetWorld() {
  static World* w = [] {
    EXPECT_TRUE(SetNumThreads(2).ok());
    auto* w = new World;
    Dataset full = *LoadFashionMnist(kDefaultFashionMnistDir, Split::kTrain);
    Dataset test = *LoadFashionMnist(kDefaultFashionMnistDir, Split::kTest);
    w->train = ToRgb(*SampleSubset(full, 3000, 1));
    w->substitute = ToRgb(*SampleSubset(full, 2000, 99));
    w->test = ToRgb(*SampleSubset(test, 600, 2));
    w->spec = *ParseModelSpec("cnn");
    w->spec.in_channels = 3;
    w->spec.num_classes = 10;
    w->recipe.epochs = 2;
    w->recipe.batch_size = 64;
    w->recipe.show_progress = false;
    w->victim = Train(w->spec, w->train, 1, w->recipe);
    w->dir = ::testing::TempDir() + "/fingerprint_e2e";
    std::filesystem::remove_all(w->dir);
    std::filesystem::create_directories(w->dir);
    // Helper models: students of the victim made with the red-team attacks on the vendor's
    // data, independent models of the recipe.
    redteam::AttackInputs in;
    in.victim = &w->victim;
    in.student = w->spec;
    in.victim_data = &w->train;
    in.substitute = &w->train;
    auto attack = [&](const std::string& name, uint64_t seed) {
      TrainOptions r = w->recipe;
      r.seed = seed;
      absl::StatusOr<torch::jit::Module> m = redteam::RunAttack(name, in, r);
      EXPECT_TRUE(m.ok()) << m.status();
      return FingerprintModel{name, "cnn", *m};
    };
    FingerprintBuildInputs& fi = w->inputs;
    fi.piracy = {attack("label-query", 10), attack("logit-query", 11), attack("distill", 12)};
    fi.held_out_piracy = {attack("label-query", 13)};
    for (int i = 0; i < 3; ++i) fi.independent.push_back({"independent", "cnn", Train(w->spec, w->train, 20 + i, w->recipe)});
    for (int i = 0; i < 3; ++i) fi.calibration.push_back({"calibration", "cnn", Train(w->spec, w->train, 30 + i, w->recipe)});
    // The null population a court will ask about: a rival vendor (MOVE with another secret
    // style on the same data) and a model trained with appearance augmentation.
    EmbedDatasetOptions eo;
    eo.seed = 41;
    eo.show_progress = false;
    absl::StatusOr<EmbedResult> rival = EmbedDataset(w->train, *DecoyStyleImage(41), eo);
    EXPECT_TRUE(rival.ok()) << rival.status();
    fi.calibration.push_back({"rival vendor", "cnn", Train(w->spec, rival->dataset, 34, w->recipe), "rival-vendor calibration"});
    AppearanceAugmentOptions ao;
    ao.seed = 42;
    absl::StatusOr<Dataset> augmented = AugmentAppearance(w->train, ao);
    EXPECT_TRUE(augmented.ok()) << augmented.status();
    fi.calibration.push_back({"appearance-augmented", "cnn", Train(w->spec, *augmented, 35, w->recipe),
                              "appearance-augmented calibration"});
    fi.victim = &w->victim;
    fi.point_pool = &w->train;
    fi.verification_pool = &w->test;
    return w;
  }();
  return *w;
}

FingerprintBuildOptions SmallOptions() {
  FingerprintBuildOptions o;
  o.uaps = 2;
  o.uap_images = 800;
  o.uap_epochs = 3;
  o.train_fingerprints = 20;
  o.verification_fingerprints = 12;
  o.encoder_steps = 150;
  o.show_progress = false;
  return o;
}

const FingerprintVerifier& Verifier() {
  static FingerprintVerifier* v = [] {
    auto built = BuildFingerprintVerifier(GetWorld().inputs, SmallOptions());
    EXPECT_TRUE(built.ok()) << built.status();
    return new FingerprintVerifier(*built);
  }();
  return *v;
}

TEST(FingerprintBuildTest, RecordsEverythingAndIsDeterministic) {
  const FingerprintVerifier& v = Verifier();
  EXPECT_EQ(v.method(), "uap-fingerprint-supcon-v1");
  ASSERT_EQ(v.uap_fooling_rate_size(), 2);
  for (double f : v.uap_fooling_rate()) EXPECT_GE(f, 0.5) << "UAP too weak";
  EXPECT_EQ(v.points().shape(0), 12);
  EXPECT_EQ(v.points().shape(1), 10);
  EXPECT_EQ(v.benign_scores_size(), 5);           // reference + 4 calibration models
  EXPECT_EQ(v.benign_scores(3).kind(), "rival-vendor calibration");
  EXPECT_EQ(v.benign_scores(4).kind(), "appearance-augmented calibration");
  EXPECT_EQ(v.calibration_log10_p_size(), 4);
  EXPECT_EQ(v.models_size(), 3 + 3 + 1 + 5);      // piracy, independent, held-out, reference + calibration
  // With the null population complete, soundness rests on the calibration models alone.
  if (!v.sound()) {
    EXPECT_EQ(v.unsound_reason().find("null population"), std::string::npos) << v.unsound_reason();
    EXPECT_NE(v.unsound_reason().find("calibration models flagged"), std::string::npos) << v.unsound_reason();
  }
  EXPECT_EQ(v.num_classes(), 10);
  EXPECT_FALSE(v.sha256().empty());
  EXPECT_LT(v.victim_log10_p(), -2) << "the victim must be far more similar to itself than the reference";
  // Same inputs and seed: the same verifier, byte for byte.
  auto again = BuildFingerprintVerifier(GetWorld().inputs, SmallOptions());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*again, v)) << "a second build differs";
}

TEST(FingerprintBuildTest, RejectsMissingInputs) {
  FingerprintBuildInputs in = GetWorld().inputs;
  in.calibration.resize(2);
  EXPECT_EQ(BuildFingerprintVerifier(in, SmallOptions()).status().code(), absl::StatusCode::kInvalidArgument);
  in = GetWorld().inputs;
  in.calibration[1].kind = "rival";  // not a kind of the null population
  absl::Status bad_kind = BuildFingerprintVerifier(in, SmallOptions()).status();
  EXPECT_EQ(bad_kind.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_kind.message().find("calibration[1]"), std::string::npos) << bad_kind;
  in = GetWorld().inputs;
  in.victim = nullptr;
  EXPECT_EQ(BuildFingerprintVerifier(in, SmallOptions()).status().code(), absl::StatusCode::kInvalidArgument);
  FingerprintBuildOptions o = SmallOptions();
  o.points_per_fingerprint = 0;
  EXPECT_EQ(BuildFingerprintVerifier(GetWorld().inputs, o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FingerprintBundleTest, RoundTripVerifyReplayAndTamper) {
  World& w = GetWorld();
  BundleContents contents;
  contents.set_format("move.bundle.v1");
  *contents.mutable_fingerprint() = Verifier();
  auto key = GenerateSigningKey();
  ASSERT_TRUE(key.ok());
  const std::string path = w.dir + "/fp.move";
  ASSERT_TRUE(WriteBundle(contents, *key, path).ok());
  auto bundle = ReadBundle(path, key->public_key);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(bundle->contents.fingerprint(), Verifier()));
  EXPECT_NE(DescribeBundle(*bundle).find("fingerprint:       uap-fingerprint-supcon-v1"), std::string::npos);

  // The victim through a model channel: similarity 1 on every fingerprint.
  const std::string victim_path = w.dir + "/victim.pt";
  ASSERT_TRUE(SaveModel(w.victim, victim_path).ok());
  auto channel = OpenModelChannel(victim_path);
  ASSERT_TRUE(channel.ok());
  FingerprintVerifyOptions o;
  o.fingerprints = 10;
  o.show_progress = false;
  o.transcript_path = w.dir + "/victim.fp.jsonl";
  auto r = VerifyFingerprint(*bundle, **channel, o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mode(), "fingerprint");
  EXPECT_EQ(r->m(), 10);
  EXPECT_EQ(r->queries(), 10 * 2 * 10);
  EXPECT_NEAR(r->suspect_mean_score(), 1.0, 1e-3);
  // The victim answers as it did when the bundle was built, on clean and perturbed points.
  EXPECT_DOUBLE_EQ(r->fingerprint_clean_agreement(), 1.0);
  EXPECT_DOUBLE_EQ(r->fingerprint_perturbed_agreement(), 1.0);
  EXPECT_GT(r->reference_clean_agreement(), 0.0);
  EXPECT_LT(r->reference_perturbed_agreement(), 1.0);
  EXPECT_GT(r->delta_mu(), 0);
  EXPECT_LT(r->log10_p_value(), -2);
  EXPECT_TRUE(r->model_level_tested());
  EXPECT_EQ(r->model_level_benign_models(), 5);
  // Replaying the transcript gives the same figures without the model.
  auto replay = OpenReplayChannel(o.transcript_path);
  ASSERT_TRUE(replay.ok());
  FingerprintVerifyOptions ro = o;
  ro.transcript_path = "";
  auto rr = VerifyFingerprint(*bundle, **replay, ro);
  ASSERT_TRUE(rr.ok()) << rr.status();
  EXPECT_EQ(rr->log10_p_value(), r->log10_p_value());
  EXPECT_EQ(rr->model_level_log10_p_value(), r->model_level_log10_p_value());
  // An independent calibration-like model of another seed: not flagged.
  const std::string indep_path = w.dir + "/indep.pt";
  ASSERT_TRUE(SaveModel(Train(w.spec, w.train, 77, w.recipe), indep_path).ok());
  auto ic = OpenModelChannel(indep_path);
  ASSERT_TRUE(ic.ok());
  o.transcript_path = "";
  auto ir = VerifyFingerprint(*bundle, **ic, o);
  ASSERT_TRUE(ir.ok()) << ir.status();
  EXPECT_LT(ir->suspect_mean_score(), r->suspect_mean_score());
  EXPECT_LT(ir->fingerprint_perturbed_agreement(), 1.0);
  EXPECT_GE(ir->fingerprint_perturbed_agreement(), 0.0);
  // Sequential mode stops within the cap and says how many queries it used.
  o.sequential = true;
  o.fingerprints = 0;
  o.max_queries = 200;
  auto sq = VerifyFingerprint(*bundle, **channel, o);
  ASSERT_TRUE(sq.ok()) << sq.status();
  EXPECT_LE(sq->queries(), 200);
  // Fewer than 2 fingerprints' queries, too many fingerprints: clear errors.
  o.max_queries = 30;
  EXPECT_EQ(VerifyFingerprint(*bundle, **channel, o).status().code(), absl::StatusCode::kResourceExhausted);
  o.sequential = false;
  o.max_queries = 0;
  o.fingerprints = 13;
  EXPECT_EQ(VerifyFingerprint(*bundle, **channel, o).status().code(), absl::StatusCode::kInvalidArgument);
  // The fingerprint data are committed to by their hash (besides the signature).
  OpenedBundle tampered = *bundle;
  auto uaps = FromTensorProto(tampered.contents.fingerprint().uaps());
  ASSERT_TRUE(uaps.ok());
  *tampered.contents.mutable_fingerprint()->mutable_uaps() = ToTensorProto(*uaps * 0.5);
  o.fingerprints = 10;
  EXPECT_EQ(VerifyFingerprint(tampered, **channel, o).status().code(), absl::StatusCode::kDataLoss);
  // The CLI: move_verify --mode=fingerprint (the line alone) on the victim file, then its
  // replay; a bundle without MOVE verifiers in white-box mode fails with one line.
  {
    const std::string pub = w.dir + "/fp.key";
    ASSERT_TRUE(SaveSigningKey(*key, pub).ok());
    const std::string out = w.dir + "/cli.out", err = w.dir + "/cli.err", report = w.dir + "/cli.json";
    auto run = [&](const std::string& args) {
      const int status = std::system(
          absl::StrCat("cli/move_verify --bundle=", path, " --trusted_key=", pub, ".pub --threads=2 ", args, " > ", out,
                       " 2> ", err).c_str());
      return WEXITSTATUS(status);
    };
    ASSERT_EQ(run(absl::StrCat("--mode=fingerprint --suspect=", victim_path, " --fingerprints=10 --report=", report)), 0);
    std::string text = Slurp(out);
    EXPECT_NE(text.find("UAP fingerprint verification of sandbox:"), std::string::npos) << text;
    EXPECT_NE(text.find("queries:        200"), std::string::npos) << text;
    EXPECT_NE(text.find("agreement:      suspect answers as the victim did on 100.0% of the points and 100.0% of the "
                        "UAP-perturbed points"),
              std::string::npos)
        << text;
    const std::string json = Slurp(report);
    EXPECT_NE(json.find("\"mode\": \"fingerprint\""), std::string::npos);
    EXPECT_NE(json.find("\"fingerprint_perturbed_agreement\": 1"), std::string::npos) << json.substr(0, 2000);
    ASSERT_EQ(run(absl::StrCat("--mode=fingerprint --replay=", report, ".transcript.jsonl --fingerprints=10")), 0);
    EXPECT_NE(Slurp(out).find(absl::StrFormat("(log10 %.2f)", r->log10_p_value())), std::string::npos) << Slurp(out);
    EXPECT_EQ(run(absl::StrCat("--suspect=", victim_path)), 1);
    EXPECT_NE(Slurp(err).find("move_verify: "), std::string::npos);
    EXPECT_EQ(run("--mode=fingerprint"), 1);
    EXPECT_NE(Slurp(err).find("fingerprint mode needs one of --suspect, --endpoint or --replay"), std::string::npos);
  }
  // A bundle without a fingerprint verifier.
  OpenedBundle none = *bundle;
  none.contents.clear_fingerprint();
  EXPECT_EQ(VerifyFingerprint(none, **channel, o).status().code(), absl::StatusCode::kFailedPrecondition);
}

// Label agreement on the same world: the victim's mistakes on the held-out test images, the
// eight benign models (the recipe, a rival vendor, appearance augmentation) as the null population, a label-query student of the
// victim as the held-out piracy model.
TEST(LabelAgreementBundleTest, StudentsRepeatTheVictimsMistakesIndependentsDoNot) {
  World& w = GetWorld();
  LabelAgreementBuildInputs in;
  in.victim = &w.victim;
  in.pool = &w.test;
  for (const FingerprintModel& m : w.inputs.calibration) in.benign.push_back(m);
  for (const FingerprintModel& m : w.inputs.independent) in.benign.push_back(m);
  in.held_out_piracy = w.inputs.held_out_piracy;
  LabelAgreementBuildOptions bo;
  bo.covers = 50;
  bo.show_progress = false;
  absl::StatusOr<LabelAgreementVerifier> v = BuildLabelAgreementVerifier(in, bo);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->benign_scores_size(), 8);
  EXPECT_GT(v->victim_error_rate(), 0.02);
  const int64_t errors = (*FromTensorProto(v->error_images())).size(0);
  EXPECT_EQ(errors, std::lround(v->victim_error_rate() * v->pool_images()));  // fewer than 800: all of them

  BundleContents contents;
  contents.set_format("move.bundle.v1");
  *contents.mutable_label_agreement() = *v;
  auto key = GenerateSigningKey();
  ASSERT_TRUE(key.ok());
  const std::string path = w.dir + "/la.move";
  ASSERT_TRUE(WriteBundle(contents, *key, path).ok());
  auto bundle = ReadBundle(path, key->public_key);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_NE(DescribeBundle(*bundle).find("label agreement:   label-agreement-v2"), std::string::npos)
      << DescribeBundle(*bundle);

  auto verify = [&](const torch::jit::Module& m, const std::string& name) {
    const std::string file = w.dir + "/la_" + name + ".pt";
    EXPECT_TRUE(SaveModel(m, file).ok());
    auto ch = OpenModelChannel(file);
    EXPECT_TRUE(ch.ok());
    LabelAgreementVerifyOptions o;
    o.show_progress = false;
    auto r = VerifyLabelAgreement(*bundle, **ch, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : VerificationReport();
  };
  const VerificationReport victim = verify(w.victim, "victim");
  EXPECT_NEAR(victim.suspect_mean_score(), 1.0, 1e-9);
  EXPECT_EQ(victim.verdict(), "stolen");
  EXPECT_EQ(victim.queries(), errors + 50);
  // A label-query student (queries on substitute data) repeats more of the victim's mistakes
  // than independent models of the recipe do.
  redteam::AttackInputs ai;
  ai.victim = &w.victim;
  ai.student = w.spec;
  ai.victim_data = &w.train;
  ai.substitute = &w.substitute;
  TrainOptions r = w.recipe;
  r.seed = 41;
  absl::StatusOr<torch::jit::Module> student = redteam::RunAttack("label-query", ai, r);
  ASSERT_TRUE(student.ok()) << student.status();
  const VerificationReport s = verify(*student, "student");
  const VerificationReport indep = verify(Train(w.spec, w.train, 78, w.recipe), "independent");
  EXPECT_GT(s.suspect_mean_score(), indep.suspect_mean_score());
  EXPECT_FALSE(indep.stolen()) << indep.verdict();
  for (double m : s.benign_mean_scores()) EXPECT_LT(m, 1.0);
  // A label-only API (one-hot answers, which black-box MOVE refuses) over HTTP: the same
  // figures as the student's full probability vectors give.
  {
    ServeOptions so;
    so.output = "labels";
    absl::StatusOr<std::unique_ptr<PredictionServer>> server = PredictionServer::Start(*student, so);
    ASSERT_TRUE(server.ok()) << server.status();
    absl::StatusOr<std::unique_ptr<SuspectChannel>> http = OpenHttpChannel((*server)->url());
    ASSERT_TRUE(http.ok()) << http.status();
    LabelAgreementVerifyOptions lo;
    lo.show_progress = false;
    absl::StatusOr<VerificationReport> lr = VerifyLabelAgreement(*bundle, **http, lo);
    (*server)->Stop();
    ASSERT_TRUE(lr.ok()) << lr.status();
    EXPECT_NEAR(lr->suspect_mean_score(), s.suspect_mean_score(), 2.0 / errors);
    EXPECT_EQ(lr->queries(), s.queries());
    EXPECT_FALSE(lr->answers_inconsistent());
  }

  // move_verify runs the line alone on a sandboxed file, then replays its transcript.
  const std::string pub = w.dir + "/la.key";
  ASSERT_TRUE(SaveSigningKey(*key, pub).ok());
  const std::string out = w.dir + "/la_cli.out", err = w.dir + "/la_cli.err", report = w.dir + "/la_cli.json";
  auto run = [&](const std::string& args) {
    const int status = std::system(absl::StrCat("cli/move_verify --bundle=", path, " --trusted_key=", pub,
                                                ".pub --threads=2 ", args, " > ", out, " 2> ", err)
                                       .c_str());
    return WEXITSTATUS(status);
  };
  ASSERT_EQ(run(absl::StrCat("--mode=label-agreement --suspect=", w.dir, "/la_victim.pt --report=", report)), 0) << Slurp(err);
  const std::string text = Slurp(out);
  EXPECT_NE(text.find("Label agreement on the victim's mistakes, sandbox:"), std::string::npos) << text;
  EXPECT_NE(text.find("the suspect gives the victim's wrong label on 100.0% of them"), std::string::npos) << text;
  EXPECT_NE(text.find(absl::StrCat("queries:        ", errors + 50)), std::string::npos) << text;
  EXPECT_NE(Slurp(report).find("\"mode\": \"label-agreement\""), std::string::npos);
  ASSERT_EQ(run(absl::StrCat("--mode=label-agreement --replay=", report, ".transcript.jsonl")), 0) << Slurp(err);
  EXPECT_NE(Slurp(out).find(absl::StrFormat("(log10 %.2f)", victim.log10_p_value())), std::string::npos) << Slurp(out);
  EXPECT_EQ(run("--mode=label-agreement"), 1);
  EXPECT_NE(Slurp(err).find("label-agreement mode needs one of --suspect, --endpoint or --replay"), std::string::npos)
      << Slurp(err);
  EXPECT_EQ(run(absl::StrCat("--mode=label-agreement --replay=", w.dir, "/no_such.jsonl")), 1);
  EXPECT_NE(Slurp(err).find("no_such.jsonl does not exist"), std::string::npos) << Slurp(err);
  EXPECT_EQ(run(absl::StrCat("--mode=fingerprint --suspect=", w.dir, "/la_victim.pt")), 1);  // no fingerprint here
  EXPECT_NE(Slurp(err).find("no fingerprint verifier"), std::string::npos) << Slurp(err);
}

}  // namespace
}  // namespace move
