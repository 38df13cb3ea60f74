"""Memorization metrics: perplexity, exact memorization, extraction strength, and MUSE's verbatim and
knowledge memorization.

- Exact memorization (Tirumala et al. 2022, "Memorization without overfitting"): the share of answer
  tokens that are the model's greedy next token under teacher forcing.
- Extraction strength (Carlini et al. 2021, "Extracting training data from large language models"):
  1 - k*/|a|, k* the smallest k such that the teacher-forced greedy predictions of answer tokens
  k..|a| all match (0 when even the last token is wrong).
- Verbatim and knowledge memorization (Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation
  for Language Models"): ROUGE-L F1 of the greedy continuation of a forget text's prefix against
  the true continuation, and of the greedy answer against the true answer on QA.

Every token-level quantity comes from the context's one scoring pass; generations are the cached
greedy answers the TOFU ROUGE already uses, plus one batched continuation of the forget texts.
"""

from __future__ import annotations

import numpy as np

from .base import METRICS, Output, per_split
from .context import EvalContext
from .tofu import rouge_l

PERPLEXITY_SPLITS = ("forget", "retain", "holdout", "real_authors", "world_facts", "general_text")
QA_SPLITS = ("forget", "retain")
TEXT_SPLIT = "forget_bio"

def rouge_l_f1(reference: str, generation: str) -> float:
    """ROUGE-L F1 of a generation against the reference, as MUSE reports it."""
    return rouge_l(reference, generation).fmeasure


def perplexity(token_logps: list[np.ndarray]) -> float:
    """exp of the mean answer-token NLL over all the split's answer tokens (token-weighted)."""
    return float(np.exp(-np.concatenate(token_logps).mean()))


def extraction_strength(hits: np.ndarray) -> float:
    """1 - k*/n with k* the start of the longest all-correct suffix: the length of that suffix over n."""
    misses = np.flatnonzero(~np.asarray(hits, dtype=bool))
    suffix = len(hits) if len(misses) == 0 else len(hits) - 1 - misses[-1]
    return suffix / len(hits)


# Fluency on general text (data kind known_capitals has it): shown where the rows have it.
SHOWN_PERPLEXITY = {"general_text": Output(False, header="general text ppl", axis="perplexity of general text",
                                           fmt="{:.2f}", leaderboard=25, every_setting=25)}


@METRICS.register("perplexity", outputs={f"{s}_ppl": SHOWN_PERPLEXITY.get(s, s == "forget") for s in PERPLEXITY_SPLITS},
                  version=1,
                  reads={s: ("answer",) for s in PERPLEXITY_SPLITS})
def perplexity_family(ctx: EvalContext) -> dict[str, float]:
    """Answer perplexity per split: exp of the token-weighted mean answer NLL (forget, retain, holdout, general
    knowledge, and general text: raw text, where every token is an answer token)."""
    return per_split(ctx, PERPLEXITY_SPLITS, "{split}_ppl", lambda s: perplexity(ctx.token_logprobs(s, "answer")))


@METRICS.register("exact_memorization", outputs={f"{s}_exact_mem": s != "forget" for s in QA_SPLITS}, version=1,
                  reads={s: ("answer",) for s in QA_SPLITS})
def exact_memorization(ctx: EvalContext) -> dict[str, float]:
    """Share of answer tokens that are the greedy next token under teacher forcing (per question, then mean)."""
    return per_split(ctx, QA_SPLITS, "{split}_exact_mem",
                     lambda s: float(np.mean([t.hit.mean() for t in ctx.token_scores(s)])))


@METRICS.register("extraction_strength",
                  outputs={f"{s}_extraction_strength": s != "forget" for s in QA_SPLITS}, version=1,
                  reads={s: ("answer",) for s in QA_SPLITS})
def extraction_strength_family(ctx: EvalContext) -> dict[str, float]:
    """1 - k*/|a|: share of the answer the model completes greedily from the smallest prefix (Carlini et al. 2021)."""
    return per_split(ctx, QA_SPLITS, "{split}_extraction_strength",
                     lambda s: float(np.mean([extraction_strength(t.hit) for t in ctx.token_scores(s)])))


@METRICS.register("verbatim_memorization", outputs={"forget_verbmem": Output(
    False, header="forget VerbMem", axis="forget VerbMem (ROUGE-L F1, 0–1)", every_setting=70)}, version=1)
def verbatim_memorization(ctx: EvalContext) -> dict[str, float]:
    """MUSE VerbMem: ROUGE-L F1 of the greedy continuation of each forget text's prefix vs the true continuation."""
    return {"forget_verbmem": float(np.mean([rouge_l_f1(truth, gen) for gen, truth in ctx.continuations(TEXT_SPLIT)]))}


@METRICS.register("knowledge_memorization", outputs={f"{s}_knowmem": s != "forget" for s in QA_SPLITS}, version=1,
                  reads={s: ("answer",) for s in QA_SPLITS})
def knowledge_memorization(ctx: EvalContext) -> dict[str, float]:
    """MUSE KnowMem: ROUGE-L F1 of the greedy answer vs the true answer on forget QA (retain: MUSE's utility)."""
    return per_split(ctx, QA_SPLITS, "{split}_knowmem", lambda s: float(np.mean(
        [rouge_l_f1(r["answer"], g) for r, g in zip(ctx.records(s), ctx.generations(s))])))
