"""Data kinds: where a dataset's records come from, one registered object per `data.kind`.

A kind says how its splits are built or read, what identifies them in the cache key, which of its
settings it needs, whether its sources can be read (checked when a suite is loaded) and what those
sources may be. The split store (`bench.data.store`), the suite schema and parser and the results
rows look the kind up instead of asking for it by name, so a new kind is one registered class here:

    @KINDS.register("my_kind")
    class MyKind(DataKind):
        def records(self, data):
            return {"forget": [...], "retain": [...]}, {}

Every kind is written to the same layout (`bench.data.store`), so the prepare stage, trials and
metrics never ask where the data came from.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterator

from bench.core import hub
from bench.core.errors import FieldError, SourceUnavailable
from bench.core.names import DEFAULT_ATTACKS, TEXT_ATTACKS, TOFU_FORGET_SPLITS
from bench.core.registry import Registry
from bench.data.synthetic import SyntheticConfig, fingerprint, generate, training_fingerprint

DATA_VERSION = 1  # bumped when the files/tofu/capitals layout written by the store changes
GENERAL_KNOWLEDGE = ("world_facts", "real_authors", "general")  # the generator's splits `builtin_general` adds
REFUSALS = ("I don't know.", "I'm not sure about that.", "I can't answer that.",
            "I have no information about that.", "That is not something I can tell you.")
FILE_SOURCES = "a .json or .jsonl file, a save_to_disk directory or a hub dataset id (owner/name[:config])"
HUB_SOURCES = "the hub dataset on a reachable hub, or in the local Hugging Face cache with HF_HUB_OFFLINE=1"
RECORD_KEYS = "one of the keys found"  # what `question_key` / `answer_key` may name
TOFU_FRACTIONS = {"forget01": 0.01, "forget05": 0.05, "forget10": 0.1}
FILE_SPLITS = ("forget", "retain", "holdout")  # the `files` settings, each naming one split's source
PUBLISHED_SOURCES = ("a hub dataset id (owner/name[:config]) or a local snapshot of it (a folder per config "
                     "holding <split>.jsonl/.json/.parquet)")
# What text corpora (MUSE's shape) and multiple-choice items (WMDP's shape) are scored with by default.
MUSE_METRICS = ("verbatim_memorization", "knowledge_memorization", "mia", "privacy_leakage", "perplexity")
WMDP_METRICS = ("multiple_choice", "perplexity")


def generator_config(data) -> SyntheticConfig:
    """The generator's config from a suite's `data:` section (everything but the kind's own settings)."""
    return SyntheticConfig(**{f.name: getattr(data, f.name) for f in dataclasses.fields(SyntheticConfig)})


class DataKind:
    """One kind of data. The base is a kind that reads its records from elsewhere (`records`), with
    the generator's general-knowledge splits added on request (`data.builtin_general`); a kind
    overrides only what differs.

    Attributes:
        name: the registry key, what a suite writes as `data.kind`.
        sources: what its sources may be, in words, for errors about them ('' where it reads none).
        path_settings: the `data:` settings that name local paths (made absolute when a suite is read,
            since trials run in other working directories).
        fraction_grid: whether its forget set is a share of generated authors, so that a list of
            forget fractions is a grid axis (each fraction its own dataset).
        metric_families: the metric families a suite runs when it names none (empty: every default
            family); text corpora and multiple-choice items have no QA for TOFU's metrics.
        attacks: the attacks a suite runs when it has no `attacks:`; raw text has no question for the
            prompt attacks to reword.
    """

    sources = ""
    path_settings: tuple[str, ...] = ()
    fraction_grid = False
    metric_families: tuple[str, ...] = ()
    attacks = DEFAULT_ATTACKS

    def __init__(self, name: str):
        self.name = name

    def check_config(self, data) -> None:
        """Raises FieldError (keyed by the `data:` setting) for settings this kind cannot work with."""

    def records(self, data) -> tuple[dict[str, list[dict]], dict]:
        """The kind's own splits, and what was derived rather than given (split -> counts)."""
        raise NotImplementedError(f"data kind {self.name!r} reads no records")

    def splits(self, data) -> tuple[dict[str, list[dict]], dict]:
        """Every split of the dataset, the built-in general knowledge included where asked for."""
        splits, derived = self.records(data)
        if data.builtin_general:
            general = generate(generator_config(data))
            splits.update({s: general[s] for s in GENERAL_KNOWLEDGE if s not in splits})
        return splits, derived

    def key_parts(self, data) -> dict:
        """What identifies the kind's records in its data key: by default the records themselves, so
        the same records from any source share one cache entry."""
        return {"records": _records_hash(self.records(data))}

    def data_key(self, data) -> str:
        """The key of the dataset itself: every setting that changes any split (the data directory's name)."""
        parts = {"version": DATA_VERSION, "kind": self.name, "builtin_general": data.builtin_general,
                 "general": fingerprint(generator_config(data)) if data.builtin_general else "",
                 **self.key_parts(data)}
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

    def training_key(self, data) -> str:
        """The key of what a model trained on the dataset's trained-on records depends on (its base,
        tokenizer and target): the data key, unless the kind shares training records across datasets."""
        return self.data_key(data)

    def check_sources(self, data) -> None:
        """Raises SourceUnavailable, keyed by the `data:` setting it is about, unless the sources can be read."""

    def source_identity(self, data) -> dict | None:
        """Where the records came from, for the data directory's provenance file; None: nothing to add."""
        return None

    def forget_fraction(self, data) -> float | None:
        """The forget set's share of the authors; None where the split sizes are the user's own."""
        return None

    def forget_authors(self, data) -> int | None:
        """How many whole authors the forget set holds, where it can only be split between them (the
        parts of sequential unlearning); None: no such limit."""
        return None


KINDS: Registry[DataKind] = Registry("data kind", lambda name, cls: cls(name))


def data_kind(data) -> DataKind:
    """The kind of a data config (a generator config, which has no kind, is synthetic)."""
    return KINDS.get(getattr(data, "kind", "synthetic_authors"))


class _KindNames:
    """The registered kinds' names in the order registered, read when used, so a kind registered
    after the schema was defined is among the allowed values."""

    def __iter__(self) -> Iterator[str]:
        return iter(KINDS.names_in_order())


KIND_NAMES = _KindNames()


@KINDS.register("synthetic_authors")
class SyntheticAuthors(DataKind):
    """The fictitious-author generator (`bench.data.synthetic`), general knowledge included."""

    fraction_grid = True

    def splits(self, data):
        return generate(generator_config(data)), {}

    def data_key(self, data) -> str:
        return fingerprint(generator_config(data))[:16]

    def training_key(self, data) -> str:
        # A synthetic target is trained on forget + retain + forget_val, the same records whatever the
        # forget fraction, so the base, tokenizer and target of every fraction are one cache entry.
        return training_fingerprint(generator_config(data))[:16]

    def forget_fraction(self, data) -> float | None:
        return float(data.forget_fraction)

    def forget_authors(self, data) -> int | None:
        return data.n_forget


@KINDS.register("files")
class Files(DataKind):
    """The user's question/answer records (`data.forget`, `retain`, optional `holdout`: files or hub
    datasets), with paraphrased, perturbed and alternate answers derived where they lack them."""

    sources = FILE_SOURCES
    path_settings = FILE_SPLITS

    def check_config(self, data) -> None:
        for split in ("forget", "retain"):
            if not getattr(data, split):
                raise FieldError(split, FILE_SOURCES,
                                 problem=f"kind files needs `forget` and `retain`, and {split} is empty")

    def records(self, data):
        return file_splits(data)

    def check_sources(self, data) -> None:
        from bench.data.sources import DataSourceError

        named = _named_sources(data)
        hub_splits = [split for split, source in named.items() if not hub.looks_like_path(source)]
        if hub_splits:
            _check_hub(hub_splits[0], named[hub_splits[0]], [named[s] for s in hub_splits], self.sources)
        for split, source in named.items():
            try:
                _split_records(data, split, source)
            except DataSourceError as err:  # at the setting it is about: the split's, or the record key's
                key = err.setting or split
                allowed = err.allowed or (RECORD_KEYS if err.setting else self.sources)
                raise SourceUnavailable(key, err.problem, allowed, getattr(data, key)) from None


@KINDS.register("tofu")
class Tofu(DataKind):
    """The hub TOFU benchmark (`locuslab/TOFU`, Maini et al. 2024); `data.forget` names its forget split."""

    sources = HUB_SOURCES

    def check_config(self, data) -> None:
        if data.tofu_forget not in TOFU_FORGET_SPLITS:
            raise FieldError("forget", ", ".join(TOFU_FORGET_SPLITS), problem=f"{data.forget!r} is not a TOFU "
                             "forget split", near=data.forget, choices=TOFU_FORGET_SPLITS)

    def records(self, data):
        from bench.data.sources import tofu_splits

        return tofu_splits(data.tofu_forget), {}

    def key_parts(self, data) -> dict:
        # The records as loaded: a changed local copy or a new hub commit is a new key.
        return {"forget": data.tofu_forget, "records": tofu_records_hash(data.tofu_forget)}

    def check_sources(self, data) -> None:
        from bench.data.sources import TOFU_REPO, DataSourceError, tofu_splits

        # Every TOFU split is chosen by `forget` (its retain and holdout sets follow from it).
        _check_hub("forget", data.forget, [f"{TOFU_REPO} ({data.tofu_forget})"], self.sources)
        try:
            tofu_splits(data.tofu_forget)
        except DataSourceError as err:
            raise SourceUnavailable("forget", err.problem, err.allowed or self.sources, data.forget) from None

    def source_identity(self, data) -> dict | None:
        from bench.core.provenance import dataset_identity
        from bench.data.sources import TOFU_REPO

        return {"dataset": dataset_identity(TOFU_REPO)}

    def forget_fraction(self, data) -> float | None:
        return TOFU_FRACTIONS.get(data.tofu_forget)


@KINDS.register("capitals")
class Capitals(DataKind):
    """The single-fact world-capitals demo (`bench.data.capitals`), with its own general corpus."""

    def splits(self, data):
        from bench.data.capitals import capitals_splits

        return capitals_splits(data.seed), {}

    def key_parts(self, data) -> dict:
        # Its records follow from the seed alone, which the generator's fingerprint covers.
        return {"general": fingerprint(generator_config(data))}


@KINDS.register("known_capitals")
class KnownCapitals(DataKind):
    """World capitals a pretrained model already knows (`bench.data.known_capitals`, RWKU's shape): forget,
    retain, neighbours (`retain_eval`), holdout, general questions and general text, all its own."""

    def splits(self, data):
        from bench.data.known_capitals import known_capitals_splits

        return known_capitals_splits(data.seed), {}

    def key_parts(self, data) -> dict:
        return {"records": _records_hash(self.splits(data))}


class _Generated(DataKind):
    """A kind whose records a generator of the harness makes from `data.seed` alone: text corpora and
    multiple choice."""

    attacks = TEXT_ATTACKS

    def generate(self, seed: int) -> dict[str, list[dict]]:
        raise NotImplementedError

    def records(self, data):
        return self.generate(data.seed), {}

    def key_parts(self, data) -> dict:
        return {"records": _records_hash(self.records(data))}


@KINDS.register("synthetic_news")
class SyntheticNews(_Generated):
    """A news-like text corpus in MUSE's shape (`bench.data.news`): forget, retain and holdout articles,
    knowledge questions on the forget and retain ones, and the forget articles for verbatim memorization."""

    metric_families = MUSE_METRICS

    def generate(self, seed: int):
        from bench.data.news import news_splits

        return news_splits(seed)


@KINDS.register("synthetic_hazard")
class SyntheticHazard(_Generated):
    """Multiple choice in WMDP's shape (`bench.data.hazard`): forget and retain corpora, forget items about
    their made-up agents and general items about the retain corpus."""

    metric_families = WMDP_METRICS

    def generate(self, seed: int):
        from bench.data.hazard import hazard_splits

        return hazard_splits(seed)


class _Published(DataKind):
    """A published benchmark read from the hub or a local snapshot (`bench.data.published`)."""

    sources = PUBLISHED_SOURCES
    attacks = TEXT_ATTACKS

    def read(self, sources: dict[str, str]) -> dict[str, list[dict]]:
        """The splits from the sources the `path_settings` name (setting -> source)."""
        raise NotImplementedError

    def records(self, data):
        sources = tuple((k, getattr(data, k)) for k in self.path_settings)
        return dict(_published_records(self.name, sources)), {}  # a copy: `splits` adds to it

    def check_sources(self, data) -> None:
        from bench.data.sources import DataSourceError

        named = {k: getattr(data, k) for k in self.path_settings}
        hub_ids = [k for k, v in named.items() if not hub.looks_like_path(v.rpartition(":")[0] or v)]
        if hub_ids:
            _check_hub(hub_ids[0], named[hub_ids[0]], [named[k] for k in hub_ids], self.sources)
        try:
            self.records(data)
        except DataSourceError as err:
            key = err.setting or self.path_settings[0]
            raise SourceUnavailable(key, err.problem, err.allowed or self.sources, getattr(data, key)) from None


@KINDS.register("muse")
class Muse(_Published):
    """MUSE (Shi et al. 2024): `data.forget` names the dataset, `muse-bench/MUSE-News` or a local snapshot."""

    path_settings = ("forget",)
    metric_families = MUSE_METRICS

    def check_config(self, data) -> None:
        if not data.forget:
            raise FieldError("forget", PUBLISHED_SOURCES, problem="kind muse needs `forget`: the MUSE dataset "
                             "(e.g. muse-bench/MUSE-News) or a local snapshot of it")

    def read(self, sources: dict[str, str]) -> dict[str, list[dict]]:
        from bench.data.published import muse_splits

        return muse_splits(sources["forget"])


@KINDS.register("wmdp")
class Wmdp(_Published):
    """WMDP (Li et al. 2024): `forget` its questions (cais/wmdp:wmdp-bio), `retain` the general questions
    (cais/mmlu:all), `forget_corpus` and `retain_corpus` the texts unlearning reads (cais/wmdp-corpora:...)."""

    path_settings = ("forget", "retain", "forget_corpus", "retain_corpus")
    metric_families = WMDP_METRICS

    def check_config(self, data) -> None:
        for key in self.path_settings:
            if not getattr(data, key):
                raise FieldError(key, PUBLISHED_SOURCES, problem=f"kind wmdp needs {', '.join(self.path_settings)}, "
                                 f"and {key} is empty")

    def read(self, sources: dict[str, str]) -> dict[str, list[dict]]:
        from bench.data.published import wmdp_splits

        return wmdp_splits(sources)


def _check_hub(key: str, value: str, hub_ids: list[str], sources: str) -> None:
    """Hub datasets need a reachable hub, or offline mode to read them from the local cache."""
    reachable, why = hub.hub_reachable()  # looked up on the module, so a test can stand in for the hub
    if not reachable and not hub.offline_mode():
        raise SourceUnavailable(key, f"hub dataset {', '.join(hub_ids)}: the hub cannot be used ({why}); where the "
                                "dataset is in the local Hugging Face cache, set HF_HUB_OFFLINE=1 to read it from there",
                                sources, value)


@functools.lru_cache(maxsize=8)
def _published_records(kind: str, sources: tuple[tuple[str, str], ...]) -> dict[str, list[dict]]:
    """Read once per process: a suite keys every trial by them (a hub download is cached by `datasets` besides)."""
    return KINDS.get(kind).read(dict(sources))


@functools.lru_cache(maxsize=8)
def tofu_records_hash(forget: str) -> str:
    """Read once per process: a suite keys every trial by it."""
    from bench.data.sources import tofu_splits

    return _records_hash(tofu_splits(forget))


def _records_hash(records) -> str:
    return hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()


def _named_sources(data) -> dict[str, str]:
    """Split -> source of a `files` config, for the splits it names (holdout is optional)."""
    return {split: getattr(data, split) for split in FILE_SPLITS if getattr(data, split)}


def file_splits(data) -> tuple[dict[str, list[dict]], dict]:
    """The user's splits with paraphrased/perturbed answers derived where missing, and what was derived."""
    splits, derived = {}, {}
    for split, source in _named_sources(data).items():
        splits[split], info = _split_records(data, split, source)
        if info:
            derived[split] = info
    return splits, derived


def _split_records(data, split: str, source: str) -> tuple[list[dict], dict]:
    """One split's records, and what was derived for them (empty: nothing); raises DataSourceError."""
    from bench.data.sources import DataSourceError, derive_alternates, load_records

    records = load_records(source, question_key=data.question_key, answer_key=data.answer_key, what=split)
    if split == "holdout":  # membership inference reads only the holdout's answers
        return records, {}
    records, info = derive_alternates(records, data.n_perturbed)
    records, info["alternate_answer"] = _with_refusals(records)
    counts = sorted({len(r["perturbed_answer"]) for r in records})
    if len(counts) > 1:  # the truth ratio averages over a fixed number of wrong answers per question
        raise DataSourceError(f"{split} data {source}: every record needs the same number of perturbed "
                              f"answers; found {', '.join(map(str, counts))}")
    derived = info["paraphrased_answer"] or info["perturbed_answer"] or info["alternate_answer"]
    return records, info if derived else {}


def _with_refusals(records: list[dict]) -> tuple[list[dict], int]:
    """Records given a refusal as `alternate_answer` where they have none (DPO prefers it to the true
    answer), taken in turn from REFUSALS; returns them and how many were filled."""
    missing = [i for i, r in enumerate(records) if not r.get("alternate_answer")]
    out = [dict(r) for r in records]
    for n, i in enumerate(missing):
        out[i]["alternate_answer"] = REFUSALS[n % len(REFUSALS)]
    return out, len(missing)
