"""One trial: load the prepared target, unlearn with one method, evaluate, return the results rows.

Plain Python (no Ray): the runner hands this function to Ray Tune, and anything else (tests, the
API) can call it directly. Baseline trials evaluate the target (`none`) or the retain model
(`retain`) without unlearning. A trial writes one row per evaluation: at each checkpoint
(`unlearn.eval_at`, `eval_every`) and at its last step (`is_final`), or after each part of a
sequential trial; `step` says how far each had trained. Attacks run on the final model only.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import time
import traceback
from pathlib import Path
from typing import Callable

from bench.core.names import RETAIN_EVAL_SPLIT, VALIDATION_SPLIT
from bench.core.environment import environment_json
from bench.data.sources import with_plausible_answers
from bench.models.prepare import Prepared
from bench.config.suite import BASELINE_METHODS, TrialSpec
from bench.run.evaluation import EVAL_SPLITS, Evaluation, evaluate_trial
from bench.run.rows import finished, reset_peak_memory, result_columns, row_header
from bench.training.parallel import SINGLE, Parallel, full_state, shard



def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def unlearn(model, tokenizer, spec: TrialSpec, splits: dict, on_checkpoint: Callable | None = None,
            stream_seed: int | None = None, parallel: Parallel = SINGLE) -> dict:
    """Runs the spec's method on `model` in place; returns training cost figures.

    Args:
        on_checkpoint: called as (step, stats so far) after each step of `spec.unlearn.checkpoints()`,
            the model in eval mode; the time it takes is not training time, and it runs with the
            random state put back afterwards, so training goes on exactly as without it. Only rank 0
            evaluates; with fsdp every worker must pass one (they gather the weights together).
        stream_seed: seeds the order of forget batches (retain: + 1); default `spec.seed * 1000`
            (a sequential trial gives each part its own).
        parallel: this process's place among the trial's workers (`bench.training.parallel`); the
            batches, their order and every random draw are the same on every worker and at any count.
    """
    import torch

    from methods import METHODS, MethodContext

    from bench.training.batches import aligned_stream, merge_streams
    from bench.core.encoding import encode_many
    from bench.training.loop import DivergenceGuard, OptimConfig, make_accelerator, train

    method = METHODS.get(spec.method)
    args = method.make_args(spec.method_args)
    needs = method.needs(args)
    from bench.models.zoo import enable_gradient_checkpointing

    u = spec.unlearn
    accelerator = make_accelerator(u.mixed_precision)
    sharded = parallel.sharding == "fsdp"
    # fsdp trains a sharded copy and keeps the whole model on the CPU meanwhile: rank 0 evaluates it
    # (at checkpoints and at the end) with the gathered weights.
    model.to("cpu" if sharded else accelerator.device)
    trained = copy.deepcopy(model).to(accelerator.device) if sharded else model
    if u.gradient_checkpointing:
        enable_gradient_checkpointing(trained)
    reference = None
    if "reference" in needs:
        reference = copy.deepcopy(trained).eval().requires_grad_(False)
    if sharded:
        shard(trained)
        if reference is not None:
            shard(reference)

    def encoded(records, answer_key):
        return encode_many(tokenizer, [(r["question"], r[answer_key]) for r in records], spec.prepare.max_length)

    forget = unlearning_request(splits)
    forget_views = {"forget": encoded(forget, "answer")}
    if "alternate" in needs:
        forget_views["alternate"] = encoded(forget, "alternate_answer")
    if "plausible" in needs:
        forget_views["plausible"] = encoded(with_plausible_answers(forget), "plausible_answer")
    seed = spec.seed * 1000 if stream_seed is None else stream_seed
    streams = [aligned_stream(forget_views, u.batch_size, tokenizer.pad_token_id, seed)]
    if "retain" in needs:
        retain_views = {"retain": encoded(splits["retain"], "answer")}
        streams.append(aligned_stream(retain_views, u.batch_size, tokenizer.pad_token_id, seed + 1))
    batches = _TokenCounter(merge_streams(*streams))
    # A loss that reads statistics of the unlearning's first batch (RMU's adaptive coefficient) reads them
    # from the first micro-batch of the first step, whichever worker takes it.
    ctx = MethodContext(args=args, reference=reference, seed=spec.seed, first_batch=batches.peek(),
                        remember_reference=not sharded)

    def loss_fn(m, batch, step):
        ctx.step = step
        return method.fn(m, batch, ctx)

    cfg = OptimConfig(steps=u.steps, lr=u.lr, schedule=u.schedule, warmup_steps=u.warmup_steps,
                      weight_decay=u.weight_decay, max_grad_norm=u.max_grad_norm, grad_accum_steps=u.grad_accum_steps)
    guard = DivergenceGuard(max_loss=u.max_loss, keep_last_finite=u.keep_last_finite)
    checkpoints = set(u.checkpoints()) if on_checkpoint else set()
    environment = environment_json(precision=spec.prepare.precision, mixed_precision=u.mixed_precision,
                                   batch_size=u.batch_size, grad_accum_steps=u.grad_accum_steps,
                                   workers=parallel.world, sharding=parallel.sharding)  # every row, checkpoint rows included
    started, paused = time.perf_counter(), [0.0]

    def at_step(step, loss, parts):
        if step + 1 not in checkpoints:
            return
        pause = time.perf_counter()
        if sharded:
            _gather_into(model, trained, parallel, accelerator.device)
        if parallel.rank == 0:
            stats = {"train_s": pause - started - paused[0], "tokens": batches.tokens,
                     "steps_done": step + 1, "final_loss": loss, "train_log": json.dumps(parts, sort_keys=True),
                     "environment": environment}
            with _evaluation_mode(model):
                on_checkpoint(step + 1, stats)
        if sharded:
            model.to("cpu")
        parallel.barrier()  # the others wait here, not inside a collective of the next step
        paused[0] += time.perf_counter() - pause

    def observe(batch, step):
        ctx.step = step
        method.observe_fn(batch, ctx)

    result = train(trained, loss_fn, batches, cfg, accelerator, params=method.trainable_parameters(trained, args),
                   guard=guard, on_step=at_step, parallel=parallel, seed=spec.seed,
                   observe=observe if method.observe_fn and not sharded else None)
    result.seconds -= paused[0]
    if sharded:
        _gather_into(model, trained, parallel, accelerator.device)
    elif u.gradient_checkpointing:
        model.gradient_checkpointing_disable()
        model.config.use_cache = True  # generation in the evaluation needs the KV cache back
    del reference, trained
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {"train_s": result.seconds, "tokens": result.tokens, "steps_done": result.steps,
            "final_loss": result.losses[-1] if result.losses else float("nan"),
            "train_log": json.dumps(result.last_parts, sort_keys=True),
            "diverged_step": result.diverged_step, "divergence": result.divergence,
            "environment": environment}


def _gather_into(model, trained, parallel: Parallel, device) -> None:
    """Puts the sharded `trained` weights into the whole `model` on rank 0 (on `device`); every worker calls it."""
    state = full_state(trained, parallel)
    if state is not None:
        model.load_state_dict(state)
        model.to(device)


def unlearning_request(splits: dict) -> list[dict]:
    """What the method is asked to forget: the forget (test) authors and the validation authors. Both are
    forgotten, so the validation metrics measure the same request the test metrics do, on other authors:
    settings and checkpoints are chosen on them and the test split is only reported."""
    return splits["forget"] + (splits.get(VALIDATION_SPLIT) or [])


class _TokenCounter:
    """A batch iterator that counts the attention-mask tokens it has handed out (for checkpoint rows),
    and can show its next batch without handing it out."""

    def __init__(self, batches):
        self.batches, self.tokens, self.ahead = batches, 0, []

    def __iter__(self):
        return self

    def peek(self):
        if not self.ahead:
            self.ahead.append(next(self.batches))
        return self.ahead[0]

    def __next__(self):
        from bench.training.loop import count_tokens

        batch = self.ahead.pop() if self.ahead else next(self.batches)
        self.tokens += count_tokens(batch)
        return batch


@contextlib.contextmanager
def _evaluation_mode(model):
    """Evaluates mid-training without disturbing it: eval mode and the KV cache on for the duration,
    every random generator's state put back after (greedy evaluation draws nothing, but a metric
    that did would otherwise shift the batches and dropout of every later step)."""
    import numpy as np
    import torch

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
              torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    use_cache = getattr(model.config, "use_cache", None)
    model.eval()
    model.config.use_cache = True
    try:
        yield
    finally:
        model.config.use_cache = use_cache
        model.train()
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if states[3] is not None:
            torch.cuda.set_rng_state_all(states[3])


def load_trial_model(spec: TrialSpec, prepared: Prepared):
    """The model a trial starts from (the retain model for `retain` rows, else the target), in the
    suite's precision, on the GPU when there is one; and its tokenizer."""
    import torch

    from bench.models.zoo import load_model, load_tokenizer

    model_dir = prepared.retain_dir if spec.method == "retain" else prepared.target_dir
    model = load_model(model_dir, spec.prepare.precision)
    tokenizer = load_tokenizer(model_dir, spec.prepare.prompt_format())
    return model.to("cuda" if torch.cuda.is_available() else "cpu"), tokenizer


