"""Suites: YAML -> validated, frozen dataclasses -> a list of trial specs.

A suite is models x methods x hyperparameter grid x seeds. Every section maps onto a dataclass whose
fields are the allowed keys. The whole file is checked before anything runs, and every error reads
`<file>: <key path>: <what is wrong, with the value>; allowed: <values or range>`, with a "Did you
mean" for a near-miss name. Numbers written like `1e-5` (which PyYAML reads as strings) are converted
for numeric fields.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from metrics.context import EvalConfig

from bench.data.synthetic import SyntheticConfig
from bench.core.hub import looks_like_path
from bench.core.names import PRECISIONS, TOFU_FORGET_SPLITS, ZOO_NAMES, is_zoo
from bench.core.numerics import kernel_key
from bench.core.errors import DATA_SOURCES, FieldError, Range, allowed, check_choices, check_ranges
from bench.config.errors import At as _At, SuiteError, field_error as _field_error
from bench.config.attacks import parse_attacks
from bench.config.loading import YamlError, load_yaml
from bench.training.loop import SCHEDULES

DATA_KINDS = ("synthetic_authors", "files", "tofu", "capitals")
MIXED_PRECISIONS = ("no", "bf16", "fp16")
WEIGHT_PRECISIONS = PRECISIONS

# The prepare recipe's version: part of every cache key and trial id. Bump it whenever a change to the data
# generator, the tokenizer or the training stages changes what the same settings build, so models
# (and rows computed on them) from the old recipe are never taken for the new one's. 2: version 1's
# keys built different weights before and after the data-source work (same settings, same key).
# 3: the target also trains on forget_val; tokenizer texts in sorted order; keys shared across fractions.
# 4: zoo weights initialised by the harness (bench.models.zoo.init_weights); CPU kernels pinned (bench.core.numerics).
PREPARE_VERSION = 4
TARGETS = ("finetune", "as_is")
REFERENCE_METHODS = ("none", "retain")  # the target as prepared, and the retain-only model


@dataclass(frozen=True)
class DataConfig(SyntheticConfig):
    """The dataset: `kind`, where its records come from, and the generator's settings (see
    `SyntheticConfig` for those; with `files` and `tofu` they shape the built-in general knowledge).

    Args:
        kind: one of DATA_KINDS. `synthetic_authors` generates the fictitious-author data from `seed`;
            `files` reads the user's question/answer records (`forget`, `retain`, `holdout`);
            `tofu` loads the hub benchmark `locuslab/TOFU` (`forget` names its split: forget01,
            forget05 or forget10); `capitals` is the single-fact world-capitals demo.
        forget, retain, holdout: with `files`, where each split's records are: a .json or .jsonl
            file, a `save_to_disk` directory, or a hub dataset id (`owner/name` or `owner/name:config`).
            `holdout` (questions never trained on: the non-members of membership inference) is optional.
        question_key, answer_key: the records' field names of the question and the answer (`files`).
        builtin_general: with `files` or `tofu`, add the generator's general-knowledge splits
            (world facts, real authors; the pre-training corpus of zoo models), so model utility has
            its general part and zoo models can be pre-trained.
    """

    kind: str = "synthetic_authors"
    forget: str = ""
    retain: str = ""
    holdout: str = ""
    question_key: str = "question"
    answer_key: str = "answer"
    builtin_general: bool = True

    CHOICES: ClassVar[dict] = {"kind": DATA_KINDS}

    def __post_init__(self):
        super().__post_init__()
        check_choices(vars(self), self.CHOICES)
        if self.kind == "files":
            for split in ("forget", "retain"):
                if not getattr(self, split):
                    raise FieldError(split, DATA_SOURCES,
                                     problem=f"kind files needs `forget` and `retain`, and {split} is empty")
        if self.kind == "tofu" and self.tofu_forget not in TOFU_FORGET_SPLITS:
            raise FieldError("forget", ", ".join(TOFU_FORGET_SPLITS), problem=f"{self.forget!r} is not a TOFU forget split",
                             near=self.forget, choices=TOFU_FORGET_SPLITS)

    @property
    def tofu_forget(self) -> str:
        """The TOFU forget split of kind `tofu` (forget10 when not given)."""
        return self.forget or "forget10"


@dataclass(frozen=True)
class PrepareConfig:
    """How the base, target and retain models are trained (zoo models are pre-trained first).

    Args:
        vocab_size: BPE vocabulary of zoo models' tokenizer.
        pretrain_steps: steps on the general corpus (zoo models only).
        finetune_steps: steps of fine-tuning the target (forget + retain) and the retain model.
        batch_size: sequences per step.
        lr: peak learning rate (cosine decay after warm-up).
        warmup_steps: linear warm-up steps of each stage.
        max_length: sequences are cut to this many tokens.
        finetune_text_share: share of fine-tuning batches that are biography text rather than QA
            (biographies are ~6x longer than a QA pair, so a small share keeps them cheap).
        finetune_general_share: share of fine-tuning batches that rehearse the general-knowledge
            QA (world facts, real authors) learned in pre-training, so fine-tuning does not erase it;
            the rest of the batches are the forget/retain questions being memorised.
        seed: seeds initialisation and batch order.
        target: `finetune` trains the target on forget + retain (zoo models from a pre-trained base,
            hub models from the model as given); `as_is` uses a hub or local model as the target
            unchanged (it is assumed to know the forget set already).
        retain_model: a hub id or path used as the retain model (one never trained on the forget
            data); empty: the base fine-tuned on the retain data. Only for single-model suites.
        precision: dtype every stage keeps the models' weights in: fp32, bf16 or fp16 (GPU).
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30% slower).
        grad_accum_steps: micro-batches per optimizer step (effective batch = batch_size x this).
    """

    vocab_size: int = 1024
    pretrain_steps: int = 500
    finetune_steps: int = 750
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 30
    max_length: int = 256
    finetune_text_share: float = 0.03
    finetune_general_share: float = 0.12
    seed: int = 0
    target: str = "finetune"
    retain_model: str = ""
    precision: str = "fp32"
    gradient_checkpointing: bool = False
    grad_accum_steps: int = 1

    CHOICES: ClassVar[dict] = {"target": TARGETS, "precision": WEIGHT_PRECISIONS}
    RANGES: ClassVar[dict] = {
        "pretrain_steps": Range(0, integer=True), "finetune_steps": Range(0, integer=True),
        "batch_size": Range(1, integer=True), "lr": Range(0), "warmup_steps": Range(0, integer=True),
        "max_length": Range(1, integer=True), "finetune_text_share": Range(0, 1, high_open=True),
        "finetune_general_share": Range(0, 1, high_open=True), "grad_accum_steps": Range(1, integer=True),
    }

    def __post_init__(self):
        check_choices(vars(self), self.CHOICES)
        check_ranges(vars(self), self.RANGES)
        shares = self.finetune_text_share + self.finetune_general_share
        if shares >= 1:  # the rest of the batches are the forget/retain questions
            raise FieldError("finetune_general_share", "shares whose sum is below 1",
                             problem=f"{self.finetune_general_share!r} with finetune_text_share "
                                     f"{self.finetune_text_share!r} leaves no batch for the questions")


@dataclass(frozen=True)
class UnlearnConfig:
    """Training settings of an unlearning trial; any of them may be a grid axis.

    Args:
        steps: optimizer steps (a budget in steps, not epochs).
        lr: learning rate of AdamW.
        batch_size: forget examples per step (and retain examples, for methods that use them).
        schedule: "constant" or "cosine".
        warmup_steps: linear warm-up steps.
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient clipping (0 = off).
        mixed_precision: autocast for the forward pass, "no", "bf16" or "fp16" (GPU); the weights
            stay in `prepare.precision`.
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30% slower).
        grad_accum_steps: micro-batches per optimizer step (effective batch = batch_size x this).
        max_loss: the trial stops as `diverged` when a step's loss is NaN or infinite or its absolute
            value exceeds this (0: only NaN and infinity); a guard, not a hyperparameter.
        keep_last_finite: keep a copy of the trained weights before each step, so a diverged trial
            is evaluated as it was before its last step (one more copy of the trained weights in
            memory; with false it is evaluated as it stands, possibly with NaN metrics).
        eval_at: checkpoints: steps (each in [1, steps]) after which the model is also evaluated,
            writing one more row (column `step`): a learning curve from one unlearning run. The
            last step is always evaluated. Not a hyperparameter: a checkpoint row is the same run as
            a trial with `steps` set to that step (for schedules that do not depend on `steps`:
            constant, warm-up; a cosine decay runs over the full budget).
        eval_every: a checkpoint every this many steps as well (0: none).
    """

    steps: int = 100
    lr: float = 1e-4
    batch_size: int = 8
    schedule: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    grad_accum_steps: int = 1
    max_loss: float = 1e4
    keep_last_finite: bool = True
    eval_at: tuple[int, ...] = ()
    eval_every: int = 0

    CHOICES: ClassVar[dict] = {"schedule": tuple(SCHEDULES), "mixed_precision": MIXED_PRECISIONS}
    # steps=0 is allowed here (reference trials evaluate without training); a suite needs >= 1, see SUITE_RANGES.
    RANGES: ClassVar[dict] = {
        "steps": Range(0, integer=True), "lr": Range(0), "batch_size": Range(1, integer=True),
        "warmup_steps": Range(0, integer=True), "weight_decay": Range(0), "max_grad_norm": Range(0, note="0: off"),
        "grad_accum_steps": Range(1, integer=True), "max_loss": Range(0, note="0: only NaN and infinity stop a trial"),
        "eval_every": Range(0, integer=True, note="0: no periodic checkpoint"),
    }

    def __post_init__(self):
        check_choices(vars(self), self.CHOICES)
        check_ranges(vars(self), self.RANGES)
        object.__setattr__(self, "eval_at", _checkpoint_steps(self.eval_at, self.steps))

    def checkpoints(self) -> tuple[int, ...]:
        """The steps evaluated before the last one (from `eval_at` and `eval_every`), ascending."""
        every = range(self.eval_every, self.steps, self.eval_every) if self.eval_every else ()
        return tuple(sorted({*self.eval_at, *every} - {self.steps}))


def _checkpoint_steps(values: Any, steps: int) -> tuple[int, ...]:
    """`eval_at` as a sorted tuple of distinct steps in [1, steps]; ValueError naming the key otherwise."""
    wanted = f"a list of distinct integer steps in [1, steps = {steps}], e.g. [25, 50]"
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise FieldError("eval_at", f"{wanted}", problem=f"{values!r} is not a list of steps")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer() or not 1 <= v <= max(steps, 1):
            raise FieldError("eval_at", f"{wanted}", problem=f"{v!r} is not a step of the run")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise FieldError("eval_at", f"{wanted}", problem=f"{values!r} repeats a step")
    return tuple(sorted(out))


# What a suite's unlearning settings (the `unlearn:` section, args and grids) must meet on top of
# UnlearnConfig.RANGES: a trial that trains not at all, or with no step size, measures nothing.
SUITE_RANGES = {"steps": Range(1, integer=True), "lr": Range(0, low_open=True)}


# Training guards: they decide when a trial stops, not how it trains, so they are not `hp.*` columns
# and, at their defaults, not part of a trial's id (ids stay those of suites written before them).
GUARD_DEFAULTS = {k: getattr(UnlearnConfig(), k) for k in ("max_loss", "keep_last_finite")}
# Checkpoints decide when a trial is evaluated, not how it trains: not `hp.*` columns either (a checkpoint
# row's `step` says how far it trained), and absent from the ids of trials without them.
CHECKPOINT_DEFAULTS = {k: getattr(UnlearnConfig(), k) for k in ("eval_at", "eval_every")}
NOT_HYPERPARAMETERS = {**GUARD_DEFAULTS, **CHECKPOINT_DEFAULTS}


@dataclass(frozen=True)
class Resources:
    """What one trial asks of Ray: CPUs and GPUs (fractions allowed)."""

    cpu: float = 1.0
    gpu: float = 0.0

    RANGES: ClassVar[dict] = {"cpu": Range(0, low_open=True), "gpu": Range(0)}

    def __post_init__(self):
        check_ranges(vars(self), self.RANGES)


@dataclass(frozen=True)
class MethodEntry:
    """One `methods:` item: a registered method, fixed `args` and a `grid` of lists to sweep."""

    name: str
    args: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrialSpec:
    """Everything one trial needs; its hash is the trial's id."""

    model: str
    method: str
    method_args: dict
    unlearn: UnlearnConfig
    seed: int
    data: DataConfig
    prepare: PrepareConfig
    eval: EvalConfig
    method_version: int = 0
    prepare_version: int = 0  # the recipe the starting models were built by (PREPARE_VERSION)
    attacks: tuple = ()  # variants {"label", "name", "settings"} (bench.config.attacks), run after evaluation
    sequential_parts: int = 0  # > 1: the forget set is unlearned in this many parts, one after another

    def hyperparameters(self) -> dict[str, Any]:
        """The `hp.*` columns: the method's arguments and the unlearning settings."""
        if self.method in REFERENCE_METHODS:
            return {}
        unlearn = {k: v for k, v in dataclasses.asdict(self.unlearn).items() if k not in NOT_HYPERPARAMETERS}
        return {**unlearn, **self.method_args}

    def changed_hyperparameters(self) -> list[str]:
        """The hyperparameters set away from their defaults (the method's and the unlearning ones)."""
        if self.method in REFERENCE_METHODS:
            return []
        from methods import METHODS

        defaults = {**dataclasses.asdict(UnlearnConfig()), **METHODS.get(self.method).hyperparameters()}
        return sorted(k for k, v in self.hyperparameters().items() if k not in defaults or defaults[k] != v)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrialSpec":
        return cls(
            model=d["model"], method=d["method"], method_args=dict(d["method_args"]),
            unlearn=UnlearnConfig(**d["unlearn"]), seed=d["seed"], data=DataConfig(**d["data"]),
            prepare=PrepareConfig(**d["prepare"]), eval=EvalConfig(**d["eval"]), method_version=d["method_version"],
            prepare_version=d.get("prepare_version", 0), attacks=tuple(d.get("attacks", ())),
            sequential_parts=d.get("sequential_parts", 0),
        )

    @property
    def trial_id(self) -> str:
        settings = self.to_dict()
        settings["unlearn"] = {k: v for k, v in settings["unlearn"].items()
                               if k not in NOT_HYPERPARAMETERS or v != NOT_HYPERPARAMETERS[k]}
        for key, off in (("attacks", ()), ("sequential_parts", 0)):
            if settings[key] == off:
                del settings[key]  # rows computed before the setting existed keep their ids
        kernels = kernel_key()
        if kernels:  # BENCH_CPU_KERNELS=native or kernel variables of the user's: other numbers, another id
            settings["cpu_kernels"] = kernels
        canonical = json.dumps(settings, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Suite:
    name: str
    path: str
    models: tuple[str, ...]
    methods: tuple[MethodEntry, ...]
    seeds: tuple[int, ...] = (0,)
    data: DataConfig = DataConfig()
    prepare: PrepareConfig = PrepareConfig()
    unlearn: UnlearnConfig = UnlearnConfig()
    eval: EvalConfig = EvalConfig()
    resources: Resources = Resources()
    attacks: tuple = ()  # what `attacks:` expands to (absent from the file: every attack, bench.config.attacks)
    forget_fractions: tuple[float, ...] = ()  # `data.forget_fraction` given as a list: a grid axis
    sequential_parts: int = 0  # `sequential: {parts: K}`

    def data_configs(self) -> list[DataConfig]:
        """The datasets the suite runs on: one per forget fraction of the axis, else `data` alone."""
        return [dataclasses.replace(self.data, forget_fraction=f) for f in self.forget_fractions] or [self.data]

    def trials(self) -> list[TrialSpec]:
        """models x forget fractions x methods x grid x seeds, in that order."""
        from methods import METHODS

        specs = []
        for model, data, entry in itertools.product(self.models, self.data_configs(), self.methods):
            method = METHODS.get(entry.name)
            keys = sorted(entry.grid)
            for values in itertools.product(*(entry.grid[k] for k in keys)):
                point = {**entry.args, **dict(zip(keys, values))}
                unlearn_over = {k: v for k, v in point.items() if k in _fields(UnlearnConfig)}
                method_args = {k: v for k, v in point.items() if k not in unlearn_over}
                args = dataclasses.asdict(method.make_args(method_args))  # defaults filled in
                for seed in self.seeds:
                    specs.append(TrialSpec(model, entry.name, args, dataclasses.replace(self.unlearn, **unlearn_over),
                                           seed, data, self.prepare, self.eval, method.version, PREPARE_VERSION,
                                           self.attacks, self.sequential_parts))
        return specs

    def reference_trials(self) -> list[TrialSpec]:
        """One evaluation of the target (`none`) and of the retain model (`retain`) per model and dataset
        (each forget fraction has its own retain model)."""
        return [TrialSpec(m, ref, {}, UnlearnConfig(steps=0), self.prepare.seed, data, self.prepare, self.eval,
                          prepare_version=PREPARE_VERSION, attacks=self.attacks)
                for m in self.models for data in self.data_configs() for ref in REFERENCE_METHODS]


def _fields(cls) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}



