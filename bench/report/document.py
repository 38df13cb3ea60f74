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
from scipy import stats

from bench.report import sections as protocol
from bench.report.ablation import ablation_grid, write_heatmap
from bench.core.atomic import atomic_file
from bench.report.leaderboard import (COLUMNS, FORMATS, FQ_FLOOR, LEAK_BAND, REFERENCE_ORDER, ReportError, candidate_rows,
                          final_rows, format_ci, format_fq, hp_text, log10_fq, mean_ci, membership_verdict, setting_groups,
                          markdown_table, slug, unstable_markdown, varying_hp_columns,
                          with_protocol_columns)
from bench.report.plots import pareto_plot, robustness_plot
from bench.run.results import read_rows
from bench.report.robustness import add_worst_case, robustness_markdown, robustness_table

REPORT_DIR = "_report"  # the leading "_" keeps it out of the Parquet dataset
UTILITY_RATIO = 0.9  # a setting qualifies when its mean utility is at least this share of the target's
ALPHA = 0.05  # significance level of the comparisons with the top method
MIN_SEEDS = 3  # with fewer seeds on a side, a test over seeds cannot separate two methods
# Shown beside forget quality, as mean ± 95% CI over seeds (headers from the leaderboard's).
METRICS = ("model_utility", "retain_greedy_exact_match", "forget_rouge", "mia_mink_pp_auc", "privleak", "max_recovery")
REFERENCE_LABELS = {"none": "none (target)", "retain": "retain (gold standard)"}
# What each selection reads: mean log10 forget quality on the forget_val split, or on the forget (test) split.
SCORES = {"validation": "fq_val_log10", "test": "fq_log10"}


def _cell(column: str, mean: float, half: float, n: int, n_setting: int) -> str:
    text = format_ci(mean, half, FORMATS.get(column, "{:.3f}"))
    return f"{text} (n={n})" if 0 < n < n_setting else text  # a metric missing on some seeds says so


def _order(key: dict, first: pd.Series) -> tuple:
    """Sort key of a setting: model (then forget fraction, numerically), references first, method, then its
    hyperparameter values (numbers numerically), part count and step."""
    numbers = (int, float, np.integer, np.floating)
    hp = tuple((0, v, "") if isinstance(v, numbers) and not isinstance(v, bool) else (1, 0, str(v))
               for k, v in key.items() if k.startswith("hp."))
    extra = tuple(-1 if key.get(c, "") == "" else float(key[c]) for c in ("sequential_parts", "step"))
    fraction = -1.0 if pd.isna(first["forget_fraction"]) else float(first["forget_fraction"])
    return (first["base_model"], fraction, key["model"], REFERENCE_ORDER.get(key["method"], len(REFERENCE_ORDER)),
            key["method"], hp, extra)


def _number(value) -> float:
    """A grouped key's value as a float: "" (setting_groups' stand-in for missing) and NaN are NaN."""
    return np.nan if isinstance(value, str) or pd.isna(value) else float(value)


def _setting_text(first: pd.Series, hp_cols: list[str], several_steps: bool) -> str:
    """The setting's hyperparameters, then its sequential part count and (where the method has several) its step."""
    extra = []
    if not math.isnan(parts := _number(first["sequential_parts"])):
        extra.append(f"sequential {int(parts)} parts")
    if several_steps and not math.isnan(step := _number(first["step"])):
        extra.append(f"step {int(step)}")
    hp = hp_text(first, hp_cols)
    return ", ".join(([hp] if hp != "defaults" or not extra else []) + extra)


