"""The leaderboard printed at the end of a run: one row per (model, method, hyperparameters).

Each metric is shown as mean ± half-width of the 95% t-interval over seeds (n shown), reference
rows (the target before unlearning, the retain-only model) on top of each model's block. Reads
rows with pandas; never imports torch. Also the aggregation the report and the ablation grids
share: the grouping into settings, log10 forget quality with its floor, and the errors they raise.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from scipy import stats
from tabulate import tabulate

from .robustness import add_worst_case, most_common

COLUMNS = {  # column -> header
    "forget_quality": "forget quality",
    "model_utility": "model utility",
    "forget_rouge": "forget ROUGE",
    "forget_greedy_exact_match": "forget EM",
    "retain_greedy_exact_match": "retain EM",
    "retain_rouge": "retain ROUGE",
    "forget_verbmem": "forget VerbMem",
    "mia_mink_pp_auc": "MIA AUROC (Min-K%++)",
    "privleak": "privacy leakage",
    # After the strongest attack (bench.robustness): present when the rows have attack columns.
    "worst_forget_quality": "worst-case FQ",
    "worst_forget_prob": "worst-case forget prob",
    "max_recovery": "recovery",
}
LOG_COLUMNS = ("forget_quality", "worst_forget_quality")  # KS p-values: averaged and ranked as log10
# PrivLeak within ±LEAK_BAND of 0 reads as the retain model's behaviour; outside it, the verdict says which way.
LEAK_BAND = 20.0
FORMATS = {"privleak": "{:.1f}"}  # a percentage; forget quality has its own format_fq
REFERENCE_ORDER = {"none": 0, "retain": 1}
# Forget quality is a KS p-value that reaches 1e-239 on real rows and can underflow to 0: it is averaged
# and ranked as log10, clipped here first so a 0 does not become -inf (just above float64's smallest normal).
FQ_FLOOR = 1e-300


class ReportError(ValueError):
    """Results that cannot be reported as asked; the message names the directory or column and what is allowed."""


def format_hp(value) -> str:
    """A hyperparameter value as people write it: 3e-4, 0.5, -8, 100, kl."""
    if isinstance(value, (bool, np.bool_, str)):
        return str(value)
    v = float(value)
    if v.is_integer() and abs(v) < 1e6:
        return str(int(v))
    if 0 < abs(v) < 1e-2:  # learning rates: 3e-4, not 0.0003
        mantissa, exponent = f"{v:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{v:g}"


def log10_fq(values) -> np.ndarray:
    """log10 of forget-quality p-values clipped below at FQ_FLOOR; NaN (missing) stays NaN."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    return np.log10(np.clip(v, FQ_FLOOR, None))


def format_fq(mean_log10: float, half_log10: float) -> str:
    """Forget quality as 10^mean(log10) in scientific notation, its 95% CI as a ×/÷ factor 10^half-width."""
    if math.isnan(mean_log10):
        return "—"
    if mean_log10 <= math.log10(FQ_FLOOR):
        return f"≤ {FQ_FLOOR:.0e}"
    text = f"{10 ** mean_log10:.2e}"
    if math.isnan(half_log10):
        return text
    factor = f"{10 ** half_log10:.3g}" if half_log10 < 3 else f"10^{half_log10:.1f}"  # 10^400 overflows a float
    return f"{text} ×/÷ {factor}"


def mean_ci(values) -> tuple[float, float, int]:
    """Mean, half-width of the two-sided 95% t-interval (nan for n < 2), and n (NaNs dropped)."""
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    v = v[~np.isnan(v)]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    if n < 2:
        return float(v.mean()), float("nan"), n
    half = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n)
    return float(v.mean()), float(half), n


def format_ci(mean: float, half: float, fmt: str = "{:.3f}") -> str:
    if math.isnan(mean):
        return "—"
    return fmt.format(mean) if math.isnan(half) else f"{fmt.format(mean)} ± {fmt.format(half)}"


def membership_verdict(privleak: float) -> str:
    """What the mean privacy leakage says: still remembers (< -band), over-unlearned (> +band), or retain-like."""
    if math.isnan(privleak):
        return "—"
    if privleak < -LEAK_BAND:
        return "remembers"
    if privleak > LEAK_BAND:
        return "over-unlearned"
    return "retain-like"


def varying_hp_columns(df: pd.DataFrame) -> list[str]:
    """The hp.* columns with more than one distinct value among the rows that have one, or that some
    row set away from its default (a single non-default setting, e.g. forget_factor -8, still shows)."""
    changed = {name for names in df.get("hp_changed", pd.Series(dtype=object)).dropna() for name in json.loads(names)}
    hp = [c for c in df.columns if c.startswith("hp.")]
    return [c for c in hp if df[c].dropna().astype(str).nunique() > 1 or c.removeprefix("hp.") in changed]


def setting_groups(ok: pd.DataFrame) -> tuple[list[str], list[tuple[dict, pd.DataFrame]]]:
    """Splits rows into settings: one group per (model, method, values of the varying hp columns).

    Args:
        ok: result rows (usually the ok ones), one per trial.

    Returns:
        The varying hp columns, and (key, rows) per setting in first-seen order; key maps model, method
        and each varying hp column to its value ("" where the method has no such hyperparameter).
    """
    hp_cols = varying_hp_columns(ok)
    keys = ["model", "method", *hp_cols]
    ok = ok.copy()
    ok[hp_cols] = ok[hp_cols].astype(object).where(ok[hp_cols].notna(), "")
    groups = [(dict(zip(keys, group if isinstance(group, tuple) else (group,))), part)
              for group, part in ok.groupby(keys, sort=False, dropna=False)]
    return hp_cols, groups


