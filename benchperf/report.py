"""`bench perf`'s figures, targets, verdicts and report (pure functions: tested without timing)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path




DEFAULT_SUITE = Path(__file__).resolve().parents[1] / "suites" / "tofu_small.yaml"
METHOD = "grad_diff"
TRAIN_STEPS = 30  # optimizer steps of each train-loop run (the batches are drawn once, before timing)
WARMUP_STEPS = 3
THREADS = 1  # what a trial gets with `resources: {cpu: 1}`

# key -> (label, comparison, bound)
TARGETS = {
    "overhead": ("overhead: `bench run` trial / in-process trial", "<=", 1.15),
    "scaling": ("scaling: 2 trials, wall at concurrency 1 / 2", ">=", 1.6),
    "train_vs_bare": ("train loop: harness tokens/s / bare PyTorch", ">=", 0.85),
    "eval_passes_ratio": ("evaluation: sequences scored + prompts decoded / minimum", "<=", 1.5),
}


@dataclass
class Measurement:
    """One ratio, the figures it was computed from (JSON) and a line of them for people."""

    value: float
    details: dict = field(default_factory=dict)
    figures: str = ""


def meets(key: str, value: float) -> bool:
    """Whether `value` reaches the target of measurement `key` (NaN never does)."""
    _, op, bound = TARGETS[key]
    return value <= bound if op == "<=" else value >= bound


def target_text(key: str) -> str:
    _, op, bound = TARGETS[key]
    return f"{op} {bound:g}"


def entry(key: str, m: Measurement) -> dict:
    """A measurement as it appears in the JSON: value, target, verdict, raw figures."""
    return {"value": m.value, "target": target_text(key), "meets": meets(key, m.value), "details": m.details}


def assemble(measurements: dict[str, Measurement], machine: dict, extra: dict | None = None) -> dict:
    """The report: one entry per measurement (in TARGETS order), then the machine and `extra`."""
    return {**{k: entry(k, measurements[k]) for k in TARGETS if k in measurements}, "machine": machine, **(extra or {})}


def to_json(report: dict) -> str:
    """The report as strict JSON: a ratio that could not be measured (NaN) becomes null."""
    def clean(x):
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(report), indent=2, default=str)


def render(report: dict, figures: dict[str, str]) -> str:
    """The printed table (GitHub format) and, under it, each measurement's raw figures."""
    from tabulate import tabulate

    def verdict(e: dict) -> str:
        return "not measured" if math.isnan(e["value"]) else "meets" if e["meets"] else "falls short"

    rows = [[TARGETS[k][0], f"{report[k]['value']:.2f}", report[k]["target"], verdict(report[k])]
            for k in TARGETS if k in report]
    table = tabulate(rows, headers=["measurement", "value", "target", "verdict"], tablefmt="github")
    return table + "\n\n" + "\n".join(f"- {k}: {figures[k]}" for k in TARGETS if k in figures)


def minimum_calls(n_sequences: int, n_prompts: int, batch_size: int) -> int:
    """The fewest batched model calls that score `n_sequences` and decode `n_prompts`: one forward pass
    per full batch of sequences, one generation call per full batch of prompts."""
    return math.ceil(n_sequences / batch_size) + math.ceil(n_prompts / batch_size)


def eval_work(scored_sequences: int, generated_prompts: int, sequences: int, prompts: int,
              forward_passes: int, generate_calls: int, batch_size: int) -> dict:
    """Actual and minimal evaluation work: per sequence (the ratio) and in batched model calls."""
    actual, minimum = scored_sequences + generated_prompts, sequences + prompts
    calls, fewest_calls = forward_passes + generate_calls, minimum_calls(sequences, prompts, batch_size)
    return {"actual": actual, "minimum": minimum, "ratio": actual / minimum if minimum else float("nan"),
            "scored_sequences": scored_sequences, "sequences": sequences,
            "generated_prompts": generated_prompts, "prompts": prompts,
            "actual_calls": calls, "minimum_calls": fewest_calls,
            "calls_ratio": calls / fewest_calls if fewest_calls else float("nan"),
            "forward_passes": forward_passes, "minimum_forward_passes": math.ceil(sequences / batch_size),
            "generate_calls": generate_calls, "minimum_generate_calls": math.ceil(prompts / batch_size),
            "batch_size": batch_size}


def seconds_between(started_at: str, finished_at: str) -> float:
    """Seconds between two of a row's ISO timestamps (whole seconds: that is their resolution)."""
    return (datetime.fromisoformat(finished_at) - datetime.fromisoformat(started_at)).total_seconds()


def same_metrics(a: dict, b: dict, columns: list[str]) -> list[str]:
    """The columns whose values differ between two rows (NaN equals NaN; a column missing from both is equal)."""
    def same(x, y):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return x == y

    return [c for c in columns if not same(a.get(c), b.get(c))]


# --- the workload -------------------------------------------------------------------------------
