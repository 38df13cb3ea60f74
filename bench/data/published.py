"""Readers of published unlearning benchmarks laid out as hub datasets with configs: MUSE (Shi et al. 2024,
`muse-bench/MUSE-News`, `muse-bench/MUSE-Books`) and WMDP (Li et al. 2024, `cais/wmdp`, its corpora
`cais/wmdp-corpora`, and MMLU `cais/mmlu` for general multiple choice).

A source is a hub id (`owner/name`, read with `datasets.load_dataset(id, config, split=...)`), or a local
directory in the layout a hub snapshot has: one folder per config holding its splits as
`<split>.jsonl`, `<split>.json`, `<split>.parquet` or `<split>-00000-of-00001.parquet` (what
`huggingface-cli download` writes). A source may name its config after a colon (`cais/wmdp:wmdp-bio`,
`./wmdp:wmdp-bio`) where a kind reads one config of it.

MUSE's configs: `raw` (splits forget, retain1, retain2, holdout: `text`), `verbmem` (forget: `prompt`,
`gt`), `knowmem` (forget_qa, retain_qa, or retain2_qa in older revisions and MUSE-Books: `question`,
`answer`), `privleak` (forget, retain, holdout: `text`). WMDP's questions and MMLU's: `question`,
`choices` (a list), `answer` (the index of the right choice), split `test`; the corpora: `text`, split
`train`.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.sources import DataSourceError, _read_source

_SUFFIXES = (".jsonl", ".json", ".parquet")


def read_rows(source: str, config: str, split: str, what: str) -> list[dict]:
    """The rows of one config's split of a hub dataset or a local snapshot of one (see the module docstring)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return _local_rows(path, config, split, what)
    if path.is_file():
        return _read_source(path, split, what)[0]
    if source.startswith(("/", ".", "~")):
        raise DataSourceError(f"{what} data: no such file or directory: {path}")
    return _read_source(f"{source}:{config}" if config else source, split, what)[0]


def _local_rows(root: Path, config: str, split: str, what: str) -> list[dict]:
    folder = root / config if config else root
    candidates = [folder / f"{split}{suffix}" for suffix in _SUFFIXES] + sorted(folder.glob(f"{split}-*.parquet"))
    found = [p for p in candidates if p.is_file()]
    if not found:
        have = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise DataSourceError(f"{what} data: {folder} has no split {split!r} ({', '.join(_SUFFIXES)} or "
                              f"{split}-*.parquet); found: {have or 'no such folder'}")
    if found[0].suffix == ".parquet":
        import pandas as pd

        return pd.concat([pd.read_parquet(p) for p in found if p.suffix == ".parquet"]).to_dict("records")
    return _read_source(found[0], split, what)[0]


def first_split(source: str, config: str, splits: tuple[str, ...], what: str) -> list[dict]:
    """The rows of the first of `splits` the source has (split names differ across revisions)."""
    errors = []
    for split in splits:
        try:
            return read_rows(source, config, split, what)
        except DataSourceError as err:
            errors.append(err.problem)
    raise DataSourceError(f"{what} data: {source} has none of the splits {', '.join(splits)} in config "
                          f"{config!r} ({errors[-1]})")


def _text(row: dict, key: str, where: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataSourceError(f"{where}: a row has no text under {key!r}; keys found: {sorted(row)}")
    return value


def raw_text(rows: list[dict], where: str) -> list[dict]:
    """Documents as raw text records: an empty question, the whole text the answer (every token trained)."""
    return [{"question": "", "answer": _text(r, "text", where)} for r in rows]


def muse_splits(source: str) -> dict[str, list[dict]]:
    """MUSE's splits under the harness's names: forget and retain (raw/forget, raw/retain1) to unlearn on;
    holdout (privleak/holdout), the non-members; forget_qa and retain_qa (knowmem); forget_verbmem
    (verbmem: `prompt`, `continuation`)."""
    where = f"MUSE data {source}"
    qa = {name: [{"question": _text(r, "question", where), "answer": _text(r, "answer", where)}
                 for r in first_split(source, "knowmem", splits, name)]
          for name, splits in (("forget_qa", ("forget_qa",)), ("retain_qa", ("retain_qa", "retain2_qa")))}
    verbmem = [{"prompt": _text(r, "prompt", where), "continuation": _text(r, "gt", where)}
               for r in read_rows(source, "verbmem", "forget", "forget_verbmem")]
    return {"forget": raw_text(read_rows(source, "raw", "forget", "forget"), where),
            "retain": raw_text(first_split(source, "raw", ("retain1", "retain2", "retain"), "retain"), where),
            "holdout": raw_text(read_rows(source, "privleak", "holdout", "holdout"), where),
            **qa, "forget_verbmem": verbmem}


def multiple_choice(rows: list[dict], where: str) -> list[dict]:
    """Items with `question`, `choices` (a list of at least two strings) and `answer` (the right one's index)."""
    items = []
    for i, r in enumerate(rows):
        choices, answer = r.get("choices"), r.get("answer")
        if choices is not None and not isinstance(choices, (list, tuple)):
            choices = list(choices)  # parquet gives numpy arrays
        if not choices or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise DataSourceError(f"{where}: item {i} needs `choices`, a list of at least two strings; got {choices!r}")
        if isinstance(answer, bool) or not isinstance(answer, (int,)) and not str(answer).isdigit():
            raise DataSourceError(f"{where}: item {i} needs `answer`, the index of the right choice; got {answer!r}")
        if not 0 <= int(answer) < len(choices):
            raise DataSourceError(f"{where}: item {i}: answer {answer} is not an index of its {len(choices)} choices")
        items.append({"question": _text(r, "question", where), "choices": list(choices), "answer": int(answer)})
    return items


def _with_config(source: str, default: str) -> tuple[str, str]:
    """`source:config` split at its last colon (a Windows drive letter is no config), else the default config."""
    head, sep, config = source.rpartition(":")
    return (head, config) if sep and head and "/" not in config and len(head) > 1 else (source, default)


# WMDP's data settings -> (split written, what it holds, the split read from the source).
WMDP_SOURCES = {"forget": ("forget_mc", "questions", "test"), "retain": ("general_mc", "questions", "test"),
                "forget_corpus": ("forget", "corpus", "train"), "retain_corpus": ("retain", "corpus", "train")}


def wmdp_splits(sources: dict[str, str]) -> dict[str, list[dict]]:
    """WMDP's splits under the harness's names, from the data settings `sources` (see WMDP_SOURCES): `forget`
    the hazard questions (e.g. `cais/wmdp:wmdp-bio`), `retain` the general ones (e.g. `cais/mmlu:all`), split
    test; `forget_corpus` and `retain_corpus` the texts (e.g. `cais/wmdp-corpora:bio-forget-corpus`), split
    train, as raw text. A DataSourceError names the setting whose source failed (`setting`)."""
    out = {}
    for setting, (split, holds, read) in WMDP_SOURCES.items():
        source = sources[setting]
        where, config = _with_config(source, "")
        try:
            rows = read_rows(where, config, read, split)
            out[split] = (multiple_choice if holds == "questions" else raw_text)(rows, f"{split} data {source}")
        except DataSourceError as err:
            raise DataSourceError(err.problem, allowed=err.allowed, setting=setting) from None
    return out
