"""Tests for the leaderboard: confidence intervals, aggregation over seeds, Markdown rendering."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from bench.report.aggregate import format_ci, mean_ci, varying_hp_columns
from bench.report.every_setting import leaderboard_table, render, unstable_table

# --------------------------------------------------------------------------------------- mean_ci


def test_mean_ci_of_one_two_three():
    """mean = 2, sample std (ddof=1) = 1, n = 3.

    The 97.5% quantile of Student's t with 2 degrees of freedom is 4.302652729911275, so the
    half-width is 4.302652729911275 * 1 / sqrt(3) = 4.302652729911275 / 1.7320508075688772
    = 2.4841377118..., i.e. about 2.4841.
    """
    mean, half, n = mean_ci([1, 2, 3])
    assert mean == 2.0
    assert half == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)  # scipy ppf is ~1e-11 off
    assert half == pytest.approx(2.4841, abs=5e-5)
    assert n == 3


def test_mean_ci_single_value_has_nan_half_width():
    mean, half, n = mean_ci([0.7])
    assert mean == 0.7 and n == 1
    assert math.isnan(half)


def test_mean_ci_drops_nans():
    assert mean_ci([1.0, float("nan"), 2.0, None, 3.0]) == mean_ci([1.0, 2.0, 3.0])
    mean, half, n = mean_ci(np.array([1.0, np.nan, 3.0]))
    assert (mean, n) == (2.0, 2)
    # std of [1, 3] is sqrt(2), so the half-width is t_{0.975,1} * sqrt(2) / sqrt(2) = t_{0.975,1}
    assert half == pytest.approx(12.706204736174696)


def test_mean_ci_drops_float32_nans():
    mean, half, n = mean_ci(np.array([1.0, np.nan, 3.0], dtype=np.float32))
    assert (mean, n) == (2.0, 2)
    assert half == pytest.approx(12.706204736174696)


def test_mean_ci_all_nan():
    mean, half, n = mean_ci([float("nan"), float("nan")])
    assert n == 0 and math.isnan(mean) and math.isnan(half)


def test_format_ci():
    assert format_ci(0.5, 0.0125) == "0.500 ± 0.013"
    assert format_ci(0.5, float("nan")) == "0.500"
    assert format_ci(1.5e-7, 2e-8, "{:.2e}") == "1.50e-07 ± 2.00e-08"
    assert format_ci(float("nan"), float("nan")) == "—"


# --------------------------------------------------------------------------------------- leaderboard_table


def _row(model, method, seed, lr=None, ff=None, fq=0.1, mu=0.5, status="ok", error=None, step=None):
    return {
        "model": model,
        "method": method,
        "seed": seed,
        "status": status,
        "error": error if status == "ok" else error or "RuntimeError: boom",
        "diverged_step": step,
        "hp.lr": lr,
        "hp.forget_factor": ff,
        "hp.steps": None if method in ("none", "retain") else 100,  # never varies
        "forget_quality": fq if status == "ok" else None,
        "model_utility": mu if status == "ok" else None,
        "retain_greedy_exact_match": 0.8 if status == "ok" else None,
    }


@pytest.fixture
def results():
    """Two models; methods listed before references; grad_ascent over 2 lrs, ga_gd over 2 factors."""
    rows = []
    for model in ("tiny-llama", "tiny-gpt2"):
        for seed in (0, 1, 2):
            rows.append(_row(model, "grad_ascent", seed, lr=1e-4, fq=[1.0, 2.0, 3.0][seed]))
            rows.append(_row(model, "grad_ascent", seed, lr=3e-4, fq=0.2))
        for seed in (0, 1):
            rows.append(_row(model, "ga_gd", seed, lr=1e-4, ff=-0.1, fq=0.3))
            rows.append(_row(model, "ga_gd", seed, lr=1e-4, ff=-0.5, fq=0.4))
        rows.append(_row(model, "retain", 0, fq=1.0, mu=0.6))
        rows.append(_row(model, "none", 0, fq=1e-6, mu=0.61))
    # failed rows: one in an existing group, one with an lr no ok row has
    rows.append(_row("tiny-llama", "grad_ascent", 3, lr=1e-4, status="failed"))
    rows.append(_row("tiny-llama", "grad_ascent", 0, lr=9e-4, status="failed"))
    return pd.DataFrame(rows)


def test_groups_over_seeds(results):
    table = leaderboard_table(results)
    assert len(table) == 2 * (2 + 2 + 2)  # per model: 2 references, 2 grad_ascent lrs, 2 ga_gd factors
    ga = table[(table["model"] == "tiny-llama") & (table["method"] == "grad_ascent")]
    by_lr = {row["hp.lr"]: row for _, row in ga.iterrows()}
    assert set(by_lr) == {1e-4, 3e-4}  # the failed 9e-4 row makes no group
    assert by_lr[1e-4]["n"] == 3  # the failed seed 3 is not counted
    # forget quality 1, 2, 3: the geometric mean 6^(1/3), the t-interval of log10 values as a ×/÷ factor
    logs = np.log10([1.0, 2.0, 3.0])
    half = 4.302652729911275 * logs.std(ddof=1) / math.sqrt(3)
    assert by_lr[1e-4]["_forget_quality"] == pytest.approx(6 ** (1 / 3))
    assert by_lr[1e-4]["forget quality"] == f"{6 ** (1 / 3):.2e} ×/÷ {10 ** half:.3g}"
    assert by_lr[3e-4]["n"] == 3
    gagd = table[(table["model"] == "tiny-gpt2") & (table["method"] == "ga_gd")]
    assert sorted(gagd["n"]) == [2, 2]
    assert sorted(gagd["hp.forget_factor"]) == [-0.5, -0.1]
    refs = table[table["method"].isin(["none", "retain"])]
    assert list(refs["n"]) == [1, 1, 1, 1]
    assert set(refs["model utility"]) == {"0.600", "0.610"}  # n = 1: no ± part


def test_references_first_within_each_model(results):
    table = leaderboard_table(results)
    for model, block in table.groupby("model", sort=False):
        methods = list(block["method"])
        assert methods[:2] == ["none", "retain"], (model, methods)
        assert "none" not in methods[2:] and "retain" not in methods[2:]
    # each model's rows are contiguous
    models = list(table["model"])
    assert models == sorted(models, key=models.index)
    assert len({m for m in models}) == 2


def test_failed_rows_excluded(results):
    table = leaderboard_table(results)
    assert table["n"].sum() == (results["status"] == "ok").sum()
    only_failed = results[results["status"] == "failed"]
    assert leaderboard_table(only_failed).empty


def test_only_varying_hp_columns_shown(results):
    table = leaderboard_table(results)
    hp = [c for c in table.columns if c.startswith("hp.")]
    assert sorted(hp) == ["hp.forget_factor", "hp.lr"]  # hp.steps is 100 wherever set


def test_hp_column_varying_only_through_failed_rows_is_hidden(results):
    df = results[results["method"] != "grad_ascent"].copy()  # ok rows: lr 1e-4 everywhere it is set
    df = pd.concat([df, pd.DataFrame([_row("tiny-llama", "ga_gd", 5, lr=5e-4, ff=-0.1, status="failed")])])
    assert varying_hp_columns(df) == ["hp.lr", "hp.forget_factor"]  # counting the failed row
    table = leaderboard_table(df)
    assert [c for c in table.columns if c.startswith("hp.")] == ["hp.forget_factor"]


def test_no_varying_hp_columns(results):
    df = results[results["method"].isin(["none", "retain"])]
    table = leaderboard_table(df)
    assert not any(c.startswith("hp.") for c in table.columns)
    assert list(table["method"]) == ["none", "retain", "none", "retain"]


# --------------------------------------------------------------------------------------- render


def test_render_markdown(results):
    text = render(results)
    lines = text.splitlines()
    header = lines[0]
    assert header.startswith("|")
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells == ["model", "method", "lr", "forget_factor", "n", "forget quality", "model utility", "retain EM"]
    assert set(lines[1]) <= set("|-: ")  # GitHub separator row
    leaderboard = text.split("Diverged or failed:")[0]
    body = [line for line in leaderboard.splitlines()[2:] if line.startswith("|")]
    assert len(body) == len(leaderboard_table(results)) == 12
    for model in ("tiny-llama", "tiny-gpt2"):
        for method in ("none", "retain", "grad_ascent", "ga_gd"):
            assert any(f" {model} " in line and f" {method} " in line for line in body), (model, method)
    assert "2 row(s) diverged or failed" in text
    unstable = text.split("Diverged or failed:")[1]
    assert "| tiny-llama | grad_ascent | 0.0001 |" in unstable and "| 0.0009 |" in unstable
    assert "RuntimeError: boom" in unstable


def test_unstable_settings_listed_apart(results):
    df = pd.concat([results, pd.DataFrame([
        _row("tiny-gpt2", "ga_gd", 5, lr=1e-4, ff=-0.5, status="diverged", step=7,
             error="loss nan at step 7; evaluated as after step 5"),
        _row("tiny-gpt2", "ga_gd", 6, lr=1e-4, ff=-0.5, status="diverged", step=9, error="loss inf at step 9"),
    ])], ignore_index=True)
    table = unstable_table(df)
    diverged = table[table["status"] == "diverged"].iloc[0]
    assert (diverged["model"], diverged["method"], diverged["forget_factor"]) == ("tiny-gpt2", "ga_gd", -0.5)
    assert diverged["seeds"] == "5, 6" and diverged["of"] == 4  # 2 ok seeds + 2 diverged
    assert diverged["at step"] == "7, 9" and diverged["reason"] == "loss nan at step 7"
    failed = table[(table["status"] == "failed") & (table["lr"] == 1e-4)].iloc[0]
    assert failed["seeds"] == "3" and failed["of"] == 4  # 3 ok seeds + 1 failed
    assert unstable_table(df[df["status"] == "ok"]).empty


def test_render_without_failures_does_not_mention_them(results):
    text = render(results[results["status"] == "ok"])
    assert "failed" not in text
    assert "forget quality" in text


def test_render_with_no_successful_rows(results):
    text = render(results[results["status"] != "ok"])
    assert "|" not in text
    assert "No successful rows" in text


def test_a_single_non_default_setting_is_shown(results):
    """ga_gd at one forget factor only: the column does not vary, but the row set it, so it shows."""
    df = results[(results["method"] != "ga_gd") | (results["hp.forget_factor"] == -0.5)].copy()
    df = df[df["method"] != "grad_ascent"]
    assert leaderboard_table(df.drop(columns="hp.steps")).filter(like="hp.").columns.tolist() == []
    df["hp_changed"] = [json.dumps(["forget_factor"]) if m == "ga_gd" else json.dumps([]) for m in df["method"]]
    assert leaderboard_table(df).filter(like="hp.").columns.tolist() == ["hp.forget_factor"]


def test_changed_hyperparameters_are_those_away_from_defaults():
    from bench.config.suite import DataConfig, PrepareConfig, TrialSpec, UnlearnConfig
    from metrics import EvalConfig

    spec = TrialSpec("tiny-llama", "ga_gd", {"forget_factor": -8.0, "retain_factor": 5.0, "retain_repeat": 5},
                     UnlearnConfig(lr=3e-4), 0, DataConfig(), PrepareConfig(), EvalConfig())
    assert spec.changed_hyperparameters() == ["forget_factor", "lr"]


def test_progress_label_shows_changed_hyperparameters():
    from bench.config.suite import DataConfig, PrepareConfig, TrialSpec, UnlearnConfig
    from bench.run.trial import spec_summary
    from metrics import EvalConfig

    spec = TrialSpec("tiny-llama", "ga_gd", {"forget_factor": -8.0, "retain_factor": 5.0, "retain_repeat": 5},
                     UnlearnConfig(lr=3e-4), 1, DataConfig(), PrepareConfig(), EvalConfig())
    assert spec_summary(spec, shown=set()) == "tiny-llama ga_gd lr=0.0003 forget_factor=-8 seed=1"


@pytest.mark.parametrize("leaks, verdict", [
    ([-99.0, -97.0], "remembers"),          # the target's side
    ([-5.0, 10.0], "retain-like"),
    ([60.0, 70.0], "over-unlearned"),       # AUROC far below 0.5: not a success
])
def test_privacy_leakage_verdict_is_shown(leaks, verdict):
    rows = [{**_row("tiny-llama", "npo", seed, lr=1e-4), "privleak": leak, "mia_mink_pp_auc": 0.5}
            for seed, leak in enumerate(leaks)]
    table = leaderboard_table(pd.DataFrame(rows))
    assert table.loc[0, "membership"] == verdict
    assert verdict in render(pd.DataFrame(rows)) and "over-unlearned" in render(pd.DataFrame(rows))


def test_a_metric_no_row_measured_is_left_out_not_shown_as_dashes():
    """Without a retain model privacy leakage is NaN in every row: no column of it, and no verdict on it."""
    rows = pd.DataFrame([{**_row("tiny-llama", "npo", seed, lr=1e-4), "privleak": float("nan"), "mia_mink_pp_auc": 0.5}
                         for seed in range(2)])
    table = leaderboard_table(rows)
    assert "membership" not in table and "privacy leakage" not in table
    assert "MIA AUROC (Min-K%++)" in table
