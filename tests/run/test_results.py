"""Tests for Parquet result rows (bench.run.results) and atomic file writes (bench.core.atomic)."""

import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.core.atomic import atomic_file
from bench.core.outputs import OUTPUTS_KEY, Output, decode_outputs
from bench.report.columns import declared_outputs
from bench.run.results import existing_ids, read_rows, row_schema, row_statuses, write_row
from bench.config.suite import load_suite

METRICS = ["forget_quality", "model_utility"]

SUITE = """\
name: small
models: [tiny-llama]
unlearn: {steps: 3, batch_size: 2}
seeds: [0]
methods:
  - name: grad_ascent
    grid: {lr: [1e-4, 3e-4]}
  - name: ga_gd
    grid: {forget_factor: [-0.1, -0.5]}
"""


@pytest.fixture
def specs(tmp_path):
    """The small suite's baseline trials followed by its trials."""
    path = tmp_path / "small.yaml"
    path.write_text(SUITE)
    suite = load_suite(path)
    return suite.baseline_trials() + suite.trials()


@pytest.fixture
def schema(specs):
    return row_schema(specs, METRICS)


def make_row(spec, forget_quality: float, model_utility: float = 0.5) -> dict:
    """A results row for `spec` the way the runner shapes one (ids, hp.*, status, metrics)."""
    return {
        "suite": "small",
        "run_id": "run-1",
        "trial_id": spec.trial_id,
        "model": spec.model,
        "method": spec.method,
        "seed": spec.seed,
        **{f"hp.{k}": v for k, v in spec.hyperparameters().items()},
        "status": "ok",
        "forget_quality": forget_quality,
        "model_utility": model_utility,
        "steps_done": spec.unlearn.steps,
        "method_version": spec.method_version,
    }


@pytest.fixture
def three_rows(specs):
    """A baseline row (no hp.*), a grad_ascent row (no hp.forget_factor) and a ga_gd row (with it)."""
    ref = next(s for s in specs if s.method == "none")
    ga = next(s for s in specs if s.method == "grad_ascent")
    gagd = next(s for s in specs if s.method == "ga_gd")
    rows = [make_row(ref, 1e-9, 0.6), make_row(ga, 0.01, 0.4), make_row(gagd, 0.3, 0.55)]
    assert not any(k.startswith("hp.") for k in rows[0])
    assert "hp.forget_factor" not in rows[1] and "hp.lr" in rows[1]
    assert rows[2]["hp.forget_factor"] == -0.1
    return rows


def test_schema_columns_and_types(schema):
    names = schema.names
    assert len(names) == len(set(names))
    assert names[:6] == ["suite", "run_id", "trial_id", "model", "method", "seed"]
    assert schema.field("hp.lr").type == pa.float64()
    assert schema.field("hp.forget_factor").type == pa.float64()
    assert schema.field("hp.steps").type == pa.int64()
    assert schema.field("hp.retain_repeat").type == pa.int64()
    assert schema.field("hp.schedule").type == pa.string()
    for m in METRICS:
        assert schema.field(m).type == pa.float64()
    for col in ("status", "error", "train_s", "method_version", "versions"):
        assert col in names
    assert "hp.gamma" not in names  # grad_diff is not in this suite


def test_directory_reads_as_one_table(tmp_path, schema, three_rows):
    out = tmp_path / "results"
    out.mkdir()
    for row in three_rows:
        path = write_row(out, row, schema)
        assert path == out / f"{row['trial_id']}.parquet"
    (out / "_leaderboard.md").write_text("| not | a row |\n")
    (out / ".tmp-x.parquet").write_bytes(b"half-written garbage, not parquet")

    df = pd.read_parquet(out)
    assert len(df) == 3
    assert list(df.columns) == schema.names
    df = df.set_index("trial_id")
    by_id = {r["trial_id"]: r for r in three_rows}
    for trial_id, row in by_id.items():
        got = df.loc[trial_id]
        assert got["method"] == row["method"]
        assert got["forget_quality"] == pytest.approx(row["forget_quality"])
        hp_cols = [c for c in schema.names if c.startswith("hp.")]
        for col in hp_cols:
            if col in row:
                assert got[col] == row[col], col
            else:
                assert pd.isna(got[col]), col
        assert pd.isna(got["error"])  # absent columns are null


def test_existing_ids_skips_temporaries_and_reports(tmp_path, schema, three_rows):
    out = tmp_path / "results"
    out.mkdir()
    assert existing_ids(out) == set()
    for row in three_rows:
        write_row(out, row, schema)
    (out / "_leaderboard.md").write_text("report")
    (out / ".tmp-x.parquet").write_bytes(b"garbage")
    (out / "_summary.parquet").write_bytes(b"garbage")
    assert existing_ids(out) == {r["trial_id"] for r in three_rows}


