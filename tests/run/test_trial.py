"""The honest protocol on the trial side: checkpoint rows, sequential parts, the forget-fraction axis."""

from __future__ import annotations

import dataclasses
import math

import pytest
import yaml
from helpers import mini_suite

from bench.models.prepare import prepare_model
from bench.models.baseline_stats import compute_baseline_stats
from bench.run.sequential import forgotten_so_far, split_parts
from bench.config.suite import SuiteError, TrialSpec, UnlearnConfig, parse_suite
from bench.run.trial import run_trial

# One validation author among 10, so the validation columns are measured too.
PROTOCOL_DATA = "{n_authors: 10, forget_fraction: 0.2, forget_val_fraction: 0.1, n_holdout_authors: 2, " \
                "n_general_authors: 40, general_fact_repeats: 2}"


def _suite(extra: str = "", methods: str = "  - grad_diff", steps: int = 4, data: str = PROTOCOL_DATA):
    text = mini_suite("protocol", methods, steps=steps, extra=extra)
    text = text.replace(text.split("data: ", 1)[1].split("\n", 1)[0], data, 1)
    return parse_suite(yaml.safe_load(text), "protocol.yaml")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    suite = _suite()
    cache = tmp_path_factory.mktemp("cache")
    found = prepare_model("tiny-llama", suite.data, suite.prepare, suite.eval, cache, log=lambda _m: None)
    return dataclasses.replace(found, baseline_stats=str(compute_baseline_stats(found, suite.eval, cache)))


def _metrics(row: dict) -> dict:
    """The measured numbers of a row (costs, times and identity left out)."""
    skip = ("train_s", "eval_s", "peak_mem_mb", "started_at", "finished_at", "trial_id", "hp_changed", "step",
            "is_final", "environment", "versions", "tokens")
    return {k: v for k, v in row.items() if k not in skip and isinstance(v, float)}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in
                                        ((a[k], b[k]) for k in a))


def test_checkpoint_rows_match_runs_stopped_there(prepared):
    spec = _suite(steps=4).trials()[0]
    curve = run_trial(dataclasses.replace(spec, unlearn=dataclasses.replace(spec.unlearn, eval_at=(1, 2))), prepared)
    assert [r["step"] for r in curve] == [1, 2, 4] and [r["is_final"] for r in curve] == [False, False, True]
    assert all(r["status"] == "ok" for r in curve), [r.get("error") for r in curve]
    for row in curve:
        alone, = run_trial(dataclasses.replace(spec, unlearn=dataclasses.replace(spec.unlearn, steps=row["step"])),
                           prepared)
        assert alone["steps_done"] == row["step"]
        assert _same(_metrics(row), _metrics(alone)), row["step"]
    assert math.isfinite(curve[-1]["forget_val_quality"]) and math.isfinite(curve[-1]["forget_val_prob"])


def test_checkpoint_metrics_limit_what_intermediate_rows_measure(prepared):
    spec = _suite(steps=2).trials()[0]
    spec = dataclasses.replace(spec, unlearn=dataclasses.replace(spec.unlearn, eval_at=(1,)),
                               eval=dataclasses.replace(spec.eval, checkpoint_metrics=("forget_quality", "model_utility")))
    early, final = run_trial(spec, prepared)
    assert math.isfinite(early["forget_quality"]) and math.isfinite(early["model_utility"])
    assert math.isnan(early["mia_mink_pp_auc"]) and "eval.checkpoint_metrics" in early["metrics_unavailable"]
    assert math.isfinite(final["mia_mink_pp_auc"]) and math.isfinite(early["forget_val_quality"])


def test_sequential_trial_writes_a_row_after_each_part(prepared):
    spec = dataclasses.replace(_suite(steps=2).trials()[0], sequential_parts=2)
    rows = run_trial(spec, prepared)
    assert [r["sequential_part"] for r in rows] == [1, 2] and [r["step"] for r in rows] == [2, 4]
    assert [r["is_final"] for r in rows] == [False, True] and all(r["status"] == "ok" for r in rows)
    assert rows[0]["forget_quality"] != rows[1]["forget_quality"]  # measured on one part, then on both
    assert all(math.isnan(r["forget_val_quality"]) for r in rows)  # the requests are the forget parts only


def test_the_validation_authors_are_unlearned_with_the_forget_set():
    from bench.run.trial import unlearning_request

    splits = {"forget": [{"question": "f"}], "forget_val": [{"question": "v"}], "retain": [{"question": "r"}]}
    assert [r["question"] for r in unlearning_request(splits)] == ["f", "v"]
    assert unlearning_request({"forget": [{"question": "f"}]}) == [{"question": "f"}]


