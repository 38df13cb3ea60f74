"""Trials over several worker processes through Ray: the same numbers as one worker, recorded as such."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from helpers import mini_suite

from bench.config.suite import SuiteError, parse_suite
from bench.run.results import read_rows
from bench.run.runner import run_suite

# Costs and identity differ between runs of the same trial; everything else is a measured number.
NOT_COMPARED = ("train_s", "eval_s", "attack_s", "peak_mem_mb")
# Two workers sum the same micro-batch gradients one worker accumulates. ddp adds the two workers' gradients
# (a + b, as one worker does) and has measured equal to the last bit; fsdp averages shards over the workers
# after scaling each by 2, keeps the optimizer state in shards and runs the reference on every batch (one
# worker remembers its values), so the order and grouping of float32 operations differ. Each
# such step moves a number by a few float32 ulps (1.2e-7 relative); four steps of AdamW and the
# evaluation's sums may amplify that tenfold or so. 1e-5 leaves a margin of two orders while a real
# difference of data, order or seeding (a different batch moves these metrics by 1e-3 or more) fails.
RELATIVE_TOLERANCE = 1e-5


def _suite(name: str, workers: int, sharding: str):
    text = mini_suite(name, "  - npo", steps=4, extra="")
    text = text.replace("resources: {cpu: 1, gpu: 0}", f"resources: {{cpu: 1, gpu: 0, workers: {workers}}}")
    text = text.replace("unlearn: {steps: 4, batch_size: 4}",
                        f"unlearn: {{steps: 4, batch_size: 4, grad_accum_steps: 2, sharding: {sharding}, eval_at: [2]}}")
    return parse_suite(yaml.safe_load(text), f"{name}.yaml")


def _trained(rows) -> dict:
    """(trial id, step) -> row, of the unlearning trials (the baselines do not train)."""
    return {(r["trial_id"], r["step"]): r for r in rows.to_dict("records") if r["method"] not in ("none", "retain")}


@pytest.mark.slow
def test_two_workers_give_one_workers_numbers_with_a_reference_model(tmp_path):
    """NPO (a frozen reference), 2 micro-batches a step over 2 gloo workers of one thread: every metric of
    both rows (the checkpoint at step 2 and the last) within RELATIVE_TOLERANCE of one worker's, ddp and fsdp."""
    cache = tmp_path / "cache"
    one = _trained(read_rows(run_suite(_suite("one", 1, "none"), tmp_path / "res1", cache)))
    assert len(one) == 2 and all(r["status"] == "ok" for r in one.values())
    for sharding in ("ddp", "fsdp"):
        two = _trained(read_rows(run_suite(_suite(f"two_{sharding}", 2, sharding), tmp_path / f"res_{sharding}", cache)))
        assert two.keys() == one.keys(), "the trial ids do not depend on workers or sharding"
        for key, row in two.items():
            assert row["status"] == "ok", row.get("error")
            env = json.loads(row["environment"])
            assert (env["workers"], env["sharding"], env["effective_batch_size"]) == (2, sharding, 8)
            compared = 0
            for col, value in one[key].items():
                if col in NOT_COMPARED or not isinstance(value, float) or isinstance(value, bool):
                    continue
                other = row[col]
                if math.isnan(value):
                    assert math.isnan(other), (sharding, key, col)
                    continue
                compared += 1
                assert abs(other - value) <= RELATIVE_TOLERANCE * max(abs(value), 1e-12), (sharding, key, col, value, other)
            assert compared >= 20


@pytest.mark.slow
def test_a_worker_without_a_micro_batch_still_gives_the_same_numbers(tmp_path):
    """ddp over 2 workers with one micro-batch a step: the second worker adds zero gradients."""
    cache = tmp_path / "cache"
    text = mini_suite("idle", "  - npo", steps=2).replace("resources: {cpu: 1, gpu: 0}",
                                                          "resources: {cpu: 1, gpu: 0, workers: 2}")
    two = _trained(read_rows(run_suite(parse_suite(yaml.safe_load(text), "idle.yaml"), tmp_path / "two", cache)))
    text = mini_suite("idle", "  - npo", steps=2)
    one = _trained(read_rows(run_suite(parse_suite(yaml.safe_load(text), "idle.yaml"), tmp_path / "one", cache)))
    (key, row), = two.items()
    assert json.loads(row["environment"])["workers"] == 2
    assert row["forget_prob"] == one[key]["forget_prob"] and row["final_loss"] == one[key]["final_loss"]


def test_fsdp_needs_micro_batches_that_split_evenly():
    with pytest.raises(SuiteError, match=r"unlearn\.grad_accum_steps: 3 micro-batches .* 2 workers.*a multiple of"):
        text = mini_suite("x", "  - npo").replace("resources: {cpu: 1, gpu: 0}", "resources: {cpu: 1, gpu: 0, workers: 2}")
        parse_suite(yaml.safe_load(text.replace("batch_size: 4}", "batch_size: 4, grad_accum_steps: 3, sharding: fsdp}")),
                    "x.yaml")


def test_a_method_with_step_statistics_is_refused_more_than_one_worker():
    text = mini_suite("x", "  - pdu").replace("resources: {cpu: 1, gpu: 0}", "resources: {cpu: 1, gpu: 0, workers: 2}")
    with pytest.raises(SuiteError, match=r"resources\.workers: 2 workers, but method pdu runs in one process"):
        parse_suite(yaml.safe_load(text), "x.yaml")


@pytest.mark.parametrize("resources,message", [
    ("{cpu: 1, workers: 0}", r"resources\.workers"),
    ("{cpu: 1, workers: 1.5}", r"resources\.workers"),
])
def test_bad_workers_are_named(resources, message):
    text = mini_suite("x", "  - npo").replace("resources: {cpu: 1, gpu: 0}", f"resources: {resources}")
    with pytest.raises(SuiteError, match=message):
        parse_suite(yaml.safe_load(text), "x.yaml")


def test_bad_sharding_is_named():
    text = mini_suite("x", "  - npo").replace("batch_size: 4}", "batch_size: 4, sharding: zero3}")
    with pytest.raises(SuiteError, match=r"unlearn\.sharding.*none, ddp, fsdp"):
        parse_suite(yaml.safe_load(text), "x.yaml")


def test_workers_and_sharding_leave_the_trial_id_and_hyperparameters_alone():
    base = parse_suite(yaml.safe_load(mini_suite("x", "  - npo")), "x.yaml").trials()[0]
    text = mini_suite("x", "  - npo").replace("resources: {cpu: 1, gpu: 0}", "resources: {cpu: 1, gpu: 0, workers: 2}")
    sharded = parse_suite(yaml.safe_load(text.replace("batch_size: 4}", "batch_size: 4, grad_accum_steps: 1, sharding: ddp}")),
                          "x.yaml").trials()[0]
    assert sharded.trial_id == base.trial_id and "sharding" not in sharded.hyperparameters()


def test_a_trial_larger_than_the_cluster_is_refused():
    from bench.run.runner import _check_cluster_holds_a_trial

    text = mini_suite("x", "  - npo").replace("resources: {cpu: 1, gpu: 0}", "resources: {cpu: 1, gpu: 0, workers: 3}")
    suite = parse_suite(yaml.safe_load(text), "x.yaml")
    with pytest.raises(SuiteError, match=r"x\.yaml: resources: a trial asks for 3 worker\(s\) x 1 CPU = 3 CPU, and the Ray "
                                         r"cluster has 2"):
        _check_cluster_holds_a_trial(suite, {"CPU": 2.0})
    _check_cluster_holds_a_trial(suite, {"CPU": 3.0})
