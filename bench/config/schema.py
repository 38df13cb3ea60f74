"""The suite schema: the frozen dataclasses a suite file becomes (DataConfig, PrepareConfig,
UnlearnConfig, Resources, MethodEntry, TrialSpec, Suite), their allowed values and ranges, and the
trial id. `bench.config.suite` reads a YAML file into them."""

from __future__ import annotations

import dataclasses
import itertools
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from metrics.context import EvalConfig

from bench.core.encoding import PromptFormat
from bench.core.names import PROMPT_FORMATS
from bench.core.ids import settings_id
from bench.core.errors import FieldError, Range, check_choices, check_ranges
from bench.core.names import NO_RETAIN_MODEL, PRECISIONS
from bench.core.numerics import kernel_key
from bench.data.kinds import KIND_NAMES, data_kind
from bench.data.synthetic import SyntheticConfig
from bench.training.loop import SCHEDULES
from bench.training.parallel import SHARDINGS

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
BASELINE_METHODS = ("none", "retain")  # the target as prepared, and the retain-only model


@dataclass(frozen=True)
class DataConfig(SyntheticConfig):
    """The dataset: `kind`, where its records come from, and the generator's settings (see
    `SyntheticConfig` for those; with `files` and `tofu` they shape the built-in general knowledge).

    Args:
        kind: a registered data kind (`bench.data.kinds`). `synthetic_authors` generates the fictitious-author data from `seed`;
            `files` reads the user's question/answer records (`forget`, `retain`, `holdout`);
            `tofu` loads the hub benchmark `locuslab/TOFU` (`forget` names its split: forget01,
            forget05 or forget10); `capitals` is the single-fact world-capitals demo; `known_capitals` the world
            capitals a pretrained model already knows (RWKU's shape: use it with `prepare.retain_model: none`);
            `synthetic_news` a news-like text corpus in MUSE's shape and `muse` the published MUSE data;
            `synthetic_hazard` multiple choice in WMDP's shape and `wmdp` the published WMDP data.
        forget, retain, holdout: with `files`, where each split's records are: a .json or .jsonl
            file, a `save_to_disk` directory, or a hub dataset id (`owner/name` or `owner/name:config`).
            `holdout` (questions never trained on: the non-members of membership inference) is optional.
        question_key, answer_key: the records' field names of the question and the answer (`files`).
        forget_corpus, retain_corpus: with `wmdp`, the texts unlearning reads (a hub id such as
            `cais/wmdp-corpora:bio-forget-corpus`, or a local snapshot); `forget` and `retain` name its
            hazard and general multiple-choice questions (`cais/wmdp:wmdp-bio`, `cais/mmlu:all`). With `muse`,
            `forget` names the whole dataset (`muse-bench/MUSE-News` or a local snapshot).
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
    forget_corpus: str = ""
    retain_corpus: str = ""

    CHOICES: ClassVar[dict] = {"kind": KIND_NAMES}

    def __post_init__(self):
        super().__post_init__()
        check_choices(vars(self), self.CHOICES)
        data_kind(self).check_config(self)  # the settings the kind needs (files: forget and retain)

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
            data; only for single-model suites); empty: the base fine-tuned on the retain data; `none`:
            there is no retain model (a pretrained model's own knowledge, which no model lacks: forget
            quality, privacy leakage and the `retain` baseline row are then unavailable, and the
            leaderboard ranks by forget accuracy instead).
        precision: dtype every stage keeps the models' weights in: fp32, bf16 or fp16 (GPU).
        gradient_checkpointing: recompute activations in the backward pass (less memory, ~30% slower).
        grad_accum_steps: micro-batches per optimizer step (effective batch = batch_size x this).
        prompt: how questions become prompts in every stage (`bench.core.encoding`): `chat` (the
            tokenizer's chat template), `plain` (`Question: ...\nAnswer:`), or `auto`: chat where the
            tokenizer has a template (instruct models), else plain (the zoo models).
        system_prompt: chat only: a system turn before each question ("": the template's own default).
        date_string: chat only: the date templates such as Llama 3's print ("": none given).
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
    prompt: str = "auto"
    system_prompt: str = ""
    date_string: str = ""

    CHOICES: ClassVar[dict] = {"target": TARGETS, "precision": WEIGHT_PRECISIONS, "prompt": PROMPT_FORMATS}
    RANGES: ClassVar[dict] = {
        "pretrain_steps": Range(0, integer=True), "finetune_steps": Range(0, integer=True),
        "batch_size": Range(1, integer=True), "lr": Range(0), "warmup_steps": Range(0, integer=True),
        "max_length": Range(1, integer=True), "finetune_text_share": Range(0, 1, high_open=True),
        "finetune_general_share": Range(0, 1, high_open=True), "grad_accum_steps": Range(1, integer=True),
    }

    def prompt_format(self) -> PromptFormat:
        """The prompt format every stage encodes with (`bench.core.encoding.set_prompt_format`)."""
        return PromptFormat(self.prompt, self.system_prompt or None, self.date_string or None)

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
        save_model: keep the trial's final model (and tokenizer) as a `save_pretrained` directory,
            `<results>/<suite>/_models/<trial_id>/`, named in the row's `model_path`; off by default
            (a tiny model is a few MB, SmolLM2-135M about 540). It changes no number, so it is no part of
            the trial id: rows already written are not run again to keep their models.
        sharding: how a trial's workers (`resources.workers`) share the model: "none" (the default;
            with more than one worker it means ddp), "ddp" (each worker holds the whole model, the
            gradients are summed once per step) or "fsdp" (weights, gradients, optimizer state and
            the reference sharded over the workers; grad_accum_steps must be a multiple of the
            workers). Each worker takes whole micro-batches of the step, so the numbers are those of
            one worker up to the order of floating-point sums: no part of the trial id, and not a
            hyperparameter.
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
    save_model: bool = False
    sharding: str = "none"

    CHOICES: ClassVar[dict] = {"schedule": tuple(SCHEDULES), "mixed_precision": MIXED_PRECISIONS, "sharding": SHARDINGS}
    # steps=0 is allowed here (baseline trials evaluate without training); a suite needs >= 1, see SUITE_RANGES.
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
# Keeping the model decides what is written, not what is computed: likewise.
# How the workers share the model changes how a trial is computed, not what (bench.training.parallel): likewise.
OUTPUT_DEFAULTS = {"save_model": UnlearnConfig().save_model, "sharding": UnlearnConfig().sharding}
NOT_HYPERPARAMETERS = {**GUARD_DEFAULTS, **CHECKPOINT_DEFAULTS, **OUTPUT_DEFAULTS}
# Prepare settings added after results existed: left out of trial ids at their defaults, so those rows keep theirs.
PROMPT_DEFAULTS = {k: getattr(PrepareConfig(), k) for k in ("prompt", "system_prompt", "date_string")}
# Evaluation settings added after results existed: likewise.
EVAL_DEFAULTS = {k: getattr(EvalConfig(), k) for k in ("extraction_strength", "lm_eval_tasks", "lm_eval_include", "lm_eval_limit")}
# Data settings that ids leave out at their defaults (rows computed before they existed keep their ids).
DATA_DEFAULTS = {"forget_corpus": "", "retain_corpus": ""}


def eval_key(eval_cfg: EvalConfig) -> dict:
    """The evaluation settings as ids hash them: those of EVAL_DEFAULTS left out at their defaults."""
    return {k: v for k, v in dataclasses.asdict(eval_cfg).items() if k not in EVAL_DEFAULTS or v != EVAL_DEFAULTS[k]}


@dataclass(frozen=True)
class Resources:
    """What one trial asks of Ray.

    Args:
        cpu: CPUs per worker (fractions allowed); also the worker's torch threads (at least 1).
        gpu: GPUs per worker (fractions allowed).
        workers: worker processes of one trial's unlearning (`unlearn.sharding` says how they share
            the model); Ray reserves all of them at once, and the first also evaluates.
    """

    cpu: float = 1.0
    gpu: float = 0.0
    workers: int = 1

    RANGES: ClassVar[dict] = {"cpu": Range(0, low_open=True), "gpu": Range(0), "workers": Range(1, integer=True)}

    def __post_init__(self):
        check_ranges(vars(self), self.RANGES)


@dataclass(frozen=True)
class MetaConfig:
    """The `meta:` section, read by `bench meta` (the meta-evaluation of the metrics; `bench run` ignores it).

    Args:
        pool_size: models per pool role, fine-tuning seeds 0..pool_size-1 (seed 0 is the prepared model):
            targets (they hold the forget knowledge), retain models and models fine-tuned on other authors
            (retain + validation authors; neither has seen the forget set).
        quantize_bits: bits per weight of the quantization attack (round-to-nearest, per output row).
        relearn_steps: optimizer steps of the relearning attack, on a share of the forget questions.
        relearn_lr: its learning rate (constant; 1e-3 suits the tiny scratch models, ~1e-5 hub models).
        relearn_fraction: the share of the forget questions relearned on.
        bootstrap: resamples of the pools for the faithfulness intervals.
    """

    pool_size: int = 3
    quantize_bits: int = 4
    relearn_steps: int = 10
    relearn_lr: float = 1e-3
    relearn_fraction: float = 0.5
    bootstrap: int = 1000

    RANGES: ClassVar[dict] = {
        "pool_size": Range(2, integer=True), "quantize_bits": Range(2, 16, integer=True),
        "relearn_steps": Range(1, integer=True), "relearn_lr": Range(0, low_open=True),
        "relearn_fraction": Range(0, 1, low_open=True), "bootstrap": Range(100, integer=True),
    }

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
        if self.method in BASELINE_METHODS:
            return {}
        unlearn = {k: v for k, v in dataclasses.asdict(self.unlearn).items() if k not in NOT_HYPERPARAMETERS}
        return {**unlearn, **self.method_args}

    def changed_hyperparameters(self) -> list[str]:
        """The hyperparameters set away from their defaults (the method's and the unlearning ones)."""
        if self.method in BASELINE_METHODS:
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
                               if k not in OUTPUT_DEFAULTS and (k not in NOT_HYPERPARAMETERS or v != NOT_HYPERPARAMETERS[k])}
        settings["prepare"] = {k: v for k, v in settings["prepare"].items()
                               if k not in PROMPT_DEFAULTS or v != PROMPT_DEFAULTS[k]}
        settings["eval"] = eval_key(self.eval)
        settings["data"] = {k: v for k, v in settings["data"].items() if k not in DATA_DEFAULTS or v != DATA_DEFAULTS[k]}
        for key, off in (("attacks", ()), ("sequential_parts", 0)):
            if settings[key] == off:
                del settings[key]  # rows computed before the setting existed keep their ids
        kernels = kernel_key()
        if kernels:  # BENCH_CPU_KERNELS=native or kernel variables of the user's: other numbers, another id
            settings["cpu_kernels"] = kernels
        return settings_id(settings)


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
    meta: MetaConfig = MetaConfig()  # `meta:`, for `bench meta`

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

    def baseline_trials(self) -> list[TrialSpec]:
        """One evaluation of the target (`none`) and of the retain model (`retain`) per model and dataset
        (each forget fraction has its own retain model)."""
        return [TrialSpec(m, ref, {}, UnlearnConfig(steps=0), self.prepare.seed, data, self.prepare, self.eval,
                          prepare_version=PREPARE_VERSION, attacks=self.attacks)
                for m in self.models for data in self.data_configs() for ref in BASELINE_METHODS
                if ref != "retain" or self.prepare.retain_model != NO_RETAIN_MODEL]


def _fields(cls) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}
