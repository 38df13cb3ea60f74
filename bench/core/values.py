"""Setting values as YAML leaves them.

PyYAML reads `1e-5` (no dot, no sign in the exponent) as a string, and people write it anyway; every
place that takes numbers from a suite file (the suite's sections, method arguments, attack
settings) reads them through `yaml_number`, so a number is a number whichever way it is written.
"""

from __future__ import annotations

from typing import Any


def yaml_number(value: Any) -> int | float | None:
    """A YAML value as a number (strings like '1e-5' included), or None if it is not one.

    Integers stay integers; a numeric string becomes a float; booleans are not numbers (YAML's
    `true` is no count of steps).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
