"""Membership inference against the forget set, and MUSE's privacy leakage.

Members are the forget answers (label 1), non-members the holdout answers (label 0, never trained
on); each membership score rates every answer, where higher means "more likely a member", and the
AUROC (`sklearn.metrics.roc_auc_score`) says how well it separates them. A model that memorised
the forget set scores near 1, one never trained on it near 0.5, and one unlearned past the retain
model's behaviour *below* 0.5: the forget set now stands out by being unusually unlikely, which
leaks membership as surely as remembering it does.

Token-level scores use the answer's own tokens, end-of-sequence left out.
- LOSS (Yeom et al. 2018): -mean NLL.
- zlib (Carlini et al. 2021): -mean NLL / zlib-compressed length of the answer text in bytes.
- Min-K% (Shi et al. 2024, "Detecting pretraining data from large language models"): the mean of the
  lowest max(1, floor(k n)) token log-probs.
- Min-K%++ (Zhang et al. 2024, "Min-K%++: Improved baseline for detecting pre-training data from
  large language models"): the same over per-token z-scores (log p(x_t) - mu_t) / sigma_t under the
  model's next-token distribution.
- Privacy leakage (Shi et al. 2024, MUSE's PrivLeak, Min-K% attack): with A = 1 - AUROC,
  100 * (A_unlearned - A_retain) / A_retain. 0 is ideal; a target that remembers sits near -100;
  positive means over-unlearned.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from sklearn.metrics import roc_auc_score

from .base import METRICS, MetricUnavailable, Output
from .context import EvalContext, TokenScores

MEMBERS, NON_MEMBERS = "forget", "holdout"


def zlib_length(text: str) -> int:
    """Bytes of the zlib-compressed UTF-8 text: a cheap estimate of its information content."""
    return len(zlib.compress(text.encode("utf-8")))


def lowest_k_mean(values: np.ndarray, k: float) -> float:
    """Mean of the lowest max(1, floor(k n)) values."""
    n = max(1, math.floor(k * len(values)))
    return float(np.sort(np.asarray(values))[:n].mean())


def loss_score(t: TokenScores) -> float:
    return float(t.logp[t.content].mean())


def zlib_score(t: TokenScores, text: str) -> float:
    return loss_score(t) / zlib_length(text)


def mink_score(t: TokenScores, k: float) -> float:
    return lowest_k_mean(t.logp[t.content], k)


def mink_pp_score(t: TokenScores, k: float) -> float:
    return lowest_k_mean(t.zscore[t.content], k)


def auroc(member_scores, non_member_scores) -> float:
    """AUROC of separating members (label 1) from non-members by score (higher = member)."""
    labels = [1] * len(member_scores) + [0] * len(non_member_scores)
    return float(roc_auc_score(labels, [*member_scores, *non_member_scores]))


def membership_scores(ctx: EvalContext, split: str) -> dict[str, list[float]]:
    """Every membership score of every answer of a split (cached on the context)."""
    k = ctx.config.mink_k

    def compute():
        pairs = list(zip(ctx.token_scores(split, "answer"), ctx.records(split)))
        return {"loss": [loss_score(t) for t, _ in pairs],
                "zlib": [zlib_score(t, r["answer"]) for t, r in pairs],
                "mink": [mink_score(t, k) for t, _ in pairs],
                "mink_pp": [mink_pp_score(t, k) for t, _ in pairs]}

    return ctx.cached(("mia_scores", split), compute)


def score_auroc(ctx: EvalContext, score: str) -> float:
    return auroc(membership_scores(ctx, MEMBERS)[score], membership_scores(ctx, NON_MEMBERS)[score])


# The membership scores, each an AUROC column (not to be confused with the robustness attacks of attacks/).
MIA_SCORES = ("loss", "zlib", "mink", "mink_pp")
READS = {MEMBERS: ("answer",), NON_MEMBERS: ("answer",)}
# The attack the report's tables show (Min-K%++, Zhang et al. 2024); the others declare their direction only.
SHOWN_SCORES = {"mink_pp": Output(False, header="MIA AUROC (Min-K%++)", axis="membership AUROC, Min-K%++ (0.5 = retain-like)",
                                   leaderboard=50, every_setting=80)}


@METRICS.register("mia", outputs={f"mia_{a}_auc": SHOWN_SCORES.get(a, False) for a in MIA_SCORES}, version=1, reads=READS)
def mia(ctx: EvalContext) -> dict[str, float]:
    """Membership-inference AUROC, forget (members) vs holdout: LOSS, zlib, Min-K%, Min-K%++ (0.5 = retain-like)."""
    return {f"mia_{a}_auc": score_auroc(ctx, a) for a in MIA_SCORES}


def privacy_leakage_score(auc_unlearned: float, auc_retain: float) -> float:
    """MUSE's PrivLeak: 100 (A_u - A_r) / A_r with A = 1 - AUROC."""
    a_retain = 1.0 - auc_retain
    if a_retain <= 0:
        raise MetricUnavailable(f"the retain model's Min-K% AUROC is {auc_retain}, leaving nothing to compare against")
    return 100.0 * ((1.0 - auc_unlearned) - a_retain) / a_retain


@METRICS.register("privacy_leakage", outputs={"privleak": Output(
    False, header="privacy leakage", axis="privacy leakage (PrivLeak, %; 0 = retain-like)", fmt="{:.1f}", leaderboard=60,
    every_setting=90)}, version=1, reads=READS)
def privacy_leakage(ctx: EvalContext) -> dict[str, float]:
    """MUSE PrivLeak with Min-K%, relative to the retain model: 0 ideal, ≈ -100 remembers, > 0 over-unlearned."""
    if "retain_mia_mink_auc" not in ctx.baselines:
        raise MetricUnavailable("needs a retain model's Min-K% AUROC, and this evaluation has none "
                                "(a suite's prepare.retain_model: none, or `bench eval` without --retain-model)")
    return {"privleak": privacy_leakage_score(score_auroc(ctx, "mink"), float(ctx.baselines["retain_mia_mink_auc"]))}