def _number(value: Any) -> float | int | None:
    """A YAML value as a number (strings like '1e-5' included), or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _coerce(value: Any, kind: Any, at: _At, values: str | None = None) -> Any:
    """Converts a YAML value to a field's type, or raises SuiteError at `at` (`values`: what is allowed,
    when more precise than the type)."""
    options = typing.get_args(kind)
    if type(None) in options:  # Optional[X]: null stays None, anything else must be an X
        inner = [t for t in options if t is not type(None)]
        return None if value is None else _coerce(value, inner[0] if len(inner) == 1 else Any, at, values)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise at.error(f"{value!r} is not true or false", "true, false")
    if kind in (int, float):
        wanted = "an integer" if kind is int else "a number"
        number = _number(value)
        if number is None:
            raise at.error(f"{value!r} is not {wanted}", values or wanted)
        if not math.isfinite(number):
            raise at.error(f"{value!r} is not a finite number", values or wanted)
        if kind is int:
            if isinstance(number, float) and not number.is_integer():
                raise at.error(f"{value!r} is not an integer", values or wanted)
            return int(number)
        return float(number)
    if kind is str:
        if isinstance(value, str):
            return value
        raise at.error(f"{value!r} is not a string", values or "text")
    return value


def _described(cls, name: str, ranges: dict[str, Range]) -> str | None:
    """What a field allows, in words, for type errors (None: its type says it all)."""
    if name in ranges:
        return str(ranges[name])
    if name in getattr(cls, "CHOICES", {}):
        return ", ".join(cls.CHOICES[name])
    return None


def _check_keys(raw: dict, keys: Iterable[str], at: _At) -> None:
    keys = list(keys)
    for key in raw:
        if key not in keys:
            raise at.key(key).error(f"unknown key {key!r}", ", ".join(keys), near=key, choices=keys)


def _mapping(raw: Any, at: _At, holds: str) -> dict:
    """A section's mapping (absent or null: empty)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise at.error(f"expected a mapping, got {raw!r}", holds)
    return raw


