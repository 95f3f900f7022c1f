#include "sdk/verdict.h"

#include "gtest/gtest.h"
#include "verifier/verdict_internal.h"

namespace move {
namespace {

using verifier_internal::SetLine;
using verifier_internal::SetVerdict;

TEST(VerdictTest, TheEnumIsReadWhereSet) {
  VerificationReport r;
  r.set_verdict("stolen");  // the text disagrees: the enum wins, readers that check refuse the record
  r.set_outcome(VERDICT_INCONCLUSIVE);
  EXPECT_EQ(OutcomeOf(r), VERDICT_INCONCLUSIVE);
}

TEST(VerdictTest, OlderReportsAreReadFromTheirText) {
  VerificationReport r;
  r.set_stolen(true);
  r.set_verdict("stolen");
  EXPECT_EQ(OutcomeOf(r), VERDICT_STOLEN);
  r.set_stolen(false);
  r.set_verdict("not stolen");
  EXPECT_EQ(OutcomeOf(r), VERDICT_NOT_STOLEN);
  r.set_verdict("not stolen: the suspect scores above the reference (paired p = 1e-9), but ...");
  EXPECT_EQ(OutcomeOf(r), VERDICT_NOT_STOLEN);
  r.set_verdict("inconclusive: inconsistent answers (3 of 60 ...)");
  EXPECT_EQ(OutcomeOf(r), VERDICT_INCONCLUSIVE);
  r.set_verdict("not stolen, probably");  // neither form: unknown, never guessed
  EXPECT_EQ(OutcomeOf(r), VERDICT_UNSPECIFIED);
  r.set_verdict("stolen");  // the text says stolen but the flag does not: unknown
  EXPECT_EQ(OutcomeOf(r), VERDICT_UNSPECIFIED);

  EvidenceLine l;
  l.set_verdict("stolen");
  EXPECT_EQ(OutcomeOf(l), VERDICT_STOLEN);
  CombinedVerdict c;
  c.set_verdict("inconclusive: no line of evidence is usable");
  EXPECT_EQ(OutcomeOf(c), VERDICT_INCONCLUSIVE);
}

TEST(VerdictTest, SetVerdictKeepsTheFlagTheEnumAndTheTextTogether) {
  VerificationReport r;
  SetVerdict(VERDICT_STOLEN, "stolen", &r);
  EXPECT_TRUE(r.stolen());
  EXPECT_EQ(r.outcome(), VERDICT_STOLEN);
  SetVerdict(VERDICT_NOT_STOLEN, "not stolen: within what independent models reach", &r);
  EXPECT_FALSE(r.stolen());
  EXPECT_EQ(OutcomeOf(r), VERDICT_NOT_STOLEN);
  EXPECT_EQ(r.verdict(), "not stolen: within what independent models reach");
  SetVerdict(VERDICT_INCONCLUSIVE, "inconclusive: unsound", &r);
  EXPECT_FALSE(r.stolen());
  EXPECT_EQ(VerdictName(OutcomeOf(r)), "inconclusive");
}

TEST(VerdictTest, LinesRoundTripThroughTheirModeText) {
  for (Line line : {LINE_WHITE_BOX, LINE_BLACK_BOX, LINE_FINGERPRINT, LINE_LABEL_AGREEMENT}) {
    VerificationReport r;
    SetLine(line, &r);
    EXPECT_EQ(LineOf(r), line);
    VerificationReport old;  // written before the enum: the mode text alone
    old.set_mode(r.mode());
    EXPECT_EQ(LineOf(old), line) << r.mode();
    EXPECT_NE(LineTitle(line), LineTitle(LINE_UNSPECIFIED));
  }
  VerificationReport other;
  other.set_mode("telepathy");
  EXPECT_EQ(LineOf(other), LINE_UNSPECIFIED);
  EXPECT_EQ(LineTitle(LINE_LABEL_AGREEMENT), "label agreement");
}

TEST(VerdictTest, ModelLevelValueFallsBackToTheMeanScoreForOlderReports) {
  VerificationReport r;
  r.set_suspect_mean_score(0.7);
  EXPECT_EQ(ModelLevelStatisticOf(r), "mean score");
  EXPECT_DOUBLE_EQ(ModelLevelSuspectValueOf(r), 0.7);
  r.set_model_level_statistic("rarity-weighted agreement");
  r.set_model_level_suspect_score(0.4);
  EXPECT_EQ(ModelLevelStatisticOf(r), "rarity-weighted agreement");
  EXPECT_DOUBLE_EQ(ModelLevelSuspectValueOf(r), 0.4);
}

}  // namespace
}  // namespace move
