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
- Reference model (Carlini et al. 2021, "Extracting training data from large language models"; Carlini
  et al. 2022, "Membership inference attacks from first principles"): the loss calibrated by a reference
  model, -(meanNLL_model - meanNLL_ref), token-level as LOSS. The reference is the model the target was
  fine-tuned from (a zoo model's pre-trained base; a hub model that the suite fine-tunes, as it was
  loaded): what an answer costs any model of its kind cancels, what fine-tuning taught remains. A target
  used as it is (`prepare.target: as_is`) has none, and neither has `bench eval`: the column is NaN with
  the reason.
- GradNorm (Wang et al. 2024, "Pandora's White-Box: Precise Training Data Detection and Extraction in
  Large Language Models", arXiv:2402.17012; the GradNorm attack of MIMIR and open-unlearning, which cite
  it): -||grad_theta NLL(x)||_2, the gradient of the mean answer-token NLL (end-of-sequence left out) with
  respect to every parameter, one L2 norm over all of them (MIMIR and open-unlearning average the
  per-tensor norms instead). Training points sit in flat regions of the loss: small gradients.
- Privacy leakage (Shi et al. 2024, MUSE's PrivLeak, Min-K% attack): with A = 1 - AUROC,
  100 * (A_unlearned - A_retain) / A_retain. 0 is ideal; a target that remembers sits near -100;
  positive means over-unlearned.

What each costs, per evaluated model (N = forget + holdout answers, B = eval.batch_size):
- `mia` (LOSS, zlib, Min-K%, Min-K%++) and `privacy_leakage`: no pass of their own; they read the
  answers' token scores, which the context computes once for every family (of the splits they read,
  only the holdout answers are not read by the TOFU families too: about 2 * ceil(N_holdout / B) forward
  passes with shared prompts, which `perplexity` shares).
- `mia_ref`: no pass at all on the evaluated model beyond those LOSS scores; the reference's LOSS scores
  are computed once per prepared model set, with the baseline statistics (`base_mia_loss`: one load of
  the base and two forward passes per batch of B answers), and every trial reads them from `ctx.baselines`.
- `mia_gradnorm`: N forward passes (one answer each, prompt included) and N backward passes, and a
  gradient the size of the model in memory while it runs; no optimizer step, the parameters and
  their `.grad` are left as they were. The retain model's GradNorm AUROC costs as much again, once per
  prepared model set. A separate family, so `eval.metrics` can leave it out.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.core.encoding import IGNORE_INDEX, Encoded, collate, encode_many

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


# The baseline statistics' key of the reference model's LOSS scores: {split: [score of each answer]}, the
# records of the data's forget and holdout splits in order (bench.models.baseline_stats).
BASE_LOSSES = "base_mia_loss"
NO_REFERENCE = ("needs each forget and holdout answer's loss under the model the target was fine-tuned from (a zoo "
                "model's pre-trained base, or the hub model itself), which the baseline statistics hold; there is "
                "none for a target used as it is (prepare.target: as_is: what it was trained from is unknown), nor "
                "in `bench eval`")


def reference_score(t: TokenScores, reference_loss: float) -> float:
    """-(meanNLL_model - meanNLL_ref): the model's LOSS score less the reference's on the same answer."""
    return loss_score(t) - reference_loss


def reference_scores(ctx: EvalContext, split: str) -> list[float]:
    """The reference-model score of every answer of a split, the reference's losses from `ctx.baselines`."""
    scores = ctx.token_scores(split, "answer")  # first: a split the context lacks says so (MissingSplit)
    reference = (ctx.baselines.get(BASE_LOSSES) or {}).get(split)
    if reference is None:
        raise MetricUnavailable(NO_REFERENCE)
    if len(reference) != len(scores):
        raise MetricUnavailable(f"the reference model's losses cover {len(reference)} {split} answers, this "
                                f"evaluation has {len(scores)}: they are not of the same records")
    return [reference_score(t, float(r)) for t, r in zip(scores, reference)]


