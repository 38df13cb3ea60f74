"""Tests for several rows per trial: selection on forget_val (never on the test columns), checkpoints as
settings, forget fractions kept apart, sequential trials, and the report's sections built from Parquet rows
written by hand (no training)."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.report.ablation import ablation_grid
from bench.report.aggregate import has_checkpoints, with_protocol_columns
from bench.report.every_setting import leaderboard_table, render
from bench.report.sections import learning_curves, selection_comparison, sequential_table
from bench.report.document import build_report, leaderboard_section
from bench.report.selection import select_settings, selection_basis, selection_note, settings_table
from bench.report.robustness import robustness_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(method, seed, fq, val, mu, *, model="m", lr=None, step=None, final=True, part=None, parts=None,
         fraction=None, trial=None, **extra):
    """One result row; reference rows (none, retain) have no hyperparameters and step 0."""
    reference = method in ("none", "retain")
    return {"suite": "toy", "model": model, "method": method, "seed": seed, "status": "ok", "error": None,
            "trial_id": trial or f"{model}-{method}-{lr}-{seed}-{fraction}-{parts}",
            "hp.lr": None if reference else lr, "step": 0 if reference else step, "is_final": final,
            "sequential_part": part, "sequential_parts": parts, "forget_fraction": fraction,
            "forget_quality": fq, "forget_val_quality": val, "model_utility": mu, **extra}


def _chosen(table: pd.DataFrame) -> dict:
    """(model, method) -> the selected setting's text."""
    return {(r["model"], r["method"]): r["setting"] for _, r in table[table["selected"]].iterrows()}


@pytest.fixture
def disagree():
    """Target utility 0.8 (threshold 0.72); npo over lr, 3 seeds, every setting keeps utility 0.8:

    lr 1e-4: test FQ 1e-2, forget_val FQ 1e-5  -> the best on test
    lr 3e-4: test FQ 1e-5, forget_val FQ 1e-2  -> the best on validation
    lr 1e-3: test FQ 1e-1, forget_val FQ 1e-1 but utility 0.5 < 0.72: excluded on both
    """
    rows = [_row("none", 0, 1e-8, 1e-8, 0.8), _row("retain", 0, 1.0, 0.9, 0.8)]
    for seed in range(3):
        rows += [_row("npo", seed, 1e-2, 1e-5, 0.8, lr=1e-4, step=100),
                 _row("npo", seed, 1e-5, 1e-2, 0.8, lr=3e-4, step=100),
                 _row("npo", seed, 1e-1, 1e-1, 0.5, lr=1e-3, step=100)]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------- selection


def test_validation_and_test_selection_disagree(disagree):
    settings = settings_table(disagree)
    assert selection_basis(settings) == "validation"
    on_val = select_settings(settings, on="validation")
    on_test = select_settings(settings, on="test")
    assert _chosen(on_val) == {("m", "npo"): "lr 3e-4"}
    assert _chosen(on_test) == {("m", "npo"): "lr 1e-4"}
    assert select_settings(settings)["selected_on"].eq("validation").all()  # the default: validation when present
    comparison = selection_comparison(on_val, on_test).iloc[0]
    # the validation choice scores 1e-5 on test, the test choice 1e-2: the test view flatters npo by 3 decades
    assert comparison["val_fq_log10"] == pytest.approx(-5) and comparison["test_fq_log10"] == pytest.approx(-2)
    assert comparison["gap"] == pytest.approx(3) and not comparison["agree"]


# Every column that measures the forget (test) split, or attacks on it: validation selection must not read any.
TEST_COLUMNS = re.compile(r"^(fq_log10|forget_quality|forget_(?!val)|worst_|attack\.|max_recovery|mia_|privleak)")


class Guarded(pd.DataFrame):
    """A DataFrame that fails the test when a test-split column is read through [] or .get."""

    @property
    def _constructor(self):
        return Guarded

    def __getitem__(self, key):
        keys = key if isinstance(key, list) else [key]
        read = [k for k in keys if isinstance(k, str) and TEST_COLUMNS.match(k)]
        if read:
            raise AssertionError(f"validation selection read test columns {read}")
        return super().__getitem__(key)

    def get(self, key, default=None):
        return self[key] if key in self.columns else default


