"""`bench meta` end to end on a miniature suite: the pools, the attacked models, the report, and resuming."""

import dataclasses

import pandas as pd
import pytest
import yaml
from helpers import mini_suite

from bench.config.errors import SuiteError
from bench.config.suite import parse_suite
from bench.report.meta import write_meta_report
from bench.run.meta import check_meta_suite, read_meta_rows, run_meta


def _suite(tmp_path, meta="{pool_size: 2, relearn_steps: 2, bootstrap: 100}"):
    text = mini_suite("mini_meta", "  - name: grad_diff", seeds="[0, 1]", extra=f"meta: {meta}")
    return parse_suite(yaml.safe_load(text), str(tmp_path / "mini_meta.yaml"))


@pytest.mark.slow
def test_meta_run_writes_pools_attacks_and_a_report_and_resumes(tmp_path, capsys):
    suite = _suite(tmp_path)
    out = run_meta(suite, tmp_path / "results", tmp_path / "cache")
    rows = read_meta_rows(out)
    pool = rows[rows["stage"] == "pool"]
    # 2 seeds of each role: targets hold the knowledge, retain and other-authors models do not
    assert sorted(pool.groupby("role").size().items()) == [("other_authors", 2), ("retain", 2), ("target", 2)]
    assert pool.set_index("role")["holds_knowledge"].groupby(level=0).all().to_dict() == {
        "other_authors": False, "retain": False, "target": True}
    attacked = rows[rows["stage"] != "pool"]
    # one grad_diff trial per seed and the retain model per seed, each before / quantized / relearned
    assert attacked.groupby(["role", "seed"]).size().to_dict() == {
        ("retain", 0): 3, ("retain", 1): 3, ("unlearned", 0): 3, ("unlearned", 1): 3}
    assert rows["forget_prob"].notna().all() and rows["mia_loss_auc"].notna().all()
    # quantization changes the unlearned weights, so some forget metric moves
    before = attacked[(attacked.role == "unlearned") & (attacked.stage == "before")].set_index("seed")["forget_prob"]
    quantized = attacked[(attacked.role == "unlearned") & (attacked.stage == "quantized")].set_index("seed")["forget_prob"]
    assert not before.equals(quantized)

    path, table = write_meta_report(rows, out, suite.name, resamples=100)
    assert path.exists() and (out / "meta.png").exists()
    assert "faithfulness (AUROC, 95% CI)" in table and "Probability" in table and "2 models that hold" in table

    capsys.readouterr()
    again = run_meta(suite, tmp_path / "results", tmp_path / "cache")  # everything is there: nothing is redone
    assert "done before" in capsys.readouterr().out
    pd.testing.assert_frame_equal(read_meta_rows(again), rows)


def test_meta_settings_are_checked_with_the_key_named(tmp_path):
    with pytest.raises(SuiteError, match=r"meta\.pool_size"):
        _suite(tmp_path, meta="{pool_size: 1}")
    with pytest.raises(SuiteError, match=r"meta\.relearn_fraction"):
        _suite(tmp_path, meta="{relearn_fraction: 1.5}")
    with pytest.raises(SuiteError, match=r"meta.*poolsize"):
        _suite(tmp_path, meta="{poolsize: 3}")


def test_a_meta_run_needs_one_model_and_a_retain_model(tmp_path):
    suite = _suite(tmp_path)
    with pytest.raises(ValueError, match="one model"):
        check_meta_suite(dataclasses.replace(suite, models=("tiny-llama", "tiny-gpt2")))
    with pytest.raises(ValueError, match="retain"):
        check_meta_suite(dataclasses.replace(suite, prepare=dataclasses.replace(suite.prepare, retain_model="none")))
