"""`bench status`: how far a suite's results directory is, per model and method.

Reads the suite's trial list (`_trials.json`, written by `bench run`) and the status column of each
row; needs neither the suite file nor Ray, so it can watch a sweep running elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from tabulate import tabulate

from bench.run.results import STATUS, ReportError, row_files

PLAN_FILE = "_trials.json"
COUNTS = (*STATUS, "pending")


def _rows(out_dir: Path) -> pd.DataFrame:
    columns = ["trial_id", "model", "method", "seed", "status", "error"]
    # A trial's file holds a row per checkpoint; its status is its last row's.
    tables = [pq.read_table(p, columns=columns).to_pandas().tail(1) for p in row_files(out_dir)]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)


def status_table(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """(counts per model and method, the non-ok rows, whether the trial list was found).

    Without `_trials.json` (results written by another tool or an older version) pending trials are
    unknown and the counts cover the rows present only."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise ReportError(f"{out_dir}: no such results directory")
    rows = _rows(out_dir)
    plan_path = out_dir / PLAN_FILE
    has_plan = plan_path.exists()
    if has_plan:
        plan = pd.DataFrame(json.loads(plan_path.read_text())["trials"])
        done = rows.set_index("trial_id")["status"]
        plan["status"] = plan["trial_id"].map(done).fillna("pending")
        table = plan
    else:
        table = rows
    if table.empty:
        raise ReportError(f"{out_dir}: no rows and no trial list ({PLAN_FILE}); has `bench run` started here?")
    counts = (table.groupby(["model", "method", "status"]).size().unstack("status", fill_value=0)
              .reindex(columns=list(COUNTS), fill_value=0).reset_index())
    counts["total"] = counts[list(COUNTS)].sum(axis=1)
    problems = rows[rows["status"] != "ok"]
    return counts, problems, has_plan


def render_status(out_dir: Path, max_problems: int = 20) -> str:
    counts, problems, has_plan = status_table(out_dir)
    totals = counts[list(COUNTS) + ["total"]].sum()
    lines = [tabulate(counts, headers="keys", tablefmt="github", showindex=False), "",
             "Total: " + ", ".join(f"{int(totals[k])} {k}" for k in COUNTS) + f" of {int(totals['total'])}"]
    if not has_plan:
        lines.append(f"(no {PLAN_FILE}: pending trials unknown; `bench run` writes it)")
    if not problems.empty:
        lines += ["", "Not ok:"]
        for _, r in problems.head(max_problems).iterrows():
            error = (r["error"] or "").strip().splitlines()
            lines.append(f"  {r['status']:<8} {r['model']} {r['method']} seed={r['seed']} {r['trial_id']}: "
                         f"{error[0] if error else ''}")
        if len(problems) > max_problems:
            lines.append(f"  ... and {len(problems) - max_problems} more")
        if (problems["status"] == "failed").any():
            lines.append("`bench run SUITE --retry-failed` runs the failed ones again.")
    return "\n".join(lines)
