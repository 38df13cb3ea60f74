"""Which setting (hyperparameters and checkpoint) represents each method, and the leaderboard of those
settings: the table `bench run` prints and writes as `_leaderboard.md`, and the report's first section.

Settings are chosen on the forget_val split (authors unlearned with the forget set but scored apart)
among those keeping model utility at UTILITY_RATIO of the target's; the forget (test) split is only
reported. Choosing on the split one reports is the optimistic bias of model selection on test data
(Cawley & Talbot, "On Over-fitting in Model Selection and Subsequent Selection Bias in Performance
Evaluation", JMLR 2010); where a suite has no forget_val split, the choice is on test and says so.
Where no forget quality exists at all (no retain model: a pretrained model's own knowledge, RWKU's shape),
settings are chosen and ranked on forget accuracy, then forget probability, lower being better, among those
keeping the neighbours' accuracy (model utility where it is not measured) at UTILITY_RATIO of the target's:
forgetting Paris while keeping Sofia is RWKU's trade-off.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.report.aggregate import BASELINE_ORDER, candidate_rows, format_ci, format_fq, hp_text, log10_fq, markdown_table, mean_ci, setting_groups, varying_hp_columns, with_protocol_columns
from bench.report.columns import ReportColumns
from bench.report.robustness import add_worst_case

UTILITY_RATIO = 0.9  # a setting qualifies when its mean utility is at least this share of the target's
# What each selection ranks on, in order, as (settings column, higher is better): mean log10 forget quality on
# the forget_val split, or on the forget (test) split; without any, forget accuracy: keyword accuracy (RWKU's
# shape), multiple-choice accuracy (WMDP's), forget probability, then knowledge and verbatim memorization (MUSE's),
# the first that tells settings apart (a column no row has ties everywhere).
SCORES = {"validation": (("fq_val_log10", True),), "test": (("fq_log10", True),),
          "forget accuracy": (("forget_keyword_acc", False), ("forget_mc_acc", False), ("forget_prob", False),
                              ("forget_knowmem", False), ("forget_verbmem", False))}
RANKED_COLUMNS = tuple(col for col, _ in SCORES["forget accuracy"])
# What a "forget accuracy" selection keeps, the first measured: the neighbours' accuracy, general multiple-choice
# accuracy, retain knowledge memorization; else model utility.
NEIGHBOUR_COLUMNS = ("retain_keyword_acc", "general_mc_acc", "retain_knowmem")
NEIGHBOUR_ACCURACY = NEIGHBOUR_COLUMNS[0]
# What each kept column is called where the tables state the rule, and each ranked one in the selection table.
KEPT_LABELS = {"model_utility": "model utility", "retain_keyword_acc": "neighbour accuracy",
               "general_mc_acc": "general accuracy", "retain_knowmem": "retain KnowMem"}
RANKED_LABELS = {"forget_keyword_acc": "forget accuracy", "forget_mc_acc": "forget MC accuracy",
                 "forget_prob": "forget prob", "forget_knowmem": "forget KnowMem", "forget_verbmem": "forget VerbMem"}
# Read by the "forget accuracy" selection, so aggregated whether or not the leaderboard shows them.
SELECTION_COLUMNS = (*RANKED_COLUMNS, *NEIGHBOUR_COLUMNS)


def _cell(mean: float, half: float, n: int, n_setting: int, fmt: str = "{:.3f}") -> str:
    text = format_ci(mean, half, fmt)
    return f"{text} (n={n})" if 0 < n < n_setting else text  # a metric missing on some seeds says so


def _order(key: dict, first: pd.Series) -> tuple:
    """Sort key of a setting: model (then forget fraction, numerically), baselines first, method, then its
    hyperparameter values (numbers numerically), part count and step."""
    numbers = (int, float, np.integer, np.floating)
    hp = tuple((0, v, "") if isinstance(v, numbers) and not isinstance(v, bool) else (1, 0, str(v))
               for k, v in key.items() if k.startswith("hp."))
    extra = tuple(-1 if key.get(c, "") == "" else float(key[c]) for c in ("sequential_parts", "step"))
    fraction = -1.0 if pd.isna(first["forget_fraction"]) else float(first["forget_fraction"])
    return (first["base_model"], fraction, key["model"], BASELINE_ORDER.get(key["method"], len(BASELINE_ORDER)),
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
        Sorted by model, baselines first, then method, hyperparameter values and step. Columns model,
        base_model, forget_fraction, method, setting (the hyperparameters that vary among the method's settings
        or were set away from their defaults, "defaults" if none, "" for baseline rows, then "step N" where the
        method has several steps), step, sequential_parts, n, seeds,
        fq_log10 / fq_log10_ci / fq_log10_values (mean, 95% CI half-width and the per-seed values of log10
        forget quality clipped at FQ_FLOOR), forget_quality (10^fq_log10), the same for the forget_val split
        (fq_val_log10, fq_val_log10_ci, fq_val_log10_values, forget_val_quality; NaN without that split), and
        for each other column the leaderboard shows (bench.report.columns) present: <col>, <col>_ci, <col>_n, or
        for a log-scale one <col>_log10, <col>_log10_ci and <col> (10^mean); probes (the probe_generations JSON
        of the lowest seed).
    """
    columns = ReportColumns.of(rows)
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
        setting = "" if method in BASELINE_ORDER else _setting_text(first, shown[method], several_steps[method])
        row = {"model": key["model"], "base_model": first["base_model"], "forget_fraction": first["forget_fraction"],
               "method": method, "setting": setting, "step": _number(first["step"]),
               "sequential_parts": _number(first["sequential_parts"]), "n": len(part), "seeds": part["seed"].tolist()}
        for prefix, column in (("fq", "forget_quality"), ("fq_val", "forget_val_quality")):
            if column in part:
                logs = log10_fq(part[column])
                mean, half, _ = mean_ci(logs)
                row.update({f"{prefix}_log10": mean, f"{prefix}_log10_ci": half,
                            f"{prefix}_log10_values": logs[~np.isnan(logs)].tolist(), column: 10 ** mean})
        for col in [*columns.leaderboard(), *SELECTION_COLUMNS]:
            if col in row or col not in part:  # forget quality is above, with its forget_val twin
                continue
            if columns.is_log(col):  # e.g. forget quality after the strongest attack (bench.report.robustness)
                mean, half, _ = mean_ci(log10_fq(part[col]))
                row.update({f"{col}_log10": mean, f"{col}_log10_ci": half, col: 10 ** mean})
            else:
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


