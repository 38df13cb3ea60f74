"""Ablation grids: one metric, averaged over seeds, for every (x, y) pair of two results columns.

`bench ablate results/<suite> --x hp.forget_factor --y hp.lr --metric forget_quality` prints the grid
as Markdown and draws it as a heatmap in `results/<suite>/_report/`. Forget quality is averaged as
log10 (clipped at FQ_FLOOR) and shown as 10^mean, like everywhere else in the report.

Trials that write a row per checkpoint are read at their final row unless `step` is an axis
(`--x step`: the checkpoints of one-shot trials and the final rows of sequential ones), so no cell
averages two checkpoints; `sequential_part` as an axis reads the rows after each part. With several
forget fractions, models are named per fraction (`tiny-llama (forget 5%)`) unless `forget_fraction`
is an axis.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench.report.aggregate import FQ_FLOOR, ReportError, candidate_rows, final_rows, format_hp, log10_fq, varying_hp_columns, with_protocol_columns
from bench.report.columns import ReportColumns
from bench.report.plots import axis_label, heatmap


@dataclass(frozen=True)
class AblationGrid:
    """A metric's mean over rows (seeds) per (x, y) cell.

    Attributes:
        metric: the metric column.
        x: the column whose values are the grid's columns.
        y: the column whose values are the grid's rows.
        means: rows = y values, columns = x values (sorted); log10 of the metric when `log10`; NaN = no rows.
        counts: rows with a value of the metric in each cell.
        log10: whether `means` holds log10 of the metric (a log-scale column: p-values over many decades).
        model: the --model filter, if any.
        method: the --method filter, if any.
        pooled: other hp columns that vary within the cells (averaged over, not separated).
        fmt: the metric's number format (linear metrics).
        metric_label: the metric's axis label, with its unit.
    """

    metric: str
    x: str
    y: str
    means: pd.DataFrame
    counts: pd.DataFrame
    log10: bool
    model: str | None = None
    method: str | None = None
    pooled: tuple[str, ...] = ()
    fmt: str = "{:.3f}"
    metric_label: str = ""

    def cell_text(self) -> pd.DataFrame:
        """Each cell as shown: the mean (10^mean for log10 metrics), "n=k" appended when n varies, "—" if empty."""
        fmt = "{:.2e}" if self.log10 else self.fmt
        filled = self.counts.to_numpy()[self.counts.to_numpy() > 0]
        varies = len(set(filled.tolist())) > 1

        def cell(mean, n):
            if n == 0 or np.isnan(mean):
                return "—"
            text = fmt.format(10 ** mean if self.log10 else mean)
            return f"{text} (n={n})" if varies else text

        return pd.DataFrame([[cell(m, n) for m, n in zip(mrow, nrow)]
                             for mrow, nrow in zip(self.means.to_numpy(), self.counts.to_numpy())],
                            index=self.means.index, columns=self.means.columns)

    def title(self) -> str:
        scope = ", ".join(v for v in (self.model, self.method) if v)
        return f"{self.metric} over {self.x} x {self.y}" + (f" ({scope})" if scope else "")

    def markdown(self) -> str:
        """The grid as a Markdown table with a sentence saying what the cells are."""
        text = self.cell_text()
        table = tabulate(text.reset_index().rename(columns={"index": f"{self.y} \\ {self.x}"}), headers="keys",
                         tablefmt="github", showindex=False, disable_numparse=True)  # keep 1e-4 as written
        filled = self.counts.to_numpy()[self.counts.to_numpy() > 0]
        n = f"n = {filled.min()} per cell" if len(set(filled.tolist())) == 1 else "n per cell shown"
        how = (f"geometric mean over rows, 10^mean(log10 {self.metric}), p-values clipped at {FQ_FLOOR:.0e}"
               if self.log10 else f"mean of {self.metric} over rows")
        note = f"Cells: {how} ({n}); rows = `{self.y}`, columns = `{self.x}`; — = no rows."
        if self.pooled:
            note += f" Also varying and averaged over within cells: {', '.join(self.pooled)}."
        return f"{table}\n\n{note}\n"

    def filename(self) -> str:
        """`ablate_<metric>_<x>_<y>[_<model>][_<method>].png`, hp. prefixes dropped; filters keep files apart."""
        parts = [self.metric, self.x.removeprefix("hp."), self.y.removeprefix("hp."), self.model, self.method]
        return "ablate_" + "_".join(re.sub(r"[^A-Za-z0-9._=-]+", "-", p) for p in parts if p) + ".png"


def _column(df: pd.DataFrame, name: str, role: str, numeric: bool = False) -> str:
    """The column `name` (or `hp.<name>`), or an error naming the role and listing the allowed columns."""
    for candidate in (name, f"hp.{name}"):
        if candidate in df.columns and (not numeric or pd.api.types.is_numeric_dtype(df[candidate])):
            return candidate
    if numeric:
        allowed = [c for c in df.columns if not c.startswith("hp.") and c != "seed"
                   and pd.api.types.is_numeric_dtype(df[c])]
        problem = "is not a numeric column" if name in df.columns else "is not a column"
        listing = f"Available (numeric): {', '.join(allowed)}"
    else:
        varying = varying_hp_columns(df)
        allowed = varying + [c for c in df.columns if c not in varying]
        problem = "is not a column"
        listing = (f"Hyperparameters that vary: {', '.join(varying) or '(none)'}. "
                   f"Available: {', '.join(df.columns)}")
    # compare without the hp. prefix too, so "lrr" still finds hp.lr
    bare = {c.removeprefix("hp."): c for c in reversed(allowed)}
    close = list(dict.fromkeys(bare[c] for c in difflib.get_close_matches(name.removeprefix("hp."), list(bare), n=3)))
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ReportError(f"{role} {name!r} {problem} of the results.{hint} {listing}")


def _filter(df: pd.DataFrame, column: str, value: str | None) -> pd.DataFrame:
    if value is None:
        return df
    if value not in set(df[column]):
        raise ReportError(f"--{column} {value!r}: no ok rows; {column}s present: {', '.join(sorted(set(df[column])))}")
    return df[df[column] == value]


def _sorted_values(values: pd.Series) -> list:
    unique = values.drop_duplicates().tolist()
    try:
        return sorted(unique)
    except TypeError:  # mixed types (an object column): order by text
        return sorted(unique, key=str)


def ablation_grid(df: pd.DataFrame, x: str, y: str, metric: str, model: str | None = None,
                  method: str | None = None) -> AblationGrid:
    """The mean of `metric` over the ok rows of each (x, y) pair.

    Args:
        df: result rows (`bench.run.results.read_rows`).
        x: column whose values become the grid's columns (the `hp.` prefix may be left out).
        y: column whose values become the grid's rows.
        metric: a numeric column, averaged per cell (a log-scale one, like forget quality, as log10).
        model: keep only this model's rows.
        method: keep only this method's rows.

    Returns:
        The grid.

    Raises:
        ReportError: a column that does not exist (the message lists the available ones), a filter value no
            row has, no rows with both x and y, or rows of several models/methods left to mix in one cell.
    """
    columns = ReportColumns.of(df)
    x, y = _column(df, x, "--x"), _column(df, y, "--y")
    metric = _column(df, metric, "--metric", numeric=True)
    if x == y:
        raise ReportError(f"--x and --y are the same column ({x}); choose two different columns")
    df = _protocol_rows(df, (x, y))
    ok = _filter(_filter(df[df["status"] == "ok"], "model", model), "method", method)
    ok = ok[ok[x].notna() & ok[y].notna()]  # baseline rows have no hyperparameters
    if ok.empty:
        raise ReportError(f"no ok rows have both {x} and {y}" + (f" for {model or ''} {method or ''}".rstrip()
                                                                  if model or method else ""))
    for column in ("model", "method"):
        present = sorted(set(ok[column]))
        if column not in (x, y) and len(present) > 1:
            raise ReportError(f"rows of {len(present)} {column}s have {x} and {y} ({', '.join(present)}); "
                              f"one cell would mix them: choose one with --{column}")
    log10 = columns.is_log(metric)
    values = ok.assign(_v=log10_fq(ok[metric]) if log10 else ok[metric].astype(float))
    stats = values.groupby([y, x])["_v"].agg(["mean", "count"])
    ys, xs = _sorted_values(ok[y]), _sorted_values(ok[x])
    index = pd.MultiIndex.from_product([ys, xs], names=[y, x])
    stats = stats.reindex(index)
    means = stats["mean"].unstack(x).reindex(index=ys, columns=xs)
    counts = stats["count"].fillna(0).astype(int).unstack(x).reindex(index=ys, columns=xs)
    labels = {"index": [_label(v) for v in ys], "columns": [_label(v) for v in xs]}
    means.index, means.columns = labels["index"], labels["columns"]
    counts.index, counts.columns = labels["index"], labels["columns"]
    within = ok.groupby([y, x])  # only what varies inside one cell is averaged over
    pooled = tuple(c for c in ok.columns if c.startswith("hp.") and c not in (x, y)
                   and within[c].agg(lambda v: v.dropna().astype(str).nunique()).max() > 1)
    return AblationGrid(metric, x, y, means, counts, log10, model, method, pooled, columns.fmt(metric),
                        axis_label(metric, columns))


def _protocol_rows(df: pd.DataFrame, axes: tuple[str, str]) -> pd.DataFrame:
    """The rows a grid over `axes` may average: final rows, unless an axis is the checkpoint or the part.

    Where one-shot and sequential trials are both present and `sequential_parts` is no axis, only the one-shot
    ones are kept: a cell would otherwise average a trial that saw the forget set at once with one that saw
    it in parts (the report's sequential section shows those)."""
    rows = with_protocol_columns(df, label_fractions="forget_fraction" not in axes)
    if "sequential_part" in axes:
        return rows[rows["sequential_part"].notna()]
    rows = candidate_rows(rows) if "step" in axes else final_rows(rows)
    one_shot = rows["sequential_parts"].isna()
    if "sequential_parts" not in axes and one_shot.any() and not one_shot.all():
        rows = rows[one_shot]
    return rows


def _label(value) -> str:
    return format_hp(value) if isinstance(value, (int, float, np.integer, np.floating, bool)) else str(value)


def write_heatmap(grid: AblationGrid, out_dir: Path, suite: str = "") -> Path:
    """Draws the grid as an annotated heatmap `out_dir/<grid.filename()>`; returns its path."""
    label = grid.metric_label or axis_label(grid.metric)
    colour = f"log10 {label.replace(', log scale', '')}" if grid.log10 else label
    title = f"{suite}: {grid.title()}" if suite else grid.title()
    return heatmap(grid.means, grid.cell_text(), Path(out_dir) / grid.filename(), title=title,
                   xlabel=axis_label(grid.x), ylabel=axis_label(grid.y), colorbar_label=colour)