def test_sequential_parts_are_disjoint_whole_authors_and_cover():
    records = [{"author": a, "question": f"{a}{i}"} for a in "abcde" for i in range(3)]
    parts = split_parts(records, 2)
    assert sorted(i for p in parts for i in p) == list(range(15))  # cover, no index twice
    assert [len(p) for p in parts] == [9, 6]
    for p in parts:
        assert len({records[i]["author"] for i in p} & {records[i]["author"] for q in parts if q is not p for i in q}) == 0
    assert split_parts([{"question": str(i)} for i in range(4)], 4) == [[0], [1], [2], [3]]
    with pytest.raises(ValueError, match="sequential.parts: 6 parts of a forget set of 5 authors"):
        split_parts(records, 6)


def test_forgotten_so_far_subsets_questions_and_references():
    splits = {"forget": [{"author": a, "question": a + str(i)} for a in "ab" for i in range(2)],
              "forget_bio": [{"author": "a", "text": "A"}, {"author": "b", "text": "B"}], "retain": [{"question": "r"}]}
    baselines = {"retain_forget_truth_ratio": [0.1, 0.2, 0.3, 0.4], "target_forget_prob": [1, 2, 3, 4], "x": 1,
                 "base_mia_loss": {"forget": [-1, -2, -3, -4], "holdout": [-5]}}
    subset, ref = forgotten_so_far(splits, baselines, split_parts(splits["forget"], 2), 0)
    assert [r["question"] for r in subset["forget"]] == ["a0", "a1"] and subset["forget_bio"] == [splits["forget_bio"][0]]
    assert ref["retain_forget_truth_ratio"] == [0.1, 0.2] and ref["target_forget_prob"] == [1, 2] and ref["x"] == 1
    assert ref["base_mia_loss"] == {"forget": [-1, -2], "holdout": [-5]}  # the reference-model attack's, per record
    assert baselines["base_mia_loss"]["forget"] == [-1, -2, -3, -4]  # the prepared statistics are left as they were
    assert subset["retain"] == splits["retain"]


def test_suite_checkpoints_fractions_and_sequential_parse():
    suite = _suite("sequential: {parts: 2}", data=PROTOCOL_DATA.replace("forget_fraction: 0.2", "forget_fraction: [0.2, 0.3]"))
    assert suite.forget_fractions == (0.2, 0.3) and suite.sequential_parts == 2
    assert {t.data.forget_fraction for t in suite.trials()} == {0.2, 0.3}
    assert len(suite.baseline_trials()) == 4  # none + retain per fraction
    every = UnlearnConfig(steps=10, eval_every=4, eval_at=[5])
    assert every.checkpoints() == (4, 5, 8) and "eval_at" not in _suite().trials()[0].hyperparameters()


def test_checkpoints_leave_old_trial_ids_alone():
    spec = _suite().trials()[0]
    assert "eval_at" not in spec.to_dict()["unlearn"] or spec.unlearn.eval_at == ()
    with_curve = dataclasses.replace(spec, unlearn=dataclasses.replace(spec.unlearn, eval_at=(2,)))
    assert with_curve.trial_id != spec.trial_id
    assert TrialSpec.from_dict(with_curve.to_dict()).trial_id == with_curve.trial_id


@pytest.mark.parametrize("extra, message", [
    ("sequential: {parts: 1}", "sequential.parts: 1 is out of range"),
    ("sequential: {parts: 3}", "sequential.parts: 3 parts of a forget set of 2 authors"),
    ("sequential: {part: 2}", "sequential.part: unknown key"),
])
def test_bad_sequential_is_named(extra, message):
    with pytest.raises(SuiteError, match=message):
        _suite(extra)


def test_bad_checkpoints_and_fractions_are_named():
    with pytest.raises(SuiteError, match=r"unlearn.eval_at: 9 is not a step of the run"):
        parse_suite(yaml.safe_load(mini_suite("x", "  - npo", steps=4).replace("steps: 4,", "steps: 4, eval_at: [9],")))
    with pytest.raises(SuiteError, match=r"data.forget_fraction\[1\]: 2.0 is out of range"):
        _suite(data=PROTOCOL_DATA.replace("forget_fraction: 0.2", "forget_fraction: [0.1, 2]"))
    with pytest.raises(SuiteError, match="sequential: sequential trials write a row after each part"):
        parse_suite(yaml.safe_load(mini_suite("x", "  - npo", steps=4, extra="sequential: {parts: 2}")
                                   .replace("steps: 4,", "steps: 4, eval_every: 2,")))


