"""Forget fractions share a tokenizer, base and target, and each gets its own retain model.

The synthetic target trains on forget + retain + forget_val, the same records for every forget
fraction, so a suite gridding over `forget_fraction` prepares one target and one retain model per
fraction. 10 authors with 2 forget_val authors: 1 forget author at fraction 0.1, 2 at 0.2.
"""

import dataclasses
from pathlib import Path

import pytest

from bench.core.names import RETAIN_EVAL_SPLIT
from bench.run.evaluation import EVAL_SPLITS, evaluate_model, validation_metrics
from bench.data.store import data_key, prepare_data, read_splits, training_data_key
from bench.models.zoo import load_model, load_tokenizer
from bench.models.prepare import _target_records, artifact_dirs, find_prepared, prepare_model, prepare_tokenizer, target_built
from bench.models.baseline_stats import load_baseline_stats
from bench.config.suite import DataConfig, PrepareConfig
from metrics import EvalConfig

MODEL = "tiny-llama"
DATA = {f: DataConfig(n_authors=10, forget_fraction=f, forget_val_fraction=0.2, n_holdout_authors=2,
                      n_general_authors=40, general_fact_repeats=2) for f in (0.1, 0.2)}
PREPARE = PrepareConfig(pretrain_steps=15, finetune_steps=15, batch_size=16, vocab_size=400, warmup_steps=3)
EVAL = EvalConfig(max_new_tokens=8, retain_questions=20)


def test_keys_share_base_and_target_but_not_retain(tmp_path):
    dirs = {f: artifact_dirs(MODEL, data, PREPARE, tmp_path) for f, data in DATA.items()}
    assert dirs[0.1]["base"] == dirs[0.2]["base"]
    assert dirs[0.1]["target"] == dirs[0.2]["target"]
    assert dirs[0.1]["retain"] != dirs[0.2]["retain"]
    assert data_key(DATA[0.1]) != data_key(DATA[0.2])  # each fraction has its own data directory
    assert training_data_key(DATA[0.1]) == training_data_key(DATA[0.2])
    other_seed = artifact_dirs(MODEL, dataclasses.replace(DATA[0.1], seed=1), PREPARE, tmp_path)
    assert other_seed["target"] != dirs[0.1]["target"] and other_seed["base"] != dirs[0.1]["base"]


def test_prompt_settings_key_hub_and_local_models_and_leave_zoo_keys_as_they_were(tmp_path):
    """Zoo models never had a chat template: their keys (pinned here as computed before prompt formats
    existed) stay; a local or hub model's tokenizer may have one, so its models are keyed by the format."""
    dirs = artifact_dirs("tiny-llama", DataConfig(), PrepareConfig(), Path("/c"))
    assert {k: v.name for k, v in dirs.items()} == {"target": "tiny-llama-target-0da607c7553e4eaf",
                                                     "retain": "tiny-llama-retain-b2ff3b527c6eaf27",
                                                     "base": "tiny-llama-base-809ce252c7afa86f"}
    local = tmp_path / "model"
    local.mkdir()
    (local / "config.json").write_text("{}")
    keys = {fmt: artifact_dirs(str(local), DataConfig(), PrepareConfig(prompt=fmt), Path("/c"))["target"]
            for fmt in ("auto", "plain", "chat")}
    assert len(set(keys.values())) == 3


def test_other_data_kinds_keep_the_full_data_key():
    capitals = dataclasses.replace(DATA[0.1], kind="capitals")
    assert training_data_key(capitals) == data_key(capitals)


def test_target_records_and_tokenizer_are_the_same_across_fractions(tmp_path):
    data_dirs = {f: prepare_data(data, tmp_path) for f, data in DATA.items()}
    splits = {f: read_splits(d) for f, d in data_dirs.items()}
    assert splits[0.1]["forget"] != splits[0.2]["forget"]
    assert _target_records(splits[0.1]) == _target_records(splits[0.2])
    tokenizers = {f: prepare_tokenizer(d, PREPARE, tmp_path) for f, d in data_dirs.items()}
    assert tokenizers[0.1].get_vocab() == tokenizers[0.2].get_vocab()
    assert len(list((tmp_path / "tokenizers").iterdir())) == 1


@pytest.fixture(scope="module")
def two_fractions(tmp_path_factory):
    """Prepares fraction 0.1, then 0.2; returns the cache, both Prepared and the second one's log."""
    cache = tmp_path_factory.mktemp("cache")
    first = prepare_model(MODEL, DATA[0.1], PREPARE, EVAL, cache, log=lambda _m: None)
    built_before = target_built(MODEL, DATA[0.2], PREPARE, cache), find_prepared(MODEL, DATA[0.2], PREPARE, cache)
    log = []
    second = prepare_model(MODEL, DATA[0.2], PREPARE, EVAL, cache, log=log.append)
    return cache, first, second, built_before, log


def test_second_fraction_builds_only_its_retain_model(two_fractions):
    cache, first, second, (target_was_built, found), log = two_fractions
    assert target_was_built and found is None  # the target is shared, the 0.2 retain model not yet built
    assert second.target_dir == first.target_dir and second.retain_dir != first.retain_dir
    assert second.data_dir != first.data_dir
    assert not any("pre-training" in line or "target model" in line for line in log), log
    assert sum("fine-tuning the retain model" in line for line in log) == 1, log
    assert len(list((cache / "models").iterdir())) == 4  # base, target, two retain models
    vocabs = [load_tokenizer(d).get_vocab() for d in (first.target_dir, first.retain_dir, second.retain_dir)]
    assert vocabs[0] == vocabs[1] == vocabs[2]


def test_references_hold_the_forget_val_truth_ratios_a_trial_computes(two_fractions, monkeypatch):
    """Scoring forget_val as a trial does (in its evaluation context, after the metric families) on the
    retain model itself must hand the KS test exactly the baseline ratios: the same numbers, not
    merely close ones."""
    import metrics.tofu

    _, first, second, *_ = two_fractions
    for prepared in (first, second):
        baselines = load_baseline_stats(prepared.baseline_stats)
        splits = read_splits(prepared.data_dir, [*EVAL_SPLITS, RETAIN_EVAL_SPLIT, "forget_val"])
        forget_val = splits["forget_val"]
        assert len(forget_val) == 20  # 2 authors x 10 questions
        ratios = baselines["retain_forget_val_truth_ratio"]
        assert len(ratios) == len(forget_val)
        seen = []
        monkeypatch.setattr(metrics.tofu, "ks_forget_quality", lambda mine, ref: seen.append((mine, ref)) or 1.0)
        retain = load_model(prepared.retain_dir)
        evaluation = evaluate_model(retain, load_tokenizer(prepared.retain_dir), EVAL, splits, baselines)
        seen.clear()  # the forget split's forget quality
        validation_metrics(evaluation.context, baselines)
        (mine, ref), = seen
        assert mine.tolist() == ratios and ref.tolist() == ratios
    assert first.baseline_stats != second.baseline_stats


def test_references_omit_forget_val_without_it(two_fractions):
    """With forget_val_fraction 0 there is no forget_val split, and no key for it."""
    cache, *_ = two_fractions
    data = dataclasses.replace(DATA[0.1], forget_val_fraction=0)
    prepared = prepare_model(MODEL, data, PREPARE, EVAL, cache, log=lambda _m: None)
    assert "retain_forget_val_truth_ratio" not in load_baseline_stats(prepared.baseline_stats)
    assert "retain_forget_truth_ratio" in load_baseline_stats(prepared.baseline_stats)