def _nonempty_list(raw: Any, at: _At, holds: str) -> list:
    if not isinstance(raw, list) or not raw:
        raise at.error(f"expected a non-empty list, got {raw!r}", holds)
    return raw


def _check_distinct(values: list, at: _At, what: str) -> None:
    """A repeated model, seed or grid value would run the same trial twice under one id."""
    first: dict[str, int] = {}
    for i, value in enumerate(values):
        key = json.dumps(value, sort_keys=True, default=str)
        if key in first:
            raise at.item(i).error(f"{value!r} repeats {at.item(first[key]).path}", f"distinct {what}")
        first[key] = i


def _build(cls, raw: Any, at: _At, exclude: tuple[str, ...] = (), ranges: dict[str, Range] | None = None):
    """Instantiates a config dataclass from a YAML mapping, checking keys, types and values
    (`exclude`: fields set elsewhere in the suite, not accepted here; `ranges`: stricter than the class's)."""
    fields = {k: v for k, v in _fields(cls).items() if k not in exclude}
    raw = _mapping(raw, at, f"a mapping with keys {', '.join(fields)}")
    _check_keys(raw, fields, at)
    limits = {**getattr(cls, "RANGES", {}), **(ranges or {})}
    values = {k: _coerce(v, fields[k], at.key(k), _described(cls, k, limits)) for k, v in raw.items()}
    try:
        check_ranges(values, limits)  # before the class's own check, so the suite's stricter range is named
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise _field_error(err, at, lambda name: at.key(name) if name in fields else None) from None


