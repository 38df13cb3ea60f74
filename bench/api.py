"""A single experiment in five lines of Python, through the same code as `bench run`.

    from bench import Unlearning
    u = Unlearning(method="grad_diff", model="tiny-llama", output_dir="out", gamma=2.0, retain_loss_type="KL")
    u.load_data(forget_data="forget.json", retain_data="retain.jsonl", question_key="input", answer_key="output")
    u.run(batch_size=4, learning_rate=5e-5, num_epochs=3)
    results = u.evaluate(metrics=["forget_quality", "model_utility", "rouge", "mia"])
    u.save_model("final_model")

An `Unlearning` is a one-trial suite: its settings become a suite mapping (written to
`<output_dir>/suite.yaml`, so `bench run <output_dir>/suite.yaml` reruns it), validated by the suite
parser, prepared by the prepare stage and run by the trial's own functions, in plain Python (no Ray).
The same configuration and seed give the same numbers as `bench run`, to the last digit.

Models: a zoo name (`tiny-llama`, `tiny-gpt2`) is pre-trained and fine-tuned on the user's forget +
retain data (cached as in suites); a hub id or local path is used as the target as it is. Forget
quality compares against a retain model: `retain_model=` (a model never trained on the forget data),
else one fine-tuned from the same base on the retain data; the results say which.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import yaml

from bench.core.errors import check_known

# Names other single-experiment unlearning libraries use, mapped to this harness's (`beta`, `delta`,
# `steering_coeff` and `adaptive` are already the methods' own names).
ALIASES = {"retain_loss_type": "retain_loss", "target_layer": "layer"}
LOWERCASE_VALUES = ("retain_loss",)  # "KL" and "kl" mean the same
SPLIT_FILES = ("forget", "retain", "holdout")


def _method_args(method: str, hyperparameters: dict) -> dict:
    args = {}
    for key, value in hyperparameters.items():
        key = ALIASES.get(key, key)
        args[key] = value.lower() if key in LOWERCASE_VALUES and isinstance(value, str) else value
    return args


def _as_source(data: Any, split: str, data_dir: Path) -> str:
    """A suite can only name files and hub ids: a Python list or a `datasets.Dataset` is written to
    `<output_dir>/data/<split>.jsonl` first (keys as given; the loader renames them like a file's)."""
    if isinstance(data, (str, os.PathLike)):
        return str(data)
    if hasattr(data, "to_list"):  # datasets.Dataset
        data = data.to_list()
    if not isinstance(data, list):
        raise TypeError(f"{split}_data: expected a path, a hub dataset id, a datasets.Dataset or a list of dicts, "
                        f"got {type(data).__name__}")
    from bench.data.store import write_jsonl

    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{split}.jsonl"
    write_jsonl(path, data)
    return str(path)


class Unlearning:
    """One unlearning experiment: a method, a model, the user's data.

    Args:
        method: a registered method (`bench list methods`).
        model: a zoo name, a Hugging Face hub id or a local `save_pretrained` directory.
        output_dir: where the suite file, materialised data, results row and saved models go.
        retain_model: hub id or path of a model never trained on the forget data (forget quality's
            reference); default: fine-tuned from the same base on the retain data.
        seed: seeds data order, initialisation and every random choice of the method.
        precision: weights' dtype in every stage: fp32, bf16 or fp16 (GPU).
        probes: prompts answered greedily before and after unlearning.
        cache: the prepare cache (default `$BENCH_CACHE` or ~/.cache/unlearning-bench).
        threads: torch CPU threads (default: all cores).
        config: further suite sections merged into the one-trial suite, e.g.
            `{"prepare": {"finetune_steps": 300}, "eval": {"max_new_tokens": 64}}`.
        **hyperparameters: the method's hyperparameters by their names (`bench list methods`), or the
            aliases `retain_loss_type` (-> retain_loss) and `target_layer` (-> layer).
    """

    def __init__(self, method: str, model: str, output_dir: str | os.PathLike = "unlearning_output", *,
                 retain_model: str | None = None, seed: int = 0, precision: str = "fp32",
                 probes: list[str] | tuple[str, ...] = (), cache: str | os.PathLike | None = None,
                 threads: int | None = None, config: dict | None = None, **hyperparameters):
        from methods import METHODS

        self.method = METHODS.get(method).name  # unknown names list the known ones
        self.model_name = model
        self.output_dir = Path(output_dir).resolve()
        self.retain_model = retain_model
        self.seed = seed
        self.precision = precision
        self.probes = list(probes)
        self.cache = Path(cache).resolve() if cache else None
        self.threads = threads or os.cpu_count() or 1
        self.config = dict(config or {})
        self.method_args = _method_args(method, hyperparameters)
        names = list(METHODS.get(method).hyperparameters())
        aliases = ", ".join(f"{a} -> {b}" for a, b in ALIASES.items())
        check_known("hyperparameter", self.method_args, names, owner=f"method {self.method!r}",
                    allowed=f"{', '.join(names) or '(none)'} (aliases: {aliases}); training settings go to run()")
        self.data: dict | None = None
        self.max_length: int | None = None
        self.forget_size = 0
        self.spec = self.prepared = self.model = self.tokenizer = self.splits = None
        self.header: dict = {}
        self.train_stats: dict = {}

    def load_data(self, forget_data, retain_data, holdout_data=None, *, max_length: int = 256,
                  question_key: str = "question", answer_key: str = "answer") -> "Unlearning":
        """Where the forget and retain records are (and optionally holdout: questions never trained on,
        the non-members of membership inference).

        Each is a .json or .jsonl file, a `save_to_disk` directory, a hub dataset id (`owner/name` or
        `owner/name:config`), a `datasets.Dataset` or a list of dicts. Records need `question_key` and
        `answer_key`; `paraphrased_answer` / `perturbed_answer` are used when present and derived when
        not (`bench.data.sources.derive_alternates`; the results record it). Sequences are cut to
        `max_length` tokens.
        """
        from bench.data.sources import load_records

        data_dir = self.output_dir / "data"
        sources = {"forget": forget_data, "retain": retain_data, "holdout": holdout_data}
        self.data = {"kind": "files", "question_key": question_key, "answer_key": answer_key}
        for split, data in sources.items():
            if data is not None:
                self.data[split] = _as_source(data, split, data_dir)
        forget = load_records(self.data["forget"], question_key=question_key, answer_key=answer_key, what="forget")
        self.forget_size = len(forget)
        self.max_length = int(max_length)
        return self

    def suite(self, batch_size: int = 8, learning_rate: float = 1e-4, num_epochs: float | None = None,
              steps: int | None = None, **training) -> dict:
        """The one-trial suite mapping these settings amount to (what `run` runs)."""
        from bench.models.zoo import is_zoo

        if self.data is None:
            raise RuntimeError("call load_data(...) before run()")
        if num_epochs is not None and steps is not None:
            raise ValueError("give num_epochs or steps, not both")
        if num_epochs is not None:  # the harness budgets in steps: an epoch is one pass over the forget set
            steps = max(1, math.ceil(num_epochs * self.forget_size / batch_size))
        zoo = is_zoo(self.model_name)
        extra = {k: dict(v) for k, v in self.config.items()}
        data = {"builtin_general": zoo, **self.data, **extra.pop("data", {})}
        prepare = {"target": "finetune" if zoo else "as_is", "precision": self.precision,
                   "max_length": self.max_length, **({"retain_model": self.retain_model} if self.retain_model else {}),
                   **extra.pop("prepare", {})}
        evaluation = {"max_length": self.max_length, **extra.pop("eval", {})}
        unlearn = {"batch_size": batch_size, "lr": learning_rate, **({"steps": steps} if steps is not None else {}),
                   **training, **extra.pop("unlearn", {})}
        # No attacks in the suite: `evaluate(attacks=...)` runs them on request, so one experiment stays fast.
        suite = {"name": self.output_dir.name, "data": data, "models": [self.model_name], "prepare": prepare,
                 "unlearn": unlearn, "eval": evaluation, "seeds": [self.seed],
                 "methods": [{"name": self.method, "args": self.method_args}], "attacks": [], **extra}
        if self.probes:
            suite["probes"] = self.probes
        return suite

    def run(self, batch_size: int = 8, learning_rate: float = 1e-4, num_epochs: float | None = None,
            steps: int | None = None, **training) -> dict:
        """Prepares the model (cached) and unlearns. The budget is `steps` optimizer steps, or
        `num_epochs` passes over the forget set (ceil(epochs x forget size / batch size) steps; 100
        steps when neither is given). `**training`: any `unlearn:` setting of a suite (schedule,
        warmup_steps, weight_decay, max_grad_norm, mixed_precision, gradient_checkpointing,
        grad_accum_steps). Returns the training cost."""
        from bench.models.prepare import default_cache, prepare_model
        from bench.models.baseline_stats import compute_baseline_stats
        from bench.config.suite import parse_suite
        from bench.run.rows import row_header
        from bench.run.trial import start_trial, unlearn

        raw = self.suite(batch_size, learning_rate, num_epochs, steps, **training)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        suite_file = self.output_dir / "suite.yaml"
        suite_file.write_text(yaml.safe_dump(raw, sort_keys=False))
        suite = parse_suite(raw, str(suite_file))
        if len(suite.trials()) != 1 or suite.sequential_parts or suite.trials()[0].unlearn.checkpoints():
            raise ValueError("one experiment is one trial evaluated once: checkpoints (eval_at, eval_every), "
                             "sequential parts and a list of forget fractions write several rows; put them in a "
                             "suite file and use `bench run` (README: The honest protocol)")
        self.spec, = suite.trials()
        cache = self.cache or default_cache()
        prepared = prepare_model(self.model_name, suite.data, suite.prepare, suite.eval, cache, self.threads)
        self.prepared = dataclasses.replace(prepared, baseline_stats=str(compute_baseline_stats(
            prepared, suite.eval, cache, self.threads, suite.prepare.precision, suite.prepare.prompt_format())))
        self.header = row_header(self.spec, self.prepared)  # started now, as a trial's row does
        self.model, self.tokenizer, self.splits = start_trial(self.spec, self.prepared, self.threads)
        print(f"Unlearning {self.model_name} with {self.method} for {self.spec.unlearn.steps} steps", flush=True)
        self.train_stats = unlearn(self.model, self.tokenizer, self.spec, self.splits)
        if self.train_stats["divergence"]:
            print(f"Diverged: {self.train_stats['divergence']}", flush=True)
        return dict(self.train_stats)

    def evaluate(self, metrics: list[str] | None = None, attacks: list | None = None) -> dict:
        """Runs metric families (default: all; `bench list metrics`) on the unlearned model, then the
        `attacks` asked for (default none; a suite's `attacks:` list, e.g. `["relearn", "quantize"]` or
        `[{"name": "relearn", "steps": 25}]`; `bench list attacks`), whose `attack.<variant>.<metric>`
        columns and `attack_s` join the result (README: Attacks).

        Returns a flat dict: every metric column as a float (NaN where it cannot be computed, with the
        reason under `notes["unavailable"]`), the cost columns, `probe_generations` (a list of
        {prompt, before, after}) and `notes`: which retain model forget quality compares against,
        which splits model utility averages over, and which answers were derived; and `status` (`ok`,
        or `diverged` with `error` and `diverged_step` when training stopped early: the guard's
        `max_loss` / `keep_last_finite`).
        The row is also written to `<output_dir>/results/` (readable by `bench report`)."""
        from metrics import metric_columns, metric_outputs, written_families

        from bench.run.attacks import attack_columns, run_attacks
        from bench.models.baseline_stats import load_baseline_stats
        from bench.run.results import row_schema, write_row
        from bench.config.suite import SuiteError, _At, _metric_families
        from bench.config.attacks import parse_attacks
        from bench.run.rows import finished, result_columns
        from bench.run.evaluation import evaluate_trial

        if self.model is None:
            raise RuntimeError("call run(...) before evaluate()")
        try:
            families = _metric_families(list(metrics), "evaluate(metrics=...)") if metrics else ()
            variants = parse_attacks(list(attacks), _At("evaluate()").key("attacks")) if attacks else ()
        except SuiteError as err:
            raise ValueError(str(err)) from None
        spec = dataclasses.replace(self.spec, attacks=variants,
                                   eval=dataclasses.replace(self.spec.eval, metrics=families or self.spec.eval.metrics))
        evaluation = evaluate_trial(self.model, self.tokenizer, spec, self.prepared, self.splits)
        out = result_columns(self.train_stats, evaluation.columns)
        attacked, unavailable = run_attacks(self.model, self.tokenizer, spec, self.splits,
                                            load_baseline_stats(self.prepared.baseline_stats), evaluation.context)
        if unavailable:
            out["metrics_unavailable"] = json.dumps({**json.loads(out["metrics_unavailable"] or "{}"), **unavailable},
                                                    sort_keys=True)
        row = finished({**self.header, "trial_id": spec.trial_id, **out, **attacked, "suite": self.output_dir.name,
                        "run_id": "api", "step": self.train_stats["steps_done"], "is_final": True})
        write_row(self.output_dir / "results", row, row_schema([spec], metric_outputs(written_families(spec.eval))))
        columns = metric_columns(families or None) + attack_columns(variants)
        notes = json.loads(out["metric_notes"] or "{}")
        if out["metrics_unavailable"]:
            unavailable = {k: v for k, v in json.loads(out["metrics_unavailable"]).items() if k in columns}
            if unavailable:
                notes["unavailable"] = unavailable
        cost = ("train_s", "tokens", "steps_done", "final_loss", "eval_s", "eval_forward_passes",
                "eval_generated_prompts", "peak_mem_mb", "attack_s")
        status = {k: out[k] for k in ("status", "error", "diverged_step")}
        return {**{c: row.get(c, float("nan")) for c in columns}, **{c: float(row[c]) for c in cost if c in row}, **status,
                "probe_generations": json.loads(out["probe_generations"] or "[]"), "notes": notes}

    def save_model(self, path: str | os.PathLike) -> Path:
        """Saves the unlearned model and its tokenizer with `save_pretrained` (a relative path lands
        under `output_dir`); returns the directory."""
        if self.model is None:
            raise RuntimeError("call run(...) before save_model()")
        out = Path(path) if Path(path).is_absolute() else self.output_dir / path
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        return out
