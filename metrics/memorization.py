"""Memorization metrics: perplexity, exact memorization, extraction strength, and MUSE's verbatim and
knowledge memorization.

- Exact memorization (Tirumala et al. 2022, "Memorization without overfitting"): the share of answer
  tokens that are the model's greedy next token under teacher forcing.
- Extraction strength (Carlini et al. 2021, "Extracting training data from large language models"):
  1 - k*/n, k* the smallest k such that the teacher-forced greedy predictions of answer tokens k..n
  all match: the share of the answer the model completes verbatim from the shortest prefix. The
  setting `eval.extraction_strength` picks one of two definitions:

  - `harness` (the default): the n answer tokens include end-of-sequence where the answer has it,
    and an answer whose last token is wrong scores 0 (k* = n).
  - `open_unlearning`: that framework's (locuslab/open-unlearning, src/evals/metrics/memorization.py,
    `extraction_strength`): end-of-sequence is left out (`tokenwise_vocab_logprobs` drops each
    answer's last labelled position, the EOS its data always appends), and k is tried 0..n-1 only,
    so when no suffix matches the loop ends at k = n-1 and the answer scores 1/n, not 0. Measured on
    the same models, it reads 6-13% lower than ours.

  We default to ours because end-of-sequence is part of what the model must produce to reproduce
  the answer verbatim (an answer that runs on past its end has not been reproduced), and because
  1 - k*/n with nothing extracted is 0: 1/n credits a model that got not even the last token right,
  by an amount set by the answer's length alone (a wrong one-token answer scores 1/1, full extraction),
  and scores it as one that got only the last token right. Hand-worked cases, 3 text tokens, the greedy hit of each (then end-of-sequence, if any):

      hits                 harness                 open_unlearning
      1 1 1, EOS hit       1                       1
      0 1 1, EOS hit       3/4 (k* = 1 of 4)       2/3 (k = 1 of 3)
      1 1 1, EOS miss      0 (the last is wrong)   1 (EOS not counted)
      1 1 0, EOS hit       1/4 (EOS alone)         1/3 (no suffix: k = n-1, a wrong token)
      1 1 0, cut (no EOS)  0                       1/3

- Verbatim and knowledge memorization (Shi et al. 2024, "MUSE: Machine Unlearning Six-Way Evaluation
  for Language Models"): ROUGE-L F1 of the greedy continuation of a forget text's prefix against
  the true continuation, and of the greedy answer against the true answer on QA.

Every token-level quantity comes from the context's one scoring pass; generations are the cached
greedy answers the TOFU ROUGE already uses, plus one batched continuation of the forget texts.
"""

from __future__ import annotations

import numpy as np

from bench.core.names import KNOWMEM_SPLITS, VERBMEM_SPLIT

from .base import METRICS, Output, per_split
from .context import EvalContext, TokenScores
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


def open_unlearning_extraction_strength(hits: np.ndarray) -> float:
    """open-unlearning's 1 - k/n over the text tokens: k the smallest of 0..n-1 whose suffix all matches,
    n-1 when none does (so no match scores 1/n); an answer with no text tokens scores 0, as there."""
    n = len(hits)
    if n == 0:
        return 0.0
    misses = np.flatnonzero(~np.asarray(hits, dtype=bool))
    k = 0 if len(misses) == 0 else min(int(misses[-1]) + 1, n - 1)
    return 1 - k / n


def text_hits(t: TokenScores) -> np.ndarray:
    """The hits of an answer's text tokens: end-of-sequence left out where present, even when alone."""
    return t.hit[: len(t.hit) - 1] if t.ends_with_eos else t.hit


# eval.extraction_strength -> one answer's extraction strength (the names of bench.core.names.EXTRACTION_STRENGTHS).
EXTRACTION_STRENGTH = {
    "harness": lambda t: extraction_strength(t.hit),
    "open_unlearning": lambda t: open_unlearning_extraction_strength(text_hits(t)),
}


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
    """1 - k*/n: share of the answer the model completes greedily from the smallest prefix (Carlini et al. 2021),
    as `eval.extraction_strength` defines it; a definition other than the default is named in the row's notes."""
    definition = ctx.config.extraction_strength
    score = EXTRACTION_STRENGTH[definition]
    if definition != "harness":
        ctx.notes["extraction_strength"] = definition
    return per_split(ctx, QA_SPLITS, "{split}_extraction_strength",
                     lambda s: float(np.mean([score(t) for t in ctx.token_scores(s)])))


@METRICS.register("verbatim_memorization", outputs={"forget_verbmem": Output(
    False, header="forget VerbMem", axis="forget VerbMem (ROUGE-L F1, 0–1)", every_setting=70)}, version=1)
def verbatim_memorization(ctx: EvalContext) -> dict[str, float]:
    """MUSE VerbMem: ROUGE-L F1 of the greedy continuation of each forget text's prefix vs the true continuation
    (the texts of `forget_verbmem` where the data has them, MUSE's shape; else the forget biographies)."""
    split = VERBMEM_SPLIT if ctx.has(VERBMEM_SPLIT) else TEXT_SPLIT
    return {"forget_verbmem": float(np.mean([rouge_l_f1(truth, gen) for gen, truth in ctx.continuations(split)]))}


def knowmem_split(ctx: EvalContext, split: str) -> str:
    """The questions knowledge memorization asks for `split`: the data's knowledge questions on its texts
    (`forget_qa`, `retain_qa`: MUSE's shape, where forget and retain are the texts) or the split itself."""
    return KNOWMEM_SPLITS[split] if ctx.has(KNOWMEM_SPLITS[split]) else split


@METRICS.register("knowledge_memorization", outputs={
    "forget_knowmem": Output(False, header="forget KnowMem", axis="forget KnowMem (ROUGE-L F1, 0–1)", every_setting=71),
    "retain_knowmem": Output(True, header="retain KnowMem", axis="retain KnowMem (ROUGE-L F1, 0–1)", every_setting=72)},
    version=1, reads={q: ("answer",) for s in QA_SPLITS for q in (s, KNOWMEM_SPLITS[s])})
def knowledge_memorization(ctx: EvalContext) -> dict[str, float]:
    """MUSE KnowMem: ROUGE-L F1 of the greedy answer vs the true answer on forget QA (retain: MUSE's utility);
    on `forget_qa` and `retain_qa` where the data has them (text corpora)."""
    def score(split: str) -> float:
        asked = knowmem_split(ctx, split)
        return float(np.mean([rouge_l_f1(r["answer"], g) for r, g in zip(ctx.records(asked), ctx.generations(asked))]))

    return per_split(ctx, QA_SPLITS, "{split}_knowmem", score)
