"""What survives an attack: worst-case forget metrics and recovery per row, and the robustness table.

A row's `attack.<variant>.<metric>` columns (bench.run.attacks) are reduced to the worst case over
its variants: the lowest forget quality (the most distinguishable from the retain model), the
highest forget probability and the highest recovery, and which variant gave each. The leaderboard
averages these over seeds like any metric, so methods can be ranked by what an attacker sees.
Reads rows with pandas; never imports torch.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bench.core.outputs import Output

ATTACK_COLUMN = re.compile(r"^attack\.(?P<variant>[^.]+)\.(?P<metric>[^.]+)$")
# worst-case column -> (per-variant metric, reduction: which value is worst)
WORST = {"worst_forget_quality": ("forget_quality", "min"), "worst_forget_prob": ("forget_prob", "max"),
         "max_recovery": ("recovery", "max")}
# How the report's tables show the WORST columns (bench.report.columns), declared as metrics declare theirs.
WORST_OUTPUTS = {
    "worst_forget_quality": Output(True, header="worst-case FQ", scale="log", leaderboard=15, every_setting=100,
                                   axis="worst-case forget quality after attacks (KS p-value, log scale)"),
    "worst_forget_prob": Output(False, header="worst-case forget prob", every_setting=110,
                                axis="worst-case forget probability after attacks (0–1)"),
    "max_recovery": Output(False, header="recovery", leaderboard=70, every_setting=120,
                           axis="recovery (share of the forget probability lost to unlearning that an attack brings back)"),
}


def attack_variants(df: pd.DataFrame, metric: str) -> list[str]:
    """The variants that report `metric`, in column order."""
    return [m["variant"] for c in df.columns if (m := ATTACK_COLUMN.match(c)) and m["metric"] == metric]


def add_worst_case(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the WORST columns (NaN where a row has no attack value) and `<column>_by`, the
    variant that gave it; unchanged when no row has attack columns."""
    out = df.copy()
    for column, (metric, reduce) in WORST.items():
        variants = attack_variants(df, metric)
        if not variants:
            continue
        values = df[[f"attack.{v}.{metric}" for v in variants]].astype(float).to_numpy()
        has = ~np.isnan(values).all(axis=1)
        pick = np.full(len(df), -1)
        if has.any():
            filled = np.where(np.isnan(values[has]), np.inf if reduce == "min" else -np.inf, values[has])
            pick[has] = filled.argmin(axis=1) if reduce == "min" else filled.argmax(axis=1)
        out[column] = [values[i, p] if p >= 0 else np.nan for i, p in enumerate(pick)]
        out[f"{column}_by"] = [variants[p] if p >= 0 else None for p in pick]
    return out


def most_common(labels) -> str:
    """The variant named most often over a setting's seeds ("" when none)."""
    labels = pd.Series([x for x in labels if isinstance(x, str)])
    return "" if labels.empty else str(labels.value_counts().index[0])


def robustness_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per setting (final ok rows, means over seeds): forget quality and forget probability before and after
    the strongest attack, and each model attack's recovery; empty when no row was attacked.
    `_fq_before` / `_fq_worst` hold the plain means of log10 forget quality, for the plot. Attacks run at a
    trial's final checkpoint, so earlier checkpoint rows are left out; with several forget fractions the
    model is named per fraction (bench.report.every_setting.with_protocol_columns)."""
    from bench.report.aggregate import BASELINE_ORDER, final_rows, format_fq, format_hp, log10_fq, mean_ci, setting_groups

    rows = final_rows(rows)
    ok = add_worst_case(rows[rows["status"] == "ok"])
    if "worst_forget_quality" not in ok and "worst_forget_prob" not in ok:
        return pd.DataFrame()
    # Record attacks have no recovery (their columns stay empty): only the attacks on the model get one.
    recovery = [v for v in attack_variants(ok, "recovery") if ok[f"attack.{v}.recovery"].notna().any()]
    hp_cols, groups = setting_groups(ok)
    lines = []
    for key, part in groups:
        setting = [f"{c.removeprefix('hp.')} {format_hp(key[c])}" for c in hp_cols if key[c] != ""]
        if key.get("sequential_parts", "") != "":  # a sequential trial is not the one-shot one with its hyperparameters
            setting.append(f"sequential {int(key['sequential_parts'])} parts")
        line = {"model": key["model"], "method": key["method"], "setting": ", ".join(setting), "n": len(part)}
        for column, header in (("forget_quality", "FQ"), ("worst_forget_quality", "worst-case FQ")):
            if column in part:
                mean, half, _ = mean_ci(log10_fq(part[column].tolist()))
                line[header] = format_fq(mean, half)
                line["_fq_before" if column == "forget_quality" else "_fq_worst"] = mean
        if "worst_forget_quality_by" in part:
            line["by"] = most_common(part["worst_forget_quality_by"])
        for column, header in (("forget_prob", "forget prob"), ("worst_forget_prob", "worst-case forget prob")):
            if column in part:
                line[header] = f"{np.nanmean(part[column].astype(float)):.3f}" if part[column].notna().any() else ""
        for variant in recovery:
            values = part[f"attack.{variant}.recovery"].astype(float)
            line[f"recovery {variant}"] = f"{values.mean():.2f}" if values.notna().any() else "–"
        line["_ref"] = BASELINE_ORDER.get(key["method"], 2)
        lines.append(line)
    table = pd.DataFrame(lines).sort_values(["model", "_ref"], kind="stable").drop(columns="_ref")
    return table.reset_index(drop=True)


def robustness_markdown(table: pd.DataFrame) -> str:
    from tabulate import tabulate

    shown = table[[c for c in table.columns if not c.startswith("_")]]
    return (tabulate(shown, headers="keys", tablefmt="github", showindex=False) +
            "\n\nFQ before any attack and the worst case after one (`by`: the attack that most often gave it); "
            "forget probability likewise. Recovery per model attack: (p after − p before) / (p target − p before) "
            "on the forget questions it is evaluated on (relearning: those it did not relearn on), 0 = nothing "
            "comes back, 1 = all the target had; the `retain` row's recovery is what the same attack teaches a model "
            "that never saw the forget set (generalisation alone), the `none` row has nothing to recover (–).")
