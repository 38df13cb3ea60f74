"""Meta-evaluation: which metric tells whether the forget knowledge is gone?

After Dorna et al. 2025 ("OpenUnlearning: Accelerating LLM Unlearning via Unified Benchmarking of Methods
and Metrics", arXiv 2506.12618), every forget-side metric is judged on two properties, from the rows
`bench.run.meta` writes:

- **Faithfulness**: the AUROC with which the metric separates models that hold the forget knowledge
  (targets, several fine-tuning seeds) from models that never saw it (retain models and models fine-tuned
  on other authors, several seeds each), each metric oriented so that a higher value means more knowledge
  (`META_METRICS`). 1: every knowing model scores above every unknowing one; 0.5: no better than chance.
  Interval: 2.5th-97.5th percentiles over a stratified bootstrap of the pool models.
- **Robustness**: how little the metric's verdict on an unlearned model moves under an attack, beyond
  how it moves for the retain model. Measured on the knowledge scale
  k(m) = (m - mean over the absent pool) / (mean over the present pool - mean over the absent pool):
  0 is "like a model that never saw the forget set", 1 "like a target". Per unlearned model (method x seed):
    quantization  Q = 1 - clip(k_quantized - k_before, 0, 1)
    relearning    R = 1 - clip((k_relearned - k_before) - (k_ret,relearned - k_ret,before), 0, 1)
  (the retain model relearned the same questions with the same seed), robustness = HM(Q, R), and the
  table gives its mean with a 95% t-interval over the unlearned models.
  The paper's forms are ratios of raw metric values, Q = min(m_before / m_quantized, 1) and
  R = min(Δm_retain / Δm_unlearned, 1), on metrics that all rise with knowledge in [0, 1]. Ours keep their
  direction (only a rise toward knowledge is penalised, and the relearning rise is judged against the
  retain model's) but take differences on the knowledge scale, because several of our metrics are not
  positive knowledge-rising numbers (log10 forget quality, log perplexity, truth ratio), and a ratio of
  values near 0, where unlearned models sit, turns noise into verdicts.
- **Overall**: HM(faithfulness, robustness), the ranking key, as in the paper.

Privacy leakage is left out: with one retain model it is a fixed affine transform of the Min-K% AUROC,
so its meta-evaluation is Min-K%'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bench.report.aggregate import format_ci, log10_fq, markdown_table, mean_ci

# Column -> (label, whether more knowledge means a higher value). Forget quality is read as log10 and
# perplexity as its log (the mean NLL): both span orders of magnitude once a model is over-unlearned, and on
# the raw scale one such model would set every verdict.
META_METRICS = {
    "forget_truth_ratio": ("Truth ratio", False),
    "forget_quality": ("Forget quality (log10 KS p)", False),
    "forget_prob": ("Probability", True),
    "forget_rouge": ("ROUGE-L recall", True),
    "forget_exact_mem": ("Exact memorization", True),
    "forget_extraction_strength": ("Extraction strength", True),
    "forget_greedy_exact_match": ("Greedy exact match", True),
    "forget_knowmem": ("KnowMem (ROUGE-L F1)", True),
    "forget_verbmem": ("VerbMem (ROUGE-L F1)", True),
    "forget_ppl": ("Perplexity (log)", False),
    "mia_loss_auc": ("MIA LOSS", True),
    "mia_zlib_auc": ("MIA zlib", True),
    "mia_mink_auc": ("MIA Min-K%", True),
    "mia_mink_pp_auc": ("MIA Min-K%++", True),
    "mia_ref_auc": ("MIA reference model", True),
    "mia_gradnorm_auc": ("MIA GradNorm", True),
}
# Faithfulness AUROCs published for Llama-3.2-1B on TOFU forget10 (a replication of the paper's benchmark,
# 30 knowing vs 30 unknowing models), for the metrics we share with it.
PUBLISHED_FAITHFULNESS = {"forget_truth_ratio": 0.947, "mia_mink_auc": 0.907, "mia_loss_auc": 0.902,
                          "forget_extraction_strength": 0.891, "forget_exact_mem": 0.817, "forget_rouge": 0.722}


def knowledge_values(rows: pd.DataFrame, column: str) -> np.ndarray:
    """The column on a scale where a higher value means more knowledge (forget quality and perplexity as logs first)."""
    values = rows[column].to_numpy(dtype=float)
    if column == "forget_quality":
        values = log10_fq(rows[column])
    elif column == "forget_ppl":
        values = np.log(values)
    return values if META_METRICS[column][1] else -values


def faithfulness(scores: np.ndarray, holds: np.ndarray, resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """AUROC of knowing (holds=True) vs unknowing models by score, and its stratified-bootstrap 95% interval."""
    holds = np.asarray(holds, dtype=bool)
    auc = float(roc_auc_score(holds, scores))
    rng = np.random.default_rng(seed)
    present, absent = np.flatnonzero(holds), np.flatnonzero(~holds)
    draws = []
    for _ in range(resamples):
        pick = np.concatenate([rng.choice(present, len(present)), rng.choice(absent, len(absent))])
        draws.append(roc_auc_score(holds[pick], scores[pick]))
    low, high = np.percentile(draws, [2.5, 97.5])
    return auc, float(low), float(high)


def harmonic_mean(a: float, b: float) -> float:
    """HM of two numbers in [0, 1]; 0 when either is 0, NaN when either is."""
    if math.isnan(a) or math.isnan(b):
        return float("nan")
    return 0.0 if a <= 0 or b <= 0 else 2 * a * b / (a + b)


def quantization_robustness(k_before: float, k_quantized: float) -> float:
    """1 - the share of the knowing-unknowing gap that quantization brought back (a fall costs nothing)."""
    return 1.0 - float(np.clip(k_quantized - k_before, 0.0, 1.0))


def relearning_robustness(k_before: float, k_relearned: float, k_retain_before: float, k_retain_relearned: float) -> float:
    """1 - how far relearning raised the unlearned model beyond what it raised the retain model, on the knowledge scale."""
    excess = (k_relearned - k_before) - (k_retain_relearned - k_retain_before)
    return 1.0 - float(np.clip(excess, 0.0, 1.0))


@dataclass(frozen=True)
class MetricVerdict:
    column: str
    faithfulness: tuple[float, float, float]  # AUROC, interval low, high
    quantization: tuple[float, float]  # mean, t half-width
    relearning: tuple[float, float]
    robustness: tuple[float, float]

    @property
    def overall(self) -> float:
        return harmonic_mean(self.faithfulness[0], self.robustness[0])


def meta_evaluate(rows: pd.DataFrame, resamples: int = 1000) -> tuple[list[MetricVerdict], dict]:
    """Every metric the rows measured, judged; and the pool sizes (what the verdicts rest on)."""
    pool = rows[rows["stage"] == "pool"]
    holds = pool["holds_knowledge"].astype(bool).to_numpy()
    attacked = rows[rows["stage"] != "pool"]
    unlearned, retain = attacked[attacked["role"] == "unlearned"], attacked[attacked["role"] == "retain"]
    sizes = {"present": int(holds.sum()), "absent": int((~holds).sum()),
             "absent_roles": pool[~holds]["role"].value_counts().to_dict(),
             "unlearned": unlearned["trial_id"].nunique(), "retain_seeds": retain["seed"].nunique()}
    if sizes["present"] < 1 or sizes["absent"] < 1:
        raise ValueError(f"the pools need knowing and unknowing models; found {sizes['present']} and {sizes['absent']}")
    verdicts = []
    for column in META_METRICS:
        if column not in rows or pool[column].isna().all():
            continue
        scores = knowledge_values(pool, column)
        if np.isnan(scores).any():
            continue
        present_mean, absent_mean = scores[holds].mean(), scores[~holds].mean()
        gap = present_mean - absent_mean

        def k(frame: pd.DataFrame) -> pd.Series:
            return pd.Series((knowledge_values(frame, column) - absent_mean) / gap if gap else np.nan, index=frame.index)

        q_values, r_values, robust = [], [], []
        for (trial, seed), unit in unlearned.groupby(["trial_id", "seed"]):
            by_stage = dict(zip(unit["stage"], k(unit)))
            ret = retain[retain["seed"] == seed]
            ret_stage = dict(zip(ret["stage"], k(ret)))
            if not {"before", "quantized", "relearned"} <= set(by_stage) or not {"before", "relearned"} <= set(ret_stage):
                continue
            q = quantization_robustness(by_stage["before"], by_stage["quantized"])
            r = relearning_robustness(by_stage["before"], by_stage["relearned"], ret_stage["before"], ret_stage["relearned"])
            q_values.append(q), r_values.append(r), robust.append(harmonic_mean(q, r))
        verdicts.append(MetricVerdict(column, faithfulness(scores, holds, resamples),
                                      mean_ci(q_values)[:2], mean_ci(r_values)[:2], mean_ci(robust)[:2]))
    verdicts.sort(key=lambda v: -np.nan_to_num(v.overall, nan=-1.0))
    return verdicts, sizes


def _interval(value: float, low: float, high: float) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def meta_table(verdicts: list[MetricVerdict]) -> str:
    """The ranking as a Markdown table, the published faithfulness beside ours."""
    lines = []
    for v in verdicts:
        published = PUBLISHED_FAITHFULNESS.get(v.column)
        lines.append({
            "metric": META_METRICS[v.column][0],
            "faithfulness (AUROC, 95% CI)": _interval(*v.faithfulness),
            "quantization Q": format_ci(*v.quantization),
            "relearning R": format_ci(*v.relearning),
            "robustness HM(Q, R)": format_ci(*v.robustness),
            "overall HM": "—" if math.isnan(v.overall) else f"{v.overall:.3f}",
            "published faithfulness": "—" if published is None else f"{published:.3f}",
        })
    return markdown_table(lines)


def pool_line(sizes: dict) -> str:
    roles = ", ".join(f"{n} {role.replace('_', ' ')}" for role, n in sorted(sizes["absent_roles"].items()))
    return (f"Pools: {sizes['present']} models that hold the forget knowledge (targets), {sizes['absent']} that "
            f"never saw it ({roles} models). Robustness: {sizes['unlearned']} unlearned models (method x setting x "
            f"seed), each quantized and relearned, against the retain model attacked with the same "
            f"{sizes['retain_seeds']} seed(s).")


def meta_plot(verdicts: list[MetricVerdict], path: Path, title: str) -> Path:
    """Faithfulness and robustness per metric, side by side, with their intervals (ranked by overall)."""
    from bench.report.plots import _pyplot, _save

    plt = _pyplot()
    labels = [META_METRICS[v.column][0] for v in verdicts][::-1]
    y = np.arange(len(labels))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 0.4 * len(labels) + 1.5), sharey=True)
    faith = np.array([v.faithfulness for v in verdicts][::-1])
    left.barh(y, faith[:, 0], color="0.55", xerr=[faith[:, 0] - faith[:, 1], faith[:, 2] - faith[:, 0]], capsize=3)
    left.axvline(0.5, color="black", linestyle=":", linewidth=1)
    left.set(xlim=(0, 1.05), xlabel="faithfulness: AUROC,\nknowing vs unknowing models (0.5 = chance)",
             yticks=y, yticklabels=labels)
    robust = np.array([v.robustness for v in verdicts][::-1])
    half = np.nan_to_num(robust[:, 1])  # the t-interval, cut at the scale's ends
    errors = [np.minimum(half, np.nan_to_num(robust[:, 0])), np.minimum(half, 1 - np.nan_to_num(robust[:, 0]))]
    right.barh(y, robust[:, 0], color="0.8", edgecolor="black", hatch="//", xerr=errors, capsize=3)
    right.set(xlim=(0, 1.05), xlabel="robustness: HM(quantization, relearning)\n(1 = unmoved by the attacks)")
    fig.suptitle(title)
    return _save(fig, path)


def write_meta_report(rows: pd.DataFrame, directory: Path, suite_name: str, resamples: int = 1000) -> tuple[Path, str]:
    """`meta.md` and `meta.png` in `directory`; returns the Markdown's path and its table."""
    from bench.core.atomic import atomic_file

    verdicts, sizes = meta_evaluate(rows, resamples)
    table = meta_table(verdicts)
    figure = meta_plot(verdicts, directory / "meta.png", f"Which metric to trust: {suite_name}")
    text = (f"# Meta-evaluation of the metrics: {suite_name}\n\n{pool_line(sizes)}\n\n{table}\n\n"
            f"![faithfulness and robustness]({figure.name})\n")
    with atomic_file(directory / "meta.md") as tmp:
        tmp.write_text(text)
    return directory / "meta.md", f"{pool_line(sizes)}\n\n{table}"
