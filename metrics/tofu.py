"""TOFU's metrics: probability, ROUGE, truth ratio, forget quality and model utility.

Maini et al. 2024, "TOFU: A Task of Fictitious Unlearning for LLMs". Every quantity is
length-normalised as in the paper: P̄(a) = p(a|q)^(1/|a|) = exp(mean answer-token log-prob).
Splits read: `forget`, `retain`, `real_authors`, `world_facts`.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.stats import hmean, ks_2samp

from bench.core.names import VALIDATION_SPLIT

from .base import METRICS, MetricUnavailable, Output, per_split
from .context import PERTURBED, EvalContext

QA_SPLITS = ("forget", "retain")
GENERAL_SPLITS = ("real_authors", "world_facts")
UTILITY_SPLITS = ("retain",) + GENERAL_SPLITS
# Questions about the fictitious authors carry paraphrased answers: their truth ratio is taken against the
# paraphrase. The validation authors are such questions, scored for selection by the trial, not a family.
AUTHOR_SPLITS = QA_SPLITS + (VALIDATION_SPLIT,)
# What the model was asked to forget: its truth ratio reads min(R, 1/R), not how well it keeps the truth.
FORGET_SIDE_SPLITS = ("forget", VALIDATION_SPLIT)

@functools.lru_cache(maxsize=1)
def _rouge_l_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


@functools.lru_cache(maxsize=65536)
def rouge_l(reference: str, generation: str):
    """ROUGE-L of a generation against a reference (rouge-score, Porter stemmer): precision, recall, fmeasure.

    Memoised: TOFU's ROUGE (recall) and MUSE's knowledge memorization (F1) score the same pairs.
    """
    return _rouge_l_scorer().score(reference, generation)["rougeL"]


def rouge_l_recall(answer: str, generation: str) -> float:
    """ROUGE-L recall of a generation against the true answer, as TOFU reports it."""
    return rouge_l(answer, generation).recall


def normalized_option_prob(answer_mlp: np.ndarray, perturbed_mlp: np.ndarray) -> np.ndarray:
    """P̄(a) / (P̄(a) + Σ P̄(a')) per question, from mean token log-probs (N,) and (N, K)."""
    p_true = np.exp(answer_mlp)
    return p_true / (p_true + np.exp(perturbed_mlp).sum(axis=1))


def truth_ratio(correct_mlp: np.ndarray, perturbed_mlp: np.ndarray) -> np.ndarray:
    """R = P_wrong / P_correct per question.

    P_wrong is the geometric mean of P̄ over the perturbed answers, i.e. exp of the mean of their mean
    token log-probs; P_correct is P̄ of the paraphrased (forget/retain) or original (general) answer.
    """
    return np.exp(perturbed_mlp.mean(axis=1) - correct_mlp)


def forget_truth_ratio_stat(r: np.ndarray) -> float:
    """Forget split: mean of min(R, 1/R) (1 = the model cannot tell right from wrong)."""
    return float(np.minimum(r, 1.0 / r).mean())


def kept_truth_ratio_stat(r: np.ndarray) -> float:
    """Retain and general splits: mean of max(0, 1 - R) (1 = always prefers the truth)."""
    return float(np.maximum(0.0, 1.0 - r).mean())


def ks_forget_quality(r_unlearned: np.ndarray, r_retain: np.ndarray) -> float:
    """Two-sample KS test p-value between two models' raw forget truth ratios."""
    return float(ks_2samp(r_unlearned, r_retain).pvalue)


def harmonic_mean(values: list[float]) -> float:
    """Harmonic mean, 0 when any value is 0 (a collapsed component zeroes utility)."""
    arr = np.asarray(values, dtype=np.float64)
    return 0.0 if (arr <= 0).any() else float(hmean(arr))


def tofu_fields(split: str) -> tuple[str, ...]:
    """The answer forms TOFU scores on a split."""
    return ("answer", "paraphrased_answer", PERTURBED) if split in AUTHOR_SPLITS else ("answer", PERTURBED)


def tofu_reads(splits) -> dict[str, tuple[str, ...]]:
    return {s: tofu_fields(s) for s in splits}


def score_split(ctx: EvalContext, split: str) -> None:
    """Scores every answer form TOFU reads on a split in one sweep (the prompt runs once per question); raw
    text (MUSE's shape) has its answer only."""
    present = ctx.records(split)[0]
    ctx.score(split, [f for f in tofu_fields(split) if f in present])


def split_truth_ratio(ctx: EvalContext, split: str) -> np.ndarray:
    score_split(ctx, split)
    correct_field = "paraphrased_answer" if split in AUTHOR_SPLITS else "answer"
    return truth_ratio(ctx.mean_logprob(split, correct_field), ctx.mean_logprob(split, PERTURBED))


def split_probability(ctx: EvalContext, split: str) -> float:
    score_split(ctx, split)
    if split in AUTHOR_SPLITS:
        return float(np.exp(ctx.mean_logprob(split, "answer")).mean())
    return float(normalized_option_prob(ctx.mean_logprob(split, "answer"), ctx.mean_logprob(split, PERTURBED)).mean())


def split_rouge(ctx: EvalContext, split: str) -> float:
    gens = ctx.generations(split)
    return float(np.mean([rouge_l_recall(r["answer"], g) for r, g in zip(ctx.records(split), gens)]))


def split_truth_ratio_stat(ctx: EvalContext, split: str) -> float:
    r = split_truth_ratio(ctx, split)
    return forget_truth_ratio_stat(r) if split in FORGET_SIDE_SPLITS else kept_truth_ratio_stat(r)


ALL_SPLITS = QA_SPLITS + GENERAL_SPLITS


# The leaderboard shows forget probability where it ranks on it (no retain model; bench.report.selection).
SHOWN_PROB = {"forget": Output(False, header="forget prob", axis="forget probability (mean P̄(answer), 0–1)")}


@METRICS.register("probability", outputs={f"{s}_prob": SHOWN_PROB.get(s, s != "forget") for s in ALL_SPLITS}, version=1,
                  reads=tofu_reads(ALL_SPLITS))
def probability(ctx: EvalContext) -> dict[str, float]:
    """Mean P̄(answer) on forget/retain; mean P̄(a)/(P̄(a)+ΣP̄(a')) on the general-knowledge splits."""
    return per_split(ctx, ALL_SPLITS, "{split}_prob", lambda s: split_probability(ctx, s))


# The per-split columns the report's tables show (the others declare their direction only).
SHOWN_ROUGE = {"forget": Output(False, header="forget ROUGE", axis="forget ROUGE-L recall (0–1)", leaderboard=40,
                                every_setting=30),
               "retain": Output(True, header="retain ROUGE", axis="retain ROUGE-L recall (0–1)", every_setting=60)}
SHOWN_EXACT_MATCH = {"forget": Output(False, header="forget EM", axis="forget greedy exact match (share, 0–1)",
                                      every_setting=40),
                     "retain": Output(True, header="retain EM", axis="retain greedy exact match (share, 0–1)",
                                      leaderboard=30, every_setting=50)}


@METRICS.register("rouge", outputs={f"{s}_rouge": SHOWN_ROUGE.get(s, s != "forget") for s in ALL_SPLITS}, version=1,
                  reads={s: ("answer",) for s in ALL_SPLITS})  # generations reuse teacher forcing
def rouge(ctx: EvalContext) -> dict[str, float]:
    """ROUGE-L recall of the greedy answer against the true answer, per split."""
    return per_split(ctx, ALL_SPLITS, "{split}_rouge", lambda s: split_rouge(ctx, s))


@METRICS.register("truth_ratio", outputs={f"{s}_truth_ratio": True for s in ALL_SPLITS}, version=1,
                  reads=tofu_reads(ALL_SPLITS))
def truth_ratio_family(ctx: EvalContext) -> dict[str, float]:
    """Truth ratio: mean min(R,1/R) on forget, mean max(0,1-R) elsewhere (R = P_wrong/P_correct)."""
    return per_split(ctx, ALL_SPLITS, "{split}_truth_ratio", lambda s: split_truth_ratio_stat(ctx, s))


@METRICS.register("forget_quality", outputs={"forget_quality": Output(
    True, header="forget quality", axis="forget quality (KS p-value, log scale)", scale="log", leaderboard=10,
    every_setting=10)}, version=1, reads=tofu_reads(["forget"]))
def forget_quality(ctx: EvalContext) -> dict[str, float]:
    """KS-test p-value of forget truth ratios against the retain model's (1 = indistinguishable)."""
    if "retain_forget_truth_ratio" not in ctx.baselines:
        raise MetricUnavailable("needs a retain model's forget truth ratios, and this evaluation has none "
                                "(a suite's prepare.retain_model: none, or `bench eval` without --retain-model)")
    r_retain = np.asarray(ctx.baselines["retain_forget_truth_ratio"])
    return {"forget_quality": ks_forget_quality(split_truth_ratio(ctx, "forget"), r_retain)}


@METRICS.register("model_utility", outputs={"model_utility": Output(
    True, header="model utility", axis="model utility (harmonic mean, 0–1)", leaderboard=20, every_setting=20)},
    version=1, reads=tofu_reads(UTILITY_SPLITS))
def model_utility(ctx: EvalContext) -> dict[str, float]:
    """Harmonic mean of probability, ROUGE and truth ratio on retain, real authors and world facts.

    Data without some of these splits (a user's own QA has no general-knowledge splits) gets the
    harmonic mean over the splits it has; `ctx.notes["model_utility_splits"]` names them, so a number
    over fewer splits is never read as TOFU's nine-part utility.
    """
    available = [s for s in UTILITY_SPLITS if ctx.has(s)]
    if not available:
        raise MetricUnavailable(f"needs at least one of the splits {', '.join(UTILITY_SPLITS)}")
    parts = []
    for s in available:
        parts += [split_probability(ctx, s), split_rouge(ctx, s), kept_truth_ratio_stat(split_truth_ratio(ctx, s))]
    ctx.notes["model_utility_splits"] = ", ".join(available)
    return {"model_utility": harmonic_mean(parts)}


def normalize_text(text: str) -> str:
    return " ".join(text.split()).lower()


@METRICS.register("greedy_exact_match",
                  outputs={f"{s}_greedy_exact_match": SHOWN_EXACT_MATCH.get(s, s != "forget") for s in QA_SPLITS},
                  version=1,
                  reads={s: ("answer",) for s in QA_SPLITS})
def greedy_exact_match(ctx: EvalContext) -> dict[str, float]:
    """Share of questions whose greedy answer equals the true answer (whitespace and case ignored)."""
    return per_split(ctx, QA_SPLITS, "{split}_greedy_exact_match", lambda s: float(np.mean(
        [normalize_text(g) == normalize_text(r["answer"]) for r, g in zip(ctx.records(s), ctx.generations(s))])))
