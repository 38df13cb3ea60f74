"""One registry class for method and metric plugins.

A plugin registers itself with a decorator where it is defined; the suite refers to it by name.
Duplicate names raise instead of silently overwriting, and an unknown name lists the known ones
with the closest matches first.
"""

from __future__ import annotations

import difflib
import importlib
import os
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")

# Modules (comma-separated, importable from PYTHONPATH) that register a user's own methods and
# metrics; imported after the built-in plugins, in every process that resolves names.
PLUGINS_ENV = "BENCH_PLUGINS"


class PluginError(ImportError):
    """A module named in $BENCH_PLUGINS that cannot be imported."""


def load_plugins() -> None:
    """Imports the modules named in $BENCH_PLUGINS (each once; later calls are free)."""
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise PluginError(f"{PLUGINS_ENV} names {name!r}, which cannot be imported: {err}") from None


# Names people carry over from other trainers, too far from ours for difflib to suggest.
ALIASES = {"learning_rate": "lr", "num_steps": "steps", "max_steps": "steps", "train_batch_size": "batch_size"}


def did_you_mean(name: Any, choices: Iterable[str]) -> str:
    """`Did you mean x?` (or `x or y?`) for a near miss of one of `choices`, else ''."""
    choices = list(choices)
    close = difflib.get_close_matches(str(name), choices, n=3)
    if not close and ALIASES.get(str(name)) in choices:
        close = [ALIASES[str(name)]]
    return f"Did you mean {' or '.join(close)}?" if close else ""


class UnknownNameError(KeyError):
    """Raised for a name that no plugin registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps plugin names to entries built by `make_entry` at registration time.

    Args:
        kind: what the registry holds ("method", "metric"), used in error messages.
        make_entry: builds the stored entry from (name, decorated function, decorator kwargs).
    """

    def __init__(self, kind: str, make_entry: Callable[..., T]):
        self.kind = kind
        self._make_entry = make_entry
        self._entries: dict[str, T] = {}

    def register(self, name: str, **options: Any) -> Callable[[Callable], Callable]:
        def decorator(fn: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = self._make_entry(name, fn, **options)
            return fn

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        hint = did_you_mean(name, self._entries)
        return f"unknown {self.kind} {name!r}; allowed: {', '.join(sorted(self._entries))}." + (f" {hint}" if hint else "")

    def names(self) -> list[str]:
        return sorted(self._entries)

    def names_in_order(self) -> list[str]:
        """The names in the order they were registered (where the first is the default, say so first)."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[T]:
        return iter(self._entries[n] for n in self.names())