def test_validation_selection_never_reads_the_test_columns(disagree):
    settings = settings_table(disagree.assign(forget_prob=0.3, forget_rouge=0.2))
    expected = select_settings(settings, on="validation")[["selected", "qualifies", "rank"]]
    test_columns = [c for c in settings.columns if TEST_COLUMNS.match(c)]
    assert {"fq_log10", "forget_quality", "fq_log10_values"} <= set(test_columns)
    # 1. garbage in every test column: the same choice
    rng = np.random.default_rng(0)
    garbage = settings.copy()
    for column in test_columns:
        garbage[column] = [rng.normal() * 100 for _ in range(len(garbage))]
    pd.testing.assert_frame_equal(select_settings(garbage, on="validation")[expected.columns], expected)
    # 2. the test columns removed: nothing to read, the same choice
    dropped = settings.drop(columns=test_columns)
    pd.testing.assert_frame_equal(select_settings(dropped, on="validation")[expected.columns], expected)
    # 3. any read of them fails
    guarded = select_settings(Guarded(settings), on="validation")
    pd.testing.assert_frame_equal(pd.DataFrame(guarded)[expected.columns], expected)
    with pytest.raises(AssertionError, match="read test columns"):
        select_settings(Guarded(settings), on="test")  # the optimistic view does read them: the guard works


def test_no_forget_val_split_falls_back_to_test(disagree):
    """Without forget_val values (absent column, or all NaN) the rule reads test forget quality, labelled optimistic."""
    only_references = disagree.assign(forget_val_quality=disagree["forget_val_quality"].where(
        disagree["method"].isin(["none", "retain"])))  # sequential trials: the references alone have them
    for rows in (disagree.drop(columns="forget_val_quality"), disagree.assign(forget_val_quality=np.nan),
                 only_references):
        settings = settings_table(rows)
        assert selection_basis(settings) == "test"
        table = select_settings(settings)
        assert _chosen(table) == {("m", "npo"): "lr 1e-4"} and table["selected_on"].eq("test").all()
    note = selection_note("test", has_validation=False)
    assert "No forget_val forget quality" in note and "optimistic" in note
    assert "optimistic" in selection_note("test", has_validation=True)
    assert "chosen on forget_val" in selection_note("validation", has_validation=True)


# --------------------------------------------------------------------------------------- checkpoints


@pytest.fixture
def checkpoints():
    """npo lr 1e-4, seeds 0 and 1, each trial evaluated at steps 25 and 50 (final):

    step 25: test FQ 1e-2 / 1e-4 (mean log10 -3), forget_val 1e-2, utility 0.80 / 0.78
    step 50: test FQ 1e-6 (both seeds), forget_val 1e-7, utility 0.79
    Target utility 0.8 -> threshold 0.72: every checkpoint qualifies.
    """
    rows = [_row("none", 0, 1e-8, 1e-8, 0.8), _row("retain", 0, 1.0, 0.9, 0.8)]
    for seed, (fq25, mu25) in enumerate([(1e-2, 0.80), (1e-4, 0.78)]):
        trial = f"npo-{seed}"
        rows += [_row("npo", seed, fq25, 1e-2, mu25, lr=1e-4, step=25, final=False, trial=trial),
                 _row("npo", seed, 1e-6, 1e-7, 0.79, lr=1e-4, step=50, final=True, trial=trial)]
    return pd.DataFrame(rows)


