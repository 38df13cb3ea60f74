"""The runner: prepare every model, then run each pending trial as a Ray Tune trial.

Ray is imported here and nowhere else. Each trial asks for the suite's `resources`; Tune runs as
many at once as the cluster fits (reusing actors, so torch is imported once per worker). The driver
writes each finished trial's row atomically the moment Tune reports it, so an interrupted suite
(Ctrl-C, kill -9, a crashed worker, a reboot) loses nothing finished, and a rerun runs only the
trials without a row (and, with `retry_failed`, those whose row says `failed`). One run at a time
writes a results directory: a lock refuses a second, and lets the holder clear what interrupted
writes left behind. `_trials.json` lists every trial of the suite, for `bench status`.
"""

from __future__ import annotations

import json
import math
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path

from bench.core.atomic import atomic_file, exclusive_lock, remove_temporaries
from bench.models.prepare import Prepared, find_prepared, prepare_model, target_built
from bench.models.baseline_stats import compute_baseline_stats, baseline_stats_path
from bench.core.registry import PLUGINS_ENV
from bench.core.numerics import worker_env
from bench.run.results import row_schema, row_statuses, write_rows
from bench.run.status import PLAN_FILE
from bench.config.suite import BASELINE_METHODS, Suite, TrialSpec
from bench.run.trial import run_trial, spec_summary
from bench.training.parallel import sharding_for

LOCK_FILE = ".lock"

# Quiet workers: no per-trial loggers or chdir, no transformers/tokenizers chatter.
WORKER_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_CHDIR_TO_TRIAL_DIR": "0",
              "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false", "RAY_AIR_NEW_OUTPUT": "0",
              "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def _init_ray(address: str | None, resources) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.update(WORKER_ENV)
    env = {**WORKER_ENV, **worker_env(), **({PLUGINS_ENV: os.environ[PLUGINS_ENV]} if os.environ.get(PLUGINS_ENV) else {})}
    kwargs = dict(include_dashboard=False, logging_level="ERROR", log_to_driver=True, runtime_env={"env_vars": env})
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=os.cpu_count(), num_gpus=None if resources.gpu else 0, **kwargs)


def _prepare_remote(model, data, prepare, eval_cfg, cache, threads, target_only=False):
    return prepare_model(model, data, prepare, eval_cfg, Path(cache), threads, target_only=target_only)


def _baseline_stats_remote(prepared, eval_cfg, cache, threads, precision, prompt):
    return str(compute_baseline_stats(prepared, eval_cfg, Path(cache), threads, precision, prompt))


def prepared_key(model: str, data) -> tuple[str, str]:
    """What a prepared set of models is looked up by: the model and its dataset (a forget fraction each)."""
    from bench.data.store import data_key

    return model, data_key(data)


def attach_baseline_stats(suite: Suite, prepared: dict, cache: Path, address: str | None = None) -> dict:
    """Finds or computes the baseline statistics (the retain model's, the target's probe answers) of each prepared
    (model, dataset) of `prepare_all`."""
    paths = {k: baseline_stats_path(p, suite.eval, cache, suite.prepare.precision, suite.prepare.prompt_format())
             for k, p in prepared.items()}
    missing = [k for k, path in paths.items() if not path.exists()]
    if missing:
        import ray

        print(f"Computing the baselines' statistics for {_names(missing, suite)}", flush=True)
        _init_ray(address, suite.resources)
        task = ray.remote(num_cpus=suite.resources.cpu, num_gpus=suite.resources.gpu)(_baseline_stats_remote)
        refs = [task.remote(prepared[k], suite.eval, str(cache), max(1, int(suite.resources.cpu)), suite.prepare.precision,
                            suite.prepare.prompt_format()) for k in missing]
        ray.get(refs)
    return {k: replace(p, baseline_stats=str(paths[k])) for k, p in prepared.items()}


def _names(keys: list[tuple[str, str]], suite: Suite) -> str:
    """Prepared keys in words: the model, and the forget fraction where the suite sweeps it."""
    fractions = {prepared_key(m, d): d.forget_fraction for m in suite.models for d in suite.data_configs()}
    return ", ".join(f"{m} (forget {fractions[(m, k)]:g})" if suite.forget_fractions else m for m, k in keys)


