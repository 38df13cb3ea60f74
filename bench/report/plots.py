"""The report's figures: the forget-quality/utility scatter with its Pareto front, ablation heatmaps, and
curves of forget quality and utility against steps, forget-set size or sequential parts.

Matplotlib only, on the non-interactive Agg backend (reports are written on headless machines). Every
figure is titled, its axes name the quantity and its unit, and it reads in black and white: methods
differ by marker as well as by colour, and heatmap cells carry their value as text. Functions take
plain tables; choosing what to draw is bench/report.py's job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.atomic import atomic_file
from bench.report.columns import ReportColumns

# Axis labels with units of the columns that are no metric output (metrics declare theirs: ReportColumns):
# hyperparameters and the row protocol's step, forget fraction and part. Any other column: its own name.
AXIS_LABELS = {
    "hp.lr": "learning rate (lr)",
    "hp.forget_factor": "forget factor (signed weight of forget-token NLL)",
    "hp.retain_factor": "retain factor (weight of retain-token NLL)",
    "hp.steps": "unlearning steps (optimizer steps)",
    "hp.beta": "beta (inverse temperature)",
    "hp.alpha": "alpha (retain-loss weight)",
    "step": "checkpoint (optimizer steps done)",
    "forget_fraction": "forget set (share of authors)",
    "sequential_part": "sequential part (parts forgotten so far)",
}
# Distinct shapes so methods read apart without colour; baselines get shapes of their own.
METHOD_MARKERS = ("o", "s", "^", "v", "D", "P", "<", ">", "h", "p", "d", "8")
BASELINE_STYLE = {"none": ("X", "target (before)"), "retain": ("*", "retain (gold standard)")}
DPI = 120


def axis_label(column: str, columns: ReportColumns | None = None) -> str:
    """The axis label of a results column: quantity and unit where known.

    Args:
        column: the column.
        columns: the rows' declared columns (`ReportColumns.of(rows)`; default: the built-in declarations).
    """
    columns = ReportColumns.of(pd.DataFrame()) if columns is None else columns
    return columns.axis_label(column) if column in columns else AXIS_LABELS.get(column, column)


def _pyplot():
    """pyplot on the non-interactive Agg backend (no display on the machines that write reports), loaded
    on the first figure: the report's tables, printed first, need no matplotlib (about 0.4 s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def pareto_plot(points: pd.DataFrame, baselines: dict[str, tuple[float, float]], path: Path, title: str,
                threshold: float | None = None, threshold_label: str = "", xlabel: str | None = None,
                columns: ReportColumns | None = None) -> Path:
    """Scatter of every setting, forget quality (log x) against model utility, with the Pareto front as a step line.

    Args:
        points: one row per setting: `method`, `forget_quality` (> 0, already aggregated over seeds),
            `model_utility`, `front` (bool: on the Pareto front).
        baselines: method ("none", "retain") -> (forget quality, utility), drawn as labelled special markers.
        path: the PNG to write.
        title: the figure's title.
        threshold: a utility level drawn as a dotted horizontal line (the selection rule's), if given.
        threshold_label: its legend entry.
        xlabel: the x axis's label (default: forget quality's).
        columns: the rows' declared columns, for the axis labels (`axis_label`).

    Returns:
        path.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours = plt.get_cmap("tab10").colors
    for i, (method, part) in enumerate(points.groupby("method", sort=False)):
        ax.scatter(part["forget_quality"], part["model_utility"], marker=METHOD_MARKERS[i % len(METHOD_MARKERS)],
                   color=colours[i % len(colours)], edgecolors="black", linewidths=0.6, s=55, label=method, zorder=3)
    for method, (fq, utility) in baselines.items():
        # Named in the legend only: a text label centred under a marker at the right edge spread left over
        # the methods' points (the retain label read as NPO's).
        marker, label = BASELINE_STYLE.get(method, ("X", method))
        ax.scatter([fq], [utility], marker=marker, s=220, color="white", edgecolors="black", linewidths=1.5,
                   label=label, zorder=4)
    ax.set_xscale("log")
    ax.margins(x=0.08, y=0.08)
    if threshold is not None and np.isfinite(threshold):
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1.2, label=threshold_label or None)
        low, high = ax.get_ylim()
        if threshold < low:  # keep the line in view: a legend entry with no line would mislead
            ax.set_ylim(threshold - 0.05 * (high - threshold), high)
    front = points[points["front"]].sort_values(["forget_quality", "model_utility"], ascending=[True, False])
    if len(front):
        # The edge of the region the front dominates (maximising both axes): from the left edge at the
        # best utility, a step down at each front point, down to the bottom edge after the last one.
        (left, _), (bottom, _) = ax.get_xlim(), ax.get_ylim()
        x, y = front["forget_quality"].to_numpy(), front["model_utility"].to_numpy()
        xs = [left, *np.repeat(x, 2)]
        ys = [y[0], *np.column_stack([y, np.append(y[1:], bottom)]).ravel()]
        ax.plot(xs, ys, color="black", linestyle="--", linewidth=1.2, label="Pareto front", zorder=2)
        ax.scatter(x, y, s=170, facecolors="none", edgecolors="black", linewidths=1.2, zorder=2)
        ax.set_xlim(left, ax.get_xlim()[1])
        ax.set_ylim(bottom, ax.get_ylim()[1])
    ax.set_xlabel(xlabel or axis_label("forget_quality", columns))
    ax.set_ylabel(axis_label("model_utility", columns))
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return _save(fig, path)


def robustness_plot(points: pd.DataFrame, path: Path, title: str) -> Path:
    """Forget quality before (x) against after the strongest attack (y), both log, one point per setting
    (`method`, `fq_before`, `fq_worst`; `none` / `retain` drawn as the baseline markers), and the
    diagonal: a point on it lost nothing to the attack, one far below it only hid the forget set."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5.5))
    colours = plt.get_cmap("tab10").colors
    methods = points[~points["method"].isin(list(BASELINE_STYLE))]
    for i, (method, part) in enumerate(methods.groupby("method", sort=False)):
        ax.scatter(part["fq_before"], part["fq_worst"], marker=METHOD_MARKERS[i % len(METHOD_MARKERS)],
                   color=colours[i % len(colours)], edgecolors="black", linewidths=0.6, s=55, label=method, zorder=3)
    for _, ref in points[points["method"].isin(list(BASELINE_STYLE))].iterrows():
        marker, label = BASELINE_STYLE[ref["method"]]
        ax.scatter([ref["fq_before"]], [ref["fq_worst"]], marker=marker, s=220, color="white", edgecolors="black",
                   linewidths=1.5, label=label, zorder=4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    low = min(ax.get_xlim()[0], ax.get_ylim()[0])
    high = max(ax.get_xlim()[1], ax.get_ylim()[1])
    ax.plot([low, high], [low, high], color="grey", linestyle=":", linewidth=1.2, label="no change", zorder=1)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_xlabel("forget quality before any attack (KS p-value, log)")
    ax.set_ylabel("forget quality after the strongest attack (log)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    return _save(fig, path)


def heatmap(values: pd.DataFrame, text: pd.DataFrame, path: Path, title: str, xlabel: str, ylabel: str,
            colorbar_label: str) -> Path:
    """A grid of cells coloured by value and annotated with `text`; NaN cells are grey.

    Args:
        values: the colour of each cell (rows = y values, columns = x values), e.g. log10 forget quality.
        text: what each cell says, same shape.
        path: the PNG to write.
        title: the figure's title.
        xlabel: the label of the x axis (the columns of `values`).
        ylabel: the label of the y axis (its rows).
        colorbar_label: what the colour means, with its unit.

    Returns:
        path.
    """
    plt = _pyplot()
    data = np.ma.masked_invalid(values.to_numpy(dtype=float))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * values.shape[1], 1.4 + 0.8 * values.shape[0]))
    # viridis: luminance rises monotonically, so the order survives greyscale
    cmap = plt.get_cmap("viridis").with_extremes(bad="lightgrey")
    image = ax.imshow(data, cmap=cmap, aspect="auto")
    low, high = (float(data.min()), float(data.max())) if data.count() else (0.0, 1.0)
    for (i, j), label in np.ndenumerate(text.to_numpy(dtype=object)):
        shade = 0.5 if data.mask[i, j] or high == low else (data[i, j] - low) / (high - low)
        ax.text(j, i, label, ha="center", va="center", fontsize=9, color="white" if shade < 0.5 else "black")
    ax.set_xticks(range(values.shape[1]), [str(c) for c in values.columns])
    ax.set_yticks(range(values.shape[0]), [str(r) for r in values.index])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=colorbar_label)
    return _save(fig, path)


