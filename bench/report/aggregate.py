"""What every report table shares: results rows grouped into settings
(model, method, hyperparameters, checkpoint) over seeds, means with t-intervals, forget quality as
log10 with its floor, and the report's error. Reads rows with pandas; never imports torch.

A trial may write several rows (the row protocol, `with_protocol_columns`): one per evaluated
checkpoint (`step`, `is_final`), one per part of a sequential trial (`sequential_part` of
`sequential_parts`), and a suite may sweep the forget set's size (`forget_fraction`). Rows of
different steps are never averaged together: the step is part of a setting's key, and tables about
the full budget read each trial's final row only. Which metric columns a table shows, and how, is in
bench.report.columns.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
from scipy.special import stdtrit
from tabulate import tabulate

from bench.run.results import ReportError  # noqa: F401  (re-exported: the report's error)

# PrivLeak within ±LEAK_BAND of 0 reads as the retain model's behaviour; outside it, the verdict says which way.
LEAK_BAND = 20.0
BASELINE_ORDER = {"none": 0, "retain": 1}
# Forget quality is a KS p-value that reaches 1e-239 on real rows and can underflow to 0: it is averaged
# and ranked as log10, clipped here first so a 0 does not become -inf (just above float64's smallest normal).
FQ_FLOOR = 1e-300


# The row protocol: columns a trial writes when it is evaluated more than once, and their values in older
# results that lack them (one final row per trial, not sequential, forget-set size unknown).
PROTOCOL_DEFAULTS = {"step": np.nan, "is_final": True, "sequential_part": np.nan, "sequential_parts": np.nan,
                     "forget_fraction": np.nan}
# Besides model, method and hyperparameters, what tells two settings apart: a sequential trial is not a
# one-shot trial with the same hyperparameters, and a checkpoint is its own setting.
SETTING_EXTRA = ("sequential_parts", "step")


def markdown_table(lines: list[dict]) -> str:
    """Already formatted cells as a GitHub Markdown table (the report's and its sections')."""
    # disable_numparse: cells are formatted already; tabulate would turn "1.00e-07" back into 1e-07
    return tabulate(pd.DataFrame(lines), headers="keys", tablefmt="github", showindex=False, disable_numparse=True)


def slug(name: str) -> str:
    """A model or setting label as a file-name part ("tiny-llama (forget 5%)" -> "tiny-llama-forget-5-")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


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
    # Student's t quantile through scipy.special: scipy.stats computes it the same way, but takes ~0.6 s to import
    half = stdtrit(n - 1, 0.975) * v.std(ddof=1) / math.sqrt(n)
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


def fraction_label(model: str, fraction) -> str:
    """"tiny-llama (forget 5%)": how a model is named when a suite sweeps the forget set's size."""
    return model if pd.isna(fraction) else f"{model} (forget {100 * float(fraction):g}%)"


def with_protocol_columns(df: pd.DataFrame, label_fractions: bool = True) -> pd.DataFrame:
    """`df` with every PROTOCOL_DEFAULTS column (absent ones at their defaults) and `base_model`.

    When the rows hold more than one forget fraction and `label_fractions` is set, `model` becomes
    `fraction_label(base_model, forget_fraction)`: each fraction has its own target and retain model,
    so every per-model table and selection keeps fractions apart without knowing about them.
    Idempotent: labels are always made from `base_model`.
    """
    out = df.copy()
    for column, default in PROTOCOL_DEFAULTS.items():
        if column not in out:
            out[column] = default
        elif column != "is_final":
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    # rows read from files with and without the column: NaN there means "final", as when it is absent
    out["is_final"] = np.array([True if pd.isna(v) else bool(v) for v in out["is_final"]], dtype=bool)
    if "base_model" not in out:
        out["base_model"] = out["model"] if "model" in out else ""
    several = out["forget_fraction"].dropna().nunique() > 1
    out["model"] = ([fraction_label(m, f) for m, f in zip(out["base_model"], out["forget_fraction"])]
                    if label_fractions and several else out["base_model"])
    return out


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Each trial's last row (full budget, or where it diverged): the rows tables about the full budget read."""
    df = with_protocol_columns(df)
    return df[df["is_final"]]


def candidate_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that can be a leaderboard setting: every checkpoint of a one-shot trial (the checkpoint is
    part of the setting), but only the final row of a sequential trial (earlier rows forgot fewer parts)."""
    df = with_protocol_columns(df)
    return df[df["sequential_part"].isna() | df["is_final"]]


def has_checkpoints(df: pd.DataFrame) -> bool:
    """Whether some one-shot trial was evaluated at more than one step (a learning curve to draw)."""
    rows = with_protocol_columns(df)
    rows = rows[(rows["status"] == "ok") & rows["sequential_part"].isna() & rows["step"].notna()]
    if rows.empty:
        return False
    if "trial_id" in rows and rows["trial_id"].notna().all():
        trial = ["trial_id"]
    else:  # rows built by hand: a trial is a setting and a seed
        trial = ["model", "method", "seed", *varying_hp_columns(rows)]
        rows = rows.assign(**{c: rows[c].astype(object).where(rows[c].notna(), "") for c in trial})
    return bool((rows.groupby(trial, sort=False, dropna=False)["step"].nunique() > 1).any())


def has_validation(df: pd.DataFrame) -> bool:
    """Whether some ok unlearned row (baseline rows are never selected) has a finite forget quality on
    the forget_val split."""
    if "forget_val_quality" not in df:
        return False
    rows = (df["status"] == "ok") & ~df["method"].isin(list(BASELINE_ORDER))
    values = pd.to_numeric(df.loc[rows, "forget_val_quality"], errors="coerce")
    return bool(np.isfinite(values.to_numpy(dtype=float)).any())


def hp_text(row, columns) -> str:
    """A setting as people read it, "lr 3e-4, forget_factor -8" ("defaults" when none is set)."""
    return ", ".join(f"{c.removeprefix('hp.')} {format_hp(row[c])}" for c in columns
                     if not pd.isna(row[c]) and row[c] != "") or "defaults"


def setting_groups(ok: pd.DataFrame) -> tuple[list[str], list[tuple[dict, pd.DataFrame]]]:
    """Splits rows into settings: one group per (model, method, values of the varying hp columns, and the
    SETTING_EXTRA columns where present and varying: a sequential trial's part count and the step).

    Args:
        ok: result rows (usually the ok ones).

    Returns:
        The varying hp columns, and (key, rows) per setting in first-seen order; key maps model, method,
        each varying hp column and each SETTING_EXTRA column it groups by to its value ("" where the
        method has no such hyperparameter, or the row no step).
    """
    hp_cols = varying_hp_columns(ok)
    # a column with one value splits nothing: left out, so old results keep their keys and columns
    extra = [c for c in SETTING_EXTRA if c in ok and ok[c].nunique(dropna=False) > 1]
    keys = ["model", "method", *hp_cols, *extra]
    ok = ok.copy()
    ok[hp_cols + extra] = ok[hp_cols + extra].astype(object).where(ok[hp_cols + extra].notna(), "")
    groups = [(dict(zip(keys, group if isinstance(group, tuple) else (group,))), part)
              for group, part in ok.groupby(keys, sort=False, dropna=False)]
    return hp_cols, groups