def test_checkpoints_are_settings_never_averaged_together(checkpoints):
    assert has_checkpoints(checkpoints)
    settings = settings_table(checkpoints)
    npo = settings[settings["method"] == "npo"].set_index("setting")
    assert list(npo.index) == ["step 25", "step 50"]  # one hyperparameter setting, two checkpoints
    assert npo.loc["step 25", "fq_log10"] == pytest.approx(-3) and npo.loc["step 25", "n"] == 2
    assert npo.loc["step 50", "fq_log10"] == pytest.approx(-6) and npo.loc["step 50", "n"] == 2
    assert npo.loc["step 25", "model_utility"] == pytest.approx(0.79)
    # the checkpoint is chosen like a hyperparameter: step 25 has the better forget_val quality
    assert _chosen(select_settings(settings)) == {("m", "npo"): "step 25"}
    # the end-of-run table is about the full budget: each trial's final row, one line for npo
    board = leaderboard_table(checkpoints)
    assert board.loc[board["method"] == "npo", "n"].tolist() == [2]
    assert board.loc[board["method"] == "npo", "forget quality"].item().startswith("1.00e-06")
    assert "step" not in board  # every trial ends at the same step


def test_old_results_are_one_final_row_per_trial(disagree):
    old = disagree.drop(columns=["step", "is_final", "sequential_part", "sequential_parts", "forget_fraction"])
    rows = with_protocol_columns(old)
    assert rows["is_final"].all() and rows["step"].isna().all() and (rows["model"] == "m").all()
    assert not has_checkpoints(old)
    assert list(settings_table(old)["setting"]) == ["", "", "lr 1e-4", "lr 3e-4", "lr 1e-3"]


def test_learning_curves_average_seeds_per_step(checkpoints):
    curves = learning_curves(checkpoints)
    assert curves[["method", "setting", "step", "n"]].values.tolist() == [["npo", "defaults", 25, 2],
                                                                        ["npo", "defaults", 50, 2]]
    assert curves["fq_log10"].tolist() == pytest.approx([-3, -6])
    assert curves["fq_val_log10"].tolist() == pytest.approx([-2, -7])
    assert curves["model_utility"].tolist() == pytest.approx([0.79, 0.79])


def test_ablation_over_step_and_final_rows_elsewhere(checkpoints):
    grid = ablation_grid(checkpoints, "step", "hp.lr", "forget_quality")
    assert list(grid.means.columns) == ["25", "50"]
    assert grid.means.loc["1e-4"].tolist() == pytest.approx([-3, -6])
    two = pd.concat([checkpoints, checkpoints[checkpoints["method"] == "npo"].assign(**{"hp.lr": 3e-4})])
    grid = ablation_grid(two, "hp.lr", "seed", "forget_quality")  # step not an axis: final rows only
    assert grid.means.to_numpy() == pytest.approx(np.full((2, 2), -6.0))
    assert grid.counts.to_numpy().tolist() == [[1, 1], [1, 1]]


def test_robustness_reads_final_rows_only(checkpoints):
    rows = checkpoints.assign(**{"attack.r.forget_quality": np.where(checkpoints["is_final"], 1e-7, np.nan)})
    table = robustness_table(rows)
    assert table.loc[table["method"] == "npo", "n"].tolist() == [2]


def test_every_setting_table_and_leaderboard_say_what_they_show(checkpoints):
    """`_settings.md` shows every setting at its final checkpoint and points to the leaderboard; the
    leaderboard (`_leaderboard.md`, the report's first section) shows the setting and checkpoint chosen on
    forget_val: step 25 (forget_val FQ 1e-2) over step 50 (1e-7)."""
    board = render(checkpoints)
    assert "| npo " in board and "step 25" not in board  # all settings at their final checkpoint
    assert "the leaderboard (`_leaderboard.md`) selects" in board
    leaderboard = leaderboard_section(checkpoints)
    assert "forget_val" in leaderboard and "step 25" in leaderboard and "step 50" not in leaderboard


# --------------------------------------------------------------------------------------- fractions, sequential


