"""The attack registry and what an attack receives and returns.

An attack asks whether unlearning removed knowledge or only hid it: it perturbs the unlearned model
(quantizes its weights, fine-tunes it briefly on a few forget questions) or the questions it is asked
(paraphrases, prefixes), and the forget metrics are measured again. Knowledge that comes back was
never removed (Lynch et al. 2024, "Eight Methods to Evaluate Robust Unlearning in LLMs").

One signature for every attack: `fn(model, settings, ctx) -> AttackResult`.
- A model attack (quantization, relearning) returns an attacked `copy.deepcopy(model)`.
- A record attack (prompt attacks) returns the model itself, untouched, and new forget records.
No attack modifies the model it is given: one unlearned model is attacked many times, and its own
row must stay what it was.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from bench.core.errors import check_known
from bench.core.registry import Registry

# The splits an attack may declare it reads (`needs`): the forget records (to relearn on, to rewrite)
# and the retain records (to relearn on instead, a control: does any fine-tuning bring the forget set back?).
NEEDS = frozenset({"forget", "retain"})
KINDS = ("model", "records")  # what the attack changes: the weights, or the questions


@dataclass
class AttackContext:
    """What an attack may read besides the model and its settings.

    Attributes:
        tokenizer: the model's tokenizer (attacks that train or encode text need it).
        splits: records by split name (`forget`, `retain`), each a dict with at least `question`
            and `answer`; only the splits the attack declared in `needs` are required.
        seed: the trial's seed: which questions are relearned on, and the batch order.
        max_length: sequences are cut to this many tokens (the suite's `prepare.max_length`).
        mixed_precision: autocast for attacks that train ("no", "bf16", "fp16"): the trial's
            `unlearn.mixed_precision`, since accelerate refuses a second value in one process.
    """

    tokenizer: Any = None
    splits: Mapping[str, list[dict]] = field(default_factory=dict)
    seed: int = 0
    max_length: int = 256
    mixed_precision: str = "no"


@dataclass(frozen=True)
class AttackResult:
    """What to evaluate after an attack.

    Attributes:
        model: the model to evaluate: an attacked copy (model attacks), or the unlearned model
            itself, unmodified (record attacks).
        forget: the forget records to evaluate on in place of the forget split (the questions not
            relearned on, the rewritten questions); None: the forget split as it is.
        info: figures about the attack itself for the results row (questions used, training cost).
    """

    model: torch.nn.Module
    forget: list[dict] | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack.

    Attributes:
        name: the registry key (what a suite would write).
        fn: (model, settings, ctx) -> AttackResult.
        settings_cls: frozen dataclass of the attack's settings, with their defaults.
        description: one line for listings.
        kind: "model" or "records" (see KINDS).
        needs: the splits of `AttackContext.splits` it reads.
        grid: settings swept by default, name -> values (e.g. relearning for 10 and 25 steps).
        version: bumped whenever the attack's numbers move.
    """

    name: str
    fn: Callable
    settings_cls: type
    description: str
    kind: str
    needs: frozenset
    grid: Mapping[str, tuple]
    version: int

    def defaults(self) -> dict[str, Any]:
        """Each setting's default value."""
        return {f.name: f.default for f in dataclasses.fields(self.settings_cls)}

    def check_names(self, values: Mapping[str, Any]) -> None:
        """Raises FieldError (keyed by the name) for a setting the attack does not have."""
        check_known("setting", values, self.defaults(), owner=f"attack {self.name!r}")

    def make_settings(self, values: Mapping[str, Any] | None = None):
        """Builds the settings dataclass, refusing names the attack does not have."""
        values = dict(values or {})
        self.check_names(values)
        return self.settings_cls(**values)

    def grid_settings(self, **fixed: Any) -> Iterator[Any]:
        """Settings for every point of the default grid, `fixed` overriding defaults (and grid axes)."""
        axes = {k: v for k, v in self.grid.items() if k not in fixed}
        for point in itertools.product(*axes.values()):
            yield self.make_settings({**fixed, **dict(zip(axes, point))})


def _make_spec(name, fn, *, settings, description, kind, needs=(), grid=None, version=1) -> AttackSpec:
    if kind not in KINDS:
        raise ValueError(f"attack {name!r}: kind must be one of {KINDS}, got {kind!r}")
    if not frozenset(needs) <= NEEDS:
        raise ValueError(f"attack {name!r} declares unknown needs {sorted(set(needs) - NEEDS)}; "
                         f"allowed {sorted(NEEDS)}")
    if "\n" in description.strip():
        raise ValueError(f"attack {name!r}: the description must be one line")
    fields = {f.name for f in dataclasses.fields(settings)}
    grid = {k: tuple(v) for k, v in (grid or {}).items()}
    if not set(grid) <= fields:
        raise ValueError(f"attack {name!r}: grid names {sorted(set(grid) - fields)}, not settings; "
                         f"allowed: {sorted(fields)}")
    return AttackSpec(name, fn, settings, description.strip(), kind, frozenset(needs), grid, version)


ATTACKS: Registry[AttackSpec] = Registry("attack", _make_spec)


class MissingKeyError(KeyError):
    """A record lacks a key the attack reads; the message names the key and the record."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


def run_attack(name: str, model: torch.nn.Module, ctx: AttackContext,
               settings: Mapping[str, Any] | None = None) -> AttackResult:
    """Runs the registered attack `name` on `model` (left unmodified) with `settings` over its defaults.

    Raises:
        UnknownNameError: no attack of that name (the message lists the known ones).
        ValueError: an unknown setting, or a split the attack needs is missing or empty.
    """
    spec = ATTACKS.get(name)
    made = spec.make_settings(settings)
    missing = sorted(s for s in spec.needs if not ctx.splits.get(s))
    if missing:
        raise ValueError(f"attack {name!r} needs the split(s) {', '.join(map(repr, missing))}, missing or empty; "
                         f"given: {', '.join(map(repr, ctx.splits)) or '(none)'}")
    return spec.fn(model, made, ctx)
