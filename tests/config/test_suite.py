"""Tests for suite loading: YAML -> validated dataclasses -> trial specs."""

import dataclasses
import pathlib
import textwrap

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

import yaml

from bench.config.suite import (
    EVAL_LISTS,
    TOP_LEVEL,
    DataConfig,
    PrepareConfig,
    Resources,
    SuiteError,
    UnlearnConfig,
    load_suite,
    parse_suite,
)
from metrics.context import EvalConfig

GOOD_SUITE = """\
name: good
data: {kind: synthetic_authors, n_authors: 10, forget_fraction: 0.2, seed: 3}
models: [tiny-llama, tiny-gpt2]
prepare: {pretrain_steps: 10, finetune_steps: 10, lr: 3e-3}
unlearn: {steps: 5, batch_size: 2, lr: 1e-5}
eval: {max_new_tokens: 8, retain_questions: 20}
seeds: [0, 1, 2]
methods:
  - grad_ascent
  - name: grad_diff
    args: {alpha: 0.5}
    grid: {lr: [1e-4, 3e-4], retain_loss: [nll, kl]}
  - name: ga_gd
    grid: {forget_factor: [-0.1, -0.5], steps: [1e2, 20]}
resources: {cpu: 1, gpu: 0}
"""
# grid points per method: grad_ascent 1, grad_diff 2 x 2, ga_gd 2 x 2
GOOD_GRID_POINTS = 1 + 4 + 4

# A minimal valid suite that error cases perturb one key at a time.
BASE = {
    "models": "[tiny-llama]",
    "methods": "[grad_ascent]",
}


