"""The one row builder: the identity, provenance, status and cost columns every results row has,
whoever computed it (a suite's trial, the Python API, `bench eval`, `bench perf`)."""

from __future__ import annotations

import json
import math
import resource
from datetime import datetime, timezone
from pathlib import Path

from bench.config.schema import TrialSpec, eval_key
from bench.core.environment import versions
from bench.models.prepare import Prepared


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


_STATUS, _CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def reset_peak_memory() -> None:
    """Starts a new peak-memory window: CUDA's allocator statistics, and on Linux the process's RSS
    high-water mark (trials share reused worker processes, so a lifetime maximum would carry over)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    try:
        _CLEAR_REFS.write_text("5")  # resets VmHWM (Linux >= 4.0)
    except OSError:
        pass


def peak_memory_mb() -> float:
    """Peak memory since `reset_peak_memory`: CUDA allocated on GPU, else the RSS high-water mark
    (the process's lifetime maximum where the kernel cannot reset it)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def outcome(train_stats: dict) -> dict:
    """The status columns after unlearning: `diverged` with the reason when training stopped early."""
    if train_stats.get("diverged_step"):
        return {"status": "diverged", "error": train_stats["divergence"], "diverged_step": train_stats["diverged_step"]}
    return {"status": "ok", "error": None, "diverged_step": None}


def result_columns(train_stats: dict, evaluation: dict) -> dict:
    """A row's training, evaluation and status columns; a diverged model's NaN metrics get the reason."""
    from metrics import metric_columns

    status = outcome(train_stats)
    if status["status"] == "diverged":
        evaluation = mark_non_finite(evaluation, metric_columns(), "not finite: the model diverged")
    training = {k: v for k, v in train_stats.items() if k not in ("diverged_step", "divergence")}
    return {**training, **evaluation, **status}


def mark_non_finite(evaluation: dict, columns: list[str], why: str) -> dict:
    """Records `why` as the reason of every NaN metric that has no reason yet (a diverged model's)."""
    unavailable = json.loads(evaluation.get("metrics_unavailable") or "{}")
    for col in columns:
        value = evaluation.get(col)
        if isinstance(value, float) and math.isnan(value) and col not in unavailable:
            unavailable[col] = why
    return {**evaluation, "metrics_unavailable": json.dumps(unavailable, sort_keys=True) if unavailable else None}


def provenance_notes(prepared: Prepared) -> dict:
    """What a row's numbers rest on besides the metrics: the retain model, answers the data lacked."""
    from bench.data.store import read_derived

    notes = {"retain_model": prepared.retain_source} if prepared.retain_source else {}
    derived = read_derived(Path(prepared.data_dir))
    if derived:
        fields = ("paraphrased_answer", "perturbed_answer", "alternate_answer")
        notes["derived_answers"] = "; ".join(
            f"{split}: " + ", ".join(f"{f} {d[f]}/{d['records']}" for f in fields if f in d) + " derived"
            for split, d in sorted(derived.items())) + " (README: Your own data: what is derived)"
    return notes


def forget_fraction(data) -> float | None:
    """The forget set's share of the authors as its data kind knows it (the generator's setting, TOFU's
    split name); None for data whose split sizes are the user's own."""
    from bench.data.kinds import data_kind

    return data_kind(data).forget_fraction(data)


def identity_columns(trial_id: str, model: str, method: str, seed: int | None, provenance: dict) -> dict:
    """The columns every row starts with, whoever computes it: its id, what was evaluated, with which
    metric versions, packages and sources, and when it started."""
    from metrics import METRICS

    return {"trial_id": trial_id, "model": model, "method": method, "seed": seed,
            "metric_versions": json.dumps({m.name: m.version for m in METRICS}, sort_keys=True),
            "versions": versions(), "started_at": utc_now(), "provenance": json.dumps(provenance, sort_keys=True)}


def row_header(spec: TrialSpec, prepared: Prepared) -> dict:
    """The identity and provenance columns of a trial's row (a suite's, the API's, `bench perf`'s)."""
    from methods import METHODS

    from bench.core.provenance import row_provenance

    provenance = row_provenance(spec.model, prepared.data_dir, prepared.target_dir, prepared.retain_dir)
    return {**identity_columns(spec.trial_id, spec.model, spec.method, spec.seed, provenance),
            "forget_fraction": forget_fraction(spec.data),
            **{f"hp.{k}": v for k, v in spec.hyperparameters().items()},
            "hp_changed": json.dumps(spec.changed_hyperparameters()),
            "method_version": METHODS.get(spec.method).version if spec.method in METHODS else 0}


def evaluation_header(model: str, label: str, data_dir, retain_model: str | None, eval_cfg, precision: str,
                      prompt: str = "auto") -> dict:
    """The identity, provenance and cost columns of `bench eval`'s row: a saved model evaluated as it
    is (nothing trained), its id a hash of what was evaluated on what (and how it was prompted, where
    that is not the default)."""
    from bench.core.environment import environment_json
    from bench.core.ids import settings_id
    from bench.core.provenance import row_provenance

    trial_id = settings_id([model, str(data_dir), retain_model, eval_key(eval_cfg)]
                           + ([prompt] if prompt != "auto" else []))
    return {"suite": "eval", **identity_columns(trial_id, model, label, None,
                                                row_provenance(model, data_dir, retain_dir=retain_model or "")),
            "environment": environment_json(precision=precision), "train_s": 0.0, "tokens": 0, "steps_done": 0}


def finished(row: dict) -> dict:
    return {**row, "peak_mem_mb": peak_memory_mb(), "finished_at": utc_now()}