def _method_entry(raw: Any, at: _At, unlearn: UnlearnConfig) -> MethodEntry:
    """One `methods:` item, every grid point checked against the method and the unlearning ranges."""
    from methods import METHODS

    from bench.core.registry import UnknownNameError

    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise at.error(f"{raw!r} is not a method", f"a method name ({', '.join(METHODS.names())}) or a mapping "
                       "with `name` and optional `args` and `grid`")
    _check_keys(raw, ("name", "args", "grid"), at)
    if "name" not in raw:
        raise at.key("name").error("missing required key", f"a method name ({', '.join(METHODS.names())})")
    try:
        method = METHODS.get(raw["name"])
    except (UnknownNameError, TypeError):  # TypeError: a name that is not a string (a list, a mapping)
        raise SuiteError(f"{at.key('name')}: {METHODS.unknown_message(str(raw['name']))}") from None
    arg_types = _fields(method.args_cls)
    types = {**_fields(UnlearnConfig), **arg_types}
    limits = {**UnlearnConfig.RANGES, **SUITE_RANGES}

    def value_type(key: Any, key_at: _At) -> Any:
        if key not in types:
            raise key_at.error(
                f"method {method.name!r} has no hyperparameter {key!r}",
                f"{', '.join(arg_types) or '(no method arguments)'}; "
                f"training settings: {', '.join(_fields(UnlearnConfig))}",
                near=key, choices=types)
        return types[key]

    args_at, grid_at = at.key("args"), at.key("grid")
    args = {}
    for k, v in _mapping(raw.get("args"), args_at, "a mapping of hyperparameter: value").items():
        args[k] = _coerce(v, value_type(k, args_at.key(k)), args_at.key(k), _described(UnlearnConfig, k, limits))
    grid = {}
    for k, values in _mapping(raw.get("grid"), grid_at, "a mapping of hyperparameter: [values]").items():
        kind = value_type(k, grid_at.key(k))
        if not isinstance(values, list) or not values:
            raise grid_at.key(k).error(f"a grid axis is a non-empty list, got {values!r}",
                                       "a list of values, e.g. [1e-4, 3e-4]")
        grid[k] = [_coerce(v, kind, grid_at.key(k).item(j), _described(UnlearnConfig, k, limits))
                   for j, v in enumerate(values)]
        _check_distinct(grid[k], grid_at.key(k), "values (a repeated value repeats trials)")
    for k in grid:
        if k in args:
            raise grid_at.key(k).error(f"{k!r} is given in both args and grid", "each hyperparameter in one of them")
    _check_grid_points(method, args, grid, unlearn, at)
    return MethodEntry(method.name, args, grid)


