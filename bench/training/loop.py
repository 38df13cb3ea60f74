"""The one training loop, used both to prepare models and to unlearn.

AdamW, an optional linear warm-up followed by a constant or cosine schedule, gradient clipping,
gradient accumulation, and a budget counted in optimizer steps (epochs would scale with the
forget-set size). accelerate places the model and batches on the device and handles mixed precision.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterator, Mapping

import torch

from bench.core.errors import Range, check_choices, check_ranges
from bench.training.parallel import SINGLE, Parallel, micro_batch_seed, seeded

Batch = Mapping[str, "torch.Tensor | Batch"]
LossFn = Callable[[torch.nn.Module, Batch, int], "tuple[torch.Tensor, dict[str, float]]"]

SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class OptimConfig:
    """How long and how hard to train.

    Args:
        steps: optimizer steps.
        lr: peak learning rate of AdamW.
        schedule: "constant" or "cosine" (decay to 0 after warm-up).
        warmup_steps: linear warm-up from 0 to `lr`.
        weight_decay: AdamW decoupled weight decay.
        max_grad_norm: gradient clipping threshold (0 disables clipping).
        grad_accum_steps: micro-batches per optimizer step; the effective batch is the batch
            size times this.
    """

    steps: int
    lr: float
    schedule: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    grad_accum_steps: int = 1

    CHOICES: ClassVar[dict] = {"schedule": SCHEDULES}
    RANGES: ClassVar[dict] = {
        "steps": Range(0, integer=True), "lr": Range(0), "warmup_steps": Range(0, integer=True),
        "weight_decay": Range(0), "max_grad_norm": Range(0, note="0: off"), "grad_accum_steps": Range(1, integer=True),
    }

    def __post_init__(self):
        check_choices(vars(self), self.CHOICES)
        check_ranges(vars(self), self.RANGES)


@dataclass(frozen=True)
class DivergenceGuard:
    """When training counts as diverged, and what to keep.

    Args:
        max_loss: a loss whose absolute value exceeds this diverges (0: only NaN and infinity).
        keep_last_finite: copy the trained weights before each optimizer step, so that on divergence
            they are put back as they were before the step that broke them.
    """

    max_loss: float = 0.0
    keep_last_finite: bool = True

    def problem(self, loss: float) -> str | None:
        """Why `loss` counts as diverged, or None."""
        if not math.isfinite(loss):
            return f"loss {loss}"
        if self.max_loss and abs(loss) > self.max_loss:
            return f"loss {loss:.4g} beyond the bound |loss| <= {self.max_loss:g}"
        return None


@dataclass
class TrainResult:
    """What a run of `train` did.

    `steps` counts the optimizer steps whose result the model holds at the end. On divergence,
    `diverged_step` is the 1-based optimizer step at which the loss (or, after the last step, a
    weight) stopped being finite or crossed the bound, and `divergence` says what happened; with
    `keep_last_finite` the weights are those from before the optimizer step preceding it, the last
    ones whose loss was still acceptable.
    """

    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    last_parts: dict[str, float] = field(default_factory=dict)
    diverged_step: int | None = None
    divergence: str | None = None


def lr_factor(step: int, cfg: OptimConfig) -> float:
    """Multiplier of the peak learning rate at `step` (0-based)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    decay_steps = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / decay_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_accelerator(mixed_precision: str = "no"):
    """An accelerate `Accelerator` on the GPU when there is one, else on the CPU.

    accelerate keeps one mixed-precision setting per process (`AcceleratorState`, a singleton) and
    refuses another, but `mixed_precision` may be a grid axis and Ray reuses a worker process for
    the next trial: the state is reset when the setting asked for differs from the process's."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and str(state.get("_mixed_precision", mixed_precision)) != mixed_precision:
        AcceleratorState._reset_state()
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision)


def to_device(batch: Batch, device) -> dict:
    return {k: to_device(v, device) if isinstance(v, Mapping) else v.to(device) for k, v in batch.items()}


def count_tokens(batch: Batch) -> int:
    return sum(count_tokens(v) if isinstance(v, Mapping) else int(v.sum()) if k == "attention_mask" else 0
               for k, v in batch.items())


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)  # exact for a single value: no accumulation, same numbers


def train(
    model: torch.nn.Module,
    loss_fn: LossFn,
    batches: Iterator[Batch],
    cfg: OptimConfig,
    accelerator,
    params: list[torch.nn.Parameter] | None = None,
    on_step: Callable[[int, float, dict], None] | None = None,
    guard: DivergenceGuard | None = None,
    parallel: Parallel = SINGLE,
    seed: int | None = None,
    observe: Callable[[Batch, int], None] | None = None,
) -> TrainResult:
    """Runs `cfg.steps` optimizer steps of `loss_fn` over `batches`.

    Each step draws `cfg.grad_accum_steps` micro-batches and back-propagates each one's loss
    divided by that count, so the step's gradient is the mean of the micro-batch gradients. Each
    micro-batch loss is already a mean over its own tokens or examples: with a token-mean loss the
    accumulated gradient equals that of one big batch only when the micro-batches hold equal
    numbers of tokens (otherwise tokens of smaller micro-batches weigh more).

    Args:
        model: trained in place (already on `accelerator.device`).
        loss_fn: (model, batch, step) -> (scalar loss, named parts for logging).
        batches: an endless iterator of (possibly nested) dicts of tensors.
        cfg: optimizer, schedule and gradient accumulation.
        accelerator: from `make_accelerator`.
        params: the parameters to train (default: all that require grad).
        on_step: called after every optimizer step with (step, loss, parts), the loss and parts
            averaged over the step's micro-batches, e.g. for progress output.
        guard: stop early when a micro-batch loss is NaN, infinite or beyond the bound, or when a
            weight is not finite after the last step (see `TrainResult` for what is kept).
        parallel: this worker's place among the trial's workers (`bench.training.parallel`): every
            worker draws the step's micro-batches and trains on its share of them.
        seed: seeds each micro-batch's random draws by (seed, step, micro-batch), whichever worker
            computes it (None: torch's generator runs on, as in one process).
        observe: called as (batch, step) with each micro-batch another worker computes, in the step's
            order, without gradients (a method's state that grows with the batches seen: `MethodSpec.observe_fn`).

    Returns:
        losses (one per optimizer step) and `last_parts` are means over micro-batches; `tokens`
        counts the attention-mask tokens of every micro-batch.
    """
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    if accelerator.scaler is not None:
        # fp16: the loss is scaled in `accelerator.backward`; accelerate's optimizer wrapper unscales
        # before clipping, skips steps with inf/NaN gradients and updates the scale. Without it the
        # scaled gradients would be applied as they are.
        optimizer = accelerator.prepare_optimizer(optimizer)
    model.train()
    result = TrainResult()
    before_last_step = _WeightCopy(params) if guard and guard.keep_last_finite else None
    start = time.perf_counter()
    for step in range(cfg.steps):
        records = _micro_batches(model, loss_fn, batches, cfg, accelerator, step, guard, parallel, seed, observe)
        at, problem = _first_problem(records, guard, cfg.grad_accum_steps)
        result.tokens += sum(tokens for micro, (_, _, tokens) in records.items() if micro < at)
        if problem:
            _diverged(result, step + 1, problem, optimizer, before_last_step)
            break
        parallel.sync_gradients(params)
        if cfg.max_grad_norm > 0:
            accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
        if before_last_step is not None:
            before_last_step.save()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ordered = [records[k] for k in sorted(records)]
        value = _mean([loss for loss, _, _ in ordered])
        parts = {k: _mean([p[k] for _, p, _ in ordered if k in p]) for k in ordered[0][1]}
        result.losses.append(value)
        result.last_parts = parts
        result.steps = step + 1
        if on_step is not None:
            on_step(step, value, parts)
    if guard and not result.diverged_step and not all(_finite(p) for p in params):
        _diverged(result, result.steps, "a weight is not finite after the last step", optimizer, before_last_step)
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


def _micro_batches(model, loss_fn, batches, cfg: OptimConfig, accelerator, step: int, guard, parallel: Parallel,
                   seed: int | None, observe=None) -> dict[int, tuple[float, dict, int]]:
    """Draws the step's micro-batches and back-propagates this worker's share of them, each loss divided
    by the step's count; returns every worker's {micro-batch: (loss, parts, tokens)}.

    In one process the step stops at the first loss the guard refuses, before its backward pass, as
    there is nothing to keep in step with. Workers carry on to the end of the step (a sharded backward
    is a collective) and all of them see the refused loss in the gathered records."""
    mine: dict[int, tuple[float, dict, int]] = {}
    own = [k for k in range(cfg.grad_accum_steps) if parallel.takes(k)]
    for micro in range(cfg.grad_accum_steps):
        batch = next(batches)  # every worker draws every micro-batch: the stream stays in step
        if micro not in own:
            if observe is not None:
                with torch.no_grad(), accelerator.autocast():
                    observe(to_device(batch, accelerator.device), step)
            continue
        if parallel.sharding == "fsdp":
            model.set_requires_gradient_sync(micro == own[-1])  # reduce-scatter once, after the last
        batch = to_device(batch, accelerator.device)
        with seeded(micro_batch_seed(seed, step, micro)) if seed is not None else contextlib.nullcontext():
            with accelerator.autocast():
                loss, parts = loss_fn(model, batch, step)
            value = float(loss.detach())
            mine[micro] = (value, parts, count_tokens(batch))
            if guard and guard.problem(value) and not parallel.distributed:
                break
            if parallel.sharding == "fsdp":  # its reduce-scatter averages over the workers; the step wants their sum
                loss = loss * parallel.world
            accelerator.backward(loss / cfg.grad_accum_steps)
    return parallel.gather(mine)


def _first_problem(records: dict, guard: DivergenceGuard | None, count: int) -> tuple[int, str | None]:
    """(the step's first micro-batch whose loss the guard refuses, the objection), or (count, None)."""
    for micro in range(count):
        problem = guard.problem(records[micro][0]) if guard and micro in records else None
        if problem:
            return micro, problem
    return count, None


def _finite(p: torch.Tensor) -> bool:
    local = p.to_local() if hasattr(p, "to_local") else p  # a sharded (DTensor) weight: this worker's shard
    return bool(torch.isfinite(local).all())


class _WeightCopy:
    """A copy of some parameters, refreshed in place (no allocation per step) and put back on demand."""

    def __init__(self, params: list[torch.nn.Parameter]):
        self.params = params
        self.saved: list[torch.Tensor] | None = None

    @torch.no_grad()
    def save(self) -> None:
        if self.saved is None:
            self.saved = [p.detach().clone() for p in self.params]
        else:
            for copy, p in zip(self.saved, self.params):
                copy.copy_(p)

    @torch.no_grad()
    def restore(self) -> bool:
        if self.saved is None:
            return False
        for copy, p in zip(self.saved, self.params):
            p.copy_(copy)
        return True


def _diverged(result: TrainResult, step: int, problem: str, optimizer, before_last_step: _WeightCopy | None) -> None:
    """Records a divergence at 1-based optimizer step `step`; puts back the weights from before the
    previous optimizer step when they were kept (those were the last whose loss was acceptable)."""
    optimizer.zero_grad(set_to_none=True)
    result.diverged_step = step
    result.divergence = f"{problem} at step {step}"
    if before_last_step is not None and before_last_step.restore():
        result.steps -= 1
        result.losses = result.losses[:result.steps]
        result.divergence += f"; evaluated as after step {result.steps}"
    else:
        result.divergence += f"; evaluated as after step {result.steps}" + (
            "" if before_last_step is not None else " (weights not kept: keep_last_finite is false)")
