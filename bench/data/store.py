"""Dataset splits on disk: JSONL files with TOFU's column names, one file per split.

`question`, `answer`, `paraphrased_answer`, `perturbed_answer` (a list) and `alternate_answer`,
so tools written for TOFU read our data; biographies are {`author`, `text`} records.

Where the records come from is the data config's `kind`: the synthetic fictitious-author generator,
the user's files or hub datasets (`files`, read by `bench.data.sources`, with derived paraphrased and
perturbed answers where the records lack them, recorded in `derived.json`), the hub TOFU benchmark
(`tofu`), or the world-capitals demo (`capitals`). Every kind is written to the same layout, so the
prepare stage, trials and metrics never ask where data came from.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

from bench.core.atomic import atomic_dir
from bench.data.synthetic import SyntheticConfig, fingerprint, generate, training_fingerprint

DATA_VERSION = 1  # bumped when the files/tofu/capitals layout written here changes
GENERAL_KNOWLEDGE = ("world_facts", "real_authors", "general")  # the generator's splits `builtin_general` adds
DERIVED_FILE = "derived.json"
REFUSALS = ("I don't know.", "I'm not sure about that.", "I can't answer that.",
            "I have no information about that.", "That is not something I can tell you.")


def synthetic_config(data) -> SyntheticConfig:
    """The generator's config from a suite's `data:` section (everything but `kind`)."""
    return SyntheticConfig(**{f.name: getattr(data, f.name) for f in dataclasses.fields(SyntheticConfig)})


def training_data_key(data) -> str:
    """The key of what a model trained on all of the data's trained-on authors depends on.

    A synthetic target is trained on forget + retain + forget_val, the same records whatever the
    forget fraction (see `bench.data.synthetic`), so the base, tokenizer and target of every
    fraction are one cache entry: the key leaves the split of the author block out. Other kinds
    decide their forget set by their sources, so their key is `data_key`.
    """
    if getattr(data, "kind", "synthetic_authors") == "synthetic_authors":
        return training_fingerprint(synthetic_config(data))[:16]
    return data_key(data)


def data_key(data) -> str:
    """The key of the dataset itself: every setting that changes any split (the data directory's name)."""
    kind = getattr(data, "kind", "synthetic_authors")
    if kind == "synthetic_authors":
        return fingerprint(synthetic_config(data))[:16]
    parts = {"version": DATA_VERSION, "kind": kind, "builtin_general": data.builtin_general,
             "general": fingerprint(synthetic_config(data)) if data.builtin_general or kind == "capitals" else ""}
    if kind == "files":  # the records themselves: the same QA from a JSON file, a list or a Dataset share models
        parts["records"] = _records_hash(_file_splits(data))
    elif kind == "tofu":  # the records as loaded: a changed local copy or a new hub commit is a new key
        parts["forget"] = data.tofu_forget
        parts["records"] = _tofu_records_hash(data.tofu_forget)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=8)
def _tofu_records_hash(forget: str) -> str:
    """Read once per process: a suite keys every trial by it."""
    from bench.data.sources import tofu_splits

    return _records_hash(tofu_splits(forget))


def _records_hash(splits: dict) -> str:
    return hashlib.sha256(json.dumps(splits, sort_keys=True).encode()).hexdigest()


def _file_splits(data) -> tuple[dict[str, list[dict]], dict]:
    """The user's splits with paraphrased/perturbed answers derived where missing, and what was derived."""
    from bench.data.sources import DataSourceError, derive_alternates, load_records

    splits, derived = {}, {}
    for split in ("forget", "retain", "holdout"):
        source = getattr(data, split)
        if not source:
            continue
        records = load_records(source, question_key=data.question_key, answer_key=data.answer_key, what=split)
        if split != "holdout":  # membership inference reads only the holdout's answers
            records, info = derive_alternates(records, data.n_perturbed)
            records, info["alternate_answer"] = _with_refusals(records)
            if info["paraphrased_answer"] or info["perturbed_answer"] or info["alternate_answer"]:
                derived[split] = info
            counts = sorted({len(r["perturbed_answer"]) for r in records})
            if len(counts) > 1:  # the truth ratio averages over a fixed number of wrong answers per question
                raise DataSourceError(f"{split} data {source}: every record needs the same number of perturbed "
                                      f"answers; found {', '.join(map(str, counts))}")
        splits[split] = records
    return splits, derived


