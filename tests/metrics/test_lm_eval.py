"""General ability through lm-evaluation-harness: the settings, the flat columns, the local fixture task
(tests/fixtures/lm_eval/) on the real SmolLM2 and, through `evaluate_model`, on a tiny zoo model."""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import THREE_QA

from bench.core.errors import FieldError
from metrics.context import EvalConfig
from metrics.lm_eval import lm_eval_columns

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lm_eval"
TASK = "bench_capitals_mc"


def test_settings_become_tuples_folders_absolute_and_bad_values_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = EvalConfig(lm_eval_tasks=[TASK, "arc_easy"], lm_eval_include=["tasks", "~/more"], lm_eval_limit=5)
    assert cfg.lm_eval_tasks == (TASK, "arc_easy") and cfg.lm_eval_limit == 5
    assert cfg.lm_eval_include == (str(tmp_path / "tasks"), os.path.expanduser("~/more"))
    monkeypatch.chdir(tmp_path.parent)  # rebuilt elsewhere (a trial's worker), absolute folders stay as they are
    assert EvalConfig(lm_eval_include=cfg.lm_eval_include).lm_eval_include == cfg.lm_eval_include
    assert EvalConfig().lm_eval_tasks == () and EvalConfig().lm_eval_limit == 0  # off by default
    for bad in ({"lm_eval_tasks": "arc_easy"}, {"lm_eval_tasks": [1]}, {"lm_eval_include": [""]},
                {"lm_eval_limit": -1}):
        with pytest.raises(FieldError, match=f"^{next(iter(bad))}: "):
            EvalConfig(**bad)


def test_results_flatten_to_prefixed_columns_without_the_default_filter():
    """lm-eval keys are `<metric>,<filter>`; "none" is dropped, another filter appended, stderr kept last,
    an uncomputed stderr ("N/A") NaN, and the non-metric entries (alias, name, sample_len) left out."""
    results = {
        "mytask": {"alias": "mytask", "name": "mytask", "sample_len": 20, "acc,none": 0.75, "acc_stderr,none": 0.1,
                   "acc_norm,none": 0.5, "acc_norm_stderr,none": "N/A"},
        "gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": 0.05},
    }
    columns = lm_eval_columns(results)
    assert set(columns) == {"lmeval_mytask_acc", "lmeval_mytask_acc_stderr", "lmeval_mytask_acc_norm",
                            "lmeval_mytask_acc_norm_stderr", "lmeval_gsm8k_exact_match_strict_match",
                            "lmeval_gsm8k_exact_match_strict_match_stderr"}
    assert columns["lmeval_mytask_acc"] == 0.75 and columns["lmeval_mytask_acc_stderr"] == 0.1
    assert math.isnan(columns["lmeval_mytask_acc_norm_stderr"])
    assert columns["lmeval_gsm8k_exact_match_strict_match"] == 0.25


@pytest.mark.parametrize("checkpoint, checkpoint_metrics", [(False, ()), (True, ()), (True, ("probability",))])
def test_only_the_final_evaluation_runs_the_tasks(monkeypatch, checkpoint, checkpoint_metrics):
    """`evaluate_trial` hands `evaluate_model` the tasks at the last step and none at a checkpoint
    (with `eval.checkpoint_metrics` or without)."""
    import bench.run.evaluation as evaluation
    import bench.run.rows as rows

    seen = []

    def fake_evaluate_model(model, tokenizer, eval_cfg, splits, baselines):
        seen.append(eval_cfg)
        return evaluation.Evaluation({"eval_s": 0.0, "metrics_unavailable": None, "metric_notes": None}, None)

    monkeypatch.setattr(evaluation, "evaluate_model", fake_evaluate_model)
    monkeypatch.setattr(evaluation, "validation_metrics", lambda ctx, baselines: ({}, {}))
    monkeypatch.setattr(rows, "provenance_notes", lambda prepared: {})
    spec = SimpleNamespace(eval=EvalConfig(metrics=("probability", "rouge"), checkpoint_metrics=checkpoint_metrics,
                                           lm_eval_tasks=(TASK,)))
    evaluation.evaluate_trial(None, None, spec, None, {}, baselines={}, checkpoint=checkpoint)
    assert seen[0].lm_eval_tasks == (() if checkpoint else (TASK,))


@pytest.mark.slow
@pytest.mark.real_model
def test_the_real_model_knows_the_fixture_capitals(tmp_path, monkeypatch):
    """SmolLM2-135M-Instruct, no chat template, 20 capitals with four choices: well above chance (0.25).
    The run starts in another working directory: the task's relative data file is found next to its YAML."""
    pytest.importorskip("lm_eval")
    from bench.models.zoo import load_model, load_tokenizer
    from metrics.lm_eval import run_lm_eval

    model, tokenizer = load_model("smollm2-135m"), load_tokenizer("smollm2-135m")
    monkeypatch.chdir(tmp_path)
    columns = run_lm_eval(model, tokenizer, EvalConfig(lm_eval_tasks=[TASK], lm_eval_include=[str(FIXTURE)]))
    acc = columns[f"lmeval_{TASK}_acc"]
    assert 0.25 < acc <= 1.0, columns  # 1.0 with the lock's releases
    assert 0 <= columns[f"lmeval_{TASK}_acc_norm"] <= 1


@pytest.mark.slow
def test_evaluate_model_adds_the_lm_eval_columns_at_the_final_evaluation_only():
    """A tiny untrained zoo model: its accuracy is anything in [0, 1], but the columns and their seconds
    are there, `lm_eval_limit` cuts the documents, and a checkpoint's settings switch lm-eval off."""
    pytest.importorskip("lm_eval")
    import dataclasses

    from bench.models.zoo import build_model, train_tokenizer
    from bench.run.evaluation import evaluate_model

    texts = [r[k] for r in THREE_QA for k in ("question", "answer")] * 20 + ["The capital of France is Paris."] * 20
    tokenizer = train_tokenizer(texts, 320)
    model = build_model("tiny-llama", tokenizer, seed=0).eval()
    cfg = EvalConfig(metrics=("probability",), lm_eval_tasks=(TASK,), lm_eval_include=(str(FIXTURE),), lm_eval_limit=8)
    columns = evaluate_model(model, tokenizer, cfg, {"forget": THREE_QA, "retain": THREE_QA}, {}).columns
    assert 0 <= columns[f"lmeval_{TASK}_acc"] <= 1 and 0 <= columns[f"lmeval_{TASK}_acc_norm"] <= 1
    assert columns["lmeval_s"] > 0 and "forget_prob" in columns
    off = evaluate_model(model, tokenizer, dataclasses.replace(cfg, lm_eval_tasks=()), {"forget": THREE_QA}, {}).columns
    assert not any(c.startswith("lmeval_") for c in off)
