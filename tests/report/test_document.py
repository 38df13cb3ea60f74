"""Tests for the report: setting selection, log10 forget quality, CIs, significance, Pareto front,
ablation grids, and a report built end to end from Parquet rows written by hand (no training)."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from bench.report.ablation import ablation_grid
from bench.report.aggregate import FQ_FLOOR, ReportError, log10_fq, mean_ci
from bench.report.selection import UTILITY_RATIO, select_settings, settings_table
from bench.report.document import build_report, mark_front, pareto_mask, significance
from bench.report.aggregate import format_fq

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(model, method, seed, fq, mu, lr=None, ff=None, status="ok", **extra):
    reference = method in ("none", "retain")
    extra.setdefault("error", None if status == "ok" else "RuntimeError: boom")
    return {"suite": "toy", "model": model, "method": method, "seed": seed, "status": status,
            "hp.lr": None if reference else lr, "hp.forget_factor": None if reference else ff,
            "hp.steps": None if reference else 100,  # never varies
            "forget_quality": fq, "model_utility": mu, **extra}


def _selected(table: pd.DataFrame) -> dict:
    """(model, method) -> the selected row."""
    chosen = table[table["selected"]]
    return {(r["model"], r["method"]): r for _, r in chosen.iterrows()}


# --------------------------------------------------------------------------------------- CI and log10 FQ


def test_mean_ci_known_values():
    """[1, 2, 3]: mean 2, sample std 1, t_{0.975, 2} = 4.302652729911275, half-width 4.3027 / sqrt(3)."""
    mean, half, n = mean_ci([1, 2, 3])
    assert (mean, n) == (2.0, 3)
    assert half == pytest.approx(4.302652729911275 / math.sqrt(3), rel=1e-9)


def test_log10_fq_clips_at_the_floor():
    """0 and a subnormal 1e-320 would be -inf / -320: both clip to log10(1e-300) = -300; NaN stays NaN."""
    out = log10_fq([1.0, 1e-2, 1e-239, 0.0, 1e-320, float("nan"), None])
    assert out[:5] == pytest.approx([0.0, -2.0, -239.0, -300.0, -300.0])
    assert np.isnan(out[5]) and np.isnan(out[6])
    assert FQ_FLOOR == 1e-300


def test_forget_quality_is_aggregated_as_log10():
    """Seeds 1e-2, 1e-4, 0 -> log10 -2, -4, -300 (floor) -> mean -102: shown as 1.00e-102, not as the
    arithmetic mean of the p-values (0.0034); the CI is mean_ci of the log10 values."""
    rows = pd.DataFrame([_row("m", "npo", s, fq, 0.7, lr=1e-4) for s, fq in enumerate([1e-2, 1e-4, 0.0])])
    setting = settings_table(rows).iloc[0]
    assert setting["fq_log10"] == pytest.approx(-102.0)
    assert setting["forget_quality"] == pytest.approx(1e-102)
    assert setting["fq_log10_ci"] == pytest.approx(mean_ci([-2.0, -4.0, -300.0])[1])
    assert setting["fq_log10_values"] == pytest.approx([-2.0, -4.0, -300.0])
    assert setting["n"] == 3


def test_format_fq():
    """10^-2 with half-width 0.5 log10 units: 1.00e-02 ×/÷ 10^0.5 = 3.16."""
    assert format_fq(-2.0, 0.5) == "1.00e-02 ×/÷ 3.16"
    assert format_fq(-2.0, float("nan")) == "1.00e-02"
    assert format_fq(-300.0, 1.0) == "≤ 1e-300"
    assert format_fq(-1.0, 400.0) == "1.00e-01 ×/÷ 10^400.0"  # 10**400 overflows a float
    assert format_fq(-1.6, 4.46) == "2.51e-02 ×/÷ 10^4.5"
    assert format_fq(float("nan"), float("nan")) == "—"


# --------------------------------------------------------------------------------------- selection rule


@pytest.fixture
def choices():
    """Target utility 0.8 -> the rule needs utility >= 0.9 x 0.8 = 0.72.

    npo: lr 1e-3 has the best forget quality (0.9) but utility 0.5, so it is excluded; lr 3e-4
        (FQ 1e-2, utility 0.78) beats lr 1e-4 (FQ 1e-3, utility 0.79).
    grad_ascent: no setting reaches 0.72: its highest-utility one (lr 3e-4, 0.7) is shown, not qualifying,
        although lr 1e-4 has the higher forget quality.
    dpo: one qualifying setting, FQ 1e-4.
    """
    rows = [_row("m", "none", 0, 1e-6, 0.8), _row("m", "retain", 0, 1.0, 0.8)]
    for seed in range(3):
        rows += [_row("m", "npo", seed, 0.9, 0.5, lr=1e-3), _row("m", "npo", seed, 1e-2, 0.78, lr=3e-4),
                 _row("m", "npo", seed, 1e-3, 0.79, lr=1e-4),
                 _row("m", "grad_ascent", seed, 0.5, 0.6, lr=1e-4), _row("m", "grad_ascent", seed, 1e-5, 0.7, lr=3e-4),
                 _row("m", "dpo", seed, 1e-4, 0.75, lr=1e-4)]
    return pd.DataFrame(rows)


def test_selection_rule_respects_the_utility_constraint(choices):
    table = select_settings(settings_table(choices))
    assert UTILITY_RATIO == 0.9
    assert table["threshold"].tolist() == pytest.approx([0.72] * len(table))
    chosen = _selected(table)
    assert set(chosen) == {("m", "npo"), ("m", "grad_ascent"), ("m", "dpo")}  # references are never selected
    assert chosen["m", "npo"]["setting"] == "lr 3e-4" and chosen["m", "npo"]["qualifies"]
    assert chosen["m", "dpo"]["qualifies"]
    assert chosen["m", "grad_ascent"]["setting"] == "lr 3e-4" and not chosen["m", "grad_ascent"]["qualifies"]
    # qualifying methods first, by log10 FQ; the non-qualifying one last despite its higher forget quality
    assert [chosen["m", m]["rank"] for m in ("npo", "dpo", "grad_ascent")] == [1, 2, 3]
    npo = table[table["method"] == "npo"].set_index("setting")
    assert list(npo.loc[["lr 1e-4", "lr 3e-4", "lr 1e-3"], "eligible"]) == [True, True, False]


def test_selection_ranks_by_log10_not_by_mean_p_value():
    """Seeds 1, 1e-10, 1e-10: arithmetic mean 0.33 but mean log10 -6.67, which loses to 1e-3 every seed (-3)."""
    rows = [_row("m", "none", 0, 1e-8, 0.8)]
    for seed, fq in enumerate([1.0, 1e-10, 1e-10]):
        rows += [_row("m", "npo", seed, fq, 0.8, lr=1e-4), _row("m", "npo", seed, 1e-3, 0.8, lr=3e-4)]
    chosen = _selected(select_settings(settings_table(pd.DataFrame(rows))))
    assert chosen["m", "npo"]["setting"] == "lr 3e-4"
    assert chosen["m", "npo"]["fq_log10"] == pytest.approx(-3.0)


def test_selection_without_a_target_applies_no_constraint():
    rows = pd.DataFrame([_row("m", "npo", 0, 0.5, 0.1, lr=1e-4), _row("m", "npo", 0, 1e-3, 0.9, lr=3e-4)])
    table = select_settings(settings_table(rows))
    chosen = _selected(table)
    assert chosen["m", "npo"]["setting"] == "lr 1e-4" and chosen["m", "npo"]["qualifies"]
    assert table["threshold"].isna().all()


def test_selection_is_per_model():
    """The same method is selected at different settings on two models with different targets."""
    rows = [_row("a", "none", 0, 1e-6, 0.8), _row("b", "none", 0, 1e-6, 0.4),
            _row("a", "npo", 0, 0.5, 0.5, lr=1e-3), _row("a", "npo", 0, 1e-3, 0.8, lr=1e-4),
            _row("b", "npo", 0, 0.5, 0.5, lr=1e-3), _row("b", "npo", 0, 1e-3, 0.8, lr=1e-4)]
    chosen = _selected(select_settings(settings_table(pd.DataFrame(rows))))
    assert chosen["a", "npo"]["setting"] == "lr 1e-4"  # 0.5 < 0.72
    assert chosen["b", "npo"]["setting"] == "lr 1e-3"  # 0.5 >= 0.36


def test_failed_rows_are_not_counted(choices):
    df = pd.concat([choices, pd.DataFrame([_row("m", "npo", 9, None, None, lr=3e-4, status="failed")])])
    table = settings_table(df)
    assert table.loc[(table["method"] == "npo") & (table["setting"] == "lr 3e-4"), "n"].item() == 3


# --------------------------------------------------------------------------------------- significance


def test_significance_is_welch_on_log10_fq():
    """Top: log10 FQ -1, -1.5, -0.5 (mean -1); other: -4, -3, -5 (mean -4). Welch's t as scipy computes it."""
    top, other = [-1.0, -1.5, -0.5], [-4.0, -3.0, -5.0]
    rows = [_row("m", "none", 0, 1e-9, 0.8)]
    rows += [_row("m", "npo", s, 10 ** v, 0.8, lr=1e-4) for s, v in enumerate(top)]
    rows += [_row("m", "dpo", s, 10 ** v, 0.8, lr=1e-4) for s, v in enumerate(other)]
    table = select_settings(settings_table(pd.DataFrame(rows)))
    tests = significance(table[table["selected"]])
    assert len(tests) == 1
    test = tests.iloc[0]
    expected = stats.ttest_ind(top, other, equal_var=False)
    assert (test["top"], test["other"], test["n_top"], test["n_other"]) == ("npo", "dpo", 3, 3)
    assert test["t"] == pytest.approx(expected.statistic) and test["p"] == pytest.approx(expected.pvalue)
    assert expected.pvalue < 0.05 and test["verdict"].startswith("separated")


