"""The meta-evaluation's runs: the models every metric is judged on, and the full metric set on each.

Two sets of evaluations (`bench.report.meta` turns them into faithfulness and robustness):

- **Pools** (faithfulness). Models that hold the forget knowledge: targets fine-tuned with `meta.pool_size`
  batch seeds (seed 0 is the prepared target). Models that never saw it: retain models with as many seeds,
  and as many models fine-tuned on other authors (retain + validation authors: as many authors as the
  target learnt, the forget set left out). One row each, `stage` "pool".
- **Attacks** (robustness). Every trial of the suite (method x grid x seed) unlearns the prepared target;
  the unlearned model is evaluated as it is, after `meta.quantize_bits`-bit quantization, and after
  relearning `meta.relearn_steps` steps on `meta.relearn_fraction` of the forget questions (the trial's
  seed draws them); the retain model goes through the same attacks with each seed, as the yardstick of
  how far an attack moves a model that never knew. Rows with `stage` "before", "quantized", "relearned".

Every model is evaluated with the suite's full metric set on the whole forget split (the relearned
questions included, for the unlearned and the retain model alike). Each unit of work (one pool model, one
attacked trial) is one Parquet file under `<results>/<suite>/_meta/`, written atomically and skipped when
present: an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from bench.core.atomic import atomic_file
from bench.core.ids import settings_id

META_DIR = "_meta"
STAGES = ("pool", "before", "quantized", "relearned")
# Which pool a fine-tuned role belongs to: does it hold the forget knowledge?
HOLDS_KNOWLEDGE = {"target": True, "retain": False, "other_authors": False}


def meta_dir(results_root: Path, suite) -> Path:
    return Path(results_root) / suite.name / META_DIR


def check_meta_suite(suite) -> None:
    """What a meta-evaluation needs of its suite, said before anything is built."""
    from bench.core.names import NO_RETAIN_MODEL

    if len(suite.models) != 1:
        raise ValueError(f"{suite.path}: models: a meta-evaluation judges metrics on one model; the suite names "
                         f"{len(suite.models)} ({', '.join(suite.models)})")
    if suite.prepare.retain_model == NO_RETAIN_MODEL or suite.prepare.target != "finetune":
        raise ValueError(f"{suite.path}: prepare: a meta-evaluation fine-tunes its pools from the model "
                         "(prepare.target: finetune) and needs retain models (prepare.retain_model empty)")
    if suite.forget_fractions or suite.sequential_parts:
        raise ValueError(f"{suite.path}: a meta-evaluation runs on one dataset and one request "
                         "(no forget_fraction list, no sequential)")


def run_meta(suite, results_root: Path, cache: Path, threads: int = 1,
             log: Callable[[str], None] | None = None) -> Path:
    """Builds the pools, unlearns and attacks, and writes every evaluation; returns the directory of the rows."""
    import torch

    from bench.data.store import read_splits
    from bench.models.baseline_stats import load_baseline_stats
    from bench.models.prepare import POOL_ROLES, pool_model, prepare_model
    from bench.run.evaluation import EVAL_SPLITS

    log = log or (lambda msg: print(f"[meta {suite.name}] {msg}", flush=True))
    check_meta_suite(suite)
    torch.set_num_threads(max(1, int(threads)))
    out = meta_dir(results_root, suite)
    model_name, data, prepare, meta = suite.models[0], suite.data, suite.prepare, suite.meta
    prepared = prepare_model(model_name, data, prepare, suite.eval, cache, threads)
    splits = read_splits(Path(prepared.data_dir), list(EVAL_SPLITS))
    baselines = load_baseline_stats(prepared.baseline_stats)
    context = {"prepared": [prepared.target_dir, prepared.retain_dir], "eval": dataclasses.asdict(suite.eval),
               "meta": dataclasses.asdict(meta)}

    pools = [(role, seed) for role in POOL_ROLES for seed in range(meta.pool_size)]
    trials = suite.trials()
    units = len(pools) + len(trials) + len(suite.seeds)
    done = 0

    def unit(key: dict, make_rows: Callable[[], list[dict]]) -> None:
        nonlocal done
        done += 1
        where = out / f"{settings_id({**context, **key})}.parquet"
        if where.exists():
            log(f"[{done}/{units}] {_label(key)}: done before")
            return
        started = time.perf_counter()
        rows = [{**key, **r} for r in make_rows()]
        with atomic_file(where) as tmp:
            pd.DataFrame(rows).to_parquet(tmp, index=False)
        log(f"[{done}/{units}] {_label(key)} ({time.perf_counter() - started:.0f} s)")

    def evaluated(model, tokenizer) -> dict:
        return _metrics(model, tokenizer, suite.eval, splits, baselines)

    for role, seed in pools:
        def pool_row(role=role, seed=seed):
            where = pool_model(model_name, data, prepare, suite.eval, cache, role, seed, log)
            model, tokenizer = _load(where, prepare)
            return [{"stage": "pool", "holds_knowledge": HOLDS_KNOWLEDGE[role], **evaluated(model, tokenizer)}]
        unit({"role": role, "seed": seed, "method": None, "trial_id": None}, pool_row)

    for spec in trials:
        def attacked_rows(spec=spec):
            from bench.run.trial import start_trial, unlearn

            model, tokenizer, trial_splits = start_trial(spec, prepared, threads)
            unlearn(model, tokenizer, spec, trial_splits)
            model.eval()
            return _attacked_rows(model, tokenizer, splits, meta, spec.seed, evaluated)
        unit({"role": "unlearned", "seed": spec.seed, "method": spec.method, "trial_id": spec.trial_id}, attacked_rows)

    for seed in suite.seeds:
        def retain_rows(seed=seed):
            model, tokenizer = _load(prepared.retain_dir, prepare)
            return _attacked_rows(model, tokenizer, splits, meta, seed, evaluated)
        unit({"role": "retain", "seed": seed, "method": "retain", "trial_id": None}, retain_rows)
    return out


def _label(key: dict) -> str:
    what = key["method"] if key["role"] == "unlearned" else f"{key['role']} model"
    return f"{what}, seed {key['seed']}"


def _load(where, prepare):
    import torch

    from bench.models.zoo import load_model, load_tokenizer

    model = load_model(where, prepare.precision).to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return model, load_tokenizer(where, prepare.prompt_format())


def _metrics(model, tokenizer, eval_cfg, splits: dict, baselines: dict) -> dict:
    """The full metric set's columns (the costs and notes left out: a meta row is about the numbers)."""
    from metrics import metric_columns

    from bench.run.evaluation import evaluate_model

    general_ability_off = dataclasses.replace(eval_cfg, lm_eval_tasks=())  # not among the metrics judged here
    columns = evaluate_model(model, tokenizer, general_ability_off, splits, baselines).columns
    return {c: columns[c] for c in metric_columns(eval_cfg.metrics or None)}


def _attacked_rows(model, tokenizer, splits: dict, meta, seed: int, evaluated: Callable) -> list[dict]:
    """The model evaluated as it is, quantized, and relearned (the attacks never modify `model`)."""
    from attacks.quantize import quantize_model
    from attacks.relearn import relearn, split_for_relearning

    rows = [{"stage": "before", **evaluated(model, tokenizer)}]
    rows.append({"stage": "quantized", **evaluated(quantize_model(model, meta.quantize_bits).eval(), tokenizer)})
    relearn_on, _ = split_for_relearning(splits["forget"], meta.relearn_fraction, seed)
    relearned = relearn(model, tokenizer, relearn_on, steps=meta.relearn_steps, lr=meta.relearn_lr, seed=seed)
    rows.append({"stage": "relearned", **evaluated(relearned.eval(), tokenizer)})
    return rows


def read_meta_rows(directory: Path) -> pd.DataFrame:
    """Every meta row under `directory` (one Parquet file per unit of work)."""
    files = sorted(Path(directory).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no meta-evaluation rows in {directory}; run `bench meta <suite>` first")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
