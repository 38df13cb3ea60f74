"""YAML numbers: `1e-5` arrives as a string, and is a number all the same."""

import math

import pytest

from bench.core.values import yaml_number


@pytest.mark.parametrize("value, number", [
    ("1e-5", 1e-5), ("3e-4", 3e-4), ("-2.5", -2.5), (3, 3), (0.1, 0.1), ("7", 7.0),
])
def test_numbers_and_numeric_strings_are_numbers(value, number):
    assert yaml_number(value) == number


def test_integers_stay_integers():
    assert type(yaml_number(3)) is int and type(yaml_number("3")) is float


@pytest.mark.parametrize("value", [True, False, None, "four", "", [1], {"a": 1}])
def test_anything_else_is_not_a_number(value):
    assert yaml_number(value) is None


def test_infinities_are_numbers_for_the_range_check_to_refuse():
    assert math.isinf(yaml_number("inf"))