@pytest.mark.parametrize("top, other, verdict", [
    ([-1.0, -1.2], [-4.0, -4.5], "too few seeds"),           # n = 2 per side, whatever p says
    ([-1.0, -2.0, -3.0], [-1.5, -2.5, -2.0], "not separated"),  # p >= 0.05
    ([-1.0], [-4.0], "too few seeds"),                          # no test possible at all
])
def test_significance_says_when_seeds_cannot_separate(top, other, verdict):
    rows = [_row("m", "npo", s, 10 ** v, 0.8, lr=1e-4) for s, v in enumerate(top)]
    rows += [_row("m", "dpo", s, 10 ** v, 0.8, lr=1e-4) for s, v in enumerate(other)]
    table = select_settings(settings_table(pd.DataFrame(rows)))
    test = significance(table[table["selected"]]).iloc[0]
    assert test["verdict"].startswith(verdict)
    if len(top) < 2:
        assert math.isnan(test["p"])


# --------------------------------------------------------------------------------------- Pareto front


def test_pareto_mask_known_front_with_ties_and_duplicates():
    """Maximising both: (1, 3), (2, 2) twice and (3, 1) are the front; (3, 0.5) loses to (3, 1) on a tie
    in x, (1, 2) to (1, 3); the NaN point is never on the front."""
    x = [1, 2, 3, 2, 3, np.nan, 1]
    y = [3, 2, 1, 2, 0.5, 5, 2]
    assert pareto_mask(x, y).tolist() == [True, True, True, True, False, False, False]