def test_forget_fractions_are_kept_apart():
    """Target utility 0.8 at 1% (threshold 0.72) and 0.4 at 5% (0.36): npo lr 1e-3 (utility 0.5, better forget
    quality) qualifies at 5% only; each fraction's references are its own."""
    rows = []
    for fraction, target in ((0.01, 0.8), (0.05, 0.4)):
        rows += [_row("none", 0, 1e-8, 1e-8, target, fraction=fraction),
                 _row("retain", 0, 1.0, 1.0, target, fraction=fraction),
                 _row("npo", 0, 1e-1, 1e-1, 0.5, lr=1e-3, step=100, fraction=fraction),
                 _row("npo", 0, 1e-3, 1e-3, 0.8, lr=1e-4, step=100, fraction=fraction)]
    table = select_settings(settings_table(pd.DataFrame(rows)))
    assert _chosen(table) == {("m (forget 1%)", "npo"): "lr 1e-4", ("m (forget 5%)", "npo"): "lr 1e-3"}
    assert table.groupby("model")["threshold"].first().to_dict() == pytest.approx(
        {"m (forget 1%)": 0.72, "m (forget 5%)": 0.36})
    assert sorted(leaderboard_table(pd.DataFrame(rows))["model"].unique()) == ["m (forget 1%)", "m (forget 5%)"]


def test_sequential_trials_count_with_their_final_row():
    """K = 2 parts: after part 1 FQ 1e-2 (better), after part 2 (final) 1e-4; the leaderboard sees only the
    final row, the sequential table both."""
    rows = [_row("none", 0, 1e-8, 1e-8, 0.8)]
    for seed in (0, 1):
        rows += [_row("npo", seed, 1e-2, 1e-2, 0.8, lr=1e-4, step=50, final=False, part=1, parts=2, trial=f"s{seed}"),
                 _row("npo", seed, 1e-4, 1e-3, 0.78, lr=1e-4, step=100, part=2, parts=2, trial=f"s{seed}")]
    rows.append(_row("npo", 0, 1e-3, 1e-3, 0.8, lr=1e-4, step=100, trial="oneshot"))
    settings = settings_table(pd.DataFrame(rows))
    npo = settings[settings["method"] == "npo"].set_index("setting")
    assert list(npo.index) == ["defaults", "sequential 2 parts"]  # not merged with the one-shot trial
    assert npo.loc["sequential 2 parts", "fq_log10"] == pytest.approx(-4)
    assert npo.loc["sequential 2 parts", "n"] == 2
    seq = sequential_table(pd.DataFrame(rows))
    assert seq[["part", "parts", "step", "n"]].values.tolist() == [[1, 2, 50, 2], [2, 2, 100, 2]]
    assert seq["fq_log10"].tolist() == pytest.approx([-2, -4])
    assert seq["model_utility"].tolist() == pytest.approx([0.8, 0.78])
    # an ablation cell holds the one-shot trial only, not its sequential twin
    grid = ablation_grid(pd.DataFrame(rows), "hp.lr", "seed", "forget_quality")
    assert grid.counts.to_numpy().tolist() == [[1]] and grid.means.to_numpy().ravel().tolist() == pytest.approx([-3])


# --------------------------------------------------------------------------------------- report end to end


def _write(out_dir: Path, rows: list[dict]) -> None:
    """One Parquet file per trial holding its rows, one schema for all (as the runner writes them)."""
    schema = pa.Table.from_pylist(rows).schema
    out_dir.mkdir(parents=True)
    for trial, part in pd.DataFrame(rows).groupby("trial_id", sort=False):
        records = [r for r in rows if r["trial_id"] == trial]
        pq.write_table(pa.Table.from_pylist(records, schema=schema), out_dir / f"{trial}.parquet")


