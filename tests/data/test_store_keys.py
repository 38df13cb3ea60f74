"""The prepared data's and models' cache keys, pinned for every data kind.

A key that moves makes every cached dataset and model unreachable (and rebuilt); these strings were
computed before the data kinds moved into their registry and must never change without a version bump.
"""

import json

import datasets
import pytest

from bench.config.schema import DataConfig
from bench.data import store
from bench.data.kinds import tofu_records_hash

TOFU_HASH = tofu_records_hash
SMALL = {"n_authors": 10, "forget_fraction": 0.2, "n_holdout_authors": 2, "n_general_authors": 40}
RECORDS = [{"q": f"Question {i}?", "a": f"Answer number {i}."} for i in range(4)]


def _tofu_loader(repo, config, split="train"):
    """Tiny stand-ins for the hub TOFU configs (same columns)."""
    qa = [{"question": f"{config} q{i}?", "answer": f"{config} a{i}."} for i in range(3)]
    if config.endswith("_perturbed"):
        qa = [{**r, "paraphrased_answer": r["answer"] + " (p)", "perturbed_answer": ["w1.", "w2."]} for r in qa]
    return datasets.Dataset.from_list(qa)


@pytest.fixture
def files(tmp_path):
    """Two split files with fixed records (a key hashes the records, never the paths)."""
    (tmp_path / "f.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:2]))
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS[2:]))
    return {"forget": str(tmp_path / "f.jsonl"), "retain": str(tmp_path / "r.jsonl"), "question_key": "q",
            "answer_key": "a"}


def test_synthetic_keys_are_pinned():
    data = DataConfig(**SMALL)
    assert (store.data_key(data), store.training_data_key(data)) == ("191dae7eeedda363", "cd0ae910dc2ff9da")


def test_capitals_keys_are_pinned():
    data = DataConfig(kind="capitals", **SMALL)
    assert (store.data_key(data), store.training_data_key(data)) == ("ea1578e2892d9691", "ea1578e2892d9691")


def test_files_keys_are_pinned(files):
    with_general = DataConfig(kind="files", **files, **SMALL)
    alone = DataConfig(kind="files", **files, **SMALL, builtin_general=False)
    assert (store.data_key(with_general), store.training_data_key(with_general)) == ("a4b67dfe40115f68", "a4b67dfe40115f68")
    assert store.data_key(alone) == "ec79c20795f88632"


def test_tofu_keys_are_pinned(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", _tofu_loader)
    data = DataConfig(kind="tofu", forget="forget05", builtin_general=False, **SMALL)
    TOFU_HASH.cache_clear()  # another test may have read other stand-ins for the same split
    try:
        assert (store.data_key(data), store.training_data_key(data)) == ("1993ff721ae51e37", "1993ff721ae51e37")
    finally:
        TOFU_HASH.cache_clear()
