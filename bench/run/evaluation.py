"""One model's evaluation: one `EvalContext` over every split it is scored on, read by everything after.

The context holds the evaluation splits and the validation authors (`forget_val`). The metric families,
the probes, the validation columns (what settings and checkpoints are selected on) and the attacks'
"before" (each forget question's probability, what recovery is measured from) all read it, so no
split is scored twice on the same model. Only a changed model (an attacked copy) or changed questions
(rewordings) get a context of their own.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.core.names import KNOWMEM_SPLITS, MC_SPLITS, RETAIN_EVAL_SPLIT, VALIDATION_SPLIT, VERBMEM_SPLIT

if TYPE_CHECKING:  # the report reads the column names here without loading the schema (and torch)
    from bench.config.suite import TrialSpec
    from bench.models.prepare import Prepared

EVAL_SPLITS = ("forget", "retain", "holdout", "real_authors", "world_facts", "forget_bio", "general_text",
               *KNOWMEM_SPLITS.values(), VERBMEM_SPLIT, *MC_SPLITS)
# The forget-side metrics (see forget_side), and their columns on the validation authors.
FORGET_METRICS = ("forget_prob", "forget_rouge", "forget_truth_ratio", "forget_quality")
VALIDATION_COLUMNS = {m: m.replace("forget_", f"{VALIDATION_SPLIT}_", 1) for m in FORGET_METRICS}
# Unlearning that took less than this share of the target's forget probability has nothing to recover:
# the ratio would divide by noise, so recovery is left undefined (NaN).
MIN_LOSS_SHARE = 0.01


@dataclass
class Evaluation:
    """What evaluating one model produced.

    Attributes:
        columns: the row's metric, validation, probe and evaluation-cost columns.
        context: the context it was computed in, with every split's scores cached (attacks read the
            forget split's per-question probabilities from it).
    """

    columns: dict[str, Any]
    context: Any


def evaluation_splits(splits: dict, eval_cfg) -> dict:
    """The splits a model is scored on, by the names the metrics read: a dataset's separate retain
    evaluation split (TOFU's `retain_perturbed` carries the paraphrases and perturbations its training
    questions lack) stands in for `retain`, cut evenly to `eval_cfg.retain_questions`; the validation
    authors come along when the data has them."""
    from bench.data.store import evenly_spaced

    out = {s: splits[s] for s in EVAL_SPLITS if s in splits}
    if splits.get(RETAIN_EVAL_SPLIT):
        out["retain"] = splits[RETAIN_EVAL_SPLIT]
    for retain in ("retain", KNOWMEM_SPLITS["retain"]):
        if retain in out:
            out[retain] = evenly_spaced(out[retain], eval_cfg.retain_questions)
    if splits.get(VALIDATION_SPLIT):
        out[VALIDATION_SPLIT] = splits[VALIDATION_SPLIT]
    return out


def forget_side(ctx, split: str, retain_ratios=None, rows: list[int] | None = None, target_prob=None,
                before_prob=None) -> dict[str, float]:
    """The forget-side metrics of a context's split: probability, ROUGE and truth ratio, then forget
    quality (KS against the retain model's truth ratios `retain_ratios` on the same questions, the
    `rows` of them; None: all) and recovery where `target_prob` and `before_prob` (per question, the
    target's and the model's before an attack) are given: the share of the target's probability, lost
    by unlearning, that is back, (p − p_before) / (p_target − p_before) over the same questions."""
    from metrics.tofu import forget_truth_ratio_stat, ks_forget_quality, split_probability, split_rouge, split_truth_ratio

    from metrics.context import has_perturbed_answers

    picked = slice(None) if rows is None else rows
    questions = has_perturbed_answers(ctx.records(split))  # raw text (MUSE's shape): its probability only
    ratios = split_truth_ratio(ctx, split) if questions else None  # first: the order fixes the batches, and so the last digits
    out = {"forget_prob": split_probability(ctx, split)}
    if questions:
        out.update(forget_rouge=split_rouge(ctx, split), forget_truth_ratio=forget_truth_ratio_stat(ratios))
    if retain_ratios is not None and ratios is not None:
        out["forget_quality"] = ks_forget_quality(ratios, np.asarray(retain_ratios)[picked])
    if target_prob is not None and before_prob is not None:
        target_p, before_p = float(np.mean(np.asarray(target_prob)[picked])), float(np.asarray(before_prob)[picked].mean())
        gap = target_p - before_p
        out["recovery"] = (out["forget_prob"] - before_p) / gap if gap > MIN_LOSS_SHARE * target_p else float("nan")
    return out


def forget_probabilities(ctx) -> np.ndarray:
    """P̄(answer | question) of each forget question, from the context's scores (TOFU batches the
    forget split's answer forms together, as the target's probabilities in the baseline statistics were scored)."""
    from metrics.tofu import score_split

    score_split(ctx, "forget")
    return np.exp(ctx.mean_logprob("forget", "answer"))


def evaluate_model(model, tokenizer, eval_cfg, splits: dict, baselines: dict) -> Evaluation:
    """Runs the chosen metric families (all by default) and the probes in one context, then the lm-eval tasks
    (`eval.lm_eval_tasks`: `lmeval_*` columns, their seconds in `lmeval_s`, not in `eval_s`).

    Args:
        splits: the data's splits by name (see `evaluation_splits`).
        baselines: what the metrics compare against (`bench.models.baseline_stats`); without the retain
            model's statistics, forget quality and privacy leakage are NaN with the reason recorded.
    """
    from metrics import EvalContext, evaluate

    started = time.perf_counter()
    ctx = EvalContext(model, tokenizer, evaluation_splits(splits, eval_cfg), eval_cfg, baselines=baselines)
    metrics = evaluate(ctx, eval_cfg.metrics or None)
    probes = []
    if eval_cfg.probes:
        before = baselines.get("target_probe_answers") or [None] * len(eval_cfg.probes)
        probes = [{"prompt": q, "before": b, "after": a}
                  for q, b, a in zip(eval_cfg.probes, before, ctx.generate(list(eval_cfg.probes)))]
    columns = {**metrics, "eval_s": time.perf_counter() - started, "eval_forward_passes": ctx.forward_passes,
               "eval_generated_prompts": ctx.generated_prompts, "eval_decode_steps": ctx.decode_steps,
               "metrics_unavailable": json.dumps(ctx.unavailable, sort_keys=True) if ctx.unavailable else None,
               "metric_notes": json.dumps(ctx.notes, sort_keys=True) if ctx.notes else None,
               "probe_generations": json.dumps(probes) if probes else None}
    if eval_cfg.lm_eval_tasks:  # general ability (metrics/lm_eval.py): its own forward passes, timed apart
        from metrics.lm_eval import run_lm_eval

        started = time.perf_counter()
        columns.update(run_lm_eval(model, tokenizer, eval_cfg))
        columns["lmeval_s"] = time.perf_counter() - started
    return Evaluation(columns, ctx)


def validation_metrics(ctx, baselines: dict) -> tuple[dict, dict[str, str]]:
    """The forget-side metrics on the `forget_val` split of a model's context (authors unlearned with
    the forget set, see `bench.run.trial.unlearning_request`, and left out of the retain model, but
    scored apart): what hyperparameters and checkpoints are selected on, so the forget (test) split is
    only ever reported. Forget quality is the KS test against the retain model's truth ratios on the
    same questions. Returns the `forget_val_*` columns and the reasons of those that are NaN."""
    if not ctx.has(VALIDATION_SPLIT):
        why = ("not measured: the data has no forget_val split, or the trial is sequential (its requests are the "
               "forget parts; README: The honest protocol)")
        return {c: float("nan") for c in VALIDATION_COLUMNS.values()}, {c: why for c in VALIDATION_COLUMNS.values()}
    ratios = baselines.get("retain_forget_val_truth_ratio")
    side = forget_side(ctx, VALIDATION_SPLIT, retain_ratios=ratios)
    out = {VALIDATION_COLUMNS[k]: float(side.get(k, float("nan"))) for k in VALIDATION_COLUMNS}
    missing = {} if ratios is not None else {"forget_val_quality": "needs the retain model's forget_val truth ratios"}
    return out, missing


def evaluate_trial(model, tokenizer, spec: TrialSpec, prepared: Prepared, splits: dict, baselines: dict | None = None,
                   checkpoint: bool = False) -> Evaluation:
    """The trial's evaluation, the validation metrics included, with the provenance notes merged into
    `metric_notes`. `baselines`: default the prepared baseline statistics (a sequential trial passes the
    part's subset); `checkpoint`: an intermediate checkpoint, evaluated with `eval.checkpoint_metrics`
    and without probes or lm-eval tasks."""
    from metrics import metric_columns

    from bench.models.baseline_stats import load_baseline_stats
    from bench.run.rows import provenance_notes

    baselines = load_baseline_stats(prepared.baseline_stats) if baselines is None else baselines
    eval_cfg, skipped = spec.eval, {}
    if checkpoint and spec.eval.checkpoint_metrics:
        eval_cfg = dataclasses.replace(spec.eval, metrics=spec.eval.checkpoint_metrics, probes=(), lm_eval_tasks=())
        kept = set(metric_columns(eval_cfg.metrics))
        skipped = {c: "not evaluated at intermediate checkpoints (eval.checkpoint_metrics)"
                   for c in metric_columns(spec.eval.metrics or None) if c not in kept}
    elif checkpoint:
        eval_cfg = dataclasses.replace(spec.eval, probes=(), lm_eval_tasks=())
    evaluation = evaluate_model(model, tokenizer, eval_cfg, splits, baselines)
    out = evaluation.columns
    started = time.perf_counter()
    validation, missing = validation_metrics(evaluation.context, baselines)
    unavailable = {**json.loads(out["metrics_unavailable"] or "{}"), **skipped, **missing}
    notes = {**provenance_notes(prepared), **json.loads(out["metric_notes"] or "{}")}
    columns = {**out, **{c: float("nan") for c in skipped}, **validation,
               "eval_s": out["eval_s"] + time.perf_counter() - started,
               "metrics_unavailable": json.dumps(unavailable, sort_keys=True) if unavailable else None,
               "metric_notes": json.dumps(notes, sort_keys=True) if notes else None}
    return Evaluation(columns, evaluation.context)
