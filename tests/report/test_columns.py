"""Tests for the report's columns (bench.report.columns): rows without declarations keep the headers the
report always gave them, rows' declarations replace them, and the report modules never load torch."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from bench.core.outputs import Output
from bench.report.columns import ReportColumns, with_outputs
from bench.report.document import leaderboard_section
from bench.report.every_setting import render

# Every metric column the tables showed before declarations existed, plus the attack columns
# (bench.report.robustness derives the worst case from `attack.<variant>.<metric>`).
METRICS = {"forget_quality": 1e-3, "model_utility": 0.5, "forget_rouge": 0.25, "forget_greedy_exact_match": 0.125,
           "retain_greedy_exact_match": 0.75, "retain_rouge": 0.625, "forget_verbmem": 0.375, "mia_mink_pp_auc": 0.5,
           "privleak": -12.5, "attack.relearn.forget_quality": 1e-4, "attack.relearn.forget_prob": 0.5,
           "attack.relearn.recovery": 0.25}
# The headers as the hand lists gave them, in their order.
EVERY_SETTING_HEADERS = ["model", "method", "n", "forget quality", "model utility", "forget ROUGE", "forget EM",
                         "retain EM", "retain ROUGE", "forget VerbMem", "MIA AUROC (Min-K%++)", "privacy leakage",
                         "worst-case FQ", "worst-case forget prob", "recovery", "membership", "strongest attack"]
LEADERBOARD_HEADERS = ["rank", "method", "setting", "n", "forget quality", "log10 FQ", "worst-case FQ", "model utility",
                       "retain EM", "forget ROUGE", "MIA AUROC (Min-K%++)", "privacy leakage", "recovery",
                       "membership", "qualifies"]


def rows_without_declarations() -> pd.DataFrame:
    """Rows as results written before declarations read: a target, a retain model and one method, two seeds."""
    return pd.DataFrame([{"model": "m", "method": method, "seed": seed, "status": "ok", **METRICS}
                         for method in ("none", "retain", "npo") for seed in (0, 1)])


def headers(markdown: str, first: str) -> list[str]:
    """The cells of the first table line of `markdown` that starts with `| <first>`."""
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {first}"))
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_old_results_without_declarations_keep_their_headers():
    rows = rows_without_declarations()
    assert headers(render(rows), "model") == EVERY_SETTING_HEADERS
    assert headers(leaderboard_section(rows), "rank") == LEADERBOARD_HEADERS


def test_the_rows_declarations_replace_the_built_in_ones():
    """A declaration read from the rows wins over the built-in one: a new header, a new position, hidden."""
    rows = with_outputs(rows_without_declarations(), {
        "forget_rouge": Output(False, header="ROUGE-L (forget)", every_setting=1, leaderboard=1),
        "retain_rouge": Output(True)})  # declared, shown in no table
    every = headers(render(rows), "model")
    assert every[3] == "ROUGE-L (forget)" and "forget ROUGE" not in every and "retain ROUGE" not in every
    assert headers(leaderboard_section(rows), "rank")[4] == "ROUGE-L (forget)"


def test_columns_read_scale_format_and_axis_labels():
    columns = ReportColumns.of(with_outputs(pd.DataFrame(), {
        "forget_p": Output(True, header="forget p", axis="forget p-value (log scale)", scale="log", fmt="{:.1e}")}))
    assert columns.is_log("forget_p") and columns.is_log("forget_quality") and not columns.is_log("model_utility")
    assert columns.fmt("privleak") == "{:.1f}" and columns.fmt("undeclared") == "{:.3f}"
    assert columns.axis_label("forget_p") == "forget p-value (log scale)"
    assert columns.axis_label("retain_rouge") == "retain ROUGE"  # no axis label declared: the header
    assert columns.header("undeclared") == "undeclared"


def test_report_modules_never_import_torch():
    """The report reads declarations from the rows, not from the metric registry (which loads torch)."""
    code = ("import sys; import bench.report.document, bench.report.every_setting, bench.report.columns, "
            "bench.run.results; assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
