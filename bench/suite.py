"""Suites: YAML -> validated, frozen dataclasses -> a list of trial specs.

A suite is models x methods x hyperparameter grid x seeds. Every section maps onto a dataclass whose
fields are the allowed keys, so an unknown key or a wrong value fails at load time with the file,
the key and what is allowed. Numbers written like `1e-5` (which PyYAML reads as strings) are
converted for numeric fields.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from metrics.context import EvalConfig

from .data_synthetic import SyntheticConfig
from .train import SCHEDULES

DATA_KINDS = ("synthetic_authors", "files", "tofu", "capitals")
MIXED_PRECISIONS = ("no", "bf16", "fp16")
WEIGHT_PRECISIONS = ("fp32", "bf16", "fp16")
TARGETS = ("finetune", "as_is")
REFERENCE_METHODS = ("none", "retain")  # the target as prepared, and the retain-only model


class SuiteError(ValueError):
    """A suite file that cannot be run; the message names the file and the key."""


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

    def __post_init__(self):
        super().__post_init__()
        if self.kind not in DATA_KINDS:
            raise ValueError(f"kind: unknown kind {self.kind!r}; allowed: {', '.join(DATA_KINDS)}")
        if self.kind == "files" and not (self.forget and self.retain):
            raise ValueError("kind files needs `forget` and `retain` (a .json/.jsonl file, a save_to_disk "
                             "directory or a hub dataset id)")
        from .data_sources import TOFU_FORGET_SPLITS

        if self.kind == "tofu" and self.tofu_forget not in TOFU_FORGET_SPLITS:
            raise ValueError(f"forget: TOFU's forget split is one of {', '.join(TOFU_FORGET_SPLITS)}, got {self.forget!r}")

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

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if self.precision not in WEIGHT_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(WEIGHT_PRECISIONS)}, got {self.precision!r}")
        if min(self.pretrain_steps, self.finetune_steps) < 0 or min(self.batch_size, self.grad_accum_steps) < 1:
            raise ValueError("pretrain_steps and finetune_steps must be >= 0, batch_size and grad_accum_steps >= 1")
        shares = (self.finetune_text_share, self.finetune_general_share)
        if min(shares) < 0 or sum(shares) >= 1:
            raise ValueError(f"finetune_text_share and finetune_general_share must be >= 0 with a sum below 1, got {shares}")


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

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {', '.join(MIXED_PRECISIONS)}, got {self.mixed_precision!r}")
        if self.steps < 0 or self.batch_size < 1 or self.lr < 0 or self.grad_accum_steps < 1:
            raise ValueError("steps must be >= 0, batch_size >= 1, lr >= 0 and grad_accum_steps >= 1")
        if self.max_loss < 0:
            raise ValueError(f"max_loss must be >= 0 (0: only NaN and infinity stop a trial), got {self.max_loss}")


# Training guards: they decide when a trial stops, not how it trains, so they are not `hp.*` columns
# and, at their defaults, not part of a trial's id (ids stay those of suites written before them).
GUARD_DEFAULTS = {k: getattr(UnlearnConfig(), k) for k in ("max_loss", "keep_last_finite")}


@dataclass(frozen=True)
class Resources:
    """What one trial asks of Ray: CPUs and GPUs (fractions allowed)."""

    cpu: float = 1.0
    gpu: float = 0.0


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

    def hyperparameters(self) -> dict[str, Any]:
        """The `hp.*` columns: the method's arguments and the unlearning settings."""
        if self.method in REFERENCE_METHODS:
            return {}
        unlearn = {k: v for k, v in dataclasses.asdict(self.unlearn).items() if k not in GUARD_DEFAULTS}
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
        )

    @property
    def trial_id(self) -> str:
        settings = self.to_dict()
        settings["unlearn"] = {k: v for k, v in settings["unlearn"].items()
                               if k not in GUARD_DEFAULTS or v != GUARD_DEFAULTS[k]}
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

    def trials(self) -> list[TrialSpec]:
        """models x methods x grid x seeds, in that order."""
        from methods import METHODS

        specs = []
        for model, entry in itertools.product(self.models, self.methods):
            method = METHODS.get(entry.name)
            keys = sorted(entry.grid)
            for values in itertools.product(*(entry.grid[k] for k in keys)):
                point = {**entry.args, **dict(zip(keys, values))}
                unlearn_over = {k: v for k, v in point.items() if k in _fields(UnlearnConfig)}
                method_args = {k: v for k, v in point.items() if k not in unlearn_over}
                args = dataclasses.asdict(method.make_args(method_args))  # defaults filled in
                for seed in self.seeds:
                    specs.append(TrialSpec(model, entry.name, args, dataclasses.replace(self.unlearn, **unlearn_over),
                                           seed, self.data, self.prepare, self.eval, method.version))
        return specs

    def reference_trials(self) -> list[TrialSpec]:
        """One evaluation of the target (`none`) and of the retain model (`retain`) per model."""
        return [TrialSpec(m, ref, {}, UnlearnConfig(steps=0), self.prepare.seed, self.data, self.prepare, self.eval)
                for m in self.models for ref in REFERENCE_METHODS]


