"""What a trial's several rows say: learning curves, forget-set size, sequential unlearning, and how far
choosing a setting on the test split is from choosing it on validation.

A trial may write a row per evaluated checkpoint (`step`, `is_final`), a row per part of a sequential
trial (`sequential_part` of `sequential_parts`: the forget set split into K parts unlearned one after the
other, each row's forget metrics on every part forgotten so far), and a suite may sweep the forget set's
size (`forget_fraction`, each with its own target and retain rows). The row protocol itself (defaults for
older results, labels per fraction, final rows) is in bench.report.every_setting; this module builds the report's
sections on it: tables of means over seeds, and their figures through bench.report.plots.

Forget quality is averaged over seeds as log10 (like everywhere in the report); every band is the 95%
Student-t interval over seeds (no band with one seed). Reads rows with pandas; never imports torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.aggregate import BASELINE_ORDER, format_ci, format_fq, has_checkpoints, hp_text, log10_fq, markdown_table, mean_ci, slug, varying_hp_columns, with_protocol_columns

from bench.report.columns import ReportColumns
from bench.report.plots import BASELINE_STYLE, curve_plot

BAND = "95% t-interval over seeds"  # what the shaded bands of every figure here are
BASELINES = list(BASELINE_ORDER)


def aggregate(part: pd.DataFrame) -> dict:
    """Means over a setting's rows (seeds) and 95% t half-widths: log10 forget quality on the forget (test)
    and forget_val splits, and model utility; NaN where the rows lack the metric."""
    out = {"n": len(part)}
    for prefix, column in (("fq", "forget_quality"), ("fq_val", "forget_val_quality")):
        mean, half, _ = mean_ci(log10_fq(part[column])) if column in part else (np.nan, np.nan, 0)
        out[f"{prefix}_log10"], out[f"{prefix}_log10_ci"] = mean, half
    mean, half, _ = mean_ci(part["model_utility"]) if "model_utility" in part else (np.nan, np.nan, 0)
    out["model_utility"], out["model_utility_ci"] = mean, half
    return out


def _cells(row) -> dict:
    return {"FQ (test)": format_fq(row["fq_log10"], row["fq_log10_ci"]),
            "FQ (forget_val)": format_fq(row["fq_val_log10"], row["fq_val_log10_ci"]),
            "model utility": format_ci(row["model_utility"], row["model_utility_ci"])}


def _settings(rows: pd.DataFrame, by: list[str]):
    """(model, method, setting text, rows) per setting of the unlearned rows, hp columns plus `by` as its key;
    the shown hyperparameters are those varying among the method's rows."""
    for (model, method), part in rows.groupby(["model", "method"], sort=False):
        hp_cols = varying_hp_columns(rows[rows["method"] == method])
        keys = hp_cols + by
        keyed = part.assign(**{c: part[c].astype(object).where(part[c].notna(), "") for c in keys})
        for _, setting in keyed.groupby(keys, sort=False, dropna=False) if keys else [((), keyed)]:
            yield model, method, hp_text(setting.iloc[0], hp_cols), setting