@METRICS.register("mia_ref", outputs={"mia_ref_auc": False}, version=1, reads=READS)
def mia_ref(ctx: EvalContext) -> dict[str, float]:
    """Reference-model membership-inference AUROC: the loss calibrated by the model the target was fine-tuned from."""
    return {"mia_ref_auc": auroc(reference_scores(ctx, MEMBERS), reference_scores(ctx, NON_MEMBERS))}


def answer_nll(logits: torch.Tensor, labels: torch.Tensor, eos_token_id: int | None) -> torch.Tensor:
    """Mean NLL of one sequence's answer tokens, end-of-sequence left out (as `TokenScores.content`).

    Args:
        logits: (T, V), position t predicting token t + 1.
        labels: (T,) the input ids on answer tokens, IGNORE_INDEX elsewhere.
    """
    targets = labels[1:]
    logp = torch.log_softmax(logits[:-1].float(), dim=-1)
    answer = (targets != IGNORE_INDEX).nonzero().squeeze(-1)  # (n,) positions of the answer tokens
    if len(answer) > 1 and eos_token_id is not None and int(targets[answer[-1]]) == eos_token_id:
        answer = answer[:-1]
    return -logp[answer, targets[answer]].mean()


def gradient_norms(model, encoded: list[Encoded], pad_token_id: int, eos_token_id: int | None) -> list[float]:
    """||grad_theta NLL(x)||_2 of each sequence: one forward and one backward pass each, batch of one.

    The gradient is taken with respect to every parameter (one L2 norm over all of them), frozen ones
    included, so models unlearned with different parameters frozen compare; `torch.autograd.grad`
    returns it without writing any `.grad`, and nothing steps: the parameters, their `.grad` and their
    `requires_grad` are left as they were. The model runs, and is left, in eval mode (no dropout).
    """
    params = list(model.parameters())
    frozen = [p for p in params if not p.requires_grad]
    device = params[0].device
    model.eval()
    out = []
    try:
        for p in frozen:
            p.requires_grad_(True)
        with torch.inference_mode(False), torch.enable_grad():
            for e in encoded:
                batch = collate([e], pad_token_id)
                logits = model(input_ids=batch["input_ids"].to(device),
                               attention_mask=batch["attention_mask"].to(device)).logits[0]
                nll = answer_nll(logits, batch["labels"][0].to(device), eos_token_id)
                grads = torch.autograd.grad(nll, params, allow_unused=True)
                norms = [torch.linalg.vector_norm(g.float()) for g in grads if g is not None]  # per tensor
                out.append(float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0)
    finally:
        for p in frozen:
            p.requires_grad_(False)
    return out


def gradnorm_scores(ctx: EvalContext, split: str) -> list[float]:
    """-||grad NLL|| of every answer of a split (cached on the context; counted in its passes)."""

    def compute():
        records = ctx.records(split)
        tok = ctx.tokenizer
        encoded = encode_many(tok, [(r["question"], r["answer"]) for r in records], ctx.config.max_length)
        norms = gradient_norms(ctx.model, encoded, tok.pad_token_id, tok.eos_token_id)
        ctx.forward_passes += len(encoded)
        ctx.backward_passes += len(encoded)
        ctx.scored_sequences += len(encoded)
        return [-n for n in norms]

    return ctx.cached(("mia_gradnorm", split), compute)


def gradnorm_auroc(ctx: EvalContext) -> float:
    return auroc(gradnorm_scores(ctx, MEMBERS), gradnorm_scores(ctx, NON_MEMBERS))


# No `reads`: GradNorm runs its own forward passes (with gradients), not the context's shared scores. Opt-in
# (default=False): a backward pass per answer is more than the rest of an evaluation costs on a real model.
@METRICS.register("mia_gradnorm", outputs={"mia_gradnorm_auc": False}, version=1, default=False)
def mia_gradnorm(ctx: EvalContext) -> dict[str, float]:
    """GradNorm membership-inference AUROC: minus the norm of each answer's loss gradient (a backward pass each)."""
    return {"mia_gradnorm_auc": gradnorm_auroc(ctx)}
