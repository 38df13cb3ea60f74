"""Scoring a model unlearned anywhere: `bench eval --model M --data D [--retain-model R]`.

The same evaluation context and metric families as a trial, on any saved causal LM (hub id or
`save_pretrained` directory) and any data in the harness's split layout: a directory of JSONL
splits (`forget`, `retain`, `holdout`, `real_authors`, `world_facts`, `forget_bio`; missing ones
leave their metrics NaN with the reason) or a suite file (its data is generated into the cache and
its evaluation settings are used). Forget quality and privacy leakage compare against a retain
model; without `--retain-model` they are reported missing, never as 0. The reference-model membership
attack (`mia_ref_auc`) needs the model the evaluated one was fine-tuned from, which `bench eval` is not
given: it is reported missing, with the reason.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from bench.run.rows import finished, reset_peak_memory
from bench.core.names import RETAIN_EVAL_SPLIT
from bench.run.evaluation import EVAL_SPLITS


def resolve_data(data: str, cache: Path):
    """(data directory, evaluation config) from a split directory or a suite YAML file."""
    from metrics import EvalConfig

    from bench.data.store import prepare_data
    from bench.config.suite import SuiteError, load_suite

    path = Path(data)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        suite = load_suite(path)
        return prepare_data(suite.data, cache), suite.eval
    if path.is_dir():
        found = sorted(p.stem for p in path.glob("*.jsonl"))
        if not set(found) & set(EVAL_SPLITS):
            raise SuiteError(f"{path}: no evaluation split files; expected some of "
                             f"{', '.join(s + '.jsonl' for s in EVAL_SPLITS)}, found {found or 'none'}")
        return path.resolve(), EvalConfig()
    raise SuiteError(f"{data}: neither a suite file (.yaml) nor a directory of split .jsonl files")


def _load(name_or_path: str, device: str, precision: str | None, prompt: str = "auto"):
    from bench.core.encoding import PromptFormat
    from bench.models.zoo import load_model, load_tokenizer

    loaded_as = None if precision in (None, "auto") else precision  # None: the checkpoint's own dtype
    return load_model(name_or_path, loaded_as).to(device), load_tokenizer(name_or_path, PromptFormat(prompt))


def evaluate_external(model: str, data: str, cache: Path, retain_model: str | None = None,
                      metrics: list[str] | None = None, label: str = "external", device: str | None = None,
                      precision: str | None = None, prompt: str = "auto", **eval_overrides) -> dict:
    """Evaluates one saved model; returns the results row (metrics, cost, reasons for missing ones).
    `prompt`: how questions become prompts (`bench.core.encoding`: auto, plain or chat)."""
    import torch

    from bench.data.store import read_splits
    from bench.models.baseline_stats import retain_statistics
    from bench.run.evaluation import evaluate_model
    from bench.run.rows import evaluation_header

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    data_dir, eval_cfg = resolve_data(data, cache)
    eval_cfg = dataclasses.replace(eval_cfg, **{k: v for k, v in eval_overrides.items() if v is not None},
                                   **({"metrics": tuple(metrics)} if metrics else {}))
    splits = read_splits(Path(data_dir), [*EVAL_SPLITS, RETAIN_EVAL_SPLIT])  # the retain questions a trial evaluates
    row = evaluation_header(model, label, data_dir, retain_model, eval_cfg, str(precision or "auto"), prompt)
    reset_peak_memory()
    baselines = {}
    if retain_model:
        started = time.perf_counter()
        retain, retain_tok = _load(retain_model, device, precision, prompt)
        baselines = retain_statistics(retain, retain_tok, splits, eval_cfg)
        print(f"retain model statistics in {time.perf_counter() - started:.1f} s", flush=True)
        del retain
    evaluated, tokenizer = _load(model, device, precision, prompt)
    row.update(evaluate_model(evaluated, tokenizer, eval_cfg, splits, baselines).columns)
    return finished({**row, "status": "ok", "error": None})
