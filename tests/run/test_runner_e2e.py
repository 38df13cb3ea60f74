"""A miniature suite through the CLI and Ray: rows, baselines, leaderboard, and a resume that adds nothing."""

import json
import math

import pandas as pd
import pytest

from helpers import mini_suite

from bench.cli import main

pytestmark = pytest.mark.slow  # Ray and whole suites: minutes

MINI_SUITE = mini_suite("mini", "  - name: grad_diff\n    grid: {lr: [1e-4, 3e-4]}",
                        extra='probes: ["Where was Ana Velmora born?", "What is the capital of France?"]',
                        attacks="[{name: relearn, steps: 3}, {name: quantize, bits: 4}, paraphrase]")


@pytest.fixture(scope="module")
def mini_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    suite = root / "mini.yaml"
    suite.write_text(MINI_SUITE)
    args = [str(suite), "--cache-dir", str(root / "cache"), "--results-dir", str(root / "results")]
    assert main(["run", *args]) == 0
    yield root, args
    import ray

    ray.shutdown()


def test_rows_one_per_trial_plus_references(mini_run):
    root, _ = mini_run
    df = pd.read_parquet(root / "results" / "mini")  # _leaderboard.md sits in the same directory
    assert len(df) == 4 and df["trial_id"].is_unique
    assert sorted(df["method"]) == ["grad_diff", "grad_diff", "none", "retain"]
    assert (df["status"] == "ok").all(), df["error"].dropna().tolist()
    assert sorted(df["hp.lr"].dropna()) == [1e-4, 3e-4]
    from metrics import metric_columns

    # Synthetic authors have no keywords and no general text (data kind known_capitals has them): those three
    # columns are NaN with the reason, every other metric is measured.
    elsewhere = {"forget_keyword_acc", "retain_keyword_acc", "general_text_ppl"}
    for col in [c for c in metric_columns() if c not in elsewhere] + ["train_s", "eval_s", "peak_mem_mb",
                                                                       "eval_forward_passes"]:
        assert df[col].map(math.isfinite).all(), col
    assert all(set(json.loads(u)) == elsewhere for u in df["metrics_unavailable"])
    assert df[sorted(elsewhere)].isna().all().all()
    retain = df[df["method"] == "retain"].iloc[0]
    assert retain["forget_quality"] == pytest.approx(1.0)  # the retain model against itself
    assert retain["privleak"] == 0.0  # the same numbers as its baseline statistics, bit for bit
    target = df[df["method"] == "none"].iloc[0]
    probes = json.loads(target["probe_generations"])
    assert [p["prompt"] for p in probes] == ["Where was Ana Velmora born?", "What is the capital of France?"]
    assert all(p["before"] == p["after"] for p in probes)  # the target is the "before" model
    assert all(len(json.loads(p)) == 2 for p in df["probe_generations"])
    trained = df[df["method"] == "grad_diff"]
    assert (trained["steps_done"] == 3).all() and (trained["tokens"] > 0).all()
    out = root / "results" / "mini"
    settings, leaderboard = (out / "_settings.md").read_text(), (out / "_leaderboard.md").read_text()
    assert settings.count("| grad_diff") == 2 and leaderboard.count("| grad_diff") == 1  # chosen on forget_val
    # One leaderboard: what `bench run` wrote is the report's leaderboard section.
    assert leaderboard.split("\n\n", 1)[1].strip() in (out / "_report" / "report.md").read_text()


def test_every_row_is_attacked_and_the_report_shows_it(mini_run):
    """The attacks ran in the Ray workers on every row, baselines included, and reached the report."""
    root, _ = mini_run
    df = pd.read_parquet(root / "results" / "mini")
    for variant in ("relearn", "quantize"):
        for metric in ("forget_prob", "forget_rouge", "forget_truth_ratio", "forget_quality"):
            assert df[f"attack.{variant}.{metric}"].map(math.isfinite).all(), (variant, metric)
    assert df["attack.paraphrase.forget_prob"].map(math.isfinite).all()
    # The retain model lost what the target knew, so relearning has something to bring back
    assert math.isfinite(df.loc[df["method"] == "retain", "attack.relearn.recovery"].iloc[0])
    assert df.loc[df["method"] == "none", "attack.relearn.recovery"].isna().all()  # nothing lost, nothing to recover
    assert (df["attack_s"] > 0).all()
    report = (root / "results" / "mini" / "_report" / "report.md").read_text()
    assert "## Robustness to attacks" in report and "robustness_tiny-llama.png" in report