def leaderboard_table(df: pd.DataFrame) -> pd.DataFrame:
    """Aggregates ok rows over seeds; references first within each model."""
    hp_cols, groups = setting_groups(add_worst_case(df[df["status"] == "ok"]))
    rows = []
    for key, part in groups:
        row = dict(key)
        row["n"] = len(part)
        for col, header in COLUMNS.items():
            if col in LOG_COLUMNS and col in part:  # a geometric mean: p-values span hundreds of decades
                mean, half, _ = mean_ci(log10_fq(part[col].tolist()))
                row[header] = format_fq(mean, half)
                row[f"_{col}"] = 10**mean
            elif col in part:
                mean, half, _ = mean_ci(part[col].tolist())
                row[header] = format_ci(mean, half, FORMATS.get(col, "{:.3f}"))
                row[f"_{col}"] = mean
        if "privleak" in part:
            row["membership"] = membership_verdict(row.get("_privleak", float("nan")))
        if "worst_forget_quality_by" in part:
            row["strongest attack"] = most_common(part["worst_forget_quality_by"])
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["_ref"] = table["method"].map(REFERENCE_ORDER).fillna(2)
    table = table.sort_values(["model", "_ref", "method", *hp_cols], kind="stable")
    return table.drop(columns="_ref").reset_index(drop=True)


def unstable_table(df: pd.DataFrame) -> pd.DataFrame:
    """The settings with diverged or failed rows, one line per (setting, status): which seeds, out of
    how many rows the setting has, at which steps training diverged, and the first reason."""
    if (df["status"] == "ok").all():
        return pd.DataFrame()
    hp_cols = varying_hp_columns(df)
    keys = ["model", "method", *hp_cols]
    rows = df.assign(**{c: df[c].astype(object).where(df[c].notna(), "") for c in hp_cols})
    rows["_of"] = rows.groupby(keys, sort=False, dropna=False)["status"].transform("size")
    lines = []
    for key, part in rows[rows["status"] != "ok"].groupby([*keys, "status"], sort=False, dropna=False):
        first_error = next((e.strip() for e in part["error"] if isinstance(e, str) and e.strip()), "")
        steps = part["diverged_step"].dropna().astype(int).tolist() if "diverged_step" in part else []
        lines.append({**{k.removeprefix("hp."): v for k, v in zip([*keys, "status"], key)},
                      "seeds": ", ".join(str(int(s)) for s in sorted(part["seed"].dropna())),
                      "of": int(part["_of"].iloc[0]),
                      "at step": ", ".join(map(str, steps)),
                      "reason": first_error.splitlines()[0].split(";")[0][:100] if first_error else ""})
    return pd.DataFrame(lines)


def unstable_markdown(df: pd.DataFrame) -> str:
    """Diverged and failed settings as Markdown, or "" when every row is ok."""
    table = unstable_table(df)
    if table.empty:
        return ""
    return (tabulate(table, headers="keys", tablefmt="github", showindex=False) +
            "\n\nDiverged rows stopped early (loss NaN, infinite or beyond `unlearn.max_loss`) and were evaluated as "
            "before the step that broke them; failed rows raised (`error` column; `bench run --retry-failed` runs "
            "them again). Neither is averaged into the leaderboard.")


def render(df: pd.DataFrame) -> str:
    """The leaderboard as a Markdown table (GitHub pipes), with a legend."""
    table = leaderboard_table(df)
    if table.empty:
        return "No successful rows yet."
    shown = table[[c for c in table.columns if not c.startswith("_")]]
    shown = shown.rename(columns=lambda c: c.removeprefix("hp."))
    body = tabulate(shown, headers="keys", tablefmt="github", showindex=False)
    failed = int((df["status"] != "ok").sum())
    legend = ("Mean ± half-width of the 95% t-interval over seeds (n = seeds). Reference rows: `none` = the target "
              "before unlearning, `retain` = the model never trained on the forget set. Forget quality is a KS-test "
              "p-value (higher = closer to the retain model); EM = greedy exact match. Membership inference "
              "(forget vs holdout answers): AUROC 0.5 is the retain model's, 1 memorised, and well below 0.5 "
              "over-unlearned: the forget set stands out by being unlikely, which leaks membership too. Privacy "
              f"leakage (MUSE) is 0 for the retain model, about -100 for the target, > 0 over-unlearned; `membership` "
              f"reads it with a ±{LEAK_BAND:g} band.")
    if "worst_forget_quality" in table or "_worst_forget_quality" in table:
        legend += (" Worst case: the lowest forget quality and highest forget probability over the attacks "
                   "(relearning, quantization, reworded questions; `strongest attack` the one that most often gave "
                   "the lowest forget quality); recovery: the largest share of the forget probability lost to "
                   "unlearning that an attack on the model brings back (0 none, 1 all).")
    unstable = unstable_markdown(df)
    if unstable:
        legend += f" {failed} row(s) diverged or failed and are not averaged in: see below."
        return f"{body}\n\n{legend}\n\nDiverged or failed:\n\n{unstable}\n"
    return f"{body}\n\n{legend}\n"
