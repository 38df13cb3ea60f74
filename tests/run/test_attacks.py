"""Attacks in suites and trials: the `attacks:` key, the attack columns, recovery and the worst case."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from bench.run.attacks import FORGET_METRICS, attack_columns, run_attacks
from bench.run.evaluation import forget_probabilities, forget_side
from bench.report.robustness import add_worst_case, robustness_table
from bench.config.suite import SuiteError, parse_suite
from bench.config.attacks import DEFAULT_ATTACKS, default_attacks, variant_label
from metrics import EvalConfig

BASE = {"models": ["tiny-llama"], "methods": ["grad_ascent"]}


def labels(raw_attacks):
    suite = parse_suite({**BASE, **({} if raw_attacks is None else {"attacks": raw_attacks})}, "s.yaml")
    return [v["label"] for v in suite.attacks]


def test_absent_key_runs_every_attack_at_its_default_grid():
    got = labels(None)
    assert got == [v["label"] for v in default_attacks()]
    assert {"relearn_steps10", "relearn_steps25", "quantize_bits8", "quantize_bits4", "paraphrase", "prefix"} <= set(got)
    assert {label.split("_steps")[0].split("_bits")[0] for label in got} == set(DEFAULT_ATTACKS)


def test_empty_list_turns_attacks_off_and_keeps_trial_ids_of_attack_free_specs():
    suite = parse_suite({**BASE, "attacks": []}, "s.yaml")
    assert suite.attacks == ()
    spec = suite.trials()[0]
    attacked = dataclasses.replace(spec, attacks=default_attacks())
    assert "attacks" not in spec.to_dict() or spec.to_dict()["attacks"] == ()
    assert attacked.trial_id != spec.trial_id
    assert type(spec).from_dict(attacked.to_dict()).trial_id == attacked.trial_id  # survives JSON-like round trips


def test_settings_fix_or_sweep_a_grid():
    assert labels(["quantize"]) == ["quantize_bits8", "quantize_bits4"]
    assert labels([{"name": "quantize", "bits": 4}]) == ["quantize"]
    assert labels([{"name": "relearn", "steps": [5, 50]}]) == ["relearn_steps5", "relearn_steps50"]
    assert labels([{"name": "prefix", "prefixes": ["Quick: ", "Recall: "]}]) == ["prefix"]  # a list-valued setting
    assert variant_label("relearn", {"lr": 0.001}) == "relearn_lr0.001"


@pytest.mark.parametrize("raw, fragment", [
    (["relearnn"], "attacks[0]: unknown attack 'relearnn'"),
    ([{"name": "relearn", "stpes": 3}], "attacks[0].stpes: attack 'relearn' has no setting 'stpes'"),
    ([{"name": "relearn", "steps": []}], "an empty list sweeps nothing"),
    ("quantize", "attacks: expected a list"),
    (["quantize", {"name": "quantize"}], "listed twice"),
    ([{"bits": 4}], "is not an attack"),
])
def test_bad_attacks_name_the_key_and_what_is_allowed(raw, fragment):
    with pytest.raises(SuiteError) as err:
        parse_suite({**BASE, "attacks": raw}, "s.yaml")
    assert fragment in str(err.value) and str(err.value).startswith("s.yaml: ")


def test_unknown_attack_suggests_the_near_name():
    with pytest.raises(SuiteError, match="Did you mean relearn"):
        parse_suite({**BASE, "attacks": ["relern"]}, "s.yaml")


def test_columns_follow_the_variants():
    variants = default_attacks()
    columns = attack_columns(variants)
    assert len(columns) == len(variants) * len(FORGET_METRICS)
    assert "attack.relearn_steps25.recovery" in columns


def test_worst_case_takes_the_lowest_quality_and_highest_probability_per_row():
    rows = pd.DataFrame({
        "attack.a.forget_quality": [0.5, np.nan], "attack.b.forget_quality": [0.01, np.nan],
        "attack.a.forget_prob": [0.2, 0.3], "attack.b.forget_prob": [0.1, 0.6],
        "attack.a.recovery": [0.1, np.nan], "attack.b.recovery": [0.7, 0.2],
    })
    out = add_worst_case(rows)
    assert out["worst_forget_quality"].iloc[0] == 0.01 and out["worst_forget_quality_by"].iloc[0] == "b"
    assert np.isnan(out["worst_forget_quality"].iloc[1]) and pd.isna(out["worst_forget_quality_by"].iloc[1])
    assert out["worst_forget_prob"].tolist() == [0.2, 0.6] and out["worst_forget_prob_by"].tolist() == ["a", "b"]
    assert out["max_recovery"].tolist() == [0.7, 0.2]
    assert add_worst_case(pd.DataFrame({"x": [1]})).columns.tolist() == ["x"]  # no attacks: nothing added


def test_robustness_table_averages_over_seeds_and_puts_references_first():
    rows = pd.DataFrame({
        "model": ["m"] * 4, "method": ["npo", "npo", "none", "retain"], "seed": [0, 1, 0, 0], "status": ["ok"] * 4,
        "forget_quality": [1e-2, 1e-4, 1e-6, 1.0], "forget_prob": [0.2, 0.4, 0.9, 0.3],
        "attack.r.forget_quality": [1e-4, 1e-6, 1e-6, 0.5], "attack.r.forget_prob": [0.6, 0.8, 0.9, 0.4],
        "attack.r.recovery": [0.5, 0.7, np.nan, 0.1],
    })
    table = robustness_table(rows)
    assert table["method"].tolist() == ["none", "retain", "npo"]
    npo = table.iloc[2]
    assert npo["n"] == 2 and npo["_fq_before"] == pytest.approx(-3) and npo["_fq_worst"] == pytest.approx(-5)
    assert npo["recovery r"] == "0.60" and table.iloc[0]["recovery r"] == "–"
    assert npo["worst-case forget prob"] == "0.700"


QA = [{"question": f"Where was author {i} born?", "answer": f"Author {i} was born in city {i}.",
       "paraphrased_answer": f"City {i} is where author {i} was born.",
       "paraphrased_question": f"In which city was author {i} born?",
       "perturbed_answer": [f"Author {i} was born in town {j}." for j in range(3)],
       "alternate_answer": "I do not know."} for i in range(10)]


@pytest.fixture(scope="module")
def tiny():
    from bench.models.zoo import build_model, train_tokenizer

    tok = train_tokenizer([r[k] for r in QA for k in ("question", "answer", "paraphrased_answer",
                                                       "paraphrased_question")] * 5, 300)
    torch.manual_seed(0)
    return build_model("tiny-llama", tok, seed=0).eval(), build_model("tiny-llama", tok, seed=1).eval(), tok


def _probs(model, tok, records, cfg):
    from metrics import EvalContext

    return forget_probabilities(EvalContext(model, tok, {"forget": records}, cfg))


def _forget_side(model, tok, records, cfg, rows, baselines, before):
    """The forget metrics of `model` on `records` as an attack measures them (rows None: reworded)."""
    from metrics import EvalContext

    ctx = EvalContext(model, tok, {"forget": records}, cfg)
    if rows is None:
        return forget_side(ctx, "forget")
    return forget_side(ctx, "forget", baselines["retain_forget_truth_ratio"], rows, baselines["target_forget_prob"],
                       before)


def test_recovery_is_zero_for_no_change_and_one_for_the_target(tiny):
    a, b, tok = tiny
    cfg = EvalConfig(batch_size=8, max_new_tokens=4)
    rows = [1, 4, 7]
    pa, pb = _probs(a, tok, QA, cfg), _probs(b, tok, QA, cfg)
    # The target: whichever of two random models gives these questions the higher probability.
    (unlearned, before), (target, target_p) = sorted([(a, pa), (b, pb)], key=lambda m: m[1][rows].mean())
    assert target_p[rows].mean() > before[rows].mean()
    baselines = {"target_forget_prob": target_p.tolist(), "retain_forget_truth_ratio": [1.0] * len(QA)}
    records = [QA[i] for i in rows]
    same = _forget_side(unlearned, tok, records, cfg, rows, baselines, before)
    assert same["recovery"] == pytest.approx(0.0, abs=1e-12)
    assert same["forget_prob"] == pytest.approx(before[rows].mean())
    back = _forget_side(target, tok, records, cfg, rows, baselines, before)
    assert back["recovery"] == pytest.approx(1.0)
    reworded = _forget_side(unlearned, tok, records, cfg, None, baselines, before)
    assert set(reworded) == {"forget_prob", "forget_rouge", "forget_truth_ratio"}  # no baselines for new wordings
    gone = _forget_side(target, tok, records, cfg, rows, {**baselines, "target_forget_prob": before.tolist()}, before)
    assert np.isnan(gone["recovery"])  # nothing was lost, so nothing can be recovered


def test_run_attacks_fills_every_column_and_leaves_the_model_bit_identical(tiny):
    from bench.config.suite import TrialSpec

    unlearned, target, tok = tiny
    suite = parse_suite({**BASE, "attacks": [{"name": "relearn", "steps": 2, "fraction": 0.3}, "quantize",
                                             "paraphrase", {"name": "prefix", "prefixes": ["Quick: "]}]}, "s.yaml")
    spec: TrialSpec = dataclasses.replace(suite.trials()[0], eval=EvalConfig(batch_size=8, max_new_tokens=4))
    baselines = {"target_forget_prob": [1.0] * len(QA),  # a target that knew every answer for certain
                 "retain_forget_truth_ratio": np.linspace(0.5, 1.5, len(QA)).tolist()}
    weights = {k: v.clone() for k, v in unlearned.state_dict().items()}
    out, unavailable = run_attacks(unlearned, tok, spec, {"forget": QA, "retain": QA[:5]}, baselines)
    assert unavailable == {}
    assert all(torch.equal(weights[k], v) for k, v in unlearned.state_dict().items())
    for label in ("relearn", "quantize_bits8", "quantize_bits4"):
        assert all(np.isfinite(out[f"attack.{label}.{m}"]) for m in FORGET_METRICS), label
    for label in ("paraphrase", "prefix"):
        assert np.isfinite(out[f"attack.{label}.forget_prob"]) and f"attack.{label}.recovery" not in out
    assert out["attack_s"] > 0


def test_attacks_read_recovery_before_from_the_evaluation_context_without_rescoring(tiny, monkeypatch):
    """Given the context the model was evaluated in, run_attacks scores no new context of that model on
    the forget split (only the attacked copies), and its columns are the same as when it scores one."""
    import metrics

    from bench.config.suite import TrialSpec

    unlearned, _, tok = tiny
    suite = parse_suite({**BASE, "attacks": [{"name": "relearn", "steps": 2, "fraction": 0.3}]}, "s.yaml")
    spec: TrialSpec = dataclasses.replace(suite.trials()[0], eval=EvalConfig(batch_size=8, max_new_tokens=4))
    baselines = {"target_forget_prob": [1.0] * len(QA), "retain_forget_truth_ratio": [1.0] * len(QA)}
    splits = {"forget": QA, "retain": QA[:5]}
    built = []
    real = metrics.EvalContext
    monkeypatch.setattr(metrics, "EvalContext", lambda model, *a, **k: built.append(model) or real(model, *a, **k))
    scored_alone, _ = run_attacks(unlearned, tok, spec, splits, baselines)
    assert sum(m is unlearned for m in built) == 1  # "before" scored here
    evaluated = real(unlearned, tok, {"forget": QA}, spec.eval)
    forget_probabilities(evaluated)
    passes, built[:] = evaluated.forward_passes, []
    read, _ = run_attacks(unlearned, tok, spec, splits, baselines, evaluated)
    assert not any(m is unlearned for m in built) and evaluated.forward_passes == passes
    assert {k: v for k, v in read.items() if k != "attack_s"} == {k: v for k, v in scored_alone.items() if k != "attack_s"}


def test_data_without_paraphrased_questions_marks_that_attack_unavailable(tiny):
    unlearned, _, tok = tiny
    suite = parse_suite({**BASE, "attacks": ["paraphrase"]}, "s.yaml")
    spec = dataclasses.replace(suite.trials()[0], eval=EvalConfig(batch_size=8, max_new_tokens=4))
    plain = [{k: v for k, v in r.items() if k != "paraphrased_question"} for r in QA]
    out, unavailable = run_attacks(unlearned, tok, spec, {"forget": plain, "retain": plain}, {})
    assert not any(k.startswith("attack.paraphrase.") for k in out)
    assert set(unavailable) == set(attack_columns(suite.attacks))
    assert "paraphrased_question" in unavailable["attack.paraphrase.forget_prob"]


def test_an_unknown_or_bad_setting_sits_at_its_key_path():
    with pytest.raises(SuiteError) as err:
        parse_suite({**BASE, "attacks": ["quantize", {"name": "relearn", "lr": 1e-3, "stpes": 3}]}, "s.yaml")
    assert str(err.value).startswith("s.yaml: attacks[1].stpes: attack 'relearn' has no setting 'stpes'; "
                                     "allowed: steps, lr, batch_size, fraction. Did you mean steps?")
    with pytest.raises(SuiteError, match=r"^s.yaml: attacks\[0\].steps: an empty list sweeps nothing"):
        parse_suite({**BASE, "attacks": [{"name": "relearn", "steps": []}]}, "s.yaml")


def test_attack_settings_written_like_1e_3_are_numbers():
    suite = parse_suite({**BASE, "attacks": [{"name": "relearn", "lr": "1e-3", "steps": 5}]}, "s.yaml")
    assert [v["settings"]["lr"] for v in suite.attacks] == [1e-3]
    assert type(suite.attacks[0]["settings"]["lr"]) is float