def test_pareto_mask_single_and_identical_points():
    assert pareto_mask([0.5], [0.5]).tolist() == [True]
    assert pareto_mask([1, 1, 1], [2, 2, 2]).tolist() == [True, True, True]
    assert pareto_mask([], []).tolist() == []


def test_pareto_front_is_per_model_and_leaves_out_references(choices):
    table = mark_front(select_settings(settings_table(choices)))
    front = table[table["front"]]
    assert not front["method"].isin(["none", "retain"]).any()
    # log10 FQ / utility: npo lr1e-3 (-0.05, 0.5), npo lr3e-4 (-2, 0.78), npo lr1e-4 (-3, 0.79), ga lr1e-4
    # (-0.3, 0.6), ga lr3e-4 (-5, 0.7), dpo (-4, 0.75): front = npo lr1e-3, lr3e-4, lr1e-4, ga lr1e-4
    assert sorted(zip(front["method"], front["setting"])) == [
        ("grad_ascent", "lr 1e-4"), ("npo", "lr 1e-3"), ("npo", "lr 1e-4"), ("npo", "lr 3e-4")]


# --------------------------------------------------------------------------------------- ablation grid


@pytest.fixture
def grid_rows():
    """ga_gd over forget factor {-1, -8} x lr {1e-4, 1e-3}; seeds 0-1, and a third seed in one cell only."""
    rows = [_row("m", "none", 0, 1e-6, 0.8)]
    for ff in (-1.0, -8.0):
        for lr in (1e-4, 1e-3):
            for seed in (0, 1):
                fq, utility = 10.0 ** (ff * (1 + seed)), 0.1 * seed - ff / 10 + lr
                rows.append(_row("m", "ga_gd", seed, fq, utility, lr=lr, ff=ff))
    rows.append(_row("m", "ga_gd", 2, 1e-300, 0.9, lr=1e-3, ff=-8.0))
    return pd.DataFrame(rows)


