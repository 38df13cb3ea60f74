"""The metric registry.

A metric family reads from a shared `EvalContext` and returns named scalars. It declares each
output column (`Output`: direction, table header, axis label, scale, number format, and where the
report's tables show it), a version that is bumped whenever its numbers move, and
which answer fields of which splits it reads, so `evaluate` can score every field a split needs in
one sweep (each question's prompt runs once, whatever order the families run in).

A family that cannot be computed on this evaluation (no retain model to compare against, a split
the data does not have) raises `MetricUnavailable`: its columns are NaN and the reason is kept,
never a made-up 0.

The result writer stores the output declarations with the rows (`metric_outputs`), so the report shows
a new metric's columns, under its names, without importing this package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench.core.outputs import Output
from bench.core.registry import Registry

from .context import MissingSplit


class MetricUnavailable(Exception):
    """This evaluation lacks what the family needs; the message says what."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable
    outputs: dict[str, Output]  # output column -> its declaration
    version: int
    reads: dict[str, tuple[str, ...]] = field(default_factory=dict)  # split -> answer fields scored
    default: bool = True  # runs when a suite names no `metrics:`; False: only when named (a costly family)

    @property
    def description(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""


def per_split(ctx, splits, column: str, fn: Callable[[str], float]) -> dict[str, float]:
    """`{column.format(split=s): fn(s)}` over the splits; a split the context lacks gives NaN, with the reason."""
    out = {}
    for split in splits:
        col = column.format(split=split)
        if ctx.has(split):
            out[col] = fn(split)
        else:
            out[col] = float("nan")
            ctx.unavailable[col] = f"evaluation split {split!r} is missing or empty"
    return out


def _output(family: str, column: str, value) -> Output:
    """A declaration as registered: an `Output`, or a bare bool (the direction alone; tables do not show it)."""
    if isinstance(value, Output):
        return value
    if isinstance(value, bool):
        return Output(higher_is_better=value)
    raise TypeError(f"metric {family!r}: outputs[{column!r}] is {value!r}; expected an Output or a bool "
                    "(higher is better)")


def _make_spec(name, fn, *, outputs, version, reads=None, default=True) -> MetricSpec:
    return MetricSpec(name, fn, {column: _output(name, column, v) for column, v in outputs.items()}, version,
                      {s: tuple(f) for s, f in (reads or {}).items()}, default)


METRICS: Registry[MetricSpec] = Registry("metric", _make_spec)


def default_families() -> list[str]:
    """The families an evaluation runs when none are named: all but the opt-in ones."""
    return [spec.name for spec in METRICS if spec.default]


def written_families(eval_cfg) -> list[str]:
    """The families whose columns a suite's rows have: every default one (rows of suites that chose fewer keep
    one layout) and the opt-in ones the evaluation config names."""
    return list(dict.fromkeys([*default_families(), *eval_cfg.metrics, *eval_cfg.checkpoint_metrics]))


FIELD_ORDER = ("answer", "paraphrased_answer", "perturbed_answer")


def prefetch(ctx, families: list[str] | tuple[str, ...] | None = None) -> None:
    """Scores, split by split, every answer field the families read, in one sweep per split.

    Fields go in a fixed order, so a split scored for different families batches the same way and
    gives bit-identical numbers (the retain model's reference statistics rely on this).
    """
    wanted: dict[str, set[str]] = {}
    for spec in (METRICS.get(n) for n in (families or default_families())):
        for split, fields in spec.reads.items():
            wanted.setdefault(split, set()).update(fields)
    for split, fields in wanted.items():
        if ctx.has(split):
            present = set(ctx.records(split)[0])
            ctx.score(split, sorted(fields & present, key=lambda f: (FIELD_ORDER + (f,)).index(f)))


def evaluate(ctx, metrics: list[str] | tuple[str, ...] | None = None) -> dict[str, float]:
    """Runs metric families (`metrics`, default: every family not opt-in) on one context and merges their outputs.

    A family that raises `MetricUnavailable` (or reads a split the context lacks) contributes NaN
    columns; the reasons are in `ctx.unavailable` (column -> reason).
    """
    specs = [METRICS.get(name) for name in (metrics or default_families())]
    prefetch(ctx, metrics)
    row: dict[str, float] = {}
    for spec in specs:
        try:
            values = spec.fn(ctx)
        except (MetricUnavailable, MissingSplit) as err:
            ctx.unavailable.update({col: f"{spec.name}: {err}" for col in spec.outputs})
            row.update({col: float("nan") for col in spec.outputs})
            continue
        if set(values) != set(spec.outputs):
            raise RuntimeError(f"metric {spec.name!r} returned {sorted(values)}, declared {sorted(spec.outputs)}")
        row.update({k: float(v) for k, v in values.items()})
    return row


def metric_columns(families: list[str] | tuple[str, ...] | None = None) -> list[str]:
    """Every output column the families produce, in registry order."""
    return list(metric_outputs(families))


def metric_outputs(families: list[str] | tuple[str, ...] | None = None) -> dict[str, Output]:
    """Every output column the families produce -> its declaration, in registry order (what the result
    writer stores with the rows)."""
    return {col: output for name in (families or default_families()) for col, output in METRICS.get(name).outputs.items()}
