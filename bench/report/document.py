"""The report of a results directory: leaderboard at selected settings, significance, Pareto front, probes.

`bench report results/<suite>` (and the end of `bench run`) writes `results/<suite>/_report/report.md`
with PNG figures beside it. The directory's name starts with "_" because pyarrow's dataset reader
(`pandas.read_parquet("results/<suite>")`) fails on a subdirectory of non-Parquet files otherwise.
Everything comes from the Parquet rows; no model is loaded and nothing is recomputed.

Forget quality is a KS p-value spanning hundreds of orders of magnitude: it is averaged, compared and
ranked as log10 (clipped at FQ_FLOOR), never as an arithmetic mean of p-values.

Which setting (hyperparameters and checkpoint) represents a method is chosen on the forget_val split
(authors unlearned with the forget set but scored apart), and the forget (test) split is only reported: choosing on the
split one reports is the optimistic bias of model selection on test data (Cawley & Talbot, "On
Over-fitting in Model Selection and Subsequent Selection Bias in Performance Evaluation", JMLR 2010).
Choosing on test stays available as the labelled optimistic view, and the report shows how far apart
the two choices are. Learning curves, forget-set sizes and sequential unlearning are in bench.report.sections.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.selection import UTILITY_RATIO, _cell, _has_val, has_values, kept_label, ranked_shown, select_settings, selection_basis, selection_note, settings_table
from bench.report import sections as protocol
from bench.report.ablation import ablation_grid, write_heatmap
from bench.core.atomic import atomic_file
from bench.report.aggregate import FQ_FLOOR, LEAK_BAND, BASELINE_ORDER, ReportError, final_rows, format_ci, format_fq, membership_verdict, markdown_table, slug
from bench.report.columns import ReportColumns
from bench.report.every_setting import unstable_markdown
from bench.report.plots import axis_label, pareto_plot, robustness_plot
from bench.run.results import read_rows
from bench.report.robustness import robustness_markdown, robustness_table

REPORT_DIR = "_report"  # the leading "_" keeps it out of the Parquet dataset
ALPHA = 0.05  # significance level of the comparisons with the top method
MIN_SEEDS = 3  # with fewer seeds on a side, a test over seeds cannot separate two methods
BASELINE_LABELS = {"none": "none (target)", "retain": "retain (gold standard)"}
def pareto_mask(x, y) -> np.ndarray:
    """Which points are not dominated when maximising both x and y.

    A point is dominated when another is at least as good on both axes and strictly better on one, so
    duplicates of a front point all stay on the front. NaN points are never on it.

    Args:
        x: (N,) first objective.
        y: (N,) second objective.

    Returns:
        (N,) bool.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    valid = ~(np.isnan(x) | np.isnan(y))
    xv, yv = np.where(valid, x, -np.inf), np.where(valid, y, -np.inf)
    geq = (xv[:, None] >= xv[None, :]) & (yv[:, None] >= yv[None, :])  # [i, j]: i at least as good as j
    better = (xv[:, None] > xv[None, :]) | (yv[:, None] > yv[None, :])
    dominated = ((geq & better) & valid[:, None]).any(axis=0)
    return valid & ~dominated


def mark_front(settings: pd.DataFrame) -> pd.DataFrame:
    """Adds `front`: on the Pareto front of mean log10 forget quality x mean utility among the model's
    unlearned settings (baseline rows excluded: the retain model would dominate every setting)."""
    table = settings.copy()
    table["front"] = False
    for _, part in table[~table["method"].isin(list(BASELINE_ORDER))].groupby("model", sort=False):
        table.loc[part.index, "front"] = pareto_mask(part["fq_log10"], part["model_utility"])
    return table