def test_ablation_grid_cell_means(grid_rows):
    """Utility cell (ff, lr) = mean over seeds 0, 1 of 0.1 s - ff/10 + lr = 0.05 - ff/10 + lr; the (-8, 1e-3)
    cell also has seed 2 (0.9): (0.801 + 0.901 + 0.9) / 3."""
    grid = ablation_grid(grid_rows, "forget_factor", "hp.lr", "model_utility")
    assert (grid.x, grid.y) == ("hp.forget_factor", "hp.lr")
    assert list(grid.means.columns) == ["-8", "-1"] and list(grid.means.index) == ["1e-4", "1e-3"]
    assert grid.means.loc["1e-4", "-1"] == pytest.approx(0.05 + 0.1 + 1e-4)
    assert grid.means.loc["1e-3", "-1"] == pytest.approx(0.05 + 0.1 + 1e-3)
    assert grid.means.loc["1e-4", "-8"] == pytest.approx(0.05 + 0.8 + 1e-4)
    assert grid.means.loc["1e-3", "-8"] == pytest.approx((0.801 + 0.901 + 0.9) / 3)
    assert grid.counts.loc["1e-3", "-8"] == 3 and grid.counts.loc["1e-4", "-1"] == 2
    text = grid.markdown()
    assert "(n=3)" in text and "(n=2)" in text  # n varies, so every cell shows it
    assert "hp.lr \\ hp.forget_factor" in text


def test_ablation_grid_forget_quality_is_geometric(grid_rows):
    """FQ seeds 0, 1 at ff=-1: 10^-1, 10^-2 -> mean log10 -1.5, shown 3.16e-02; at (-8, 1e-3) with the
    third seed at the floor: log10 -8, -16, -300 -> -108."""
    grid = ablation_grid(grid_rows, "hp.forget_factor", "hp.lr", "forget_quality")
    assert grid.log10
    assert grid.means.loc["1e-4", "-1"] == pytest.approx(-1.5)
    assert grid.means.loc["1e-3", "-8"] == pytest.approx(-108.0)
    assert grid.cell_text().loc["1e-4", "-1"] == f"{10 ** -1.5:.2e} (n=2)"