def prepare_all(suite: Suite, cache: Path, address: str | None = None) -> dict:
    """Finds or builds every (model, dataset)'s artifacts, keyed by `prepared_key`; missing ones are
    built as parallel Ray tasks. The target does not depend on the forget fraction, so with several
    fractions each model's target is built first, then every fraction's retain model in parallel,
    rather than two tasks training one target."""
    from bench.data.store import prepare_data
    from bench.models.zoo import is_zoo
    from bench.models.prepare import prepare_tokenizer

    datasets = suite.data_configs()
    prepared = {prepared_key(m, d): find_prepared(m, d, suite.prepare, cache) for m in suite.models for d in datasets}
    missing = [k for k, p in prepared.items() if p is None]
    if not missing:
        return prepared
    import ray

    print(f"Preparing {_names(missing, suite)} (cache: {cache})", flush=True)
    by_key = {prepared_key(m, d): (m, d) for m in suite.models for d in datasets}
    for m, d in by_key.values():  # once, before the parallel tasks that read them
        data_dir = prepare_data(d, cache)
        if is_zoo(m) and prepared_key(m, d) in missing:
            prepare_tokenizer(data_dir, suite.prepare, cache)
    _init_ray(address, suite.resources)
    task = ray.remote(num_cpus=suite.resources.cpu, num_gpus=suite.resources.gpu)(_prepare_remote)
    threads = max(1, int(suite.resources.cpu))
    if len(datasets) > 1:  # first every model's shared target, then all retain models side by side
        shared = {by_key[k][0]: by_key[k] for k in missing if not target_built(*by_key[k][:2], suite.prepare, cache)}
        ray.get([task.remote(m, d, suite.prepare, suite.eval, str(cache), threads, True) for m, d in shared.values()])
    refs = {k: task.remote(*by_key[k], suite.prepare, suite.eval, str(cache), threads) for k in missing}
    prepared.update({k: ray.get(ref) for k, ref in refs.items()})
    return prepared


# Kept models (unlearn.save_model) beside the rows; the underscore keeps pandas/pyarrow from reading it as rows.
MODELS_DIR = "_models"


def _trainable(config: dict) -> None:
    from ray import tune

    trial = config["trial"]  # one point of the grid: {"spec", "prepared", "threads", "models_dir", "resources"}
    spec, prepared = TrialSpec.from_dict(trial["spec"]), Prepared(**trial["prepared"])
    workers = trial["resources"]["workers"]
    if (workers > 1 or spec.unlearn.sharding == "fsdp") and spec.method not in BASELINE_METHODS:
        rows = _run_workers(spec, prepared, trial, sharding_for(spec.unlearn.sharding, workers))
    else:
        rows = run_trial(spec, prepared, trial["threads"], trial["models_dir"])
    tune.report({"rows_json": json.dumps(rows, default=str)})


def trial_resources(resources):
    """What Tune reserves for one trial: a bundle per worker, all at once (the trial's process is rank 0,
    the others start in bundles 1..), so trials waiting for workers never hold some and starve each other."""
    from ray import tune

    bundle = {"CPU": resources.cpu, "GPU": resources.gpu}
    return tune.PlacementGroupFactory([bundle] * resources.workers)


def _run_workers(spec: TrialSpec, prepared: Prepared, trial: dict, sharding: str) -> list[dict]:
    """One trial over `resources.workers` processes: rank 0 here, in the Tune trial's process, the
    others as Ray tasks in the trial's placement group; they meet in a torch process group."""
    import ray
    from ray.util.placement_group import get_current_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from bench.training.parallel import Parallel, free_port, join_group, leave_group

    res = trial["resources"]
    address = f"{ray.util.get_node_ip_address()}:{free_port()}"
    group = get_current_placement_group()
    follower = ray.remote(_follow_trial)
    refs = [follower.options(num_cpus=res["cpu"], num_gpus=res["gpu"], scheduling_strategy=PlacementGroupSchedulingStrategy(
                group, placement_group_bundle_index=rank)).remote(trial, Parallel(rank, res["workers"], sharding), address)
            for rank in range(1, res["workers"])]
    parallel = Parallel(0, res["workers"], sharding)
    try:
        join_group(parallel, address)
        rows = run_trial(spec, prepared, trial["threads"], trial["models_dir"], parallel)
    finally:
        leave_group()
    problems = [p for p in ray.get(refs) if p]
    if problems and rows and rows[-1]["status"] != "failed":  # a worker failed but rank 0 finished: say so
        rows[-1] = {**rows[-1], "status": "failed", "error": "; ".join(problems)}
    return rows