def _check_grid_points(method, args: dict, grid: dict, unlearn: UnlearnConfig, at: _At) -> None:
    """Builds every grid point's unlearning settings and method arguments, so checks that involve
    several values (and the suite's ranges) run before any trial does; an error names the value."""
    unlearn_names = set(_fields(UnlearnConfig))  # split as Suite.trials splits them
    limits = {**UnlearnConfig.RANGES, **SUITE_RANGES}
    axes = sorted(grid)
    for indices in itertools.product(*(range(len(grid[k])) for k in axes)):
        index = dict(zip(axes, indices))  # grid key -> which of its values this point takes
        point = {**args, **{k: grid[k][i] for k, i in index.items()}}
        try:
            over = {k: v for k, v in point.items() if k in unlearn_names}
            check_ranges(over, limits)
            dataclasses.replace(unlearn, **over)
            method.make_args({k: v for k, v in point.items() if k not in unlearn_names})
        except (TypeError, ValueError) as err:
            raise _field_error(err, at, functools.partial(_point_key, at, args, index)) from None


def _point_key(at: _At, args: dict, index: dict[str, int], name: str) -> _At | None:
    """Where a grid point's value of `name` was written: its grid item, or its `args` entry."""
    if name in index:
        return at.key("grid").key(name).item(index[name])
    return at.key("args").key(name) if name in args else None


