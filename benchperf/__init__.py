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

from benchperf.report import DEFAULT_SUITE  # noqa: F401
from benchperf.run import run_perf  # noqa: F401