def _fields(cls) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Converts a YAML value to a field's type, or raises SuiteError naming `where`."""
    options = typing.get_args(kind)
    if type(None) in options:  # Optional[X]: null stays None, anything else must be an X
        inner = [t for t in options if t is not type(None)]
        return None if value is None else _coerce(value, inner[0] if len(inner) == 1 else Any, where)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind in (int, float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise SuiteError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise SuiteError(f"{where}: expected a finite number, got {value!r}")
            if kind is int:
                if float(value) != int(value):
                    raise SuiteError(f"{where}: expected an integer, got {value!r}")
                return int(value)
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    else:
        return value
    raise SuiteError(f"{where}: expected {kind.__name__}, got {value!r}")


def _build(cls, raw: Any, where: str, exclude: tuple[str, ...] = ()):
    """Instantiates a config dataclass from a YAML mapping, checking keys, types and values
    (`exclude`: fields set elsewhere in the suite, not accepted here)."""
    if raw is None:
        raw = {}
    fields = {k: v for k, v in _fields(cls).items() if k not in exclude}
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: expected a mapping with keys {', '.join(fields)}, got {raw!r}")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise SuiteError(f"{where}: unknown key {', '.join(map(repr, unknown))}; allowed: {', '.join(fields)}")
    values = {k: _coerce(v, fields[k], f"{where}.{k}") for k, v in raw.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise SuiteError(f"{where}: {err}") from None


def _method_entry(raw: Any, where: str) -> MethodEntry:
    from methods import METHODS
    from .registry import UnknownNameError

    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or "name" not in raw:
        raise SuiteError(f"{where}: a method is a name or a mapping with `name`, optional `args` and `grid`")
    unknown = sorted(set(raw) - {"name", "args", "grid"})
    if unknown:
        raise SuiteError(f"{where}: unknown key {', '.join(map(repr, unknown))}; allowed: name, args, grid")
    try:
        method = METHODS.get(raw["name"])
    except UnknownNameError as err:
        raise SuiteError(f"{where}.name: {err}") from None
    arg_types = _fields(method.args_cls)
    unlearn_types = _fields(UnlearnConfig)
    allowed = {**unlearn_types, **arg_types}

    def check(key: str, value: Any, at: str) -> Any:
        if key not in allowed:
            raise SuiteError(
                f"{at}: method {method.name!r} has no hyperparameter {key!r}; allowed: "
                f"{', '.join(arg_types) or '(no method arguments)'}; training settings: {', '.join(unlearn_types)}"
            )
        return _coerce(value, allowed[key], at)

    args = {k: check(k, v, f"{where}.args.{k}") for k, v in (raw.get("args") or {}).items()}
    grid = {}
    for k, values in (raw.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise SuiteError(f"{where}.grid.{k}: a grid axis is a non-empty list, got {values!r}")
        grid[k] = [check(k, v, f"{where}.grid.{k}[{i}]") for i, v in enumerate(values)]
    overlap = sorted(set(args) & set(grid))
    if overlap:
        raise SuiteError(f"{where}: {', '.join(overlap)} given in both args and grid")
    for point in itertools.product(*grid.values()) if grid else [()]:
        try:
            method.make_args({k: v for k, v in {**args, **dict(zip(grid, point))}.items() if k in arg_types})
        except (TypeError, ValueError) as err:
            raise SuiteError(f"{where}: {err}") from None
    return MethodEntry(method.name, args, grid)


TOP_LEVEL = ("name", "data", "models", "prepare", "unlearn", "eval", "metrics", "probes", "seeds", "methods",
             "resources")
EVAL_LISTS = ("metrics", "probes")  # top-level keys that land in the evaluation config


def _metric_families(raw: Any, where: str) -> tuple[str, ...]:
    from metrics import METRICS

    from .registry import UnknownNameError

    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw or not all(isinstance(m, str) for m in raw):
        raise SuiteError(f"{where}: expected a non-empty list of metric families ({', '.join(METRICS.names())}), "
                         f"got {raw!r}")
    for i, name in enumerate(raw):
        try:
            METRICS.get(name)
        except UnknownNameError as err:
            raise SuiteError(f"{where}[{i}]: {err}") from None
    return tuple(dict.fromkeys(raw))


def _probes(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(q, str) and q.strip() for q in raw):
        raise SuiteError(f"{where}: expected a list of non-empty prompt strings (questions), got {raw!r}")
    return tuple(raw)


def parse_suite(raw: Any, path: str = "<suite>") -> Suite:
    """Validates a suite mapping (as read from YAML)."""
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite is a mapping with keys {', '.join(TOP_LEVEL)}")
    unknown = sorted(set(raw) - set(TOP_LEVEL))
    if unknown:
        raise SuiteError(f"{path}: unknown key {', '.join(map(repr, unknown))}; allowed: {', '.join(TOP_LEVEL)}")
    for key in ("models", "methods"):
        if not isinstance(raw.get(key), list) or not raw[key]:
            raise SuiteError(f"{path}: `{key}` must be a non-empty list")
    data = _absolute_sources(_build(DataConfig, raw.get("data"), f"{path}: data"))
    models = raw["models"]
    if not all(isinstance(m, str) and m for m in models):
        raise SuiteError(f"{path}: models: expected model names (zoo names, hub ids or paths), got {models!r}")
    models = [_absolute(m) for m in models]
    if len(set(models)) != len(models):
        raise SuiteError(f"{path}: models: expected distinct model names (zoo names, hub ids or paths), got {models!r}")
    prepare = _build(PrepareConfig, raw.get("prepare"), f"{path}: prepare")
    prepare = dataclasses.replace(prepare, retain_model=_absolute(prepare.retain_model))
    _check_model_roles(models, prepare, path)
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds:
        raise SuiteError(f"{path}: seeds: expected a non-empty list of integers, got {seeds!r}")
    seeds = [_coerce(s, int, f"{path}: seeds[{i}]") for i, s in enumerate(seeds)]
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"{path}: seeds: every seed must be distinct (a repeated seed repeats a trial), got {seeds}")
    unlearn = _build(UnlearnConfig, raw.get("unlearn"), f"{path}: unlearn")
    suite = Suite(
        name=str(raw.get("name") or Path(path).stem),
        path=path,
        models=tuple(models),
        methods=tuple(_method_entry(m, f"{path}: methods[{i}]") for i, m in enumerate(raw["methods"])),
        seeds=tuple(seeds),
        data=data,
        prepare=prepare,
        unlearn=unlearn,
        eval=dataclasses.replace(_build(EvalConfig, raw.get("eval"), f"{path}: eval", exclude=EVAL_LISTS),
                                 metrics=_metric_families(raw.get("metrics"), f"{path}: metrics"),
                                 probes=_probes(raw.get("probes"), f"{path}: probes")),
        resources=_build(Resources, raw.get("resources"), f"{path}: resources"),
    )
    for i, entry in enumerate(suite.methods):
        for point in itertools.product(*entry.grid.values()) if entry.grid else [()]:
            over = {k: v for k, v in {**entry.args, **dict(zip(entry.grid, point))}.items() if k in _fields(UnlearnConfig)}
            try:
                dataclasses.replace(unlearn, **over)
            except (TypeError, ValueError) as err:
                raise SuiteError(f"{path}: methods[{i}]: {err}") from None
    return suite


def _absolute(name: str) -> str:
    """A local path made absolute (trials run in other working directories); names and hub ids as they are."""
    from .availability import looks_like_path

    return str(Path(name).expanduser().resolve()) if name and looks_like_path(name) else name


def _absolute_sources(data: DataConfig) -> DataConfig:
    if data.kind != "files":
        return data
    return dataclasses.replace(data, **{k: _absolute(getattr(data, k)) for k in ("forget", "retain", "holdout")})


def _check_model_roles(models: list[str], prepare: PrepareConfig, path: str) -> None:
    from .models import ZOO, is_zoo

    if prepare.target == "as_is":
        zoo = [m for m in models if is_zoo(m)]
        if zoo:
            raise SuiteError(f"{path}: prepare.target: `as_is` uses a hub or local model as it is, but zoo models "
                             f"({', '.join(zoo)}) are built from scratch; use `finetune` for them")
    if prepare.retain_model and len(models) > 1:
        raise SuiteError(f"{path}: prepare.retain_model: one retain model serves one model, but the suite has "
                         f"{len(models)} ({', '.join(models)}); split the suite")
    if prepare.retain_model and is_zoo(prepare.retain_model):
        raise SuiteError(f"{path}: prepare.retain_model: give a hub id or path of a model never trained on the "
                         f"forget data, not a zoo name ({', '.join(ZOO)} are built by the harness)")


def load_suite(path: str | Path, check_sources: bool = True) -> Suite:
    """Reads and validates a suite YAML file; with `check_sources`, also that every model and dataset
    it names can be loaded (local paths exist, hub ids are cached or reachable)."""
    from .availability import SourceUnavailable, check_suite_sources

    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SuiteError(f"{path}: not valid YAML: {err}") from None
    suite = parse_suite(raw, str(path))
    if check_sources:
        try:
            check_suite_sources(suite)
        except SourceUnavailable as err:
            raise SuiteError(f"{path}: {err}") from None
    return suite