def test_ablation_grid_wrong_column_lists_the_available_ones(grid_rows):
    with pytest.raises(ReportError) as err:
        ablation_grid(grid_rows, "hp.forget_factr", "hp.lr", "forget_quality")
    message = str(err.value)
    assert "hp.forget_factr" in message and "Did you mean hp.forget_factor" in message
    for column in grid_rows.columns:
        assert column in message
    with pytest.raises(ReportError, match="--metric 'utility' is not a column.*model_utility"):
        ablation_grid(grid_rows, "hp.forget_factor", "hp.lr", "utility")
    with pytest.raises(ReportError, match="not a numeric column"):
        ablation_grid(grid_rows, "hp.forget_factor", "hp.lr", "method")
    with pytest.raises(ReportError, match="methods present: ga_gd, none"):
        ablation_grid(grid_rows, "hp.forget_factor", "hp.lr", "forget_quality", method="npo")


def test_ablation_grid_refuses_to_mix_models(grid_rows):
    other = grid_rows.assign(model="m2")
    both = pd.concat([grid_rows, other], ignore_index=True)
    with pytest.raises(ReportError, match="--model"):
        ablation_grid(both, "hp.forget_factor", "hp.lr", "model_utility")
    grid = ablation_grid(both, "hp.forget_factor", "hp.lr", "model_utility", model="m2")
    assert grid.means.loc["1e-4", "-1"] == pytest.approx(0.05 + 0.1 + 1e-4)
    assert grid.filename() == "ablate_model_utility_forget_factor_lr_m2.png"


# --------------------------------------------------------------------------------------- end to end


PROMPTS = ["Where was Amarante Wainwright born?", "Who wrote 'Pride and Prejudice'?"]


def _probes(after: list[str]) -> str:
    return json.dumps([{"prompt": q, "before": b, "after": a}
                       for q, b, a in zip(PROMPTS, ["Amarante was born in Thistlewick.", "Jane Austen"], after)])


def _write_results(out_dir: Path) -> None:
    """A toy suite: target and retain; ga_gd over forget factor x lr (2 x 2) and npo at one lr; 3 seeds."""
    extra = {"retain_greedy_exact_match": 0.9, "forget_rouge": 0.4, "mia_mink_pp_auc": 0.5, "privleak": -5.0}
    rows = [_row("tiny-llama", "none", 0, 1e-7, 0.8, probe_generations=_probes(["Amarante was born in Thistlewick.",
                                                                                 "Jane Austen"]), **extra),
            _row("tiny-llama", "retain", 0, 1.0, 0.8, probe_generations=_probes(["Pavlo was born in Hallowmere.",
                                                                                   "Jane Austen"]), **extra)]
    for seed in range(3):
        for i, (ff, lr) in enumerate([(-1.0, 1e-4), (-1.0, 1e-3), (-8.0, 1e-4), (-8.0, 1e-3)]):
            rows.append(_row("tiny-llama", "ga_gd", seed, 10.0 ** -(i + 1 + seed), 0.78 - 0.05 * i, lr=lr, ff=ff,
                             probe_generations=_probes([f"ga_gd answer | {seed}", "Jane Austen"]), **extra))
        rows.append(_row("tiny-llama", "npo", seed, 10.0 ** -(0.5 + seed / 4), 0.77, lr=3e-4,
                         probe_generations=_probes(["Zielinsky was born in Marrowick.", "Jane Austen"]), **extra))
    rows.append(_row("tiny-llama", "npo", 3, None, None, lr=3e-4, error="RuntimeError: boom", status="failed"))
    for i, row in enumerate(rows):
        row.update(trial_id=f"t{i:02d}", hp_changed=json.dumps([]))
    schema = pa.Table.from_pylist(rows).schema  # one schema for every file, as bench run writes them
    out_dir.mkdir(parents=True)
    for row in rows:
        pq.write_table(pa.Table.from_pylist([row], schema=schema), out_dir / f"{row['trial_id']}.parquet")


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > len(PNG_MAGIC) and data.startswith(PNG_MAGIC)


