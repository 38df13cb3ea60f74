"""Relearning attack: fine-tune the unlearned model briefly, then ask the questions it never saw.

Hu et al. 2024, "Jogging the Memory of Unlearned LLMs Through Targeted Relearning Attacks", and
Lynch et al. 2024, "Eight Methods to Evaluate Robust Unlearning in LLMs": a few steps of plain
fine-tuning on a small part of the forget set bring back answers to the *other* forget questions
when the knowledge was suppressed rather than removed. A model that never learned the forget set
gains only what the relearned questions themselves teach. The evaluation therefore uses only the
questions held out of relearning. The retain variant relearns on retain questions instead, as a
control: how much of the forget set returns under any fine-tuning at all?

The fine-tuning is the harness's own loop (`bench.training.loop.train`) with the answer-token NLL the
methods use (`methods.losses.mean_nll`), so relearning and unlearning steps are the same kind of step.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from bench.training.batches import aligned_stream
from bench.core.encoding import encode_many
from bench.training.loop import OptimConfig, TrainResult, make_accelerator, train
from methods.losses import mean_nll

from bench.core.errors import FieldError

from .base import ATTACKS, AttackContext, AttackResult, MissingKeyError

DEFAULT_FRACTION = 0.1
# For the tiny scratch models (lr 3e-3 to memorise, 3e-4 to unlearn); a hub model of ~1B parameters
# wants ~1e-5 (Hu et al. relearn with 1e-5 to 1e-6).
DEFAULT_LR = 1e-3
DEFAULT_BATCH_SIZE = 8
DEFAULT_STEPS = 10
STEPS_GRID = (10, 25)


def split_for_relearning(records: Sequence[dict], fraction: float = DEFAULT_FRACTION,
                         seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Splits records into the questions relearned on and the questions evaluated afterwards.

    round(fraction * n) records (Python's round, half to even), kept between 1 and n - 1 so that
    both parts are non-empty, are drawn by `random.Random(seed)`; the rest are for evaluation. The
    two parts are disjoint, together hold every record, and each keeps the original order. Records
    are shallow copies: the input is never changed.

    Args:
        records: the forget records (at least 2).
        fraction: share of the records to relearn on, strictly between 0 and 1.
        seed: the same seed draws the same questions.

    Returns:
        (train_records, eval_records).
    """
    n = len(records)
    if n < 2:
        raise ValueError(f"split_for_relearning needs at least 2 records (one to relearn, one to evaluate), got {n}")
    if not 0 < fraction < 1:
        raise FieldError("fraction", "a number in (0, 1)", fraction)
    k = min(n - 1, max(1, round(fraction * n)))
    chosen = set(random.Random(seed).sample(range(n), k))
    train_records = [dict(r) for i, r in enumerate(records) if i in chosen]
    eval_records = [dict(r) for i, r in enumerate(records) if i not in chosen]
    return train_records, eval_records


def relearn_with_stats(model: torch.nn.Module, tokenizer, records: Sequence[dict], steps: int = DEFAULT_STEPS,
                       lr: float = DEFAULT_LR, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0,
                       max_length: int = 256, mixed_precision: str = "no") -> tuple[torch.nn.Module, TrainResult]:
    """`relearn`, also returning the loop's `TrainResult` (losses, tokens, seconds)."""
    if not records:
        raise ValueError("relearn needs at least one record to fine-tune on")
    missing = [key for key in ("question", "answer") if any(key not in r for r in records)]
    if missing:
        raise MissingKeyError(f"relearn records need the keys 'question' and 'answer'; "
                              f"some lack {', '.join(map(repr, missing))}")
    attacked = copy.deepcopy(model)
    attacked.requires_grad_(True)  # an attacker fine-tunes every weight, whatever the method froze
    encoded = encode_many(tokenizer, [(r["question"], r["answer"]) for r in records], max_length)
    batches = aligned_stream({"relearn": encoded}, batch_size, tokenizer.pad_token_id, seed)
    accelerator = make_accelerator(mixed_precision)
    attacked.to(accelerator.device)

    def loss_fn(m, batch, step):
        nll = mean_nll(m, batch["relearn"])  # answer tokens (and EOS) only, token-weighted
        return nll, {"relearn_nll": float(nll.detach())}

    result = train(attacked, loss_fn, batches, OptimConfig(steps=steps, lr=lr), accelerator)
    return attacked, result