@pytest.mark.slow  # Ray
def test_a_suite_with_checkpoints_and_two_fractions_through_ray(tmp_path):
    """Through the CLI and Ray: a row per checkpoint, baselines per fraction, one target for both
    fractions and a retain model each, a resume that runs nothing, and the report's protocol sections."""
    import pandas as pd

    from bench.cli import main

    text = mini_suite("curves", "  - name: grad_diff\n    grid: {lr: [1e-4]}", seeds="[0, 1]", steps=4)
    text = text.replace("forget_fraction: 0.2,", "forget_fraction: [0.1, 0.2],").replace("steps: 4,", "steps: 4, eval_at: [2],")
    (tmp_path / "curves.yaml").write_text(text)
    args = ["run", str(tmp_path / "curves.yaml"), "--cache-dir", str(tmp_path / "cache"),
            "--results-dir", str(tmp_path / "results")]
    try:
        assert main(args) == 0
        df = pd.read_parquet(tmp_path / "results" / "curves")
        assert (df["status"] == "ok").all(), df["error"].dropna().tolist()
        trained = df[df["method"] == "grad_diff"]
        assert len(trained) == 2 * 2 * 2 and trained.groupby("trial_id")["step"].apply(lambda s: sorted(s) == [2, 4]).all()
        assert trained.groupby("trial_id")["is_final"].sum().eq(1).all()
        refs = df[df["method"].isin(["none", "retain"])]
        assert sorted(refs["forget_fraction"]) == [0.1, 0.1, 0.2, 0.2] and (refs["step"] == 0).all()
        assert df["forget_val_quality"].map(math.isfinite).all()
        models = sorted(p.name.split("-")[2] for p in (tmp_path / "cache" / "models").iterdir())
        assert models == ["base", "retain", "retain", "target"]  # the target is shared by both fractions
        rows_before = len(df)
        assert main(args) == 0 and len(pd.read_parquet(tmp_path / "results" / "curves")) == rows_before
        from bench.run.status import status_table

        counts, problems, _ = status_table(tmp_path / "results" / "curves")
        assert counts["ok"].sum() == 2 * 2 + 4 and counts["pending"].sum() == 0 and problems.empty  # trials, not rows
        report = (tmp_path / "results" / "curves" / "_report" / "report.md").read_text()
        assert "Learning curves" in report and "Selection on validation vs on test" in report
        assert "Forget-set size" in report
    finally:
        import ray

        ray.shutdown()


def test_every_row_of_a_curve_says_what_it_was_computed_with(prepared):
    """Checkpoint rows carry the environment, versions and provenance the final row does."""
    import json

    spec = _suite(steps=2).trials()[0]
    rows = run_trial(dataclasses.replace(spec, unlearn=dataclasses.replace(spec.unlearn, eval_at=(1,))), prepared)
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert json.loads(row["environment"])["cpu_kernels"]["torch_capability"]
        assert json.loads(row["versions"])["source_sha256"]
        assert json.loads(row["provenance"])["data_sha256"]
    assert rows[0]["environment"] == rows[1]["environment"]


def test_save_model_keeps_the_final_model_loadable_and_names_it_in_the_last_row(prepared, tmp_path):
    """unlearn.save_model: the final model and tokenizer as a save_pretrained directory, the same weights
    the trial evaluated (its greedy answer reproduces the row's probe answer), and no part of the id."""
    import json
    from pathlib import Path

    from metrics import EvalContext

    from bench.models.zoo import load_model, load_tokenizer

    suite = _suite(extra='probes: ["Where was the author born?"]', methods="  - grad_ascent", steps=2)
    spec, = suite.trials()
    kept = dataclasses.replace(spec, unlearn=dataclasses.replace(spec.unlearn, save_model=True))
    assert kept.trial_id == spec.trial_id and "save_model" not in kept.hyperparameters()
    rows = run_trial(kept, prepared, models_dir=str(tmp_path / "_models"))
    assert rows[-1]["status"] == "ok", rows[-1].get("error")
    where = Path(rows[-1]["model_path"])
    assert where == tmp_path / "_models" / spec.trial_id
    answer = EvalContext(load_model(where), load_tokenizer(where), {}, suite.eval).generate(list(suite.eval.probes))[0]
    assert json.loads(rows[-1]["probe_generations"])[0]["after"] == answer
    assert "model_path" not in run_trial(spec, prepared)[-1]  # off by default
