"""The zoo and the hub-name path: a model written by save_pretrained is prepared and unlearned like any other."""

import dataclasses
import math

import pytest
import torch

from bench.data.store import prepare_data, read_splits
from bench.models.zoo import ZOO, build_model, count_parameters, load_model, load_tokenizer, train_tokenizer
from bench.models.prepare import artifact_dirs, find_prepared, prepare_model
from bench.models.baseline_stats import compute_baseline_stats, load_baseline_stats
from bench.config.suite import DataConfig, PrepareConfig, TrialSpec, UnlearnConfig
from bench.run.trial import run_trial
from methods import METHODS
from metrics import EvalConfig

DATA = DataConfig(n_authors=6, forget_fraction=0.34, n_holdout_authors=2, n_general_authors=10, general_fact_repeats=1)
PREPARE = PrepareConfig(finetune_steps=4, batch_size=8, warmup_steps=1)
EVAL = EvalConfig(max_new_tokens=6, retain_questions=10)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_models_build_with_special_tokens(name):
    tok = train_tokenizer(["Question: Who wrote it?\nAnswer: Ana Lind wrote it."] * 10, 300)
    model = build_model(name, tok, seed=0)
    assert model.config.eos_token_id == tok.eos_token_id and model.config.pad_token_id == tok.pad_token_id
    assert 1e5 < count_parameters(model) < 2e6
    assert torch.equal(build_model(name, tok, seed=0).lm_head.weight, model.lm_head.weight)  # seeded init


@pytest.fixture(scope="module")
def local_prepared(tmp_path_factory):
    """A model written by save_pretrained into a temp dir, prepared like a hub model."""
    root = tmp_path_factory.mktemp("local")
    cache = root / "cache"
    splits = read_splits(prepare_data(DATA, cache))
    texts = [r["question"] + " " + r["answer"] for s in ("general", "forget", "retain") for r in splits[s]]
    tok = train_tokenizer(texts, 400)
    local = root / "my-model"
    build_model("tiny-gpt2", tok, seed=1).save_pretrained(local)
    tok.save_pretrained(local)
    prepared = prepare_model(str(local), DATA, PREPARE, EVAL, cache, log=lambda _m: None)
    return local, cache, splits, tok, dataclasses.replace(prepared, baseline_stats=str(compute_baseline_stats(prepared, EVAL, cache)))


def test_local_save_pretrained_model_is_prepared_and_unlearned(local_prepared):
    local, cache, splits, tok, prepared = local_prepared
    assert "base" not in artifact_dirs(str(local), DATA, PREPARE, cache)  # a hub/path model is its own base
    assert find_prepared(str(local), DATA, PREPARE, cache) == dataclasses.replace(prepared, baseline_stats="")
    target = load_model(prepared.target_dir)
    assert target.config.model_type == "gpt2" and load_tokenizer(prepared.target_dir).eos_token_id == tok.eos_token_id
    baselines = load_baseline_stats(prepared.baseline_stats)
    assert len(baselines["retain_forget_truth_ratio"]) == len(splits["forget"])
    assert 0 <= baselines["retain_mia_mink_auc"] <= 1

    spec = TrialSpec(str(local), "grad_ascent", {}, UnlearnConfig(steps=2, batch_size=4), 0, DATA, PREPARE, EVAL, 1)
    row, = run_trial(spec, prepared)
    assert row["status"] == "ok", row["error"]
    assert row["steps_done"] == 2 and 0 <= row["forget_quality"] <= 1 and math.isfinite(row["privleak"])
    again, = run_trial(dataclasses.replace(spec), prepared)
    assert again["forget_quality"] == row["forget_quality"] and again["final_loss"] == row["final_loss"]  # same seed


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_runs_a_trial_at_its_defaults(local_prepared, method):
    """Each registered method unlearns two steps through the real loop and evaluates, at default arguments."""
    *_, prepared = local_prepared
    spec = METHODS.get(method)
    args = dataclasses.asdict(spec.make_args({}))
    row, = run_trial(TrialSpec("local", method, args, UnlearnConfig(steps=2, batch_size=4), 0, DATA, PREPARE, EVAL,
                              spec.version), prepared)
    assert row["status"] == "ok", row["error"]
    assert row["steps_done"] == 2 and math.isfinite(row["final_loss"]) and math.isfinite(row["model_utility"])
