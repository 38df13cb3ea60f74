"""Dataset splits on disk: JSONL files with TOFU's column names, one file per split.

`question`, `answer`, `paraphrased_answer`, `perturbed_answer` (a list) and `alternate_answer`,
so tools written for TOFU read our data; biographies are {`author`, `text`} records.

Where the records come from is the data config's `kind` (`bench.data.kinds`: the synthetic
fictitious-author generator, the user's files or hub datasets, the hub TOFU benchmark, the
world-capitals demo, and any kind registered there). Every kind is written to the same layout, so the
prepare stage, trials and metrics never ask where data came from.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench.core.atomic import atomic_dir
from bench.data.kinds import data_kind

DERIVED_FILE = "derived.json"


def training_data_key(data) -> str:
    """The key of what a model trained on all of the data's trained-on records depends on.

    A synthetic target is trained on forget + retain + forget_val, the same records whatever the
    forget fraction (see `bench.data.synthetic`), so the base, tokenizer and target of every
    fraction are one cache entry: the key leaves the split of the author block out. Other kinds
    decide their forget set by their sources, so their key is `data_key`.
    """
    return data_kind(data).training_key(data)


def data_key(data) -> str:
    """The key of the dataset itself: every setting that changes any split (the data directory's name)."""
    return data_kind(data).data_key(data)


def load_splits(data) -> tuple[dict[str, list[dict]], dict]:
    """Every split of a data config, and what was derived rather than given."""
    return data_kind(data).splits(data)


def check_data_sources(data) -> None:
    """Reads the config's sources (where its kind has any), so a missing file, a missing key or a hub
    dataset that cannot be fetched fails at suite load; raises `bench.core.errors.SourceUnavailable`
    keyed by the `data:` setting it is about (`forget`, `question_key`), with the reason (the keys
    found, offline, not found). Hub datasets are cached by `datasets`, so the prepare stage reads them
    again without the network."""
    data_kind(data).check_sources(data)


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
            identity = data_kind(data).source_identity(data)
            if identity is not None:
                from bench.core.provenance import SOURCE_FILE

                (tmp / SOURCE_FILE).write_text(json.dumps(identity))
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