def _suite_rows() -> list[dict]:
    """Two forget fractions (5%, 10%), each with target and retain; npo over two lrs evaluated at steps 25 and 50;
    grad_diff sequential in 2 parts at 10%; 2 seeds."""
    rows = []
    for fraction in (0.05, 0.1):
        rows += [_row("none", 0, 1e-9, 1e-9, 0.8, model="tiny-llama", fraction=fraction),
                 _row("retain", 0, 1.0, 0.9, 0.8, model="tiny-llama", fraction=fraction)]
        for seed in (0, 1):
            for i, lr in enumerate((1e-4, 3e-4)):
                trial = f"npo-{lr}-{seed}-{fraction}"
                for step, scale in ((25, 1), (50, 2)):
                    rows.append(_row("npo", seed, 10.0 ** -(1 + i + scale + seed), 10.0 ** -(2 - i + scale),
                                     0.79 - 0.01 * scale, model="tiny-llama", lr=lr, step=step, final=step == 50,
                                     fraction=fraction, trial=trial))
    for seed in (0, 1):
        for part in (1, 2):
            rows.append(_row("grad_diff", seed, 10.0 ** -(2 * part), 10.0 ** -(2 * part + 1), 0.78, model="tiny-llama",
                             lr=1e-4, step=50 * part, final=part == 2, part=part, parts=2, fraction=0.1,
                             trial=f"seq-{seed}"))
    return rows


def test_report_sections_for_several_rows_per_trial(tmp_path, capsys):
    results = tmp_path / "toy"
    _write(results, _suite_rows())
    report = build_report(results)
    text = report.path.read_text()
    board = text.split("## Leaderboard")[1].split("\n## ")[0]
    assert "chosen on forget_val forget quality at utility ≥ 0.9x target" in board
    assert "### tiny-llama (forget 5%)" in board and "### tiny-llama (forget 10%)" in board
    assert "FQ (forget_val)" in board
    comparison = text.split("## Selection on validation vs on test")[1].split("\n## ")[0]
    assert "chosen on test (optimistic)" in comparison and "| npo " in comparison
    curves = text.split("## Learning curves")[1].split("\n## ")[0]
    assert "95% t-interval over seeds" in curves and "| npo " in curves and "| 25 " in curves
    sizes = text.split("## Forget-set size")[1].split("\n## ")[0]
    assert "| npo " in sizes and "10%" in sizes and "5%" in sizes
    sequential = text.split("## Sequential unlearning")[1].split("\n## ")[0]
    assert "| 1/2 " in sequential and "| 2/2 " in sequential
    names = {p.name for p in report.figures}
    expected = {"curves_tiny-llama-forget-5-.png", "curves_tiny-llama-forget-10-.png",
                "forget_size_tiny-llama.png", "sequential_tiny-llama-forget-10-.png"}
    assert expected <= names
    for name in names:
        data = (results / "_report" / name).read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert f"]({name})" in text
    from bench.cli import main

    assert main(["ablate", str(results), "--x", "step", "--y", "hp.lr", "--model", "tiny-llama (forget 5%)",
                 "--method", "npo"]) == 0
    assert "hp.lr \\ step" in capsys.readouterr().out


def test_report_without_forget_val_says_it_selected_on_test(tmp_path):
    results = tmp_path / "old"
    rows = [{k: v for k, v in r.items() if k not in ("forget_val_quality", "step", "is_final")}
            for r in _suite_rows() if r["is_final"] and r["sequential_part"] is None]
    _write(results, rows)
    text = build_report(results).path.read_text()
    assert "No forget_val forget quality" in text.split("## Leaderboard")[1].split("\n## ")[0]
    assert "there is no validation choice" in text
    assert "## Learning curves" not in text and "## Sequential unlearning" not in text
    assert "## Forget-set size" in text


# --------------------------------------------------------------------------------------- no retain model


@pytest.fixture
def no_retain_model():
    """RWKU's shape: no forget quality anywhere (no retain model). Target utility 0.6 (threshold 0.54):

    npo lr 1e-5: forget accuracy 0.5, forget prob 0.30, utility 0.58  (qualifies)
    npo lr 3e-5: forget accuracy 0.1, forget prob 0.20, utility 0.56  (qualifies, lowest accuracy: selected)
    npo lr 1e-4: forget accuracy 0.0, forget prob 0.01, utility 0.30  (excluded)
    ga_gd lr 3e-5: forget accuracy 0.1, forget prob 0.05, utility 0.55 (ties npo on accuracy, lower probability)
    """
    rows = [_row("none", 0, np.nan, np.nan, 0.6, forget_keyword_acc=1.0, forget_prob=0.8)]
    for seed in range(2):
        rows += [_row("npo", seed, np.nan, np.nan, 0.58, lr=1e-5, step=20, forget_keyword_acc=0.5, forget_prob=0.3),
                 _row("npo", seed, np.nan, np.nan, 0.56, lr=3e-5, step=20, forget_keyword_acc=0.1, forget_prob=0.2),
                 _row("npo", seed, np.nan, np.nan, 0.30, lr=1e-4, step=20, forget_keyword_acc=0.0, forget_prob=0.01),
                 _row("ga_gd", seed, np.nan, np.nan, 0.55, lr=3e-5, step=20, forget_keyword_acc=0.1, forget_prob=0.05)]
    return pd.DataFrame(rows)