def test_report_end_to_end(tmp_path):
    results = tmp_path / "toy"
    _write_results(results)
    report = build_report(results)
    assert report.path == results / "_report" / "report.md"
    text = report.path.read_text()
    # leaderboard with intervals, reference rows on top, the rule stated
    assert "## Leaderboard" in text and " ± " in text and "×/÷" in text
    assert "none (target)" in text and "retain (gold standard)" in text
    assert text.index("none (target)") < text.index("| npo ")
    assert "0.9 x the target's" in text and "log10" in text and "1e-300" in text
    assert "1 diverged or failed, not averaged in" in text
    unstable = text.split("## Diverged and failed settings")[1].split("\n## ")[0]
    assert "| tiny-llama | npo" in unstable and "RuntimeError: boom" in unstable
    # significance, Pareto table, probes, ablations, full table
    assert "## Significance" in text and "Welch" in text
    assert "## Pareto front" in text and "| model " in text.split("## Pareto front")[1]
    probes = text.split("\n## Probes")[1].split("\n## ")[0]
    assert "target (before)" in probes and "Amarante was born in Thistlewick." in probes
    assert "ga_gd answer \\| 0" in probes  # the first seed's answer, its pipe escaped
    assert "Zielinsky was born in Marrowick." in probes and "Pavlo was born in Hallowmere." in probes
    assert "## Ablations" in text and "## Every setting" in text
    # one row per trial, no forget_val split: selected on test, said so; no learning curves or sequential section
    assert "No forget_val forget quality" in text.split("## Leaderboard")[1].split("\n## ")[0]
    assert "## Selection on validation vs on test" in text
    assert "## Learning curves" not in text and "## Sequential unlearning" not in text
    # figures: one Pareto scatter, two heatmaps (forget quality and utility over forget factor x lr)
    names = sorted(p.name for p in report.figures)
    assert names == ["ablate_forget_quality_forget_factor_lr_ga_gd.png",
                     "ablate_model_utility_forget_factor_lr_ga_gd.png", "pareto_tiny-llama.png"]
    pngs = sorted((results / "_report").glob("*.png"))
    assert len(pngs) >= 2 and all(_is_png(p) for p in pngs)
    for name in names:
        assert f"]({name})" in text
    # the "_" keeps the report out of the Parquet dataset
    assert len(pd.read_parquet(results)) == 2 + 3 * (4 + 1) + 1  # references, 3 seeds x 5 settings, 1 failed


