// UAP fingerprinting: the pieces (verifier/fingerprint.h) and the public API
// (sdk/fingerprint.h).
#include "verifier/fingerprint.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <optional>

#include <ATen/CPUGeneratorImpl.h>
#include <google/protobuf/util/json_util.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/proto_json.h"
#include "core/status_macros.h"
#include "core/torch_errors.h"
#include "sdk/fingerprint.h"
#include "sdk/model.h"
#include "verifier/blackbox_features.h"
#include "verifier/channels.h"
#include "verifier/ownership_internal.h"
#include "verifier/sequential.h"
#include "verifier/significance.h"

namespace move {
namespace verifier_internal {

namespace {

at::Generator Gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

at::Tensor Perm(int64_t n, uint64_t seed) {
  return torch::randperm(n, Gen(seed), torch::TensorOptions().dtype(torch::kInt64));
}

}  // namespace

absl::StatusOr<at::Tensor> ComputeUap(torch::jit::Module& model, const at::Tensor& images, const UapOptions& o) {
  if (images.dim() != 4 || images.size(0) < 1) return absl::InvalidArgumentError("UAP images: need N x C x H x W, N >= 1");
  if (!(o.epsilon > 0 && o.epsilon <= 1)) return absl::InvalidArgumentError("UAP epsilon: must be in (0, 1]");
  if (o.epochs < 1 || o.batch < 1 || !(o.step > 0)) {
    return absl::InvalidArgumentError("UAP: epochs and batch must be >= 1, step > 0");
  }
  return core::GuardTorch("computing a UAP", [&]() -> absl::StatusOr<at::Tensor> {
    const bool was_training = model.is_training();
    model.eval();
    const at::Tensor x = Quantize8Bit(images.to(torch::kFloat32));
    at::Tensor labels;
    {
      torch::NoGradGuard ng;
      MOVE_ASSIGN_OR_RETURN(at::Tensor p, PredictProbabilities(model, x));
      labels = p.argmax(1);
    }
    at::Tensor v = (torch::rand({x.size(1), x.size(2), x.size(3)}, Gen(o.seed * 31 + 7)) * 2 - 1) * o.epsilon;
    for (int e = 0; e < o.epochs; ++e) {
      const at::Tensor order = Perm(x.size(0), o.seed * 1009 + e);
      for (int64_t s = 0; s < x.size(0); s += o.batch) {
        const at::Tensor idx = order.narrow(0, s, std::min(o.batch, x.size(0) - s));
        at::Tensor delta = v.clone().requires_grad_(true);
        at::Tensor out = model.forward({(x.index_select(0, idx) + delta).clamp(0, 1)}).toTensor();
        at::Tensor loss = torch::nn::functional::cross_entropy(out, labels.index_select(0, idx));
        at::Tensor g = torch::autograd::grad({loss}, {delta})[0];
        v = (v + o.step * g.sign()).clamp(-o.epsilon, o.epsilon).detach();
      }
    }
    model.train(was_training);
    return v;
  });
}

absl::StatusOr<double> FoolingRate(torch::jit::Module& model, const at::Tensor& images, const at::Tensor& uap) {
  if (images.dim() != 4 || uap.dim() != 3 || images.size(1) != uap.size(0) || images.size(2) != uap.size(1) ||
      images.size(3) != uap.size(2) || images.size(0) < 1) {
    return absl::InvalidArgumentError("fooling rate: images N x C x H x W and a C x H x W perturbation");
  }
  const at::Tensor x = Quantize8Bit(images);
  MOVE_ASSIGN_OR_RETURN(at::Tensor p0, PredictProbabilities(model, x));
  MOVE_ASSIGN_OR_RETURN(at::Tensor p1, PredictProbabilities(model, Quantize8Bit((x + uap).clamp(0, 1))));
  return p0.argmax(1).ne(p1.argmax(1)).to(torch::kFloat64).mean().item<double>();
}

absl::StatusOr<at::Tensor> KMeans(const at::Tensor& x0, int k, int iterations, uint64_t seed) {
  if (x0.dim() != 2) return absl::InvalidArgumentError("k-means: need N x D rows");
  const int64_t n = x0.size(0);
  if (k < 1 || k > n) return absl::InvalidArgumentError(absl::StrCat("k-means: k = ", k, " must be in [1, ", n, "]"));
  const at::Tensor x = x0.to(torch::kFloat64);
  at::Generator gen = Gen(seed * 7 + 3);
  // k-means++: the first centre uniformly, the others with probability proportional to D^2.
  std::vector<int64_t> chosen = {torch::randint(n, {1}, gen, torch::TensorOptions().dtype(torch::kInt64)).item<int64_t>()};
  at::Tensor d2 = (x - x[chosen[0]]).pow(2).sum(1);
  while (static_cast<int>(chosen.size()) < k) {
    const double total = d2.sum().item<double>();
    int64_t next;
    if (total <= 0) {
      next = chosen.size();  // all points coincide with centres: any unused row
    } else {
      const double u = torch::rand({1}, gen, torch::TensorOptions().dtype(torch::kFloat64)).item<double>() * total;
      const at::Tensor cum = d2.cumsum(0);
      next = std::min<int64_t>(n - 1, (cum < u).sum().item<int64_t>());
    }
    chosen.push_back(next);
    d2 = torch::minimum(d2, (x - x[next]).pow(2).sum(1));
  }
  at::Tensor centres = x.index_select(0, torch::tensor(chosen, torch::kInt64));
  at::Tensor assign;
  for (int it = 0; it <= iterations; ++it) {
    const at::Tensor dist = torch::cdist(x, centres);
    at::Tensor a = dist.argmin(1);
    // Keep every cluster non-empty: an empty one takes the row farthest from its centre.
    for (int c = 0; c < k; ++c) {
      if (a.eq(c).sum().item<int64_t>() == 0) {
        const at::Tensor own = dist.gather(1, a.unsqueeze(1)).squeeze(1);
        const int64_t far = own.argmax().item<int64_t>();
        a[far] = c;
      }
    }
    if (assign.defined() && a.equal(assign)) break;
    assign = a;
    for (int c = 0; c < k; ++c) centres[c] = x.index_select(0, assign.eq(c).nonzero().squeeze(1)).mean(0);
  }
  return assign;
}

absl::StatusOr<FingerprintPoints> ChooseFingerprintPoints(const at::Tensor& images, const at::Tensor& labels, int k,
                                                          int n, uint64_t seed) {
  if (images.dim() != 4 || labels.dim() != 1 || labels.size(0) != images.size(0)) {
    return absl::InvalidArgumentError("fingerprint points: images N x C x H x W with N labels");
  }
  if (n < 1) return absl::InvalidArgumentError("fingerprint points: need at least one fingerprint");
  MOVE_ASSIGN_OR_RETURN(at::Tensor cluster, KMeans(images.reshape({images.size(0), -1}), k, 30, seed));
  std::vector<at::Tensor> members(k);
  for (int c = 0; c < k; ++c) {
    const at::Tensor m = cluster.eq(c).nonzero().squeeze(1);
    members[c] = m.index_select(0, Perm(m.size(0), seed * 131 + c));
  }
  at::Tensor idx = torch::empty({n, k}, torch::kInt64);
  for (int j = 0; j < n; ++j) {
    for (int c = 0; c < k; ++c) idx[j][c] = members[c][j % members[c].size(0)];
  }
  const at::Tensor flat = idx.reshape({-1});
  FingerprintPoints p;
  p.images = images.index_select(0, flat).reshape({n, k, images.size(1), images.size(2), images.size(3)}).contiguous();
  p.labels = labels.index_select(0, flat).reshape({n, k}).to(torch::kInt64).contiguous();
  return p;
}

absl::StatusOr<at::Tensor> FingerprintQueries(const at::Tensor& points, const at::Tensor& uaps, const at::Tensor& uap_index) {
  if (points.dim() != 5 || uaps.dim() != 4 || uap_index.dim() != 1 || uap_index.size(0) != points.size(0) ||
      uaps.sizes().slice(1) != points.sizes().slice(2)) {
    return absl::InvalidArgumentError("fingerprint queries: points n x k x C x H x W, UAPs U x C x H x W, n UAP indices");
  }
  if (uap_index.numel() > 0 && (uap_index.min().item<int64_t>() < 0 || uap_index.max().item<int64_t>() >= uaps.size(0))) {
    return absl::InvalidArgumentError("fingerprint queries: UAP index out of range");
  }
  const at::Tensor x = Quantize8Bit(points);
  const at::Tensor v = uaps.index_select(0, uap_index).unsqueeze(1);  // n x 1 x C x H x W
  const at::Tensor xv = Quantize8Bit((x + v).clamp(0, 1));
  return torch::stack({x, xv}, 2).reshape({-1, points.size(2), points.size(3), points.size(4)}).contiguous();
}

absl::StatusOr<at::Tensor> AssembleFingerprints(const at::Tensor& probabilities, int64_t n, int64_t k) {
  if (probabilities.dim() != 2 || n < 1 || k < 1 || probabilities.size(0) != n * k * 2) {
    return absl::InvalidArgumentError(absl::StrCat("fingerprints: expected ", n * k * 2, " probability rows"));
  }
  return probabilities.to(torch::kFloat32).reshape({n, k * 2 * probabilities.size(1)}).contiguous();
}

at::Tensor SupConLoss(const at::Tensor& z, const at::Tensor& labels, const at::Tensor& groups, double temperature) {
  const int64_t n = z.size(0);
  const at::Tensor eye = torch::eye(n, torch::TensorOptions().dtype(torch::kBool));
  // Only rows of the same group (fingerprints of the same points) are compared.
  const at::Tensor valid = groups.unsqueeze(0).eq(groups.unsqueeze(1)).logical_and(eye.logical_not());
  at::Tensor logits = z.matmul(z.t()) / temperature;
  logits = logits.masked_fill(valid.logical_not(), -1e9);
  const at::Tensor log_prob = logits - logits.logsumexp(1, true);
  const at::Tensor pos = labels.unsqueeze(0).eq(labels.unsqueeze(1)).logical_and(valid).to(z.scalar_type());
  const at::Tensor count = pos.sum(1);
  // Anchors need a positive and a negative in their group.
  const at::Tensor has = count.gt(0).logical_and(valid.sum(1).gt(count));
  const at::Tensor per_anchor = -(log_prob * pos).sum(1) / count.clamp_min(1);
  return per_anchor.masked_select(has).mean();
}

absl::StatusOr<FingerprintEncoder> FingerprintEncoder::Train(const at::Tensor& x, const at::Tensor& labels,
                                                             const at::Tensor& groups, const EncoderOptions& o,
                                                             double* final_loss) {
  if (x.dim() != 2 || labels.dim() != 1 || labels.size(0) != x.size(0) || x.size(0) < 2 || groups.dim() != 1 ||
      groups.size(0) != x.size(0)) {
    return absl::InvalidArgumentError("encoder: need N x D fingerprints (N >= 2), N labels and N groups");
  }
  if (o.hidden < 1 || o.embedding < 1 || o.steps < 1 || !(o.lr > 0) || !(o.temperature > 0)) {
    return absl::InvalidArgumentError("encoder: widths and steps must be >= 1, lr and temperature > 0");
  }
  return core::GuardTorch("training the fingerprint encoder", [&]() -> absl::StatusOr<FingerprintEncoder> {
    FingerprintEncoder e;
    const int64_t d = x.size(1);
    at::Generator g = Gen(o.seed * 17 + 11);
    auto uniform = [&](std::vector<int64_t> shape, double bound) {
      return ((torch::rand(shape, g) * 2 - 1) * bound).requires_grad_(true);
    };
    e.w1_ = uniform({o.hidden, d}, 1 / std::sqrt(static_cast<double>(d)));
    e.b1_ = uniform({o.hidden}, 1 / std::sqrt(static_cast<double>(d)));
    e.w2_ = uniform({o.embedding, o.hidden}, 1 / std::sqrt(static_cast<double>(o.hidden)));
    e.b2_ = uniform({o.embedding}, 1 / std::sqrt(static_cast<double>(o.hidden)));
    torch::optim::Adam opt({e.w1_, e.b1_, e.w2_, e.b2_}, torch::optim::AdamOptions(o.lr));
    const at::Tensor xf = x.to(torch::kFloat32), y = labels.to(torch::kInt64), gr = groups.to(torch::kInt64);
    core::Progress progress("fingerprint encoder (supervised contrastive)", o.steps, o.show_progress);
    double last = 0;
    for (int s = 0; s < o.steps; ++s) {
      opt.zero_grad();
      at::Tensor loss = SupConLoss(e.Encode(xf), y, gr, o.temperature);
      loss.backward();
      opt.step();
      last = loss.item<double>();
      if (!std::isfinite(last)) return absl::InternalError("encoder: the contrastive loss diverged");
      progress.Update(s + 1, absl::StrFormat("loss %.4f", last));
    }
    progress.Finish();
    if (final_loss != nullptr) *final_loss = last;
    for (at::Tensor* t : {&e.w1_, &e.b1_, &e.w2_, &e.b2_}) *t = t->detach().requires_grad_(false);
    return e;
  });
}

absl::StatusOr<FingerprintEncoder> FingerprintEncoder::FromState(const std::map<std::string, at::Tensor>& state) {
  FingerprintEncoder e;
  for (const auto& [name, t] : std::vector<std::pair<std::string, at::Tensor*>>{
           {"w1", &e.w1_}, {"b1", &e.b1_}, {"w2", &e.w2_}, {"b2", &e.b2_}}) {
    auto it = state.find(name);
    if (it == state.end()) return absl::DataLossError(absl::StrCat("fingerprint encoder: missing '", name, "'"));
    *t = it->second.to(torch::kFloat32);
  }
  if (e.w1_.dim() != 2 || e.w2_.dim() != 2 || e.b1_.dim() != 1 || e.b2_.dim() != 1 || e.b1_.size(0) != e.w1_.size(0) ||
      e.w2_.size(1) != e.w1_.size(0) || e.b2_.size(0) != e.w2_.size(0)) {
    return absl::DataLossError("fingerprint encoder: inconsistent shapes");
  }
  return e;
}

std::map<std::string, at::Tensor> FingerprintEncoder::State() const {
  return {{"w1", w1_}, {"b1", b1_}, {"w2", w2_}, {"b2", b2_}};
}

at::Tensor FingerprintEncoder::Encode(const at::Tensor& x) const {
  const at::Tensor h = torch::relu(torch::addmm(b1_, x.clamp_min(0).sqrt(), w1_.t()));
  return torch::nn::functional::normalize(torch::addmm(b2_, h, w2_.t()),
                                          torch::nn::functional::NormalizeFuncOptions().dim(1).eps(1e-12));
}

at::Tensor FingerprintSimilarity(const FingerprintEncoder& encoder, const at::Tensor& suspect, const at::Tensor& victim) {
  torch::NoGradGuard ng;
  return (encoder.Encode(suspect.to(torch::kFloat32)) * encoder.Encode(victim.to(torch::kFloat32))).sum(1);
}

}  // namespace verifier_internal

// ---------------------------------------------------------------------------------------------
// Building and verification.

namespace {

using namespace verifier_internal;  // NOLINT: this file implements them

// The stored tensors' commitment.
std::string FingerprintSha(const FingerprintVerifier& v) {
  core::Sha256 h;
  for (const TensorProto* p : {&v.uaps(), &v.points(), &v.point_labels(), &v.victim_probabilities(),
                               &v.reference_probabilities()}) {
    absl::StatusOr<at::Tensor> t = FromTensorProto(*p);
    if (t.ok()) h.UpdateTensor(*t);
  }
  return h.HexDigest();
}

at::Tensor UapIndex(const at::Tensor& fingerprint_index, int64_t uaps) { return fingerprint_index.remainder(uaps); }

// Probabilities of `model` on the queries of fingerprints `points`, as fingerprint vectors.
absl::StatusOr<at::Tensor> ModelFingerprints(torch::jit::Module& model, const at::Tensor& points, const at::Tensor& uaps,
                                             const at::Tensor& fingerprint_index, at::Tensor* probabilities = nullptr) {
  MOVE_ASSIGN_OR_RETURN(at::Tensor q, FingerprintQueries(points, uaps, UapIndex(fingerprint_index, uaps.size(0))));
  MOVE_ASSIGN_OR_RETURN(at::Tensor p, PredictProbabilities(model, q));
  if (probabilities != nullptr) *probabilities = p;
  return AssembleFingerprints(p, points.size(0), points.size(1));
}

}  // namespace

absl::StatusOr<FingerprintVerifier> BuildFingerprintVerifier(const FingerprintBuildInputs& in,
                                                             const FingerprintBuildOptions& o) {
  if (in.victim == nullptr || in.point_pool == nullptr || in.verification_pool == nullptr) {
    return absl::InvalidArgumentError("fingerprint: victim, point_pool and verification_pool are required");
  }
  if (in.piracy.empty()) return absl::InvalidArgumentError("fingerprint: need at least 1 piracy model for the encoder");
  if (in.independent.size() < 2) return absl::InvalidArgumentError("fingerprint: need at least 2 independent models for the encoder");
  if (in.calibration.size() < 3) {
    return absl::InvalidArgumentError("fingerprint: need at least 3 held-out independent models (reference + 2 calibration)");
  }
  std::vector<std::string> kinds;  // of the calibration models, the reference first
  for (const FingerprintModel& m : in.calibration) kinds.push_back(m.kind);
  MOVE_RETURN_IF_ERROR(CheckNullPopulationKinds(kinds, "fingerprint: calibration"));
  if (o.uaps < 1 || o.points_per_fingerprint < 1 || o.train_fingerprints < 2 || o.verification_fingerprints < 2) {
    return absl::InvalidArgumentError("fingerprint: uaps and points_per_fingerprint >= 1, fingerprints >= 2");
  }
  if (!(o.alpha > 0 && o.alpha < 1)) return absl::InvalidArgumentError("fingerprint: alpha must be in (0, 1)");
  const at::Tensor pool = in.point_pool->images, ver_pool = in.verification_pool->images;
  if (pool.dim() != 4 || ver_pool.dim() != 4 || pool.sizes().slice(1) != ver_pool.sizes().slice(1)) {
    return absl::InvalidArgumentError("fingerprint: point pools must be N x C x H x W images of one shape");
  }
  const int64_t kpts = o.points_per_fingerprint;
  if (pool.size(0) < kpts || ver_pool.size(0) < kpts) {
    return absl::InvalidArgumentError("fingerprint: point pools smaller than points_per_fingerprint");
  }
  torch::jit::Module victim = in.victim->clone();
  victim.eval();
  FingerprintVerifier v;
  v.set_method(kFingerprintMethod);
  v.set_in_channels(pool.size(1));
  v.set_height(pool.size(2));
  v.set_width(pool.size(3));
  v.set_epsilon(o.epsilon);

  // 1. UAPs on the vendor's images; fooling rates on held-out ones.
  std::vector<at::Tensor> uap_list;
  const at::Tensor fool_images = ver_pool.narrow(0, 0, std::min<int64_t>(1000, ver_pool.size(0)));
  for (int u = 0; u < o.uaps; ++u) {
    const at::Tensor idx = Perm(pool.size(0), o.seed * 101 + u).narrow(0, 0, std::min(o.uap_images, pool.size(0)));
    UapOptions uo;
    uo.epsilon = o.epsilon;
    uo.epochs = o.uap_epochs;
    uo.step = o.uap_step;
    uo.seed = o.seed * 1000 + u;
    if (o.show_progress) std::printf("fingerprint: UAP %d of %d (epsilon %.3g)...\n", u + 1, o.uaps, o.epsilon);
    MOVE_ASSIGN_OR_RETURN(at::Tensor uap, ComputeUap(victim, pool.index_select(0, idx), uo));
    MOVE_ASSIGN_OR_RETURN(double fr, FoolingRate(victim, fool_images, uap));
    v.add_uap_fooling_rate(fr);
    uap_list.push_back(uap);
  }
  const at::Tensor uaps = torch::stack(uap_list).contiguous();

  // 2. Fingerprint points: training fingerprints from the vendor's pool, verification ones
  //    from its held-out images.
  MOVE_ASSIGN_OR_RETURN(FingerprintPoints train_pts, ChooseFingerprintPoints(pool, in.point_pool->labels, kpts,
                                                                             o.train_fingerprints, o.seed * 3 + 1));
  MOVE_ASSIGN_OR_RETURN(FingerprintPoints ver_pts, ChooseFingerprintPoints(ver_pool, in.verification_pool->labels, kpts,
                                                                           o.verification_fingerprints, o.seed * 3 + 2));
  const at::Tensor train_index = torch::arange(o.train_fingerprints, torch::kInt64);
  const at::Tensor ver_index = torch::arange(o.verification_fingerprints, torch::kInt64);

  // 3. Encoder on the training fingerprints: the victim and piracy models one class, every
  //    independent model a class of its own; only fingerprints of the same points are
  //    contrasted (the score compares a suspect with the victim on the same points).
  std::vector<at::Tensor> xs, ys, gs;
  auto add_training = [&](const torch::jit::Module& m0, int64_t label) -> absl::Status {
    torch::jit::Module m = m0.clone();
    MOVE_ASSIGN_OR_RETURN(at::Tensor f, ModelFingerprints(m, train_pts.images, uaps, train_index));
    xs.push_back(f);
    ys.push_back(torch::full({f.size(0)}, label, torch::kInt64));
    gs.push_back(train_index);
    return absl::OkStatus();
  };
  MOVE_RETURN_IF_ERROR(add_training(victim, 0));
  for (const FingerprintModel& m : in.piracy) MOVE_RETURN_IF_ERROR(add_training(m.model, 0));
  for (size_t i = 0; i < in.independent.size(); ++i) MOVE_RETURN_IF_ERROR(add_training(in.independent[i].model, 1 + i));
  EncoderOptions eo;
  eo.hidden = o.hidden;
  eo.embedding = o.embedding;
  eo.steps = o.encoder_steps;
  eo.lr = o.encoder_lr;
  eo.temperature = o.temperature;
  eo.seed = o.seed;
  eo.show_progress = o.show_progress;
  double loss = 0;
  MOVE_ASSIGN_OR_RETURN(FingerprintEncoder encoder, FingerprintEncoder::Train(torch::cat(xs), torch::cat(ys), torch::cat(gs), eo, &loss));
  for (const auto& [name, t] : encoder.State()) (*v.mutable_encoder())[name] = ToTensorProto(t.contiguous());
  auto& par = *v.mutable_parameters();
  par["points_per_fingerprint"] = absl::StrCat(kpts);
  par["train_fingerprints"] = absl::StrCat(o.train_fingerprints);
  par["hidden"] = absl::StrCat(o.hidden);
  par["embedding"] = absl::StrCat(o.embedding);
  par["encoder_steps"] = absl::StrCat(o.encoder_steps);
  par["encoder_lr"] = absl::StrCat(o.encoder_lr);
  par["temperature"] = absl::StrCat(o.temperature);
  par["final_loss"] = absl::StrFormat("%.6f", loss);
  par["uap_epochs"] = absl::StrCat(o.uap_epochs);
  par["uap_step"] = absl::StrCat(o.uap_step);
  par["uap_images"] = absl::StrCat(o.uap_images);
  par["seed"] = absl::StrCat(o.seed);
  par["input"] = "sqrt(probabilities)";
  par["quantisation"] = "8-bit";

  // 4. Verification fingerprints of the victim and of every held-out model.
  at::Tensor victim_p;
  MOVE_ASSIGN_OR_RETURN(at::Tensor victim_f, ModelFingerprints(victim, ver_pts.images, uaps, ver_index, &victim_p));
  v.set_num_classes(victim_p.size(1));
  auto similarity = [&](const torch::jit::Module& m0, at::Tensor* probabilities) -> absl::StatusOr<at::Tensor> {
    torch::jit::Module m = m0.clone();
    MOVE_ASSIGN_OR_RETURN(at::Tensor f, ModelFingerprints(m, ver_pts.images, uaps, ver_index, probabilities));
    return FingerprintSimilarity(encoder, f, victim_f);
  };
  std::vector<at::Tensor> cal_sim;
  at::Tensor reference_p;
  for (size_t i = 0; i < in.calibration.size(); ++i) {
    MOVE_ASSIGN_OR_RETURN(at::Tensor s, similarity(in.calibration[i].model, i == 0 ? &reference_p : nullptr));
    cal_sim.push_back(s);
    AddBenignScores(s, i == 0 ? "reference" : CalibrationKindOf(in.calibration[i].kind), in.calibration[i].architecture,
                    v.mutable_benign_scores());
  }
  const std::vector<double> ref = ToVector(cal_sim[0]);

  // 5. Soundness (the verdict rule on each calibration model), validation, positive control.
  std::vector<std::string> flagged;
  int type1 = 0;
  auto record = [&](const std::string& role, const FingerprintModel& m, double log10_p, bool f) {
    AddModelRecord(role, m.name, m.architecture, m.model, log10_p, f, v.mutable_models());
  };
  for (const FingerprintModel& m : in.piracy) record("piracy", m, 0, false);
  for (const FingerprintModel& m : in.independent) record("independent", m, 0, false);
  record("reference", in.calibration[0], 0, false);
  for (size_t i = 1; i < in.calibration.size(); ++i) {
    MOVE_ASSIGN_OR_RETURN(PairedTestResult t, OneSidedPairedTTest(ToVector(cal_sim[i]), ref, o.alpha));
    double ml_log10 = 0;
    const bool ml = LeaveOneOutModelLevelRejects(v.benign_scores(), static_cast<int>(i), o.alpha, &ml_log10);
    const bool f = t.reject && ml;
    v.add_calibration_log10_p(t.log10_p_value);
    record(CalibrationKindOf(in.calibration[i].kind), in.calibration[i], std::max(t.log10_p_value, ml_log10), f);
    if (f) {
      ++type1;
      flagged.push_back(absl::StrFormat("%s (paired p %.2g, model-level p %.2g)", in.calibration[i].name, t.p_value,
                                        std::pow(10.0, ml_log10)));
    }
  }
  // The null population a court will ask about: without a rival vendor's model and an
  // appearance-augmented one the check cannot show that the line tells the victim's boundary
  // from another watermark's or from ordinary augmentation, so it claims nothing.
  std::vector<std::string> reasons;
  if (!flagged.empty()) reasons.push_back(absl::StrCat("calibration models flagged: ", absl::StrJoin(flagged, "; ")));
  for (std::string& gap : NullPopulationGaps({kinds.begin() + 1, kinds.end()})) reasons.push_back(std::move(gap));
  v.set_sound(reasons.empty());
  if (!reasons.empty()) v.set_unsound_reason(absl::StrJoin(reasons, "; "));
  v.set_type1_error(static_cast<double>(type1) / (in.calibration.size() - 1));
  std::vector<double> benign_means;
  for (const at::Tensor& s : cal_sim) benign_means.push_back(s.mean().item<double>());
  int missed = 0;
  for (const FingerprintModel& m : in.held_out_piracy) {
    MOVE_ASSIGN_OR_RETURN(at::Tensor s, similarity(m.model, nullptr));
    MOVE_ASSIGN_OR_RETURN(PairedTestResult t, OneSidedPairedTTest(ToVector(s), ref, o.alpha));
    MOVE_ASSIGN_OR_RETURN(ModelLevelTestResult ml, ModelLevelTest(s.mean().item<double>(), benign_means, o.alpha));
    const bool f = t.reject && ml.reject;
    missed += f ? 0 : 1;
    record("held-out piracy", m, std::max(t.log10_p_value, ml.log10_p_value), f);
  }
  v.set_type2_error(in.held_out_piracy.empty() ? 0 : static_cast<double>(missed) / in.held_out_piracy.size());
  {
    // The victim's own fingerprints are already at hand: no second pass over its queries.
    MOVE_ASSIGN_OR_RETURN(PairedTestResult t,
                          OneSidedPairedTTest(ToVector(FingerprintSimilarity(encoder, victim_f, victim_f)), ref, o.alpha));
    v.set_victim_log10_p(t.log10_p_value);
  }
  *v.mutable_uaps() = ToTensorProto(uaps);
  *v.mutable_points() = ToTensorProto(ver_pts.images);
  *v.mutable_point_labels() = ToTensorProto(ver_pts.labels);
  *v.mutable_victim_probabilities() = ToTensorProto(victim_p.reshape({o.verification_fingerprints, kpts, 2, -1}).contiguous());
  *v.mutable_reference_probabilities() =
      ToTensorProto(reference_p.reshape({o.verification_fingerprints, kpts, 2, -1}).contiguous());
  v.set_sha256(FingerprintSha(v));
  if (o.show_progress) {
    std::printf("fingerprint verifier: UAP fooling rate %s | soundness %s | Type-I %.2f Type-II %.2f | victim log10 p %.1f\n",
                absl::StrJoin(v.uap_fooling_rate(), ", ", [](std::string* out, double x) { absl::StrAppendFormat(out, "%.2f", x); }).c_str(),
                v.sound() ? "passed" : "FAILED", v.type1_error(), v.type2_error(), v.victim_log10_p());
    if (!v.sound()) std::printf("fingerprint verifier: unsound, it will claim nothing: %s\n", v.unsound_reason().c_str());
  }
  return v;
}

absl::StatusOr<VerificationReport> VerifyFingerprint(const OpenedBundle& bundle, SuspectChannel& channel,
                                                     const FingerprintVerifyOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  MOVE_RETURN_IF_ERROR(ValidateQueryOptions(o.alpha, o.max_queries, o.images_per_request, o.repeat_share,
                                            o.repeat_tolerance, o.min_relative_accuracy));
  if (o.fingerprints < 0) return absl::InvalidArgumentError("fingerprints: must be >= 0 (0 = all)");
  const BundleContents& c = bundle.contents;
  if (!c.has_fingerprint() || c.fingerprint().method().empty()) {
    return absl::FailedPreconditionError("the bundle has no fingerprint verifier (built without one)");
  }
  const FingerprintVerifier& v = c.fingerprint();
  if (v.method() != kFingerprintMethod) {
    return absl::DataLossError(absl::StrCat("bundle: unknown fingerprint method '", v.method(), "'"));
  }
  if (FingerprintSha(v) != v.sha256()) return absl::DataLossError("bundle: fingerprint data do not match their SHA-256");
  MOVE_ASSIGN_OR_RETURN(at::Tensor uaps, FromTensorProto(v.uaps()));
  MOVE_ASSIGN_OR_RETURN(at::Tensor points, FromTensorProto(v.points()));
  MOVE_ASSIGN_OR_RETURN(at::Tensor labels, FromTensorProto(v.point_labels()));
  MOVE_ASSIGN_OR_RETURN(at::Tensor victim_p, FromTensorProto(v.victim_probabilities()));
  MOVE_ASSIGN_OR_RETURN(at::Tensor reference_p, FromTensorProto(v.reference_probabilities()));
  std::map<std::string, at::Tensor> state;
  for (const auto& [name, proto] : v.encoder()) {
    MOVE_ASSIGN_OR_RETURN(state[name], FromTensorProto(proto));
  }
  MOVE_ASSIGN_OR_RETURN(FingerprintEncoder encoder, FingerprintEncoder::FromState(state));
  const int64_t total = points.dim() == 5 ? points.size(0) : 0, kpts = points.dim() == 5 ? points.size(1) : 0;
  const int64_t k = v.num_classes();
  if (total < 2 || uaps.dim() != 4 || uaps.size(0) < 1 || labels.sizes() != at::IntArrayRef{total, kpts} ||
      victim_p.sizes() != at::IntArrayRef{total, kpts, 2, k} || reference_p.sizes() != victim_p.sizes() ||
      encoder.input_dim() != 2 * kpts * k) {
    return absl::DataLossError("bundle: fingerprint tensors have inconsistent shapes");
  }
  const int64_t n = o.fingerprints == 0 ? total : o.fingerprints;
  if (n > total) {
    return absl::InvalidArgumentError(absl::StrCat("fingerprints: ", n, " requested, the bundle holds ", total));
  }
  MOVE_ASSIGN_OR_RETURN(at::Tensor subset, VerificationSubset(total, n, o.seed));
  const int64_t per_fp = 2 * kpts;
  const int64_t max_queries = o.max_queries == 0 ? per_fp * n : o.max_queries;
  if (!o.sequential && per_fp * n > max_queries) {
    return absl::ResourceExhaustedError(absl::StrCat("max_queries: ", max_queries, " is below the ", per_fp * n,
                                                     " queries ", n, " fingerprints need; use fewer or --sequential"));
  }
  if (max_queries < 2 * per_fp) {
    return absl::ResourceExhaustedError(absl::StrCat("max_queries: ", max_queries, " does not cover two fingerprints (",
                                                     2 * per_fp, " queries)"));
  }
  const at::Tensor victim_f = victim_p.reshape({total, -1});
  const at::Tensor ref_f = reference_p.reshape({total, -1});
  const std::vector<double> ref_sim = ToVector(FingerprintSimilarity(encoder, ref_f, victim_f));
  const at::Tensor ref_correct = reference_p.select(2, 0).argmax(2).eq(labels).to(torch::kInt64).sum(1);  // per fp
  // Top-class agreement with the victim's recorded answers, per fingerprint: [total, 2] (clean, perturbed).
  const at::Tensor victim_top = victim_p.argmax(3);
  const at::Tensor ref_agree = reference_p.argmax(3).eq(victim_top).to(torch::kInt64).sum(1);
  at::Tensor suspect_agree = torch::zeros({2}, torch::kInt64), reference_agree = torch::zeros({2}, torch::kInt64);

  std::optional<TranscriptWriter> transcript;
  if (!o.transcript_path.empty()) {
    MOVE_ASSIGN_OR_RETURN(TranscriptWriter w, TranscriptWriter::Create(o.transcript_path));
    transcript.emplace(std::move(w));
  }
  QueryClient client(channel, transcript ? &*transcript : nullptr, k, o.images_per_request, o.accept_logits,
                     RepeatOptions{o.repeat_share, o.repeat_tolerance, o.seed});
  // Order: fixed mode asks everything in one shuffled round; sequential one fingerprint a round.
  std::vector<at::Tensor> rounds;
  if (!o.sequential) {
    rounds.push_back(subset);
  } else {
    const at::Tensor order = subset.index_select(0, Perm(n, o.seed * 7919 + 5));
    for (int64_t i = 0; i < n; ++i) rounds.push_back(order.narrow(0, i, 1));
  }
  BettingTest betting(o.alpha);
  std::vector<double> suspect_sim, paired_ref;
  std::vector<int64_t> used;
  int64_t suspect_correct = 0, reference_correct = 0;
  core::Progress progress(absl::StrCat("fingerprint queries (", channel.Describe(), ")"), o.sequential ? max_queries : per_fp * n,
                          o.show_progress);
  bool stopped_early = false, budget_stop = false;
  for (size_t r = 0; r < rounds.size(); ++r) {
    const at::Tensor idx = rounds[r];
    const int64_t nr = idx.size(0);
    if (client.queries() + per_fp * nr > max_queries) {
      budget_stop = true;
      break;
    }
    MOVE_ASSIGN_OR_RETURN(at::Tensor q, FingerprintQueries(points.index_select(0, idx), uaps, UapIndex(idx, uaps.size(0))));
    const at::Tensor perm = torch::randperm(q.size(0), Gen(o.seed * 1000003ULL + 104729ULL * (r + 1)),
                                            torch::TensorOptions().dtype(torch::kInt64));
    MOVE_ASSIGN_OR_RETURN(at::Tensor answered, client.Ask(q.index_select(0, perm)));
    at::Tensor unshuffled = torch::empty_like(answered);
    unshuffled.index_copy_(0, perm, answered);
    MOVE_ASSIGN_OR_RETURN(at::Tensor f, AssembleFingerprints(unshuffled, nr, kpts));
    const std::vector<double> s = ToVector(FingerprintSimilarity(encoder, f, victim_f.index_select(0, idx)));
    const at::Tensor clean_pred = unshuffled.reshape({nr, kpts, 2, k}).select(2, 0).argmax(2);
    suspect_correct += clean_pred.eq(labels.index_select(0, idx)).sum().item<int64_t>();
    suspect_agree += unshuffled.reshape({nr, kpts, 2, k}).argmax(3).eq(victim_top.index_select(0, idx)).to(torch::kInt64).sum(0).sum(0);
    reference_agree += ref_agree.index_select(0, idx).sum(0);
    for (int64_t i = 0; i < nr; ++i) {
      const int64_t j = idx[i].item<int64_t>();
      suspect_sim.push_back(s[i]);
      paired_ref.push_back(ref_sim[j]);
      used.push_back(j);
      reference_correct += ref_correct[j].item<int64_t>();
      MOVE_RETURN_IF_ERROR(betting.Add((s[i] - ref_sim[j]) / 2));  // cosine differences lie in [-2, 2]
    }
    progress.Update(client.queries(), o.sequential ? absl::StrFormat("p <= %.3g", betting.p_value()) : "");
    if (o.sequential && betting.reject() && suspect_sim.size() >= 2) {
      stopped_early = r + 1 < rounds.size();
      break;
    }
  }
  progress.Finish();
  const int64_t pairs = static_cast<int64_t>(suspect_sim.size());
  if (pairs < 2) return absl::ResourceExhaustedError("max_queries: too small for two fingerprints");

  VerificationReport rep;
  rep.set_format("move.report.v1");
  SetLine(LINE_FINGERPRINT, &rep);
  rep.set_architecture("any (probabilities only)");
  rep.set_feature_design(v.method());
  MOVE_ASSIGN_OR_RETURN(
      const bool reject,
      SetQueryStatistics(suspect_sim, paired_ref, betting, o.sequential,
                         "sequential betting test over fingerprints (anytime-valid; delta_mu interval descriptive)",
                         " over fingerprints (cosine similarity to the victim's)", budget_stop, max_queries, o.alpha, &rep));
  const double mean_s = rep.suspect_mean_score();
  Decide(reject, v.sound(), v.unsound_reason(), "fingerprint", v.type1_error(), v.type2_error(), o.alpha,
         /*warn_below_minimum=*/false, &rep);
  MOVE_RETURN_IF_ERROR(ApplyModelLevelTest(v.benign_scores(), used, mean_s, o.alpha, &rep));
  ApplyRangeCheck(static_cast<double>(suspect_correct) / (pairs * kpts),
                  static_cast<double>(reference_correct) / (pairs * kpts), o.min_relative_accuracy, &rep);
  MOVE_RETURN_IF_ERROR(RecordQueries(client, channel, o.transcript_path, max_queries, o.sequential, stopped_early, &rep));
  rep.mutable_suspect_scores()->Add(suspect_sim.begin(), suspect_sim.end());
  rep.mutable_reference_scores()->Add(paired_ref.begin(), paired_ref.end());
  const double points_asked = static_cast<double>(pairs * kpts);
  rep.set_fingerprint_clean_agreement(suspect_agree[0].item<int64_t>() / points_asked);
  rep.set_fingerprint_perturbed_agreement(suspect_agree[1].item<int64_t>() / points_asked);
  rep.set_reference_clean_agreement(reference_agree[0].item<int64_t>() / points_asked);
  rep.set_reference_perturbed_agreement(reference_agree[1].item<int64_t>() / points_asked);
  FillProvenance(bundle, o.seed, "cpu", start, &rep);
  return rep;
}

// ---------------------------------------------------------------------------------------------
// Combined verdict.

namespace {

std::string LineName(const VerificationReport& r) {
  const Line line = LineOf(r);
  if (line == LINE_UNSPECIFIED) return r.mode();
  std::string name(LineTitle(line));
  if (r.sequential() && (line == LINE_BLACK_BOX || line == LINE_FINGERPRINT)) absl::StrAppend(&name, " (sequential)");
  return name;
}

}  // namespace

absl::StatusOr<CombinedVerdict> CombineEvidence(const std::vector<VerificationReport>& reports, double alpha) {
  if (reports.empty()) return absl::InvalidArgumentError("combined verdict: no reports");
  if (!(alpha > 0 && alpha < 1)) return absl::InvalidArgumentError("combined verdict: alpha must be in (0, 1)");
  CombinedVerdict c;
  c.set_format("move.combined.v1");
  c.set_rule("holm");
  c.set_alpha(alpha);
  const int lines = static_cast<int>(reports.size());
  // Holm's family: the lines whose classifier passed the bundle's soundness check. Which
  // lines those are is fixed by the bundle before any suspect is examined, so an unsound line
  // can leave the family without giving up the family-wise guarantee, and does not dilute
  // the lines that can carry evidence.
  std::vector<int> order;
  std::vector<double> log10_p(lines, 0);
  int usable = 0;
  for (int i = 0; i < lines; ++i) {
    const VerificationReport& r = reports[i];
    EvidenceLine* l = c.add_lines();
    l->set_name(LineName(r));
    l->set_verdict(r.verdict());
    l->set_line(LineOf(r));
    l->set_outcome(OutcomeOf(r));
    l->set_usable(r.classifier_sound() && r.suspect_in_range() && !r.answers_inconsistent());
    l->set_excluded_from_family(!r.classifier_sound());
    if (!l->excluded_from_family()) order.push_back(i);
    if (!r.classifier_sound()) {
      l->set_note("its classifier failed the bundle's soundness check: left out of Holm's family, it claims nothing");
    } else if (r.answers_inconsistent()) {
      l->set_note("the suspect answered repeated images inconsistently: enters with p = 1");
    } else if (!r.suspect_in_range()) {
      l->set_note("the suspect is outside its range check: enters with p = 1");
    }
    if (l->usable()) {
      ++usable;
      log10_p[i] = r.log10_p_value();
      if (r.model_level_tested()) {
        log10_p[i] = std::max(log10_p[i], r.model_level_log10_p_value());
      } else {
        l->set_note("no model-level test in this bundle: the paired p alone");
      }
    }
    l->set_log10_p_value(log10_p[i]);
    l->set_p_value(std::pow(10.0, log10_p[i]));
    *c.add_reports() = r;
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return log10_p[a] < log10_p[b]; });
  std::vector<std::string> decided;
  std::vector<Line> decided_lines;
  bool still = true;
  const int family = static_cast<int>(order.size());
  for (int rank = 0; rank < family; ++rank) {
    EvidenceLine* l = c.mutable_lines(order[rank]);
    const double threshold = alpha / (family - rank);
    l->set_holm_threshold(threshold);
    still = still && l->usable() && log10_p[order[rank]] <= std::log10(threshold);
    l->set_rejected(still);
    if (still) decided.push_back(l->name()), decided_lines.push_back(l->line());
  }
  const double min_log10 = family > 0 ? log10_p[order[0]] : 0.0;
  c.set_log10_p_value(std::min(0.0, min_log10 + std::log10(static_cast<double>(std::max(family, 1)))));
  c.set_p_value(std::pow(10.0, c.log10_p_value()));
  c.set_stolen(!decided.empty());
  c.set_decided_by(absl::StrJoin(decided, ", "));
  for (Line line : decided_lines) c.add_decided_by_lines(line);
  if (!decided.empty()) {
    c.set_outcome(VERDICT_STOLEN);
    c.set_verdict("stolen");
  } else if (usable == 0) {
    c.set_outcome(VERDICT_INCONCLUSIVE);
    c.set_verdict("inconclusive: no line of evidence is usable (soundness or range checks); no theft is claimed");
  } else {
    c.set_outcome(VERDICT_NOT_STOLEN);
    c.set_verdict("not stolen");
  }
  return c;
}

std::string CombinedToJson(const CombinedVerdict& verdict) { return core::ProtoToJson(verdict); }

}  // namespace move