def significance(selected: pd.DataFrame) -> pd.DataFrame:
    """Welch's t-test on per-seed log10 forget quality: each model's top method against every other one.

    Args:
        selected: the selected settings (`select_settings` rows with `selected`), with fq_log10_values.

    Returns:
        One row per (model, other method): model, top, other, n_top, n_other, mean log10 FQ of each, t, p
        (NaN with fewer than 2 seeds on a side or no spread) and a verdict: separated (p < ALPHA, n >=
        MIN_SEEDS per side), or why not.
    """
    from scipy.stats import ttest_ind  # here: the leaderboard, printed first, needs no scipy.stats

    out = []
    for model, part in selected.sort_values("rank").groupby("model", sort=False):
        top = part.iloc[0]
        a = np.asarray(top["fq_log10_values"], dtype=float)
        for _, other in part.iloc[1:].iterrows():
            b = np.asarray(other["fq_log10_values"], dtype=float)
            t = p = np.nan
            if len(a) >= 2 and len(b) >= 2:
                with warnings.catch_warnings():  # constant samples: scipy warns and returns NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    t, p = ttest_ind(a, b, equal_var=False)
            if min(len(a), len(b)) < MIN_SEEDS:
                verdict = f"too few seeds to separate (n < {MIN_SEEDS} on a side)"
            elif math.isnan(p):
                verdict = "not testable (no spread over seeds)"
            elif p >= ALPHA:
                verdict = f"not separated (p ≥ {ALPHA:g})"
            else:
                verdict = f"separated (p < {ALPHA:g})"
            out.append({"model": model, "top": top["method"], "other": other["method"], "n_top": len(a),
                        "n_other": len(b), "top_log10": top["fq_log10"], "other_log10": other["fq_log10"],
                        "t": float(t), "p": float(p), "verdict": verdict})
    return pd.DataFrame(out)


def shown_columns(table: pd.DataFrame, columns: ReportColumns) -> list[str]:
    """The leaderboard's metric columns in their declared order, those that some setting of `table` (a
    `select_settings` output) has a value of; where the selection ranked on forget accuracy, what it ranked on
    (`ranked_shown`) and what a setting had to keep first."""
    shown = list(columns.leaderboard())
    if "selected_on" in table and (table["selected_on"] == "forget accuracy").any():
        # what the ranking read together, where the first of them stands (else first), then what a setting had to
        # keep where the leaderboard does not show it already
        ranked = ranked_shown(table)
        kept = [c for c in ([table["kept"].iloc[0]] if "kept" in table else []) if c not in shown and c not in ranked]
        at = sum(1 for c in shown[:min((shown.index(c) for c in ranked if c in shown), default=0)] if c not in ranked)
        rest = [c for c in shown if c not in ranked]
        shown = [*rest[:at], *ranked, *kept, *rest[at:]]

    def key(col: str) -> str:  # where settings_table keeps the column's mean
        return "fq_log10" if col == "forget_quality" else f"{col}_log10" if columns.is_log(col) else col

    return [col for col in shown if has_values(table, key(col))]


def _metric_cells(row: pd.Series, columns: ReportColumns, val: bool = False, shown: list[str] | None = None) -> dict:
    """The metrics the leaderboard shows of a setting (`settings_table` row): `shown` (default every declared
    leaderboard column), in that order (`val`: with forget quality on the forget_val split beside the test one)."""
    cells = {}
    shown = columns.leaderboard() if shown is None else shown
    for col in shown:
        if col == "forget_quality":  # what the selection ranks on: also in log10 units, and on forget_val
            cells[columns.header(col)] = format_fq(row["fq_log10"], row["fq_log10_ci"])
            cells["log10 FQ"] = format_ci(row["fq_log10"], row["fq_log10_ci"], "{:.2f}")
            if val:
                cells["FQ (forget_val)"] = format_fq(row["fq_val_log10"], row["fq_val_log10_ci"])
        elif columns.is_log(col) and f"{col}_log10" in row:
            cells[columns.header(col)] = format_fq(row[f"{col}_log10"], row[f"{col}_log10_ci"])
        elif col in row and not columns.is_log(col):
            cells[columns.header(col)] = _cell(row[col], row[f"{col}_ci"], row[f"{col}_n"], row["n"], columns.fmt(col))
    if "privleak" in row and "privleak" in shown:
        cells["membership"] = membership_verdict(row["privleak"])
    return cells


