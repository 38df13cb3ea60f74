"""Results rows: one Parquet file per trial under `results/<suite>/`, written atomically.

A file holds the trial's rows: one per evaluation (checkpoints, sequential parts), ordered by `step`,
the last one `is_final`; it is written once, when the trial ends, so an interrupted trial leaves no
partial curve and a rerun writes it whole.

Every row of a suite shares one explicit schema (the union of the suite's hyperparameters, every
registered metric, cost and provenance columns), so `pandas.read_parquet("results/<suite>")` reads
the directory as one table. Files starting with "_" or "." (reports, temporaries) are not rows.

The schema also carries the metric families' output declarations (bench.core.outputs: headers, scale,
which tables show a column) as file metadata, and `read_rows` hands them to the report in the frame's
`attrs`: the report shows a new metric as its family declared it without importing the metric code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.core.atomic import atomic_file
from bench.core.outputs import OUTPUTS_KEY, Output, decode_outputs, encode_outputs
from bench.run.attacks import attack_columns
from bench.core.names import LM_EVAL_PREFIX
from bench.run.evaluation import VALIDATION_COLUMNS

ID_COLUMNS = {"suite": pa.string(), "run_id": pa.string(), "trial_id": pa.string(), "model": pa.string(),
              "method": pa.string(), "seed": pa.int64()}
# status: ok | diverged (stopped early, evaluated anyway; `diverged_step` says when) | failed (raised;
# `error` holds the exception)
STATUS = ("ok", "diverged", "failed")
STATUS_COLUMNS = {"status": pa.string(), "error": pa.string(), "diverged_step": pa.int64()}
COST_COLUMNS = {"train_s": pa.float64(), "eval_s": pa.float64(), "tokens": pa.int64(), "steps_done": pa.int64(),
                "final_loss": pa.float64(), "train_log": pa.string(), "peak_mem_mb": pa.float64(),
                "eval_forward_passes": pa.int64(), "eval_generated_prompts": pa.int64(), "eval_decode_steps": pa.int64()}
# Where in the run a row was evaluated: optimizer steps done (cumulative over sequential parts), whether it
# is the trial's last row, the sequential part (1..K of K; null when not sequential), the forget set's size.
PROTOCOL_COLUMNS = {"step": pa.int64(), "is_final": pa.bool_(), "sequential_part": pa.int64(),
                    "sequential_parts": pa.int64(), "forget_fraction": pa.float64()}
DETAIL_COLUMNS = {"metrics_unavailable": pa.string(), "metric_notes": pa.string(),  # JSON
                  "probe_generations": pa.string(),
                  "model_path": pa.string()}  # the kept final model (unlearn.save_model), else null
PROVENANCE_COLUMNS = {"hp_changed": pa.string(), "method_version": pa.int64(), "metric_versions": pa.string(),
                      "versions": pa.string(), "environment": pa.string(),  # JSON: bench.core.environment
                      "provenance": pa.string(),  # JSON: bench.core.provenance.row_provenance
                      "started_at": pa.string(), "finished_at": pa.string()}



class ReportError(ValueError):
    """Results that cannot be reported as asked; the message names the directory or column and what is allowed."""


def _arrow_type(values: list) -> pa.DataType:
    if any(isinstance(v, str) for v in values):
        return pa.string()
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    return pa.float64()


def row_schema(specs, metric_outputs: Mapping[str, Output] | Iterable[str]) -> pa.Schema:
    """The schema of every row of a suite whose trials are `specs`.

    Args:
        specs: the suite's trials (their hyperparameters and attacks give columns).
        metric_outputs: the metric columns, as column -> `Output` (metrics.metric_outputs), stored as the
            schema's metadata; or the column names alone (the rows then carry no declarations).
    """
    hp_values: dict[str, list] = {}
    for spec in specs:
        for k, v in spec.hyperparameters().items():
            hp_values.setdefault(f"hp.{k}", []).append(v)
    variants = {v["label"]: v for spec in specs for v in spec.attacks}
    attack = {c: pa.float64() for c in attack_columns(list(variants.values()))}
    if attack:
        attack["attack_s"] = pa.float64()
    fields = {**ID_COLUMNS, **{k: _arrow_type(v) for k, v in sorted(hp_values.items())}, **PROTOCOL_COLUMNS,
              **STATUS_COLUMNS, **{m: pa.float64() for m in [*metric_outputs, *VALIDATION_COLUMNS.values()]}, **attack,
              **COST_COLUMNS, **DETAIL_COLUMNS,
              **PROVENANCE_COLUMNS}
    metadata = {OUTPUTS_KEY: encode_outputs(metric_outputs)} if isinstance(metric_outputs, Mapping) else None
    return pa.schema(list(fields.items()), metadata=metadata)


def row_path(out_dir: Path, trial_id: str) -> Path:
    return out_dir / f"{trial_id}.parquet"


def row_files(out_dir: Path) -> list[Path]:
    """The row files of a results directory (temporaries, reports and set-aside files skipped)."""
    return sorted(p for p in Path(out_dir).glob("*.parquet") if not p.name.startswith((".", "_")))


def row_statuses(out_dir: Path) -> dict[str, str]:
    """trial id -> status of its final row (the last in its file). A file that is not a readable row
    (copied in half, or damaged on disk) is set aside as `.<name>.unreadable`, kept for inspection, so
    its trial runs again."""
    statuses = {}
    for path in row_files(out_dir):
        try:
            statuses[path.stem] = pq.read_table(path, columns=["status"]).column("status")[-1].as_py()
        except (OSError, pa.ArrowException, KeyError, IndexError) as err:
            aside = path.with_name(f".{path.name}.unreadable")
            path.rename(aside)
            print(f"warning: {path} is not a readable row ({type(err).__name__}); set aside as {aside.name}, "
                  "its trial will run again", flush=True)
    return statuses


def existing_ids(out_dir: Path) -> set[str]:
    """Trial ids that already have a row."""
    return set(row_statuses(out_dir))


def write_row(out_dir: Path, row: dict, schema: pa.Schema) -> Path:
    """Writes a one-row trial atomically; refuses columns the schema does not have."""
    return write_rows(out_dir, [row], schema)


def write_rows(out_dir: Path, rows: list[dict], schema: pa.Schema) -> Path:
    """Writes one trial's rows (all of the same trial id) as its file, atomically; refuses columns the
    schema does not have, but for lm-evaluation-harness scores (`lmeval_*`: their names come from the tasks'
    results, known only once they have run), added as numbers. Rows of one file without a column get null."""
    extra = sorted({k for row in rows for k in row} - set(schema.names))
    for column in (c for c in extra if c.startswith(LM_EVAL_PREFIX)):  # named by lm-eval's tasks, known only now
        schema = schema.append(pa.field(column, pa.float64()))
    extra = [c for c in extra if not c.startswith(LM_EVAL_PREFIX)]
    if extra:
        raise ValueError(f"row has columns outside the suite's schema: {extra}")
    ids = {row["trial_id"] for row in rows}
    if len(ids) != 1:
        raise ValueError(f"one file holds one trial's rows; got trial ids {sorted(ids)}")
    table = pa.Table.from_pylist(rows, schema=schema)
    path = row_path(out_dir, rows[0]["trial_id"])
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)
    return path


def read_rows(out_dir: Path) -> pd.DataFrame:
    """Every row of a results directory, one file at a time (robust to schemas changed between runs).

    The files' output declarations, merged (the first file to declare a column wins), are in
    `attrs[OUTPUTS_KEY]` as column -> `Output.to_json()`; absent when no file has any (results written
    before rows carried them).
    """
    files = row_files(out_dir)
    if not files:
        return pd.DataFrame()
    tables = [pq.read_table(p) for p in files]
    rows = pd.concat([t.to_pandas() for t in tables], ignore_index=True)
    declared: dict[str, Output] = {}
    for table in tables:
        text = (table.schema.metadata or {}).get(OUTPUTS_KEY.encode())
        for column, output in (decode_outputs(text) if text else {}).items():
            declared.setdefault(column, output)
    if declared:
        rows.attrs[OUTPUTS_KEY] = {column: output.to_json() for column, output in declared.items()}
    return rows