def test_read_rows_equals_read_parquet(tmp_path, schema, three_rows):
    out = tmp_path / "results"
    out.mkdir()
    for row in three_rows:
        write_row(out, row, schema)
    (out / "_leaderboard.md").write_text("report")
    (out / ".tmp-x.parquet").write_bytes(b"garbage")

    rows = read_rows(out).sort_values("trial_id").reset_index(drop=True)
    table = pd.read_parquet(out).sort_values("trial_id").reset_index(drop=True)
    assert len(rows) == 3
    pd.testing.assert_frame_equal(rows, table)
    assert sorted(rows["trial_id"]) == sorted(r["trial_id"] for r in three_rows)
    ga = rows[rows["method"] == "grad_ascent"].iloc[0]
    assert ga["hp.lr"] == 1e-4 and math.isnan(ga["hp.forget_factor"])


def test_read_rows_of_empty_directory(tmp_path):
    (tmp_path / "_leaderboard.md").write_text("report")
    assert read_rows(tmp_path).empty


def test_write_row_refuses_column_outside_schema(tmp_path, schema, three_rows):
    out = tmp_path / "results"
    out.mkdir()
    (out / "_leaderboard.md").write_text("report")
    before = sorted(p.name for p in out.iterdir())
    row = {**three_rows[1], "hp.gamma": 2.0}
    with pytest.raises(ValueError, match="hp.gamma"):
        write_row(out, row, schema)
    assert sorted(p.name for p in out.iterdir()) == before
    assert existing_ids(out) == set()


def test_rewriting_a_trial_replaces_its_row(tmp_path, schema, three_rows):
    out = tmp_path / "results"
    row = three_rows[2]
    write_row(out, {**row, "status": "failed", "forget_quality": None, "error": "boom"}, schema)
    write_row(out, row, schema)
    assert sorted(p.name for p in out.iterdir()) == [f"{row['trial_id']}.parquet"]
    df = read_rows(out)
    assert len(df) == 1
    assert df.loc[0, "status"] == "ok"
    assert df.loc[0, "forget_quality"] == pytest.approx(0.3)
    assert pd.isna(df.loc[0, "error"])


# --------------------------------------------------------------------------------------- atomic_file


def test_atomic_file_replaces_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_file(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        tmp.write_text("new")
        assert target.read_text() == "old"  # not visible before the body finishes
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_file_keeps_previous_content_when_body_raises(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_file(target) as tmp:
            tmp.write_text("half-written")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_file_creates_nothing_when_body_raises(tmp_path):
    target = tmp_path / "sub" / "new.txt"
    with pytest.raises(KeyboardInterrupt):
        with atomic_file(target) as tmp:
            tmp.write_text("partial")
            raise KeyboardInterrupt
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_an_unreadable_row_is_set_aside_and_its_trial_reruns(tmp_path, schema, three_rows, capsys):
    out = tmp_path / "results"
    for row in three_rows:
        write_row(out, row, schema)
    victim = out / f"{three_rows[0]['trial_id']}.parquet"
    victim.write_bytes(victim.read_bytes()[:100])  # a copy cut short
    statuses = row_statuses(out)
    assert set(statuses) == {r["trial_id"] for r in three_rows[1:]}
    assert not victim.exists() and (out / f".{victim.name}.unreadable").exists()  # kept, out of the way
    assert "not a readable row" in capsys.readouterr().out


def test_lock_refuses_a_second_holder_and_temporaries_are_removed(tmp_path):
    from bench.core.atomic import LockedError, exclusive_lock, remove_temporaries

    (tmp_path / ".abc.parquet.tmp-123").write_bytes(b"half")
    (tmp_path / ".model.tmp-9").mkdir()
    (tmp_path / "kept.parquet").write_bytes(b"row")
    with exclusive_lock(tmp_path / ".lock", "results directory x"):
        # flock belongs to an open file: a second open, as another run would make, is refused.
        with pytest.raises(LockedError, match="results directory x is in use by another process"):
            with exclusive_lock(tmp_path / ".lock", "results directory x"):
                pass
        assert [p.name for p in remove_temporaries(tmp_path)] == [".abc.parquet.tmp-123", ".model.tmp-9"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "kept.parquet"]
    with exclusive_lock(tmp_path / ".lock", "results directory x"):  # released when the first let go
        pass


def test_output_declarations_round_trip_through_the_row_files(tmp_path, specs, three_rows):
    """Declarations given to the schema are stored in each file's metadata and come back in `attrs`, in order."""
    outputs = {"forget_quality": Output(True, header="FQ", axis="forget quality (p)", scale="log", leaderboard=1),
               "model_utility": Output(True, header="MU", fmt="{:.2f}", every_setting=2)}
    out = tmp_path / "results"
    for row in three_rows:
        path = write_row(out, row, row_schema(specs, outputs))
    assert decode_outputs(pq.read_schema(path).metadata[OUTPUTS_KEY.encode()]) == outputs
    rows = read_rows(out)
    assert list(declared_outputs(rows).items()) == list(outputs.items())


def test_rows_written_with_column_names_only_carry_no_declarations(tmp_path, schema, three_rows):
    out = tmp_path / "results"
    for row in three_rows:
        write_row(out, row, schema)
    assert OUTPUTS_KEY not in read_rows(out).attrs
