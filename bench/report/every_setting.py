"""Every setting of a run, `_settings.md`: one row per (model, method, hyperparameters) at each trial's
last step, without selection (the leaderboard, `_leaderboard.md`, is the selected settings: see
bench.report.selection and bench.report.document.leaderboard_section).

Each metric is shown as mean ± half-width of the 95% t-interval over seeds (n shown), baseline
rows (the target before unlearning, the retain-only model) on top of each model's block. Reads
rows with pandas; never imports torch. Also the aggregation the report and the ablation grids
share: the grouping into settings, log10 forget quality with its floor, and the errors they raise.

A trial may write several rows (the row protocol, `with_protocol_columns`): one per evaluated
checkpoint (`step`, `is_final`), one per part of a sequential trial (`sequential_part` of
`sequential_parts`), and a suite may sweep the forget set's size (`forget_fraction`). Rows of
different steps are never averaged together: the step is part of a setting's key, and tables about
the full budget (this leaderboard, robustness, failures) read each trial's final row only.
"""

from __future__ import annotations


import pandas as pd
from tabulate import tabulate

from bench.report.aggregate import LEAK_BAND, BASELINE_ORDER, final_rows, format_ci, format_fq, has_checkpoints, has_validation, log10_fq, mean_ci, membership_verdict, setting_groups, varying_hp_columns
from bench.report.columns import ReportColumns
from bench.report.robustness import add_worst_case, most_common


def leaderboard_table(df: pd.DataFrame) -> pd.DataFrame:
    """Aggregates the final ok rows over seeds (the full budget: one row per trial); baselines first within
    each model. `step` shows only where the final steps of the unlearned settings differ. The metric columns
    are those the rows' declarations show in this table (bench.report.columns), in their order, where some
    row has a value (a metric these rows could not measure, such as forget quality without a retain model,
    is left out rather than shown as a column of dashes)."""
    columns = ReportColumns.of(df)
    final = final_rows(df)
    ok = add_worst_case(final[final["status"] == "ok"])
    shown = [col for col in columns.every_setting() if col in ok and ok[col].notna().any()]
    hp_cols, groups = setting_groups(ok)
    rows = []
    for key, part in groups:
        row = {k: v for k, v in key.items() if k != "sequential_parts"}
        if "sequential_parts" in key:
            row["sequential"] = "" if key["sequential_parts"] == "" else f"{int(key['sequential_parts'])} parts"
        # hidden sort keys: a model's fractions in numeric order ("5%" before "10%")
        row["_base"], row["_fraction"] = part["base_model"].iloc[0], part["forget_fraction"].iloc[0]
        row["n"] = len(part)
        for col in shown:
            if columns.is_log(col):  # a geometric mean: p-values span hundreds of decades
                mean, half, _ = mean_ci(log10_fq(part[col].tolist()))
                row[columns.header(col)] = format_fq(mean, half)
                row[f"_{col}"] = 10**mean
            else:
                mean, half, _ = mean_ci(part[col].tolist())
                row[columns.header(col)] = format_ci(mean, half, columns.fmt(col))
                row[f"_{col}"] = mean
        if "privleak" in shown:
            row["membership"] = membership_verdict(row.get("_privleak", float("nan")))
        if "worst_forget_quality_by" in part:
            row["strongest attack"] = most_common(part["worst_forget_quality_by"])
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["_ref"] = table["method"].map(BASELINE_ORDER).fillna(2)
    if "step" in table and table.loc[table["_ref"] == 2, "step"].nunique() <= 1:
        table = table.drop(columns="step")  # baselines at step 0, every trial at its full budget: nothing to read
    elif "step" in table:
        table["step"] = [v if v == "" else int(v) for v in table["step"]]
    table = table.sort_values(["_base", "_fraction", "model", "_ref", "method", *hp_cols], kind="stable")
    return table.drop(columns=["_ref", "_base", "_fraction"]).reset_index(drop=True)


def unstable_table(df: pd.DataFrame) -> pd.DataFrame:
    """The settings with diverged or failed rows, one line per (setting, status): which seeds, out of
    how many rows the setting has, at which steps training diverged, and the first reason."""
    if (df["status"] == "ok").all():
        return pd.DataFrame()
    df = final_rows(df)  # one row per trial: "of" counts trials, not checkpoints
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
    """Every setting as a Markdown table (GitHub pipes), with a legend."""
    table = leaderboard_table(df)
    if table.empty:
        return "No successful rows yet."
    shown = table[[c for c in table.columns if not c.startswith("_")]]
    shown = shown.rename(columns=lambda c: c.removeprefix("hp."))
    body = tabulate(shown, headers="keys", tablefmt="github", showindex=False)
    failed = int((final_rows(df)["status"] != "ok").sum())
    legend = ("Mean ± half-width of the 95% t-interval over seeds (n = seeds). Baseline rows: `none` = the target "
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
    if has_checkpoints(df) or has_validation(df):
        legend += (" Each trial at its final checkpoint (full budget); the leaderboard (`_leaderboard.md`) selects "
                   "among settings and checkpoints on the validation authors.")
    unstable = unstable_markdown(df)
    if unstable:
        legend += f" {failed} row(s) diverged or failed and are not averaged in: see below."
        return f"{body}\n\n{legend}\n\nDiverged or failed:\n\n{unstable}\n"
    return f"{body}\n\n{legend}\n"