def _check_no_repeated_trials(entries: tuple[MethodEntry, ...], unlearn: UnlearnConfig, at: _At) -> None:
    """Two method entries that expand to the same trial (same method, arguments and settings, with the
    defaults filled in) would run it twice under one id."""
    first: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for spec in Suite("", "", ("model",), (entry,), unlearn=unlearn).trials():
            if spec.trial_id in first:
                shown = {k: v for k, v in spec.hyperparameters().items() if k in entry.args or k in entry.grid}
                raise at.item(i).error(
                    f"expands to the same trials as methods[{first[spec.trial_id]}] ({entry.name}"
                    + "".join(f", {k}={v!r}" for k, v in sorted(shown.items())) + ")",
                    "method entries that differ in method, args or grid values")
            first[spec.trial_id] = i


TOP_LEVEL = ("name", "data", "models", "prepare", "unlearn", "eval", "metrics", "probes", "seeds", "methods",
             "resources", "attacks", "sequential")
EVAL_LISTS = ("metrics", "probes")  # top-level keys that land in the evaluation config


def _required() -> dict[str, str]:
    """The keys every suite needs, with what they hold."""
    from methods import METHODS


    return {
        "models": f"a non-empty list of model names: zoo models ({', '.join(ZOO_NAMES)}), hub ids (owner/name) or "
                  "local save_pretrained directories",
        "methods": f"a non-empty list of methods, each a name ({', '.join(METHODS.names())}) or a mapping with "
                   "`name` and optional `args` and `grid`",
    }


def _models(raw: Any, at: _At, holds: str) -> list[str]:
    models = _nonempty_list(raw, at, holds)
    for i, m in enumerate(models):
        if not isinstance(m, str) or not m.strip():
            raise at.item(i).error(f"{m!r} is not a model name", holds)
    models = [_absolute(m) for m in models]
    _check_distinct(models, at, "model names")
    return models


def _seeds(raw: Any, at: _At) -> list[int]:
    seeds = _nonempty_list(raw, at, "a non-empty list of distinct integers, e.g. [0, 1, 2]")
    seeds = [_coerce(s, int, at.item(i)) for i, s in enumerate(seeds)]
    _check_distinct(seeds, at, "integers (a repeated seed repeats a trial)")
    return seeds