def _with_band(ax, x, mean, half, colour, log: bool, **style) -> None:
    """A mean line and, where the half-width is known, its band; log: values are log10, drawn as 10^v."""
    x, mean, half = (np.asarray(v, dtype=float) for v in (x, mean, half))
    to = (lambda v: 10.0 ** v) if log else (lambda v: v)
    ax.plot(x, to(mean), color=colour, **style)
    if np.isfinite(half).any():
        top = np.minimum(mean + half, 0.0) if log else mean + half  # a p-value is at most 1
        ax.fill_between(x, to(mean - half), to(top), where=np.isfinite(half), color=colour, alpha=0.15, linewidth=0)


def curve_plot(lines: pd.DataFrame, baselines: pd.DataFrame, path: Path, title: str, xlabel: str,
               val: bool = True, integer_x: bool = False, columns: ReportColumns | None = None) -> Path:
    """Two panels against one x: forget quality (log y) and model utility, one line per setting with its band.

    Args:
        lines: one row per (line, x): `line` (the legend label), `x`, `fq_log10` / `fq_log10_ci` (mean log10
            forget quality on the forget split and the band's half-width, log10 units), `model_utility` /
            `model_utility_ci`, and with `val` `fq_val_log10` (forget_val split; drawn dashed, no band).
        baselines: rows with `method` ("none", "retain"), `x`, `fq_log10`, `model_utility`: a NaN `x` is a
            horizontal line at the level, otherwise a line through its points (levels that change with x).
        path: the PNG to write.
        title: the figure's title (say what the bands are).
        xlabel: the x axis's label, with its unit.
        val: draw the forget_val line too.
        integer_x: integer ticks only (counts of parts).
        columns: the rows' declared columns, for the axis labels (`axis_label`).

    Returns:
        path.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    fig, (fq_ax, mu_ax) = plt.subplots(1, 2, figsize=(13, 5))
    colours = plt.get_cmap("tab10").colors
    for i, (label, part) in enumerate(lines.groupby("line", sort=False)):
        part = part.sort_values("x")
        colour, marker = colours[i % len(colours)], METHOD_MARKERS[i % len(METHOD_MARKERS)]
        _with_band(fq_ax, part["x"], part["fq_log10"], part["fq_log10_ci"], colour, True, marker=marker,
                   label=label)
        if val and "fq_val_log10" in part:
            fq_ax.plot(part["x"], 10.0 ** part["fq_val_log10"].astype(float), color=colour, linestyle="--",
                       marker=marker, markerfacecolor="none")
        _with_band(mu_ax, part["x"], part["model_utility"], part["model_utility_ci"], colour, False, marker=marker,
                   label=label)
    for method, ref in baselines.groupby("method", sort=False) if not baselines.empty else []:
        # Named in the legend only: a text label centred under a marker at the right edge spread left over
        # the methods' points (the retain label read as NPO's).
        marker, label = BASELINE_STYLE.get(method, ("X", method))
        style = {"color": "black", "linestyle": ":" if method == "none" else "-.", "linewidth": 1.2, "label": label}
        if ref["x"].isna().all():
            for ax, level in ((fq_ax, 10.0 ** ref["fq_log10"].mean()), (mu_ax, ref["model_utility"].mean())):
                if np.isfinite(level):
                    ax.axhline(level, **style)
        else:
            ref = ref.sort_values("x")
            fq_ax.plot(ref["x"], 10.0 ** ref["fq_log10"].astype(float), marker=marker, markersize=9, **style)
            mu_ax.plot(ref["x"], ref["model_utility"].astype(float), marker=marker, markersize=9, **style)
    fq_ax.set_yscale("log")
    fq_ax.set_ylabel(axis_label("forget_quality", columns))
    mu_ax.set_ylabel(axis_label("model_utility", columns))
    for ax in (fq_ax, mu_ax):
        ax.set_xlabel(xlabel)
        ax.grid(True, which="major", alpha=0.3)
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = mu_ax.get_legend_handles_labels()
    if val:
        handles += [Line2D([], [], color="grey", linestyle="-"), Line2D([], [], color="grey", linestyle="--")]
        labels += ["forget quality on forget (test)", "forget quality on forget_val"]
    fig.suptitle(title)
    if handles:
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.9), fontsize=9, frameon=False)
    fig.tight_layout()
    return _save(fig, path)