def start_trial(spec: TrialSpec, prepared: Prepared, threads: int = 1):
    """Threads, seeds, the peak-memory window, the splits and the starting model: everything before
    unlearning, in the order every trial (suite or API) does it, so the same seed gives the same numbers."""
    import torch

    from bench.data.store import read_splits

    torch.set_num_threads(max(1, int(threads)))
    _seed_everything(spec.seed)
    reset_peak_memory()
    splits = read_splits(Path(prepared.data_dir), list(EVAL_SPLITS) + [RETAIN_EVAL_SPLIT, VALIDATION_SPLIT])
    model, tokenizer = load_trial_model(spec, prepared)
    return model, tokenizer, splits


def _attacked(row: dict, model, tokenizer, spec: TrialSpec, splits: dict, baselines: dict,
              evaluation: Evaluation) -> dict:
    """The row with its attack columns (the attacks run on the model as it is now: the final one,
    evaluated in `evaluation`)."""
    from bench.run.attacks import run_attacks

    columns, unavailable = run_attacks(model, tokenizer, spec, splits, baselines, evaluation.context)
    row = {**row, **columns}
    if unavailable:
        reasons = {**json.loads(row.get("metrics_unavailable") or "{}"), **unavailable}
        row["metrics_unavailable"] = json.dumps(reasons, sort_keys=True)
    return row


