"""The suite's `attacks:` key: which attacks every trial's unlearned model gets, at which settings.

Absent: every registered attack at its default grid (`DEFAULT_ATTACKS`); `attacks: []`: none. Each
item is an attack name, or a mapping with `name` and settings; a list given for a setting whose
default is not a list is a grid (`steps: [10, 25]` relearns twice), and each grid point is one
**variant**, labelled by its name and swept values (`relearn_steps25`, `quantize_bits4`), which names
its row columns `attack.<variant>.<metric>`.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from bench.core.errors import FieldError
from bench.core.names import DEFAULT_ATTACKS
from bench.core.values import yaml_number


def variant_label(name: str, swept: dict[str, Any]) -> str:
    """`relearn` + {"steps": 25} -> `relearn_steps25` (no sweep: the name)."""
    return "_".join([name] + [f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in swept.items()])


def expand(name: str, values: dict[str, Any]) -> list[dict]:
    """One attack entry's variants: {"label", "name", "settings", "version"} (every setting, defaults filled in),
    its default grid unless `values` fixes or sweeps those settings. Raises FieldError, keyed by the
    setting, for an unknown setting (the message lists the allowed ones) or a bad value."""
    from attacks import ATTACKS

    spec = ATTACKS.get(name)
    defaults = spec.defaults()
    spec.check_names(values)
    values = {k: _numeric(v, defaults[k]) for k, v in values.items()}
    axes = {k: tuple(v) for k, v in spec.grid.items() if k not in values}
    for k, v in values.items():
        if isinstance(v, list) and not isinstance(defaults[k], (list, tuple)):
            if not v:
                raise FieldError(k, "a value or a non-empty list", v, problem="an empty list sweeps nothing")
            axes[k] = tuple(v)
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k not in axes}
    variants = []
    for point in itertools.product(*axes.values()):
        swept = dict(zip(axes, point))
        settings = spec.make_settings({**fixed, **swept})
        variants.append({"label": variant_label(name, swept if len(axes) else {}), "name": name,
                         "settings": _plain(dataclasses.asdict(settings)),
                         "version": spec.version})  # in the trial id: a changed attack reruns its trials
    return variants


def _numeric(value: Any, default: Any) -> Any:
    """`1e-3` as YAML leaves it (a string) made a float where the setting is a float (a value that is
    no number is left for the settings' own check to refuse)."""
    if isinstance(value, list):
        return [_numeric(v, default) for v in value]
    if isinstance(default, float):
        number = yaml_number(value)
        return value if number is None else float(number)
    return value


def _plain(settings: dict) -> dict:
    """Settings as JSON keeps them (tuples as lists), so a spec read back has the same trial id."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def default_attacks(names: tuple[str, ...] = DEFAULT_ATTACKS) -> tuple[dict, ...]:
    return tuple(v for name in names for v in expand(name, {}))


def parse_attacks(raw: Any, at, defaults: tuple[str, ...] = DEFAULT_ATTACKS) -> tuple[dict, ...]:
    """The variants of a suite's `attacks:` value (`defaults`, the attacks run when it has none: the data kind's);
    `at` locates errors (bench.config.suite._At)."""
    from attacks import ATTACKS

    from bench.core.registry import UnknownNameError
    from bench.config.errors import SuiteError, field_error

    if raw is None:
        return default_attacks(defaults)
    names = ", ".join(ATTACKS.names())
    holds = (f"a list of attacks ({names}), each a name or a mapping with `name` and its settings; "
             "[] for none")
    if not isinstance(raw, list):
        raise at.error(f"expected a list, got {raw!r}", holds)
    variants: list[dict] = []
    for i, item in enumerate(raw):
        item_at = at.item(i)
        if isinstance(item, str):
            name, values = item, {}
        elif isinstance(item, dict) and "name" in item:
            name, values = item["name"], {k: v for k, v in item.items() if k != "name"}
        else:
            raise item_at.error(f"{item!r} is not an attack", holds)
        try:
            ATTACKS.get(name)
        except (UnknownNameError, TypeError):
            raise SuiteError(f"{item_at.key('name') if isinstance(item, dict) else item_at}: "
                             f"{ATTACKS.unknown_message(str(name))}") from None
        try:
            variants += expand(name, values)
        except (ValueError, TypeError) as err:  # a FieldError goes to its setting's key path
            raise field_error(err, item_at, lambda key: item_at.key(key) if key in values else None) from None
    labels = [v["label"] for v in variants]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise at.error(f"attack variant {repeated[0]!r} is listed twice", "each attack and setting once")
    return tuple(variants)