def has_values(table: pd.DataFrame, column: str) -> bool:
    """Whether some row of `table` has a finite value in `column` (a missing column has none)."""
    return column in table and bool(np.isfinite(table[column].to_numpy(dtype=float)).any())


def ranked_shown(table: pd.DataFrame) -> list[str]:
    """What a "forget accuracy" selection of `table` ranked on, as the tables show it: the first two ranked columns
    with values (keyword accuracy and forget probability; multiple-choice accuracy; KnowMem and VerbMem)."""
    return [c for c in RANKED_COLUMNS if has_values(table, c)][:2]


def kept_label(table: pd.DataFrame) -> str:
    """What the settings of a `select_settings` output had to keep, in words ("model utility" for tables
    selected before the rule could keep anything else)."""
    return KEPT_LABELS[table["kept"].iloc[0]] if "kept" in table else KEPT_LABELS["model_utility"]


def selection_basis(settings: pd.DataFrame) -> str:
    """"validation" when some unlearned setting has a finite forget_val forget quality, else "test" (data
    without a forget_val split, or sequential trials: the only choice left, and an optimistic one), or
    "forget accuracy" where no setting has a forget quality at all but some has a forget accuracy or
    probability (no retain model). The baseline rows do not count: they are never selected. Reads
    fq_val_log10, fq_log10, the ranked forget columns and method only."""
    unlearned = settings[~settings["method"].isin(list(BASELINE_ORDER))] if "method" in settings else settings
    if has_values(unlearned, "fq_val_log10"):
        return "validation"
    if not has_values(unlearned, "fq_log10") and any(has_values(unlearned, c) for c in RANKED_COLUMNS):
        return "forget accuracy"
    return "test"


def kept_column(settings: pd.DataFrame, on: str) -> str:
    """What a setting must keep at `ratio` x the target's to qualify: model utility, or for a selection on
    forget accuracy the neighbours' accuracy where some setting has it."""
    measured = [c for c in NEIGHBOUR_COLUMNS if has_values(settings, c)] if on == "forget accuracy" else []
    return measured[0] if measured else "model_utility"


