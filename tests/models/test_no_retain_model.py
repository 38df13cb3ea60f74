"""`prepare.retain_model: none` (RWKU's shape: the model knew the forget set before anyone could leave it
out): nothing is trained, no `retain` baseline row, and the metrics that compare with a retain model are
NaN with the reason, while keyword accuracy and the perplexity of general text are measured."""

import json
import math

import pytest
import yaml

from bench.config.suite import parse_suite
from bench.data.known_capitals import known_capitals_splits
from bench.models.baseline_stats import load_baseline_stats
from bench.models.prepare import artifact_dirs, prepare_model
from bench.models.zoo import build_model, train_tokenizer
from bench.run.trial import run_trial


@pytest.fixture(scope="module")
def local_model(tmp_path_factory):
    """A tiny save_pretrained model standing in for a pretrained one (its answers are noise: the test
    is about what is measured, not how well)."""
    root = tmp_path_factory.mktemp("no_retain") / "model"
    texts = [r.get("answer", "") for records in known_capitals_splits(0).values() for r in records] * 2
    tok = train_tokenizer(texts, 300)
    build_model("tiny-gpt2", tok, seed=0).save_pretrained(root)
    tok.save_pretrained(root)
    return root


def _suite(model, models=None):
    return parse_suite(yaml.safe_load(f"""
name: no_retain
data: {{kind: known_capitals}}
models: {json.dumps(models or [str(model)])}
prepare: {{target: as_is, retain_model: none, max_length: 64}}
unlearn: {{steps: 2, batch_size: 4}}
eval: {{max_new_tokens: 6, retain_questions: 0}}
methods: [grad_diff]
resources: {{cpu: 1, gpu: 0}}
attacks: []
"""), "no_retain.yaml")


def test_no_retain_model_trains_nothing_and_drops_the_retain_baseline(local_model, tmp_path):
    suite = _suite(local_model)
    assert [s.method for s in suite.baseline_trials()] == ["none"]
    assert "retain" not in artifact_dirs(str(local_model), suite.data, suite.prepare, tmp_path)
    prepared = prepare_model(str(local_model), suite.data, suite.prepare, suite.eval, tmp_path, log=lambda _m: None)
    assert prepared.target_dir == str(local_model) and prepared.retain_dir == ""
    assert prepared.retain_source.startswith("none:")
    assert not (tmp_path / "models").exists()  # nothing was trained
    stats = load_baseline_stats(prepared.baseline_stats)
    assert stats["target_forget_prob"] and not any(k.startswith("retain_") for k in stats)
    assert prepared.base_dir == "" and "base_mia_loss" not in stats  # used as it is: fine-tuned from nothing known

    row, = run_trial(suite.trials()[0], prepared)
    assert row["status"] == "ok", row.get("error")
    unavailable = json.loads(row["metrics_unavailable"])
    for column in ("forget_quality", "privleak"):
        assert math.isnan(row[column]) and "prepare.retain_model: none" in unavailable[column]
    assert math.isnan(row["mia_ref_auc"]) and "prepare.target: as_is" in unavailable["mia_ref_auc"]
    for column in ("forget_keyword_acc", "retain_keyword_acc", "general_text_ppl", "model_utility"):
        assert math.isfinite(row[column]), column
    assert json.loads(row["metric_notes"])["retain_model"].startswith("none:")


def test_no_retain_model_holds_for_several_models(local_model):
    """One retain model serves one model; `none` is no model, so a suite of several may say it."""
    assert len(_suite(local_model, [str(local_model), str(local_model) + "-copy"]).models) == 2