def test_without_forget_quality_selection_ranks_on_forget_accuracy_then_probability(no_retain_model):
    settings = settings_table(no_retain_model)
    assert selection_basis(settings) == "forget accuracy"
    table = select_settings(settings)
    assert _chosen(table) == {("m", "npo"): "lr 3e-5", ("m", "ga_gd"): "defaults"}
    ranks = table[table["selected"]].set_index("method")["rank"]
    assert ranks["ga_gd"] == 1 and ranks["npo"] == 2  # equal accuracy: the lower forget probability first
    assert table["kept"].eq("model_utility").all()  # no neighbour accuracy in these rows
    note = selection_note("forget accuracy", has_validation=False)
    assert "no retain model" in note and "forget accuracy" in note and "optimistic" in note


def test_without_forget_quality_settings_must_keep_the_neighbours_where_measured(no_retain_model):
    """Neighbour accuracy 1.0 for the target (threshold 0.9): npo lr 3e-5 keeps 0.8 and lr 1e-4 0.5: neither qualifies any more, so
    npo's selected setting is lr 1e-5 (0.95); ga_gd keeps 0.9 and stays."""
    neighbours = {("none", None): 1.0, ("npo", 1e-5): 0.95, ("npo", 3e-5): 0.8, ("npo", 1e-4): 0.5, ("ga_gd", 3e-5): 0.9}
    rows = no_retain_model.assign(retain_keyword_acc=[neighbours[(m, None if pd.isna(lr) else lr)]
                                                      for m, lr in zip(no_retain_model["method"], no_retain_model["hp.lr"])])
    table = select_settings(settings_table(rows))
    assert table["kept"].eq("retain_keyword_acc").all()
    assert _chosen(table) == {("m", "npo"): "lr 1e-5", ("m", "ga_gd"): "defaults"}
    assert "neighbour accuracy ≥ 0.9x" in leaderboard_section(rows)


def test_a_forget_quality_anywhere_keeps_the_forget_quality_ranking(no_retain_model):
    rows = no_retain_model.copy()
    rows.loc[rows["method"] == "npo", "forget_quality"] = 0.5
    assert selection_basis(settings_table(rows)) == "test"