def selection_note(basis: str, has_validation: bool, ratio: float = UTILITY_RATIO, kept: str = "model_utility") -> str:
    """The rule a selection followed, as its tables state it (`kept`: the column a setting must keep)."""
    if basis == "forget accuracy":
        return (f"No forget quality (no retain model, or no truth ratios on this data): setting and checkpoint chosen "
                f"on the lowest forget accuracy (keyword, multiple choice), then forget probability or KnowMem, at "
                f"{KEPT_LABELS[kept]} ≥ {ratio:g}x target, on the forget split itself: optimistic.")
    if basis == "validation":
        return (f"Setting and checkpoint chosen on forget_val forget quality at utility ≥ {ratio:g}x target; "
                "forget columns are on the forget (test) split.")
    if has_validation:
        return (f"Setting and checkpoint chosen on forget (test) forget quality at utility ≥ {ratio:g}x target: "
                "selected on the test split itself: optimistic.")
    return (f"No forget_val forget quality on the unlearned rows (no forget_val split, or sequential trials): setting "
            f"and checkpoint selected on test (forget quality at utility ≥ {ratio:g}x target), optimistic: the forget "
            "columns are on the split the choice was made on.")


def _choose(candidates: pd.DataFrame, ratio: float, kept_first: bool = False) -> pd.DataFrame:
    """The selection rule on a frame of exactly model, method, model_utility and the scores score0, score1, ...
    (what the caller ranks on, in order, each higher-is-better: mean log10 forget quality on the split chosen,
    or the negated forget accuracy and probability); returns target_utility, threshold, eligible, selected,
    qualifies and rank on the same index. It sees no other column, so it cannot read what it must not.
    `kept_first`: rank the methods that do not qualify by what they kept (model_utility) before their scores,
    for scores that erasing everything would win (forget accuracy), unlike forget quality."""
    table = pd.DataFrame(index=candidates.index)
    for col, value in (("target_utility", np.nan), ("threshold", np.nan), ("eligible", False), ("selected", False),
                       ("qualifies", False), ("rank", np.nan)):
        table[col] = value
    # NaN never wins: a missing score or utility ranks last.
    scores = pd.DataFrame({c: candidates[c].astype(float).fillna(-np.inf) for c in candidates if c.startswith("score")})
    utility = candidates["model_utility"].astype(float).fillna(-np.inf)
    baselines = candidates["method"].isin(list(BASELINE_ORDER))
    for model in candidates["model"].drop_duplicates():
        in_model = candidates["model"] == model
        target = candidates.loc[in_model & (candidates["method"] == "none"), "model_utility"].astype(float)
        threshold = ratio * target.mean() if target.notna().any() else np.nan
        table.loc[in_model, ["target_utility", "threshold"]] = [target.mean(), threshold]
        eligible = in_model & ~baselines
        if not math.isnan(threshold):
            eligible &= candidates["model_utility"].astype(float) >= threshold
        table.loc[eligible, "eligible"] = True
        chosen = []
        for method in candidates.loc[in_model & ~baselines, "method"].drop_duplicates():
            mine = in_model & (candidates["method"] == method)
            good = mine & eligible
            pool, order = ((good, [*scores, "utility"]) if good.any() else (mine, ["utility", *scores]))
            ranked = scores[pool].assign(utility=utility[pool])
            best = ranked.sort_values(order, ascending=False, kind="stable").index[0]
            table.loc[best, ["selected", "qualifies"]] = [True, bool(good.any())]
            chosen.append(best)
        ranked = scores.loc[chosen].assign(q=table.loc[chosen, "qualifies"], utility=utility[chosen])
        # a qualifying method has kept enough, so its score decides; one that did not is ranked by how much it kept
        ranked["kept"] = np.where(ranked["q"] | (not kept_first), 0.0, ranked["utility"])
        ranked = ranked.sort_values(["q", "kept", *scores, "utility"], ascending=False, kind="stable")
        table.loc[ranked.index, "rank"] = np.arange(1, len(ranked) + 1)
    return table