def _metric_families(raw: Any, at: _At) -> tuple[str, ...]:
    from metrics import METRICS

    from bench.core.registry import UnknownNameError

    if raw is None:
        return ()
    families = _nonempty_list(raw, at, f"a non-empty list of metric families ({', '.join(METRICS.names())})")
    for i, name in enumerate(families):
        try:
            METRICS.get(name)
        except (UnknownNameError, TypeError):  # TypeError: not a string
            raise SuiteError(f"{at.item(i)}: {METRICS.unknown_message(str(name))}") from None
    return tuple(dict.fromkeys(families))


def _probes(raw: Any, at: _At) -> tuple[str, ...]:
    if raw is None:
        return ()
    holds = 'a list of non-empty prompt strings (questions), e.g. ["Where was Jane Austen born?"]'
    if not isinstance(raw, list):
        raise at.error(f"expected a list of non-empty prompt strings (questions), got {raw!r}", holds)
    for i, q in enumerate(raw):
        if not isinstance(q, str) or not q.strip():
            raise at.item(i).error(f"{q!r} is not a non-empty prompt string", holds)
    return tuple(raw)


def _suite_name(raw: Any, at: _At, path: str) -> str:
    if raw is None or raw == "":
        return Path(path).stem
    if not isinstance(raw, (str, int)) or isinstance(raw, bool) or not str(raw).strip():
        raise at.error(f"{raw!r} is not a name", "a non-empty string (default: the file's name)")
    return str(raw)


def parse_suite(raw: Any, path: str = "<suite>") -> Suite:
    """Validates a suite mapping (as read from YAML); raises SuiteError naming the file and key path."""
    at = _At(path)
    holds = f"a mapping with keys {', '.join(TOP_LEVEL)} (models and methods are required)"
    if raw is None:
        raise SuiteError(f"{path}: the suite is empty; allowed: {holds}")
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite is a mapping, got {type(raw).__name__} {raw!r}; allowed: {holds}")
    _check_keys(raw, TOP_LEVEL, at)
    required = _required()
    for key, what in required.items():
        if key not in raw:
            raise at.key(key).error("missing required key", what)
    name = _suite_name(raw.get("name"), at.key("name"), path)
    data, fractions = _data(raw.get("data"), at.key("data"))
    models = _models(raw["models"], at.key("models"), required["models"])
    prepare = _build(PrepareConfig, raw.get("prepare"), at.key("prepare"))
    prepare = dataclasses.replace(prepare, retain_model=_absolute(prepare.retain_model))
    _check_model_roles(models, prepare, at)
    seeds = _seeds(raw.get("seeds", [0]), at.key("seeds"))
    unlearn = _build(UnlearnConfig, raw.get("unlearn"), at.key("unlearn"), ranges=SUITE_RANGES)
    methods_at = at.key("methods")
    methods = tuple(_method_entry(m, methods_at.item(i), unlearn)
                    for i, m in enumerate(_nonempty_list(raw["methods"], methods_at, required["methods"])))
    _check_no_repeated_trials(methods, unlearn, methods_at)
    evaluation = _build(EvalConfig, raw.get("eval"), at.key("eval"), exclude=EVAL_LISTS)
    parts = _sequential(raw.get("sequential"), at.key("sequential"), unlearn, methods, [
        dataclasses.replace(data, forget_fraction=f) for f in fractions] or [data])
    return Suite(
        name=name,
        path=path,
        models=tuple(models),
        methods=methods,
        seeds=tuple(seeds),
        data=data,
        prepare=prepare,
        unlearn=unlearn,
        eval=dataclasses.replace(evaluation, metrics=_metric_families(raw.get("metrics"), at.key("metrics")),
                                 probes=_probes(raw.get("probes"), at.key("probes")),
                                 checkpoint_metrics=_metric_families(
                                     _mapping(raw.get("eval"), at.key("eval"), "").get("checkpoint_metrics"),
                                     at.key("eval").key("checkpoint_metrics"))),
        resources=_build(Resources, raw.get("resources"), at.key("resources")),
        attacks=parse_attacks(raw.get("attacks"), at.key("attacks")),
        forget_fractions=fractions,
        sequential_parts=parts,
    )