def _follow_trial(trial: dict, parallel, address: str) -> str | None:
    """A worker other than rank 0: trains its share alongside; returns what went wrong, or None."""
    from bench.training.parallel import join_group, leave_group

    try:
        join_group(parallel, address)
        rows = run_trial(TrialSpec.from_dict(trial["spec"]), Prepared(**trial["prepared"]), trial["threads"],
                         trial["models_dir"], parallel)
    except Exception as err:  # the group could not be joined
        return f"worker {parallel.rank}: {type(err).__name__}: {err}"
    finally:
        leave_group()  # a peer blocked in a collective with this worker stops waiting
    failed = [r["error"] for r in rows if r.get("status") == "failed"]
    return f"worker {parallel.rank}: {failed[0]}" if failed else None


def _check_cluster_holds_a_trial(suite: Suite, cluster: dict) -> None:
    """Refuses a trial larger than the whole Ray cluster (Tune would wait for it forever)."""
    from bench.config.errors import SuiteError

    res = suite.resources
    for kind, each in (("CPU", res.cpu), ("GPU", res.gpu)):
        if each and each * res.workers > cluster.get(kind, 0):
            raise SuiteError(f"{suite.path}: resources: a trial asks for {res.workers} worker(s) x {each:g} {kind} "
                             f"= {each * res.workers:g} {kind}, and the Ray cluster has {cluster.get(kind, 0):g}; "
                             f"allowed: workers x {kind.lower()} within the cluster's {kind}s")


def _workers_note(suite: Suite) -> str:
    """How the trials' workers share the work, for the progress output; says when some have no micro-batch."""
    workers = suite.resources.workers
    if workers == 1:
        return ""
    shardings = sorted({sharding_for(s.unlearn.sharding, workers) for s in suite.trials()})
    note = f", each over {workers} workers ({', '.join(shardings)})"
    idle = sorted({s.unlearn.grad_accum_steps for s in suite.trials() if s.unlearn.grad_accum_steps < workers})
    if idle:
        note += (f"; with grad_accum_steps {', '.join(map(str, idle))} some workers have no micro-batch of a step "
                 f"to take (raise unlearn.grad_accum_steps to a multiple of {workers} to use them all)")
    return note


def _varying_hps(specs: list[TrialSpec]) -> set[str]:
    """Hyperparameters that take more than one value within the suite: the ones worth printing."""
    values: dict[str, set] = {}
    for s in specs:
        for k, v in s.hyperparameters().items():
            values.setdefault(k, set()).add(repr(v))
    return {k for k, v in values.items() if len(v) > 1}


class SuiteInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a suite; the message says what is kept and how to go on."""


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


# The headline numbers of a progress line, where the trial measured them (forget accuracy stands in for forget
# quality where there is no retain model; bench.report.selection ranks on it then).
PROGRESS_METRICS = (("forget_quality", "forget quality", "{:.2e}"), ("forget_keyword_acc", "forget accuracy", "{:.2f}"),
                    ("model_utility", "utility", "{:.3f}"))


def _measured(row: dict, key: str) -> bool:
    value = row.get(key)
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _headline(row: dict) -> tuple[str, str] | None:
    """(column, label) of the forget-side number a checkpoint is summed up by: forget quality, else forget accuracy."""
    return next(((key, label) for key, label, _ in PROGRESS_METRICS[:2] if _measured(row, key)), None)


def _describe(row: dict) -> str:
    """One trial's progress line: its headline metrics (those it measured) and its cost."""
    if row["status"] == "failed":
        return f"FAILED: {row['error'].splitlines()[0]}"
    shown = [f"{label} {fmt.format(row[key])}" for key, label, fmt in PROGRESS_METRICS if _measured(row, key)]
    cost = f"({row.get('train_s', 0.0):.1f} s + {row.get('eval_s', 0.0):.1f} s eval)"
    what = ", ".join(shown) + f" {cost}" if shown else cost
    return f"DIVERGED ({row['error']}): {what}" if row["status"] == "diverged" else what