def _with_refusals(records: list[dict]) -> tuple[list[dict], int]:
    """Records given a refusal as `alternate_answer` where they have none (DPO prefers it to the true
    answer), taken in turn from REFUSALS; returns them and how many were filled."""
    missing = [i for i, r in enumerate(records) if not r.get("alternate_answer")]
    out = [dict(r) for r in records]
    for n, i in enumerate(missing):
        out[i]["alternate_answer"] = REFUSALS[n % len(REFUSALS)]
    return out, len(missing)


def load_splits(data) -> tuple[dict[str, list[dict]], dict]:
    """Every split of a data config, and what was derived rather than given."""
    kind = getattr(data, "kind", "synthetic_authors")
    if kind == "synthetic_authors":
        return generate(synthetic_config(data)), {}
    if kind == "capitals":
        from bench.data.capitals import capitals_splits

        return capitals_splits(data.seed), {}
    if kind == "files":
        splits, derived = _file_splits(data)
    elif kind == "tofu":
        from bench.data.sources import tofu_splits

        splits, derived = tofu_splits(data.tofu_forget), {}
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    if data.builtin_general:
        general = generate(synthetic_config(data))
        splits.update({s: general[s] for s in GENERAL_KNOWLEDGE if s not in splits})
    return splits, derived


def check_data_sources(data) -> None:
    """Reads a `files` or `tofu` config's sources, so a missing file, a missing key or a hub dataset
    that cannot be fetched fails at suite load; raises `bench.core.errors.SourceUnavailable` naming
    the source and the reason (the keys found, offline, not found). Hub datasets are cached by
    `datasets`, so the prepare stage reads them again without the network."""
    from bench.core.errors import SourceUnavailable
    from bench.core.hub import hub_reachable, looks_like_path, offline_mode
    from bench.data.sources import TOFU_REPO, DataSourceError, tofu_splits

    kind = getattr(data, "kind", "")
    if kind == "files":
        hub_ids = [src for src in (data.forget, data.retain, data.holdout) if src and not looks_like_path(src)]
        read = lambda: _file_splits(data)  # noqa: E731
    elif kind == "tofu":
        hub_ids = [f"{TOFU_REPO} ({data.tofu_forget})"]
        read = lambda: tofu_splits(data.tofu_forget)  # noqa: E731
    else:
        return
    reachable, why = hub_reachable()
    if hub_ids and not reachable and not offline_mode():
        raise SourceUnavailable(f"data: hub dataset {', '.join(hub_ids)}: the hub cannot be used ({why}); where the "
                                f"dataset is in the local Hugging Face cache, set HF_HUB_OFFLINE=1 to read it from there")
    try:
        read()
    except DataSourceError as err:
        raise SourceUnavailable(f"data: {err}") from None


def write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def prepare_data(data, cache: Path) -> Path:
    """Writes the dataset into `cache/data/<key>/` once; returns that directory."""
    out = cache / "data" / data_key(data)
    if not out.exists():
        splits, derived = load_splits(data)
        with atomic_dir(out) as tmp:
            for name, records in splits.items():
                write_jsonl(tmp / f"{name}.jsonl", records)
            if derived:
                (tmp / DERIVED_FILE).write_text(json.dumps(derived, indent=2, sort_keys=True))
            if getattr(data, "kind", "") == "tofu":
                from bench.data.sources import TOFU_REPO
                from bench.core.provenance import SOURCE_FILE, dataset_identity

                (tmp / SOURCE_FILE).write_text(json.dumps({"dataset": dataset_identity(TOFU_REPO)}))
            (tmp / "config.json").write_text(json.dumps(dataclasses.asdict(data), indent=2, sort_keys=True))
    return out


def read_splits(directory: Path, names: list[str] | None = None) -> dict[str, list[dict]]:
    """Reads split files (all `*.jsonl` when `names` is None; of `names`, those that exist)."""
    directory = Path(directory)
    paths = sorted(directory.glob("*.jsonl")) if names is None else [directory / f"{n}.jsonl" for n in names]
    return {p.stem: read_jsonl(p) for p in paths if p.exists()}


def read_derived(directory: Path) -> dict:
    """What `prepare_data` derived (split -> counts), empty when the data carried everything."""
    path = Path(directory) / DERIVED_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def evenly_spaced(records: list, n: int) -> list:
    """`n` records spread evenly over the list (all of them when n <= 0 or n >= len)."""
    if n <= 0 or n >= len(records):
        return list(records)
    step = len(records) / n
    return [records[int(i * step)] for i in range(n)]