def test_leaderboard_without_forget_quality_shows_what_it_ranked_on_and_hides_unmeasured_columns(no_retain_model):
    from metrics import metric_outputs

    from bench.report.columns import with_outputs

    text = leaderboard_section(with_outputs(no_retain_model.assign(privleak=np.nan), metric_outputs()))
    header = next(line for line in text.splitlines() if line.startswith("| rank"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert "forget quality" not in cells and "log10 FQ" not in cells and "privacy leakage" not in cells
    assert "membership" not in cells
    assert cells.index("forget accuracy") + 1 == cells.index("forget prob")
    assert "model utility" in cells


def test_report_without_forget_quality_says_what_it_ranked_on(no_retain_model, tmp_path):
    rows = [{**r, "retain_keyword_acc": 1.0} for r in no_retain_model.to_dict("records")]
    _write(tmp_path / "rwku", rows)
    text = build_report(tmp_path / "rwku").path.read_text()
    legend = text.split("## Leaderboard")[0]
    assert "No forget quality here" in legend and "keeping neighbour accuracy ≥ 0.9" in legend
    assert "Not computed" in text.split("## Significance")[1].split("\n## ")[0]
    assert "neighbours ok" in text.split("## Every setting")[1]


def test_on_forget_accuracy_a_method_that_does_not_qualify_ranks_by_what_it_kept():
    """Neither qualifies (threshold 0.9): npo erased everything (forget and neighbours 0), grad_diff kept 0.85 of the
    neighbours and 0.7 of the forget set. Forget accuracy alone would put npo first; what was kept decides."""
    rows = [_row("none", 0, np.nan, np.nan, 0.6, forget_keyword_acc=1.0, forget_prob=0.8, retain_keyword_acc=1.0)]
    for seed in range(2):
        rows += [_row("npo", seed, np.nan, np.nan, 0.1, lr=1e-5, step=20, forget_keyword_acc=0.0, forget_prob=0.01,
                      retain_keyword_acc=0.0),
                 _row("grad_diff", seed, np.nan, np.nan, 0.5, lr=1e-5, step=20, forget_keyword_acc=0.7,
                      forget_prob=0.6, retain_keyword_acc=0.85)]
    table = select_settings(settings_table(pd.DataFrame(rows)))
    ranks = table[table["selected"]].set_index("method")["rank"]
    assert not table["qualifies"].any() and ranks["grad_diff"] == 1 and ranks["npo"] == 2


def test_multiple_choice_selection_ranks_on_forget_items_and_keeps_general_accuracy():
    """WMDP's shape (no forget quality, no utility): target general accuracy 0.9 (threshold 0.81). rmu lr 1e-3 gets
    forget accuracy to 0.3 keeping 0.85 (qualifies); lr 1e-2 to 0.25 but keeps 0.5 (excluded); npo 0.6 keeping 0.9."""
    rows = [_row("none", 0, np.nan, np.nan, np.nan, forget_mc_acc=0.95, general_mc_acc=0.9)]
    for seed in range(2):
        rows += [_row("rmu", seed, np.nan, np.nan, np.nan, lr=1e-3, step=20, forget_mc_acc=0.3, general_mc_acc=0.85),
                 _row("rmu", seed, np.nan, np.nan, np.nan, lr=1e-2, step=20, forget_mc_acc=0.25, general_mc_acc=0.5),
                 _row("npo", seed, np.nan, np.nan, np.nan, lr=1e-3, step=20, forget_mc_acc=0.6, general_mc_acc=0.9)]
    settings = settings_table(pd.DataFrame(rows))
    assert selection_basis(settings) == "forget accuracy"
    table = select_settings(settings)
    assert table["kept"].eq("general_mc_acc").all()
    assert _chosen(table) == {("m", "rmu"): "lr 1e-3", ("m", "npo"): "defaults"}
    ranks = table[table["selected"]].set_index("method")["rank"]
    assert ranks["rmu"] == 1 and ranks["npo"] == 2
    assert "general accuracy ≥ 0.9x" in leaderboard_section(pd.DataFrame(rows))


def test_text_corpus_selection_ranks_on_forget_knowmem_and_keeps_retain_knowmem():
    """MUSE's shape: forget KnowMem decides (no keyword, multiple-choice or probability columns), retain KnowMem is kept."""
    rows = [_row("none", 0, np.nan, np.nan, np.nan, forget_knowmem=1.0, retain_knowmem=1.0)]
    for seed in range(2):
        rows += [_row("npo", seed, np.nan, np.nan, np.nan, lr=1e-4, step=20, forget_knowmem=0.9, retain_knowmem=0.98),
                 _row("npo", seed, np.nan, np.nan, np.nan, lr=3e-4, step=20, forget_knowmem=0.6, retain_knowmem=0.95),
                 _row("npo", seed, np.nan, np.nan, np.nan, lr=1e-3, step=20, forget_knowmem=0.1, retain_knowmem=0.4)]
    table = select_settings(settings_table(pd.DataFrame(rows)))
    assert table["kept"].eq("retain_knowmem").all()
    assert _chosen(table) == {("m", "npo"): "lr 3e-4"}