def _method_label(method: str) -> str:
    return BASELINE_LABELS.get(method, method)


def leaderboard_markdown(table: pd.DataFrame, columns: ReportColumns) -> str:
    """Per model: the baseline rows, then each method at its selected setting, ranked; notes below.

    Args:
        table: `select_settings` output.
        columns: the rows' declared columns (`ReportColumns.of(rows)`).
    """
    blocks = []
    val, shown = _has_val(table), shown_columns(table, columns)
    for model, part in table.groupby("model", sort=False):
        refs = part[part["method"].isin(list(BASELINE_ORDER))]  # settings_table put them first, target on top
        chosen = part[part["selected"]].sort_values("rank")
        rows = [{"rank": "", "method": _method_label(r["method"]), "setting": r["setting"], "n": r["n"],
                 **_metric_cells(r, columns, val, shown), "qualifies": ""} for _, r in refs.iterrows()]
        rows += [{"rank": int(r["rank"]), "method": r["method"], "setting": r["setting"], "n": r["n"],
                  **_metric_cells(r, columns, val, shown), "qualifies": "yes" if r["qualifies"] else "**no**"}
                 for _, r in chosen.iterrows()]
        threshold, target = part["threshold"].iloc[0], part["target_utility"].iloc[0]
        kept = kept_label(part)
        head = (f"### {model}\n\nSelected settings need {kept} ≥ {UTILITY_RATIO:g} x the target's "
                f"{target:.3f} = {threshold:.3f}." if not math.isnan(threshold) else
                f"### {model}\n\nNo target (`none`) utility for this model: the utility constraint is not applied.")
        notes = [f"- `{r['method']}`: no setting keeps {kept} ≥ {threshold:.3f}; shown at its "
                 f"highest-{'utility' if kept == 'model utility' else 'accuracy'} setting ({r['setting']}), which does not qualify."
                 for _, r in chosen[~chosen["qualifies"]].iterrows()]
        blocks.append("\n\n".join([head, markdown_table(rows), *(["\n".join(notes)] if notes else [])]))
    return "\n\n".join(blocks)


def significance_markdown(tests: pd.DataFrame) -> str:
    if tests.empty:
        return "No model has two methods to compare."
    rows = [{"model": r["model"], "top": r["top"], "vs": r["other"], "n (top, other)": f"{r['n_top']}, {r['n_other']}",
             "mean log10 FQ (top)": f"{r['top_log10']:.2f}", "mean log10 FQ (other)": f"{r['other_log10']:.2f}",
             "Welch t": "—" if math.isnan(r["t"]) else f"{r['t']:.2f}",
             "p": "—" if math.isnan(r["p"]) else f"{r['p']:.3g}", "verdict": r["verdict"]}
            for _, r in tests.iterrows()]
    return markdown_table(rows)


def pareto_markdown(table: pd.DataFrame) -> str:
    """The front's settings per model, from the highest forget quality (and lowest utility) down."""
    rows = [{"model": r["model"], "method": r["method"], "setting": r["setting"], "n": r["n"],
             "forget quality": format_fq(r["fq_log10"], r["fq_log10_ci"]),
             "model utility": format_ci(r["model_utility"], r["model_utility_ci"])}
            for _, part in table[table["front"]].groupby("model", sort=False)
            for _, r in part.sort_values("fq_log10", ascending=False, kind="stable").iterrows()]
    return markdown_table(rows) if rows else "No unlearned setting has both forget quality and utility."


def _answers(probes) -> dict[str, dict]:
    if probes is None or (isinstance(probes, float) and math.isnan(probes)):
        return {}
    return {p["prompt"]: p for p in json.loads(probes)}


def _md_text(text) -> str:
    """A generation as one Markdown table cell: pipes escaped, line breaks flattened."""
    return "—" if text is None else str(text).replace("|", "\\|").replace("\n", " ").strip() or "(empty)"


