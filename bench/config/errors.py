"""The suite's error: a file, a key path and what is allowed there."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bench.core.errors import FieldError, allowed


class SuiteError(ValueError):
    """A suite file that cannot be run; the message names the file and the key."""


@dataclass(frozen=True)
class At:
    """Where a value sits: the suite file and the key path (`methods[2].grid.lr[1]`), for messages."""

    file: str
    path: str = ""

    def key(self, name: Any) -> At:
        return At(self.file, f"{self.path}.{name}" if self.path else str(name))

    def item(self, index: int) -> At:
        return At(self.file, f"{self.path}[{index}]")

    def error(self, problem: str, values: str, near: Any = None, choices: Iterable[str] = ()) -> SuiteError:
        return SuiteError(f"{self}: {problem}; {allowed(values, near, choices)}")

    def __str__(self) -> str:
        return f"{self.file}: {self.path}" if self.path else self.file


def field_error(err: Exception, at: At, locate: Callable[[str], At | None]) -> SuiteError:
    """A config, method or attack's error put at the key it is about: a `FieldError` carries its key,
    which `locate` maps to the key path in the suite (None: not one of the keys checked here, the
    error then sits at `at`)."""
    if isinstance(err, FieldError):
        head, _, rest = err.key.partition(".")
        where = locate(head)
        if where is not None:
            return SuiteError(f"{where.key(rest) if rest else where}: {err.detail}")
    return SuiteError(f"{at}: {err}")
