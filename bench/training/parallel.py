"""How one trial's unlearning spreads over several worker processes, with the same numbers at any count.

An optimizer step takes `grad_accum_steps` micro-batches of `batch_size` examples: that is the global
batch, and it is fixed by the trial's settings, never by the number of workers. Every worker draws
the whole step from the same seeded stream and trains on its share of the micro-batches (micro-batch
k goes to worker k mod N), so the step's gradient is the mean of the same micro-batch gradients at
any worker count; only the order in which floating-point sums are reduced differs. Any random draw
of a micro-batch's forward and backward (dropout) is seeded by (trial seed, step, micro-batch), not
by the worker that computes it.

Two ways to share the model:

- `ddp`: each worker holds the whole model; the gradients are summed over workers once per
  optimizer step (what DistributedDataParallel does under `no_sync`). A worker may hold fewer
  micro-batches than another, or none.
- `fsdp`: weights, gradients, optimizer state and the frozen reference are sharded over the
  workers with PyTorch's `fully_shard` (FSDP2), one unit per decoder layer; every worker must take
  the same number of micro-batches (a sharded forward is a collective), and the reference runs on
  every micro-batch rather than remembering its values.

With ddp, a method whose state grows with the batches its process has seen (the reference
log-probs NPO and DPO remember, each computed in the batch it first appeared in) also sees the
micro-batches other workers take (`MethodSpec.observe_fn`), so that state is the one process's.

`none` is one process, as before. The collectives use gloo on CPU and NCCL on GPUs.
"""

from __future__ import annotations

import datetime
import socket
from contextlib import contextmanager
from dataclasses import dataclass

import torch

SHARDINGS = ("none", "ddp", "fsdp")
# A worker blocked in a collective whose peer has died gives up after this long (gloo and NCCL both
# notice a closed connection much sooner; this bounds a peer that hangs).
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Parallel:
    """This process's place among the trial's workers.

    Attributes:
        rank: 0 for the worker that evaluates and writes the rows.
        world: the number of workers.
        sharding: "none" (one process), "ddp" or "fsdp".
    """

    rank: int = 0
    world: int = 1
    sharding: str = "none"

    @property
    def distributed(self) -> bool:
        """Whether a process group is in use (several workers, or FSDP on one)."""
        return self.sharding != "none"

    def takes(self, micro: int) -> bool:
        """Whether micro-batch `micro` of a step is this worker's."""
        return micro % self.world == self.rank

    def gather(self, mine: dict) -> dict:
        """Every worker's {micro-batch: record}, merged, on every worker."""
        if not self.distributed or self.world == 1:
            return mine
        import torch.distributed as dist

        parts: list = [None] * self.world
        dist.all_gather_object(parts, mine)
        return {k: v for part in parts for k, v in part.items()}

    def sync_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """ddp: sums each gradient over the workers (a worker without one adds zeros). fsdp reduces
        its shards during the backward pass (averaging them: `train` scales the loss by the worker count
        first, as gloo has no pre-scaled sum), so there is nothing left to do."""
        if self.sharding != "ddp" or self.world == 1:
            return
        import torch.distributed as dist

        grads = []
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        for bucket in _buckets(grads):
            flat = torch.cat([g.reshape(-1) for g in bucket])
            dist.all_reduce(flat)
            offset = 0
            for g in bucket:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()

    def barrier(self) -> None:
        if self.distributed and self.world > 1:
            import torch.distributed as dist

            dist.barrier()


SINGLE = Parallel()


def sharding_for(sharding: str, workers: int) -> str:
    """The sharding a trial runs with: `unlearn.sharding`, where "none" over several workers means ddp."""
    return "ddp" if sharding == "none" and workers > 1 else sharding


def _buckets(tensors: list[torch.Tensor], limit_bytes: int = 25 * 2**20) -> list[list[torch.Tensor]]:
    """Consecutive groups of same-dtype tensors of about `limit_bytes` each (one all-reduce per group)."""
    out: list[list[torch.Tensor]] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        if not out or size + nbytes > limit_bytes or out[-1][-1].dtype != t.dtype:
            out.append([])
            size = 0
        out[-1].append(t)
        size += nbytes
    return out


def micro_batch_seed(seed: int, step: int, micro: int) -> int:
    """The seed of one micro-batch's random draws: the trial's, the step's and the micro-batch's alone."""
    return (seed * 1_000_003 + step * 10_007 + micro) % 2**63


@contextmanager
def seeded(seed: int):
    """Runs the block with torch's generators seeded by `seed`, putting their state back after."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def join_group(parallel: Parallel, address: str) -> None:
    """Joins the trial's process group at `address` ("host:port", rank 0's); gloo on CPU, NCCL on GPU."""
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(0)  # Ray shows each worker only its own GPU
    dist.init_process_group(backend, init_method=f"tcp://{address}", rank=parallel.rank, world_size=parallel.world,
                            timeout=COLLECTIVE_TIMEOUT)


def leave_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def shard(model: torch.nn.Module) -> torch.nn.Module:
    """Shards `model` in place with FSDP2: each decoder layer (the classes the model names in
    `_no_split_modules`) is one unit, the rest (embeddings, final norm, head) the root's."""
    from torch.distributed.fsdp import fully_shard

    layer_classes = set(getattr(model, "_no_split_modules", None) or ())
    for module in model.modules():
        if type(module).__name__ in layer_classes:
            fully_shard(module)
    fully_shard(model)
    return model


def full_state(model: torch.nn.Module, parallel: Parallel) -> dict | None:
    """The sharded model's whole state on the CPU at rank 0 (None elsewhere); every worker must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return state if parallel.rank == 0 else None
