"""Text corpora (MUSE's shape) and multiple choice (WMDP's shape) through the CLI and Ray: the synthetic kinds
and the published layouts read from local snapshots, with their metric families chosen by the data kind."""

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from test_golden import UPDATE_ENV, compare, failure_message

from bench.cli import main

pytestmark = pytest.mark.slow  # Ray and whole suites: minutes

FIXTURES = Path(__file__).parents[1] / "fixtures" / "published"
LM_EVAL_TASKS = Path(__file__).parents[1] / "fixtures" / "lm_eval"
GOLDEN = Path(__file__).parents[1] / "golden" / "corpora.json"  # refreshed with the miniature's (tests/test_golden.py)
PREPARE = "{pretrain_steps: 10, finetune_steps: 10, batch_size: 8, vocab_size: 400, warmup_steps: 2}"
COMMON = f"""
models: [tiny-llama]
prepare: {PREPARE}
unlearn: {{steps: 2, batch_size: 4}}
seeds: [0]
resources: {{cpu: 1, gpu: 0}}
attacks: []
methods:
  - name: rmu
    args: {{lr: 1e-3}}
"""
SUITES = {
    "news": "data: {kind: synthetic_news, seed: 0, n_general_authors: 40, general_fact_repeats: 1}\n"
            "eval: {max_new_tokens: 4, retain_questions: 10, verbatim_prefix_tokens: 8, verbatim_new_tokens: 8}",
    "muse": f"data: {{kind: muse, forget: {FIXTURES / 'muse_news'}, n_general_authors: 40, general_fact_repeats: 1}}\n"
            "eval: {max_new_tokens: 4, verbatim_new_tokens: 8}",
    # with lm-evaluation-harness on the local task: its columns are named at run time and written all the same
    "hazard": "data: {kind: synthetic_hazard, seed: 0, n_general_authors: 40, general_fact_repeats: 1}\n"
              f"eval: {{lm_eval_tasks: [bench_capitals_mc], lm_eval_include: ['{LM_EVAL_TASKS}'], lm_eval_limit: 4}}",
    "wmdp": f"data: {{kind: wmdp, forget: '{FIXTURES / 'wmdp'}:wmdp-bio', retain: '{FIXTURES / 'mmlu'}:all', "
            f"forget_corpus: '{FIXTURES / 'wmdp-corpora'}:bio-forget-corpus', "
            f"retain_corpus: '{FIXTURES / 'wmdp-corpora'}:bio-retain-corpus', n_general_authors: 40, "
            "general_fact_repeats: 1}",
}
MUSE_COLUMNS = ("forget_verbmem", "forget_knowmem", "retain_knowmem", "privleak", "mia_mink_auc", "forget_ppl")
WMDP_COLUMNS = ("forget_mc_acc", "forget_mc_acc_norm", "forget_mc_letter_acc", "general_mc_acc", "general_mc_acc_norm",
                "general_mc_letter_acc", "mc_chance")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpora")
    out = {}
    for name, data in SUITES.items():
        suite = root / f"{name}.yaml"
        suite.write_text(f"name: {name}\n{data}\n{COMMON}")
        assert main(["run", str(suite), "--cache-dir", str(root / "cache"), "--results-dir", str(root / "results")]) == 0
        out[name] = pd.read_parquet(root / "results" / name)
    yield out
    import ray

    ray.shutdown()


@pytest.mark.parametrize("name", ["news", "muse"])
def test_text_corpora_are_scored_as_muse_scores(runs, name):
    df = runs[name]
    assert sorted(df["method"]) == ["none", "retain", "rmu"] and (df["status"] == "ok").all(), df["error"].tolist()
    for column in MUSE_COLUMNS:
        assert df[column].map(math.isfinite).all(), column
    assert df["forget_quality"].isna().all()  # TOFU's families do not run on raw text
    assert df.loc[df["method"] == "retain", "privleak"].item() == 0.0  # the retain model against itself


@pytest.mark.parametrize("name", ["hazard", "wmdp"])
def test_multiple_choice_is_scored_against_chance(runs, name):
    df = runs[name]
    assert (df["status"] == "ok").all(), df["error"].tolist()
    for column in WMDP_COLUMNS:
        assert df[column].between(0, 1).all(), column
    assert (df["mc_chance"] == 0.25).all()
    assert not any(c in json.loads(u or "{}") for u in df["metrics_unavailable"] for c in WMDP_COLUMNS)


def test_lm_eval_scores_are_columns_of_every_row(runs):
    df = runs["hazard"]
    assert df["lmeval_bench_capitals_mc_acc"].between(0, 1).all() and (df["lmeval_s"] > 0).all()
    assert "lmeval_bench_capitals_mc_acc" not in runs["wmdp"]  # only where a suite asks for it


def test_golden_values_of_the_corpora_are_unchanged(runs):
    """Every MUSE and multiple-choice number of the four runs, as tests/test_golden.py compares the TOFU ones:
    a change that moves one names it."""
    from bench.core.numerics import kernel_profile

    if not kernel_profile()["pinned"]:
        pytest.skip("the golden values are of the pinned AVX2 kernels")
    measured = {f"{name}.{row['method']}.{column}": float(row[column]) for name, df in runs.items()
                for _, row in df.iterrows() for column in (*MUSE_COLUMNS, *WMDP_COLUMNS)
                if column in df and math.isfinite(row[column])}
    if os.environ.get(UPDATE_ENV) == "1":
        GOLDEN.write_text(json.dumps(measured, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"stored {len(measured)} golden values in {GOLDEN}")
    moved = compare(json.loads(GOLDEN.read_text()), measured)
    assert not moved, failure_message(moved, f"{UPDATE_ENV}=1 pytest tests/run/test_runner_corpora.py")