def baseline_levels(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model and baseline method (none = the target, retain = the gold standard): means over their ok
    rows, with base_model and forget_fraction (a fraction has baseline rows of its own)."""
    rows = with_protocol_columns(rows)
    refs = rows[(rows["status"] == "ok") & rows["method"].isin(BASELINES)]
    return pd.DataFrame([{"model": model, "method": method, "base_model": part["base_model"].iloc[0],
                          "forget_fraction": part["forget_fraction"].iloc[0], **aggregate(part)}
                         for (model, method), part in refs.groupby(["model", "method"], sort=False)])


def _baseline_lines(levels: pd.DataFrame, model: str) -> pd.DataFrame:
    """The model's baseline levels as `curve_plot` baselines: horizontal lines (x NaN)."""
    mine = levels[levels["model"] == model] if not levels.empty else levels
    return mine.assign(x=np.nan) if not mine.empty else pd.DataFrame()


# --------------------------------------------------------------------------------------- learning curves


def learning_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per (model, method, setting, step) of the ok one-shot rows: a learning curve per setting.

    Args:
        rows: result rows (`bench.run.results.read_rows`), several per trial.

    Returns:
        Columns model, method, setting (the hyperparameters, without the step), step, n, fq_log10,
        fq_log10_ci, fq_val_log10, fq_val_log10_ci, model_utility, model_utility_ci; sorted by model,
        method, setting and step.
    """
    rows = with_protocol_columns(rows)
    ok = rows[(rows["status"] == "ok") & rows["sequential_part"].isna() & rows["step"].notna()
              & ~rows["method"].isin(BASELINES)]
    lines = [{"model": model, "method": method, "setting": setting, "step": int(step), **aggregate(at)}
             for model, method, setting, part in _settings(ok, [])
             for step, at in part.groupby("step", sort=True)]
    return pd.DataFrame(lines)


def learning_curve_section(rows: pd.DataFrame, out_dir: Path, suite: str) -> tuple[str, list[Path]]:
    """The "Learning curves" section and its figures (one per model), or ("", []) when no trial has
    more than one checkpoint."""
    if not has_checkpoints(rows):
        return "", []
    curves, levels = learning_curves(rows), baseline_levels(rows)
    figures, blocks = [], []
    for model, part in curves.groupby("model", sort=False):
        lines = part.assign(line=part["method"] + " (" + part["setting"] + ")", x=part["step"])
        path = curve_plot(lines, _baseline_lines(levels, model), Path(out_dir) / f"curves_{slug(model)}.png",
                          title=f"{suite}, {model}: learning curves (mean over seeds, band: {BAND})",
                          xlabel="unlearning steps (optimizer steps)", columns=ReportColumns.of(rows))
        figures.append(path)
        table = [{"method": r["method"], "setting": r["setting"], "step": r["step"], "n": r["n"], **_cells(r)}
                 for _, r in part.iterrows()]
        blocks.append(f"### {model}\n\n{markdown_table(table)}\n\n![{path.stem}]({path.name})")
    text = ("## Learning curves\n\nEvery unlearned setting at each evaluated checkpoint: forget quality on the forget "
            "(test) split (solid) and on the forget_val split (dashed), and model utility, against the optimizer steps "
            f"done. Means over seeds; shaded: {BAND}. Horizontal lines: the target before unlearning and the retain "
            "model. Forget quality is averaged as log10.\n\n" + "\n\n".join(blocks))
    return text, figures


# --------------------------------------------------------------------------------------- forget-set size


def forget_size_table(selected: pd.DataFrame) -> pd.DataFrame:
    """The selected setting of each method and the baseline rows per (base model, forget fraction).

    Args:
        selected: `bench.report.document.select_settings` output (one model label per fraction).

    Returns:
        Columns base_model, forget_fraction, method, setting, n and the metric columns of `aggregate`
        (from the settings table); sorted by base model, method (baselines first) and fraction.
    """
    keep = selected[selected["selected"] | selected["method"].isin(BASELINES)]
    keep = keep[keep["forget_fraction"].notna()]
    columns = ["base_model", "forget_fraction", "method", "setting", "n", "fq_log10", "fq_log10_ci", "fq_val_log10",
               "fq_val_log10_ci", "model_utility", "model_utility_ci"]
    order = keep["method"].map(BASELINE_ORDER).fillna(len(BASELINE_ORDER))
    return (keep.assign(_ref=order).sort_values(["base_model", "_ref", "method", "forget_fraction"], kind="stable")
            [columns].reset_index(drop=True))


def forget_size_section(rows: pd.DataFrame, selected: pd.DataFrame, out_dir: Path, suite: str,
                        note: str) -> tuple[str, list[Path]]:
    """The "Forget-set size" section and its figures (one per base model), or ("", []) with one fraction.

    Args:
        rows: result rows.
        selected: `select_settings` output: each fraction's methods at their selected settings.
        out_dir: where the figures go.
        suite: the suite's name, for titles.
        note: the selection rule the settings were chosen by (`bench.report.document.selection_note`).
    """
    fractions = with_protocol_columns(rows)
    if fractions.loc[fractions["status"] == "ok", "forget_fraction"].dropna().nunique() < 2:
        return "", []
    table = forget_size_table(selected)
    figures, blocks = [], []
    for model, part in table.groupby("base_model", sort=False):
        percent = 100 * part["forget_fraction"]
        methods = part[~part["method"].isin(BASELINES)]
        refs = part[part["method"].isin(BASELINES)].assign(x=100 * part["forget_fraction"])
        path = curve_plot(methods.assign(line=methods["method"], x=100 * methods["forget_fraction"]), refs,
                          Path(out_dir) / f"forget_size_{slug(model)}.png",
                          title=f"{suite}, {model}: forget-set size (selected settings; band: {BAND})",
                          xlabel="forget set (% of authors)", val=False, columns=ReportColumns.of(rows))
        figures.append(path)
        lines = [{"method": BASELINE_STYLE.get(r["method"], ("", r["method"]))[1], "forget set": f"{p:g}%",
                  "setting": r["setting"], "n": r["n"], **_cells(r)} for p, (_, r) in zip(percent, part.iterrows())]
        blocks.append(f"### {model}\n\n{markdown_table(lines)}\n\n![{path.stem}]({path.name})")
    text = ("## Forget-set size\n\nEach method at its selected setting for each forget fraction, selected per fraction "
            "against that fraction's own target and retain model (drawn as the baselines, one per fraction). "
            f"{note} Means over seeds; shaded: {BAND}.\n\n" + "\n\n".join(blocks))
    return text, figures


# --------------------------------------------------------------------------------------- sequential unlearning


def sequential_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds after each part of the sequential trials, per (model, method, setting, K).

    Args:
        rows: result rows; a sequential trial's row after part k has sequential_part k of sequential_parts K,
            its forget metrics on parts 1..k.

    Returns:
        Columns model, method, setting, part, parts, step (cumulative optimizer steps, the largest over seeds),
        n and the metric columns of `aggregate`; empty without sequential rows.
    """
    rows = with_protocol_columns(rows)
    seq = rows[(rows["status"] == "ok") & rows["sequential_part"].notna() & ~rows["method"].isin(BASELINES)]
    if "trial_id" in seq and seq["trial_id"].notna().all():  # a part evaluated at several checkpoints: its last
        seq = seq.sort_values("step", kind="stable").groupby(["trial_id", "sequential_part"], sort=False).tail(1)
    lines = [{"model": model, "method": method, "setting": setting, "part": int(k),
              "parts": int(part["sequential_parts"].max()), "step": at["step"].max(), **aggregate(at)}
             for model, method, setting, part in _settings(seq, ["sequential_parts"])
             for k, at in part.groupby("sequential_part", sort=True)]
    return pd.DataFrame(lines)


def sequential_section(rows: pd.DataFrame, out_dir: Path, suite: str) -> tuple[str, list[Path]]:
    """The "Sequential unlearning" section and its figures (one per model), or ("", []) without sequential rows."""
    table = sequential_table(rows)
    if table.empty:
        return "", []
    levels = baseline_levels(rows)
    figures, blocks = [], []
    for model, part in table.groupby("model", sort=False):
        lines = part.assign(line=part["method"] + " (" + part["setting"] + ", " + part["parts"].astype(str) + " parts)",
                            x=part["part"])
        path = curve_plot(lines, _baseline_lines(levels, model), Path(out_dir) / f"sequential_{slug(model)}.png",
                          title=f"{suite}, {model}: sequential unlearning (mean over seeds, band: {BAND})",
                          xlabel="parts of the forget set unlearned so far", integer_x=True,
                          columns=ReportColumns.of(rows))
        figures.append(path)
        lines = [{"method": r["method"], "setting": r["setting"], "after part": f"{r['part']}/{r['parts']}",
                  "step": "" if pd.isna(r["step"]) else int(r["step"]), "n": r["n"], **_cells(r)}
                 for _, r in part.iterrows()]
        blocks.append(f"### {model}\n\n{markdown_table(lines)}\n\n![{path.stem}]({path.name})")
    text = ("## Sequential unlearning\n\nThe forget set split into K parts unlearned one after another in one trial: "
            "after part k/K, forget quality on all the parts forgotten so far, and model utility (steps cumulative). "
            f"Means over seeds; shaded: {BAND}. The leaderboard counts a sequential trial at its final row only. "
            "Horizontal lines: the target and the retain model (forget quality on the whole forget set).\n\n"
            + "\n\n".join(blocks))
    return text, figures


# --------------------------------------------------------------------------------------- validation vs test


def selection_comparison(on_validation: pd.DataFrame, on_test: pd.DataFrame) -> pd.DataFrame:
    """Per (model, method): the setting chosen on forget_val against the one chosen on the test split itself.

    Args:
        on_validation: `select_settings(settings, on="validation")`.
        on_test: `select_settings(settings, on="test")` of the same settings.

    Returns:
        Columns model, method, val_setting, val_fq_log10 (its test forget quality), test_setting,
        test_fq_log10, gap (test_fq_log10 - val_fq_log10: how many decades the test view flatters the method)
        and agree (the same setting and checkpoint).
    """
    lines = []
    val = on_validation[on_validation["selected"]]
    test = on_test[on_test["selected"]].set_index(["model", "method"])
    for _, v in val.iterrows():
        t = test.loc[(v["model"], v["method"])]
        lines.append({"model": v["model"], "method": v["method"], "val_setting": v["setting"],
                      "val_fq_log10": v["fq_log10"], "test_setting": t["setting"], "test_fq_log10": t["fq_log10"],
                      "gap": t["fq_log10"] - v["fq_log10"], "agree": v["setting"] == t["setting"]})
    return pd.DataFrame(lines)


def comparison_markdown(comparison: pd.DataFrame) -> str:
    lines = [{"model": r["model"], "method": r["method"], "chosen on forget_val": r["val_setting"],
              "test FQ (forget_val choice)": format_fq(r["val_fq_log10"], np.nan),
              "chosen on test (optimistic)": r["test_setting"],
              "test FQ (test choice)": format_fq(r["test_fq_log10"], np.nan),
              "optimism (log10)": "—" if pd.isna(r["gap"]) else f"{r['gap']:.2f}",
              "agree": "yes" if r["agree"] else "**no**"}
             for _, r in comparison.iterrows()]
    return markdown_table(lines) if lines else "No unlearned method to compare."
