"""The one check of names (`check_known`): the unknown name as the error's key, the allowed names, a
"Did you mean"."""

import pytest

from bench.core.errors import FieldError, check_known


def test_known_names_pass():
    check_known("key", {"steps": 1, "lr": 2}, ["steps", "lr", "batch_size"])
    check_known("key", [], [])


def test_an_unknown_name_is_the_errors_key_with_the_allowed_names_and_a_hint():
    with pytest.raises(FieldError) as err:
        check_known("key", {"steps": 1, "setps": 2}, ["steps", "lr"])
    assert (err.value.key, err.value.value) == ("setps", "setps")
    assert err.value.allowed == "steps, lr"
    assert str(err.value) == "setps: unknown key 'setps'; allowed: steps, lr. Did you mean steps?"


def test_the_owner_and_every_unknown_name_are_named_the_first_is_the_key():
    with pytest.raises(FieldError) as err:
        check_known("hyperparameter", ["gama", "lrr"], ["gamma", "alpha"], owner="method 'grad_diff'")
    assert err.value.key == "gama"
    assert err.value.detail == ("method 'grad_diff' has no hyperparameter 'gama', 'lrr'; allowed: gamma, alpha. "
                                "Did you mean gamma?")


def test_allowed_words_replace_the_list_and_no_names_read_none():
    with pytest.raises(FieldError, match=r"allowed: beta \(aliases: x -> y\)$"):
        check_known("hyperparameter", ["x2"], ["beta"], allowed="beta (aliases: x -> y)")
    with pytest.raises(FieldError, match=r"has no setting 'bits'; allowed: \(none\)$"):
        check_known("setting", ["bits"], [], owner="attack 'prefix'")


def test_a_trainer_alias_is_suggested():
    with pytest.raises(FieldError, match="Did you mean lr?"):
        check_known("key", ["learning_rate"], ["lr", "steps"])




def test_a_source_error_keeps_its_parts_apart():
    from bench.core.errors import SourceUnavailable

    err = SourceUnavailable("models[0]", "'tiny-lama' is not a zoo model", "a zoo model", "tiny-lama",
                            near="tiny-lama", choices=["tiny-llama"])
    assert (err.key, err.value, err.problem, err.allowed) == ("models[0]", "tiny-lama", "'tiny-lama' is not a zoo model",
                                                              "a zoo model")
    assert str(err) == "models[0]: 'tiny-lama' is not a zoo model; allowed: a zoo model. Did you mean tiny-llama?"