def probe_markdown(table: pd.DataFrame) -> str:
    """Per model and prompt: the target's answer (before) once, then each selected method's (after) at its
    lowest seed, and the retain model's where it has one."""
    blocks = []
    for model, part in table.groupby("model", sort=False):
        target = part[part["method"] == "none"]
        chosen = part[part["selected"]].sort_values("rank")
        retain = part[part["method"] == "retain"]
        answers = {r["method"]: _answers(r["probes"]) for _, r in pd.concat([chosen, retain]).iterrows()}
        before = _answers(target["probes"].iloc[0]) if len(target) else {}
        prompts = list(before) or next((list(a) for a in answers.values() if a), [])
        if not prompts:
            continue
        rows = []
        for prompt in prompts:
            first = before.get(prompt) or next((a[prompt] for a in answers.values() if prompt in a), {})
            rows.append({"prompt": _md_text(prompt), "model": "target (before)",
                         "answer": _md_text(first.get("before"))})
            rows += [{"prompt": "", "model": _method_label(method), "answer": _md_text(by_prompt[prompt]["after"])}
                     for method, by_prompt in answers.items() if prompt in by_prompt]
        blocks.append(f"### {model}\n\n{markdown_table(rows)}")
    return "\n\n".join(blocks) if blocks else "No probe generations in these rows (the suite has no `probes:`)."


def full_markdown(table: pd.DataFrame, columns: ReportColumns) -> str:
    rows = []
    val, shown = _has_val(table), shown_columns(table, columns)
    kept = "utility ok" if kept_label(table) == "model utility" else "neighbours ok"
    for _, r in table.iterrows():
        baseline = r["method"] in BASELINE_ORDER
        rows.append({"model": r["model"], "method": _method_label(r["method"]), "setting": r["setting"], "n": r["n"],
                     **_metric_cells(r, columns, val, shown),
                     kept: "" if baseline else ("yes" if r["eligible"] else "no"),
                     "Pareto": "✓" if r["front"] else "", "selected": "✓" if r["selected"] else ""})
    return markdown_table(rows)


def auto_ablations(rows: pd.DataFrame) -> list[tuple[str, str, str | None, str | None]]:
    """(x, y, model, method) heatmaps to draw: when exactly one method varies >= 2 hp columns, the first two by name.

    The model and method filters are set only where the suite has more than one of them (file names stay short);
    models are named per forget fraction where there are several, as `ablation_grid` names them.
    """
    rows = final_rows(rows)
    ok = rows[(rows["status"] == "ok") & ~rows["method"].isin(list(BASELINE_ORDER))]
    varying = {}
    for method, part in ok.groupby("method", sort=False):
        cols = sorted(c for c in part.columns if c.startswith("hp.") and part[c].dropna().astype(str).nunique() > 1)
        if len(cols) >= 2:
            varying[method] = cols
    if len(varying) != 1:
        return []
    (method, cols), = varying.items()
    several_methods = ok["method"].nunique() > 1
    models = ok.loc[ok["method"] == method, "model"].drop_duplicates().tolist()
    return [(cols[0], cols[1], model if len(models) > 1 else None, method if several_methods else None)
            for model in models]


# Added to the legend where no row has a forget quality (no retain model: RWKU's shape).
NO_FORGET_QUALITY = """
- **No forget quality here** (no retain model: the model knew the forget set before anyone could leave it out; or
  data without truth ratios: text corpora, multiple choice), so the selection rule reads forget accuracy instead
  (the share of forget questions whose greedy answer names the fact, or of forget multiple-choice items answered
  right; lower = more forgotten), then forget probability or forget KnowMem, and a setting qualifies
  by keeping {kept} ≥ {ratio:g} x the target's. The significance test and the Pareto front read forget quality:
  there are none here."""


@dataclass
class Report:
    """What `build_report` wrote: report.md, its figures, and the leaderboard section for printing."""

    path: Path
    figures: list[Path] = field(default_factory=list)
    leaderboard: str = ""


