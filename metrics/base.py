"""The metric registry.

A metric family reads from a shared `EvalContext` and returns named scalars. It declares each
output's direction (`higher_is_better`) and a version that is bumped whenever its numbers move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from bench.registry import Registry


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable
    outputs: dict[str, bool]  # output column -> higher is better
    version: int

    @property
    def description(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""


def _make_spec(name, fn, *, outputs, version) -> MetricSpec:
    return MetricSpec(name, fn, dict(outputs), version)


METRICS: Registry[MetricSpec] = Registry("metric", _make_spec)


def evaluate(ctx, families: list[str] | None = None) -> dict[str, float]:
    """Runs metric families (default: all) on one context and merges their outputs."""
    row: dict[str, float] = {}
    for name in families if families is not None else METRICS.names():
        spec = METRICS.get(name)
        values = spec.fn(ctx)
        if set(values) != set(spec.outputs):
            raise RuntimeError(f"metric {name!r} returned {sorted(values)}, declared {sorted(spec.outputs)}")
        row.update({k: float(v) for k, v in values.items()})
    return row


def metric_columns(families: list[str] | None = None) -> list[str]:
    """Every output column the families produce, in registry order."""
    return [col for name in (families or METRICS.names()) for col in METRICS.get(name).outputs]
