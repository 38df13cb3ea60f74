"""Structured errors for values a setting cannot take, and the one way of checking them.

Every check in the harness (the suite's keys, a method's or an attack's hyperparameters, the
evaluation and training settings, the data generator's sizes) raises a `FieldError` that carries the
key, the value and what is allowed, so the suite parser can put the file and the full key path in
front (`suite.yaml: methods[2].args.beta: -1.0 is not allowed; allowed: a number > 0`) without
reading the message back. The checks: `check_range(s)` for numbers, `check_choice(s)` for a value
out of a list, `check_known` for names (keys, hyperparameters, settings) out of a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from bench.core.registry import did_you_mean

_UNSET = object()


def allowed(values: str, near: Any = None, choices: Iterable[str] = ()) -> str:
    """The `allowed: ...` tail of an error message, with a "Did you mean" for `near`."""
    hint = did_you_mean(near, choices) if near is not None else ""
    return f"allowed: {values}" + (f". {hint}" if hint else "")


class FieldError(ValueError):
    """A setting's value that is not allowed.

    Args:
        key: the setting's name, relative to whoever raised it (`beta`, `data.forget`).
        value: the value given (unset where the problem is a missing or inconsistent setting).
        allowed: what the setting may be, in words.
        problem: what is wrong; default `<value> is not allowed`.
        near, choices: a near miss of one of `choices` gets a "Did you mean".
    """

    def __init__(self, key: str, allowed: str, value: Any = _UNSET, problem: str = "", near: Any = None,
                 choices: Iterable[str] = ()):
        self.key, self.value, self.allowed = key, value, allowed
        self.problem = problem or (f"{value!r} is not allowed" if value is not _UNSET else "not allowed")
        self.hint = did_you_mean(near, choices) if near is not None else ""
        super().__init__(f"{key}: {self.detail}")

    @property
    def detail(self) -> str:
        """The message without the key: `<problem>; allowed: <allowed>[. Did you mean x?]`."""
        return f"{self.problem}; allowed: {self.allowed}" + (f". {self.hint}" if self.hint else "")


class SourceUnavailable(FieldError):
    """A model or dataset that cannot be loaded.

    `key` is the setting that names it (`models[0]`, `prepare.retain_model`; a data source's key inside
    the `data:` section: `forget`, or `question_key` where a record lacks that key), `value` the name
    or path given, `problem` why it cannot be loaded, `allowed` what the setting may name.
    """

    def __init__(self, key: str, problem: str, allowed: str, value: Any = _UNSET, near: Any = None,
                 choices: Iterable[str] = ()):
        super().__init__(key, allowed, value, problem=problem, near=near, choices=choices)


@dataclass(frozen=True)
class Range:
    """The values a numeric setting may take; `str()` says them in words for messages."""

    low: float
    high: float | None = None
    low_open: bool = False  # `low` itself is not allowed
    high_open: bool = False
    integer: bool = False
    note: str = ""  # what a special value means, e.g. "0: off"

    def __contains__(self, value: Any) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.high is None:
            text = f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        else:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            text = f"{kind} in {left}{self.low:g}, {self.high:g}{right}"
        return f"{text} ({self.note})" if self.note else text


def check_range(key: str, value: Any, limits: Range) -> None:
    """Raises FieldError unless `value` is within `limits` (NaN never is)."""
    if value not in limits:
        raise FieldError(key, str(limits), value, problem=f"{value!r} is out of range")


def check_ranges(values: dict[str, Any], ranges: dict[str, Range]) -> None:
    """`check_range` for each of `values` that `ranges` names (a config checks `vars(self)`)."""
    for key, limits in ranges.items():
        if key in values:
            check_range(key, values[key], limits)


def check_choice(key: str, value: Any, options: Iterable[str]) -> None:
    """Raises FieldError unless `value` is one of `options`, with a "Did you mean" for a near miss."""
    options = tuple(options)
    if value not in options:
        raise FieldError(key, ", ".join(map(str, options)), value, problem=f"unknown value {value!r}",
                         near=value, choices=options)


def check_known(what: str, given: Iterable[Any], known: Iterable[str], *, owner: str = "",
                allowed: str = "") -> None:
    """Raises FieldError unless every name in `given` is one of `known`.

    The one check of names: a section's keys, a method's hyperparameters, an attack's settings. The
    error's key is the first unknown name (in the order given), so whoever holds the key path puts it
    there (`methods[0].grid.lrr`); its problem reads `unknown <what> 'x'`, or `<owner> has no <what> 'x'`
    when `owner` says whose names they are (`method 'npo'`); it lists the known names (or `allowed`,
    where they need words) with a "Did you mean" for a near miss.

    Args:
        what: what a name is, in words (`key`, `hyperparameter`, `setting`).
        given: the names to check (a mapping checks its keys).
        known: the names allowed.
        owner: whose names they are; empty: the names are simply unknown.
        allowed: the allowed names in words, in place of the list of `known`.
    """
    known = list(known)
    unknown = [name for name in given if name not in known]
    if not unknown:
        return
    names = ", ".join(map(repr, unknown))
    problem = f"{owner} has no {what} {names}" if owner else f"unknown {what} {names}"
    first = unknown[0]
    raise FieldError(str(first), allowed or ", ".join(known) or "(none)", first, problem=problem,
                     near=first, choices=known)


def check_choices(values: dict[str, Any], choices: dict[str, tuple[str, ...]]) -> None:
    """`check_choice` for each of `values` that `choices` names."""
    for key, options in choices.items():
        if key in values:
            check_choice(key, values[key], options)