def _data(raw: Any, at: _At) -> tuple[DataConfig, tuple[float, ...]]:
    """The `data:` section, and the forget fractions when `forget_fraction` is a list (a grid axis: each
    fraction is its own dataset, with its own retain model; the target is shared)."""
    raw = _mapping(raw, at, f"a mapping with keys {', '.join(_fields(DataConfig))}")
    fractions = raw.get("forget_fraction")
    if not isinstance(fractions, list):
        return _absolute_sources(_build(DataConfig, raw, at)), ()
    axis_at = at.key("forget_fraction")
    holds = "a number in (0, 1) or a non-empty list of them (a grid axis), e.g. [0.01, 0.05, 0.1]"
    if not fractions:
        raise axis_at.error("an empty list sweeps nothing", holds)
    configs = []
    for i, f in enumerate(fractions):
        try:
            configs.append(_absolute_sources(_build(DataConfig, {**raw, "forget_fraction": f}, at)))
        except SuiteError as err:  # put at the value's place in the list (the config names only the key)
            raise SuiteError(str(err).replace(f"{axis_at}:", f"{axis_at.item(i)}:", 1)) from None
    if configs[0].kind != "synthetic_authors":
        raise axis_at.error(f"a list of forget fractions needs kind synthetic_authors, not {configs[0].kind!r}",
                            "one number; with kind tofu, the forget split is named by `forget` (forget01, forget05, forget10)")
    values = [c.forget_fraction for c in configs]
    _check_distinct(values, axis_at, "fractions (a repeated fraction repeats trials)")
    return configs[0], tuple(values)


def _sequential(raw: Any, at: _At, unlearn: UnlearnConfig, methods: tuple[MethodEntry, ...],
                datasets: list[DataConfig]) -> int:
    """`sequential: {parts: K}`: the forget set in K parts, unlearned one after another in each trial."""
    if raw is None:
        return 0
    holds = "a mapping {parts: K}, K an integer >= 2"
    raw = _mapping(raw, at, holds)
    _check_keys(raw, ("parts",), at)
    if "parts" not in raw:
        raise at.key("parts").error("missing required key", "an integer >= 2")
    parts = _coerce(raw["parts"], int, at.key("parts"), "an integer >= 2")
    if parts < 2:
        raise at.key("parts").error(f"{parts!r} is out of range (one part is an ordinary trial)", "an integer >= 2")
    checkpointed = unlearn.eval_at or unlearn.eval_every or any(
        k in ("eval_at", "eval_every") for m in methods for k in (*m.args, *m.grid))
    if checkpointed:
        raise at.error("sequential trials write a row after each part, which does not combine with checkpoints "
                       "(unlearn.eval_at / eval_every)", "sequential without eval_at and eval_every")
    for data in datasets:
        if data.kind == "synthetic_authors" and parts > data.n_forget:
            raise at.key("parts").error(f"{parts} parts of a forget set of {data.n_forget} authors "
                                        f"(forget_fraction {data.forget_fraction:g})",
                                        f"at most {data.n_forget}: each part is whole authors")
    return parts


def _absolute(name: str) -> str:
    """A local path made absolute (trials run in other working directories); names and hub ids as they are."""
    return str(Path(name).expanduser().resolve()) if name and looks_like_path(name) else name


def _absolute_sources(data: DataConfig) -> DataConfig:
    if data.kind != "files":
        return data
    return dataclasses.replace(data, **{k: _absolute(getattr(data, k)) for k in ("forget", "retain", "holdout")})


def _check_model_roles(models: list[str], prepare: PrepareConfig, at: _At) -> None:
    if prepare.target == "as_is":
        zoo = [m for m in models if is_zoo(m)]
        if zoo:
            raise at.key("prepare").key("target").error(
                f"'as_is' uses a model as it is, but zoo models ({', '.join(zoo)}) are built from scratch",
                "finetune with zoo models; as_is only with hub or local models")
    if prepare.retain_model and len(models) > 1:
        raise at.key("prepare").key("retain_model").error(
            f"one retain model serves one model, but the suite has {len(models)} ({', '.join(models)})",
            "a retain model only in a single-model suite (split the suite)")
    if prepare.retain_model and is_zoo(prepare.retain_model):
        raise at.key("prepare").key("retain_model").error(
            f"{prepare.retain_model!r} is a zoo name ({', '.join(ZOO_NAMES)} are built by the harness)",
            "a hub id or path of a model never trained on the forget data")


def load_suite(path: str | Path, check_sources: bool = True) -> Suite:
    """Reads and validates a suite YAML file; with `check_sources`, also that every model and dataset
    it names can be loaded (local paths exist, hub ids are cached or reachable)."""
    from bench.config.availability import SourceUnavailable, check_suite_sources

    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file")
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except YamlError as err:
        raise SuiteError(f"{path}: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SuiteError(f"{path}: cannot be read ({err}); allowed: a UTF-8 YAML file") from None
    suite = parse_suite(raw, str(path))
    if check_sources:
        try:
            check_suite_sources(suite)
        except SourceUnavailable as err:
            raise SuiteError(f"{path}: {err}") from None
    return suite
