"""Reading a suite file's YAML, with line numbers in every error.

PyYAML silently keeps the last of two equal keys in a mapping, so a suite that sets `unlearn:` twice
would run with half of what its author wrote; here a repeated key is an error naming both lines.
"""

from __future__ import annotations

from typing import Any

import yaml

MERGE_TAG = "tag:yaml.org,2002:merge"  # `<<: *anchor` merges keys on purpose; not a repeat


class YamlError(ValueError):
    """Text that is not valid YAML; the message starts with the line (the caller adds the file)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""

    def construct_mapping(self, node, deep=False):
        first_line: dict[Any, str] = {}  # key -> where it first occurs
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:  # an unhashable key: the base class reports it with its line
                continue
            mark = key_node.start_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}"
            if seen is not None:
                raise YamlError(f"{where}: duplicate key {key!r} (first at {seen}); allowed: each key "
                                f"once in a mapping (YAML would silently keep only the last)")
            first_line[key] = where
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """Parses `text`; raises YamlError with the line and column of a syntax error or a repeated key."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as err:
        raise YamlError(_describe(err)) from None
    except yaml.YAMLError as err:  # no position known
        raise YamlError(f"not valid YAML: {err}") from None


def _describe(err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = err.problem or "syntax error"
    context = f" ({err.context}" + (f" at line {err.context_mark.line + 1}" if err.context_mark else "") + ")" \
        if err.context else ""
    return f"{where}not valid YAML: {problem}{context}"
