"""`bench perf` from start to end: prepare, measure, report."""

from __future__ import annotations

import importlib.metadata as md
import math
import os
import platform
import time
from pathlib import Path


from benchperf.report import (
    DEFAULT_SUITE,
    METHOD,
    Measurement,
    THREADS,
    TRAIN_STEPS,
    assemble,
    render,
    to_json,
)
from benchperf.measure import (
    ensure_prepared,
    measure_eval,
    measure_overhead,
    measure_scaling,
    measure_train_vs_bare,
    workload,
)

def machine_info() -> dict:
    """Where the figures were taken: cores, threads per trial, versions."""
    import torch

    out = {"cpus": os.cpu_count(), "torch_threads": THREADS,  # per trial, and in every in-process measurement
           "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
           "python": platform.python_version(), "cuda": torch.cuda.is_available()}
    for pkg in ("torch", "transformers", "accelerate", "ray", "unlearning-bench"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def run_perf(cache: Path, suite_path: str | Path = DEFAULT_SUITE, steps: int | None = None, repeats: int = 5,
             json_path: str | Path | None = None) -> dict:
    """Takes the four measurements, prints the table and returns the report (also written to `json_path`)."""
    import ray
    import torch

    from bench.core.atomic import atomic_file
    from bench.run.runner import _init_ray

    started = time.perf_counter()
    suite, specs = workload(suite_path, steps)
    u = specs[0].unlearn
    print(f"Workload: {specs[0].model} {METHOD}, {u.steps} steps of batch {u.batch_size}, "
          f"eval batch {suite.eval.batch_size}; cache {cache}", flush=True)
    t = time.perf_counter()
    _init_ray(None, suite.resources)  # the runner's own settings; timed apart from every trial
    ray_init_s = time.perf_counter() - t
    t = time.perf_counter()
    import ray.tune  # once per `bench run` in its driver, like ray.init: start-up, timed apart
    tune_import_s = time.perf_counter() - t
    measurements: dict[str, Measurement] = {}
    try:
        prepared, prepare_s = ensure_prepared(suite, cache)
        print("Measuring overhead: one trial through the runner, then in this process", flush=True)
        measurements["overhead"] = measure_overhead(suite, specs[0], prepared, cache, ray_init_s + tune_import_s)
        print("Measuring scaling: 2 trials at concurrency 1, then 2", flush=True)
        measurements["scaling"] = measure_scaling(suite, specs, prepared, cache)
    finally:
        ray.shutdown()
    overhead, scaling = measurements["overhead"], measurements["scaling"]
    # The concurrency-1 run is this trial plus one more on the same worker, started by then: the time
    # from one row to the next is what a trial costs through the runner once its worker runs, to be
    # set against that trial's own unlearning and evaluation seconds (another seed: other work).
    written = scaling.details["rows_written_s_concurrency_1"]
    work_s = scaling.details["train_s_concurrency_1"][-1:] + scaling.details["eval_s_concurrency_1"][-1:]
    if not math.isnan(overhead.value) and len(written) == 2 and None not in work_s:
        next_s, own_s = written[1] - written[0], sum(work_s)
        d = overhead.details
        first_outside = d["harness_s"] - (d["harness_train_s"] or math.nan) - (d["harness_eval_s"] or math.nan)
        d.update(next_trial_s=next_s, next_trial_work_s=own_s, next_trial_ratio=next_s / own_s,
                 fresh_worker_s=first_outside - (next_s - own_s))
        overhead.figures += (f" A second trial on the already running worker (the concurrency-1 run of scaling): "
                             f"{next_s:.1f} s from one row to the next for {own_s:.1f} s of its own unlearning + "
                             f"evaluation ({next_s / own_s:.2f}x); the fresh worker cost the first trial about "
                             f"{d['fresh_worker_s']:.1f} s more than that.")
    torch.set_num_threads(THREADS)
    print(f"Measuring the train loop: {TRAIN_STEPS} steps, harness vs bare, {repeats} times each", flush=True)
    measurements["train_vs_bare"] = measure_train_vs_bare(specs[0], prepared, repeats)
    print("Measuring evaluation work on the target model", flush=True)
    # Evaluation seconds of the grad_diff trials that had a core to themselves.
    trial_eval_s = [overhead.details["in_process_eval_s"], overhead.details["harness_eval_s"],
                    *scaling.details["eval_s_concurrency_1"]]
    measurements["eval_passes_ratio"] = measure_eval(suite, prepared, [s for s in trial_eval_s
                                                                       if s is not None and not math.isnan(s)])
    wall_s = time.perf_counter() - started
    extra = {"workload": {"suite": str(suite_path), "model": specs[0].model, "method": METHOD, "steps": u.steps,
                          "batch_size": u.batch_size, "eval_batch_size": suite.eval.batch_size},
             "setup": {"ray_init_s": ray_init_s, "tune_import_s": tune_import_s, "cache": str(cache),
                       "cache_was_cold": prepare_s is not None, "prepare_s": prepare_s},
             "wall_s": wall_s}
    report = assemble(measurements, machine_info(), extra)
    print("\n" + render(report, {k: m.figures for k, m in measurements.items()}))
    print(f"\nRay start-up {ray_init_s + tune_import_s:.1f} s (ray.init {ray_init_s:.1f} s, importing Ray Tune "
          f"{tune_import_s:.1f} s); "
          + (f"preparing (cold cache) {prepare_s:.0f} s; " if prepare_s is not None else "prepare cache warm; ")
          + f"whole `bench perf` {wall_s:.0f} s on {os.cpu_count()} CPUs")
    if json_path:
        with atomic_file(Path(json_path)) as tmp:
            tmp.write_text(to_json(report))
        print(f"JSON: {json_path}")
    return report