def write(tmp_path: pathlib.Path, text: str, name: str = "suite.yaml") -> pathlib.Path:
    """Writes `text` (dedented) to `tmp_path/name` and returns the path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def suite_text(**overrides: str) -> str:
    """A valid suite as YAML text, with top-level keys replaced by (or added as) `overrides`."""
    keys = {**BASE, **overrides}
    return "".join(f"{k}: {v}\n" for k, v in keys.items() if v is not None)


def load_error(tmp_path: pathlib.Path, text: str) -> tuple[str, str]:
    """Loads `text` as a suite, expecting SuiteError; returns (message, path as a string)."""
    path = write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    return str(info.value), str(path)


def assert_mentions(message: str, *fragments: str) -> None:
    """Asserts every fragment occurs in the error message."""
    missing = [f for f in fragments if f not in message]
    assert not missing, f"{missing} not in error message: {message}"


@pytest.fixture
def good(tmp_path):
    return load_suite(write(tmp_path, GOOD_SUITE))


# --------------------------------------------------------------------------------------- good suite


def test_good_suite_parses(good):
    assert good.name == "good"
    assert good.models == ("tiny-llama", "tiny-gpt2")
    assert good.seeds == (0, 1, 2)
    assert [m.name for m in good.methods] == ["grad_ascent", "grad_diff", "ga_gd"]
    assert good.data == DataConfig(n_authors=10, forget_fraction=0.2, seed=3)
    assert good.prepare.pretrain_steps == 10 and good.prepare.lr == pytest.approx(3e-3)
    assert good.unlearn == UnlearnConfig(steps=5, batch_size=2, lr=1e-5)
    assert good.eval == EvalConfig(max_new_tokens=8, retain_questions=20)
    assert good.resources == Resources(cpu=1.0, gpu=0.0)


def test_name_defaults_to_file_stem(tmp_path):
    suite = load_suite(write(tmp_path, suite_text(), name="my_suite.yaml"))
    assert suite.name == "my_suite"


def test_trial_count_is_models_x_grid_points_x_seeds(good):
    trials = good.trials()
    assert len(trials) == len(good.models) * GOOD_GRID_POINTS * len(good.seeds) == 54
    per_model_method = {}
    for spec in trials:
        key = (spec.model, spec.method)
        per_model_method[key] = per_model_method.get(key, 0) + 1
    assert per_model_method == {
        (m, meth): n * 3
        for m in good.models
        for meth, n in (("grad_ascent", 1), ("grad_diff", 4), ("ga_gd", 4))
    }
    assert {spec.seed for spec in trials} == {0, 1, 2}


def test_trials_order_is_models_methods_grid_seeds(good):
    trials = good.trials()
    assert [s.model for s in trials[:27]] == ["tiny-llama"] * 27
    assert [s.seed for s in trials[:3]] == [0, 1, 2]
    assert trials[0].method == "grad_ascent" and trials[3].method == "grad_diff"


def test_reference_trials_two_per_model(good):
    refs = good.baseline_trials()
    assert len(refs) == 2 * len(good.models)
    assert sorted((s.model, s.method) for s in refs) == sorted(
        (m, ref) for m in good.models for ref in ("none", "retain")
    )
    for spec in refs:
        assert spec.method_args == {}
        assert spec.hyperparameters() == {}


def test_trial_ids_unique(good):
    specs = good.baseline_trials() + good.trials()
    ids = [s.trial_id for s in specs]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


def test_trial_ids_stable_across_loads(tmp_path):
    a = load_suite(write(tmp_path, GOOD_SUITE, name="a.yaml"))
    b = load_suite(write(tmp_path, GOOD_SUITE, name="a.yaml"))
    ids_a = [s.trial_id for s in a.baseline_trials() + a.trials()]
    ids_b = [s.trial_id for s in b.baseline_trials() + b.trials()]
    assert ids_a == ids_b


def test_trial_id_roundtrips_through_dict(good):
    from bench.config.suite import TrialSpec

    for spec in good.trials()[:10] + good.baseline_trials():
        again = TrialSpec.from_dict(spec.to_dict())
        assert again == spec
        assert again.trial_id == spec.trial_id


def _unlearn_changes():
    """One changed value per UnlearnConfig field."""
    base = UnlearnConfig()
    changed = {
        "steps": base.steps + 1,
        "lr": base.lr * 3,
        "batch_size": base.batch_size + 1,
        "schedule": "cosine" if base.schedule != "cosine" else "constant",
        "warmup_steps": base.warmup_steps + 1,
        "weight_decay": base.weight_decay + 0.01,
        "max_grad_norm": base.max_grad_norm + 1.0,
        "mixed_precision": "bf16" if base.mixed_precision != "bf16" else "no",
        "gradient_checkpointing": not base.gradient_checkpointing,
        "grad_accum_steps": base.grad_accum_steps + 1,
        "max_loss": base.max_loss * 10,  # a guard changed from its default is part of the id
        "keep_last_finite": not base.keep_last_finite,
        "eval_at": (1,),  # checkpoints add rows, so they are part of the id when set
        "eval_every": 5,
    }
    # save_model decides what is written, not what is computed, and sharding how, not what: no part of the id
    # (tests/run/test_trial.py, tests/run/test_workers.py)
    assert set(changed) | {"save_model", "sharding"} == {f.name for f in dataclasses.fields(UnlearnConfig)}, \
        "a new field needs a case here"
    return sorted(changed.items())


@pytest.mark.parametrize("key,value", _unlearn_changes())
def test_changing_an_unlearn_setting_changes_trial_id(good, key, value):
    spec = good.trials()[0]
    other = dataclasses.replace(spec, unlearn=dataclasses.replace(spec.unlearn, **{key: value}))
    assert other.trial_id != spec.trial_id


@pytest.mark.parametrize("key,value", [("gamma", 2.0), ("alpha", 0.25), ("retain_loss", "kl")])
def test_changing_a_method_arg_changes_trial_id(good, key, value):
    spec = next(s for s in good.trials() if s.method == "grad_diff" and s.method_args["retain_loss"] == "nll")
    args = {**spec.method_args, key: value}
    assert args != spec.method_args
    assert dataclasses.replace(spec, method_args=args).trial_id != spec.trial_id


def test_the_extraction_strength_definition_is_part_of_the_trial_id(tmp_path, good):
    """A suite may pick open-unlearning's definition (metrics/memorization.py); its rows get other ids,
    while the default leaves the ids of suites written before the setting as they were."""
    theirs = load_suite(write(tmp_path, GOOD_SUITE.replace("eval: {", "eval: {extraction_strength: open_unlearning, "),
                              name="theirs.yaml"))
    assert theirs.eval.extraction_strength == "open_unlearning" and good.eval.extraction_strength == "harness"
    from bench.config.suite import TrialSpec

    for mine, other in zip(good.baseline_trials() + good.trials(), theirs.baseline_trials() + theirs.trials()):
        assert other.trial_id != mine.trial_id
        assert TrialSpec.from_dict(other.to_dict()).trial_id == other.trial_id
    # the default ids: test_the_default_suites_trial_ids_are_those_its_results_were_written_under


def test_trials_carry_the_prepare_recipe_version_in_their_id(good):
    from bench.config.suite import PREPARE_VERSION

    spec = good.trials()[0]
    assert spec.prepare_version == PREPARE_VERSION == good.baseline_trials()[0].prepare_version
    assert dataclasses.replace(spec, prepare_version=spec.prepare_version + 1).trial_id != spec.trial_id


def test_changing_the_seed_changes_trial_id(good):
    spec = good.trials()[0]
    assert dataclasses.replace(spec, seed=spec.seed + 1).trial_id != spec.trial_id


@pytest.mark.parametrize(
    "old,new",
    [
        ("args: {alpha: 0.5}", "args: {alpha: 0.6}"),
        ("unlearn: {steps: 5, batch_size: 2, lr: 1e-5}", "unlearn: {steps: 5, batch_size: 2, lr: 2e-5}"),
        ("unlearn: {steps: 5, batch_size: 2, lr: 1e-5}", "unlearn: {steps: 6, batch_size: 2, lr: 1e-5}"),
        ("seeds: [0, 1, 2]", "seeds: [0, 1, 3]"),
    ],
)
def test_editing_the_yaml_changes_affected_trial_ids(tmp_path, old, new):
    assert old in GOOD_SUITE
    before = load_suite(write(tmp_path, GOOD_SUITE, name="before.yaml"))
    after = load_suite(write(tmp_path, GOOD_SUITE.replace(old, new), name="after.yaml"))
    ids_before = {s.trial_id for s in before.trials()}
    ids_after = {s.trial_id for s in after.trials()}
    assert ids_before != ids_after
    assert len(ids_after) == len(ids_before)


# --------------------------------------------------------------------------------------- coercion


def test_lr_written_1e_5_becomes_float(tmp_path):
    text = suite_text(
        unlearn="{lr: 1e-5}",
        methods="[{name: grad_ascent, grid: {lr: [1e-5, 3e-5]}}]",
    )
    suite = load_suite(write(tmp_path, text))
    assert type(suite.unlearn.lr) is float and suite.unlearn.lr == 1e-05
    grid_lrs = suite.methods[0].grid["lr"]
    assert grid_lrs == [1e-05, 3e-05] and all(type(v) is float for v in grid_lrs)
    trial_lrs = [s.unlearn.lr for s in suite.trials()]
    assert trial_lrs == [1e-05, 3e-05] and all(type(v) is float for v in trial_lrs)


def test_steps_written_1e2_becomes_int(tmp_path):
    text = suite_text(unlearn="{steps: 1e2}", methods="[{name: grad_ascent, grid: {steps: [1e2, 2e1]}}]")
    suite = load_suite(write(tmp_path, text))
    assert type(suite.unlearn.steps) is int and suite.unlearn.steps == 100
    assert suite.methods[0].grid["steps"] == [100, 20]
    assert all(type(s.unlearn.steps) is int for s in suite.trials())


@pytest.mark.parametrize(
    "overrides",
    [
        {"unlearn": "{steps: 2.5}"},
        {"methods": "[{name: grad_ascent, grid: {steps: [10, 2.5]}}]"},
        {"methods": "[{name: grad_ascent, args: {steps: '2.5'}}]"},
    ],
    ids=["unlearn", "grid", "args-string"],
)
def test_fractional_steps_fail(tmp_path, overrides):
    message, path = load_error(tmp_path, suite_text(**overrides))
    assert_mentions(message, path, "steps", "integer", "2.5")


@pytest.mark.parametrize(
    "unlearn,key",
    [("{steps: .inf}", "steps"), ("{steps: .nan}", "steps"), ("{steps: nan}", "steps"), ("{lr: .nan}", "lr")],
)
def test_non_finite_numbers_fail_with_suite_error(tmp_path, unlearn, key):
    """inf/nan cannot be a step count, and a NaN learning rate would silently ruin a trial."""
    message, path = load_error(tmp_path, suite_text(unlearn=unlearn))
    assert_mentions(message, path, key)


# --------------------------------------------------------------------------------------- errors


def test_unknown_top_level_key(tmp_path):
    message, path = load_error(tmp_path, suite_text(modles="[tiny-llama]"))
    assert_mentions(message, path, "modles", *TOP_LEVEL)


SECTIONS = {
    "data": DataConfig,
    "prepare": PrepareConfig,
    "unlearn": UnlearnConfig,
    "eval": EvalConfig,
    "resources": Resources,
}


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_unknown_key_in_section(tmp_path, section):
    message, path = load_error(tmp_path, suite_text(**{section: "{bogus_key: 1}"}))
    allowed = [f.name for f in dataclasses.fields(SECTIONS[section]) if f.name not in EVAL_LISTS]
    assert_mentions(message, path, section, "bogus_key", *allowed)


def test_metrics_and_probes_are_top_level_keys_landing_in_the_eval_config(tmp_path):
    suite = parse_suite(yaml.safe_load(suite_text(metrics="[mia, perplexity, mia]", probes='["Who wrote it?"]')))
    assert suite.eval.metrics == ("mia", "perplexity") and suite.eval.probes == ("Who wrote it?",)
    assert all(t.eval.metrics == ("mia", "perplexity") for t in suite.trials())
    assert parse_suite(yaml.safe_load(suite_text())).eval.metrics == ()  # default: every family
    message, path = load_error(tmp_path, suite_text() + "metrics: [mia, membership]\n")
    assert_mentions(message, path, "metrics[1]", "unknown metric 'membership'", "privacy_leakage", "perplexity")
    message, path = load_error(tmp_path, suite_text() + "probes: Who wrote it?\n")
    assert_mentions(message, path, "probes", "list of non-empty prompt strings")
    message, path = load_error(tmp_path, suite_text(eval="{metrics: [mia]}"))
    assert_mentions(message, path, "eval", "unknown key 'metrics'")


def test_unknown_method(tmp_path):
    message, path = load_error(tmp_path, suite_text(methods="[grad_dif]"))
    assert_mentions(message, path, "grad_dif", "grad_diff", "grad_ascent", "ga_gd", "methods[0]")


def test_unknown_key_in_method_entry(tmp_path):
    message, path = load_error(tmp_path, suite_text(methods="[{name: grad_diff, gird: {lr: [1e-4]}}]"))
    assert_mentions(message, path, "gird", "name", "args", "grid")


@pytest.mark.parametrize("where", ["args", "grid"])
def test_hyperparameter_the_method_does_not_have(tmp_path, where):
    value = "0.1" if where == "args" else "[0.1, 0.2]"
    message, path = load_error(tmp_path, suite_text(methods=f"[{{name: grad_diff, {where}: {{beta: {value}}}}}]"))
    assert_mentions(message, path, "grad_diff", "beta", "gamma", "alpha", "retain_loss")


def test_hyperparameter_of_another_method(tmp_path):
    message, path = load_error(tmp_path, suite_text(methods="[{name: grad_ascent, grid: {forget_factor: [-0.1]}}]"))
    assert_mentions(message, path, "grad_ascent", "forget_factor")


@pytest.mark.parametrize("axis", ["1e-4", "'1e-4'", "[]", "{a: 1}"])
def test_grid_axis_not_a_list(tmp_path, axis):
    message, path = load_error(tmp_path, suite_text(methods=f"[{{name: grad_ascent, grid: {{lr: {axis}}}}}]"))
    assert_mentions(message, path, "grid.lr", "list")


@pytest.mark.parametrize(
    "overrides",
    [
        {"unlearn": "{lr: fast}"},
        {"methods": "[{name: grad_ascent, grid: {lr: [1e-4, fast]}}]"},
        {"methods": "[{name: grad_ascent, args: {lr: fast}}]"},
    ],
    ids=["unlearn", "grid", "args"],
)
def test_non_numeric_lr(tmp_path, overrides):
    message, path = load_error(tmp_path, suite_text(**overrides))
    assert_mentions(message, path, "lr", "'fast'", "number")


@pytest.mark.parametrize("where", ["args", "grid"])
def test_grad_diff_unknown_retain_loss(tmp_path, where):
    value = "mse" if where == "args" else "[nll, mse]"
    message, path = load_error(tmp_path, suite_text(methods=f"[{{name: grad_diff, {where}: {{retain_loss: {value}}}}}]"))
    assert_mentions(message, path, "retain_loss", "mse", "nll", "kl")


@pytest.mark.parametrize(
    "overrides",
    [
        {"unlearn": "{schedule: linear}"},
        {"methods": "[{name: grad_ascent, grid: {schedule: [constant, linear]}}]"},
    ],
    ids=["unlearn", "grid"],
)
def test_unknown_schedule(tmp_path, overrides):
    message, path = load_error(tmp_path, suite_text(**overrides))
    assert_mentions(message, path, "schedule", "linear", "constant", "cosine")


def test_unknown_mixed_precision(tmp_path):
    message, path = load_error(tmp_path, suite_text(unlearn="{mixed_precision: fp8}"))
    assert_mentions(message, path, "mixed_precision", "fp8", "bf16", "fp16")


def test_unknown_data_kind(tmp_path):
    message, path = load_error(tmp_path, suite_text(data="{kind: muse_news}"))
    assert_mentions(message, path, "kind", "muse_news", "synthetic_authors")


@pytest.mark.parametrize("models", ["[]", "null", "tiny-llama"])
def test_empty_or_missing_models(tmp_path, models):
    message, path = load_error(tmp_path, suite_text(models=models))
    assert_mentions(message, path, "models", "non-empty list")


def test_models_key_absent(tmp_path):
    message, path = load_error(tmp_path, suite_text(models=None))
    assert_mentions(message, path, "models")


def test_duplicate_models(tmp_path):
    message, path = load_error(tmp_path, suite_text(models="[tiny-llama, tiny-llama]"))
    assert_mentions(message, path, "models", "distinct")


def test_duplicate_seeds(tmp_path):
    """Repeated seeds would produce two trials with one trial id."""
    message, path = load_error(tmp_path, suite_text(seeds="[0, 0]"))
    assert_mentions(message, path, "seeds")


def test_empty_methods(tmp_path):
    message, path = load_error(tmp_path, suite_text(methods="[]"))
    assert_mentions(message, path, "methods")


def test_invalid_yaml(tmp_path):
    message, path = load_error(tmp_path, "models: [tiny-llama\nmethods: [grad_ascent]\n")
    assert_mentions(message, path, "YAML")


def test_not_a_mapping(tmp_path):
    message, path = load_error(tmp_path, "- just\n- a list\n")
    assert_mentions(message, path, "mapping", "models", "methods")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert_mentions(str(info.value), str(path))


def test_suite_error_is_a_value_error():
    assert issubclass(SuiteError, ValueError)


# --------------------------------------------------------------------------------------- method args


def test_method_defaults_filled_and_unlearn_keys_split_off(good):
    trials = good.trials()
    grad_diff = [s for s in trials if s.method == "grad_diff"]
    assert len(grad_diff) == 2 * 4 * 3
    for spec in grad_diff:
        assert set(spec.method_args) == {"gamma", "alpha", "retain_loss"}
        assert spec.method_args["gamma"] == 1.0  # default
        assert spec.method_args["alpha"] == 0.5  # from args
        assert "lr" not in spec.method_args and "steps" not in spec.method_args
        assert spec.unlearn.steps == 5  # suite-level setting kept
        assert spec.unlearn.batch_size == 2
    assert {s.unlearn.lr for s in grad_diff} == {1e-4, 3e-4}
    assert {s.method_args["retain_loss"] for s in grad_diff} == {"nll", "kl"}

    ga_gd = [s for s in trials if s.method == "ga_gd"]
    for spec in ga_gd:
        assert set(spec.method_args) == {"forget_factor", "retain_factor", "retain_repeat"}
        assert spec.method_args["retain_factor"] == 5.0 and spec.method_args["retain_repeat"] == 5
        assert spec.unlearn.lr == 1e-5  # not swept: the suite's value
    assert {s.unlearn.steps for s in ga_gd} == {100, 20}
    assert {s.method_args["forget_factor"] for s in ga_gd} == {-0.1, -0.5}

    for spec in (s for s in trials if s.method == "grad_ascent"):
        assert spec.method_args == {}
        assert spec.unlearn == good.unlearn


def test_hyperparameters_merge_unlearn_and_method_args(good):
    spec = next(s for s in good.trials() if s.method == "grad_diff")
    hp = spec.hyperparameters()
    assert hp["lr"] == spec.unlearn.lr and hp["steps"] == 5
    assert hp["gamma"] == 1.0 and hp["alpha"] == 0.5
    guards = {"max_loss", "keep_last_finite", "eval_at", "eval_every", "save_model", "sharding"}  # not hyperparameters
    assert set(hp) == {f.name for f in dataclasses.fields(UnlearnConfig)} - guards | {"gamma", "alpha", "retain_loss"}


def test_args_and_grid_overlap_refused(tmp_path):
    text = suite_text(methods="[{name: grad_diff, args: {gamma: 1.0}, grid: {gamma: [0.5, 2.0]}}]")
    message, path = load_error(tmp_path, text)
    assert_mentions(message, path, "gamma")


# --------------------------------------------------------------------------------------- shipped suites

SHIPPED = sorted((REPO_ROOT / "suites").glob("*.yaml"))


def test_there_are_shipped_suites():
    assert SHIPPED


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_suite_parses(path):
    suite = load_suite(path, check_sources=False)  # the GPU suites name hub models this machine cannot reach
    trials = suite.trials()
    assert trials
    ids = [s.trial_id for s in suite.baseline_trials() + trials]
    assert len(set(ids)) == len(ids)


# The hub suites: not the zoo ones, nor those on smollm2-135m (its weights come from an installed package offline).
@pytest.mark.parametrize("path", [p for p in SHIPPED if p.name.startswith(("tofu_", "muse_", "wmdp_"))
                                  and not any(name in p.name for name in ("small", "methods", "protocol", "smollm2"))],
                         ids=lambda p: p.name)
def test_shipped_hub_suites_fail_at_load_when_offline_naming_the_model(path, monkeypatch):
    from bench.config import availability

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    availability.hub_reachable.cache_clear()
    try:
        with pytest.raises(SuiteError, match=r"models\[0\]: '[\w-]+/[\w.-]+' is not a zoo model, not in the local "
                                             r"Hugging Face cache.*HF_HUB_OFFLINE is set.*allowed: a zoo model"):
            load_suite(path)
    finally:
        availability.hub_reachable.cache_clear()


def test_the_default_suites_trial_ids_are_those_its_results_were_written_under():
    """Trial ids key the rows a resumed suite skips: a setting added later, at its default, must leave
    them as they were (these two were computed before prompt formats existed)."""
    suite = load_suite(pathlib.Path(__file__).resolve().parents[2] / "suites" / "tofu_small.yaml", check_sources=False)
    assert suite.trials()[0].trial_id == "69fb08cedfb7f2d0"  # tiny-llama, grad_ascent, seed 0
    assert suite.baseline_trials()[0].trial_id == "b2cd88ac3dd31220"  # tiny-llama, the target
    assert dataclasses.replace(suite.trials()[0], prepare=dataclasses.replace(
        suite.prepare, prompt="plain")).trial_id != "69fb08cedfb7f2d0"
