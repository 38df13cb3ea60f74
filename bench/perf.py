"""`bench perf`: what the harness costs on top of the work it does, measured on this machine in one run.

The workload is the first model of a suite (default: the shipped `tofu_small`, so `tiny-llama`) and
its `grad_diff` trial at the suite's settings without attacks, prepared through the normal cache. Four ratios, each
printed with its target:

- **overhead** = seconds of one trial through `run_suite` (Ray already started, cache warm: the whole
  Tune phase, which includes starting the trial's worker process and its first imports) / seconds of
  the same TrialSpec run here by `start_trial` + `unlearn` + `evaluate_trial`. Ray start-up (`ray.init`
  and importing Ray Tune in the driver, both once per `bench run`) is timed apart. The details split
  the runner's seconds at the row's timestamps, say whether both gave identical metrics, and add
  what one more trial on the already running worker costs: the seconds between the two rows of the
  concurrency-1 run of the scaling measurement (row files' modification times), against that trial's
  own unlearning + evaluation seconds; and the floor under a first trial: the wall seconds of a new
  Python process that imports what a worker imports and loads the model (`fresh_process_seconds`).
- **scaling** = wall seconds of the same 2 trials (seeds 0 and 1, one CPU each) through `run_suite`
  at `max_concurrent` 1 / at 2; Ray is started before, so its start-up is in neither. Beside it, the
  machine's own ceiling at the time (`machine_ceiling`): other load on the cores bounds this ratio.
- **train_vs_bare** = tokens/s of `bench.training.loop.train` (as a trial calls it, divergence guard
  included) / tokens/s of a plain PyTorch loop (forward and loss, backward, clip, AdamW step,
  zero_grad) over the same target model, the same batches (the first TRAIN_STEPS the trial's stream
  draws), the same loss (`grad_diff`'s) and the same AdamW settings, one torch thread, both warmed up
  first; the median of `repeats` interleaved runs of each.
- **eval_passes_ratio** = what the full metric set runs through the target model / the minimum, per
  sequence: actual = sequences run through scoring forward passes (`EvalContext.scored_sequences`; a
  batch scored with a shared prompt runs the prompt once and its answers on its KV cache, which is one
  pass over each of those sequences, in two calls) + prompts decoded (`generated_prompts`); minimum =
  S + P, S the distinct (question, answer) sequences scored over every split, P the distinct prompts
  decoded (questions not answered by teacher forcing, text prefixes, probes): one forward pass over
  every evaluated sequence and one generation per decoded prompt. A sequence scored again (no cache,
  or the same one in two splits) or a prompt decoded twice raises it. A forward hook on the model
  checks that every scoring call went through those counters (a metric calling the model itself would
  be work they miss). The details add the same work in batched model calls (at most B sequences
  each, B = the suite's `eval.batch_size`; a shared-prompt batch is 2 calls) against ceil(S / B) +
  ceil(P / B), the positions the scoring passes ran (batch x length, padding included) against the
  tokens of the distinct sequences scored whole, and the evaluation seconds per trial.

Timings share the machine with whatever else runs on it: they are benchmarks, not tests.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata as md
import itertools
import json
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.config.suite import SuiteError, load_suite

DEFAULT_SUITE = Path(__file__).resolve().parent.parent / "suites" / "tofu_small.yaml"
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
    """The prepared model with its reference file, built through the normal prepare stage when the
    cache lacks them; returns (prepared, seconds spent preparing, or None when the cache was warm)."""
    from bench.models.prepare import find_prepared
    from bench.models.retain_stats import references_path
    from bench.run.runner import attach_references, prepare_all, prepared_key

    model = suite.models[0]
    found = find_prepared(model, suite.data, suite.prepare, cache)
    warm = found is not None and references_path(found, suite.eval, cache, suite.prepare.precision).exists()
    started = time.perf_counter()
    if not warm:
        print(f"Cache {cache} lacks {model}: preparing it now (about 5 minutes on 2 cores); "
              "this is reported apart and not part of any ratio", flush=True)
    prepared = attach_references(suite, prepare_all(suite, cache), cache)[prepared_key(model, suite.data)]
    return prepared, None if warm else time.perf_counter() - started


def _suite_run(suite, specs, cache: Path, max_concurrent: int) -> tuple[float, list[dict]]:
    """Runs exactly `specs` through `run_suite` into a fresh results directory; returns the wall
    seconds and their rows, in the order they were written, each with `written_s`: seconds from the
    start until the driver wrote it (the row file's modification time). The reference rows get
    placeholder rows first, as if an earlier run had written them, so only the measured trials run
    (a real suite computes them once too)."""
    from metrics import metric_columns

    from bench.run.results import read_rows, row_path, row_schema, write_row
    from bench.run.runner import run_suite

    suite = dataclasses.replace(suite, seeds=tuple(s.seed for s in specs))
    wanted = {s.trial_id for s in specs}
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as root:
        out_dir = Path(root) / suite.name
        schema = row_schema(suite.reference_trials() + suite.trials(), metric_columns())
        for ref in suite.reference_trials():
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

    from bench.run.trial import evaluate_trial, start_trial, unlearn

    harness_s, rows = _suite_run(suite, [spec], cache, max_concurrent=1)
    harness = rows[0] if rows else {}
    finished = harness.get("status") == "ok"  # a dead worker leaves no row; a failed trial did other work
    started = time.perf_counter()
    model, tokenizer, splits = start_trial(spec, prepared, THREADS)
    loaded = time.perf_counter()
    stats = unlearn(model, tokenizer, spec, splits)
    trained = time.perf_counter()
    local = {**stats, **evaluate_trial(model, tokenizer, spec, prepared, splits)}
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


def counting_context(*args, **kwargs):
    """An `EvalContext` that also records what a minimal evaluation would run: the distinct (question,
    answer) sequences scored, the distinct prompts decoded, and its own batched `generate()` calls;
    and, from a hook on the model, every call and the positions (batch x length, padding included) of
    the scoring calls, i.e. those outside generation."""
    from metrics.context import PERTURBED, EvalContext

    class CountingContext(EvalContext):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.sequences: dict[str, set] = {}  # split -> {(question, answer)}
            self.prompts: set[tuple[int, ...]] = set()
            self.generate_calls = 0
            self.positions = self.generation_positions = self.calls = self.generation_calls = 0
            self.model.register_forward_pre_hook(self._count_call, with_kwargs=True)

        def _count_call(self, _module, args, kwargs):
            ids = kwargs.get("input_ids", args[0] if args else None)
            self.positions += ids.numel() if ids is not None else 0
            self.calls += 1

        @property
        def scoring_positions(self) -> int:
            return self.positions - self.generation_positions

        @property
        def scoring_calls(self) -> int:
            """Model calls outside generation, whoever made them."""
            return self.calls - self.generation_calls

        def score(self, split, fields):
            super().score(split, fields)
            seen = self.sequences.setdefault(split, set())
            for r in self.records(split):
                for f in fields:
                    seen.update((r["question"], a) for a in (r[f] if f == PERTURBED else [r[f]]))

        def generate_from_ids(self, prompts, max_new_tokens):
            self.prompts.update(tuple(p) for p in prompts)
            self.generate_calls += math.ceil(len(prompts) / self.config.batch_size)  # its loop's batches
            positions, calls = self.positions, self.calls
            try:
                return super().generate_from_ids(prompts, max_new_tokens)
            finally:
                self.generation_positions += self.positions - positions
                self.generation_calls += self.calls - calls

    return CountingContext(*args, **kwargs)


def measure_eval(suite, prepared, trial_eval_s: list[float]) -> Measurement:
    """The full metric set on the target, counted against the minimum (see the module docstring)."""
    from metrics import evaluate

    from bench.data.store import evenly_spaced
    from bench.core.encoding import encode_many
    from bench.models.retain_stats import load_references
    from bench.run.trial import EVAL_SPLITS, RETAIN_EVAL, evaluate_trial, start_trial

    spec = next(s for s in suite.reference_trials() if s.method == "none")  # the target, as its reference row
    model, tokenizer, splits = start_trial(spec, prepared, THREADS)
    harness = evaluate_trial(model, tokenizer, spec, prepared, splits)
    cfg = spec.eval
    # The splits as `bench.run.trial.evaluate_model` hands them to the metrics.
    eval_splits = {s: splits[s] for s in EVAL_SPLITS if s in splits}
    if splits.get(RETAIN_EVAL):
        eval_splits["retain"] = splits[RETAIN_EVAL]
    if "retain" in eval_splits:
        eval_splits["retain"] = evenly_spaced(eval_splits["retain"], cfg.retain_questions)
    ctx = counting_context(model, tokenizer, eval_splits, cfg, reference=load_references(prepared.references))
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