LEGEND = """How to read it:

- Every number is over seeds: mean ± half-width of the two-sided 95% Student-t interval (n = seeds; no ± with n = 1).
- **Forget quality** (KS p-value against the retain model; higher = closer to it) spans hundreds of orders of
  magnitude, so it is averaged and ranked as **log10**, after clipping p-values at {floor:.0e}. `forget quality`
  shows the geometric mean 10^mean(log10 FQ) with its 95% interval as a ×/÷ factor (10^half-width); `log10 FQ`
  shows the same in log10 units (mean ± half-width). No arithmetic mean of p-values is taken.
- **Selection rule**: per model, each method is shown at the setting (hyperparameters and, where trials were
  evaluated at several checkpoints, the step) with the highest mean log10 forget quality {split} among its
  settings whose mean model utility is ≥ {ratio:g} x the target's (method `none`); methods are ranked on the same
  score. Model utility is measured on retain and general-knowledge data, not on the forget set. A method with
  no such setting is shown at its highest-utility setting, marked `qualifies: no`, and ranked after the qualifying
  ones. Sequential trials count with their final row (all parts forgotten).
- **Significance**: the top method against each other method's selected setting, Welch's t-test
  (`scipy.stats.ttest_ind(equal_var=False)`) on per-seed log10 forget quality. Two methods count as separated only
  with p < {alpha:g} and at least {min_seeds} seeds on each side.
- Model utility: TOFU's harmonic mean of 9 scores (0–1). Retain EM: greedy exact match on retain questions.
  Min-K%++ AUROC: membership inference, forget vs holdout answers (0.5 = the retain model's; well below 0.5 =
  over-unlearned, also a leak). Privacy leakage (MUSE PrivLeak): 0 for the retain model, about -100 for the
  target, > 0 over-unlearned; `membership` reads it with a ±{band:g} band."""


def _leaderboard(rows: pd.DataFrame, where: Path | str):
    """(the leaderboard section, the settings, the selection basis, its note, the selected table)."""
    settings = settings_table(rows)
    if settings.empty:
        raise ReportError(f"{where}: none of the {len(rows)} rows has status ok; see their `error` column")
    basis = selection_basis(settings)
    table = mark_front(select_settings(settings, on=basis))
    # automatic: "test" only when unlearned rows lack them
    note = selection_note(basis, basis == "validation", kept=table["kept"].iloc[0])
    return f"{note}\n\n{leaderboard_markdown(table, ReportColumns.of(rows))}", settings, basis, note, table


def leaderboard_section(rows: pd.DataFrame, where: Path | str = "rows") -> str:
    """The leaderboard: each method at its selected setting and checkpoint, as the report's first section
    shows it; `bench run` prints it and writes it as `_leaderboard.md`, `bench leaderboard` prints it."""
    return _leaderboard(rows, where)[0]