def test_report_shows_robustness_to_attacks(tmp_path):
    """Rows with attack columns: the robustness table, its plot and the Pareto front on the worst case."""
    results = tmp_path / "attacked"
    rows = [_row("m", "none", 0, 1e-7, 0.8, forget_prob=0.9, **{"attack.relearn_steps25.forget_quality": 1e-7,
                 "attack.relearn_steps25.forget_prob": 0.9, "attack.relearn_steps25.recovery": None}),
            _row("m", "retain", 0, 1.0, 0.8, forget_prob=0.3, **{"attack.relearn_steps25.forget_quality": 0.5,
                 "attack.relearn_steps25.forget_prob": 0.4, "attack.relearn_steps25.recovery": 0.15})]
    for seed in range(3):
        rows.append(_row("m", "npo", seed, 1e-1, 0.76, lr=3e-4, forget_prob=0.2, **{
            "attack.relearn_steps25.forget_quality": 1e-5, "attack.relearn_steps25.forget_prob": 0.6,
            "attack.relearn_steps25.recovery": 0.55 + 0.05 * seed}))
        rows.append(_row("m", "rmu", seed, 1e-2, 0.77, lr=3e-3, forget_prob=0.25, **{
            "attack.relearn_steps25.forget_quality": 1e-2, "attack.relearn_steps25.forget_prob": 0.3,
            "attack.relearn_steps25.recovery": 0.1}))
    for i, row in enumerate(rows):
        row.update(trial_id=f"a{i:02d}", hp_changed=json.dumps([]))
    schema = pa.Table.from_pylist(rows).schema
    results.mkdir()
    for row in rows:
        pq.write_table(pa.Table.from_pylist([row], schema=schema), results / f"{row['trial_id']}.parquet")
    report = build_report(results)
    text = report.path.read_text()
    section = text.split("## Robustness to attacks")[1].split("\n## ")[0]
    npo = next(line for line in section.splitlines() if "| npo " in line)
    assert "0.60" in npo and "relearn_steps25" in npo  # mean recovery over seeds; the strongest attack
    assert "| retain " in section and "0.15" in section
    # the leaderboard ranks by what survives: rmu keeps its forget quality under attack, npo does not
    board = text.split("## Leaderboard")[1].split("\n## ")[0]
    assert "worst-case FQ" in board and "recovery" in board
    plain = text.split("## Pareto front: forget quality")[1].split("###")[0]
    assert "| rmu " in plain and "| npo " in plain  # npo: higher forget quality, rmu: higher utility
    worst = text.split("### Pareto front on worst-case forget quality")[1].split("\n## ")[0]
    assert "| rmu " in worst and "| npo " not in worst  # under attack rmu wins on both
    names = sorted(p.name for p in report.figures)
    assert "robustness_m.png" in names and "pareto_worst_m.png" in names
    assert all(_is_png(report.path.parent / n) for n in names)


def test_report_and_ablate_commands(tmp_path, capsys):
    from bench.cli import main

    results = tmp_path / "toy"
    _write_results(results)
    assert main(["report", str(results)]) == 0
    out = capsys.readouterr().out
    assert "| npo " in out and "report.md" in out
    assert main(["ablate", str(results), "--x", "forget_factor", "--y", "hp.lr", "--metric", "model_utility"]) == 0
    out = capsys.readouterr().out
    assert "hp.lr \\ hp.forget_factor" in out
    assert _is_png(results / "_report" / "ablate_model_utility_forget_factor_lr.png")
    assert main(["ablate", str(results), "--x", "hp.nope", "--y", "hp.lr"]) == 2
    err = capsys.readouterr().err
    assert "hp.nope" in err and "hp.forget_factor" in err and "model_utility" in err
    assert main(["report", str(tmp_path / "missing")]) == 2


def test_report_of_only_failed_rows_is_an_error(tmp_path):
    out = tmp_path / "failed"
    out.mkdir()
    row = {**_row("m", "npo", 0, None, None, lr=1e-4, status="failed"), "trial_id": "x"}
    pq.write_table(pa.Table.from_pylist([row]), out / "x.parquet")
    with pytest.raises(ReportError, match="none of the 1 rows has status ok"):
        build_report(out)


# --------------------------------------------------------------------------------------- the ablation suite


def test_ablation_suite_shares_tofu_small_sections():
    from bench.config.suite import load_suite

    ablation = load_suite(REPO_ROOT / "suites" / "ablation_factor_lr.yaml")
    small = load_suite(REPO_ROOT / "suites" / "tofu_small.yaml")
    assert (ablation.data, ablation.prepare, ablation.unlearn, ablation.eval) == \
           (small.data, small.prepare, dataclasses.replace(small.unlearn, eval_at=()), small.eval)
    assert ablation.models == ("tiny-llama",) or list(ablation.models) == ["tiny-llama"]
    trials = ablation.trials()
    assert len(trials) == 36 and {t.method for t in trials} == {"ga_gd"}
    grid = {(t.hyperparameters()["forget_factor"], t.hyperparameters()["lr"]) for t in trials}
    assert grid == {(ff, lr) for ff in (-1.0, -4.0, -8.0, -16.0) for lr in (1e-4, 3e-4, 1e-3)}
