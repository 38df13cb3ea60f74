"""The baselines' statistics: what every trial of a model compares against, computed once per (prepared
models, evaluation config). The baselines are the target (before unlearning) and the retain model (never
trained on the forget set); their own rows are the `none` and `retain` trials. ("Reference", in this
harness, is only ever the frozen copy some methods compare the model in training against.)

- The retain model's raw forget truth ratios (forget quality is a KS test against them) and its
  Min-K% membership AUROC, forget vs holdout (privacy leakage is relative to it).
- The retain model's raw truth ratios on the forget_val questions, where the data has them: a trial's
  forget quality on forget_val, the validation score that hyperparameters are selected on.
- The target's greedy answers to the suite's probe prompts: the "before" of every row's probe table.
- The target's P̄(answer) on each forget question: what an attack's recovery is measured against.

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

BASELINE_STATS_VERSION = 3  # 2: the target's per-question forget probability; 3: retain_forget_val_truth_ratio
BASELINE_SPLITS = ("forget", "holdout")


def retain_statistics(model, tokenizer, splits: dict[str, list[dict]], eval_cfg) -> dict:
    """The retain model's forget truth ratios and membership AUROCs (the same code a trial scores with)."""
    from metrics import EvalContext, prefetch
    from metrics.mia import MIA_SCORES, score_auroc
    from metrics.tofu import split_truth_ratio

    ctx = EvalContext(model, tokenizer, {s: splits[s] for s in BASELINE_SPLITS if s in splits}, eval_cfg)
    prefetch(ctx, eval_cfg.metrics or None)  # batches each split as a trial's evaluation does: identical numbers
    out = {"retain_forget_truth_ratio": split_truth_ratio(ctx, "forget").tolist()}
    if ctx.has("holdout"):
        out.update({f"retain_mia_{a}_auc": score_auroc(ctx, a) for a in MIA_SCORES})
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

    from bench.data.store import read_splits
    from bench.models.zoo import load_model, load_tokenizer

    torch.set_num_threads(max(1, int(threads)))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    splits = read_splits(Path(prepared.data_dir), [*BASELINE_SPLITS, VALIDATION_SPLIT])
    out = {}
    if prepared.retain_dir:  # without one, the metrics that compare with it say so (MetricUnavailable)
        retain = load_model(prepared.retain_dir, precision).to(device)
        out = retain_statistics(retain, load_tokenizer(prepared.retain_dir, prompt), splits, eval_cfg)
        del retain
    target, tokenizer = load_model(prepared.target_dir, precision).to(device), load_tokenizer(prepared.target_dir, prompt)
    out["target_probe_answers"] = probe_answers(target, tokenizer, eval_cfg.probes, eval_cfg) if eval_cfg.probes else []
    out["target_forget_prob"] = target_forget_probabilities(target, tokenizer, splits["forget"], eval_cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(out))
    return path


def load_baseline_stats(path: str | Path | None) -> dict:
    return json.loads(Path(path).read_text()) if path else {}
