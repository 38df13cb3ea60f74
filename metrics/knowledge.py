"""Knowledge of facts a pretrained model already had: keyword accuracy and fluency on general text.

The shape of RWKU (Jin et al. 2024, "RWKU: Benchmarking Real-World Knowledge Unlearning for Large
Language Models"): the model knew the forget facts before anyone could leave them out, so no retain
model exists to compare with. What is defined is whether the model still answers: a question counts as
answered when its greedy answer contains the record's `keyword` (the fact itself, such as the capital's
name; case ignored), on the forget questions and on their neighbours (the retain split: facts of the
same kind that must survive). Fluency is the perplexity of general text (split `general_text`, raw
text records), in the perplexity family.
"""

from __future__ import annotations

import numpy as np

from .base import METRICS, MetricUnavailable, Output, per_split
from .context import EvalContext

KEYWORD = "keyword"  # the record field naming what a correct answer must contain
KEYWORD_SPLITS = ("forget", "retain")


def keyword_hit(keyword: str, generation: str) -> bool:
    """Whether the generation names the keyword (case and surrounding whitespace ignored)."""
    return keyword.strip().lower() in generation.lower()


def _keyword_accuracy(ctx: EvalContext, split: str) -> float:
    records = ctx.records(split)
    missing = sum(1 for r in records if not r.get(KEYWORD))
    if missing:
        raise MetricUnavailable(f"needs a {KEYWORD!r} on every question; {missing} of {len(records)} {split} "
                                "questions have none (data kind known_capitals has them)")
    return float(np.mean([keyword_hit(r[KEYWORD], g) for r, g in zip(records, ctx.generations(split))]))


@METRICS.register("keyword_accuracy", outputs={
    "forget_keyword_acc": Output(False, header="forget accuracy", axis="forget keyword accuracy (share, 0–1)",
                                 leaderboard=11, every_setting=11),
    "retain_keyword_acc": Output(True, header="neighbour accuracy", axis="retain (neighbour) keyword accuracy (share, 0–1)",
                                 leaderboard=21, every_setting=21)},
    version=1, reads={s: ("answer",) for s in KEYWORD_SPLITS})  # generations reuse teacher forcing
def keyword_accuracy(ctx: EvalContext) -> dict[str, float]:
    """Share of questions whose greedy answer contains the record's keyword (RWKU-style), forget and retain."""
    if not any(r.get(KEYWORD) for s in KEYWORD_SPLITS if ctx.has(s) for r in ctx.records(s)):
        raise MetricUnavailable(f"the questions carry no {KEYWORD!r} (the fact a correct answer names)")
    return per_split(ctx, KEYWORD_SPLITS, "{split}_keyword_acc", lambda s: _keyword_accuracy(ctx, s))
