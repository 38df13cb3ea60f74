"""Metric output declarations (metrics.base.Output) reach the report through the result files: a new family's
column appears in the leaderboard under its header without editing report code, and the built-in families
declare what the report showed before rows carried declarations."""

import dataclasses

import pytest

from bench.config.suite import load_suite
from bench.report.columns import LEGACY_OUTPUTS
from bench.report.document import leaderboard_section
from bench.report.every_setting import render
from bench.run.results import read_rows, row_schema, write_row
from metrics import METRICS, Output, metric_columns, metric_outputs

SUITE = """\
name: small
models: [tiny-llama]
unlearn: {steps: 3, batch_size: 2}
seeds: [0]
methods:
  - name: grad_ascent
"""
FAMILY, COLUMN, HEADER = "toxicity_probe", "forget_toxicity", "forget toxicity (probe)"


@pytest.fixture
def new_family():
    """A metric family registered for the test only, its one output shown in both tables; removed after."""

    @METRICS.register(FAMILY, outputs={COLUMN: Output(False, header=HEADER, leaderboard=25, every_setting=25)},
                      version=1)
    def toxicity(ctx):
        """A stand-in family: never run here, only declared."""
        return {COLUMN: 0.0}

    yield
    del METRICS._entries[FAMILY]  # the registry has no public removal: plugins register for the process's life


def write_suite_rows(tmp_path, outputs) -> "pd.DataFrame":  # noqa: F821
    """The small suite's rows (target, retain, one grad_ascent trial), written through the result writer with
    the schema's metric columns `outputs`, then read back as the report reads them."""
    path = tmp_path / "small.yaml"
    path.write_text(SUITE)
    suite = load_suite(path)
    specs = suite.baseline_trials() + suite.trials()
    schema = row_schema(specs, outputs)
    out = tmp_path / "results"
    for spec, fq in zip(specs, (1e-9, 1.0, 1e-3)):
        write_row(out, {"suite": "small", "run_id": "r", "trial_id": spec.trial_id, "model": spec.model,
                        "method": spec.method, "seed": spec.seed,
                        **{f"hp.{k}": v for k, v in spec.hyperparameters().items()}, "status": "ok",
                        "forget_quality": fq, "model_utility": 0.5, COLUMN: 0.125}, schema)
    return read_rows(out)


def test_a_new_family_appears_in_the_leaderboard_under_its_header(new_family, tmp_path):
    rows = write_suite_rows(tmp_path, metric_outputs())
    header_line = next(line for line in leaderboard_section(rows).splitlines() if line.startswith("| rank"))
    headers = [cell.strip() for cell in header_line.strip("|").split("|")]
    # at its declared position: after model utility (20), before retain EM (30)
    assert headers[headers.index("model utility") + 1] == HEADER
    assert "0.125" in leaderboard_section(rows)
    assert HEADER in render(rows).splitlines()[0]


def test_without_declarations_the_new_column_is_not_shown(new_family, tmp_path):
    """The control for the test above: the same rows written with column names only (no metadata)."""
    rows = write_suite_rows(tmp_path, metric_columns())
    assert HEADER not in leaderboard_section(rows) and COLUMN not in leaderboard_section(rows)


def test_the_registry_declares_what_the_report_showed_before():
    """New rows show the same tables as old ones: every built-in declaration of LEGACY_OUTPUTS' columns agrees
    with it on everything a table reads (the axis labels are new)."""
    registered = metric_outputs()
    for column, legacy in LEGACY_OUTPUTS.items():
        assert dataclasses.replace(registered[column], axis="") == dataclasses.replace(legacy, axis=""), column
    shown = {c for c, o in registered.items() if o.leaderboard is not None or o.every_setting is not None}
    # The known-capitals columns are new, and never measured on the data the tables showed before (the tables
    # leave out a column no row has a value of); knowledge memorization is new in the every-setting table.
    assert shown - set(LEGACY_OUTPUTS) == {"forget_keyword_acc", "retain_keyword_acc", "general_text_ppl",
                                           "forget_knowmem", "retain_knowmem"}


def test_a_bare_direction_still_registers(new_family):
    """`outputs={column: bool}` (what families wrote before Output) declares the direction only, shown nowhere."""

    @METRICS.register("bare_direction", outputs={"forget_bare": True}, version=1)
    def bare(ctx):
        return {"forget_bare": 1.0}

    try:
        spec = METRICS.get("bare_direction")
        assert list(spec.outputs) == ["forget_bare"]
        assert spec.outputs["forget_bare"] == Output(higher_is_better=True)
        assert metric_columns(["bare_direction", FAMILY]) == ["forget_bare", COLUMN]
    finally:
        del METRICS._entries["bare_direction"]
