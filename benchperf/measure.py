"""`bench perf`'s measurements: harness overhead, scaling over workers, the train loop against a bare one, evaluation work."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.config.suite import SuiteError, load_suite

from benchperf.report import (
    METHOD,
    Measurement,
    THREADS,
    TRAIN_STEPS,
    WARMUP_STEPS,
    eval_work,
    same_metrics,
    seconds_between,
)
from benchperf.counting import CountingContext

def workload(suite_path: str | Path, steps: int | None):
    """The suite cut to its first model, the `grad_diff` entry and seeds 0 and 1 (steps: `steps`, else
    the suite's); its trials, seed 0 first."""
    suite = load_suite(str(suite_path))
    entries = tuple(m for m in suite.methods if m.name == METHOD)
    if not entries:
        raise SuiteError(f"{suite_path}: `bench perf` measures the {METHOD} trial, and this suite has no "
                         f"{METHOD} entry")
    # One evaluation at the last step, no attacks: the in-process side of `overhead` is unlearning +
    # evaluation, so both sides run exactly that (checkpoint rows would add evaluations to one side).
    unlearn = dataclasses.replace(suite.unlearn, eval_at=(), eval_every=0, **({"steps": steps} if steps else {}))
    suite = dataclasses.replace(suite, name="perf", models=suite.models[:1], methods=entries[:1], seeds=(0, 1),
                                unlearn=unlearn, attacks=())
    specs = sorted(suite.trials(), key=lambda s: s.seed)
    return suite, specs


def ensure_prepared(suite, cache: Path):
    """The prepared model with its baseline statistics, built through the normal prepare stage when the
    cache lacks them; returns (prepared, seconds spent preparing, or None when the cache was warm)."""
    from bench.models.prepare import find_prepared
    from bench.models.baseline_stats import baseline_stats_path
    from bench.run.runner import attach_baseline_stats, prepare_all, prepared_key

    model = suite.models[0]
    found = find_prepared(model, suite.data, suite.prepare, cache)
    warm = found is not None and baseline_stats_path(found, suite.eval, cache, suite.prepare.precision,
                                                           suite.prepare.prompt_format()).exists()
    started = time.perf_counter()
    if not warm:
        print(f"Cache {cache} lacks {model}: preparing it now (about 5 minutes on 2 cores); "
              "this is reported apart and not part of any ratio", flush=True)
    prepared = attach_baseline_stats(suite, prepare_all(suite, cache), cache)[prepared_key(model, suite.data)]
    return prepared, None if warm else time.perf_counter() - started


def _suite_run(suite, specs, cache: Path, max_concurrent: int) -> tuple[float, list[dict]]:
    """Runs exactly `specs` through `run_suite` into a fresh results directory; returns the wall
    seconds and their rows, in the order they were written, each with `written_s`: seconds from the
    start until the driver wrote it (the row file's modification time). The baseline rows get
    placeholder rows first, as if an earlier run had written them, so only the measured trials run
    (a real suite computes them once too)."""
    from metrics import metric_outputs

    from bench.run.results import read_rows, row_path, row_schema, write_row
    from bench.run.runner import run_suite

    suite = dataclasses.replace(suite, seeds=tuple(s.seed for s in specs))
    wanted = {s.trial_id for s in specs}
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as root:
        out_dir = Path(root) / suite.name
        schema = row_schema(suite.baseline_trials() + suite.trials(), metric_outputs())
        for ref in suite.baseline_trials():
            write_row(out_dir, {"trial_id": ref.trial_id, "model": ref.model, "method": ref.method, "seed": ref.seed,
                                "status": "ok"}, schema)
        started, started_wall = time.perf_counter(), time.time()
        run_suite(suite, Path(root), cache, max_concurrent=max_concurrent)
        seconds = time.perf_counter() - started
        rows = [{**r, "written_s": row_path(out_dir, r["trial_id"]).stat().st_mtime - started_wall}
                for r in read_rows(out_dir).to_dict("records") if r["trial_id"] in wanted]
    return seconds, sorted(rows, key=lambda r: r["written_s"])


# --- the measurements ---------------------------------------------------------------------------

def measure_overhead(suite, spec, prepared, cache: Path, ray_start_s: float) -> Measurement:
    """One trial through `run_suite` vs the same TrialSpec in this process (see the module docstring)."""
    from metrics import metric_columns

    from bench.run.evaluation import evaluate_trial
    from bench.run.trial import start_trial, unlearn

    harness_s, rows = _suite_run(suite, [spec], cache, max_concurrent=1)
    harness = rows[0] if rows else {}
    finished = harness.get("status") == "ok"  # a dead worker leaves no row; a failed trial did other work
    started = time.perf_counter()
    model, tokenizer, splits = start_trial(spec, prepared, THREADS)
    loaded = time.perf_counter()
    stats = unlearn(model, tokenizer, spec, splits)
    trained = time.perf_counter()
    local = {**stats, **evaluate_trial(model, tokenizer, spec, prepared, splits).columns}
    in_process_s = time.perf_counter() - started
    fresh_s = fresh_process_seconds(spec, prepared)
    floor = (in_process_s - (loaded - started) + fresh_s) / in_process_s
    differ = same_metrics(harness, local, metric_columns() + ["final_loss", "tokens", "steps_done"])
    in_trial_s = (seconds_between(harness["started_at"], harness["finished_at"])
                  if harness.get("finished_at") else float("nan"))
    written_s = harness.get("written_s", float("nan"))
    details = {"harness_s": harness_s, "harness_status": harness.get("status"), "row_written_s": written_s,
               "in_trial_s": in_trial_s, "in_process_s": in_process_s, "in_process_load_s": loaded - started,
               "in_process_train_s": trained - loaded, "in_process_eval_s": local["eval_s"],
               "harness_train_s": harness.get("train_s"), "harness_eval_s": harness.get("eval_s"),
               "ray_start_s": ray_start_s, "identical_metrics": not differ and bool(harness), "differing": differ,
               "fresh_process_s": fresh_s, "fresh_process_floor": floor}
    figures = (f"`bench run` trial {harness_s:.1f} s vs in-process {in_process_s:.1f} s (load {_s(loaded - started)}, "
               f"unlearn {_s(trained - loaded)}, eval {_s(local['eval_s'])} s). The runner's {harness_s:.1f} s: "
               f"{_s(written_s - in_trial_s, 0)} s of Tune starting the worker process (importing torch) before the "
               f"trial, {_s(in_trial_s, 0)} s in the trial by its row's timestamps (train "
               f"{_s(harness.get('train_s'))} s, eval {_s(harness.get('eval_s'))} s, the rest the fresh worker's first "
               f"imports), "
               f"{_s(harness_s - written_s)} s after its row was written (Tune winding down). "
               f"Ray start-up apart: {ray_start_s:.1f} s. A new Python process that imports what the worker imports "
               f"and loads the model takes {fresh_s:.1f} s, so a trial run in a process of its own can get no lower "
               f"than {floor:.2f}x here. Metrics identical: "
               + ("yes." if details["identical_metrics"] else f"NO ({', '.join(differ) or 'no harness row'})."))
    if not finished:
        figures = (f"NOT MEASURED: the trial through the runner ended {harness.get('status') or 'without a row'} "
                   f"(see its output above); in-process {in_process_s:.1f} s")
    return Measurement(harness_s / in_process_s if finished else float("nan"), details, figures)


FRESH_PROCESS = """
import json, sys
from ray import tune  # what every Tune worker imports to run a function trainable
from bench.models.prepare import Prepared
from bench.config.suite import TrialSpec
from bench.run.trial import start_trial
import metrics, methods  # every family and method, as the trial's evaluation does
from metrics.tofu import rouge_l_recall
rouge_l_recall("a", "a")  # the ROUGE scorer's own lazy imports
spec, prepared = json.loads(sys.argv[1])
start_trial(TrialSpec.from_dict(spec), Prepared(**prepared), 1)
"""


def fresh_process_seconds(spec, prepared) -> float:
    """Wall seconds of a new Python process that imports what a trial's worker imports (Ray Tune, torch,
    transformers, the methods and metrics) and loads the trial's model, then exits: what any runner
    that starts a new process for a trial pays before the trial's own work, the floor under a first
    trial's overhead."""
    import subprocess
    import sys

    argument = json.dumps([spec.to_dict(), dataclasses.asdict(prepared)], default=str)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", FRESH_PROCESS, argument], check=True)
    return time.perf_counter() - started


def machine_ceiling(seconds: float = 1.0) -> dict:
    """What two single-threaded workers gain on this machine right now, harness aside: the same fixed
    torch workload (512 x 512 matmuls, GIL released) run twice one after the other, then twice at once
    in two threads; ceiling = sequential seconds / concurrent seconds (2.0 on two idle cores)."""
    import concurrent.futures

    import torch

    torch.set_num_threads(1)
    a = torch.randn(512, 512)
    started = time.perf_counter()
    n = 0
    while time.perf_counter() - started < 0.2:  # calibrate the iteration count to about `seconds`
        a @ a
        n += 1
    n = max(1, int(n * seconds / 0.2))

    def work() -> None:
        for _ in range(n):
            a @ a

    t = time.perf_counter()
    work()
    work()
    sequential = time.perf_counter() - t
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        t = time.perf_counter()
        list(pool.map(lambda _: work(), range(2)))
        concurrent_s = time.perf_counter() - t
    return {"sequential_s": sequential, "concurrent_s": concurrent_s, "ceiling": sequential / concurrent_s}


def measure_scaling(suite, specs, prepared, cache: Path) -> Measurement:
    """The same 2 trials through `run_suite` at concurrency 1 and at 2 (Ray already started), and
    beside them what the machine itself allows at the time (`machine_ceiling`)."""
    ceiling = machine_ceiling()
    serial_s, serial_rows = _suite_run(suite, specs[:2], cache, max_concurrent=1)
    parallel_s, parallel_rows = _suite_run(suite, specs[:2], cache, max_concurrent=2)
    details = {"trials": 2, "concurrency_1_s": serial_s, "concurrency_2_s": parallel_s, "cpus": os.cpu_count(),
               "machine_ceiling": ceiling["ceiling"], "machine_ceiling_runs": ceiling,
               "train_s_concurrency_1": [r.get("train_s") for r in serial_rows],
               "train_s_concurrency_2": [r.get("train_s") for r in parallel_rows],
               "eval_s_concurrency_1": [r.get("eval_s") for r in serial_rows],
               "eval_s_concurrency_2": [r.get("eval_s") for r in parallel_rows],
               "rows_written_s_concurrency_1": [r["written_s"] for r in serial_rows]}
    # The trials' own work (unlearning + evaluation) one after the other vs side by side: how the
    # work scales once the workers run, apart from starting them.
    serial_work, parallel_work = ([(r.get("train_s") or math.nan) + (r.get("eval_s") or math.nan) for r in rows]
                                  for rows in (serial_rows, parallel_rows))
    details["work_scaling"] = sum(serial_work) / max(parallel_work) if serial_work and parallel_work else math.nan
    figures = (f"2 trials: {serial_s:.1f} s at concurrency 1, {parallel_s:.1f} s at concurrency 2 "
               f"(unlearning {_join(details['train_s_concurrency_1'])} s alone vs "
               f"{_join(details['train_s_concurrency_2'])} s side by side, evaluation "
               f"{_join(details['eval_s_concurrency_1'])} s vs {_join(details['eval_s_concurrency_2'])} s); "
               f"the trials' own work scales {details['work_scaling']:.2f}x (unlearning + evaluation summed alone / "
               f"the longer side by side), the rest is starting each run's workers; the machine's own ceiling just "
               f"before, two single-threaded torch loops at once vs one after the other: {ceiling['ceiling']:.2f}x")
    if not all(len(rows) == 2 and all(r.get("status") == "ok" for r in rows) for rows in (serial_rows, parallel_rows)):
        return Measurement(float("nan"), details, "NOT MEASURED: a trial through the runner did not finish "
                                                  f"(see its output above); {figures}")
    return Measurement(serial_s / parallel_s, details, figures)


def _s(value, digits: int = 1) -> str:
    """Seconds for people: "?" where a figure is missing."""
    return "?" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _join(values) -> str:
    return " + ".join(_s(v) for v in values)


def _trial_batches(spec, tokenizer, splits, n: int) -> list[dict]:
    """The first `n` batches the trial's unlearning loop draws, built as `bench.run.trial.unlearn` builds
    its stream (same encodings, same seeds)."""
    from methods import METHODS

    from bench.training.batches import aligned_stream, merge_streams
    from bench.core.encoding import encode_many

    method = METHODS.get(spec.method)
    needs = method.needs(method.make_args(spec.method_args))

    def encoded(records, answer_key):
        return encode_many(tokenizer, [(r["question"], r[answer_key]) for r in records], spec.prepare.max_length)

    pad, size = tokenizer.pad_token_id, spec.unlearn.batch_size
    forget = {"forget": encoded(splits["forget"], "answer")}
    if "alternate" in needs:
        forget["alternate"] = encoded(splits["forget"], "alternate_answer")
    streams = [aligned_stream(forget, size, pad, spec.seed * 1000)]
    if "retain" in needs:
        streams.append(aligned_stream({"retain": encoded(splits["retain"], "answer")}, size, pad, spec.seed * 1000 + 1))
    return list(itertools.islice(merge_streams(*streams), n))


def bare_loop(model, loss_fn, batches, params, lr: float, weight_decay: float, max_grad_norm: float) -> None:
    """The plain PyTorch loop the harness is compared with: forward and loss, backward, clip, step, zero_grad."""
    import torch

    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    model.train()
    for batch in batches:
        loss = loss_fn(model, batch)
        loss.backward()
        if max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()


def measure_train_vs_bare(spec, prepared, repeats: int) -> Measurement:
    """Tokens/s of the harness's training loop vs `bare_loop` (see the module docstring)."""
    import torch

    from methods import METHODS, MethodContext

    from bench.training.loop import (
        DivergenceGuard,
        OptimConfig,
        count_tokens,
        make_accelerator,
        train,
    )
    from bench.run.trial import start_trial

    model, tokenizer, splits = start_trial(spec, prepared, THREADS)
    method = METHODS.get(spec.method)
    args = method.make_args(spec.method_args)
    reference = copy.deepcopy(model).eval().requires_grad_(False) if "reference" in method.needs(args) else None
    ctx = MethodContext(args=args, reference=reference, seed=spec.seed)
    batches = _trial_batches(spec, tokenizer, splits, TRAIN_STEPS)
    tokens = sum(count_tokens(b) for b in batches)
    initial = copy.deepcopy(model.state_dict())
    u = spec.unlearn
    accelerator = make_accelerator(u.mixed_precision)
    guard = DivergenceGuard(max_loss=u.max_loss, keep_last_finite=u.keep_last_finite)

    def harness(steps: list[dict]) -> None:
        cfg = OptimConfig(steps=len(steps), lr=u.lr, schedule=u.schedule, warmup_steps=u.warmup_steps,
                          weight_decay=u.weight_decay, max_grad_norm=u.max_grad_norm)
        train(model, lambda m, b, _step: method.fn(m, b, ctx), iter(steps), cfg, accelerator,
              params=method.trainable_parameters(model, args), guard=guard)

    def bare(steps: list[dict]) -> None:
        bare_loop(model, lambda m, b: method.fn(m, b, ctx)[0], steps, method.trainable_parameters(model, args),
                  u.lr, u.weight_decay, u.max_grad_norm)

    def timed(loop, steps: list[dict]) -> float:
        model.load_state_dict(initial)  # every run starts from the target's weights
        started = time.perf_counter()
        loop(steps)
        return time.perf_counter() - started

    for loop in (harness, bare):  # first-call costs (allocator, AdamW state) out of the timed runs
        timed(loop, batches[:WARMUP_STEPS])
    rates: dict[str, list[float]] = {"harness": [], "bare": []}
    for r in range(repeats):
        order = [("harness", harness), ("bare", bare)]
        for name, loop in order if r % 2 == 0 else order[::-1]:  # alternate who goes first: drift hits both
            rates[name].append(tokens / timed(loop, batches))
    harness_rate, bare_rate = statistics.median(rates["harness"]), statistics.median(rates["bare"])
    details = {"steps": TRAIN_STEPS, "tokens_per_run": tokens, "repeats": repeats, "threads": torch.get_num_threads(),
               "harness_tokens_per_s": harness_rate, "bare_tokens_per_s": bare_rate,
               "harness_runs": rates["harness"], "bare_runs": rates["bare"],
               "keep_last_finite": u.keep_last_finite, "batch_size": u.batch_size}
    figures = (f"{TRAIN_STEPS} steps of {u.batch_size} forget + {u.batch_size} retain examples ({tokens} tokens), "
               f"median of {repeats}: harness {harness_rate:,.0f} tokens/s, bare {bare_rate:,.0f} tokens/s "
               f"(runs: harness {', '.join(f'{x:,.0f}' for x in rates['harness'])}; "
               f"bare {', '.join(f'{x:,.0f}' for x in rates['bare'])})")
    return Measurement(harness_rate / bare_rate, details, figures)


def measure_eval(suite, prepared, trial_eval_s: list[float]) -> Measurement:
    """The full metric set on the target, counted against the minimum (see the module docstring)."""
    from metrics import evaluate

    from bench.core.encoding import encode_many
    from bench.models.baseline_stats import load_baseline_stats
    from bench.run.evaluation import evaluate_trial, evaluation_splits
    from bench.run.trial import start_trial

    spec = next(s for s in suite.baseline_trials() if s.method == "none")  # the target, as its baseline row
    model, tokenizer, splits = start_trial(spec, prepared, THREADS)
    harness = evaluate_trial(model, tokenizer, spec, prepared, splits).columns
    cfg = spec.eval
    ctx = CountingContext(model, tokenizer, evaluation_splits(splits, cfg), cfg,
                          baselines=load_baseline_stats(prepared.baseline_stats))
    evaluate(ctx, cfg.metrics or None)
    if cfg.probes:
        ctx.generate(list(cfg.probes))
    counters = (ctx.forward_passes, ctx.generated_prompts, ctx.decode_steps)
    matches = counters == tuple(harness[f"eval_{c}"] for c in ("forward_passes", "generated_prompts", "decode_steps"))
    distinct = sorted(set().union(*ctx.sequences.values())) if ctx.sequences else []
    whole_tokens = sum(len(e.input_ids) for e in encode_many(tokenizer, distinct, cfg.max_length))
    work = eval_work(ctx.scored_sequences, ctx.generated_prompts, len(distinct), len(ctx.prompts),
                     ctx.forward_passes, ctx.generate_calls, cfg.batch_size)
    per_trial = statistics.mean(trial_eval_s) if trial_eval_s else float("nan")
    by_split = {s: len(v) for s, v in ctx.sequences.items()}
    per_split = sum(math.ceil(n / cfg.batch_size) for n in by_split.values())  # batches when splits do not mix
    uncounted = ctx.scoring_calls - ctx.forward_passes  # model calls no counter saw: work the ratio would miss
    details = {**work, "sequences_by_split": by_split, "minimum_forward_passes_per_split": per_split,
               "decode_steps": ctx.decode_steps, "uncounted_model_calls": uncounted,
               "scoring_positions": ctx.scoring_positions, "distinct_sequence_tokens": whole_tokens,
               "counters_match_harness": matches, "target_eval_s": harness["eval_s"],
               "eval_s_per_trial": per_trial, "trial_eval_s": trial_eval_s}
    figures = (f"target model: {ctx.scored_sequences} sequences scored + {ctx.generated_prompts} prompts decoded = "
               f"{work['actual']} vs {len(distinct)} distinct sequences + {len(ctx.prompts)} distinct prompts = "
               f"{work['minimum']}; in batched calls (B = {cfg.batch_size}) {work['forward_passes']} scoring calls "
               f"(2 per shared-prompt batch) + {work['generate_calls']} generate calls = {work['actual_calls']} vs "
               f"ceil(S / B) + ceil(P / B) = {work['minimum_forward_passes']} + {work['minimum_generate_calls']} = "
               f"{work['minimum_calls']} ({work['calls_ratio']:.2f}x; {per_split} passes with each split batched "
               f"apart); the scoring calls ran {ctx.scoring_positions:,} positions (padding included) where the "
               f"distinct sequences hold {whole_tokens:,} tokens ({ctx.scoring_positions / max(whole_tokens, 1):.2f}x); "
               f"{ctx.decode_steps} decode steps; every scoring call counted: {'yes' if not uncounted else 'NO'}; "
               f"counters {'match' if matches else 'DIFFER from'} the harness's evaluation; "
               f"eval {harness['eval_s']:.1f} s on the target, {per_trial:.1f} s per grad_diff trial")
    if uncounted:
        return Measurement(float("nan"), details, f"NOT MEASURED: {uncounted} model calls outside the evaluation "
                                                  f"context's counters; {figures}")
    return Measurement(work["ratio"], details, figures)


# --- the command --------------------------------------------------------------------------------