def _row_writer(out_dir: Path, schema, suite_name: str, run_id: str, total: int, done_before: int, shown_hps: set):
    from ray.tune import Callback

    class RowWriter(Callback):
        """Writes each trial's row as soon as Tune reports it, and prints progress."""

        def __init__(self):
            self.done = done_before
            self.started = time.perf_counter()

        def _print(self, trial, what: str) -> None:
            spec = TrialSpec.from_dict(trial.config["trial"]["spec"])
            print(f"[{self.done}/{total}] {spec_summary(spec, shown_hps)}: {what}  "
                  f"[{time.perf_counter() - self.started:.0f} s]", flush=True)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            rows = [{**row, "suite": suite_name, "run_id": run_id} for row in json.loads(result["rows_json"])]
            write_rows(out_dir, rows, schema)
            self.done += 1
            headline = _headline(rows[-1])
            fmt = "{:.1e}" if headline and headline[0] == "forget_quality" else "{:.2f}"
            earlier = [f"{r['step']}: {fmt.format(r[headline[0]])}" for r in rows[:-1] if headline and _measured(r, headline[0])]
            self._print(trial, _describe(rows[-1]) + (f"; {headline[1]} at steps {', '.join(earlier)}" if earlier else ""))

        def on_trial_error(self, iteration, trials, trial, **info):
            # A trial's own exceptions are caught in the worker and reported as `failed` rows, so an
            # error here means the worker process itself died (killed, out of memory, a hard crash):
            # no row is written and a rerun runs the trial again.
            self._print(trial, f"CRASHED, no row written (the worker process died: {_crash_reason(trial.error_file)}); "
                               "a rerun runs it again")

    return RowWriter()


def _crash_reason(error_file: str | None) -> str:
    """The useful part of Ray's account of a dead worker ("Worker exit type: ... Worker exit detail: ...")."""
    try:
        text = Path(error_file).read_text() if error_file else ""
    except OSError:
        text = ""
    if "Worker exit type:" in text:
        text = text[text.index("Worker exit type:"):].split(" Some common causes")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no reason recorded"


def _write_plan(out_dir: Path, suite: Suite, specs: list[TrialSpec]) -> None:
    """Lists every trial of the suite, so `bench status` can tell pending trials from finished ones."""
    trials = [{"trial_id": s.trial_id, "model": s.model, "method": s.method, "seed": s.seed,
               "label": spec_summary(s)} for s in specs]
    with atomic_file(out_dir / PLAN_FILE) as tmp:
        tmp.write_text(json.dumps({"suite": suite.name, "path": suite.path, "trials": trials}, indent=1))


def _summary(specs: list[TrialSpec], out_dir: Path) -> tuple[str, dict[str, int]]:
    statuses = row_statuses(out_dir)
    counts: dict[str, int] = {}
    for s in specs:
        key = statuses.get(s.trial_id, "pending")
        counts[key] = counts.get(key, 0) + 1
    order = ("ok", "diverged", "failed", "pending")
    return ", ".join(f"{counts[k]} {k}" for k in order if counts.get(k)), counts