def test_rerun_resumes_without_duplicates(mini_run, capsys):
    root, args = mini_run
    files = {p.name: p.stat().st_mtime_ns for p in (root / "results" / "mini").glob("*.parquet")}
    assert main(["run", *args]) == 0
    assert "0 to run" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in (root / "results" / "mini").glob("*.parquet")} == files
    # A deleted row is the only thing a rerun computes again.
    victim = sorted(files)[0]
    (root / "results" / "mini" / victim).unlink()
    assert main(["run", *args]) == 0
    assert "1 to run" in capsys.readouterr().out
    assert len(pd.read_parquet(root / "results" / "mini")) == 4


def test_bad_suite_exits_with_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINI_SUITE.replace("name: grad_diff", "name: grad_dif"))
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "unknown method 'grad_dif'" in err and "grad_diff" in err


def test_bench_eval_scores_a_saved_model_like_a_trial(mini_run, capsys):
    """`bench eval` on the prepared target, with the suite's data and settings and the retain model,
    reproduces the target's baseline row (but the reference-model attack, which needs the target's base);
    without a retain model the comparisons are missing, with why."""
    root, _ = mini_run
    models = root / "cache" / "models"
    target, = models.glob("tiny-llama-target-*")
    retain, = models.glob("tiny-llama-retain-*")
    common = ["eval", "--model", str(target), "--data", str(root / "mini.yaml"), "--cache-dir", str(root / "cache"),
              "--results-dir", str(root / "eval_results")]
    assert main([*common, "--retain-model", str(retain)]) == 0
    df = pd.read_parquet(root / "eval_results" / "eval")
    row = df.iloc[0]
    baselines = pd.read_parquet(root / "results" / "mini").query("method == 'none'").iloc[0]
    from metrics import metric_columns

    for col in metric_columns():
        if col == "mia_ref_auc":  # `bench eval` knows no model the target was fine-tuned from: missing, with why
            assert math.isnan(row[col]) and "bench eval" in json.loads(row["metrics_unavailable"])[col]
            continue
        both_missing = math.isnan(row[col]) and math.isnan(baselines[col])  # the known_capitals columns
        assert both_missing or row[col] == pytest.approx(baselines[col], rel=1e-9, abs=1e-12), col

    assert main([*common, "--metrics", "forget_quality", "privacy_leakage", "perplexity"]) == 0
    out = capsys.readouterr().out
    assert "forget_quality" in out and "missing: forget_quality: needs a retain model" in out
    assert "privleak" in out and "holdout_ppl" in out
    assert len(pd.read_parquet(root / "eval_results" / "eval")) == 2

    assert main([*common, "--metrics", "membership"]) == 2
    assert "unknown metric 'membership'" in capsys.readouterr().err


def test_bench_eval_reads_a_directory_of_splits(mini_run, tmp_path, capsys):
    """A split directory works with the default settings; splits it lacks leave their metrics missing."""
    import shutil

    root, _ = mini_run
    data_dir, = (root / "cache" / "data").iterdir()
    partial = tmp_path / "splits"
    partial.mkdir()
    for split in ("forget", "retain", "real_authors", "world_facts"):  # no holdout, no biographies
        shutil.copy(data_dir / f"{split}.jsonl", partial)
    target, = (root / "cache" / "models").glob("tiny-llama-target-*")
    args = ["eval", "--model", str(target), "--data", str(partial), "--results-dir", str(tmp_path / "out"),
            "--max-new-tokens", "8"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "mia_mink_pp_auc" in out and "evaluation split 'holdout' is missing" in out
    assert "forget_verbmem" in out and "evaluation split 'forget_bio' is missing" in out
    row = pd.read_parquet(tmp_path / "out" / "eval").iloc[0]
    assert math.isfinite(row["forget_prob"]) and math.isnan(row["holdout_ppl"])
    assert "holdout" in json.loads(row["metrics_unavailable"])["holdout_ppl"]

    assert main([*args[:4], str(tmp_path / "nothing-here"), *args[5:]]) == 2
    assert "neither a suite file" in capsys.readouterr().err
