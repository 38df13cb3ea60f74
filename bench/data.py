"""Dataset splits on disk: JSONL files with TOFU's column names, one file per split.

`question`, `answer`, `paraphrased_answer`, `perturbed_answer` (a list) and `alternate_answer`,
so tools written for TOFU read our data; biographies are {`author`, `text`} records.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .atomic import atomic_dir
from .data_synthetic import SyntheticConfig, fingerprint, generate


def synthetic_config(data) -> SyntheticConfig:
    """The generator's config from a suite's `data:` section (everything but `kind`)."""
    return SyntheticConfig(**{f.name: getattr(data, f.name) for f in dataclasses.fields(SyntheticConfig)})


def data_key(data) -> str:
    return fingerprint(synthetic_config(data))[:16]


def write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def prepare_data(data, cache: Path) -> Path:
    """Generates the dataset into `cache/data/<key>/` once; returns that directory."""
    out = cache / "data" / data_key(data)
    if not out.exists():
        splits = generate(synthetic_config(data))
        with atomic_dir(out) as tmp:
            for name, records in splits.items():
                write_jsonl(tmp / f"{name}.jsonl", records)
            (tmp / "config.json").write_text(json.dumps(vars(data), indent=2, sort_keys=True))
    return out


def read_splits(directory: Path, names: list[str] | None = None) -> dict[str, list[dict]]:
    """Reads split files (all `*.jsonl` when `names` is None)."""
    paths = sorted(directory.glob("*.jsonl")) if names is None else [directory / f"{n}.jsonl" for n in names]
    return {p.stem: read_jsonl(p) for p in paths}


def evenly_spaced(records: list, n: int) -> list:
    """`n` records spread evenly over the list (all of them when n <= 0 or n >= len)."""
    if n <= 0 or n >= len(records):
        return list(records)
    step = len(records) / n
    return [records[int(i * step)] for i in range(n)]