def run_suite(suite: Suite, results_root: Path, cache: Path, address: str | None = None,
              max_concurrent: int | None = None, retry_failed: bool = False) -> Path:
    """Runs every trial of `suite` that has no row yet (and, with `retry_failed`, every trial whose
    row has status `failed`); returns the results directory. Ctrl-C or SIGTERM stops it cleanly:
    trials in flight are cancelled and `SuiteInterrupted` says how to resume."""
    out_dir = (results_root / suite.name).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out_dir / LOCK_FILE, f"results directory {out_dir}"):
        for leftover in remove_temporaries(out_dir):
            print(f"Removed {leftover.name}, left by an interrupted write", flush=True)
        in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there
        previous = signal.signal(signal.SIGTERM, _raise_interrupt) if in_main_thread else None
        try:
            return _run_locked(suite, out_dir, cache, address, max_concurrent, retry_failed)
        except KeyboardInterrupt:
            specs = suite.baseline_trials() + suite.trials()
            summary, counts = _summary(specs, out_dir)
            raise SuiteInterrupted(f"Interrupted; trials in flight were cancelled, finished rows kept ({summary}). "
                                   f"Run the same command again to run the {counts.get('pending', 0)} pending.") from None
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)


def _run_locked(suite: Suite, out_dir: Path, cache: Path, address: str | None, max_concurrent: int | None,
                retry_failed: bool) -> Path:
    from metrics import metric_outputs, written_families

    specs = suite.baseline_trials() + suite.trials()
    schema = row_schema(specs, metric_outputs(written_families(suite.eval)))
    _write_plan(out_dir, suite, specs)
    statuses = row_statuses(out_dir)
    pending = [s for s in specs if s.trial_id not in statuses or (retry_failed and statuses[s.trial_id] == "failed")]
    retried = sum(s.trial_id in statuses for s in pending)
    print(f"Suite {suite.name}: {len(specs)} rows ({len(suite.trials())} trials + {len(specs) - len(suite.trials())} "
          f"baselines), {len(specs) - len(pending)} already in {out_dir}, {len(pending)} to run"
          + (f" ({retried} failed ones again)" if retried else ""), flush=True)
    if not pending:
        return out_dir
    started = time.perf_counter()
    prepared = attach_baseline_stats(suite, prepare_all(suite, cache, address), cache, address)
    print(f"Models ready after {time.perf_counter() - started:.0f} s", flush=True)

    _init_ray(address, suite.resources)
    import ray
    from ray import tune

    workers = suite.resources.workers
    _check_cluster_holds_a_trial(suite, ray.cluster_resources())
    slots = ray.cluster_resources().get("CPU", 1) / max(suite.resources.cpu * workers, 1e-3)
    if suite.resources.gpu:
        slots = min(slots, ray.cluster_resources().get("GPU", 0) / (suite.resources.gpu * workers))
    concurrency = max(1, int(min(slots, max_concurrent or slots, len(pending))))
    threads = max(1, int(suite.resources.cpu))
    configs = [{"spec": s.to_dict(), "prepared": asdict(prepared[prepared_key(s.model, s.data)]), "threads": threads,
                "models_dir": str(out_dir.resolve() / MODELS_DIR), "resources": asdict(suite.resources)} for s in pending]
    storage = tempfile.mkdtemp(prefix="bench-tune-")
    writer = _row_writer(out_dir, schema, suite.name, uuid.uuid4().hex[:12], len(specs), len(specs) - len(pending),
                         _varying_hps(specs))
    print(f"Running {len(pending)} trials, {concurrency} at a time" + _workers_note(suite), flush=True)
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # Ctrl-C raises here at once, instead of Tune's slow wind-down
    os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] = "0"  # a dead worker gets one line from RowWriter, not a traceback
    logging.getLogger("ray.tune.tune").setLevel(logging.CRITICAL)  # "Trials did not complete": the summary says it
    try:
        tuner = tune.Tuner(
            tune.with_resources(_trainable, trial_resources(suite.resources)),
            param_space={"trial": tune.grid_search(configs)},
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrency, reuse_actors=True),
            run_config=tune.RunConfig(name=suite.name, storage_path=storage, verbose=0, callbacks=[writer],
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
        tuner.fit()
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    summary, counts = _summary(specs, out_dir)
    print(f"Trials finished after {time.perf_counter() - started:.0f} s: {summary}", flush=True)
    if counts.get("failed"):
        print(f"{counts['failed']} failed (see their `error` column); `bench run ... --retry-failed` runs only those again.",
              flush=True)
    if counts.get("pending"):
        print(f"{counts['pending']} have no row (a worker died); run the same command again to run only those.",
              flush=True)
    return out_dir