def _one_run_rows(header: dict, model, tokenizer, spec: TrialSpec, prepared: Prepared, splits: dict,
                  baselines: dict, rows: list[dict], parallel: Parallel = SINGLE) -> None:
    """Unlearns once (no training for baseline rows), appending a row at each checkpoint and the last step
    (rank 0 evaluates; the other workers only train)."""
    def at_checkpoint(step: int, stats: dict) -> None:
        evaluation = evaluate_trial(model, tokenizer, spec, prepared, splits, baselines, checkpoint=True)
        rows.append(finished({**header, **result_columns(stats, evaluation.columns), "step": step, "is_final": False}))

    if spec.method not in BASELINE_METHODS:
        stats = unlearn(model, tokenizer, spec, splits, on_checkpoint=at_checkpoint, parallel=parallel)
    else:
        stats = {"train_s": 0.0, "tokens": 0, "steps_done": 0, "environment": environment_json(precision=spec.prepare.precision)}
    if parallel.rank:
        return
    evaluation = evaluate_trial(model, tokenizer, spec, prepared, splits, baselines)
    row = {**header, **result_columns(stats, evaluation.columns), "step": stats["steps_done"], "is_final": True}
    rows.append(finished(_attacked(row, model, tokenizer, spec, splits, baselines, evaluation) if spec.attacks else row))


