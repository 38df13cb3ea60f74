"""Attacks on a trial's model, each followed by the forget-side metrics again: `attack.<variant>.<metric>`.

Every variant (bench.config.attacks) runs on the model as evaluated, which it never modifies; the
forget metrics are measured through the same evaluation context and formulas as the trial's own:
probability, ROUGE, truth ratio, and forget quality (KS against the retain model's truth ratios on
the same questions). Model attacks also get **recovery**: the share of the target's forget
probability, lost by unlearning, that the attack brings back on the questions it is evaluated on,
(p_attacked − p_before) / (p_target − p_before) (0: none, 1: all; undefined, NaN, where unlearning took
less than 1% of the target's probability away, the target itself included).
Record attacks (other wordings of the questions) get probability, ROUGE and truth ratio; forget
quality and recovery would need the retain model and the target on the same rewritten questions,
which the reference rows report.
"""

from __future__ import annotations

import time

import numpy as np

FORGET_METRICS = ("forget_prob", "forget_rouge", "forget_truth_ratio", "forget_quality", "recovery")
# Unlearning that took less than this share of the target's forget probability has nothing to recover:
# the ratio would divide by noise, so recovery is left undefined (NaN).
MIN_LOSS_SHARE = 0.01


def attack_columns(variants) -> list[str]:
    """The row columns of a suite's attack variants, in order."""
    return [f"attack.{v['label']}.{m}" for v in variants for m in FORGET_METRICS]


def _question_index(records: list[dict]) -> dict[str, int]:
    return {r["question"]: i for i, r in enumerate(records)}


def forget_side(model, tokenizer, records: list[dict], eval_cfg, rows: list[int] | None, reference: dict,
                before_prob: np.ndarray | None) -> dict[str, float]:
    """The forget metrics of `model` on `records`; `rows`: their indices in the forget split when they
    are forget questions as asked there (None: rewritten questions, no forget quality or recovery)."""
    from metrics import EvalContext
    from metrics.tofu import (
        forget_truth_ratio_stat,
        ks_forget_quality,
        split_probability,
        split_rouge,
        split_truth_ratio,
    )

    ctx = EvalContext(model, tokenizer, {"forget": records}, eval_cfg)
    ratios = split_truth_ratio(ctx, "forget")
    out = {"forget_prob": split_probability(ctx, "forget"), "forget_rouge": split_rouge(ctx, "forget"),
           "forget_truth_ratio": forget_truth_ratio_stat(ratios)}
    if rows is None:
        return out
    retain_ratios = reference.get("retain_forget_truth_ratio")
    if retain_ratios is not None:
        out["forget_quality"] = ks_forget_quality(ratios, np.asarray(retain_ratios)[rows])
    target = reference.get("target_forget_prob")
    if target is not None and before_prob is not None:
        # Means over the same questions of P̄(answer): attacked (forget_prob), before, and the target's.
        target_p, before_p = float(np.mean(np.asarray(target)[rows])), float(before_prob[rows].mean())
        gap = target_p - before_p
        out["recovery"] = (out["forget_prob"] - before_p) / gap if gap > MIN_LOSS_SHARE * target_p else float("nan")
    return out


def run_attacks(model, tokenizer, spec, splits: dict, reference: dict) -> tuple[dict, dict[str, str]]:
    """Every attack variant of `spec` on `model`: the row's attack columns and `attack_s`, and why a
    variant's columns are missing (its data lacks what it reads, e.g. `paraphrased_question`)."""
    from attacks import AttackContext, MissingKeyError, run_attack
    from metrics import EvalContext

    if not spec.attacks:
        return {}, {}
    started = time.perf_counter()
    forget = splits["forget"]
    index = _question_index(forget)
    ctx = EvalContext(model, tokenizer, {"forget": forget}, spec.eval)
    before = np.exp(ctx.mean_logprob("forget", "answer"))  # the model as evaluated, per forget question
    attack_ctx = AttackContext(tokenizer=tokenizer, splits={k: splits[k] for k in ("forget", "retain") if splits.get(k)},
                               seed=spec.seed, max_length=spec.prepare.max_length,
                               mixed_precision=spec.unlearn.mixed_precision)  # one setting per process (accelerate)
    out: dict = {}
    unavailable: dict[str, str] = {}
    for variant in spec.attacks:
        try:
            result = run_attack(variant["name"], model, attack_ctx, variant["settings"])
        except MissingKeyError as err:
            unavailable.update({c: f"attack {variant['name']}: {err}" for c in attack_columns([variant])})
            continue
        records = forget if result.forget is None else result.forget
        as_asked = all(r["question"] in index for r in records)
        rows = [index[r["question"]] for r in records] if as_asked else None
        metrics = forget_side(result.model, tokenizer, records, spec.eval, rows, reference, before)
        out.update({f"attack.{variant['label']}.{k}": v for k, v in metrics.items()})
        del result
    model.eval()
    return {**out, "attack_s": time.perf_counter() - started}, unavailable
