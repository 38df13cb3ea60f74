"""The method registry and what a method receives.

A method is a loss: `fn(model, batch, ctx) -> (loss, parts)`. It never owns the optimizer, the
loop or the device. It declares what the loop must prepare for it: the data streams it reads
(`forget`, `retain`) and whether it needs a frozen reference copy of the model (`reference`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from bench.core.errors import check_known
from bench.core.registry import Registry

# What a method may declare in `needs`: the data streams `forget`, `retain`, `alternate` (the forget
# questions with their refusal `alternate_answer`) and `plausible` (the same questions with a plausible
# wrong `plausible_answer`), both aligned with the forget batch, a frozen `reference` copy of the
# model, and `hidden_states` (it reads a layer's activations).
NEEDS = frozenset({"forget", "retain", "alternate", "plausible", "reference", "hidden_states"})


@dataclass
class MethodContext:
    """What a loss may read besides the model and the batch.

    Attributes:
        args: the method's frozen hyperparameter dataclass.
        reference: the frozen original model (eval mode, no gradients), when the method needs it.
        step: the optimizer step being computed.
        seed: the trial's seed, for anything a method draws at random (e.g. RMU's direction).
        state: scratch space that lives for one trial (e.g. a statistic of the first batch).
        first_batch: the unlearning's first batch (every stream), the same on every worker of a trial:
            a statistic "of the first batch" reads it here, since a worker's first call may get another.
        remember_reference: whether the reference's values may be remembered between batches; off where
            the reference is sharded (fsdp), since a sharded forward is a collective every worker must join
            at every micro-batch.
    """

    args: Any
    reference: torch.nn.Module | None = None
    step: int = 0
    seed: int = 0
    state: dict = field(default_factory=dict)
    first_batch: dict | None = None
    remember_reference: bool = True


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its loss function, hyperparameters, needs and version."""

    name: str
    fn: Callable
    args_cls: type
    needs_fn: Callable[[Any], frozenset]
    version: int
    params_fn: Callable | None = None  # (model, args) -> the parameters to train; None = all
    paper: str = ""  # where the loss comes from (authors, year, title): `bench list methods` shows it
    # (batch, ctx) for a micro-batch another worker of the trial computes: state a loss builds from the batches
    # its process has seen (the reference log-prob memo) then grows as it does in one process. None: nothing to see.
    observe_fn: Callable | None = None

    @property
    def description(self) -> str:
        return (self.fn.__doc__ or "").strip().splitlines()[0] if self.fn.__doc__ else ""

    def hyperparameters(self) -> dict[str, Any]:
        """Each hyperparameter's default value."""
        return {f.name: f.default for f in dataclasses.fields(self.args_cls)}

    def make_args(self, values: dict[str, Any]):
        """Builds the args dataclass, refusing names the method does not have."""
        check_known("hyperparameter", values, self.hyperparameters(), owner=f"method {self.name!r}")
        return self.args_cls(**values)

    def needs(self, args) -> frozenset:
        return self.needs_fn(args)

    def trainable_parameters(self, model, args) -> list:
        """The parameters the method trains (all of them unless it declared `params=`)."""
        return list(model.parameters()) if self.params_fn is None else list(self.params_fn(model, args))


def _make_spec(name, fn, *, args, needs, version, params=None, paper="", observe=None) -> MethodSpec:
    needs_fn = needs if callable(needs) else (lambda _a, fixed=frozenset(needs): fixed)
    for probe in [needs_fn(args())]:
        if not probe <= NEEDS:
            raise ValueError(f"method {name!r} declares unknown needs {sorted(probe - NEEDS)}; allowed {sorted(NEEDS)}")
    return MethodSpec(name, fn, args, needs_fn, version, params, paper, observe)


METHODS: Registry[MethodSpec] = Registry("method", _make_spec)