def _sequential_rows(header: dict, model, tokenizer, spec: TrialSpec, prepared: Prepared, splits: dict,
                     baselines: dict, rows: list[dict], parallel: Parallel = SINGLE) -> None:
    """Unlearns the forget set's parts one after another (each a fresh run of the method from the model
    the previous part left, with its own batch order), appending a row after each part, evaluated on
    every part forgotten so far; a diverged part ends the trial there."""
    from bench.run.sequential import forgotten_so_far, split_parts

    parts = split_parts(splits["forget"], spec.sequential_parts)
    summed = ("train_s", "tokens", "steps_done")  # over the parts so far; the rest is the last part's
    total = dict.fromkeys(summed, 0)
    for k, part in enumerate(parts):
        # The parts split the forget (test) authors; the validation authors are not part of the requests.
        part_splits = {**splits, "forget": [splits["forget"][i] for i in part], VALIDATION_SPLIT: []}
        stats = unlearn(model, tokenizer, spec, part_splits, stream_seed=spec.seed * 1000 + 100 * (k + 1),
                        parallel=parallel)
        total = {**stats, **{key: total[key] + stats[key] for key in summed}}
        last = k == len(parts) - 1 or bool(stats.get("diverged_step"))
        if parallel.rank:  # the other workers go on to the next part while rank 0 evaluates
            if last:
                return
            continue
        so_far, part_baselines = forgotten_so_far(splits, baselines, parts, k)
        evaluation = evaluate_trial(model, tokenizer, spec, prepared, {**so_far, VALIDATION_SPLIT: []}, part_baselines)
        row = {**header, **result_columns(total, evaluation.columns), "step": total["steps_done"], "is_final": last,
               "sequential_part": k + 1, "sequential_parts": len(parts)}
        if last and spec.attacks:
            row = _attacked(row, model, tokenizer, spec, splits, baselines, evaluation)
        rows.append(finished(row))
        if last:
            return


def keep_model(model, tokenizer, models_dir: str | Path, trial_id: str) -> str:
    """Saves the trial's final model and tokenizer as `<models_dir>/<trial_id>/` (written whole or not at
    all); returns the directory."""
    from bench.core.atomic import atomic_dir

    where = Path(models_dir) / trial_id
    where.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(where) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return str(where)


def run_trial(spec: TrialSpec, prepared: Prepared, threads: int = 1, models_dir: str | None = None,
              parallel: Parallel = SINGLE) -> list[dict]:
    """Unlearns and evaluates; returns the trial's rows: one per checkpoint (or per sequential part), the
    last with `is_final`. Status `diverged` when training stopped early (the model is evaluated as the
    guard left it), `failed` with the error when anything raised (rows finished before are kept).
    With `spec.unlearn.save_model`, the final model is kept under `models_dir` (the last row's `model_path`).
    Every worker of a trial calls it with its `parallel`; rank 0 evaluates and returns the rows, the
    others train alongside and return none (or one `failed` row saying what went wrong with them)."""
    from bench.models.baseline_stats import load_baseline_stats

    header = row_header(spec, prepared)
    rows: list[dict] = []
    try:
        model, tokenizer, splits = start_trial(spec, prepared, threads)
        baselines = load_baseline_stats(prepared.baseline_stats)
        run = _sequential_rows if spec.sequential_parts > 1 else _one_run_rows
        run(header, model, tokenizer, spec, prepared, splits, baselines, rows, parallel)
        if spec.unlearn.save_model and parallel.rank == 0:
            if not models_dir:
                raise ValueError("unlearn.save_model needs a directory to keep the model in (run_trial's models_dir)")
            rows[-1] = {**rows[-1], "model_path": keep_model(model, tokenizer, models_dir, spec.trial_id)}
    except Exception as err:  # a failed trial is a row, not a crashed sweep
        rows = [{**r, "is_final": False} for r in rows]
        rows.append(finished({**header, "status": "failed", "is_final": True,
                               "step": rows[-1]["step"] if rows else None,
                               "error": f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}"}))
    return rows


def spec_summary(spec: TrialSpec, shown: set[str] | None = None) -> str:
    """A short human label: model, method, the hyperparameters in `shown` (default all) or set away
    from their defaults, seed."""
    changed = set(spec.changed_hyperparameters())
    hps = {k: v for k, v in spec.hyperparameters().items() if shown is None or k in shown or k in changed}
    parts = [spec.model, spec.method] + [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in hps.items()]
    return " ".join(parts + [f"seed={spec.seed}"])
