"""The baselines' statistics: what every trial of a model compares against, computed once per (prepared
models, evaluation config). The baselines are the target (before unlearning) and the retain model (never
trained on the forget set); their own rows are the `none` and `retain` trials. ("Reference", in this
harness, is the frozen copy some methods compare the model in training against; the reference model of
the reference-model membership attack is the target's base, and its statistics are named `base_`.)

- The retain model's raw forget truth ratios (forget quality is a KS test against them) and its
  membership AUROCs, forget vs holdout (privacy leakage is relative to its Min-K% one): the
  reference-model one where the base's losses are here, GradNorm's where that family runs (a forward
  and a backward pass per forget and holdout answer).
- The retain model's raw truth ratios on the forget_val questions, where the data has them: a trial's
  forget quality on forget_val, the validation score that hyperparameters are selected on.
- The target's greedy answers to the suite's probe prompts: the "before" of every row's probe table.
- The target's P̄(answer) on each forget question: what an attack's recovery is measured against.
- The LOSS score of each forget and holdout answer under the model the target was fine-tuned from
  (`base_mia_loss`, {split: [score per record]}): the reference-model membership attack (metrics.mia)
  calibrates every evaluated model's loss by it, so a trial adds no forward pass for it. Computed where
  that attack runs (eval.metrics) and the base is known (not for `prepare.target: as_is`): one load of
  the base and a scoring of those answers.

They live in `$BENCH_CACHE/baselines/<model>-<key>.json`, written atomically; the key hashes the
prepared model and data directories (forget fractions share a target, not their forget questions),
the evaluation config and the metric versions, so a changed setting computes them anew instead of
comparing against stale numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from bench.core.atomic import atomic_file
from bench.data.synthetic import VALIDATION_SPLIT

BASELINE_STATS_VERSION = 4  # 2: the target's per-question forget probability; 3: retain_forget_val_truth_ratio;
# 4: base_mia_loss, retain_mia_ref_auc, retain_mia_gradnorm_auc
BASELINE_SPLITS = ("forget", "holdout")


def runs(eval_cfg, family: str) -> bool:
    """Whether a trial evaluated with `eval_cfg` runs the metric family (at its last step or a checkpoint)."""
    from metrics import default_families

    return family in (eval_cfg.metrics or default_families()) or family in eval_cfg.checkpoint_metrics


def retain_statistics(model, tokenizer, splits: dict[str, list[dict]], eval_cfg,
                      base_losses: dict | None = None) -> dict:
    """The retain model's forget truth ratios and membership AUROCs (the same code a trial scores with).

    Args:
        base_losses: the base model's LOSS scores (`base_statistics`), for the reference-model AUROC;
            None: that AUROC is left out.
    """
    from metrics import EvalContext, prefetch
    from metrics.mia import BASE_LOSSES, MIA_SCORES, auroc, gradnorm_auroc, reference_scores, score_auroc
    from metrics.context import has_perturbed_answers
    from metrics.tofu import split_truth_ratio

    ctx = EvalContext(model, tokenizer, {s: splits[s] for s in BASELINE_SPLITS if s in splits}, eval_cfg,
                      baselines={BASE_LOSSES: base_losses} if base_losses else None)
    prefetch(ctx, eval_cfg.metrics or None)  # batches each split as a trial's evaluation does: identical numbers
    out = {}
    if has_perturbed_answers(ctx.records("forget")):
        out["retain_forget_truth_ratio"] = split_truth_ratio(ctx, "forget").tolist()
    if ctx.has("holdout"):
        out.update({f"retain_mia_{a}_auc": score_auroc(ctx, a) for a in MIA_SCORES})
        if base_losses:
            out["retain_mia_ref_auc"] = auroc(reference_scores(ctx, "forget"), reference_scores(ctx, "holdout"))
        if runs(eval_cfg, "mia_gradnorm"):
            out["retain_mia_gradnorm_auc"] = gradnorm_auroc(ctx)
    if splits.get(VALIDATION_SPLIT):
        out["retain_forget_val_truth_ratio"] = forget_val_truth_ratios(model, tokenizer, splits[VALIDATION_SPLIT],
                                                                       eval_cfg)
    return out


def forget_val_truth_ratios(model, tokenizer, records: list[dict], eval_cfg) -> list[float]:
    """Raw truth ratios on the forget_val questions, scored as a trial scores them (its validation
    metrics, `bench.run.evaluation.validation_metrics`, read them first from its context's forget_val
    split): the same records batched the same way give identical numbers."""
    from metrics import EvalContext
    from metrics.tofu import split_truth_ratio

    ctx = EvalContext(model, tokenizer, {VALIDATION_SPLIT: records}, eval_cfg)
    return split_truth_ratio(ctx, VALIDATION_SPLIT).tolist()


def base_statistics(model, tokenizer, splits: dict[str, list[dict]], eval_cfg) -> dict:
    """The LOSS score (-mean answer-token NLL, end-of-sequence left out) of each forget and holdout answer
    under the model the target was fine-tuned from, as `{BASE_LOSSES: {split: [score per record]}}`."""
    from metrics import EvalContext
    from metrics.mia import BASE_LOSSES, membership_scores

    ctx = EvalContext(model, tokenizer, {s: splits[s] for s in BASELINE_SPLITS if s in splits}, eval_cfg)
    return {BASE_LOSSES: {s: membership_scores(ctx, s)["loss"] for s in BASELINE_SPLITS if ctx.has(s)}}


def probe_answers(model, tokenizer, probes, eval_cfg) -> list[str]:
    """Greedy answers to probe prompts (questions in the harness's prompt format)."""
    from metrics import EvalContext

    return EvalContext(model, tokenizer, {}, eval_cfg).generate(list(probes))


def target_forget_probabilities(model, tokenizer, forget: list[dict], eval_cfg) -> list[float]:
    """P̄(answer | question) of each forget question (TOFU's forget probability, per question)."""
    import numpy as np

    from metrics import EvalContext
    from metrics.tofu import score_split

    ctx = EvalContext(model, tokenizer, {"forget": forget}, eval_cfg)
    score_split(ctx, "forget")  # batched as a trial's evaluation batches it: identical numbers
    return np.exp(ctx.mean_logprob("forget", "answer")).tolist()


def baseline_stats_path(prepared, eval_cfg, cache: Path, precision: str = "fp32", prompt=None) -> Path:
    """Where the statistics of one prepared model live: keyed by what they were computed from (`prompt`:
    the suite's `PromptFormat`, None: the default)."""
    from metrics import METRICS

    from bench.core.encoding import PromptFormat

    parts = [BASELINE_STATS_VERSION, prepared.target_dir, prepared.retain_dir, prepared.data_dir, dataclasses.asdict(eval_cfg),
             {m.name: m.version for m in METRICS}]
    if precision != "fp32":  # keeps the keys of files computed before precisions existed
        parts.append(precision)
    if prompt is not None and prompt != PromptFormat():  # likewise for prompt formats
        parts.append(dataclasses.asdict(prompt))
    key = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache / "baselines" / f"{prepared.model.replace('/', '--')}-{key}.json"


def compute_baseline_stats(prepared, eval_cfg, cache: Path, threads: int = 1, precision: str = "fp32",
                           prompt=None) -> Path:
    """Computes (or finds) the baseline statistics of one prepared model, its models loaded in `precision`
    and prompted in `prompt` (a `PromptFormat`; None: the default) as trials load them; returns its path."""
    path = baseline_stats_path(prepared, eval_cfg, cache, precision, prompt)
    if path.exists():
        return path
    import torch
    from metrics.mia import BASE_LOSSES

    from bench.data.store import read_splits
    from bench.models.zoo import load_model, load_tokenizer

    torch.set_num_threads(max(1, int(threads)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    splits = read_splits(Path(prepared.data_dir), [*BASELINE_SPLITS, VALIDATION_SPLIT])
    out = {}
    if base_known(prepared) and runs(eval_cfg, "mia_ref"):  # without it, the reference-model attack says so
        base = load_model(prepared.base_dir, precision).to(device)
        out.update(base_statistics(base, load_tokenizer(prepared.base_dir, prompt), splits, eval_cfg))
        del base
    if prepared.retain_dir:  # without one, the metrics that compare with it say so (MetricUnavailable)
        retain = load_model(prepared.retain_dir, precision).to(device)
        out.update(retain_statistics(retain, load_tokenizer(prepared.retain_dir, prompt), splits, eval_cfg,
                                     out.get(BASE_LOSSES)))
        del retain
    target, tokenizer = load_model(prepared.target_dir, precision).to(device), load_tokenizer(prepared.target_dir, prompt)
    out["target_probe_answers"] = probe_answers(target, tokenizer, eval_cfg.probes, eval_cfg) if eval_cfg.probes else []
    out["target_forget_prob"] = target_forget_probabilities(target, tokenizer, splits["forget"], eval_cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(out))
    return path


def base_known(prepared) -> bool:
    """Whether the prepared set names the model its target was fine-tuned from, and a zoo model's base is
    still in the cache (a hub or local model is loaded by its name)."""
    from bench.models.zoo import is_zoo

    return bool(prepared.base_dir) and (not is_zoo(prepared.model) or Path(prepared.base_dir).exists())


def load_baseline_stats(path: str | Path | None) -> dict:
    return json.loads(Path(path).read_text()) if path else {}
