// Cache keys of the red-team harness: the text that determines a trained model or a bundle,
// written from every field of the options that can change the result, so that a changed
// setting never reuses a stale cached model.
//
//   const std::string what = absl::StrCat("train | ", KeyOf(spec), " | data ", data_sha, " | ", KeyOf(recipe));
//   // the cache stores the model under SHA-256(what), with `what` beside it
//
// Each key is "<struct>{name=value;...}" in declaration order, numbers written exactly (doubles
// with 17 significant digits, so 0.05 and 0.050001 differ) and tensors by their SHA-256. Fields
// that cannot change a result (progress bars, labels, callbacks) are left out, and each
// function below says which; a pointer to another model or data set is the caller's to key
// (its presence is recorded). cache_key.cc stops the build when one of these structs gains a
// field (a size guard), until its key function says what the new field does.
#ifndef MOVE_REDTEAM_CACHE_KEY_H_
#define MOVE_REDTEAM_CACHE_KEY_H_

#include <string>

#include "redteam/attacks.h"
#include "sdk/fingerprint.h"
#include "sdk/label_agreement.h"
#include "sdk/model.h"
#include "sdk/ownership.h"
#include "sdk/train.h"

namespace move::redteam {

// Leaves out label, show_progress and on_epoch; teacher: whether there is one.
std::string KeyOf(const TrainOptions& options);
std::string KeyOf(const ModelSpec& spec);
// attacker_style by its SHA-256 ("none" when undefined).
std::string KeyOf(const AttackOptions& options);
// Leaves out show_progress.
std::string KeyOf(const BuildBundleOptions& options);
std::string KeyOf(const FingerprintBuildOptions& options);
std::string KeyOf(const LabelAgreementBuildOptions& options);

}  // namespace move::redteam

#endif  // MOVE_REDTEAM_CACHE_KEY_H_
