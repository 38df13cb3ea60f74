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
which the baseline rows report.
"""

from __future__ import annotations

import time

from bench.run.evaluation import FORGET_METRICS as _FORGET_SIDE, forget_probabilities, forget_side

FORGET_METRICS = _FORGET_SIDE + ("recovery",)


def attack_columns(variants) -> list[str]:
    """The row columns of a suite's attack variants, in order."""
    return [f"attack.{v['label']}.{m}" for v in variants for m in FORGET_METRICS]


def _key(record: dict) -> tuple[str, str]:
    """What identifies a forget record: its question, and its answer (a raw text's question is empty)."""
    return record["question"], record["answer"]


def run_attacks(model, tokenizer, spec, splits: dict, baselines: dict,
                evaluated=None) -> tuple[dict, dict[str, str]]:
    """Every attack variant of `spec` on `model`: the row's attack columns and `attack_s`, and why a
    variant's columns are missing (its data lacks what it reads, e.g. `paraphrased_question`).

    Args:
        evaluated: the context `model` was evaluated in (`bench.run.evaluation.Evaluation.context`),
            holding `splits["forget"]`: its scores are the "before" of recovery. None: scored here.
    """
    from attacks import AttackContext, MissingKeyError, run_attack
    from metrics import EvalContext
    from metrics.context import has_perturbed_answers

    if not spec.attacks:
        return {}, {}
    started = time.perf_counter()
    forget = splits["forget"]
    index = {_key(r): i for i, r in enumerate(forget)}  # raw text: every question is empty, the text tells them apart
    if evaluated is None or evaluated.model is not model or evaluated.splits.get("forget") is not forget:
        evaluated = EvalContext(model, tokenizer, {"forget": forget}, spec.eval)
    before = forget_probabilities(evaluated)  # the model as evaluated, per forget question
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
        ctx = EvalContext(result.model, tokenizer, {"forget": records}, spec.eval)
        if all(_key(r) in index for r in records):  # forget questions as asked: comparable to the baselines' statistics
            rows = [index[_key(r)] for r in records]
            metrics = forget_side(ctx, "forget", baselines.get("retain_forget_truth_ratio"), rows,
                                  baselines.get("target_forget_prob"), before)
        else:  # reworded: no baselines model answered these questions
            metrics = forget_side(ctx, "forget")
        out.update({f"attack.{variant['label']}.{k}": v for k, v in metrics.items()})
        if not has_perturbed_answers(records):  # raw text: its probability and recovery only
            unavailable.update({f"attack.{variant['label']}.{k}": "raw text: no question to answer, no truth ratio"
                                for k in _FORGET_SIDE if k not in metrics})
        del result, ctx
    model.eval()
    return {**out, "attack_s": time.perf_counter() - started}, unavailable