def build_report(results_dir: Path, out_dir: Path | None = None) -> Report:
    """Reads every row of a results directory and writes the report and its figures.

    Args:
        results_dir: `results/<suite>`, holding one Parquet row per trial.
        out_dir: where to write (default: `results_dir/_report`).

    Returns:
        The report's path, its figures and its leaderboard section.

    Raises:
        ReportError: no rows, or no successful ones.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"{results_dir}: not a directory (expected results/<suite>/ written by `bench run`)")
    rows = read_rows(results_dir)
    if rows.empty:
        raise ReportError(f"{results_dir}: no result rows (<trial_id>.parquet files written by `bench run`)")
    leaderboard, settings, basis, note, table = _leaderboard(rows, results_dir)
    out_dir = Path(out_dir) if out_dir else results_dir / REPORT_DIR
    suite = rows["suite"].dropna().iloc[0] if "suite" in rows and rows["suite"].notna().any() else results_dir.name
    selected = table[table["selected"]]
    curves, curve_figures = protocol.learning_curve_section(rows, out_dir, suite)
    sizes, size_figures = protocol.forget_size_section(rows, table, out_dir, suite, note)
    sequential, sequential_figures = protocol.sequential_section(rows, out_dir, suite)
    columns = ReportColumns.of(rows)
    figures = _pareto_figures(table, out_dir, suite, columns)
    worst = worst_case_front(table)
    worst_figures = _pareto_figures(worst, out_dir, suite, columns, worst_case=True) if not worst.empty else []
    figures += worst_figures
    failed = int((rows["status"] != "ok").sum())
    seeds = sorted(rows.loc[rows["status"] == "ok", "seed"].dropna().unique().tolist())
    sections = [
        f"# Report: {suite}\n\n{len(rows)} rows from `{results_dir}` ({failed} diverged or failed, not averaged in"
        f"{': see Diverged and failed settings' if failed else ''}): "
        f"{rows['model'].nunique()} model(s), {(~table['method'].drop_duplicates().isin(list(BASELINE_ORDER))).sum()} "
        f"method(s) and the baseline rows, seeds {seeds}. "
        f"Read from the Parquet rows by `bench report`; nothing is recomputed.",
        LEGEND.format(floor=FQ_FLOOR, ratio=UTILITY_RATIO, alpha=ALPHA, min_seeds=MIN_SEEDS, band=LEAK_BAND,
                      split="on the forget_val split (authors unlearned with the forget set but scored apart), while every forget "
                      "column shows the forget (test) split" if basis == "validation" else
                      "on the forget (test) split itself: optimistic, as no row has a forget_val split")
        + (NO_FORGET_QUALITY.format(ratio=UTILITY_RATIO, kept=kept_label(table))
           if basis == "forget accuracy" else ""),
        f"## Leaderboard\n\n{leaderboard}",
        *([f"## Diverged and failed settings\n\n{unstable_markdown(rows)}"] if failed else []),
        _comparison_section(settings, basis),
        "## Significance\n\n" + (significance_markdown(significance(selected)) if basis != "forget accuracy" else
                                 "Not computed: the test compares per-seed log10 forget quality, which no row has here."),
        "## Pareto front: forget quality vs model utility\n\nThe unlearned settings no other setting beats on both "
        "mean log10 forget quality and mean model utility (baseline rows left out; duplicates of a front point "
        f"all stay on it).\n\n{pareto_markdown(table)}\n\n"
        + "\n".join(f"![{p.stem}]({p.name})" for p in figures),
        *[text for text in (curves, sizes, sequential) if text],
        *_robustness_section(rows, out_dir, suite, figures),
        *([f"### Pareto front on worst-case forget quality\n\nThe same front with each setting's forget quality "
           f"after the strongest attack.\n\n{pareto_markdown(worst)}\n\n"
           + "\n".join(f"![{p.stem}]({p.name})" for p in worst_figures)] if worst_figures else []),
        f"## Probes: answers before and after unlearning\n\nGreedy answers of the target (before), each selected "
        f"setting at its lowest seed, and the retain model.\n\n{probe_markdown(table)}",
    ]
    figures += curve_figures + size_figures + sequential_figures
    ablations = []
    for x, y, model, method in auto_ablations(rows):
        for metric in ("forget_quality", "model_utility"):
            grid = ablation_grid(rows, x, y, metric, model=model, method=method)
            path = write_heatmap(grid, out_dir, suite)
            figures.append(path)
            ablations.append(f"### {grid.title()}\n\n{grid.markdown()}\n![{path.stem}]({path.name})")
    if ablations:
        sections.append("## Ablations\n\n" + "\n\n".join(ablations))
    sections.append(f"## Every setting\n\n{full_markdown(table, columns)}")
    path = out_dir / "report.md"
    with atomic_file(path) as tmp:
        tmp.write_text("\n\n".join(sections) + "\n")
    return Report(path, figures, leaderboard)


def _comparison_section(settings: pd.DataFrame, basis: str) -> str:
    """"Selection on validation vs on test": per method, both choices and the test forget quality of each."""
    head = "## Selection on validation vs on test\n\n"
    if basis != "validation":
        return head + ("No forget_val split in these rows: the leaderboard selected on test, optimistic, and "
                       "there is no validation choice to compare it with.")
    comparison = protocol.selection_comparison(select_settings(settings, on="validation"),
                                               select_settings(settings, on="test"))
    agree = int(comparison["agree"].sum()) if not comparison.empty else 0
    return head + (
        "Each method's setting and checkpoint chosen by the same rule on forget_val forget quality (the leaderboard's) "
        "and on the forget (test) split itself (optimistic: the test split both chooses and scores). `optimism` is "
        "the second choice's test log10 forget quality minus the first's: how many decades choosing on test flatters "
        f"the method. {agree} of {len(comparison)} choices agree.\n\n" + protocol.comparison_markdown(comparison))


def _robustness_section(rows: pd.DataFrame, out_dir: Path, suite: str, figures: list[Path]) -> list[str]:
    """The "Robustness to attacks" section and its plots (appended to `figures`); none without attacks."""
    table = robustness_table(rows)
    if table.empty:
        return []
    plots = []
    for model, part in table.groupby("model", sort=False):
        points = part.rename(columns={"_fq_before": "fq_before", "_fq_worst": "fq_worst"})
        if not {"fq_before", "fq_worst"} <= set(points):
            continue
        points = points.dropna(subset=["fq_before", "fq_worst"]).assign(
            fq_before=lambda d: 10 ** d["fq_before"], fq_worst=lambda d: 10 ** d["fq_worst"])
        if points.empty:
            continue
        path = robustness_plot(points, out_dir / f"robustness_{slug(model)}.png",
                               title=f"{suite}, {model}: forget quality before vs after the strongest attack")
        figures.append(path)
        plots.append(f"![{path.stem}]({path.name})")
    return ["## Robustness to attacks\n\nEvery unlearned model (and both baseline models) attacked: relearning on "
            "a few forget questions, weight quantization, the questions reworded. Means over seeds.\n\n"
            + robustness_markdown(table) + ("\n\n" + "\n".join(plots) if plots else "")]


def worst_case_front(table: pd.DataFrame) -> pd.DataFrame:
    """The settings with `forget_quality` / `front` on the worst case after attacks (the lowest forget
    quality any attack left), for the second Pareto figure; empty when no row was attacked."""
    if "worst_forget_quality_log10" not in table or table["worst_forget_quality_log10"].isna().all():
        return pd.DataFrame()
    worst = table.assign(forget_quality=table["worst_forget_quality"], fq_log10=table["worst_forget_quality_log10"],
                         fq_log10_ci=table["worst_forget_quality_log10_ci"])
    return mark_front(worst)


def _pareto_figures(table: pd.DataFrame, out_dir: Path, suite: str, columns: ReportColumns,
                    worst_case: bool = False) -> list[Path]:
    """One scatter per model: every setting, the front, the baselines and the utility threshold
    (`worst_case`: forget quality after the strongest attack, from `worst_case_front`); `columns` names the axes."""
    figures = []
    kind = "worst-case forget quality after attacks" if worst_case else "forget quality"
    for model, part in table.groupby("model", sort=False):
        methods = part[~part["method"].isin(list(BASELINE_ORDER))]
        points = methods[["method", "forget_quality", "model_utility", "front"]].dropna(
            subset=["forget_quality", "model_utility"])
        refs = {r["method"]: (r["forget_quality"], r["model_utility"])
                for _, r in part[part["method"].isin(list(BASELINE_ORDER))].iterrows()
                if pd.notna(r["forget_quality"]) and pd.notna(r["model_utility"])}
        if points.empty and not refs:  # forget quality or utility never measured: nothing to draw
            continue
        threshold = part["threshold"].iloc[0]
        figures.append(pareto_plot(
            points, refs, out_dir / f"pareto_{'worst_' if worst_case else ''}{slug(model)}.png",
            title=f"{suite}, {model}: {kind} vs model utility (mean over seeds)",
            threshold=threshold, threshold_label=f"{UTILITY_RATIO:g} x target utility",
            xlabel=axis_label("worst_forget_quality", columns) if worst_case else None, columns=columns))
    return figures