def select_settings(settings: pd.DataFrame, ratio: float = UTILITY_RATIO, on: str = "auto") -> pd.DataFrame:
    """Marks each method's selected setting per model, and ranks the selected ones.

    The rule: among a method's settings (hyperparameters and checkpoint) whose mean model utility is at least
    `ratio` x the mean utility of that model's target (method `none`), the one with the highest mean log10
    forget quality on the split `on` names, or with `on="forget accuracy"` the lowest forget accuracy, then
    forget probability, among those keeping the neighbours' accuracy instead of utility where it is measured
    (`kept_column`; ties: higher utility, then the first in `settings` order). A method that does not qualify is
    ranked after those that do; on forget accuracy, by what it kept first (erasing everything is no win). If none
    qualifies, its highest-utility setting is selected and marked as not qualifying. Without a target row the
    constraint cannot be applied and every setting qualifies. Ranks: qualifying methods first, then by the
    same forget quality, then utility. Model utility is measured on retain and general-knowledge data, never
    on the forget set, so reading it does not peek at the test split.

    Args:
        settings: `settings_table` output.
        ratio: the share of the target's utility a setting must keep.
        on: "validation" reads only fq_val_log10 (the forget_val split) and model_utility; "test" reads
            fq_log10 (the forget split itself: optimistic); "forget accuracy" reads RANKED_COLUMNS (the forget
            split; for data without a retain model or truth ratios); "auto" is `selection_basis(settings)`.

    Returns:
        A copy with columns kept (the column the threshold is on: model_utility or one of NEIGHBOUR_COLUMNS),
        target_utility, threshold (what a setting needs of it; NaN without a target),
        eligible (meets it), selected, qualifies (selected and eligible), rank (1 = best; NaN where not
        selected) and selected_on ("validation" or "test").
    """
    if on == "auto":
        on = selection_basis(settings)
    if on not in SCORES:
        raise ValueError(f"on={on!r}: expected one of {', '.join(SCORES)} or auto")
    kept = kept_column(settings, on)
    candidates = settings[["model", "method"]].assign(model_utility=settings[kept])
    for i, (col, higher) in enumerate(SCORES[on]):
        values = settings[col].astype(float) if col in settings else pd.Series(np.nan, index=settings.index)
        candidates[f"score{i}"] = values if higher else -values
    table = settings.copy()
    for col, values in _choose(candidates, ratio, kept_first=on == "forget accuracy").items():
        table[col] = values
    table["selected_on"], table["kept"] = on, kept
    return table


def _has_val(table: pd.DataFrame) -> bool:
    return has_values(table, "fq_val_log10")


def _score_cells(r: pd.Series, basis: str, val: bool) -> dict:
    """What the selection ranked a setting on, as the end-of-run table shows it."""
    if basis == "forget accuracy":
        shown = [c for c in RANKED_COLUMNS if c in r and pd.notna(r[c])][:2] or ["forget_keyword_acc", "forget_prob"]
        return {RANKED_LABELS[col]: format_ci(r[col], r[f"{col}_ci"]) if col in r else "—" for col in shown}
    return {"forget quality": format_fq(r["fq_log10"], r["fq_log10_ci"]),
            **({"FQ (forget_val)": format_fq(r["fq_val_log10"], r["fq_val_log10_ci"])} if val else {})}


def selection_summary(rows: pd.DataFrame, ratio: float = UTILITY_RATIO) -> str:
    """Each method at its selected setting, one table over all models (the end-of-run leaderboard shows it
    below every setting's final checkpoint); "" without ok rows."""
    settings = settings_table(rows)
    if settings.empty:
        return ""
    basis = selection_basis(settings)
    table = select_settings(settings, ratio, on=basis)
    kept = table["kept"].iloc[0]
    table = table.assign(_model=pd.factorize(table["model"])[0]).sort_values(["_model", "rank"], kind="stable")
    val = _has_val(table)
    lines = [{"model": r["model"], "method": r["method"], "rank": int(r["rank"]), "setting": r["setting"], "n": r["n"],
              **_score_cells(r, basis, val), "model utility": format_ci(r["model_utility"], r["model_utility_ci"]),
              "qualifies": "yes" if r["qualifies"] else "no"}
             for _, r in table[table["selected"]].iterrows()]  # settings_table's model order; rank within each
    # The basis is automatic here: "test" means no unlearned row has validation values, whatever the baselines have.
    note = selection_note(basis, basis == "validation", ratio, kept)
    return f"Selected per model and method. {note}\n\n{markdown_table(lines)}"