def settings_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method, hyperparameter setting, checkpoint) of the ok rows, aggregated over seeds.

    A checkpoint (`step`) is part of the setting: the rows a trial wrote at steps 25 and 50 are two settings,
    never averaged together. A sequential trial counts with its final row only (`candidate_rows`). With
    several forget fractions, `model` is the fraction's label (`with_protocol_columns`).

    Args:
        rows: result rows (`bench.run.results.read_rows`).

    Returns:
        Sorted by model, references first, then method, hyperparameter values and step. Columns model,
        base_model, forget_fraction, method, setting (the hyperparameters that vary among the method's settings
        or were set away from their defaults, "defaults" if none, "" for reference rows, then "step N" where the
        method has several steps), step, sequential_parts, n, seeds,
        fq_log10 / fq_log10_ci / fq_log10_values (mean, 95% CI half-width and the per-seed values of log10
        forget quality clipped at FQ_FLOOR), forget_quality (10^fq_log10), the same for the forget_val split
        (fq_val_log10, fq_val_log10_ci, fq_val_log10_values, forget_val_quality; NaN without that split), and
        for each column of METRICS present: <col>, <col>_ci, <col>_n; probes (the probe_generations JSON of
        the lowest seed).
    """
    rows = with_protocol_columns(rows)
    ok = add_worst_case(candidate_rows(rows[rows["status"] == "ok"]))
    if ok.empty:
        return pd.DataFrame()
    shown = {method: varying_hp_columns(part) for method, part in ok.groupby("method", sort=False)}
    several_steps = {method: part["step"].nunique() > 1 for method, part in ok.groupby("method", sort=False)}
    out = []
    for key, part in sorted(setting_groups(ok)[1], key=lambda group: _order(group[0], group[1].iloc[0])):
        part = part.sort_values("seed", kind="stable")
        first = part.iloc[0]
        method = key["method"]
        setting = "" if method in REFERENCE_ORDER else _setting_text(first, shown[method], several_steps[method])
        row = {"model": key["model"], "base_model": first["base_model"], "forget_fraction": first["forget_fraction"],
               "method": method, "setting": setting, "step": _number(first["step"]),
               "sequential_parts": _number(first["sequential_parts"]), "n": len(part), "seeds": part["seed"].tolist()}
        for prefix, column in (("fq", "forget_quality"), ("fq_val", "forget_val_quality")):
            if column in part:
                logs = log10_fq(part[column])
                mean, half, _ = mean_ci(logs)
                row.update({f"{prefix}_log10": mean, f"{prefix}_log10_ci": half,
                            f"{prefix}_log10_values": logs[~np.isnan(logs)].tolist(), column: 10 ** mean})
        if "worst_forget_quality" in part:  # after the strongest attack (bench.report.robustness)
            mean, half, _ = mean_ci(log10_fq(part["worst_forget_quality"]))
            row.update(worst_fq_log10=mean, worst_fq_log10_ci=half, worst_forget_quality=10 ** mean)
        for col in METRICS:
            if col in part:
                row[col], row[f"{col}_ci"], row[f"{col}_n"] = mean_ci(part[col].tolist())
        row["probes"] = first.get("probe_generations")
        out.append(row)
    table = pd.DataFrame(out)
    # forget quality and utility drive selection and the front: present (NaN) even when not measured
    for col in ("fq_log10", "fq_log10_ci", "forget_quality", "fq_val_log10", "fq_val_log10_ci", "forget_val_quality",
                "model_utility", "model_utility_ci", "model_utility_n"):
        if col not in table:
            table[col] = np.nan
    for col in ("fq_log10_values", "fq_val_log10_values"):
        if col not in table:
            table[col] = [[] for _ in range(len(table))]
    return table


def selection_basis(settings: pd.DataFrame) -> str:
    """"validation" when some unlearned setting has a finite forget_val forget quality, else "test" (data
    without a forget_val split, or sequential trials: the only choice left, and an optimistic one). The
    reference rows do not count: they are never selected. Reads fq_val_log10 and method only."""
    unlearned = settings[~settings["method"].isin(list(REFERENCE_ORDER))] if "method" in settings else settings
    values = unlearned["fq_val_log10"].to_numpy(dtype=float) if "fq_val_log10" in unlearned else np.array([])
    return "validation" if np.isfinite(values).any() else "test"


def selection_note(basis: str, has_validation: bool, ratio: float = UTILITY_RATIO) -> str:
    """The rule a selection followed, as its tables state it."""
    if basis == "validation":
        return (f"Setting and checkpoint chosen on forget_val forget quality at utility ≥ {ratio:g}x target; "
                "forget columns are on the forget (test) split.")
    if has_validation:
        return (f"Setting and checkpoint chosen on forget (test) forget quality at utility ≥ {ratio:g}x target: "
                "selected on the test split itself: optimistic.")
    return (f"No forget_val forget quality on the unlearned rows (no forget_val split, or sequential trials): setting "
            f"and checkpoint selected on test (forget quality at utility ≥ {ratio:g}x target), optimistic: the forget "
            "columns are on the split the choice was made on.")


def _choose(candidates: pd.DataFrame, ratio: float) -> pd.DataFrame:
    """The selection rule on a frame of exactly model, method, model_utility and score (mean log10 forget
    quality on the split chosen by the caller); returns target_utility, threshold, eligible, selected,
    qualifies and rank on the same index. It sees no other column, so it cannot read what it must not."""
    table = pd.DataFrame(index=candidates.index)
    for col, value in (("target_utility", np.nan), ("threshold", np.nan), ("eligible", False), ("selected", False),
                       ("qualifies", False), ("rank", np.nan)):
        table[col] = value
    # NaN never wins: missing forget quality or utility ranks last.
    fq = candidates["score"].astype(float).fillna(-np.inf)
    utility = candidates["model_utility"].astype(float).fillna(-np.inf)
    references = candidates["method"].isin(list(REFERENCE_ORDER))
    for model in candidates["model"].drop_duplicates():
        in_model = candidates["model"] == model
        target = candidates.loc[in_model & (candidates["method"] == "none"), "model_utility"].astype(float)
        threshold = ratio * target.mean() if target.notna().any() else np.nan
        table.loc[in_model, ["target_utility", "threshold"]] = [target.mean(), threshold]
        eligible = in_model & ~references
        if not math.isnan(threshold):
            eligible &= candidates["model_utility"].astype(float) >= threshold
        table.loc[eligible, "eligible"] = True
        chosen = []
        for method in candidates.loc[in_model & ~references, "method"].drop_duplicates():
            mine = in_model & (candidates["method"] == method)
            good = mine & eligible
            pool, order = (good, ["fq", "utility"]) if good.any() else (mine, ["utility", "fq"])
            ranked = pd.DataFrame({"fq": fq[pool], "utility": utility[pool]})
            best = ranked.sort_values(order, ascending=False, kind="stable").index[0]
            table.loc[best, ["selected", "qualifies"]] = [True, bool(good.any())]
            chosen.append(best)
        ranked = pd.DataFrame({"q": table.loc[chosen, "qualifies"], "fq": fq[chosen], "utility": utility[chosen]})
        ranked = ranked.sort_values(["q", "fq", "utility"], ascending=False, kind="stable")
        table.loc[ranked.index, "rank"] = np.arange(1, len(ranked) + 1)
    return table


def select_settings(settings: pd.DataFrame, ratio: float = UTILITY_RATIO, on: str = "auto") -> pd.DataFrame:
    """Marks each method's selected setting per model, and ranks the selected ones.

    The rule: among a method's settings (hyperparameters and checkpoint) whose mean model utility is at least
    `ratio` x the mean utility of that model's target (method `none`), the one with the highest mean log10
    forget quality on the split `on` names (ties: higher utility, then the first in `settings` order). If none
    qualifies, its highest-utility setting is selected and marked as not qualifying. Without a target row the
    constraint cannot be applied and every setting qualifies. Ranks: qualifying methods first, then by the
    same forget quality, then utility. Model utility is measured on retain and general-knowledge data, never
    on the forget set, so reading it does not peek at the test split.

    Args:
        settings: `settings_table` output.
        ratio: the share of the target's utility a setting must keep.
        on: "validation" reads only fq_val_log10 (the forget_val split) and model_utility; "test" reads
            fq_log10 (the forget split itself: optimistic); "auto" is `selection_basis(settings)`.

    Returns:
        A copy with columns target_utility, threshold (utility a setting needs; NaN without a target),
        eligible (meets it), selected, qualifies (selected and eligible), rank (1 = best; NaN where not
        selected) and selected_on ("validation" or "test").
    """
    if on == "auto":
        on = selection_basis(settings)
    if on not in SCORES:
        raise ValueError(f"on={on!r}: expected one of {', '.join(SCORES)} or auto")
    candidates = settings[["model", "method", "model_utility", SCORES[on]]].rename(columns={SCORES[on]: "score"})
    table = settings.copy()
    for col, values in _choose(candidates, ratio).items():
        table[col] = values
    table["selected_on"] = on
    return table


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
    unlearned settings (reference rows excluded: the retain model would dominate every setting)."""
    table = settings.copy()
    table["front"] = False
    for _, part in table[~table["method"].isin(list(REFERENCE_ORDER))].groupby("model", sort=False):
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
                    t, p = stats.ttest_ind(a, b, equal_var=False)
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