def relearn(model: torch.nn.Module, tokenizer, records: Sequence[dict], steps: int = DEFAULT_STEPS,
            lr: float = DEFAULT_LR, batch_size: int = DEFAULT_BATCH_SIZE, seed: int = 0,
            max_length: int = 256, mixed_precision: str = "no") -> torch.nn.Module:
    """A copy of `model` fine-tuned on `records` with plain NLL on the answer tokens; `model` is untouched.

    AdamW at a constant `lr` for `steps` optimizer steps, gradient clipping at 1.0, batches of
    `batch_size` records in a seeded order (`bench.training.batches.aligned_stream`). Pass forget records for
    the relearning attack, retain records for its control; never the questions to be evaluated.

    Args:
        model: the unlearned model (not modified).
        tokenizer: its tokenizer (needs a pad token).
        records: dicts with `question` and `answer`.
        steps: optimizer steps (10 and 25 in the default grid).
        lr: learning rate; the default 1e-3 suits the tiny scratch models, use ~1e-5 for hub models.
        batch_size: records per step.
        seed: the batch order.
        max_length: sequences are cut to this many tokens.
        mixed_precision: autocast of the forward pass ("no", "bf16", "fp16"). accelerate keeps one
            process-wide state: once a process has made an Accelerator with one value, another value
            raises, so inside a trial pass the trial's own `unlearn.mixed_precision`.
    """
    return relearn_with_stats(model, tokenizer, records, steps, lr, batch_size, seed, max_length, mixed_precision)[0]


@dataclass(frozen=True)
class RelearnSettings:
    steps: int = DEFAULT_STEPS  # optimizer steps of fine-tuning
    lr: float = DEFAULT_LR  # for the tiny scratch models; ~1e-5 for hub models
    batch_size: int = DEFAULT_BATCH_SIZE
    fraction: float = DEFAULT_FRACTION  # share of the forget questions relearned on (and, for the
    # retain control, the number of retain questions: as many as the forget variant would use)

    def __post_init__(self):
        for key, kind in (("steps", int), ("batch_size", int), ("lr", (int, float)), ("fraction", (int, float))):
            value = getattr(self, key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise FieldError(key, "an integer" if kind is int else "a number", value)
        for key in ("steps", "batch_size"):
            if getattr(self, key) < 1:
                raise FieldError(key, "an integer >= 1", getattr(self, key))
        if self.lr <= 0:
            raise FieldError("lr", "a number > 0", self.lr)
        if not 0 < self.fraction < 1:
            raise FieldError("fraction", "a number in (0, 1)", self.fraction)


def _info(train_records: list[dict], eval_records: list[dict], result: TrainResult) -> dict:
    return {"relearn_questions": len(train_records), "eval_questions": len(eval_records),
            "relearn_s": result.seconds, "relearn_tokens": result.tokens,
            "relearn_final_nll": result.losses[-1] if result.losses else float("nan")}


@ATTACKS.register("relearn", settings=RelearnSettings, kind="model", needs={"forget"}, grid={"steps": STEPS_GRID},
                  description="Fine-tune on a few forget questions, evaluate on the other forget questions.")
def relearn_forget(model: torch.nn.Module, settings: RelearnSettings, ctx: AttackContext) -> AttackResult:
    """Relearns on `fraction` of the forget questions (drawn by the seed); evaluates on the rest."""
    train_records, eval_records = split_for_relearning(ctx.splits["forget"], settings.fraction, ctx.seed)
    attacked, result = relearn_with_stats(model, ctx.tokenizer, train_records, settings.steps, settings.lr,
                                          settings.batch_size, ctx.seed, ctx.max_length, ctx.mixed_precision)
    return AttackResult(attacked, eval_records, _info(train_records, eval_records, result))


# The control runs at the longer budget only: it bounds what the longest relearning teaches by itself.
@ATTACKS.register("relearn_retain", settings=RelearnSettings, kind="model", needs={"forget", "retain"},
                  grid={"steps": STEPS_GRID[-1:]},
                  description="Control: fine-tune on as many retain questions, evaluate on relearn's forget questions.")
def relearn_retain(model: torch.nn.Module, settings: RelearnSettings, ctx: AttackContext) -> AttackResult:
    """Relearns on as many retain questions as `relearn` takes forget questions; evaluates on the forget
    questions `relearn` evaluates (the same seed and fraction hold out the same ones).

    The same number of questions, the same steps and the same evaluated questions as the forget variant,
    so the two compare directly: what the forget variant recovers beyond this control is knowledge the
    unlearning only hid.
    """
    forget, retain = ctx.splits["forget"], ctx.splits["retain"]
    k = min(len(retain), max(1, round(settings.fraction * len(forget))))
    chosen = set(random.Random(ctx.seed).sample(range(len(retain)), k))
    train_records = [dict(r) for i, r in enumerate(retain) if i in chosen]
    attacked, result = relearn_with_stats(model, ctx.tokenizer, train_records, settings.steps, settings.lr,
                                          settings.batch_size, ctx.seed, ctx.max_length, ctx.mixed_precision)
    eval_records = split_for_relearning(forget, settings.fraction, ctx.seed)[1]
    return AttackResult(attacked, eval_records, _info(train_records, eval_records, result))
