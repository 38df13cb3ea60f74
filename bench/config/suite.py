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
import itertools
import json
import math
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bench.config.attacks import parse_attacks
from bench.config.errors import At as _At
from bench.config.errors import SuiteError
from bench.config.errors import field_error as _field_error
from bench.config.loading import YamlError, load_yaml
from bench.config.schema import (  # noqa: F401  (re-exported: callers read the schema from here too)
    CHECKPOINT_DEFAULTS, GUARD_DEFAULTS, MIXED_PRECISIONS, NOT_HYPERPARAMETERS, PREPARE_VERSION,
    BASELINE_METHODS, SUITE_RANGES, TARGETS, WEIGHT_PRECISIONS, DataConfig, MetaConfig, MethodEntry, PrepareConfig, Resources,
    Suite, TrialSpec, UnlearnConfig, _fields,
)
from bench.core.errors import FieldError, Range, check_known, check_ranges
from bench.core.hub import looks_like_path
from bench.core.names import NO_RETAIN_MODEL, ZOO_NAMES, is_zoo
from bench.core.values import yaml_number
from bench.data.kinds import KINDS, data_kind
from metrics.context import EvalConfig


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
        number = yaml_number(value)
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


def _check_keys(raw: dict, keys: Iterable[str], at: _At, what: str = "key", owner: str = "",
                allowed: str = "") -> None:
    """`check_known` on a mapping's keys, its error put at the unknown key's path under `at`."""
    try:
        check_known(what, raw, keys, owner=owner, allowed=allowed)
    except FieldError as err:
        raise _field_error(err, at, at.key) from None


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

    allowed = (f"{', '.join(arg_types) or '(no method arguments)'}; "
               f"training settings: {', '.join(_fields(UnlearnConfig))}")
    args_at, grid_at = at.key("args"), at.key("grid")
    raw_args = _mapping(raw.get("args"), args_at, "a mapping of hyperparameter: value")
    raw_grid = _mapping(raw.get("grid"), grid_at, "a mapping of hyperparameter: [values]")
    for section, section_at in ((raw_args, args_at), (raw_grid, grid_at)):
        _check_keys(section, types, section_at, "hyperparameter", f"method {method.name!r}", allowed)
    args = {k: _coerce(v, types[k], args_at.key(k), _described(UnlearnConfig, k, limits)) for k, v in raw_args.items()}
    grid = {}
    for k, values in raw_grid.items():
        kind = types[k]
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
             "resources", "attacks", "sequential", "meta")
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
    suite = Suite(
        name=name,
        path=path,
        models=tuple(models),
        methods=methods,
        seeds=tuple(seeds),
        data=data,
        prepare=prepare,
        unlearn=unlearn,
        eval=dataclasses.replace(evaluation, metrics=_metric_families(raw.get("metrics"), at.key("metrics"))
                                 or data_kind(data).metric_families,
                                 probes=_probes(raw.get("probes"), at.key("probes")),
                                 checkpoint_metrics=_metric_families(
                                     _mapping(raw.get("eval"), at.key("eval"), "").get("checkpoint_metrics"),
                                     at.key("eval").key("checkpoint_metrics"))),
        resources=_build(Resources, raw.get("resources"), at.key("resources")),
        attacks=parse_attacks(raw.get("attacks"), at.key("attacks"), data_kind(data).attacks),
        forget_fractions=fractions,
        sequential_parts=parts,
        meta=_build(MetaConfig, raw.get("meta"), at.key("meta")),
    )
    _check_workers(suite, at)
    return suite


# Methods whose loss keeps statistics over a step's micro-batches in the process that computes them
# (PDU's dual variable averages the step's constraint slack): split over workers, each would see its
# share only, and the numbers would depend on the worker count.
ONE_WORKER_METHODS = {"pdu": "its dual variable averages the constraint over the step's micro-batches"}


def _check_workers(suite: Suite, at: _At) -> None:
    """What several workers per trial need: FSDP's equal shares of micro-batches, and methods that can be split."""
    workers = suite.resources.workers
    workers_at = at.key("resources").key("workers")
    for spec in suite.trials():
        if workers > 1 and spec.method in ONE_WORKER_METHODS:
            raise workers_at.error(f"{workers} workers, but method {spec.method} runs in one process "
                                   f"({ONE_WORKER_METHODS[spec.method]})", "1 for a suite with that method")
        u = spec.unlearn
        if u.sharding == "fsdp" and u.grad_accum_steps % workers:
            raise at.key("unlearn").key("grad_accum_steps").error(
                f"{u.grad_accum_steps} micro-batches a step do not split evenly over {workers} workers, and "
                "fsdp needs every worker to take as many (a sharded forward pass is a collective)",
                f"a multiple of resources.workers ({workers}) with sharding fsdp; or sharding ddp")


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
    if not data_kind(configs[0]).fraction_grid:
        grid_kinds = " or ".join(k.name for k in KINDS if k.fraction_grid)
        raise axis_at.error(f"a list of forget fractions needs kind {grid_kinds}, not {configs[0].kind!r}",
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
        authors = data_kind(data).forget_authors(data)
        if authors is not None and parts > authors:
            raise at.key("parts").error(f"{parts} parts of a forget set of {authors} authors "
                                        f"(forget_fraction {data.forget_fraction:g})",
                                        f"at most {authors}: each part is whole authors")
    return parts


def _absolute(name: str) -> str:
    """A local path made absolute (trials run in other working directories); names and hub ids as they are."""
    return str(Path(name).expanduser().resolve()) if name and looks_like_path(name) else name


def _absolute_sources(data: DataConfig) -> DataConfig:
    """The data settings that name local paths (as the kind says) made absolute."""
    return dataclasses.replace(data, **{k: _absolute(getattr(data, k)) for k in data_kind(data).path_settings})


def _check_model_roles(models: list[str], prepare: PrepareConfig, at: _At) -> None:
    zoo = [m for m in models if is_zoo(m)]
    if prepare.prompt == "chat" and zoo:
        raise at.key("prepare").key("prompt").error(
            f"'chat' needs a tokenizer with a chat template, and the zoo models' ({', '.join(zoo)}) have none",
            "auto or plain with zoo models; chat with instruct models (hub, local or smollm2-135m)")
    if prepare.target == "as_is":
        zoo = [m for m in models if is_zoo(m)]
        if zoo:
            raise at.key("prepare").key("target").error(
                f"'as_is' uses a model as it is, but zoo models ({', '.join(zoo)}) are built from scratch",
                "finetune with zoo models; as_is only with hub or local models")
    if prepare.retain_model == NO_RETAIN_MODEL:
        return  # no model to check, and it holds for any number of models
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