def _has_val(table: pd.DataFrame) -> bool:
    return "fq_val_log10" in table and bool(np.isfinite(table["fq_val_log10"].to_numpy(dtype=float)).any())


def _metric_cells(row: pd.Series, val: bool = False) -> dict:
    """The shown metrics of a setting (`val`: with forget quality on the forget_val split beside the test one)."""
    cells = {"forget quality": format_fq(row["fq_log10"], row["fq_log10_ci"]),
             "log10 FQ": format_ci(row["fq_log10"], row["fq_log10_ci"], "{:.2f}")}
    if val:
        cells["FQ (forget_val)"] = format_fq(row["fq_val_log10"], row["fq_val_log10_ci"])
    if "worst_fq_log10" in row:
        cells[COLUMNS["worst_forget_quality"]] = format_fq(row["worst_fq_log10"], row["worst_fq_log10_ci"])
    for col in METRICS:
        if col in row:
            cells[COLUMNS[col]] = _cell(col, row[col], row[f"{col}_ci"], row[f"{col}_n"], row["n"])
    if "privleak" in row:
        cells["membership"] = membership_verdict(row["privleak"])
    return cells


def _method_label(method: str) -> str:
    return REFERENCE_LABELS.get(method, method)


def leaderboard_markdown(table: pd.DataFrame) -> str:
    """Per model: the reference rows, then each method at its selected setting, ranked; notes below."""
    blocks = []
    val = _has_val(table)
    for model, part in table.groupby("model", sort=False):
        refs = part[part["method"].isin(list(REFERENCE_ORDER))]  # settings_table put them first, target on top
        chosen = part[part["selected"]].sort_values("rank")
        rows = [{"rank": "", "method": _method_label(r["method"]), "setting": r["setting"], "n": r["n"],
                 **_metric_cells(r, val), "qualifies": ""} for _, r in refs.iterrows()]
        rows += [{"rank": int(r["rank"]), "method": r["method"], "setting": r["setting"], "n": r["n"],
                  **_metric_cells(r, val), "qualifies": "yes" if r["qualifies"] else "**no**"}
                 for _, r in chosen.iterrows()]
        threshold, target = part["threshold"].iloc[0], part["target_utility"].iloc[0]
        head = (f"### {model}\n\nSelected settings need model utility ≥ {UTILITY_RATIO:g} x the target's "
                f"{target:.3f} = {threshold:.3f}." if not math.isnan(threshold) else
                f"### {model}\n\nNo target (`none`) utility for this model: the utility constraint is not applied.")
        notes = [f"- `{r['method']}`: no setting keeps model utility ≥ {threshold:.3f}; shown at its "
                 f"highest-utility setting ({r['setting']}), which does not qualify."
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


def full_markdown(table: pd.DataFrame) -> str:
    rows = []
    val = _has_val(table)
    for _, r in table.iterrows():
        reference = r["method"] in REFERENCE_ORDER
        rows.append({"model": r["model"], "method": _method_label(r["method"]), "setting": r["setting"], "n": r["n"],
                     **_metric_cells(r, val),
                     "utility ok": "" if reference else ("yes" if r["eligible"] else "no"),
                     "Pareto": "✓" if r["front"] else "", "selected": "✓" if r["selected"] else ""})
    return markdown_table(rows)


def selection_summary(rows: pd.DataFrame, ratio: float = UTILITY_RATIO) -> str:
    """Each method at its selected setting, one table over all models (the end-of-run leaderboard shows it
    below every setting's final checkpoint); "" without ok rows."""
    settings = settings_table(rows)
    if settings.empty:
        return ""
    basis = selection_basis(settings)
    table = select_settings(settings, ratio, on=basis)
    table = table.assign(_model=pd.factorize(table["model"])[0]).sort_values(["_model", "rank"], kind="stable")
    val = _has_val(table)
    lines = [{"model": r["model"], "method": r["method"], "rank": int(r["rank"]), "setting": r["setting"], "n": r["n"],
              "forget quality": format_fq(r["fq_log10"], r["fq_log10_ci"]),
              **({"FQ (forget_val)": format_fq(r["fq_val_log10"], r["fq_val_log10_ci"])} if val else {}),
              "model utility": format_ci(r["model_utility"], r["model_utility_ci"]),
              "qualifies": "yes" if r["qualifies"] else "no"}
             for _, r in table[table["selected"]].iterrows()]  # settings_table's model order; rank within each
    # The basis is automatic here: "test" means no unlearned row has validation values, whatever the references have.
    return f"Selected per model and method. {selection_note(basis, basis == 'validation', ratio)}\n\n{markdown_table(lines)}"


def auto_ablations(rows: pd.DataFrame) -> list[tuple[str, str, str | None, str | None]]:
    """(x, y, model, method) heatmaps to draw: when exactly one method varies >= 2 hp columns, the first two by name.

    The model and method filters are set only where the suite has more than one of them (file names stay short);
    models are named per forget fraction where there are several, as `ablation_grid` names them.
    """
    rows = final_rows(rows)
    ok = rows[(rows["status"] == "ok") & ~rows["method"].isin(list(REFERENCE_ORDER))]
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
    settings = settings_table(rows)
    if settings.empty:
        raise ReportError(f"{results_dir}: none of the {len(rows)} rows has status ok; see their `error` column")
    out_dir = Path(out_dir) if out_dir else results_dir / REPORT_DIR
    suite = rows["suite"].dropna().iloc[0] if "suite" in rows and rows["suite"].notna().any() else results_dir.name
    basis = selection_basis(settings)
    note = selection_note(basis, basis == "validation")  # automatic: "test" only when unlearned rows lack them
    table = mark_front(select_settings(settings, on=basis))
    selected = table[table["selected"]]
    leaderboard = f"{note}\n\n{leaderboard_markdown(table)}"
    curves, curve_figures = protocol.learning_curve_section(rows, out_dir, suite)
    sizes, size_figures = protocol.forget_size_section(rows, table, out_dir, suite, note)
    sequential, sequential_figures = protocol.sequential_section(rows, out_dir, suite)
    figures = _pareto_figures(table, out_dir, suite)
    worst = worst_case_front(table)
    worst_figures = _pareto_figures(worst, out_dir, suite, worst_case=True) if not worst.empty else []
    figures += worst_figures
    failed = int((rows["status"] != "ok").sum())
    seeds = sorted(rows.loc[rows["status"] == "ok", "seed"].dropna().unique().tolist())
    sections = [
        f"# Report: {suite}\n\n{len(rows)} rows from `{results_dir}` ({failed} diverged or failed, not averaged in"
        f"{': see Diverged and failed settings' if failed else ''}): "
        f"{rows['model'].nunique()} model(s), {(~table['method'].drop_duplicates().isin(list(REFERENCE_ORDER))).sum()} "
        f"method(s) and the reference rows, seeds {seeds}. "
        f"Read from the Parquet rows by `bench report`; nothing is recomputed.",
        LEGEND.format(floor=FQ_FLOOR, ratio=UTILITY_RATIO, alpha=ALPHA, min_seeds=MIN_SEEDS, band=LEAK_BAND,
                      split="on the forget_val split (authors unlearned with the forget set but scored apart), while every forget "
                      "column shows the forget (test) split" if basis == "validation" else
                      "on the forget (test) split itself: optimistic, as no row has a forget_val split"),
        f"## Leaderboard\n\n{leaderboard}",
        *([f"## Diverged and failed settings\n\n{unstable_markdown(rows)}"] if failed else []),
        _comparison_section(settings, basis),
        f"## Significance\n\n{significance_markdown(significance(selected))}",
        "## Pareto front: forget quality vs model utility\n\nThe unlearned settings no other setting beats on both "
        "mean log10 forget quality and mean model utility (reference rows left out; duplicates of a front point "
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
    sections.append(f"## Every setting\n\n{full_markdown(table)}")
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
    return ["## Robustness to attacks\n\nEvery unlearned model (and both reference models) attacked: relearning on "
            "a few forget questions, weight quantization, the questions reworded. Means over seeds.\n\n"
            + robustness_markdown(table) + ("\n\n" + "\n".join(plots) if plots else "")]


def worst_case_front(table: pd.DataFrame) -> pd.DataFrame:
    """The settings with `forget_quality` / `front` on the worst case after attacks (the lowest forget
    quality any attack left), for the second Pareto figure; empty when no row was attacked."""
    if "worst_fq_log10" not in table or table["worst_fq_log10"].isna().all():
        return pd.DataFrame()
    worst = table.assign(forget_quality=table["worst_forget_quality"], fq_log10=table["worst_fq_log10"],
                         fq_log10_ci=table["worst_fq_log10_ci"])
    return mark_front(worst)


def _pareto_figures(table: pd.DataFrame, out_dir: Path, suite: str, worst_case: bool = False) -> list[Path]:
    """One scatter per model: every setting, the front, the references and the utility threshold
    (`worst_case`: forget quality after the strongest attack, from `worst_case_front`)."""
    figures = []
    kind = "worst-case forget quality after attacks" if worst_case else "forget quality"
    for model, part in table.groupby("model", sort=False):
        methods = part[~part["method"].isin(list(REFERENCE_ORDER))]
        points = methods[["method", "forget_quality", "model_utility", "front"]].dropna(
            subset=["forget_quality", "model_utility"])
        refs = {r["method"]: (r["forget_quality"], r["model_utility"])
                for _, r in part[part["method"].isin(list(REFERENCE_ORDER))].iterrows()
                if pd.notna(r["forget_quality"]) and pd.notna(r["model_utility"])}
        if points.empty and not refs:  # forget quality or utility never measured: nothing to draw
            continue
        threshold = part["threshold"].iloc[0]
        figures.append(pareto_plot(
            points, refs, out_dir / f"pareto_{'worst_' if worst_case else ''}{slug(model)}.png",
            title=f"{suite}, {model}: {kind} vs model utility (mean over seeds)",
            threshold=threshold, threshold_label=f"{UTILITY_RATIO:g} x target utility",
            xlabel=f"{kind} (KS p-value, log)" if worst_case else None))
    return figures
