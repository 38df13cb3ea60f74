"""General ability through lm-evaluation-harness: the suite's `eval.lm_eval_tasks` run on the model under
evaluation, as flat row columns.

lm-evaluation-harness (Gao et al., "A framework for few-shot language model evaluation", Zenodo 2024,
https://github.com/EleutherAI/lm-evaluation-harness) scores the already loaded model and tokenizer through its
`HFLM` wrapper, on the model's device, with the harness's own default seeds; the caller's random states are
restored afterwards. Prompts are the tasks' text as written: no chat template is applied, so an instruct model is
scored like a base model, and a tokenizer without a template works the same.

This is no metric family: it runs its own forward passes, outside the `EvalContext`, and only at a trial's last
step (`bench.run.evaluation.evaluate_model`). Columns are `lmeval_<task>_<metric>` for every numeric entry of
lm-eval's results (groups included): the default ",none" filter is dropped from the name and any other filter
appended (`lmeval_gsm8k_exact_match_strict_match`); standard errors are kept as `lmeval_<task>_<metric>_stderr`,
NaN where lm-eval has none.

Local task folders (`eval.lm_eval_include`) are read from a temporary copy in which relative `data_files` and
`data_dir` under a task's `dataset_kwargs` point to the folder of the YAML file that names them (`datasets`
would take them from the working directory). `include:` and `!function` references keep working inside a folder.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from bench.core.names import LM_EVAL_PREFIX as PREFIX
INSTALL = 'pip install -e ".[lm-eval]"'
# What lm-eval logs on every call given a loaded model instead of a name: expected here, so not shown.
_EXPECTED_WARNINGS = ("`pretrained` model kwarg is not of type", "Passed an already-initialized model")


def lm_eval_columns(results: dict) -> dict[str, float]:
    """Flat columns from lm-eval's per-task results (`simple_evaluate(...)["results"]`).

    {"arc_easy": {"alias": "arc_easy", "acc,none": 0.5, "acc_stderr,none": 0.1}} becomes
    {"lmeval_arc_easy_acc": 0.5, "lmeval_arc_easy_acc_stderr": 0.1}. Entries that are not numbers (alias,
    name) are left out, except a standard error lm-eval could not compute ("N/A"), which is NaN.
    """
    out = {}
    for task, entries in results.items():
        for key, value in entries.items():
            name, _, filter_name = key.partition(",")
            stderr = name.endswith("_stderr")
            if not filter_name or not (stderr or isinstance(value, (int, float)) and not isinstance(value, bool)):
                continue  # alias, name, sample_len: not metrics (every metric key carries its filter)
            metric = name.removesuffix("_stderr")
            suffix = "" if filter_name == "none" else "_" + filter_name.replace("-", "_")
            number = float(value) if isinstance(value, (int, float)) else math.nan
            out[f"{PREFIX}{task}_{metric}{suffix}{'_stderr' if stderr else ''}"] = number
    return out


def run_lm_eval(model, tokenizer, config) -> dict[str, float]:
    """Runs `config.lm_eval_tasks` (an `EvalConfig`'s) on a loaded causal LM; returns `lm_eval_columns`.

    Args:
        model: a transformers causal LM, already on its device.
        tokenizer: its tokenizer (able to pad).
        config: `lm_eval_tasks`, `lm_eval_include`, `lm_eval_limit` (0: every document) and `batch_size`.

    Raises:
        ImportError: the `lm-eval` package is not installed.
        FileNotFoundError: a folder of `lm_eval_include` does not exist.
    """
    try:
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
    except ImportError as err:
        raise ImportError(f"eval.lm_eval_tasks needs lm-evaluation-harness: {INSTALL} ({err})") from err
    missing = [d for d in config.lm_eval_include if not Path(d).is_dir()]
    if missing:
        raise FileNotFoundError(f"eval.lm_eval_include: no such folder {missing[0]}")
    tasks = list(config.lm_eval_tasks)
    with tempfile.TemporaryDirectory() as tmp, _quiet(), _kept_random_state():
        include = [str(_resolved_copy(Path(d), Path(tmp) / str(i))) for i, d in enumerate(config.lm_eval_include)]
        manager = TaskManager(include_path=include, include_defaults=False) if include else None
        if manager is None or not set(tasks) <= set(manager.all_tasks):
            manager = TaskManager(include_path=include or None)  # lm-eval's own tasks too (indexing them takes seconds)
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=config.batch_size)
        out = lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=manager, limit=config.lm_eval_limit or None,
                                      apply_chat_template=False, log_samples=False, bootstrap_iters=1000)
    return lm_eval_columns(out["results"])


def _relative_to(value, base: Path):
    """Local paths in a `data_files` / `data_dir` value (a string, list or mapping) made absolute under `base`."""
    if isinstance(value, str):
        path = os.path.expanduser(value)
        return value if "://" in value else path if os.path.isabs(path) else str(base / path)
    if isinstance(value, list):
        return [_relative_to(v, base) for v in value]
    if isinstance(value, dict):
        return {k: _relative_to(v, base) for k, v in value.items()}
    return value


class _Function(str):
    """A YAML `!function module.name` reference, kept as written."""


def _resolved_copy(source: Path, dest: Path) -> Path:
    """A copy of a task folder whose YAML files' relative dataset paths point into `source` (module docstring)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    class Dumper(yaml.SafeDumper):
        pass

    Loader.add_constructor("!function", lambda loader, node: _Function(loader.construct_scalar(node)))
    Dumper.add_representer(_Function, lambda dumper, ref: dumper.represent_scalar("!function", str(ref)))
    # YAML files copied (some are rewritten below), everything else linked: data files can be large.
    shutil.copytree(source, dest, copy_function=lambda src, dst: shutil.copy2(src, dst) if src.endswith(".yaml")
                    else os.symlink(os.path.abspath(src), dst))
    for path in sorted(source.rglob("*.yaml")):
        config = yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 (a safe loader that knows one tag more)
        kwargs = config.get("dataset_kwargs") if isinstance(config, dict) else None
        if not isinstance(kwargs, dict) or not {"data_files", "data_dir"} & set(kwargs):
            continue
        config["dataset_kwargs"] = {k: _relative_to(v, path.parent) if k in ("data_files", "data_dir") else v
                                    for k, v in kwargs.items()}
        (dest / path.relative_to(source)).write_text(yaml.dump(config, Dumper=Dumper, sort_keys=False))
    return dest


class _DropExpected(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_EXPECTED_WARNINGS)


@contextmanager
def _quiet():
    """lm-eval's loggers at WARNING (its INFO lines run to pages), its expected warnings and `datasets`'
    progress bars off; restored afterwards."""
    import datasets

    logger, drop = logging.getLogger("lm_eval"), _DropExpected()
    hf_logger, level = logging.getLogger("lm_eval.models.huggingface"), logger.level
    logger.setLevel(logging.WARNING)  # from lm-eval 0.4.8 on, nothing sets it back (earlier ones forced INFO)
    hf_logger.addFilter(drop)
    bars_on = not datasets.utils.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        logger.setLevel(level)
        hf_logger.removeFilter(drop)
        if bars_on:
            datasets.enable_progress_bars()


@contextmanager
def _kept_random_state():
    """The Python, NumPy and torch random states as they were before (lm-eval seeds all three)."""
    import random

    import numpy as np
    import torch

    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
